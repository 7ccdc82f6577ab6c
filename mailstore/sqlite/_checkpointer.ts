/**
 * The checkpoint worker of a SqliteMailStore in group-commit mode: its own connection to the
 * database runs a PASSIVE checkpoint (copying WAL frames into the database file, then syncing
 * it) every few milliseconds, so that this I/O and its two fsyncs happen on a thread of their
 * own instead of inside a COMMIT on the event loop. PASSIVE never waits for, nor blocks, the
 * writer.
 *
 * It also restarts the WAL. Once a checkpoint has copied every frame, the next writer starts the
 * WAL over from its beginning, and SQLite then syncs the new WAL header before that writer's
 * frames (even with `synchronous=NORMAL`: a restarted log whose header did not reach the disk
 * could replay stale frames after a crash). That fsync ran inside a COMMIT on the event loop,
 * two or three times a second under the mix bench, and took 5-25 ms when the group commit's
 * fdatasync or this worker's checkpoint had the disk (`perf sched timehist`: the main thread in
 * `fsync` of the -wal, waiting for writeback). So after a checkpoint that copied everything,
 * this worker takes the store's write lock (`_write_lock.ts`: the event loop's writes wait
 * without blocking it), checkpoints what came in between, and makes the first write of the new
 * WAL itself: `PRAGMA user_version` set to its own value, a no-op that writes one page. SQLite
 * syncs the header on this thread. While nobody else commits, a WAL that holds only that frame
 * is not checkpointed (`PRAGMA data_version` tells), so that the event loop's next write appends
 * to it instead of restarting it once more; an idle server does not restart it at all.
 *
 * Messages: `{ kind: "open", path, intervalMs, cells }`, `{ kind: "close" }` (answered with
 * `{ kind: "closed" }`); a failing checkpoint posts `{ kind: "error", message }`.
 */
/// <reference lib="deno.worker" />
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { lockWrites, unlockWrites } from "./_write_lock.ts";

/** A request to the checkpoint worker. */
export type CheckpointerRequest =
  | {
    readonly kind: "open";
    readonly path: string;
    readonly intervalMs: number;
    /** The store's shared sync record, which holds its write lock. */
    readonly cells: SharedArrayBuffer;
  }
  | { readonly kind: "close" };

/** A report from the checkpoint worker. */
export type CheckpointerReport =
  | { readonly kind: "closed" }
  | { readonly kind: "error"; readonly message: string };

let db: DatabaseSync | null = null;
let timer: ReturnType<typeof setInterval> | undefined;

function report(r: CheckpointerReport): void {
  self.postMessage(r);
}

self.onmessage = (e: MessageEvent<CheckpointerRequest>) => {
  const request = e.data;
  if (request.kind === "open") {
    try {
      db = new DatabaseSync(request.path);
      db.exec("PRAGMA busy_timeout = 5000");
      // In NORMAL (as in FULL) a checkpoint syncs the WAL before and the database after.
      db.exec("PRAGMA synchronous = NORMAL");
      const checkpoint = db.prepare("PRAGMA wal_checkpoint(PASSIVE)");
      const restart = walRestarter(db, checkpoint, new Int32Array(request.cells));
      const dataVersion = db.prepare("PRAGMA data_version");
      /** `data_version` after this worker restarted the WAL, while nobody else has committed. */
      let padded: unknown = null;
      timer = setInterval(() => {
        try {
          // A WAL holding only our first frame stays as it is: checkpointed, it would make the
          // next write of the event loop restart the WAL (and sync its header) once more.
          if (padded !== null && dataVersion.get()?.data_version === padded) return;
          padded = copiedAll(checkpoint) && restart() ? dataVersion.get()?.data_version : null;
        } catch (error) {
          clearInterval(timer);
          report({ kind: "error", message: String(error) });
        }
      }, request.intervalMs);
    } catch (error) {
      report({ kind: "error", message: String(error) });
    }
    return;
  }
  clearInterval(timer);
  try {
    db?.close();
  } finally {
    db = null;
    report({ kind: "closed" });
    self.close();
  }
};

/**
 * Whether a PASSIVE checkpoint left every frame of a non-empty WAL copied, so that
 * the next write restarts the WAL.
 */
function copiedAll(checkpoint: StatementSync): boolean {
  const { log, checkpointed } = checkpoint.get() as { log: number; checkpointed: number };
  return log > 0 && checkpointed === log;
}

/**
 * Restarts a fully checkpointed WAL on this thread: under the write lock, checkpoints the
 * frames committed since, and if that copied them all, writes the new WAL's first frame (and
 * SQLite syncs its header here). A write of the event loop that came in between has restarted
 * the WAL already; then there is nothing left to do. Returns whether it restarted the WAL.
 */
function walRestarter(
  db: DatabaseSync,
  checkpoint: StatementSync,
  cells: Int32Array,
): () => boolean {
  const begin = db.prepare("BEGIN IMMEDIATE");
  const version = db.prepare("PRAGMA user_version");
  const commit = db.prepare("COMMIT");
  return () => {
    lockWrites(cells);
    try {
      if (!copiedAll(checkpoint)) return false;
      begin.run();
      try {
        const { user_version } = version.get() as { user_version: number };
        db.exec(`PRAGMA user_version = ${Number(user_version)}`);
        commit.run();
        return true;
      } catch (error) {
        if (db.isTransaction) db.exec("ROLLBACK");
        throw error;
      }
    } finally {
      unlockWrites(cells);
    }
  };
}
