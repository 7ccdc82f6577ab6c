/**
 * Large messages stored in pieces (schema version 8, `blob_chunks`): the blob writer stores
 * every message it writes this way, and a FETCH streams the pieces (`SqliteMailStore.openRaw`).
 * Shared by the store's connection and its worker threads.
 */
import type { StatementSync } from "node:sqlite";
import { concatBytes } from "../../protocol/bytes.ts";

/** Octets per piece of a stored message. */
export const BLOB_CHUNK = 1024 * 1024;

/** The pieces of a blob, in order. */
export const SELECT_CHUNKS = "SELECT data FROM blob_chunks WHERE blob_id = ? ORDER BY seq";

/** The blob row a chunked blob has: its octets are in `blob_chunks`. */
export const EMPTY_RAW = new Uint8Array(0);

/** Inserts `raw` as the pieces of `blobId`; returns how many. */
export function insertChunks(insert: StatementSync, blobId: number, raw: Uint8Array): number {
  let seq = 0;
  for (let at = 0; at < raw.length; at += BLOB_CHUNK) {
    insert.run(blobId, seq++, raw.subarray(at, at + BLOB_CHUNK));
  }
  return seq;
}

/**
 * The octets of a chunked blob joined into one array (`select` is `SELECT_CHUNKS` prepared), or
 * null when its pieces are not all there (the blob was deleted meanwhile).
 */
export function joinChunks(
  select: StatementSync,
  blobId: number,
  chunks: number,
): Uint8Array | null {
  const rows = select.all(blobId) as { data: Uint8Array }[];
  return rows.length === chunks ? concatBytes(rows.map((r) => r.data)) : null;
}
