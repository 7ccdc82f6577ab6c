import assert from "node:assert/strict";
import { defaultProvider as provider } from "../../../protocol/crypto/mod.ts";
import { trafficKeys } from "../../../protocol/tls/key_schedule.ts";
import {
  RecordDeframer,
  RecordProtection,
  type TlsRecord,
  writePlaintextRecord,
} from "../../../protocol/tls/record_layer.ts";
import { ContentType, suiteByName } from "../../../protocol/tls/wire.ts";
import { alertOf, failingProvider, hex, toHex } from "./_helpers.ts";
import { RFC8448 } from "./_rfc8448.ts";

const suite = suiteByName("TLS_AES_128_GCM_SHA256");

function drain(d: RecordDeframer): TlsRecord[] {
  const out: TlsRecord[] = [];
  for (let r = d.next(); r !== null; r = d.next()) {
    out.push({ type: r.type, header: r.header.slice(), fragment: r.fragment.slice() });
  }
  return out;
}

function pair(sequenceLimit?: number): [RecordProtection, RecordProtection] {
  const keys = trafficKeys(provider, suite, {
    stage: "application",
    secret: hex(RFC8448.serverApplicationTraffic),
  });
  return [
    new RecordProtection(provider, suite, keys, sequenceLimit),
    new RecordProtection(provider, suite, keys, sequenceLimit),
  ];
}

Deno.test("RecordDeframer joins records split across reads and splits coalesced ones", () => {
  const a = writePlaintextRecord(ContentType.handshake, new Uint8Array([1, 2, 3]));
  const b = writePlaintextRecord(ContentType.alert, new Uint8Array([2, 40]));
  const stream = new Uint8Array([...a, ...b, ...a]);
  const d = new RecordDeframer();
  const seen: TlsRecord[] = [];
  for (const byte of stream) {
    d.push(new Uint8Array([byte]));
    seen.push(...drain(d));
  }
  assert.deepEqual(seen.map((r) => r.type), [22, 21, 22]);
  const d2 = new RecordDeframer();
  d2.push(stream);
  assert.deepEqual(drain(d2).map((r) => Array.from(r.fragment)), [[1, 2, 3], [2, 40], [1, 2, 3]]);
  assert.equal(d2.buffered, 0);
});

Deno.test("RecordDeframer refuses a record longer than 2^14+256 from its header alone", () => {
  const d = new RecordDeframer();
  d.push(new Uint8Array([23, 3, 3, 0x41, 0x01]));
  assert.equal(alertOf(() => d.next()), "record_overflow");
});

Deno.test("RecordDeframer refuses an unknown content type with unexpected_message", () => {
  const d = new RecordDeframer();
  d.push(new Uint8Array([0x80, 3, 3, 0, 1, 0]));
  assert.equal(alertOf(() => d.next()), "unexpected_message");
});

Deno.test("RecordProtection round-trips a handshake message under the RFC 8448 application keys", () => {
  const [, opener] = pair();
  const seal = pair()[0];
  const content = hex("0400001d000000000000000000000000");
  const record = seal.seal(ContentType.handshake, content);
  const d = new RecordDeframer();
  d.push(record);
  const opened = opener.open(d.next()!);
  assert.equal(opened.type, ContentType.handshake);
  assert.equal(toHex(opened.content), toHex(content));
});

Deno.test("RecordProtection round-trips with padding and per-record nonces", () => {
  const [w, r] = pair();
  const d = new RecordDeframer();
  const first = w.seal(ContentType.application_data, new Uint8Array([1, 2]), 10);
  const second = w.seal(ContentType.application_data, new Uint8Array([1, 2]), 10);
  assert.notDeepEqual(first, second);
  d.push(first);
  d.push(second);
  for (let i = 0; i < 2; i++) {
    const o = r.open(d.next()!);
    assert.equal(o.type, ContentType.application_data);
    assert.deepEqual(Array.from(o.content), [1, 2]);
  }
  assert.equal(r.sequence, 2);
});

Deno.test("RecordProtection.open() reports a flipped bit as bad_record_mac", () => {
  const [w, r] = pair();
  const rec = w.seal(ContentType.application_data, new Uint8Array([5]));
  rec[rec.length - 1]! ^= 1;
  const d = new RecordDeframer();
  d.push(rec);
  assert.equal(alertOf(() => r.open(d.next()!)), "bad_record_mac");
});

Deno.test("RecordProtection.open() refuses an all-zero inner plaintext with unexpected_message", () => {
  const [w, r] = pair();
  // A content type of 0 followed by padding: the inner plaintext is all zeros.
  const rec = w.seal(0 as ContentType, new Uint8Array(0), 3);
  const d = new RecordDeframer();
  d.push(rec);
  assert.equal(alertOf(() => r.open(d.next()!)), "unexpected_message");
});

Deno.test("RecordProtection refuses to reuse a sequence number at its limit", () => {
  const [w] = pair(2);
  w.seal(ContentType.application_data, new Uint8Array([1]));
  w.seal(ContentType.application_data, new Uint8Array([1]));
  assert.equal(
    alertOf(() => w.seal(ContentType.application_data, new Uint8Array([1]))),
    "internal_error",
  );
});

Deno.test("RecordProtection refuses application data under handshake keys", () => {
  const keys = trafficKeys(provider, suite, {
    stage: "handshake",
    secret: hex(RFC8448.serverHandshakeTraffic),
  });
  const w = new RecordProtection(provider, suite, keys);
  assert.equal(
    alertOf(() => w.seal(ContentType.application_data, new Uint8Array([1]))),
    "internal_error",
  );
});

Deno.test("sealInto() writes the same record as seal() for every suite and provider", async () => {
  const { nativeProvider, nobleProvider } = await import("../../../protocol/crypto/mod.ts");
  for (const name of ["TLS_AES_128_GCM_SHA256", "TLS_CHACHA20_POLY1305_SHA256"] as const) {
    const s = suiteByName(name);
    for (const p of [nativeProvider, nobleProvider]) {
      const keys = trafficKeys(p, s, { stage: "application", secret: p.randomBytes(s.hashLength) });
      const a = new RecordProtection(p, s, keys);
      const b = new RecordProtection(p, s, keys);
      for (const n of [0, 1, 63, 64, 65, 1000, 16384]) {
        const content = p.randomBytes(n);
        const expected = a.seal(ContentType.application_data, content);
        const out = new Uint8Array(b.sealedLength(n) + 7);
        const written = b.sealInto(ContentType.application_data, content, out, 3);
        assert.equal(written, expected.length, `${name} ${p.name} ${n}`);
        assert.equal(toHex(out.subarray(3, 3 + written)), toHex(expected), `${name} ${p.name}`);
        assert.deepEqual([...out.subarray(0, 3), ...out.subarray(3 + written)], Array(7).fill(0));
      }
    }
  }
});

Deno.test("a seal whose AEAD throws takes no sequence number: the alert after it is readable", () => {
  const keys = trafficKeys(provider, suite, {
    stage: "application",
    secret: hex(RFC8448.serverApplicationTraffic),
  });
  const failures = { left: 0 };
  const w = new RecordProtection(failingProvider(provider, failures), suite, keys);
  const r = new RecordProtection(provider, suite, keys);
  const first = w.seal(ContentType.application_data, new Uint8Array([1]));
  failures.left = 2;
  assert.throws(() => w.seal(ContentType.application_data, new Uint8Array(100)), /AEAD failure/);
  const out = new Uint8Array(w.sealedLength(100));
  assert.throws(
    () => w.sealInto(ContentType.application_data, new Uint8Array(100), out, 0),
    /AEAD failure/,
  );
  assert.equal(w.sequence, 1);
  const alert = w.seal(ContentType.alert, new Uint8Array([2, 80]));
  const d = new RecordDeframer();
  d.push(first);
  d.push(alert);
  const [a, b] = drain(d);
  assert.deepEqual(Array.from(r.open(a!).content), [1]);
  const opened = r.open(b!);
  assert.equal(opened.type, ContentType.alert);
  assert.deepEqual(Array.from(opened.content), [2, 80]);
});
