/**
 * The blob writer of a SqliteMailStore: its own connection inserts the raw octets of a large
 * message, in pieces (`_chunks.ts`; a 50 MB message takes SQLite 200-300 ms to write into the
 * WAL), and its search and sort texts, on a thread of its own, so that the event loop never
 * stalls on it. The bytes come by transfer and go back by transfer, without a copy, whatever
 * the outcome.
 *
 * The blob is committed with a `pending_blobs` row; the store then commits the message row on
 * its own connection and removes the pending row in the same transaction, so a blob whose
 * message never committed (a crash in between) is swept when the store next opens. This
 * connection never syncs: the WAL frames of its commit precede the message's, and the store's
 * sync of the WAL (or its `synchronous=FULL` COMMIT) covers both before the APPEND is answered.
 *
 * It takes the store's shared write lock (`_write_lock.ts`) as `HELD_LONG` around its
 * transaction, blocking this thread only, so that no connection on an event loop meets
 * SQLITE_BUSY (and sleeps in the busy handler) while it writes.
 *
 * It also stores the listing snapshots of the store (`_listing_snapshot.ts`): a cache, written
 * here so that packing a large listing into SQLite never holds the event loop.
 *
 * Messages: `{ kind: "open", ... }`, `{ kind: "write", id, ... }` (answered with
 * `{ kind: "written", id, blobId, raw }` or `{ kind: "error", id, message, raw }`),
 * `{ kind: "snapshot", id, ... }` (answered the same way, with an empty `raw` and blobId 0),
 * `{ kind: "close" }` (answered with `{ kind: "closed" }` once its connection is closed).
 */
/// <reference lib="deno.worker" />
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { HELD_LONG, lockWrites, unlockWrites } from "./_write_lock.ts";
import { nulFlag } from "../mail_store.ts";
import { BLOB_CHUNK, EMPTY_RAW, insertChunks } from "./_chunks.ts";

/** A request to the blob writer. */
export type BlobWriterRequest =
  | {
    readonly kind: "open";
    readonly path: string;
    /** The store connection's `synchronous` level: "OFF" when it never syncs, else "NORMAL". */
    readonly synchronous: "NORMAL" | "OFF";
    /** The shared sync record holding the write lock. */
    readonly cells: SharedArrayBuffer;
  }
  | {
    readonly kind: "write";
    readonly id: number;
    /** A view of a whole ArrayBuffer, transferred. */
    readonly raw: Uint8Array;
    readonly summary: string | null;
    readonly searchText: string | null;
    readonly sortText: string | null;
    /** The pending row's time, ms since the epoch. */
    readonly since: number;
  }
  | {
    readonly kind: "snapshot";
    readonly id: number;
    readonly mailboxId: number;
    readonly uidValidity: number;
    readonly modseq: number;
    /** The listing key of the state the snapshot holds. */
    readonly key: string;
    /** The packed parts in order, their keys and data views of whole ArrayBuffers, transferred. */
    readonly parts: readonly {
      readonly flags: string;
      readonly keys: Uint8Array;
      readonly data: Uint8Array;
    }[];
  }
  | { readonly kind: "close" };

/** A report from the blob writer; `raw` is the request's bytes, transferred back. */
export type BlobWriterReport =
  | {
    readonly kind: "written";
    readonly id: number;
    readonly blobId: number;
    readonly raw: Uint8Array;
  }
  | {
    readonly kind: "error";
    readonly id: number;
    readonly message: string;
    readonly raw: Uint8Array;
  }
  | { readonly kind: "closed" };

interface Statements {
  readonly blob: StatementSync;
  readonly chunk: StatementSync;
  readonly searchText: StatementSync;
  readonly sortText: StatementSync;
  readonly pending: StatementSync;
  readonly snapshotAt: StatementSync;
  readonly snapshotDrop: StatementSync;
  readonly snapshotPart: StatementSync;
}

let db: DatabaseSync | null = null;
let statements: Statements | null = null;
let cells: Int32Array | null = null;

/** Runs `body` in a write transaction, holding the shared write lock as `HELD_LONG`. */
function transaction<T>(body: (statements: Statements) => T): T {
  if (db === null || statements === null || cells === null) {
    throw new Error("Blob writer has no database");
  }
  lockWrites(cells, HELD_LONG);
  try {
    db.exec("BEGIN IMMEDIATE");
    try {
      const result = body(statements);
      db.exec("COMMIT");
      return result;
    } catch (e) {
      if (db.isTransaction) db.exec("ROLLBACK");
      throw e;
    }
  } finally {
    unlockWrites(cells);
  }
}

/** Inserts the blob, its texts and its pending row in one transaction; returns the blob id. */
function write(request: Extract<BlobWriterRequest, { kind: "write" }>): number {
  return transaction((statements) => {
    // The NUL scan (about 30 ms for 50 MB) runs here, off the event loop, once per message.
    // The octets go in pieces (_chunks.ts), so that a FETCH can stream them.
    const raw = request.raw;
    const chunks = Math.ceil(raw.length / BLOB_CHUNK);
    const blobId = Number(
      statements.blob.run(EMPTY_RAW, request.summary, nulFlag(raw), chunks).lastInsertRowid,
    );
    insertChunks(statements.chunk, blobId, raw);
    if (request.searchText !== null) statements.searchText.run(blobId, request.searchText);
    if (request.sortText !== null) statements.sortText.run(blobId, request.sortText);
    statements.pending.run(blobId, request.since);
    return blobId;
  });
}

/**
 * Replaces a mailbox's listing snapshot in one transaction, unless the one stored holds a later
 * state of the same mailbox (two Workers' stores may both write one). A mailbox deleted
 * meanwhile fails its foreign key.
 */
function writeSnapshot(request: Extract<BlobWriterRequest, { kind: "snapshot" }>): void {
  transaction((statements) => {
    const stored = statements.snapshotAt.get(request.mailboxId) as
      | { uidvalidity: number; modseq: number }
      | undefined;
    if (
      stored !== undefined && stored.uidvalidity === request.uidValidity &&
      stored.modseq > request.modseq
    ) {
      return;
    }
    statements.snapshotDrop.run(request.mailboxId);
    request.parts.forEach((p, i) =>
      statements.snapshotPart.run(
        request.mailboxId,
        i,
        request.uidValidity,
        request.modseq,
        request.key,
        p.flags,
        p.keys,
        p.data,
      )
    );
  });
}

self.onmessage = (e: MessageEvent<BlobWriterRequest>) => {
  const request = e.data;
  switch (request.kind) {
    case "open":
      try {
        db = new DatabaseSync(request.path);
        db.exec("PRAGMA busy_timeout = 5000");
        db.exec(`PRAGMA synchronous = ${request.synchronous}`);
        db.exec("PRAGMA foreign_keys = ON");
        // Checkpoints are the store's (or its checkpoint worker's) business.
        db.exec("PRAGMA wal_autocheckpoint = 0");
        statements = {
          blob: db.prepare("INSERT INTO blobs (raw, summary, nul, chunks) VALUES (?, ?, ?, ?)"),
          chunk: db.prepare("INSERT INTO blob_chunks (blob_id, seq, data) VALUES (?, ?, ?)"),
          searchText: db.prepare("INSERT INTO search_texts (blob_id, text) VALUES (?, ?)"),
          sortText: db.prepare("INSERT INTO sort_texts (blob_id, text) VALUES (?, ?)"),
          pending: db.prepare("INSERT INTO pending_blobs (blob_id, since) VALUES (?, ?)"),
          snapshotAt: db.prepare(
            "SELECT uidvalidity, modseq FROM listing_snapshots WHERE mailbox_id = ? AND part = 0",
          ),
          snapshotDrop: db.prepare("DELETE FROM listing_snapshots WHERE mailbox_id = ?"),
          snapshotPart: db.prepare(
            `INSERT INTO listing_snapshots
               (mailbox_id, part, uidvalidity, modseq, key, flags, keys, data)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
          ),
        };
        cells = new Int32Array(request.cells);
      } catch {
        // Every write then reports an error, and the store writes on its own connection.
        db?.close();
        db = null;
        statements = null;
      }
      return;
    case "write": {
      const raw = request.raw;
      let report: BlobWriterReport;
      try {
        report = { kind: "written", id: request.id, blobId: write(request), raw };
      } catch (error) {
        report = { kind: "error", id: request.id, message: String(error), raw };
      }
      self.postMessage(report, [raw.buffer as ArrayBuffer]);
      return;
    }
    case "snapshot": {
      // The report carries no bytes: the parts' buffers are dropped here.
      const raw = new Uint8Array(0);
      let report: BlobWriterReport;
      try {
        writeSnapshot(request);
        report = { kind: "written", id: request.id, blobId: 0, raw };
      } catch (error) {
        report = { kind: "error", id: request.id, message: String(error), raw };
      }
      self.postMessage(report);
      return;
    }
    case "close":
      try {
        db?.close();
      } finally {
        db = null;
        const closed: BlobWriterReport = { kind: "closed" };
        self.postMessage(closed);
        self.close();
      }
      return;
  }
};
