import assert from "node:assert/strict";
import {
  decodeOid,
  DerError,
  DerReader,
  DerWriter,
  encodeOid,
  Tag,
} from "../../../protocol/x509/der.ts";
import { decodePem, decodePemOne, encodePem, PemError } from "../../../protocol/x509/pem.ts";

const h = (s: string) => Uint8Array.from(s.match(/../g)!.map((x) => parseInt(x, 16)));

Deno.test("DerReader reads a nested sequence and rejects trailing bytes", () => {
  const r = new DerReader(h("3006020101010100"));
  const seq = r.sequence();
  assert.equal(seq.integer(), 1n);
  assert.equal(seq.boolean(), false);
  seq.end();
  r.end();
  assert.throws(() => new DerReader(h("3006020101010100ff")).sequence().end(), DerError);
  const r2 = new DerReader(h("020101ff"));
  r2.integer();
  assert.throws(() => r2.end(), DerError);
});

Deno.test("DerReader rejects indefinite, long-form-short and non-minimal lengths", () => {
  assert.throws(() => new DerReader(h("3080020101 0000".replace(/ /g, ""))).read(), /Indefinite/);
  assert.throws(() => new DerReader(h("02810101")).read(), /Non-minimal/);
  assert.throws(() => new DerReader(h("0282000101")).read(), /Non-minimal/);
  assert.throws(() => new DerReader(h("020201")).read(), /past the end/);
  assert.throws(() => new DerReader(h("02")).read(), /Truncated/);
  assert.throws(() => new DerReader(h("0284ffffffff")).read(), /too large/);
});

Deno.test("DerReader rejects non-minimal INTEGERs and bad BOOLEANs", () => {
  assert.throws(() => new DerReader(h("02020001")).integer(), /Non-minimal INTEGER/);
  assert.throws(() => new DerReader(h("0202ff80")).integer(), /Non-minimal INTEGER/);
  assert.throws(() => new DerReader(h("0200")).integer(), /Empty/);
  assert.equal(new DerReader(h("02020080")).integer(), 128n);
  assert.equal(new DerReader(h("020180")).integer(), -128n);
  assert.throws(() => new DerReader(h("010101")).boolean(), /BOOLEAN/);
  assert.throws(() => new DerReader(h("0102ffff")).boolean(), /BOOLEAN/);
  assert.equal(new DerReader(h("0101ff")).boolean(), true);
});

Deno.test("DerReader enforces BIT STRING padding rules", () => {
  assert.deepEqual(new DerReader(h("03020780")).bitString().unusedBits, 7);
  assert.throws(() => new DerReader(h("03020781")).bitString(), /padding/);
  assert.throws(() => new DerReader(h("030108")).bitString(), /padding/);
  assert.throws(() => new DerReader(h("030101")).bitString(), /padding/);
});

Deno.test("OIDs round-trip and non-minimal arcs are rejected", () => {
  for (
    const oid of ["1.2.840.113549.1.1.11", "2.5.29.37.0", "2.999.3", "0.9.2342.19200300.100.1.25"]
  ) {
    assert.equal(decodeOid(encodeOid(oid)), oid);
  }
  assert.throws(() => decodeOid(h("2a8086")), DerError);
  assert.throws(() => decodeOid(h("2a86")), /Truncated/);
});

Deno.test("time() accepts only the RFC 5280 forms", () => {
  const enc = (tag: number, s: string) =>
    new DerWriter().tlv(tag, new TextEncoder().encode(s)).bytes();
  assert.equal(
    new DerReader(enc(Tag.UTC_TIME, "491231235959Z")).time().toISOString(),
    "2049-12-31T23:59:59.000Z",
  );
  assert.equal(
    new DerReader(enc(Tag.UTC_TIME, "500101000000Z")).time().toISOString(),
    "1950-01-01T00:00:00.000Z",
  );
  assert.equal(
    new DerReader(enc(Tag.GENERALIZED_TIME, "20500101000000Z")).time().toISOString(),
    "2050-01-01T00:00:00.000Z",
  );
  for (
    const [tag, s] of [
      [Tag.UTC_TIME, "4912312359Z"],
      [Tag.UTC_TIME, "491231235959+0000"],
      [Tag.UTC_TIME, "491231235959"],
      [Tag.GENERALIZED_TIME, "20500101000000.5Z"],
      [Tag.GENERALIZED_TIME, "20230229000000Z"],
      [Tag.GENERALIZED_TIME, "20231301000000Z"],
    ] as const
  ) {
    assert.throws(() => new DerReader(enc(tag, s)).time(), DerError, s);
  }
});

Deno.test("DerWriter output reads back, with SET OF sorted", () => {
  const d = new Date(Date.UTC(2030, 0, 2, 3, 4, 5));
  const bytes = new DerWriter().sequence((w) => {
    w.integer(-129n).integer(0).integer(255).oid("2.5.4.3").utf8("héllo").printable("Ab 1")
      .ia5("a@b").time(d).boolean(true).null().octetString(h("0102")).bitString(h("80"), 7)
      .explicit(3, (e) => e.integer(7)).setOf((s) => s.integer(300).integer(2));
  }).bytes();
  const r = new DerReader(bytes).sequence();
  assert.equal(r.integer(), -129n);
  assert.equal(r.integer(), 0n);
  assert.equal(r.integer(), 255n);
  assert.equal(r.oid(), "2.5.4.3");
  assert.equal(r.read().tag, Tag.UTF8_STRING);
  assert.equal(r.read().tag, Tag.PRINTABLE_STRING);
  assert.equal(r.read().tag, Tag.IA5_STRING);
  assert.equal(r.time().getTime(), d.getTime());
  assert.equal(r.boolean(), true);
  r.null();
  assert.deepEqual(r.octetString(), h("0102"));
  assert.equal(r.bitString().unusedBits, 7);
  assert.equal(r.optionalExplicit(3)!.integer(), 7n);
  const set = r.set();
  assert.equal(set.integer(), 2n);
  assert.equal(set.integer(), 300n);
  r.end();
});

Deno.test("DerReader never throws anything but DerError on random bytes", () => {
  let seed = 12345;
  const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 16 & 0xff;
  for (let i = 0; i < 2000; i++) {
    const b = Uint8Array.from({ length: 1 + (i % 40) }, rnd);
    try {
      const r = new DerReader(b);
      while (!r.done) {
        const el = r.read();
        if (el.tag === Tag.OID) decodeOid(el.value);
      }
    } catch (e) {
      assert.ok(e instanceof DerError, String(e));
    }
  }
});

Deno.test("decodePem() reads several blocks and skips explanatory text", () => {
  const text = "hello\n" + encodePem("CERTIFICATE", h("3000")) + "between\r\n" +
    encodePem("PRIVATE KEY", h("0500"));
  const blocks = decodePem(text);
  assert.deepEqual(blocks.map((b) => b.label), ["CERTIFICATE", "PRIVATE KEY"]);
  assert.deepEqual(blocks[1]!.der, h("0500"));
  assert.deepEqual(decodePemOne(text, "PRIVATE KEY").der, h("0500"));
  assert.throws(() => decodePemOne(text, "RSA PRIVATE KEY"), PemError);
});

Deno.test("decodePem() rejects garbage, headers, bad labels and missing END", () => {
  const good = encodePem("CERTIFICATE", h("30820100" + "00".repeat(256)));
  const lines = good.split("\n");
  assert.throws(
    () => decodePem([lines[0], "!!!!", ...lines.slice(1)].join("\n")),
    PemError,
  );
  assert.throws(
    () => decodePem([lines[0], "Proc-Type: 4,ENCRYPTED", ...lines.slice(1)].join("\n")),
    /Encrypted/,
  );
  assert.throws(() => decodePem(good.replace("END CERTIFICATE", "END X")), /does not match/);
  assert.throws(() => decodePem(lines.slice(0, -2).join("\n")), /no END/);
  assert.throws(() => decodePem(good.replace("MIIB", "MIB")), /base64/);
});
