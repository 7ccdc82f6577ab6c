/** TLS 1.3 session resumption (RFC 8446, Sections 2.2, 4.2.11 and 4.6.1), in memory. */
import assert from "node:assert/strict";
import type { ClientTicket } from "../../../protocol/tls/client.ts";
import type { ClientHello } from "../../../protocol/tls/messages/client_hello.ts";
import { PskKeyExchangeMode } from "../../../protocol/tls/messages/pre_shared_key.ts";
import type { ServerConfig } from "../../../protocol/tls/server.ts";
import { TicketUses } from "../../../protocol/tls/session13.ts";
import { TicketKeys } from "../../../protocol/tls/ticket_keys.ts";
import { ExtensionType } from "../../../protocol/tls/wire.ts";
import { CertificateError } from "../../../protocol/x509/identity.ts";
import { type ClientConfig, TlsClientConnection } from "../../../protocol/tls/client.ts";
import {
  fatalOf,
  keyFixture,
  kinds,
  makePair,
  type Pair,
  provider,
  run,
  stubVerifier,
} from "./_pair.ts";

function resumption(): Pick<ServerConfig, "ticketKeys" | "ticketUses"> {
  return { ticketKeys: new TicketKeys({ provider }), ticketUses: new TicketUses() };
}

/** A full handshake that returns the client's tickets. */
function firstConnection(
  server: Partial<ServerConfig>,
  client: Partial<ClientConfig> = {},
): { pair: Pair; tickets: ClientTicket[] } {
  const pair = makePair(server, client);
  run(pair);
  assert.deepEqual(kinds(pair.serverEvents), ["handshakeComplete"]);
  return { pair, tickets: (pair.client as TlsClientConnection).tickets };
}

Deno.test("a full handshake sends two NewSessionTickets, and a ticket resumes without a certificate", () => {
  const server = resumption();
  const { tickets } = firstConnection(server);
  assert.equal(tickets.length, 2);
  const p = makePair(server, { resumeWith: tickets[0]! });
  let verifyCalls = 0;
  const q = makePair(server, {
    resumeWith: tickets[1]!,
    verifyServer: () => {
      verifyCalls++;
      return keyFixture("P-256").publicKey;
    },
  });
  run(q);
  assert.equal(verifyCalls, 0, "no server certificate on resumption");
  run(p);
  assert.deepEqual(kinds(p.serverEvents), ["handshakeComplete"]);
  assert.equal(p.server.info().resumed, true);
  assert.equal(p.client.info().resumed, true);
  assert.equal(p.client.tickets.length, 2, "a resumed connection gets fresh tickets too");
});

Deno.test("the number of tickets per connection is configurable, and zero sends none", () => {
  assert.equal(firstConnection({ ...resumption(), ticketsPerConnection: 3 }).tickets.length, 3);
  assert.equal(firstConnection({ ...resumption(), ticketsPerConnection: 0 }).tickets.length, 0);
  assert.equal(firstConnection({}).tickets.length, 0, "no ticket keys, no tickets");
});

Deno.test("a wrong PSK binder is decrypt_error", () => {
  const server = resumption();
  const { tickets } = firstConnection(server);
  const t = tickets[0]!;
  const p = makePair(server, { resumeWith: { ...t, psk: t.psk.map((b) => b ^ 1) } });
  run(p);
  assert.equal(fatalOf(p.serverEvents), "decrypt_error");
});

Deno.test("a ticket the server cannot open, or from another server, falls back to a full handshake", () => {
  const { tickets } = firstConnection(resumption());
  const p = makePair(resumption(), { resumeWith: tickets[0]! });
  run(p);
  assert.deepEqual(kinds(p.serverEvents), ["handshakeComplete"]);
  assert.equal(p.server.info().resumed, false);
  const garbage = makePair(resumption(), {
    resumeWith: { ...tickets[0]!, ticket: new Uint8Array(80).fill(3) },
  });
  run(garbage);
  assert.equal(garbage.server.info().resumed, false);
  assert.deepEqual(kinds(garbage.serverEvents), ["handshakeComplete"]);
});

Deno.test("a ticket whose age is implausible or past its lifetime is not resumed", () => {
  let now = 1_000_000_000_000;
  const clock = () => now;
  const server = { ticketKeys: new TicketKeys({ provider, now: clock }), now: clock };
  const { tickets } = firstConnection(server, { now: clock });
  const t = tickets[0]!;
  now += 5_000;
  const ok = makePair(server, { resumeWith: t, now: clock });
  run(ok);
  assert.equal(ok.server.info().resumed, true);
  // The client claims the ticket is a minute older than it can be.
  const future = makePair(server, { resumeWith: { ...t, receivedAt: t.receivedAt - 60_000 } });
  run(future);
  assert.equal(future.server.info().resumed, false);
  now += 25 * 3600_000;
  const expired = makePair(server, { resumeWith: t, now: clock });
  run(expired);
  assert.equal(expired.server.info().resumed, false);
  assert.deepEqual(kinds(expired.serverEvents), ["handshakeComplete"]);
});

Deno.test("a ticket resumes a bounded number of connections", () => {
  const server = {
    ticketKeys: new TicketKeys({ provider }),
    ticketUses: new TicketUses({ maxUses: 2 }),
  };
  const { tickets } = firstConnection(server);
  const resumed = [1, 2, 3].map(() => {
    const p = makePair(server, { resumeWith: tickets[0]! });
    run(p);
    return p.server.info().resumed;
  });
  assert.deepEqual(resumed, [true, true, false]);
});

Deno.test("psk_ke is refused unless configured; then it resumes without a key exchange", () => {
  const server = resumption();
  const { tickets } = firstConnection(server);
  const pskKe = { resumeWith: tickets[0]!, pskModes: [PskKeyExchangeMode.psk_ke] };
  const p = makePair(server, pskKe);
  run(p);
  assert.equal(p.server.info().resumed, false);
  const allowed = { ...server, pskModes: ["psk_dhe_ke", "psk_ke"] as const };
  const { tickets: t2 } = firstConnection(allowed);
  const q = makePair(allowed, { ...pskKe, resumeWith: t2[0]! });
  run(q);
  assert.equal(q.server.info().resumed, true);
});

Deno.test("pre_shared_key without psk_key_exchange_modes is missing_extension", () => {
  const server = resumption();
  const { tickets } = firstConnection(server);
  const p = makePair(server, {
    resumeWith: tickets[0]!,
    editClientHello: (ch: ClientHello) => ({
      ...ch,
      extensions: ch.extensions.filter((e) => e.type !== ExtensionType.psk_key_exchange_modes),
    }),
  });
  run(p);
  assert.equal(fatalOf(p.serverEvents), "missing_extension");
});

Deno.test("a ticket resumes only under the server name it was issued for", () => {
  const server = resumption();
  const { tickets } = firstConnection(server, { serverName: "a.example" });
  const same = makePair(server, { resumeWith: tickets[0]!, serverName: "a.example" });
  run(same);
  assert.equal(same.server.info().resumed, true);
  const other = makePair(server, { resumeWith: tickets[0]!, serverName: "b.example" });
  run(other);
  assert.equal(other.server.info().resumed, false);
});

Deno.test("ALPN is negotiated afresh on resumption: a list without imap is refused", () => {
  const server = { ...resumption(), alpnProtocols: ["imap"] };
  const { tickets } = firstConnection(server, { alpnProtocols: ["imap"] });
  const ok = makePair(server, { resumeWith: tickets[0]!, alpnProtocols: ["imap"] });
  run(ok);
  assert.equal(ok.server.info().resumed, true);
  assert.equal(ok.server.info().alpn, "imap");
  const h2 = makePair(server, { resumeWith: tickets[1]!, alpnProtocols: ["h2"] });
  run(h2);
  assert.equal(fatalOf(h2.serverEvents), "no_application_protocol");
});

Deno.test("a resumption after a HelloRetryRequest recomputes the binder and resumes", () => {
  const server = { ...resumption(), groups: ["secp256r1"] as const };
  const { tickets } = firstConnection(server, { groups: ["x25519", "secp256r1"] });
  const p = makePair(server, {
    resumeWith: tickets[0]!,
    groups: ["x25519", "secp256r1"],
    keyShares: ["x25519"],
  });
  run(p);
  assert.deepEqual(kinds(p.serverEvents), ["handshakeComplete"]);
  assert.equal(p.server.info().helloRetry, true);
  assert.equal(p.server.info().resumed, true);
});

Deno.test("early_data offered with a ticket is ignored and its garbage records skipped", () => {
  const server = resumption();
  const { tickets } = firstConnection(server);
  const junk = new Uint8Array([23, 3, 3, 0, 60, ...new Uint8Array(60).fill(5)]);
  const p = makePair(server, {
    resumeWith: tickets[0]!,
    editClientHello: (ch) => {
      const psk = ch.extensions.filter((e) => e.type === ExtensionType.pre_shared_key);
      const rest = ch.extensions.filter((e) => e.type !== ExtensionType.pre_shared_key);
      const early = { type: ExtensionType.early_data, data: new Uint8Array(0) };
      return { ...ch, extensions: [...rest, early, ...psk] };
    },
  });
  run(p, { toServer: (b, round) => round === 0 ? new Uint8Array([...b, ...junk, ...junk]) : b });
  assert.deepEqual(kinds(p.serverEvents), ["handshakeComplete"]);
  assert.equal(p.server.info().resumed, true);
});

Deno.test("a resumption re-verifies the client certificate and asks the driver again", () => {
  const clientKey = keyFixture("ed25519");
  const verifier = stubVerifier([clientKey]);
  const server = { ...resumption(), clientAuth: { mode: "required" as const, verifier } };
  const client = { certificate: { chain: clientKey.chain, privateKey: clientKey.privateKey } };
  const first = makePair(server, client);
  run(first);
  assert.deepEqual(kinds(first.serverEvents), ["peerVerificationRequired"]);
  first.server.completePeerVerification({ ok: true });
  run(first);
  const tickets = first.client.tickets;
  assert.equal(tickets.length, 2);

  const again = makePair(server, { resumeWith: tickets[0]! });
  run(again);
  assert.deepEqual(kinds(again.serverEvents), ["peerVerificationRequired"]);
  assert.equal(verifier.calls, 2);
  again.server.completePeerVerification({ ok: true });
  run(again);
  assert.equal(again.server.info().resumed, true);
  assert.ok(again.server.info().peer !== null);

  // The directory has since refused the certificate: the resumption gets the same alert.
  const revoked = makePair(server, { resumeWith: tickets[1]! });
  run(revoked);
  revoked.server.completePeerVerification({
    ok: false,
    alert: "certificate_revoked",
    reason: "Removed from the directory",
  });
  run(revoked);
  assert.equal(fatalOf(revoked.serverEvents), "certificate_revoked");
  assert.equal(fatalOf(revoked.clientEvents), "certificate_revoked (received)");
});

Deno.test("a ticket whose certificate no longer verifies falls back to a full handshake", () => {
  const clientKey = keyFixture("ed25519");
  let trusted = true;
  const base = stubVerifier([clientKey]);
  const verifier = {
    authorityNames: base.authorityNames,
    verify: (chain: readonly Uint8Array[]) => {
      if (!trusted) throw new CertificateError("certificate_expired", "Expired");
      return base.verify(chain);
    },
  };
  const server = { ...resumption(), clientAuth: { mode: "required" as const, verifier } };
  const first = makePair(server, {
    certificate: { chain: clientKey.chain, privateKey: clientKey.privateKey },
  });
  run(first);
  first.server.completePeerVerification({ ok: true });
  run(first);
  trusted = false;
  const p = makePair(server, { resumeWith: first.client.tickets[0]! });
  run(p);
  assert.equal(p.server.info().resumed, false);
  assert.equal(fatalOf(p.serverEvents), "certificate_required");
});

Deno.test("no tickets go to a client that lists no PSK mode we accept", () => {
  assert.equal(firstConnection(resumption(), { offerTickets: false }).tickets.length, 0);
  assert.equal(
    firstConnection(resumption(), { pskModes: [PskKeyExchangeMode.psk_ke] }).tickets.length,
    0,
  );
});
