import assert from "node:assert/strict";
import { SlotSet } from "../../server/slot_set.ts";

Deno.test("SlotSet: add, delete by slot, size, and items as a copy", () => {
  const set = new SlotSet<string>();
  const a = set.add("a");
  const b = set.add("b");
  const c = set.add("c");
  const a2 = set.add("a");
  assert.equal(set.size, 4);
  assert.equal(set.delete(b), true);
  assert.equal(set.delete(b), false, "a slot is removed once");
  assert.deepEqual(set.items().sort(), ["a", "a", "c"]);
  assert.equal(set.delete(a), true);
  assert.deepEqual(set.items().sort(), ["a", "c"], "the other entry of the same item stays");
  const other = new SlotSet<string>();
  other.add("x");
  assert.equal(other.delete(c), false, "a slot of another set");
  assert.equal(set.delete(c), true);
  assert.equal(set.delete(a2), true);
  assert.equal(set.size, 0);
  assert.deepEqual([...set], []);
});

Deno.test("SlotSet: walking it while entries come and go sees every entry it started with", () => {
  const set = new SlotSet<number>();
  const slots = Array.from({ length: 10 }, (_, i) => set.add(i));
  const seen: number[] = [];
  for (const n of set) {
    seen.push(n);
    set.delete(slots[n]!);
    if (n === 0) set.add(100);
  }
  assert.deepEqual(seen.sort((x, y) => x - y), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.deepEqual(set.items(), [100]);
});

Deno.test("SlotSet: random adds and deletes agree with a plain list", () => {
  let seed = 7;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const set = new SlotSet<number>();
  const live: { slot: ReturnType<typeof set.add>; value: number }[] = [];
  for (let i = 0; i < 5000; i++) {
    if (live.length === 0 || random() < 0.55) {
      live.push({ slot: set.add(i), value: i });
    } else {
      const at = Math.floor(random() * live.length);
      const [gone] = live.splice(at, 1);
      assert.equal(set.delete(gone!.slot), true);
      assert.equal(gone!.slot.index, -1);
    }
    assert.equal(set.size, live.length);
  }
  assert.deepEqual(
    set.items().sort((x, y) => x - y),
    live.map((e) => e.value).sort((x, y) => x - y),
  );
  for (const { slot } of live) assert.equal(set.slots()[slot.index], slot);
});
