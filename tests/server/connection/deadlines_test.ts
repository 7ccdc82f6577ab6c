import assert from "node:assert/strict";
import { Deadlines } from "../../../server/connection/deadlines.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("Deadlines: each fires once, not before its time; a cancelled one never", async () => {
  const deadlines = new Deadlines();
  const fired: string[] = [];
  const start = performance.now();
  const at: Record<string, number> = {};
  const mark = (name: string) => () => {
    fired.push(name);
    at[name] = performance.now() - start;
  };
  deadlines.add(60, mark("slow"));
  const dropped = deadlines.add(20, mark("dropped"));
  deadlines.add(20, mark("fast"));
  deadlines.cancel(dropped);
  deadlines.cancel(dropped);
  assert.equal(deadlines.size, 2);
  for (let i = 0; i < 100 && fired.length < 2; i++) await sleep(20);
  assert.deepEqual(fired, ["fast", "slow"]);
  assert.ok(at.fast! >= 20 && at.slow! >= 60, JSON.stringify(at));
  assert.equal(deadlines.size, 0, "its timer stops with nothing pending (the sanitizer checks)");
});

Deno.test("Deadlines: a shorter deadline added later still fires first; a throwing one spares the rest", async () => {
  const deadlines = new Deadlines();
  const fired: string[] = [];
  deadlines.add(400, () => fired.push("long"));
  deadlines.add(10, () => {
    fired.push("throws");
    throw new Error("boom");
  });
  deadlines.add(10, () => fired.push("short"));
  for (let i = 0; i < 100 && fired.length < 2; i++) await sleep(10);
  assert.deepEqual(fired.slice(0, 2).sort(), ["short", "throws"]);
  assert.equal(deadlines.size, 1);
  for (let i = 0; i < 100 && fired.length < 3; i++) await sleep(20);
  assert.deepEqual(fired[2], "long");
  assert.equal(deadlines.size, 0);
});
