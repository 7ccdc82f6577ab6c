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
 * so that reading or writing one never holds a thread for long. A part is two byte strings, each
 * a header of two little-endian 32-bit words (its format, then the part's message count n) and
 * columns of n values: its keys (`KEYS_FORMAT`), the UIDs and the index of each message's flags
 * in the part's flag table as 32-bit unsigned integers, which is all a mailbox view opens with
 * (`readColumns`); and its data (`DATA_FORMAT`), MODSEQ, INTERNALDATE and RFC822.SIZE as 64-bit
 * floats (exact integers up to 2^53), read when the listing's objects are made. The flag table
 * (each entry the flags of some messages as stored, joined by spaces) travels beside them as a
 * JSON array.
 */
import type { MessageMeta } from "../mail_store.ts";

/** The first word of a part's keys. */
export const KEYS_FORMAT = 0x4c53_4b02;
/** The first word of a part's data. */
export const DATA_FORMAT = 0x4c53_4402;
/** Messages per part (256 KiB: 64 of keys, 192 of data). */
export const PART_MESSAGES = 8192;
/** Bytes before the columns. */
const HEADER = 8;
/** Bytes per message in the keys: two 32-bit columns. */
const PER_KEY = 8;
/** Bytes per message in the data: three 64-bit columns. */
const PER_DATUM = 24;

/** A packed part: its flag table as JSON, its keys and its data. */
export interface PackedListing {
  readonly flags: string;
  readonly keys: Uint8Array;
  readonly data: Uint8Array;
}

/** A byte string of `n` messages' columns after its header. */
function packed(format: number, n: number, per: number): { bytes: Uint8Array; view: DataView } {
  const bytes = new Uint8Array(HEADER + per * n);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, format, true);
  view.setUint32(4, n, true);
  return { bytes, view };
}

/** Packs the messages `from` to `to` (exclusive) of `metas` (ascending by UID) as one part. */
export function packListing(
  metas: readonly MessageMeta[],
  from = 0,
  to = metas.length,
): PackedListing {
  const n = to - from;
  const keys = packed(KEYS_FORMAT, n, PER_KEY);
  const data = packed(DATA_FORMAT, n, PER_DATUM);
  const table: string[] = [];
  // Listed messages share a few frozen flag arrays: look each array up once, then its text.
  const byArray = new Map<readonly string[], number>();
  const byText = new Map<string, number>();
  const flagAt = HEADER + 4 * n;
  const dateAt = HEADER + 8 * n;
  const sizeAt = dateAt + 8 * n;
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
    keys.view.setUint32(HEADER + 4 * i, m.uid, true);
    keys.view.setUint32(flagAt + 4 * i, f, true);
    data.view.setFloat64(HEADER + 8 * i, m.modseq, true);
    data.view.setFloat64(dateAt + 8 * i, m.internalDate, true);
    data.view.setFloat64(sizeAt + 8 * i, m.size, true);
  }
  return { flags: JSON.stringify(table), keys: keys.bytes, data: data.bytes };
}

/**
 * A checked part whose messages are unpacked a range at a time (`unpackRange`) once it has its
 * data, or whose keys alone are read (`readColumns`). Its keys are read as typed arrays over
 * the bytes (copied only when misaligned, or byte-swapped on a big-endian host): an indexed
 * load, even in code the JIT has not compiled yet, where a DataView call per value made
 * `listColumns` of 100,000 messages in a fresh process 0.5 ms slower (median of 22: 5.7 ms
 * against 5.1). Its data stays a DataView: a Float64Array load gives a heap number even for a
 * small integer, and making the listing's objects from them took up to 40 % longer.
 */
export interface SnapshotReader {
  readonly count: number;
  readonly uids: Uint32Array;
  readonly flagIndexes: Uint32Array;
  readonly data: DataView | null;
  readonly table: readonly (readonly string[])[];
}

/** True on a little-endian host, whose typed arrays read the stored byte order as it is. */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** A view of `bytes` when they are a well-formed header of `format` and `n` columns of `per`. */
function columnsView(bytes: unknown, format: number, per: number, n?: number): DataView | null {
  if (!(bytes instanceof Uint8Array) || bytes.byteLength < HEADER) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = view.getUint32(4, true);
  if (view.getUint32(0, true) !== format || count > PART_MESSAGES) return null;
  if ((n !== undefined && count !== n) || bytes.byteLength !== HEADER + per * count) return null;
  return view;
}

/** The two 32-bit columns of checked keys of `n` messages, as typed arrays. */
function keyColumns(view: DataView, n: number): { uids: Uint32Array; flagIndexes: Uint32Array } {
  let buffer = view.buffer;
  let at = view.byteOffset + HEADER;
  if (!LITTLE_ENDIAN || at % 4 !== 0 || !(buffer instanceof ArrayBuffer)) {
    const copy = new Uint32Array(2 * n);
    for (let i = 0; i < 2 * n; i++) copy[i] = view.getUint32(HEADER + 4 * i, true);
    buffer = copy.buffer;
    at = 0;
  }
  return {
    uids: new Uint32Array(buffer, at, n),
    flagIndexes: new Uint32Array(buffer, at + 4 * n, n),
  };
}

/**
 * Checks a part: its keys, its data when given (null: read later, `withData`) and its flag
 * table, each entry of which `flagList` turns into the frozen array the listing shares. Null,
 * never a throw, when it is not a well-formed part.
 */
export function openSnapshot(
  flags: unknown,
  keys: unknown,
  data: unknown,
  flagList: (stored: string) => readonly string[],
): SnapshotReader | null {
  if (typeof flags !== "string") return null;
  const keyView = columnsView(keys, KEYS_FORMAT, PER_KEY);
  if (keyView === null) return null;
  const count = keyView.getUint32(4, true);
  const dataView = data === null ? null : columnsView(data, DATA_FORMAT, PER_DATUM, count);
  if (data !== null && dataView === null) return null;
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
  return { count, ...keyColumns(keyView, count), data: dataView, table };
}

/** `reader` with the part's data, read after its keys; null when the data does not fit. */
export function withData(reader: SnapshotReader, data: unknown): SnapshotReader | null {
  const view = columnsView(data, DATA_FORMAT, PER_DATUM, reader.count);
  return view === null ? null : { ...reader, data: view };
}

/**
 * Appends the messages `from` to `to` (exclusive) of a part to `out`; false, leaving `out`
 * partly filled, when the part has no data or at the first entry that is not a message (a UID
 * not above the previous one, or not above `after` for the part's first, a flag index outside
 * the table, a value that is not a safe integer in its range).
 */
export function unpackRange(
  reader: SnapshotReader,
  from: number,
  to: number,
  out: MessageMeta[],
  after = 0,
): boolean {
  const { uids, flagIndexes, data, table, count: n } = reader;
  if (data === null) return false;
  const dateAt = HEADER + 8 * n;
  const sizeAt = dateAt + 8 * n;
  let last = from === 0 ? after : uids[from - 1]!;
  for (let i = from; i < to; i++) {
    const uid = uids[i]!;
    const flags = table[flagIndexes[i]!];
    const modseq = data.getFloat64(HEADER + 8 * i, true);
    const internalDate = data.getFloat64(dateAt + 8 * i, true);
    const size = data.getFloat64(sizeAt + 8 * i, true);
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
  keys: unknown,
  data: unknown,
  flagList: (stored: string) => readonly string[],
): MessageMeta[] | null {
  const reader = data === null ? null : openSnapshot(flags, keys, data, flagList);
  if (reader === null) return null;
  const out: MessageMeta[] = [];
  return unpackRange(reader, 0, reader.count, out) ? out : null;
}

/**
 * Writes a part's UIDs and flags into `uids` and `flags` from index `at` on, from its keys alone
 * (a view opens with these columns, `listColumns`). False, leaving the arrays partly filled, at
 * the first entry that is not a message (as `unpackRange`, for the columns it reads).
 */
export function readColumns(
  reader: SnapshotReader,
  uids: number[],
  flags: (readonly string[])[],
  at: number,
  after = 0,
): boolean {
  const { uids: keys, flagIndexes, table, count: n } = reader;
  let last = after;
  for (let i = 0; i < n; i++) {
    const uid = keys[i]!;
    const f = table[flagIndexes[i]!];
    if (uid <= last || f === undefined) return false;
    last = uid;
    uids[at + i] = uid;
    flags[at + i] = f;
  }
  return true;
}
