/**
 * Placing IMAP connections on Workers (tests of `server.workers`): the ID response names the
 * Worker of a logged-in session (`x-postern-worker`), and the kernel spreads connections by a
 * hash of their ports, so a few tries reach any Worker.
 */
import assert from "node:assert/strict";
import { RawImap } from "../../_support/imap_clients.ts";
import type { RunningPostern } from "../../_support/postern.ts";

/**
 * A logged-in connection and the Worker it landed on. The server counts a connection until it
 * has seen it close, so a login right after closing another may meet a limit (a closed socket,
 * or NO [LIMIT]): it is tried again, a bounded number of times.
 */
export async function login(
  postern: RunningPostern,
  user: string,
): Promise<{ imap: RawImap; worker: string }> {
  let imap: RawImap | null = null;
  for (let attempt = 0; attempt < 50 && imap === null; attempt++) {
    const candidate = await RawImap.tls(postern.implicitPort, postern.caPem);
    const greeted = await candidate.greeting().then(() => true, () => false);
    const ok = greeted ? await candidate.command(`LOGIN ${user} pw`) : null;
    if (ok?.status === "OK") imap = candidate;
    else {
      assert.ok(ok === null || ok.tagged.includes("[LIMIT]"), ok?.tagged);
      await candidate.close();
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  assert.ok(imap, `${user} never logged in: every try met a connection limit`);
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
  if (found.size < workers) {
    // Held sessions count against the per-user limit: close them before giving up.
    for (const imap of found.values()) await imap.close();
    assert.fail(`connections reached ${found.size} of ${workers} Workers`);
  }
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
