import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  decodeBase64,
  decodeQuotedPrintable,
  decodeTransfer,
} from "../../../../protocol/imap/mime/mod.ts";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const str = (b: Uint8Array): string => new TextDecoder().decode(b);

Deno.test("decodeBase64() round-trips random data with any line length", () => {
  let seed = 7;
  for (let n = 0; n < 200; n++) {
    const data = new Uint8Array(n * 3 + (n % 3));
    for (let i = 0; i < data.length; i++) data[i] = (seed = (seed * 48271) % 2147483647) & 0xff;
    const b64 = Buffer.from(data).toString("base64");
    const width = 4 + (n % 80);
    const folded = b64.match(new RegExp(`.{1,${width}}`, "g"))?.join("\r\n") ?? "";
    assert.deepEqual(decodeBase64(enc(folded)), data);
  }
});

Deno.test("decodeBase64() skips whitespace and garbage and stops at padding", () => {
  assert.equal(str(decodeBase64(enc("aGVs bG8=\r\n"))), "hello");
  assert.equal(str(decodeBase64(enc(" a G V s\tb G 8 !!"))), "hello");
  assert.equal(str(decodeBase64(enc("aGk=garbage after pad"))), "hi");
  assert.equal(str(decodeBase64(enc("aGk"))), "hi");
  assert.deepEqual(decodeBase64(enc("")), new Uint8Array());
  assert.deepEqual(decodeBase64(enc("====")), new Uint8Array());
  assert.deepEqual(decodeBase64(enc("A")), new Uint8Array());
});

Deno.test("decodeQuotedPrintable() decodes escapes, soft breaks and trailing whitespace", () => {
  const cases: [string, string][] = [
    ["Gr=C3=BC=C3=9Fe", "Grüße"],
    ["soft=\r\nbreak", "softbreak"],
    ["soft=\nbreak with LF", "softbreak with LF"],
    ["soft= \t\r\nbreak after padding", "softbreak after padding"],
    ["trailing   \r\nspace", "trailing\r\nspace"],
    ["kept=20\r\n", "kept \r\n"],
    ["lower =c3=a9", "lower é"],
    ["bad =ZZ escape", "bad =ZZ escape"],
    ["lone = sign", "lone = sign"],
    ["ends with =", "ends with "],
    ["a=3D=3Db", "a==b"],
  ];
  for (const [input, want] of cases) assert.equal(str(decodeQuotedPrintable(enc(input))), want);
});

Deno.test("decodeTransfer() passes identity encodings through without copying", () => {
  const body = enc("abc");
  for (const e of [null, "7bit", "8BIT", " binary ", ""]) {
    const r = decodeTransfer(body, e);
    assert.ok(r.ok);
    assert.equal(r.bytes, body);
  }
});

Deno.test("decodeTransfer() signals an unknown encoding for UNKNOWN-CTE", () => {
  assert.deepEqual(decodeTransfer(enc("x"), "x-uuencode"), {
    ok: false,
    reason: "unknown-cte",
    encoding: "x-uuencode",
  });
  const b = decodeTransfer(enc("aGk="), "Base64");
  assert.ok(b.ok);
  assert.equal(str(b.bytes), "hi");
  const q = decodeTransfer(enc("h=69"), "QUOTED-PRINTABLE");
  assert.ok(q.ok);
  assert.equal(str(q.bytes), "hi");
});

Deno.test("decoders never throw on random bytes", () => {
  let seed = 99;
  for (let n = 0; n < 300; n++) {
    const data = new Uint8Array(n);
    for (let i = 0; i < n; i++) data[i] = (seed = (seed * 48271) % 2147483647) & 0xff;
    decodeBase64(data);
    const qp = decodeQuotedPrintable(data);
    assert.ok(qp.length <= data.length);
  }
});
