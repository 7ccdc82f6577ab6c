import assert from "node:assert/strict";
import { Pacer, yieldToEventLoop } from "../../protocol/event_loop.ts";

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
