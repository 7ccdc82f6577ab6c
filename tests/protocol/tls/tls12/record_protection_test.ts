import assert from "node:assert/strict";
import { TlsAlert } from "../../../../protocol/tls/alert.ts";
import { RecordProtection12, sealLimit } from "../../../../protocol/tls/tls12/record_protection.ts";
import { type CipherSuite12Name, suite12ByName } from "../../../../protocol/tls/tls12/wire12.ts";
import { ContentType } from "../../../../protocol/tls/wire.ts";
import { failingProvider } from "../_helpers.ts";
import { provider } from "../_pair.ts";

function pair(name: CipherSuite12Name): [RecordProtection12, RecordProtection12] {
  const s = suite12ByName(name);
  const key = new Uint8Array(s.keyLength).fill(7);
  const iv = new Uint8Array(s.fixedIvLength).fill(9);
  return [
    new RecordProtection12(provider, s, key, iv),
    new RecordProtection12(provider, s, key, iv),
  ];
}

function record(bytes: Uint8Array) {
  return {
    type: bytes[0] as ContentType,
    header: bytes.subarray(0, 5),
    fragment: bytes.subarray(5),
  };
}

Deno.test("GCM records carry the sequence number as their explicit nonce (RFC 5288)", () => {
  const [w, r] = pair("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256");
  for (let seq = 0; seq < 3; seq++) {
    const rec = w.seal(ContentType.application_data, new Uint8Array([1, 2, 3]));
    assert.equal(rec.length, 5 + 8 + 3 + 16);
    assert.deepEqual(rec.subarray(5, 13), new Uint8Array([0, 0, 0, 0, 0, 0, 0, seq]));
    assert.deepEqual(r.open(record(rec)).content, new Uint8Array([1, 2, 3]));
  }
});

Deno.test("ChaCha20-Poly1305 records have no explicit nonce (RFC 7905)", () => {
  const [w, r] = pair("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256");
  const a = w.seal(ContentType.application_data, new Uint8Array(0));
  const b = w.seal(ContentType.application_data, new Uint8Array(0));
  assert.equal(a.length, 5 + 16);
  assert.notDeepEqual(a.subarray(5), b.subarray(5));
  assert.equal(r.open(record(a)).content.length, 0);
  assert.equal(r.open(record(b)).content.length, 0);
});

for (
  const name of [
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
  ] as const
) {
  Deno.test(`${name}: the header is authenticated, replays and reorders fail`, () => {
    const [w, r] = pair(name);
    const a = w.seal(ContentType.application_data, new Uint8Array([5]));
    const b = w.seal(ContentType.application_data, new Uint8Array([6]));
    const retyped = a.slice();
    retyped[0] = ContentType.handshake;
    const alertOf = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return e instanceof TlsAlert ? e.alert : String(e);
      }
      return null;
    };
    assert.equal(alertOf(() => r.open(record(retyped))), "bad_record_mac");
    const [, r2] = pair(name);
    assert.equal(alertOf(() => r2.open(record(b))), "bad_record_mac");
    const [, r3] = pair(name);
    assert.equal(r3.open(record(a)).content[0], 5);
    assert.equal(alertOf(() => r3.open(record(a))), "bad_record_mac");
  });
}

Deno.test("a record of 2^14 bytes passes; a longer plaintext is record_overflow", () => {
  const [w, r] = pair("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256");
  const max = w.seal(ContentType.application_data, new Uint8Array(2 ** 14));
  assert.equal(r.open(record(max)).content.length, 2 ** 14);
  assert.throws(
    () => w.seal(ContentType.application_data, new Uint8Array(2 ** 14 + 1)),
    RangeError,
  );
  const long = new Uint8Array(5 + 8 + 2 ** 14 + 1 + 16);
  long.set([ContentType.application_data, 3, 3, (long.length - 5) >> 8, (long.length - 5) & 0xff]);
  assert.throws(
    () => r.open(record(long)),
    (e: unknown) => e instanceof TlsAlert && e.alert === "record_overflow",
  );
  const short = new Uint8Array([23, 3, 3, 0, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.throws(
    () => r.open(record(short)),
    (e: unknown) => e instanceof TlsAlert && e.alert === "bad_record_mac",
  );
});

Deno.test("the sequence number is refused, never wrapped, at its limit", () => {
  const s = suite12ByName("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256");
  const w = new RecordProtection12(provider, s, new Uint8Array(16), new Uint8Array(4), 2);
  w.seal(ContentType.application_data, new Uint8Array(1));
  w.seal(ContentType.application_data, new Uint8Array(1));
  assert.throws(
    () => w.seal(ContentType.application_data, new Uint8Array(1)),
    (e: unknown) => e instanceof TlsAlert && e.alert === "internal_error",
  );
});

Deno.test("AES-GCM keys seal at most 2^24.5 records; ChaCha20 keys are bounded by the sequence only", () => {
  assert.equal(sealLimit(suite12ByName("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256")), 23_726_566);
  assert.equal(sealLimit(suite12ByName("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384")), 23_726_566);
  assert.equal(
    sealLimit(suite12ByName("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256")),
    Number.MAX_SAFE_INTEGER,
  );
});

Deno.test("a seal whose AEAD throws takes no sequence number: the alert after it is readable", () => {
  for (
    const name of [
      "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
      "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    ] as const
  ) {
    const s = suite12ByName(name);
    const key = new Uint8Array(s.keyLength).fill(7);
    const iv = new Uint8Array(s.fixedIvLength).fill(9);
    const failures = { left: 0 };
    const w = new RecordProtection12(failingProvider(provider, failures), s, key, iv);
    const r = new RecordProtection12(provider, s, key, iv);
    r.open(record(w.seal(ContentType.application_data, new Uint8Array([1]))));
    failures.left = 1;
    assert.throws(() => w.seal(ContentType.application_data, new Uint8Array(50)), /AEAD failure/);
    assert.equal(w.sequence, 1, name);
    const opened = r.open(record(w.seal(ContentType.alert, new Uint8Array([2, 80]))));
    assert.equal(opened.type, ContentType.alert, name);
    assert.deepEqual(Array.from(opened.content), [2, 80], name);
  }
});
