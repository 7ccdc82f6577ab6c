import assert from "node:assert/strict";
import { acceptTls } from "../../../protocol/tls/acceptor.ts";
import { writePlaintextRecord } from "../../../protocol/tls/record_layer.ts";
import { Tls12ClientConnection } from "../../../protocol/tls/tls12/client12.ts";
import { ContentType } from "../../../protocol/tls/wire.ts";
import { fatalOf, keyFixture, makePair, provider, run } from "./_pair.ts";

function server(minVersion: "1.2" | "1.3" = "1.2") {
  const k = keyFixture("P-256");
  return acceptTls({ provider, certificateChain: k.chain, privateKey: k.privateKey, minVersion });
}

Deno.test("acceptTls() holds input until the ClientHello is complete, then answers", () => {
  const s = server();
  const hello = new Tls12ClientConnection({
    provider,
    verifyServer: () => keyFixture("P-256").publicKey,
  }).takeOutgoing();
  for (let i = 0; i < hello.length - 1; i++) {
    s.receive(hello.subarray(i, i + 1));
    assert.equal(s.takeOutgoing().length, 0);
  }
  assert.equal(s.info().cipherSuite, "");
  s.receive(hello.subarray(hello.length - 1));
  assert.ok(s.takeOutgoing().length > 0);
  assert.equal(s.info().version, "TLSv1.2");
});

Deno.test("acceptTls() leaves anything that is not a ClientHello to the TLS 1.3 engine's alerts", () => {
  const cases: [string, Uint8Array, string][] = [
    [
      "application data first",
      writePlaintextRecord(ContentType.application_data, new Uint8Array([1])),
      "unexpected_message",
    ],
    [
      "an alert first",
      writePlaintextRecord(ContentType.alert, new Uint8Array([2, 40])),
      "handshake_failure (received)",
    ],
    [
      "a ServerHello",
      writePlaintextRecord(ContentType.handshake, new Uint8Array([2, 0, 0, 0])),
      "unexpected_message",
    ],
    ["an unknown record type", new Uint8Array([99, 3, 3, 0, 1, 0]), "unexpected_message"],
    [
      "an empty handshake record",
      writePlaintextRecord(ContentType.handshake, new Uint8Array(0)),
      "unexpected_message",
    ],
  ];
  for (const [what, bytes, alert] of cases) {
    const s = server();
    s.receive(bytes);
    assert.equal(fatalOf(s.takeEvents()), alert, what);
  }
});

Deno.test("acceptTls() bounds what it holds: an endless ClientHello is decode_error", () => {
  const s = server();
  s.receive(writePlaintextRecord(ContentType.handshake, new Uint8Array([1, 0x01, 0x00, 0x00])));
  const chunk = writePlaintextRecord(ContentType.handshake, new Uint8Array(16_000));
  let alert: string | null = null;
  for (let i = 0; i < 6 && alert === null; i++) {
    s.receive(chunk);
    alert = fatalOf(s.takeEvents());
  }
  assert.equal(alert, "decode_error");
  assert.equal(s.closed, true);
});

Deno.test("acceptTls() runs TLS 1.3 for 1.3 clients under either minimum version", () => {
  for (const minVersion of ["1.2", "1.3"] as const) {
    const p = makePair();
    const s = server(minVersion);
    const q = { client: p.client, server: s, clientEvents: [], serverEvents: [] };
    run(q);
    assert.equal(fatalOf(q.serverEvents), null);
    assert.equal(s.info().version, "TLSv1.3");
    assert.equal(s.handshakeComplete, true);
  }
});
