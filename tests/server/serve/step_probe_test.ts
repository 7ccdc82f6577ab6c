import assert from "node:assert/strict";
import { fileStepProbe, worstSteps } from "../../../server/serve/step_probe.ts";
import { startPosternProcess } from "../../_support/postern.ts";
import { RawImap } from "../../_support/imap_clients.ts";
import { runHonestClient, seedMessages } from "../../_support/hostile_load.ts";

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
    // Lines are written in batches: none yet, all after a flush.
    assert.deepEqual(worstSteps(path, from, Date.now() + 1), {});
    probe.flush();
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

Deno.test("step probe: a served client that logs in leaves one line per step; one that does not, none", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/steps.jsonl`;
  Deno.env.set("POSTERN_STEP_PROBE", path);
  const account = { user: "honest", password: "honest-password" };
  const server = await startPosternProcess({
    users: [{ name: account.user, password: account.password }],
  }).finally(() => Deno.env.delete("POSTERN_STEP_PROBE"));
  try {
    // A client that completes the handshake and never logs in.
    const stranger = await RawImap.tls(server.implicitPort, server.caPem);
    await stranger.greeting();
    await stranger.command("CAPABILITY");
    await stranger.close();
    const from = Date.now();
    const expected = await seedMessages(server, account, 1);
    // At least one honest round (the client stops starting rounds after its deadline).
    const honest = await runHonestClient(server, account, expected, Date.now() + 5);
    assert.deepEqual(honest.failures, []);
    assert.ok(honest.rounds >= 1, `${honest.rounds} rounds`);
    const rounds = honest.rounds;
    // A step's line is written once its reply is handed to the socket, which can be after the
    // client has read it: wait (bounded) for the last LOGOUT's line.
    let steps = worstSteps(path, from, Date.now() + 1000);
    for (let i = 0; i < 40 && (steps.LOGOUT?.count ?? 0) < 1 + rounds; i++) {
      await new Promise((r) => setTimeout(r, 50));
      steps = worstSteps(path, from, Date.now() + 1000);
    }
    // The seeding connection: handshake, LOGIN, APPEND, LOGOUT; each honest round: all six.
    assert.equal(steps.handshake?.count, 1 + rounds);
    assert.equal(steps.LOGIN?.count, 1 + rounds);
    assert.equal(steps.SELECT?.count, rounds);
    assert.equal(steps["UID FETCH"]?.count, rounds);
    assert.equal(steps.APPEND?.count, 1 + rounds);
    assert.equal(steps.LOGOUT?.count, 1 + rounds);
    assert.equal(steps.CAPABILITY, undefined);
    assert.ok(steps.handshake!.gateMs >= 0 && steps.handshake!.waitMs >= 0);
    assert.ok(steps.LOGIN!.gateMs >= 0 && steps.LOGIN!.ms >= steps.LOGIN!.gateMs);
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
