/**
 * The checkpoint worker of a SqliteMailStore in group-commit mode: its own connection to the
 * database runs a PASSIVE checkpoint (copying WAL frames into the database file, then syncing
 * it) every few milliseconds, so that this I/O and its two fsyncs happen on a thread of their
 * own instead of inside a COMMIT on the event loop. PASSIVE never waits for, nor blocks, the
 * writer. Messages: `{ kind: "open", path, intervalMs }`, `{ kind: "close" }` (answered with
 * `{ kind: "closed" }`); a failing checkpoint posts `{ kind: "error", message }`.
 */
/// <reference lib="deno.worker" />
import { DatabaseSync } from "node:sqlite";

/** A request to the checkpoint worker. */
export type CheckpointerRequest =
  | { readonly kind: "open"; readonly path: string; readonly intervalMs: number }
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
      timer = setInterval(() => {
        try {
          checkpoint.get();
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
