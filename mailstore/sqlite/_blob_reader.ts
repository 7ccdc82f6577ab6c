/**
 * The blob reader of a SqliteMailStore: its own read-only connection reads the raw octets of a
 * large message (a 50 MB body takes SQLite 70-110 ms to gather from its overflow pages) on a
 * thread of its own, and hands the bytes over without a copy (a transferred ArrayBuffer), so
 * that the event loop never stalls on it. Messages: `{ kind: "open", path }`,
 * `{ kind: "read", id, blobId }` (answered with `{ kind: "raw", id, raw }`, raw null when the
 * blob is gone, or `{ kind: "error", id, message }`), `{ kind: "close" }`.
 */
/// <reference lib="deno.worker" />
import { DatabaseSync, type StatementSync } from "node:sqlite";

/** A request to the blob reader. */
export type BlobReaderRequest =
  | { readonly kind: "open"; readonly path: string }
  | { readonly kind: "read"; readonly id: number; readonly blobId: number }
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
  | { readonly kind: "error"; readonly id: number; readonly message: string };

let db: DatabaseSync | null = null;
let select: StatementSync | null = null;

self.onmessage = (e: MessageEvent<BlobReaderRequest>) => {
  const request = e.data;
  switch (request.kind) {
    case "open":
      try {
        db = new DatabaseSync(request.path, { readOnly: true });
        db.exec("PRAGMA busy_timeout = 5000");
        select = db.prepare("SELECT raw, nul FROM blobs WHERE id = ?");
      } catch {
        // Every read then reports an error, and the store reads on its own connection.
        db = null;
      }
      return;
    case "read": {
      try {
        if (select === null) throw new Error("Blob reader has no database");
        const row = select.get(request.blobId) as
          | { raw: Uint8Array; nul: number | null }
          | undefined;
        const raw = row?.raw ?? null;
        const report: BlobReaderReport = {
          kind: "raw",
          id: request.id,
          raw,
          nul: row?.nul ?? null,
        };
        self.postMessage(report, raw === null ? [] : [raw.buffer as ArrayBuffer]);
      } catch (error) {
        const report: BlobReaderReport = { kind: "error", id: request.id, message: String(error) };
        self.postMessage(report);
      }
      return;
    }
    case "close":
      try {
        db?.close();
      } finally {
        db = null;
        self.close();
      }
      return;
  }
};
