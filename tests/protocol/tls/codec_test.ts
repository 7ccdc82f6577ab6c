import assert from "node:assert/strict";
import { Reader, Writer } from "../../../protocol/tls/codec.ts";
import { alertOf } from "./_helpers.ts";

Deno.test("Writer.lengthPrefixed() back-patches nested lengths", () => {
  const w = new Writer(1);
  w.u8(1).lengthPrefixed(2, (w) => {
    w.u16(0xabcd).lengthPrefixed(1, (w) => w.bytes(new Uint8Array([9, 9, 9])));
  }).u24(0x010203);
  assert.deepEqual(
    Array.from(w.finish()),
    [1, 0, 6, 0xab, 0xcd, 3, 9, 9, 9, 1, 2, 3],
  );
});

Deno.test("Writer.lengthPrefixed() refuses a body longer than its prefix can say", () => {
  const w = new Writer();
  assert.throws(() => w.lengthPrefixed(1, (w) => w.bytes(new Uint8Array(256))), RangeError);
});

Deno.test("Reader reads integers, vectors and nested readers", () => {
  const r = new Reader(new Uint8Array([1, 0, 2, 0, 0, 3, 2, 7, 8, 0, 1, 5]));
  assert.equal(r.u8(), 1);
  assert.equal(r.u16(), 2);
  assert.equal(r.u24(), 3);
  assert.deepEqual(Array.from(r.vec(1)), [7, 8]);
  const sub = r.sub(2);
  assert.equal(sub.u8(), 5);
  sub.end();
  r.end();
});

Deno.test("Reader rejects truncation, trailing data and out-of-range vectors with decode_error", () => {
  assert.equal(alertOf(() => new Reader(new Uint8Array([1])).u16()), "decode_error");
  assert.equal(alertOf(() => new Reader(new Uint8Array([3, 1])).vec(1)), "decode_error");
  assert.equal(alertOf(() => new Reader(new Uint8Array([0])).vec(1, 1)), "decode_error");
  assert.equal(
    alertOf(() => new Reader(new Uint8Array([3, 1, 2, 3])).vec(1, 0, 2)),
    "decode_error",
  );
  assert.equal(alertOf(() => new Reader(new Uint8Array([1, 2])).end()), "decode_error");
});

Deno.test("Reader.take() returns views, not copies", () => {
  const bytes = new Uint8Array([1, 2, 3]);
  const view = new Reader(bytes).take(2);
  bytes[0] = 9;
  assert.equal(view[0], 9);
});
