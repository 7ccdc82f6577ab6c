import assert from "node:assert/strict";
import type { KeyExchangeGroup } from "../../../protocol/crypto/provider.ts";
import type { CipherSuiteName } from "../../../protocol/tls/wire.ts";
import { dec, enc, fatalOf, keyFixture, kinds, makePair, run } from "./_pair.ts";

const SUITES: CipherSuiteName[] = [
  "TLS_AES_128_GCM_SHA256",
  "TLS_AES_256_GCM_SHA384",
  "TLS_CHACHA20_POLY1305_SHA256",
];
const GROUPS: KeyExchangeGroup[] = ["x25519", "secp256r1", "secp384r1"];

for (const suite of SUITES) {
  for (const group of GROUPS) {
    Deno.test(`a handshake with ${suite} over ${group} completes and data flows both ways`, () => {
      const p = makePair({}, { cipherSuites: [suite], groups: [group] });
      run(p);
      assert.deepEqual(kinds(p.serverEvents), ["handshakeComplete"]);
      assert.deepEqual(kinds(p.clientEvents), ["handshakeComplete"]);
      assert.equal(p.server.info().cipherSuite, suite);
      assert.equal(p.server.info().group, group);
      assert.equal(p.server.info().helloRetry, false);
      p.client.send(enc("a1 NOOP\r\n"));
      p.server.send(enc("* OK ready\r\n"));
      run(p);
      assert.equal(dec(p.server.takePlaintext()), "a1 NOOP\r\n");
      assert.equal(dec(p.client.takePlaintext()), "* OK ready\r\n");
    });
  }
}

for (const kind of ["P-384", "ed25519", "rsa2048"] as const) {
  Deno.test(`a server with a ${kind} key signs its CertificateVerify acceptably`, () => {
    const p = makePair({}, {}, keyFixture(kind));
    run(p);
    assert.deepEqual(kinds(p.clientEvents), ["handshakeComplete"]);
    assert.deepEqual(kinds(p.serverEvents), ["handshakeComplete"]);
  });
}

Deno.test("the server selects imap by ALPN and reports SNI", () => {
  const p = makePair({ alpnProtocols: ["imap"] }, {
    alpnProtocols: ["h2", "imap"],
    serverName: "mail.example.org",
  });
  run(p);
  assert.equal(p.server.info().alpn, "imap");
  assert.equal(p.client.info().alpn, "imap");
  assert.equal(p.server.info().sni, "mail.example.org");
});

Deno.test("the server refuses an ALPN list without overlap with no_application_protocol", () => {
  const p = makePair({ alpnProtocols: ["imap"] }, { alpnProtocols: ["h2"] });
  run(p);
  assert.equal(fatalOf(p.serverEvents), "no_application_protocol");
  assert.equal(fatalOf(p.clientEvents), "no_application_protocol (received)");
});

Deno.test("the server ignores ALPN when none is configured", () => {
  const p = makePair({}, { alpnProtocols: ["h2"] });
  run(p);
  assert.equal(p.server.info().alpn, null);
  assert.deepEqual(kinds(p.clientEvents), ["handshakeComplete"]);
});

Deno.test("a client without a share for a usable group gets a HelloRetryRequest", () => {
  const p = makePair({}, { groups: ["secp384r1", "x25519"], keyShares: [] });
  run(p);
  assert.deepEqual(kinds(p.serverEvents), ["handshakeComplete"]);
  assert.equal(p.server.info().helloRetry, true);
  assert.equal(p.server.info().group, "x25519");
  assert.equal(p.client.info().helloRetry, true);
});

Deno.test("a server limited to secp384r1 retries a client that only sent an x25519 share", () => {
  const p = makePair({ groups: ["secp384r1"] }, { groups: ["x25519", "secp384r1"] });
  run(p);
  assert.deepEqual(kinds(p.clientEvents), ["handshakeComplete"]);
  assert.equal(p.server.info().group, "secp384r1");
  assert.equal(p.server.info().helloRetry, true);
});

Deno.test("a share for a later-preferred group is used without a retry", () => {
  const p = makePair({}, { groups: ["x25519", "secp384r1"], keyShares: ["secp384r1"] });
  run(p);
  assert.equal(p.server.info().group, "secp384r1");
  assert.equal(p.server.info().helloRetry, false);
});

Deno.test("handshakes complete when every byte arrives on its own", () => {
  const p = makePair({}, { groups: ["secp256r1"] });
  run(p, { chunk: 1 });
  assert.deepEqual(kinds(p.serverEvents), ["handshakeComplete"]);
  p.client.send(enc("x".repeat(40000)));
  run(p, { chunk: 1 });
  assert.equal(p.server.takePlaintext().length, 40000);
});

Deno.test("large writes split into records of at most 2^14 bytes", () => {
  const p = makePair();
  run(p);
  p.server.send(new Uint8Array(50000).fill(7));
  const out = p.server.takeOutgoing();
  // 4 records: 3 full and one of 50000 - 3 * 16384 bytes, each with 5 + 1 + 16 overhead.
  assert.equal(out.length, 50000 + 4 * 22);
  p.client.receive(out);
  assert.equal(p.client.takePlaintext().length, 50000);
});

Deno.test("a session without legacy_session_id gets no change_cipher_spec", () => {
  const p = makePair({}, { legacySessionId: new Uint8Array(0) });
  p.server.receive(p.client.takeOutgoing());
  const flight = p.server.takeOutgoing();
  // ServerHello record, then straight to application_data records.
  const sh = 5 + ((flight[3]! << 8) | flight[4]!);
  assert.equal(flight[sh], 23);
  p.client.receive(flight);
  run(p);
  assert.deepEqual(kinds(p.serverEvents), ["handshakeComplete"]);
});

Deno.test("a session with legacy_session_id gets one change_cipher_spec after ServerHello", () => {
  const p = makePair();
  p.server.receive(p.client.takeOutgoing());
  const flight = p.server.takeOutgoing();
  const sh = 5 + ((flight[3]! << 8) | flight[4]!);
  assert.deepEqual(Array.from(flight.subarray(sh, sh + 6)), [20, 3, 3, 0, 1, 1]);
});
