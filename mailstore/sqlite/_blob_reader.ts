/**
 * The blob reader of a SqliteMailStore: its own read-only connection reads the raw octets of a
 * large message (a 50 MB body takes SQLite 60-110 ms to gather) on a thread of its own, and
 * hands the bytes over without a copy (a transferred ArrayBuffer), so that the event loop never
 * stalls on it. Messages:
 * - `{ kind: "open", path }`;
 * - `{ kind: "read", id, blobId }`, answered with `{ kind: "raw", id, raw, nul }` (raw null when
 *   the blob is gone) or `{ kind: "error", id, message }`;
 * - `{ kind: "stream", id, blobId }` for a blob stored in pieces (`_chunks.ts`): each piece is
 *   posted as soon as it is read, `{ kind: "chunk", id, data }`, then `{ kind: "end", id,
 *   chunks }` with the count sent (0 when the blob is gone), or `{ kind: "error", id, message }`.
 *   The pieces come from one statement, so one read snapshot: a message expunged meanwhile is
 *   still sent whole, as a file that is open stays readable;
 * - `{ kind: "close" }`.
 */
/// <reference lib="deno.worker" />
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { joinChunks, SELECT_CHUNKS } from "./_chunks.ts";

/** A request to the blob reader. */
export type BlobReaderRequest =
  | { readonly kind: "open"; readonly path: string }
  | { readonly kind: "read"; readonly id: number; readonly blobId: number }
  | { readonly kind: "stream"; readonly id: number; readonly blobId: number }
  | { readonly kind: "close" };

/** A report from the blob reader. */
export type BlobReaderReport =
  | {
    readonly kind: "raw";
    readonly id: number;
    readonly raw: Uint8Array | null;
    /** The blob's `nul` column: 0 when it holds no NUL, null when not recorded. */
    readonly nul: number | null;
  }
  | { readonly kind: "chunk"; readonly id: number; readonly data: Uint8Array }
  | { readonly kind: "end"; readonly id: number; readonly chunks: number }
  | { readonly kind: "error"; readonly id: number; readonly message: string };

interface Statements {
  readonly blob: StatementSync;
  readonly chunks: StatementSync;
}

let db: DatabaseSync | null = null;
let statements: Statements | null = null;

function opened(): Statements {
  if (statements === null) throw new Error("Blob reader has no database");
  return statements;
}

function read(request: { readonly id: number; readonly blobId: number }): void {
  const { blob, chunks } = opened();
  const row = blob.get(request.blobId) as
    | { raw: Uint8Array; nul: number | null; chunks: number | null }
    | undefined;
  const raw = row === undefined
    ? null
    : row.chunks === null
    ? row.raw
    : joinChunks(chunks, request.blobId, row.chunks);
  const report: BlobReaderReport = { kind: "raw", id: request.id, raw, nul: row?.nul ?? null };
  self.postMessage(report, raw === null ? [] : [raw.buffer as ArrayBuffer]);
}

function stream(request: { readonly id: number; readonly blobId: number }): void {
  let sent = 0;
  for (const row of opened().chunks.iterate(request.blobId)) {
    const data = (row as { data: Uint8Array }).data;
    const report: BlobReaderReport = { kind: "chunk", id: request.id, data };
    self.postMessage(report, [data.buffer as ArrayBuffer]);
    sent++;
  }
  const end: BlobReaderReport = { kind: "end", id: request.id, chunks: sent };
  self.postMessage(end);
}

self.onmessage = (e: MessageEvent<BlobReaderRequest>) => {
  const request = e.data;
  switch (request.kind) {
    case "open":
      try {
        db = new DatabaseSync(request.path, { readOnly: true });
        db.exec("PRAGMA busy_timeout = 5000");
        statements = {
          blob: db.prepare("SELECT raw, nul, chunks FROM blobs WHERE id = ?"),
          chunks: db.prepare(SELECT_CHUNKS),
        };
      } catch {
        // Every read then reports an error, and the store reads on its own connection.
        db = null;
        statements = null;
      }
      return;
    case "read":
    case "stream":
      try {
        if (request.kind === "read") read(request);
        else stream(request);
      } catch (error) {
        const report: BlobReaderReport = { kind: "error", id: request.id, message: String(error) };
        self.postMessage(report);
      }
      return;
    case "close":
      try {
        db?.close();
      } finally {
        db = null;
        statements = null;
        self.close();
      }
      return;
  }
};
