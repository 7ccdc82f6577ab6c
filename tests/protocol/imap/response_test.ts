import assert from "node:assert/strict";
import { concatBytes } from "../../../protocol/bytes.ts";
import {
  LineBuilder,
  mappedPart,
  NUL_MAP_PIECE,
  NulMappedLiteral,
  Output,
  withoutNul,
} from "../../../protocol/imap/response.ts";

const dec = new TextDecoder();

Deno.test("LineBuilder writes numbers as String() does, across chunk boundaries", () => {
  const numbers = [0, 1, 9, 10, 99, 100, 4096, 65535, 2 ** 31, 2 ** 32 + 7, 999_999_999_999_999];
  numbers.push(1e15, 2 ** 53 - 1);
  for (let i = 0; i < 50_000; i++) numbers.push(Math.floor(Math.random() * 10 ** (i % 16)));
  const out = new Output();
  const w = new LineBuilder(out);
  let expected = "";
  for (const n of numbers) {
    w.reserve(25);
    w.ascii(" ");
    w.number(n);
    expected += " " + n;
  }
  w.flush();
  assert.equal(dec.decode(out.take()), expected);
});

Deno.test("LineBuilder keeps its bytes in order with text written to the output between flushes", () => {
  const out = new Output();
  const w = new LineBuilder(out);
  out.line("* first");
  w.reserve(200_000);
  w.ascii("* second ");
  w.bytes(new TextEncoder().encode("(\\Seen $Ä)"));
  w.ascii("\r\n");
  w.flush();
  out.line("* third");
  w.reserve(3);
  w.ascii("* 4");
  w.flush();
  w.flush();
  assert.equal(dec.decode(out.take()), "* first\r\n* second (\\Seen $Ä)\r\n* third\r\n* 4");
});

Deno.test("LineBuilder output of many chunks comes out whole from takeParts()", () => {
  const out = new Output();
  const w = new LineBuilder(out);
  let expected = "";
  for (let i = 1; i <= 40_000; i++) {
    w.reserve(40);
    w.ascii("* ");
    w.number(i);
    w.ascii(" FETCH (UID ");
    w.number(i * 3);
    w.ascii(")\r\n");
    expected += `* ${i} FETCH (UID ${i * 3})\r\n`;
  }
  w.flush();
  assert.equal(dec.decode(new Uint8Array(out.takeParts().flatMap((p) => [...p]))), expected);
});

/** 3.5 pieces of "A", with NUL at the given offsets. */
function bodyWithNul(...at: number[]): Uint8Array {
  const data = new Uint8Array(3.5 * NUL_MAP_PIECE).fill(0x41);
  for (const i of at) data[i] = 0;
  return data;
}

Deno.test("a NulMappedLiteral leaves takeParts() in unmapped pieces that mappedPart() maps once", () => {
  const nulAt = [0, NUL_MAP_PIECE - 1, 2 * NUL_MAP_PIECE + 5, 3.5 * NUL_MAP_PIECE - 1];
  const data = bodyWithNul(...nulAt);
  const out = new Output();
  out.text("* 1 FETCH (BODY[] ");
  out.value(new NulMappedLiteral(data));
  out.line(")");
  const parts = out.takeParts();
  // The header run, four pieces (the last one is half a piece, still passed through), the tail.
  assert.deepEqual(parts.map((p) => p.length), [
    "* 1 FETCH (BODY[] ".length + `{${data.length}}\r\n`.length,
    NUL_MAP_PIECE,
    NUL_MAP_PIECE,
    NUL_MAP_PIECE,
    NUL_MAP_PIECE / 2,
    3,
  ]);
  // Passed through unmapped: views of the stored octets, not copies.
  assert.equal(parts[1]!.buffer, data.buffer);
  assert.equal(parts[1]![0], 0);
  const sent = parts.map(mappedPart);
  const literal = concatBytes(sent.slice(1, 5));
  assert.equal(literal.indexOf(0), -1);
  for (const i of nulAt) assert.equal(literal[i], 0x80);
  assert.equal(literal.filter((b) => b === 0x80).length, nulAt.length);
  // A piece free of NUL is sent as it is; each piece is mapped once.
  assert.equal(sent[2], parts[2]);
  assert.equal(mappedPart(parts[1]!), parts[1], "mapped already: returned as it is");
  assert.deepEqual([...data.keys()].filter((i) => data[i] === 0), nulAt, "stored octets intact");
});

Deno.test("take() maps a NulMappedLiteral, and a short one is mapped when joined", () => {
  const data = bodyWithNul(7);
  const whole = new Output();
  whole.value(["A ", new NulMappedLiteral(data)]);
  const taken = whole.take();
  assert.equal(taken.indexOf(0), -1);
  assert.equal(taken.length, `A {${data.length}}\r\n`.length + data.length);
  const short = new Output();
  const small = new Uint8Array([0x41, 0, 0x42]);
  short.value(["B ", new NulMappedLiteral(small), " C"]);
  const [joined, ...rest] = short.takeParts();
  assert.equal(rest.length, 0);
  assert.deepEqual(
    [...joined!],
    [...new TextEncoder().encode("B {3}\r\nA_B C")].map((b) => b === 0x5f ? 0x80 : b),
  );
  assert.equal(small[1], 0, "stored octets intact");
  assert.equal(withoutNul(small.subarray(0, 1)).buffer, small.buffer, "no NUL: no copy");
});
