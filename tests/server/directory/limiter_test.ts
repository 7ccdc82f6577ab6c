import assert from "node:assert/strict";
import { Limiter, LimiterFullError } from "../../../server/directory/_limiter.ts";

Deno.test("Limiter.run() keeps at most max tasks running and serves waiters in order", async () => {
  const limiter = new Limiter(2, 10);
  let running = 0;
  let peak = 0;
  const order: number[] = [];
  const tasks = Array.from({ length: 8 }, (_, i) =>
    limiter.run(async () => {
      running++;
      peak = Math.max(peak, running);
      order.push(i);
      await new Promise((r) => setTimeout(r, 5));
      running--;
      return i;
    }));
  assert.deepEqual(await Promise.all(tasks), [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.equal(peak, 2);
  assert.equal(limiter.peak, 2);
  assert.deepEqual(order, [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.equal(limiter.inFlight, 0);
});

Deno.test("Limiter.run() refuses a task when the wait queue is full", async () => {
  const limiter = new Limiter(1, 1);
  let release: () => void = () => {};
  const gate = new Promise<void>((r) => release = r);
  const first = limiter.run(() => gate);
  const second = limiter.run(() => Promise.resolve(2));
  await assert.rejects(limiter.run(() => Promise.resolve(3)), LimiterFullError);
  release();
  await first;
  assert.equal(await second, 2);
});

Deno.test("Limiter.run() frees the slot when a task throws", async () => {
  const limiter = new Limiter(1, 4);
  await assert.rejects(limiter.run(() => Promise.reject(new Error("boom"))));
  assert.equal(await limiter.run(() => Promise.resolve("ok")), "ok");
  assert.equal(limiter.inFlight, 0);
});

Deno.test("Limiter.run() gives up waiting for a slot after maxWaitMs", async () => {
  const limiter = new Limiter(1, 4);
  let release: () => void = () => {};
  const gate = new Promise<void>((r) => release = r);
  const first = limiter.run(() => gate);
  await assert.rejects(limiter.run(() => Promise.resolve(1), 30), LimiterFullError);
  assert.equal(limiter.queued, 0);
  release();
  await first;
  assert.equal(limiter.inFlight, 0);
  assert.equal(await limiter.run(() => Promise.resolve(2), 30), 2);
});
