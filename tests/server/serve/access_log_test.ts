/** The access line names the server name a client asked for and marks TLS 1.3 resumptions. */
import assert from "node:assert/strict";
import { acceptTls } from "../../../protocol/tls/acceptor.ts";
import { TicketKeys } from "../../../protocol/tls/ticket_keys.ts";
import { formatAccess } from "../../../server/serve/mod.ts";
import { keyFixture, makePair, type PairLike, provider, run } from "../../protocol/tls/_pair.ts";

Deno.test("formatAccess() shows the SNI name and a TLS 1.3 resumption", () => {
  const k = keyFixture("P-256");
  const ticketKeys = new TicketKeys({ provider });
  const connect = (resumeWith?: ReturnType<typeof makePair>["client"]["tickets"][number]) => {
    const server = acceptTls({
      provider,
      certificateChain: k.chain,
      privateKey: k.privateKey,
      ticketKeys,
    });
    const { client } = makePair({}, {
      serverName: "mail.example.org",
      ...(resumeWith ? { resumeWith } : {}),
    });
    const p: PairLike = { client, server, clientEvents: [], serverEvents: [] };
    run(p);
    const line = formatAccess({
      id: 1,
      peer: "127.0.0.1:5000",
      listener: "127.0.0.1:993",
      tls: server.info(),
      bytesIn: 0,
      bytesOut: 0,
      durationMs: 1,
      closeReason: "close_notify sent",
    });
    return { line, tickets: client.tickets };
  };
  const first = connect();
  assert.equal(first.line.sni, "mail.example.org");
  assert.match(String(first.line.tls), /^TLSv1\.3 TLS_\w+$/);
  const again = connect(first.tickets[0]);
  assert.match(String(again.line.tls), /^TLSv1\.3 TLS_\w+ resumed$/);
  assert.equal(again.line.sni, "mail.example.org");
});
