/**
 * The supervisor's decisions on a fake clock (sans-IO): the restart back-off of a failed
 * Worker (200 ms doubling, capped at 10 s, at most 5 restarts a minute) and the watchdog that
 * takes a Worker whose heartbeat stands still for gone.
 */
import assert from "node:assert/strict";
import { RESTART_LIMITS, RestartPolicy, Watchdog } from "../../../server/workers/restart_policy.ts";

/** Fails Worker `id` as soon as each replacement starts: the delays it gets, and when. */
function failInALoop(
  policy: RestartPolicy,
  id: number,
  from: number,
  times: number,
  othersAlive = true,
): { delays: (number | null)[]; end: number } {
  const delays: (number | null)[] = [];
  let now = from;
  for (let i = 0; i < times; i++) {
    const delay = policy.onFailure(id, now, othersAlive);
    delays.push(delay);
    if (delay === null) break;
    now += delay;
  }
  return { delays, end: now };
}

Deno.test("a Worker that fails in a loop backs off 200 ms doubling, 5 restarts a minute", () => {
  const policy = new RestartPolicy();
  const { delays, end } = failInALoop(policy, 1, 1_000_000, 8);
  assert.deepEqual(delays.slice(0, 5), [200, 400, 800, 1600, 3200]);
  // The five restarts were at 0.2, 0.6, 1.4, 3 and 6.2 s; the sixth failure (at 6.2 s) waits
  // until the first restart is a minute old.
  assert.equal(delays[5], 200 + 60_000 - 6200);
  // Then each waits for the next oldest to leave the minute, never more than 5 in any minute.
  let at = 1_000_000;
  const starts: number[] = [];
  for (const d of delays) starts.push(at += d!);
  for (const [i, t] of starts.entries()) {
    assert.ok(starts.filter((u) => u > t - 60_000 && u <= t).length <= 5, `minute ending ${i}`);
  }
  assert.ok(end - 1_000_000 >= 60_000);
});

Deno.test("the back-off starts again from 200 ms after a quiet minute, per Worker", () => {
  const policy = new RestartPolicy();
  const first = failInALoop(policy, 1, 0, 3);
  assert.deepEqual(first.delays, [200, 400, 800]);
  // Another Worker's failures are its own.
  assert.equal(policy.onFailure(2, first.end, true), 200);
  // Within the minute the count goes on; past it, it starts over.
  assert.equal(policy.onFailure(1, first.end + 30_000, true), 1600);
  assert.equal(policy.onFailure(1, first.end + 30_000 + 1600 + 60_000, true), 200);
});

Deno.test("the back-off is capped at 10 s when more restarts a minute are allowed", () => {
  const policy = new RestartPolicy({ ...RESTART_LIMITS, maxPerMinute: 100 });
  const { delays } = failInALoop(policy, 1, 0, 9);
  assert.deepEqual(delays, [200, 400, 800, 1600, 3200, 6400, 10_000, 10_000, 10_000]);
  // With the default cap of 5 a minute, the longest back-off before the wait is 3.2 s.
  assert.ok(RESTART_LIMITS.firstDelayMs * 2 ** (RESTART_LIMITS.maxPerMinute - 1) < 10_000);
});

Deno.test("past the cap, a Worker with no other left is given up", () => {
  const policy = new RestartPolicy();
  const { delays } = failInALoop(policy, 1, 0, 10, false);
  assert.deepEqual(delays, [200, 400, 800, 1600, 3200, null]);
  assert.equal(policy.recentCount(1, 6200), 5);
  // While another serves, it waits for the minute instead.
  assert.equal(policy.onFailure(1, 6200, true), 60_000 - 6200 + 200);
});

Deno.test("the watchdog reports a Worker whose heartbeat stood still for the silence", () => {
  const dog = new Watchdog(1000);
  const beats = new Map([[1, 0], [2, 0]]);
  const beatOf = (id: number) => beats.get(id)!;
  dog.watch(1, 0, 0);
  dog.watch(2, 0, 0);
  // Worker 1 beats every 200 ms; Worker 2 stops after its first beat (self.close()).
  let silent: number[] = [];
  for (let now = 100; now <= 3000 && silent.length === 0; now += 100) {
    if (now % 200 === 0) beats.set(1, beats.get(1)! + 1);
    if (now === 200) beats.set(2, 1);
    silent = dog.check(now, beatOf);
    if (silent.length > 0) {
      // Its last beat was seen at 200 ms: reported a full silence later, not before.
      assert.equal(now, 1200);
    }
  }
  assert.deepEqual(silent, [2]);
  // Reported once: it is no longer watched, and a forgotten Worker is never reported.
  beats.set(1, beats.get(1)! + 1);
  assert.deepEqual(dog.check(5000, beatOf), []);
  dog.forget(1);
  assert.deepEqual(dog.check(10_000, beatOf), []);
  // A replacement is watched from its own start, whatever its cell held.
  dog.watch(2, 1, 10_000);
  assert.deepEqual(dog.check(10_999, beatOf), []);
  assert.deepEqual(dog.check(11_000, beatOf), [2]);
});
