/**
 * Placing IMAP connections on Workers (tests of `server.workers`): the ID response names the
 * Worker of a logged-in session (`x-postern-worker`), and the kernel spreads connections by a
 * hash of their ports, so a few tries reach any Worker.
 */
import assert from "node:assert/strict";
import { RawImap } from "../../_support/imap_clients.ts";
import type { RunningPostern } from "../../_support/postern.ts";

/** A logged-in connection and the Worker it landed on. */
export async function login(
  postern: RunningPostern,
  user: string,
): Promise<{ imap: RawImap; worker: string }> {
  const imap = await RawImap.tls(postern.implicitPort, postern.caPem);
  await imap.greeting();
  const ok = await imap.command(`LOGIN ${user} pw`);
  assert.equal(ok.status, "OK", ok.tagged);
  const id = await imap.command("ID NIL");
  const text = id.untagged.map((r) => r.text).join("\n");
  const worker = /"x-postern-worker" "(\d+)"/.exec(text)?.[1];
  assert.ok(worker !== undefined, `no worker in ${text}`);
  return { imap, worker };
}

/** The Worker a logged-in connection is on, from its ID response. */
export async function workerOf(imap: RawImap): Promise<string> {
  const id = await imap.command("ID NIL");
  const text = id.untagged.map((r) => r.text).join("\n");
  return /"x-postern-worker" "(\d+)"/.exec(text)?.[1] ?? "";
}

/**
 * Logged-in connections of `user`, one on each of `workers` different Workers; the others
 * opened on the way are closed. The kernel spreads connections by a hash of their ports, so
 * a few tries are enough; the loop is bounded.
 */
export async function onDistinctWorkers(
  postern: RunningPostern,
  user: string,
  workers: number,
): Promise<RawImap[]> {
  const found = new Map<string, RawImap>();
  for (let i = 0; i < 64 && found.size < workers; i++) {
    const { imap, worker } = await login(postern, user);
    if (found.has(worker)) await imap.close();
    else found.set(worker, imap);
  }
  assert.equal(found.size, workers, "connections never reached every Worker");
  return [...found.values()];
}

/** A logged-in connection of `user` on Worker `worker` (bounded tries); others are closed. */
export async function onWorker(
  postern: RunningPostern,
  user: string,
  worker: string,
): Promise<RawImap> {
  for (let i = 0; i < 64; i++) {
    const placed = await login(postern, user);
    if (placed.worker === worker) return placed.imap;
    await placed.imap.close();
  }
  throw new Error(`no connection reached Worker ${worker}`);
}
