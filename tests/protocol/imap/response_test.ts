import assert from "node:assert/strict";
import { LineBuilder, Output } from "../../../protocol/imap/response.ts";

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
