import assert from "node:assert/strict";
import { fileStepProbe, worstSteps } from "../../../server/serve/step_probe.ts";

Deno.test("step probe: lines appended per step, the worst of each read back within a window", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/steps.jsonl`;
    const probe = fileStepProbe(path);
    const from = Date.now();
    const since = probe.mark();
    probe.record("SELECT", since);
    probe.record("SELECT", { at: since.at - 50, waitMs: since.waitMs });
    probe.record("handshake", since, { at: since.at + 7, waitMs: since.waitMs + 2 }, 3);
    const worst = worstSteps(path, from, Date.now() + 1);
    assert.equal(worst.SELECT?.count, 2);
    assert.ok(worst.SELECT!.ms >= 50);
    assert.equal(worst.SELECT!.gateMs, 0);
    assert.deepEqual(worst.handshake, {
      ms: 7,
      waitMs: 2,
      gateMs: 3,
      p90Ms: 7,
      p90GateMs: 3,
      count: 1,
    });
    // Outside the window, nothing; a missing file, nothing.
    assert.deepEqual(worstSteps(path, Date.now() + 1000, Date.now() + 2000), {});
    assert.deepEqual(worstSteps(`${dir}/none.jsonl`, 0, Date.now()), {});
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
