import assert from "node:assert/strict";
import { join } from "node:path";
import { startStallProbe, worstStallDetail } from "../../../server/serve/stall_probe.ts";

Deno.test({
  name: "the stall probe reports a busy event loop as the server's own stall",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "postern-stall-" });
    try {
      const path = join(dir, "stalls.jsonl");
      const from = Date.now();
      const stop = startStallProbe(path);
      try {
        await new Promise((resolve) => setTimeout(resolve, 50));
        // 40 ms on the thread: the probe's 5 ms timer runs about 35 ms late.
        const start = performance.now();
        let x = 0;
        while (performance.now() - start < 40) x += Math.sqrt(x + 1);
        // The probe writes every 500 ms; the window's line comes within that.
        await new Promise((resolve) => setTimeout(resolve, 700));
      } finally {
        stop();
      }
      const d = worstStallDetail(path, from, Date.now());
      assert.ok(d.worstMs >= 20, `worst stall ${d.worstMs} ms`);
      // Less whatever this thread waited for a core meanwhile (a loaded machine); the CPU time
      // counts the busy loop to the microsecond where it may call libc (tests run with -A).
      assert.ok(d.ownMs >= 5 && d.ownMs <= d.worstMs, `own stall ${d.ownMs} of ${d.worstMs} ms`);
      assert.ok(d.busyMs >= 10, `longest on-CPU tick ${d.busyMs} ms`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
