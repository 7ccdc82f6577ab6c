import assert from "node:assert/strict";
import { Pacer, SLICE_MS, sliceMs, yieldToEventLoop } from "../../../protocol/event_loop.ts";
import { Wakeup, wakeupPath } from "../../../server/connection/wakeup.ts";

/** Keeps the thread busy for `ms` (a slice of paced work). */
function spin(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // Busy.
  }
}

Deno.test("the quick yield runs due timers and ready sockets before paced work goes on", async () => {
  const wakeup = await Wakeup.open();
  assert.ok(wakeup, "no loopback pair");
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  const server = await listener.accept();
  try {
    wakeup.install();
    assert.ok(sliceMs() < SLICE_MS, "pacers take shorter slices with a quick yield");
    let fired = false;
    setTimeout(() => fired = true, 1);
    let got = 0;
    const reading = server.read(new Uint8Array(16)).then((n) => got = n ?? -1);
    await client.write(new Uint8Array([1, 2, 3]));
    // The timer is due and the bytes are in the socket before the slice ends.
    spin(3);
    await wakeup.yield();
    assert.equal(fired, true, "a due timer ran");
    assert.equal(got, 3, "a ready socket read completed");
    await reading;
    // Many overlapping yields share round trips and all settle.
    const pacer = new Pacer(0);
    await Promise.all(Array.from({ length: 20 }, () => pacer.yield()));
    assert.equal(pacer.yields, 20);
  } finally {
    wakeup.close();
    client.close();
    server.close();
    listener.close();
  }
  assert.equal(sliceMs(), SLICE_MS, "closing the pair puts the timer yield back");
  // A closed pair's yield still reaches a later turn.
  let fired = false;
  setTimeout(() => fired = true, 0);
  await wakeup.yield();
  await yieldToEventLoop();
  assert.equal(fired, true);
});

Deno.test("the pair opens on a Unix socket whose name is gone once connected, and takes only its own connection", async () => {
  const dir = await Deno.makeTempDir({ prefix: "postern-wakeup-" });
  const path = wakeupPath(dir, 1);
  try {
    const wakeup = await Wakeup.open(path);
    assert.ok(wakeup, "no Unix pair");
    await assert.rejects(Deno.lstat(path), Deno.errors.NotFound);
    await wakeup.yield();
    wakeup.close();
    // A stale file of a crashed server is replaced.
    await Deno.writeTextFile(path, "");
    const again = await Wakeup.open(path);
    assert.ok(again, "a stale socket file is in the way");
    again.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
