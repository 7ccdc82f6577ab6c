import assert from "node:assert/strict";
import { schedstat, threadCpuMs } from "../../../server/serve/_schedstat.ts";

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

Deno.test({
  name: "threadCpuMs: the thread's CPU time to the microsecond, not to the scheduler tick",
  ignore: Deno.build.os !== "linux",
  fn() {
    // The tests run with every permission, so the clock comes from libc.
    const start = threadCpuMs();
    assert.ok(start !== null);
    // Read it over and over for 10 ms of CPU: schedstat's figure would stand still and then
    // jump by a whole tick (4 ms at 250 Hz); this one moves by the little work between reads,
    // even when the thread is switched out meanwhile (its CPU time does not move then).
    let last = start;
    let largestStep = 0;
    let reads = 0;
    while (last - start < 10 && reads < 10_000_000) {
      const now = threadCpuMs()!;
      largestStep = Math.max(largestStep, now - last);
      last = now;
      reads++;
    }
    assert.ok(last - start >= 10, `${last - start} ms of CPU after ${reads} reads`);
    assert.ok(largestStep < 1, `a step of ${largestStep} ms between two reads`);
  },
});
