import assert from "node:assert/strict";
import { dropTurnStart, Pacer, useTurnStart, yieldToEventLoop } from "../../protocol/event_loop.ts";

Deno.test("yieldToEventLoop() lets a timer set before it run first", async () => {
  let ran = false;
  setTimeout(() => ran = true, 0);
  await Promise.resolve();
  assert.equal(ran, false, "a resolved promise is no turn of the event loop");
  await yieldToEventLoop();
  assert.equal(ran, true);
});

Deno.test("a Pacer with a slice of 0 is always due and counts its yields", async () => {
  const pacer = new Pacer(0);
  for (let i = 0; i < 3; i++) {
    assert.equal(pacer.due(), true);
    await pacer.yield();
  }
  assert.equal(pacer.yields, 3);
  assert.equal(new Pacer(60_000).due(), false);
});

Deno.test("a Pacer is due once the turn it runs in has used a slice, and not again right after its yield", async () => {
  let start = -1;
  const clock = () => start;
  useTurnStart(clock);
  try {
    const pacer = new Pacer(50);
    assert.equal(pacer.due(), false, "between turns only its own slice counts");
    start = performance.now();
    assert.equal(pacer.due(), false, "a young turn");
    // A turn that has run for 60 ms of synchronous work.
    start = performance.now();
    while (performance.now() - start < 60) { /* busy */ }
    assert.equal(new Pacer(50).due(), true, "a new pacer late in a long turn");
    await pacer.yield();
    assert.equal(pacer.due(), false, "the yield began a new turn");
  } finally {
    dropTurnStart(clock);
  }
  assert.equal(new Pacer(50).due(), false);
});

Deno.test("a Pacer made after another's resume counts the turn from that resume, until the turn ends", async () => {
  // A write loop makes a new pacer for each write: one made late in a turn that began with
  // another pacer's resume must not start a whole slice of its own there.
  const first = new Pacer(0);
  await first.yield();
  const resumed = performance.now();
  while (performance.now() - resumed < 60) { /* busy */ }
  assert.equal(new Pacer(50).due(), true, "the turn began at the resume");
  await new Promise((resolve) => setTimeout(resolve, 5));
  assert.equal(new Pacer(50).due(), false, "a later turn counts only its own slice");
});
