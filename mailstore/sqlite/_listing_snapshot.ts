/**
 * A mailbox listing packed into bytes, as the SQLite store keeps it in `listing_snapshots` so
 * that the first SELECT of a large mailbox after a restart (or after its listing left the
 * in-memory cache) reads one row instead of stepping through every message row. Stepping costs
 * node:sqlite about 0.3 µs a row and making the row's objects as much again: 6-9 ms for 10,000
 * messages and 55 ms for 100,000, against a few milliseconds to read and unpack the same listing.
 *
 * A snapshot is a cache, never the truth: it holds the listing at one state of the mailbox (its
 * listing key) and the store brings it to the present from the rows changed and expunged since,
 * or lists the mailbox afresh when that cannot be done exactly.
 *
 * A snapshot is stored in parts of up to `PART_MESSAGES` consecutive messages (one row each),
 * so that reading or writing one never holds a thread for long. Layout of a part (little-endian):
 * a header of two 32-bit words, `FORMAT` and the part's message count n, then five columns of n
 * values each: MODSEQ, INTERNALDATE and RFC822.SIZE as 64-bit floats (exact integers up to
 * 2^53), the UID and the index of the message's flags in the part's flag table as 32-bit
 * unsigned integers. The flag table (each entry the flags of some messages as stored, joined by
 * spaces) travels beside the bytes as a JSON array.
 */
import type { MessageMeta } from "../mail_store.ts";

/** The layout's version, the first word of every snapshot. */
export const FORMAT = 0x4c53_0001;
/** Messages per part (256 KiB). */
export const PART_MESSAGES = 8192;
/** Bytes before the columns. */
const HEADER = 8;
/** Bytes per message: three 64-bit columns and two 32-bit ones. */
const PER_MESSAGE = 32;

/** A packed listing: its flag table as JSON and its columns. */
export interface PackedListing {
  readonly flags: string;
  readonly data: Uint8Array;
}

/** Packs the messages `from` to `to` (exclusive) of `metas` (ascending by UID) as one part. */
export function packListing(
  metas: readonly MessageMeta[],
  from = 0,
  to = metas.length,
): PackedListing {
  const n = to - from;
  const data = new Uint8Array(HEADER + PER_MESSAGE * n);
  const view = new DataView(data.buffer);
  view.setUint32(0, FORMAT, true);
  view.setUint32(4, n, true);
  const table: string[] = [];
  // Listed messages share a few frozen flag arrays: look each array up once, then its text.
  const byArray = new Map<readonly string[], number>();
  const byText = new Map<string, number>();
  const modseqAt = HEADER;
  const dateAt = modseqAt + 8 * n;
  const sizeAt = dateAt + 8 * n;
  const uidAt = sizeAt + 8 * n;
  const flagAt = uidAt + 4 * n;
  for (let i = 0; i < n; i++) {
    const m = metas[from + i]!;
    let f = byArray.get(m.flags);
    if (f === undefined) {
      const text = m.flags.join(" ");
      f = byText.get(text);
      if (f === undefined) {
        f = table.length;
        table.push(text);
        byText.set(text, f);
      }
      byArray.set(m.flags, f);
    }
    view.setFloat64(modseqAt + 8 * i, m.modseq, true);
    view.setFloat64(dateAt + 8 * i, m.internalDate, true);
    view.setFloat64(sizeAt + 8 * i, m.size, true);
    view.setUint32(uidAt + 4 * i, m.uid, true);
    view.setUint32(flagAt + 4 * i, f, true);
  }
  return { flags: JSON.stringify(table), data };
}

/** A checked snapshot whose messages are unpacked a range at a time (`unpackRange`). */
export interface SnapshotReader {
  readonly count: number;
  readonly view: DataView;
  readonly table: readonly (readonly string[])[];
}

/**
 * Checks a part: its header, its length and its flag table, each entry of which `flagList`
 * turns into the frozen array the listing shares. Null, never a throw, when it is not a
 * well-formed part.
 */
export function openSnapshot(
  flags: unknown,
  data: unknown,
  flagList: (stored: string) => readonly string[],
): SnapshotReader | null {
  if (typeof flags !== "string" || !(data instanceof Uint8Array)) return null;
  if (data.byteLength < HEADER) return null;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const count = view.getUint32(4, true);
  if (view.getUint32(0, true) !== FORMAT || count > PART_MESSAGES) return null;
  if (data.byteLength !== HEADER + PER_MESSAGE * count) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(flags);
  } catch {
    return null;
  }
  if (!Array.isArray(parsed) || parsed.length > Math.max(count, 1)) return null;
  const table: (readonly string[])[] = [];
  for (const entry of parsed) {
    if (typeof entry !== "string") return null;
    table.push(flagList(entry));
  }
  return { count, view, table };
}

/**
 * Appends the messages `from` to `to` (exclusive) of a part to `out`; false, leaving `out`
 * partly filled, at the first that is not a message (a UID not above the previous one, or not
 * above `after` for the part's first, a flag index outside the table, a value that is not a
 * safe integer in its range).
 */
export function unpackRange(
  reader: SnapshotReader,
  from: number,
  to: number,
  out: MessageMeta[],
  after = 0,
): boolean {
  const { view, table, count: n } = reader;
  const modseqAt = HEADER;
  const dateAt = modseqAt + 8 * n;
  const sizeAt = dateAt + 8 * n;
  const uidAt = sizeAt + 8 * n;
  const flagAt = uidAt + 4 * n;
  let last = from === 0 ? after : view.getUint32(uidAt + 4 * (from - 1), true);
  for (let i = from; i < to; i++) {
    const uid = view.getUint32(uidAt + 4 * i, true);
    const modseq = view.getFloat64(modseqAt + 8 * i, true);
    const internalDate = view.getFloat64(dateAt + 8 * i, true);
    const size = view.getFloat64(sizeAt + 8 * i, true);
    const flags = table[view.getUint32(flagAt + 4 * i, true)];
    if (
      uid <= last || flags === undefined || !Number.isSafeInteger(modseq) || modseq < 1 ||
      !Number.isSafeInteger(internalDate) || !Number.isSafeInteger(size) || size < 0
    ) {
      return false;
    }
    last = uid;
    out.push({ uid, modseq, flags, internalDate, size });
  }
  return true;
}

/** A whole part unpacked (`openSnapshot`, then `unpackRange`); null when malformed. */
export function unpackListing(
  flags: unknown,
  data: unknown,
  flagList: (stored: string) => readonly string[],
): MessageMeta[] | null {
  const reader = openSnapshot(flags, data, flagList);
  if (reader === null) return null;
  const out: MessageMeta[] = [];
  return unpackRange(reader, 0, reader.count, out) ? out : null;
}

/**
 * Writes a part's UIDs and flags into `uids` and `flags` from index `at` on, without making its
 * messages' objects (a view opens with these columns, `listColumns`). The highest MODSEQ of the
 * part, or -1, leaving the arrays partly filled, at the first entry that is not a message (as
 * `unpackRange`, for the columns it reads).
 */
export function readColumns(
  reader: SnapshotReader,
  uids: number[],
  flags: (readonly string[])[],
  at: number,
  after = 0,
): number {
  const { view, table, count: n } = reader;
  const modseqAt = HEADER;
  const uidAt = HEADER + 24 * n;
  const flagAt = uidAt + 4 * n;
  let last = after;
  let highest = 0;
  for (let i = 0; i < n; i++) {
    const uid = view.getUint32(uidAt + 4 * i, true);
    const f = table[view.getUint32(flagAt + 4 * i, true)];
    const modseq = view.getFloat64(modseqAt + 8 * i, true);
    if (uid <= last || f === undefined || !Number.isSafeInteger(modseq) || modseq < 1) return -1;
    last = uid;
    if (modseq > highest) highest = modseq;
    uids[at + i] = uid;
    flags[at + i] = f;
  }
  return highest;
}
