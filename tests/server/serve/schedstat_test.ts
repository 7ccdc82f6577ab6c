import assert from "node:assert/strict";
import { schedstat } from "../../../server/serve/_schedstat.ts";

Deno.test({
  name: "schedstat: the thread's CPU time grows with work and matches the file's text",
  ignore: Deno.build.os !== "linux",
  fn() {
    const before = schedstat();
    assert.ok(before !== null);
    const start = performance.now();
    let x = 0;
    while (performance.now() - start < 30) x += Math.sqrt(x + 1);
    const after = schedstat()!;
    const text = Deno.readTextFileSync("/proc/thread-self/schedstat").split(" ");
    const third = schedstat()!;
    assert.ok(after.cpuMs - before.cpuMs >= 10, `${after.cpuMs - before.cpuMs} ms of CPU`);
    assert.ok(after.waitMs >= before.waitMs);
    // Read again from the start each time: the same figures as a fresh read, give or take the
    // time between the reads.
    assert.ok(Math.abs(Number(text[0]) / 1e6 - third.cpuMs) < 5);
    assert.ok(Math.abs(Number(text[1]) / 1e6 - third.waitMs) < 5);
  },
});
