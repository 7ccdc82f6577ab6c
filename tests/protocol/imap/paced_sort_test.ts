import assert from "node:assert/strict";
import { pacedSort } from "../../../protocol/imap/paced_sort.ts";
import { Pacer } from "../../../protocol/event_loop.ts";

Deno.test("pacedSort() orders like a stable native sort and yields on long inputs", async () => {
  let seed = 7;
  const random = () => (seed = (seed * 48271) % 2147483647) / 2147483647;
  for (const n of [0, 1, 2, 4095, 4096, 4097, 3 * 4096 + 7, 20_000]) {
    const items = Array.from({ length: n }, (_, i) => ({ key: Math.floor(random() * 50), i }));
    const cmp = (a: { key: number }, b: { key: number }) => a.key - b.key;
    const expected = [...items].sort(cmp);
    const pacer = new Pacer(0);
    await pacedSort(items, cmp, pacer);
    assert.deepEqual(items, expected, `n = ${n}`);
    if (n > 4096) assert.ok(pacer.yields > 0, `n = ${n} yields`);
    else assert.equal(pacer.yields, 0);
  }
});
