/**
 * The embedded MailStore over SQLite (`node:sqlite`). The database runs in WAL mode, and a
 * method that changes mail resolves only after its transaction has been committed and synced.
 * Every mutating method is one `BEGIN IMMEDIATE` transaction; the driver is synchronous, so no
 * two calls on one connection interleave. The change feed (`watch`) covers writes made through
 * this instance, and those of the other connections of the same server when a relay joins them
 * (one connection per Worker; their transactions serialize on SQLite's write lock).
 *
 * Group commit, off the event loop: SQLite runs with `synchronous=NORMAL`, so COMMIT writes its
 * WAL frames without waiting for the disk, and the store then syncs the `-wal` file itself with
 * an asynchronous `fdatasync` on Deno's blocking-I/O threads. One sync covers every commit made
 * before it started; commits that arrive while it runs wait for the next one. No result (of a
 * write or of a read that may have seen a commit) and no change event leaves the store before
 * every commit made so far is on disk, so what a client is told is exactly as durable as with
 * `synchronous=FULL`; with several connections, a result that may show another connection's
 * unsynced commit (`PRAGMA data_version` moved) waits for a sync too. Checkpoints stay safe:
 * in NORMAL mode SQLite syncs the WAL before a checkpoint and the database after it, before
 * the WAL is reused. They run in a worker of their own (`_checkpointer.ts`, started after the
 * first commits) rather than inside a COMMIT here; SQLite's own auto-checkpoint remains as a
 * backstop at a much larger WAL.
 */
import { DatabaseSync, type SQLInputValue, type StatementSync } from "node:sqlite";
import type {
  Account,
  AppendBatchResult,
  AppendInput,
  AppendResult,
  ChangesSince,
  CopyResult,
  DeliverOptions,
  DeliverResult,
  DeliveryItem,
  DeliveryOutcome,
  FlagOperation,
  ListingColumns,
  Mailbox,
  MailboxEvent,
  MailStore,
  MessageMeta,
  MessageObjectInfo,
  QuotaLimits,
  SortTextRow,
  SpecialUse,
  StoreFlagsResult,
} from "../mail_store.ts";
import { MailStoreError, markNulFree, nulFlag } from "../mail_store.ts";
import { joinChunks, SELECT_CHUNKS } from "./_chunks.ts";
import { ChunkStream } from "./_chunk_stream.ts";
import { applyFlagOperation, DELETED, hasFlag, normalizeFlags, SEEN } from "../flags.ts";
import {
  DEFAULT_MAILBOXES,
  isDescendant,
  isInbox,
  MAX_MAILBOXES_PER_ACCOUNT,
  normalizeAddress,
  normalizeMailboxName,
  validateAccountName,
  validateSpecialUse,
} from "../mailbox_name.ts";
import { EventHub, type EventRelay } from "../event_hub.ts";
import { checkObjectId, newObjectId } from "../object_id.ts";
import { checkMessageSize, MAX_MESSAGE_BYTES } from "../limits.ts";
import { MIGRATIONS } from "./schema.ts";
import {
  openSnapshot,
  type PackedListing,
  packListing,
  PART_MESSAGES,
  readColumns,
  type SnapshotReader,
  unpackRange,
  withData,
} from "./_listing_snapshot.ts";
import { Pacer } from "../../protocol/event_loop.ts";
import type { CheckpointerReport, CheckpointerRequest } from "./_checkpointer.ts";
import type { BlobReaderReport, BlobReaderRequest } from "./_blob_reader.ts";
import type { BlobWriterReport, BlobWriterRequest } from "./_blob_writer.ts";
import { HELD, HELD_LONG, lockWrites, turnMs, unlockWrites, WRITE_LOCK } from "./_write_lock.ts";
import type {
  AccountRecord,
  ExactStore,
  ExpungedRecord,
  MailboxRecord,
  MessageRecord,
} from "../transfer.ts";

/** Options of `openSqliteMailStore`. */
export interface SqliteMailStoreOptions {
  /**
   * SQLite `synchronous` level. "full" (the default) is what the durability promise needs;
   * "off" exists only for bulk loads in benchmarks and must not be used to serve mail.
   */
  readonly synchronous?: "full" | "off";
  /**
   * How a durable commit reaches the disk: "group" (the default) syncs the WAL asynchronously,
   * one sync for every commit that arrived meanwhile; "inline" lets SQLite sync inside COMMIT
   * (`synchronous=FULL`), blocking the event loop, and is kept as the benchmark reference.
   */
  readonly commit?: "group" | "inline";
  /** Expunge records younger than this stay for QRESYNC (default 30 days). */
  readonly expungedRetentionMs?: number;
  /** The most recent expunge records per mailbox that stay regardless of age (default 10,000). */
  readonly expungedKeep?: number;
  /** Clock for expunge timestamps and pruning (default `Date.now`). */
  readonly now?: () => number;
  /** Hears about change-feed listeners that throw. */
  readonly onListenerError?: (error: unknown) => void;
  /** Largest message `append` accepts (default `MAX_MESSAGE_BYTES`). */
  readonly maxMessageBytes?: number;
  /**
   * Other connections of this server write to the same database (Workers): their changes
   * reach `watch()` through this relay, and results that may show them wait for their sync.
   */
  readonly relay?: EventRelay;
  /**
   * The WAL syncs of every connection of this server (`allocateSharedSync`): a sync by one
   * releases the waiters of all whose commits it covers (it began after them), and they take
   * turns instead of syncing side by side.
   */
  readonly sharedSync?: SharedArrayBuffer;
  /**
   * Starts the blob reader, the blob writer and (in group commit) the checkpoint worker at
   * open, for a database file: `new Worker` blocks the event loop until the thread runs (35-140
   * ms measured on a loaded machine), which a server must not pay in the middle of a request.
   * Otherwise each starts at its first use.
   */
  readonly startWorkers?: boolean;
  /**
   * Whether this connection checkpoints the WAL with a worker of its own, in group-commit mode
   * (default true). Of several connections of one server to one database (its Workers'), one
   * checkpointer is enough: a second one repeats the same checkpoints and their syncs. Without
   * one, this connection leaves SQLite's checkpoint inside COMMIT as a backstop only
   * (`BACKSTOP_AUTOCHECKPOINT_PAGES`).
   */
  readonly checkpointer?: boolean;
  /**
   * Whether large mailboxes' listings are kept as snapshots in the database
   * (`_listing_snapshot.ts`; default true for a database file), so that their first SELECT after
   * a restart or after leaving the listing cache reads one row. They are written by the blob
   * writer, only while it runs (`startWorkers`, or since a large message's APPEND).
   */
  readonly listingSnapshots?: boolean;
  /**
   * Messages the cached listings of large mailboxes may hold in all (default 400,000, about 100
   * bytes each); the least recently listed mailbox leaves the cache first.
   */
  readonly listingCacheMessages?: number;
}

/**
 * Cells of a shared sync record: the turn lock, syncs begun, highest sync index completed, and
 * the write lock (`WRITE_LOCK`, see `_write_lock.ts`).
 */
const SYNC_LOCK = 0;
const SYNC_BEGUN = 1;
const SYNC_DONE = 2;
/** How long a connection waits on another's sync before assuming its holder is gone. */
const SYNC_TURN_MS = 250;
/**
 * How often a write waiting for the lock looks again, should a notification be missed; the
 * other's transaction lasts a fraction of a millisecond unless its thread is off its core.
 */
const WRITE_POLL_MS = 1;
/** The same, while the blob writer holds the lock (`HELD_LONG`). */
const LONG_WRITE_POLL_MS = 10;
/** How long SQLite waits for another connection's write lock (reads; writes see `#locked`). */
const BUSY_TIMEOUT_MS = 5000;
/** How often a write refused by another process's write lock tries again. */
const EXTERNAL_BUSY_POLL_MS = 5;

/** SQLITE_BUSY: another connection (another process) holds the database's write lock. */
function isBusy(error: unknown): boolean {
  return error instanceof Error && error.message === "database is locked";
}

/** A shared sync record for the connections of one server to one database. */
export function allocateSharedSync(): SharedArrayBuffer {
  return new SharedArrayBuffer(4 * 4);
}

const DAY_MS = 86_400_000;
/** Commits after which group-commit mode starts its checkpoint worker. */
const CHECKPOINTER_AFTER_COMMITS = 64;
/** How often the checkpoint worker checkpoints, ms. */
const CHECKPOINT_INTERVAL_MS = 100;
/**
 * WAL pages (256 MiB at 4 KiB) at which SQLite checkpoints inside COMMIT anyway (if the worker
 * falls behind). Two 50 MB blobs written by the blob writer between two of the worker's
 * checkpoints already make 25,000 pages: at 16,384 the next COMMIT here checkpointed them on
 * the event loop, ~150 ms.
 */
const BACKSTOP_AUTOCHECKPOINT_PAGES = 65_536;

/**
 * Opens (creating if needed) the store at `path`, or an in-memory database for ":memory:".
 * Applies pending migrations and prunes old expunge records.
 */
export function openSqliteMailStore(
  path: string,
  options: SqliteMailStoreOptions = {},
): Promise<SqliteMailStore> {
  try {
    if (path !== ":memory:") restrictDatabaseFiles(path, true);
    const store = new SqliteMailStore(path, options);
    if (path !== ":memory:") restrictDatabaseFiles(path, false);
    return Promise.resolve(store);
  } catch (e) {
    return Promise.reject(e);
  }
}

/**
 * Makes the database and its `-wal` and `-shm` files 0600, whoever created them. Before
 * opening, the database is created 0600 if missing, so it is never readable by others, and
 * SQLite gives the `-wal` and `-shm` files it creates later the database's permissions.
 */
function restrictDatabaseFiles(path: string, beforeOpen: boolean): void {
  if (beforeOpen) {
    Deno.openSync(path, { create: true, read: true, write: true, mode: 0o600 }).close();
  }
  for (const file of beforeOpen ? [path] : [path, `${path}-wal`, `${path}-shm`]) {
    try {
      if (((Deno.statSync(file).mode ?? 0) & 0o777) !== 0o600) Deno.chmodSync(file, 0o600);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
}

interface MailboxRow {
  id: number;
  account_id: number;
  name: string;
  uidvalidity: number;
  uidnext: number;
  highestmodseq: number;
  special_use: string | null;
  message_count: number;
  unseen_count: number;
  total_size: number;
  vanished_floor: number;
  subscribed: number;
  object_id: string;
}

interface MessageRow {
  uid: number;
  modseq: number;
  flags: string;
  internal_date: number;
  size: number;
  blob_id: number;
  email_id: string;
  thread_id: string;
  save_date: number | null;
}

type MessageTuple = [
  number,
  number,
  string,
  number,
  number,
  number,
  string,
  string,
  number | null,
];

interface AccountRow {
  id: number;
  name: string;
  password_hash: string | null;
}

const MAILBOX_COLUMNS = `m.id, m.account_id, m.name, m.uidvalidity, m.uidnext, m.highestmodseq,
  m.special_use, m.message_count, m.unseen_count, m.total_size, m.vanished_floor, m.object_id,
  EXISTS (SELECT 1 FROM subscriptions s WHERE s.account_id = m.account_id AND s.name = m.name)
    AS subscribed`;

const MESSAGE_COLUMNS =
  "uid, modseq, flags, internal_date, size, blob_id, email_id, thread_id, save_date";

/** Beyond this many UIDs, getMessages() scans the UID range instead of looking each one up. */
const POINT_LOOKUP_LIMIT = 256;
/** Below that many UIDs, a range scan is still used when it reads at most this many rows each. */
const DENSE_FACTOR = 4;

/** Messages at least this large are read by the blob reader worker, off the event loop. */
const OFF_THREAD_READ_BYTES = 4 * 1024 * 1024;

/**
 * Messages at least this large, handed over (`AppendInput.handOver`), are written by the blob
 * writer worker, off the event loop.
 */
const OFF_THREAD_WRITE_BYTES = OFF_THREAD_READ_BYTES;
/**
 * A blob the blob writer committed whose message row is still missing after this long lost its
 * message (a crash in between); it is swept when the store opens. A live one waits seconds at
 * most (`LONG_TURN_MS` for the write lock, then the busy timeout).
 */
const PENDING_BLOB_MS = 60_000;

/** A blob the blob writer committed, pending until its message row commits. */
interface WrittenBlob {
  readonly id: number;
  /** Set once the message row (which clears the pending row) is in the transaction. */
  used: boolean;
}

/** The blob writer worker and its requests waiting for their reports (undefined: it ended). */
interface BlobWriter {
  readonly worker: Worker;
  next: number;
  readonly pending: Map<
    number,
    (report: Extract<BlobWriterReport, { raw: Uint8Array }> | undefined) => void
  >;
}

/** Settles one blob reader request: the bytes, null when gone, undefined to read here instead. */
type BlobRead = (raw: Uint8Array | null | undefined) => void;

/** The blob reader worker and its requests waiting for their bytes. */
interface BlobReader {
  readonly worker: Worker;
  next: number;
  readonly pending: Map<number, BlobRead>;
  /** Streamed reads (`openRaw`) still receiving pieces. */
  readonly streams: Map<number, ChunkStream>;
}

/**
 * Settles every request of a blob reader that stopped: reads fall back to the store's own
 * connection, streams fail (their pieces may already be on the wire).
 */
function abandonReads(reader: BlobReader, why: string): void {
  for (const p of reader.pending.values()) p(undefined);
  reader.pending.clear();
  for (const s of reader.streams.values()) s.fail(why);
  reader.streams.clear();
}

/**
 * Messages listed per step when a large mailbox is listed a chunk at a time (about 2 ms warm;
 * the steps of a time slice of protocol/event_loop.ts run between two yields).
 */
const LISTING_CHUNK = 1000;
/**
 * Messages per step when a mailbox too small to be cached is listed: its first listing runs cold
 * (about 5 ms for 900), and several SELECTs often come in one turn.
 */
const SMALL_LISTING_CHUNK = 250;
/**
 * Mailboxes smaller than this are listed from SQLite every time; larger ones are cached (and so
 * is any mailbox followed since it was empty, `#applyToListing`).
 */
const LISTING_CACHE_MIN = 1000;
/** Listings the cache holds at most, whatever their size. */
const LISTING_CACHE_ENTRIES = 4096;
/** Messages the cached listings may hold in all by default (about 100 bytes each). */
const LISTING_CACHE_MAX = 400_000;

/**
 * The listing keys a write moved its mailbox from and to. Events carry it (also through the
 * relay), so that a cached listing of exactly the state before follows the write.
 */
interface ListingStep {
  readonly before: string;
  readonly after: string;
}

type StepEvent = MailboxEvent & { readonly listing?: ListingStep };

/** The event as listeners see it: the listing step is the stores' own business. */
function withoutStep(event: MailboxEvent): MailboxEvent {
  if (!("listing" in event)) return event;
  const { listing: _, ...rest } = event as StepEvent;
  return rest as MailboxEvent;
}

/** A mailbox's metadata as last listed, and the mailbox counters it was listed at. */
interface Listing {
  key: string;
  /** Patched in place by writes while `shared` is false. */
  metas: MessageMeta[];
  /**
   * True once `metas` was handed out (`listMessages`): a caller may still be reading it, so the
   * next change patches a copy instead (a SELECT of 100,000 then copies nothing).
   */
  shared: boolean;
  /**
   * The listing key of the snapshot this store last wrote or read for the mailbox
   * (`listing_snapshots`), null when none: a listing whose key moved on from it is written
   * again when it leaves the cache or the store closes.
   */
  stored: string | null;
  /**
   * Messages of `metas` made one at a time by writes since its objects were last made together
   * (`#compact`): scattered through the heap among each write's other objects, they make every
   * pass over the listing several times slower.
   */
  loose?: number;
}

/** Changes to bring a listing to the present (`#listingChanges`): rows as `#listMetas` reads. */
interface ListingChanges {
  readonly rows: readonly (readonly [number, number, string, number, number])[];
  readonly gone: readonly (readonly [number])[];
}

/** A mailbox's stored listing snapshot: its key, its message count and its first part. */
interface StoredSnapshot {
  readonly key: string;
  readonly count: number;
  readonly first: SnapshotReader;
}

/**
 * Largest listing made afresh (`#compact`): at 100,000 messages the scavenge that promoted the
 * copy (11 MB) paused the event loop for 10.3 ms.
 */
const COMPACT_MAX = 32_768;

/** Mailboxes whose last columns handed out are kept (`#keptColumns`). */
const KEPT_COLUMNS = 4;

/** Messages asked for at once (`getMessages`) from which a cold read under way is waited for. */
const WAIT_FOR_LISTING = 1024;

/** Messages unpacked from a snapshot per step (about 0.5 ms warm, 2 ms cold). */
const SNAPSHOT_STEP = 4096;

/** Copies of `from[start..end)`, made one after the other, appended to `to`. */
function copyMetas(from: readonly MessageMeta[], start: number, end: number, to: MessageMeta[]) {
  for (let i = start; i < end; i++) {
    const m = from[i]!;
    to.push({
      uid: m.uid,
      modseq: m.modseq,
      flags: m.flags,
      internalDate: m.internalDate,
      size: m.size,
    });
  }
}

/** The listing's array, copied first when it was handed out: the one to patch in place. */
function ownMetas(listing: Listing): MessageMeta[] {
  if (listing.shared) {
    listing.metas = listing.metas.slice();
    listing.shared = false;
  }
  return listing.metas;
}

/** The lowest and highest of a non-empty set of UIDs (bounds of one range scan). */
function uidSpan(uids: Iterable<number>): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const uid of uids) {
    if (uid < lo) lo = uid;
    if (uid > hi) hi = uid;
  }
  return [lo, hi];
}

/**
 * What changes whenever a mailbox's messages or flags change: every APPEND and COPY raises
 * UIDNEXT, every flag change and expunge raises HIGHESTMODSEQ, and an import changes the count.
 */
function listingKey(m: MailboxRow): string {
  return countersKey(m.uidvalidity, m.uidnext, m.highestmodseq, m.message_count);
}

function countersKey(uidValidity: number, uidNext: number, modseq: number, count: number): string {
  return `${uidValidity}:${uidNext}:${modseq}:${count}`;
}

/** The index of `uid` in `metas` (ascending by UID), or -1. */
function indexOfUid(metas: readonly MessageMeta[], uid: number): number {
  let lo = 0;
  let hi = metas.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const v = metas[mid]!.uid;
    if (v === uid) return mid;
    if (v < uid) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

/**
 * Applies changes read since a listing's state (`#listingChanges`) to its UID and flag columns,
 * in place: expunged UIDs leave, changed ones take their new flags and new ones (above all
 * others) are appended. False when a changed UID below the last is not in the columns.
 */
function patchColumns(
  uids: number[],
  flags: (readonly string[])[],
  changes: ListingChanges,
  flagList: (stored: string) => readonly string[],
): boolean {
  if (changes.gone.length > 0) {
    const drop = new Set(changes.gone.map(([uid]) => uid));
    let kept = 0;
    for (let i = 0; i < uids.length; i++) {
      if (drop.has(uids[i]!)) continue;
      uids[kept] = uids[i]!;
      flags[kept++] = flags[i]!;
    }
    uids.length = kept;
    flags.length = kept;
  }
  for (const [uid, , stored] of changes.rows) {
    const f = flagList(stored);
    if ((uids.at(-1) ?? 0) < uid) {
      uids.push(uid);
      flags.push(f);
      continue;
    }
    let lo = 0;
    let hi = uids.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (uids[mid]! < uid) lo = mid + 1;
      else hi = mid;
    }
    if (uids[lo] !== uid) return false;
    flags[lo] = f;
  }
  return true;
}

/**
 * The entries of `metas` (ascending by UID) whose UIDs are in `uids`, ascending and without
 * repeats, as getMessages() returns them.
 */
function pickSorted(metas: readonly MessageMeta[], uids: readonly number[]): MessageMeta[] {
  const wanted = uids.length > 1 && !ascending(uids)
    ? [...new Set(uids)].sort((a, b) => a - b)
    : uids;
  const out: MessageMeta[] = [];
  let lo = 0;
  for (const uid of wanted) {
    // A run of consecutive messages (FETCH 1:*) is found by looking at the next one.
    const next = metas[lo];
    if (next !== undefined && next.uid === uid) {
      out.push(next);
      lo++;
      continue;
    }
    let hi = metas.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const v = metas[mid]!.uid;
      if (v < uid) lo = mid + 1;
      else hi = mid - 1;
    }
    const hit = metas[lo];
    if (hit !== undefined && hit.uid === uid) {
      out.push(hit);
      lo++;
    }
  }
  return out;
}

/** True when `xs` is strictly ascending. */
function ascending(xs: readonly number[]): boolean {
  for (let i = 1; i < xs.length; i++) if (xs[i]! <= xs[i - 1]!) return false;
  return true;
}

/** How long a closing worker may take to report that its connection is closed. */
const WORKER_CLOSE_MS = 5000;

/**
 * Asks one of the store's workers to close its connection, waits for its `closed` report (or an
 * error, or `WORKER_CLOSE_MS`), then terminates it. Other reports that arrive meanwhile go to
 * `onReport`.
 */
async function closeWorker<R extends { kind: string }>(
  worker: Worker,
  onReport?: (report: R) => void,
): Promise<void> {
  await new Promise<void>((resolve) => {
    const timeout = setTimeout(done, WORKER_CLOSE_MS);
    function done() {
      clearTimeout(timeout);
      resolve();
    }
    worker.onmessage = (e: MessageEvent<R>) => {
      if (e.data.kind === "closed") done();
      else onReport?.(e.data);
    };
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      done();
    };
    worker.postMessage({ kind: "close" });
  });
  worker.terminate();
}

/** The SQLite MailStore. Create it with `openSqliteMailStore`. */
export class SqliteMailStore implements MailStore, ExactStore {
  #db: DatabaseSync;
  /**
   * Listings of large mailboxes, most recently used last: SELECT, SEARCH and FETCH 1:* of a
   * 100,000-message mailbox then build no row objects while the mailbox is unchanged. Checked
   * against the mailbox row at every use, so a change by another process is seen too.
   */
  #listings = new Map<number, Listing>();
  /**
   * Messages in the cached listings as last counted (`#trimListings`) plus those appended since:
   * appends trim the cache once it is beyond its cap.
   */
  #cachedTotal = 0;
  /** Cold reads of cacheable mailboxes' listings under way (`#listMessages`). */
  #coldReads = new Map<number, Promise<void>>();
  /**
   * Columns being read from snapshots (`listColumns`), shared by the callers that come before
   * they are brought to the present (`done`): a caller's columns must hold every change made
   * before its call (it watches the mailbox's events from then on).
   */
  #columnReads = new Map<number, { promise: Promise<ListingColumns | null>; done: boolean }>();
  /**
   * The last columns handed out from snapshots (`listColumns`), each with the listing key of the
   * state it holds: handed out again while the mailbox is at that state, so that the sessions
   * that open it after the first share them rather than split the listing's objects.
   */
  #keptColumns = new Map<number, { key: string; columns: ListingColumns }>();
  /** Listings made after their columns were handed out (`#finishCold`), awaited at close. */
  #finishing = new Set<Promise<void>>();
  /** Listings whose objects are being made afresh (`#compact`). */
  #compacting = new Set<Listing>();
  /** Snapshots being packed a step at a time (`#storeSnapshot`), awaited at close. */
  #packing = new Set<Promise<void>>();
  /** The close under way, once `close()` was called. */
  #closing: Promise<void> | null = null;
  /**
   * The blob reader worker, once a large message was read (or from open, with `startWorkers`);
   * null before and after.
   */
  #blobReader: BlobReader | null = null;
  #statements = new Map<string, StatementSync>();
  /** Frozen flag lists by their stored text, shared by the metadata events carry. */
  #flagLists = new Map<string, readonly string[]>();
  #hub: EventHub;
  #pending: MailboxEvent[] | null = null;
  #closed = false;
  #now: () => number;
  #retentionMs: number;
  #keep: number;
  #maxMessageBytes: number;
  /** The `-wal` file this store syncs itself, or null when SQLite syncs (or nothing does). */
  #walPath: string | null;
  /** The `-wal` file, opened at the first sync. */
  #walFile: Deno.FsFile | null = null;
  /** Commits made since the last WAL sync started. */
  #dirty = false;
  /**
   * With a shared sync record: the syncs begun (its `SYNC_BEGUN`) when this connection last
   * wrote, or saw another's commit, that no sync started here covers yet. A sync with a higher
   * index began after it, so it covers it, whichever connection ran it.
   */
  #unsyncedFrom = 0;
  /** The WAL sync running now, if any. */
  #syncing: Promise<void> | null = null;
  /** The sync that will start once `#syncing` ends and cover the commits made meanwhile. */
  #nextSync: Promise<void> | null = null;
  /** Commits so far in group-commit mode, until the checkpoint worker starts. */
  #commits = 0;
  /** The checkpoint worker, once started. */
  #checkpointer: Worker | null = null;
  /** Another connection checkpoints (`checkpointer: false`): never start a worker for it. */
  #checkpointsElsewhere = false;
  #path: string;
  /** Why a WAL sync failed; once set, the store answers nothing more. */
  #syncFailed: unknown = null;
  /** Where this store's events go to, and other connections' events come from. */
  #relay: EventRelay | null;
  #unsubscribe: (() => void) | null = null;
  /** `PRAGMA data_version` when last read; it moves when another connection commits. */
  #dataVersion = 0;
  /** The shared sync record, when other connections share the WAL syncs. */
  #sharedSync: Int32Array | null;
  /**
   * The write lock's cells: the shared sync record's, else this store's own (shared with its
   * blob writer only).
   */
  #writeCells: Int32Array;
  /** True while a `#write` body runs with the shared write lock taken. */
  #holdsWriteLock = false;
  /**
   * The blob writer worker, once a large message was handed over (or from open, with
   * `startWorkers`); null before and after.
   */
  #blobWriter: BlobWriter | null = null;
  /** `PRAGMA synchronous` of this connection. */
  #synchronous: "FULL" | "NORMAL" | "OFF";
  /** Whether listing snapshots are read and written (`SqliteMailStoreOptions.listingSnapshots`). */
  #snapshots: boolean;
  /** `SqliteMailStoreOptions.listingCacheMessages`. */
  #cacheMax: number;

  constructor(path: string, options: SqliteMailStoreOptions = {}) {
    this.#now = options.now ?? Date.now;
    this.#retentionMs = options.expungedRetentionMs ?? 30 * DAY_MS;
    this.#keep = options.expungedKeep ?? 10_000;
    this.#maxMessageBytes = options.maxMessageBytes ?? MAX_MESSAGE_BYTES;
    this.#cacheMax = options.listingCacheMessages ?? LISTING_CACHE_MAX;
    this.#hub = new EventHub(options.onListenerError);
    this.#relay = options.relay ?? null;
    this.#sharedSync = options.sharedSync ? new Int32Array(options.sharedSync) : null;
    this.#writeCells = this.#sharedSync ?? new Int32Array(allocateSharedSync());
    this.#path = path;
    this.#db = new DatabaseSync(path);
    try {
      this.#db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
      this.#db.exec("PRAGMA journal_mode = WAL");
      const durable = options.synchronous !== "off";
      const memory = path === ":memory:" || path === "";
      this.#snapshots = !memory && options.listingSnapshots !== false;
      const group = durable && !memory && options.commit !== "inline";
      this.#walPath = group ? `${path}-wal` : null;
      const level = !durable ? "OFF" : this.#walPath !== null ? "NORMAL" : "FULL";
      this.#synchronous = level;
      this.#db.exec(`PRAGMA synchronous = ${level}`);
      this.#db.exec("PRAGMA foreign_keys = ON");
      if (this.#walPath !== null && options.checkpointer === false) {
        this.#checkpointsElsewhere = true;
        this.#db.exec(`PRAGMA wal_autocheckpoint = ${BACKSTOP_AUTOCHECKPOINT_PAGES}`);
      }
      this.#migrate();
      this.pruneExpunged();
      this.#sweepPendingBlobs();
      if (options.startWorkers && path !== ":memory:" && path !== "") {
        this.#startBlobWriter();
        this.#startBlobReader();
      }
      if (this.#relay !== null) {
        this.#dataVersion = this.#readDataVersion();
        this.#unsubscribe = this.#relay.subscribe((relayed) => {
          if (this.#closed) return;
          const event = this.#sharedFlags(relayed);
          this.#applyToListing(event);
          this.#hub.emit(withoutStep(event));
        });
      }
    } catch (e) {
      this.#db.close();
      throw e;
    }
  }

  /** The schema version this database is at. */
  get schemaVersion(): number {
    return this.#schemaVersion();
  }

  /** Whether this connection's checkpoint worker runs now. */
  get checkpointing(): boolean {
    return this.#checkpointer !== null;
  }

  /**
   * Drops expunge records older than the retention period, keeping at least the most recent
   * `expungedKeep` per mailbox. Later QRESYNC answers below the pruned MODSEQ fall back to UID
   * gaps, which may report more UIDs than strictly needed (allowed by RFC 7162, Section 3.2.6).
   */
  pruneExpunged(): void {
    this.#open();
    const cutoff = this.#now() - this.#retentionMs;
    const heavy = this.#all<{ mailbox_id: number }>(
      `SELECT mailbox_id FROM expunged WHERE expunged_at < ? GROUP BY mailbox_id
       HAVING count(*) > 0`,
      cutoff,
    );
    for (const { mailbox_id } of heavy) {
      this.#transaction(() => {
        const edge = this.#get<{ modseq: number }>(
          `SELECT modseq FROM expunged WHERE mailbox_id = ? ORDER BY modseq DESC
           LIMIT 1 OFFSET ?`,
          mailbox_id,
          this.#keep,
        );
        if (!edge) return;
        const top = this.#get<{ top: number | null }>(
          `SELECT max(modseq) AS top FROM expunged
           WHERE mailbox_id = ? AND modseq <= ? AND expunged_at < ?`,
          mailbox_id,
          edge.modseq,
          cutoff,
        );
        if (top?.top == null) return;
        this.#run(
          "DELETE FROM expunged WHERE mailbox_id = ? AND modseq <= ? AND expunged_at < ?",
          mailbox_id,
          edge.modseq,
          cutoff,
        );
        this.#run(
          "UPDATE mailboxes SET vanished_floor = max(vanished_floor, ?) WHERE id = ?",
          top.top,
          mailbox_id,
        );
      });
    }
  }

  // Accounts

  createAccount(name: string, passwordHash: string | null): Promise<Account> {
    return this.#write(() => {
      validateAccountName(name);
      return this.#transaction(() => {
        if (this.#get("SELECT 1 FROM accounts WHERE name = ?", name)) {
          throw new MailStoreError("alreadyexists", "Account already exists");
        }
        const id = Number(
          this.#run("INSERT INTO accounts (name, password_hash) VALUES (?, ?)", name, passwordHash)
            .lastInsertRowid,
        );
        for (const [mailboxName, use] of DEFAULT_MAILBOXES) {
          this.#insertMailbox(id, mailboxName, use);
          this.#run("INSERT INTO subscriptions (account_id, name) VALUES (?, ?)", id, mailboxName);
        }
        return { id, name, passwordHash };
      });
    });
  }

  getAccount(name: string): Promise<Account | null> {
    return this.#call(() => {
      const row = this.#get<AccountRow>("SELECT * FROM accounts WHERE name = ?", name);
      return row ? accountView(row) : null;
    });
  }

  setPasswordHash(name: string, passwordHash: string | null): Promise<void> {
    return this.#write(() =>
      this.#transaction(() => {
        const r = this.#run(
          "UPDATE accounts SET password_hash = ? WHERE name = ?",
          passwordHash,
          name,
        );
        if (Number(r.changes) === 0) throw new MailStoreError("nonexistent", "No such account");
      })
    );
  }

  deleteAccount(name: string): Promise<void> {
    return this.#write(() =>
      this.#transaction(() => {
        const account = this.#get<AccountRow>("SELECT * FROM accounts WHERE name = ?", name);
        if (!account) throw new MailStoreError("nonexistent", "No such account");
        const ids = this.#all<{ id: number }>(
          "SELECT id FROM mailboxes WHERE account_id = ?",
          account.id,
        );
        for (const { id } of ids) this.#dropMailbox(id);
        this.#run("DELETE FROM accounts WHERE id = ?", account.id);
      })
    );
  }

  listAccounts(): Promise<Account[]> {
    return this.#call(() =>
      this.#all<AccountRow>("SELECT * FROM accounts ORDER BY id").map(accountView)
    );
  }

  // Delivery addresses

  addAddress(accountId: number, address: string): Promise<void> {
    return this.#write(() => {
      const normal = normalizeAddress(address);
      this.#transaction(() => {
        this.#requireAccount(accountId);
        const owner = this.#get<{ account_id: number }>(
          "SELECT account_id FROM addresses WHERE address = ?",
          normal,
        );
        if (owner && owner.account_id !== accountId) {
          throw new MailStoreError("alreadyexists", "Address belongs to another account");
        }
        this.#run(
          "INSERT OR IGNORE INTO addresses (address, account_id) VALUES (?, ?)",
          normal,
          accountId,
        );
      });
    });
  }

  removeAddress(address: string): Promise<void> {
    return this.#write(() => {
      const normal = normalizeAddress(address);
      this.#transaction(() => {
        const r = this.#run("DELETE FROM addresses WHERE address = ?", normal);
        if (Number(r.changes) === 0) throw new MailStoreError("nonexistent", "No such address");
      });
    });
  }

  listAddresses(accountId: number): Promise<string[]> {
    return this.#call(() => {
      this.#requireAccount(accountId);
      return this.#all<{ address: string }>(
        "SELECT address FROM addresses WHERE account_id = ? ORDER BY address",
        accountId,
      ).map((r) => r.address);
    });
  }

  findAccountByAddress(address: string): Promise<Account | null> {
    return this.#call(() => {
      let normal: string;
      try {
        normal = normalizeAddress(address);
      } catch {
        return null;
      }
      const row = this.#get<AccountRow>(
        `SELECT a.* FROM addresses d JOIN accounts a ON a.id = d.account_id
         WHERE d.address = ?`,
        normal,
      );
      return row ? accountView(row) : null;
    });
  }

  // Mailboxes

  listMailboxes(accountId: number): Promise<Mailbox[]> {
    return this.#call(() => {
      this.#requireAccount(accountId);
      return this.#all<MailboxRow>(
        `SELECT ${MAILBOX_COLUMNS} FROM mailboxes m WHERE m.account_id = ?
         ORDER BY m.name <> 'INBOX', m.name`,
        accountId,
      ).map(mailboxView);
    });
  }

  getMailbox(accountId: number, name: string): Promise<Mailbox | null> {
    return this.#call(() => {
      this.#requireAccount(accountId);
      const row = this.#findMailbox(accountId, normalizeMailboxName(name));
      return row ? mailboxView(row) : null;
    });
  }

  createMailbox(
    accountId: number,
    name: string,
    specialUse?: SpecialUse | null,
  ): Promise<Mailbox> {
    return this.#write(() => {
      const canonical = normalizeMailboxName(name);
      const use = validateSpecialUse(specialUse);
      return this.#transaction(() => {
        this.#requireAccount(accountId);
        if (this.#findMailbox(accountId, canonical)) {
          throw new MailStoreError("alreadyexists", "Mailbox already exists");
        }
        const count = this.#get<{ n: number }>(
          "SELECT count(*) AS n FROM mailboxes WHERE account_id = ?",
          accountId,
        );
        if ((count?.n ?? 0) >= MAX_MAILBOXES_PER_ACCOUNT) {
          throw new MailStoreError("limit", "Too many mailboxes");
        }
        this.#insertMailbox(accountId, canonical, use);
        return mailboxView(this.#findMailbox(accountId, canonical)!);
      });
    });
  }

  deleteMailbox(accountId: number, name: string): Promise<void> {
    return this.#write(() => {
      const canonical = normalizeMailboxName(name);
      if (isInbox(canonical)) throw new MailStoreError("cannot", "INBOX cannot be deleted");
      this.#transaction(() => {
        this.#requireAccount(accountId);
        const m = this.#findMailbox(accountId, canonical);
        if (!m) throw new MailStoreError("nonexistent", "No such mailbox");
        this.#dropMailbox(m.id);
      });
    });
  }

  renameMailbox(accountId: number, from: string, to: string): Promise<void> {
    return this.#write(() => {
      const source = normalizeMailboxName(from);
      const target = normalizeMailboxName(to);
      this.#transaction(() => {
        this.#requireAccount(accountId);
        const m = this.#findMailbox(accountId, source);
        if (!m) throw new MailStoreError("nonexistent", "No such mailbox");
        if (isInbox(target)) throw new MailStoreError("alreadyexists", "INBOX already exists");
        if (source === target || this.#findMailbox(accountId, target)) {
          throw new MailStoreError("alreadyexists", "Target mailbox already exists");
        }
        if (isDescendant(target, source)) {
          throw new MailStoreError("cannot", "Cannot rename a mailbox below itself");
        }
        if (isInbox(source)) {
          this.#renameInbox(m, target);
          return;
        }
        const all = this.#all<{ id: number; name: string }>(
          "SELECT id, name FROM mailboxes WHERE account_id = ?",
          accountId,
        );
        const moves = all
          .filter((c) => c.name === source || isDescendant(c.name, source))
          .map((c) => ({ id: c.id, old: c.name, name: target + c.name.slice(source.length) }));
        const moving = new Set(moves.map((c) => c.id));
        const taken = new Set(all.filter((c) => !moving.has(c.id)).map((c) => c.name));
        for (const c of moves) {
          normalizeMailboxName(c.name);
          if (taken.has(c.name)) {
            throw new MailStoreError(
              "alreadyexists",
              "A mailbox with the new name already exists",
            );
          }
        }
        for (const c of moves) {
          this.#run("UPDATE mailboxes SET name = ? WHERE id = ?", c.name, c.id);
          this.#run(
            "UPDATE OR REPLACE subscriptions SET name = ? WHERE account_id = ? AND name = ?",
            c.name,
            accountId,
            c.old,
          );
        }
        for (const c of moves) {
          this.#pending!.push({ kind: "renamed", mailboxId: c.id, name: c.name });
        }
      });
    });
  }

  setSubscribed(accountId: number, name: string, subscribed: boolean): Promise<void> {
    return this.#write(() => {
      const canonical = normalizeMailboxName(name);
      this.#transaction(() => {
        this.#requireAccount(accountId);
        if (subscribed) {
          if (!this.#findMailbox(accountId, canonical)) {
            throw new MailStoreError("nonexistent", "No such mailbox");
          }
          this.#run(
            "INSERT OR IGNORE INTO subscriptions (account_id, name) VALUES (?, ?)",
            accountId,
            canonical,
          );
        } else {
          this.#run(
            "DELETE FROM subscriptions WHERE account_id = ? AND name = ?",
            accountId,
            canonical,
          );
        }
      });
    });
  }

  listSubscriptions(accountId: number): Promise<string[]> {
    return this.#call(() => {
      this.#requireAccount(accountId);
      return this.#all<{ name: string }>(
        `SELECT name FROM subscriptions WHERE account_id = ? ORDER BY name <> 'INBOX', name`,
        accountId,
      ).map((r) => r.name);
    });
  }

  // Messages

  append(mailboxId: number, input: AppendInput): Promise<AppendResult> {
    if (this.#writesOffThread(input)) {
      return this.#appendOffThread(input, (kept, blob) => this.#append(mailboxId, kept, blob));
    }
    return this.#write(() => {
      checkMessageSize(input.raw, this.#maxMessageBytes);
      return this.#transaction(() => this.#append(mailboxId, input));
    });
  }

  async appendBatch(
    mailboxId: number,
    inputs: readonly AppendInput[],
    quota?: QuotaLimits,
  ): Promise<AppendBatchResult> {
    if (!inputs.some((input) => this.#writesOffThread(input))) {
      return await this.#appendBatch(mailboxId, inputs, quota, []);
    }
    // The large blobs go to the blob writer one by one and stay pending: the batch's one
    // transaction below takes them all or none (MULTIAPPEND is all or nothing, RFC 3502).
    const kept: AppendInput[] = [];
    const blobs: (WrittenBlob | undefined)[] = [];
    // A blob is used only once the batch committed: a rollback leaves `used` set on some.
    let committed = false;
    try {
      for (const input of inputs) {
        const report = this.#writesOffThread(input) ? this.#writeOffThread(input) : null;
        const written = report === null ? null : await report;
        if (written === undefined) {
          throw new MailStoreError("cannot", "Mail store could not write the message");
        }
        kept.push(written === null ? input : { ...input, raw: written.raw });
        blobs.push(
          written !== null && written.kind === "written"
            ? { id: written.blobId, used: false }
            : undefined,
        );
      }
      const result = await this.#appendBatch(mailboxId, kept, quota, blobs);
      committed = result.kind === "stored";
      return result;
    } finally {
      // Over quota, failed, or a writer that ended part-way: no message took these blobs.
      for (const blob of blobs) {
        if (blob !== undefined && !(committed && blob.used)) await this.#dropPendingBlob(blob.id);
      }
    }
  }

  /** `appendBatch` in one transaction; `blobs[i]`, if set, is input i's pending blob. */
  #appendBatch(
    mailboxId: number,
    inputs: readonly AppendInput[],
    quota: QuotaLimits | undefined,
    blobs: readonly (WrittenBlob | undefined)[],
  ): Promise<AppendBatchResult> {
    return this.#write(() => {
      let octets = 0;
      for (const input of inputs) {
        checkMessageSize(input.raw, this.#maxMessageBytes);
        octets += input.raw.byteLength;
      }
      return this.#transaction((): AppendBatchResult => {
        const m = this.#mailboxById(mailboxId);
        if (quota && (quota.storage !== null || quota.messages !== null)) {
          const used = this.#get<{ size: number | null; count: number | null }>(
            `SELECT sum(total_size) AS size, sum(message_count) AS count FROM mailboxes
             WHERE account_id = ?`,
            m.account_id,
          );
          if (quota.storage !== null && (used?.size ?? 0) + octets > quota.storage) {
            return { kind: "overquota", resource: "storage" };
          }
          if (quota.messages !== null && (used?.count ?? 0) + inputs.length > quota.messages) {
            return { kind: "overquota", resource: "messages" };
          }
        }
        return {
          kind: "stored",
          results: inputs.map((input, i) => this.#append(mailboxId, input, blobs[i])),
        };
      });
    });
  }

  deliver(mailboxId: number, input: AppendInput, options: DeliverOptions): Promise<DeliverResult> {
    if (this.#writesOffThread(input)) {
      return this.#appendOffThread(
        input,
        (kept, blob) => this.#deliver(mailboxId, kept, options, blob),
      );
    }
    return this.#write(() => {
      checkMessageSize(input.raw, this.#maxMessageBytes);
      return this.#transaction(() => this.#deliver(mailboxId, input, options));
    });
  }

  deliverBatch(items: readonly DeliveryItem[]): Promise<DeliveryOutcome[]> {
    return this.#write(() =>
      this.#transaction(() =>
        items.map((item): DeliveryOutcome => {
          // Each delivery is its own savepoint: one that fails leaves the others in the commit.
          const mark = this.#pending!.length;
          this.#db.exec("SAVEPOINT delivery");
          try {
            checkMessageSize(item.input.raw, this.#maxMessageBytes);
            const result = this.#deliver(item.mailboxId, item.input, item.options);
            this.#db.exec("RELEASE delivery");
            return { ok: true, result };
          } catch (error) {
            this.#db.exec("ROLLBACK TO delivery");
            this.#db.exec("RELEASE delivery");
            this.#pending!.length = mark;
            return { ok: false, error };
          }
        })
      )
    );
  }

  /** One delivery inside the current transaction: dedup record, quota check, append. */
  #deliver(
    mailboxId: number,
    input: AppendInput,
    options: DeliverOptions,
    blob?: WrittenBlob,
  ): DeliverResult {
    const now = options.now ?? this.#now();
    const dedup = options.windowMs > 0;
    this.#run("DELETE FROM deliveries WHERE delivered_at < ?", now - options.windowMs);
    const seen = dedup
      ? this.#get<{ mailbox_id: number; uid: number }>(
        "SELECT mailbox_id, uid FROM deliveries WHERE key = ?",
        options.deliveryKey,
      )
      : undefined;
    if (seen) return { kind: "duplicate", mailboxId: seen.mailbox_id, uid: seen.uid };
    const m = this.#mailboxById(mailboxId);
    const quota = options.quota;
    if (quota && (quota.storage !== null || quota.messages !== null)) {
      const used = this.#get<{ size: number | null; count: number | null }>(
        `SELECT sum(total_size) AS size, sum(message_count) AS count FROM mailboxes
         WHERE account_id = ?`,
        m.account_id,
      );
      if (quota.storage !== null && (used?.size ?? 0) + input.raw.byteLength > quota.storage) {
        return { kind: "overquota", resource: "storage" };
      }
      if (quota.messages !== null && (used?.count ?? 0) + 1 > quota.messages) {
        return { kind: "overquota", resource: "messages" };
      }
    }
    const result = this.#append(mailboxId, input, blob);
    if (!dedup) return { kind: "stored", ...result };
    this.#run(
      "INSERT OR REPLACE INTO deliveries (key, mailbox_id, uid, delivered_at) VALUES (?, ?, ?, ?)",
      options.deliveryKey,
      mailboxId,
      result.uid,
      now,
    );
    return { kind: "stored", ...result };
  }

  /**
   * Inserts one message inside the current transaction; its blob, search and sort texts too,
   * unless the blob writer committed them already (`blob`).
   */
  #append(mailboxId: number, input: AppendInput, blob?: WrittenBlob): AppendResult {
    const flags = normalizeFlags(input.flags ?? []);
    const internalDate = input.internalDate ?? this.#now();
    const m = this.#mailboxById(mailboxId);
    let blobId: number;
    if (blob !== undefined) {
      blobId = blob.id;
      blob.used = true;
      this.#run("DELETE FROM pending_blobs WHERE blob_id = ?", blobId);
    } else {
      blobId = Number(
        this.#run(
          "INSERT INTO blobs (raw, summary, nul) VALUES (?, ?, ?)",
          input.raw,
          input.summary ?? null,
          nulFlag(input.raw),
        ).lastInsertRowid,
      );
      if (input.searchText !== undefined) {
        this.#run(
          "INSERT INTO search_texts (blob_id, text) VALUES (?, ?)",
          blobId,
          input.searchText,
        );
      }
      if (input.sortText !== undefined) {
        this.#run("INSERT INTO sort_texts (blob_id, text) VALUES (?, ?)", blobId, input.sortText);
      }
    }
    const uid = m.uidnext;
    const modseq = m.highestmodseq + 1;
    const emailId = newObjectId("M");
    this.#insertMessage(mailboxId, uid, modseq, flags, internalDate, input.raw.byteLength, blobId, {
      email_id: emailId,
      thread_id: input.threadId ?? "T" + emailId.slice(1),
      save_date: this.#now(),
    });
    this.#run(
      `UPDATE mailboxes SET uidnext = ?, highestmodseq = ?, message_count = message_count + 1,
       unseen_count = unseen_count + ?, total_size = total_size + ? WHERE id = ?`,
      uid + 1,
      modseq,
      hasFlag(flags, SEEN) ? 0 : 1,
      input.raw.byteLength,
      mailboxId,
    );
    const meta: MessageMeta = {
      uid,
      modseq,
      flags: this.#flagList(flags.join(" ")),
      internalDate,
      size: input.raw.byteLength,
    };
    const event: StepEvent = {
      kind: "append",
      mailboxId,
      uids: [uid],
      metas: [meta],
      listing: this.#step(m, uid + 1, modseq, m.message_count + 1),
    };
    this.#pending!.push(event);
    this.#applyToListing(event);
    return { uidValidity: m.uidvalidity, uid, modseq };
  }

  /** True when `input` is large and handed over, so that the blob writer may take its bytes. */
  #writesOffThread(input: AppendInput): boolean {
    const raw = input.raw;
    return input.handOver === true && raw.byteLength >= OFF_THREAD_WRITE_BYTES &&
      raw.byteLength <= this.#maxMessageBytes && this.#path !== ":memory:" && this.#path !== "" &&
      raw.buffer instanceof ArrayBuffer && raw.byteOffset === 0 &&
      raw.byteLength === raw.buffer.byteLength && !this.#closed && this.#syncFailed === null;
  }

  /**
   * An append whose blob (with its search and sort texts) the blob writer commits first, off
   * the event loop; `store` then commits the message row in the usual write transaction, and
   * the APPEND is answered once that commit, which follows the blob's in the WAL, is durable.
   * Without a writer, or if the writer refuses, the blob is written here as usual.
   */
  async #appendOffThread<T>(
    input: AppendInput,
    store: (input: AppendInput, blob?: WrittenBlob) => T,
  ): Promise<T> {
    const report = this.#writeOffThread(input);
    const written = report === null ? null : await report;
    if (written === undefined) {
      // The writer ended with the bytes: nothing was stored.
      throw new MailStoreError("cannot", "Mail store could not write the message");
    }
    const kept: AppendInput = written === null ? input : { ...input, raw: written.raw };
    if (written === null || written.kind !== "written") {
      return this.#write(() => this.#transaction(() => store(kept)));
    }
    const blob: WrittenBlob = { id: written.blobId, used: false };
    let result: T;
    try {
      result = await this.#write(() => this.#transaction(() => store(kept, blob)));
    } catch (e) {
      await this.#dropPendingBlob(blob.id);
      throw e;
    }
    // A duplicate delivery or a refusal over quota stored no message.
    if (!blob.used) await this.#dropPendingBlob(blob.id);
    return result;
  }

  /**
   * Hands the bytes of `input` to the blob writer (started on first use). Null when there is
   * no writer (the bytes stay here); the report settles undefined if the writer ended with them.
   */
  #writeOffThread(
    input: AppendInput,
  ): Promise<Extract<BlobWriterReport, { raw: Uint8Array }> | undefined> | null {
    const writer = this.#startBlobWriter();
    if (writer === null) return null;
    const id = writer.next++;
    const request: BlobWriterRequest = {
      kind: "write",
      id,
      raw: input.raw,
      summary: input.summary ?? null,
      searchText: input.searchText ?? null,
      sortText: input.sortText ?? null,
      since: this.#now(),
    };
    try {
      writer.worker.postMessage(request, [input.raw.buffer as ArrayBuffer]);
    } catch {
      return null;
    }
    return new Promise((resolve) => writer.pending.set(id, resolve));
  }

  /** The blob writer, started if need be; null when the store is closed or it cannot start. */
  #startBlobWriter(): BlobWriter | null {
    if (this.#closed) return null;
    if (this.#blobWriter !== null) return this.#blobWriter;
    let worker: Worker;
    try {
      worker = new Worker(new URL("./_blob_writer.ts", import.meta.url), { type: "module" });
    } catch {
      return null;
    }
    const writer: BlobWriter = { worker, next: 0, pending: new Map() };
    const failAll = () => {
      if (this.#blobWriter === writer) this.#blobWriter = null;
      worker.terminate();
      // A writer that ended mid-transaction held the lock; when the cells are this store's
      // own, nobody else can hold it as HELD_LONG.
      if (writer.pending.size > 0 && this.#sharedSync === null) {
        if (Atomics.compareExchange(this.#writeCells, WRITE_LOCK, HELD_LONG, 0) === HELD_LONG) {
          Atomics.notify(this.#writeCells, WRITE_LOCK);
        }
      }
      for (const p of writer.pending.values()) p(undefined);
      writer.pending.clear();
    };
    worker.onmessage = (e: MessageEvent<BlobWriterReport>) => {
      const r = e.data;
      if (r.kind === "closed") return;
      const done = writer.pending.get(r.id);
      writer.pending.delete(r.id);
      done?.(r);
    };
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      failAll();
    };
    const open: BlobWriterRequest = {
      kind: "open",
      path: this.#path,
      synchronous: this.#synchronous === "OFF" ? "OFF" : "NORMAL",
      cells: this.#writeCells.buffer as SharedArrayBuffer,
    };
    worker.postMessage(open);
    this.#blobWriter = writer;
    // A large blob in the WAL would otherwise be checkpointed by SQLite inside this
    // connection's next COMMIT, on the event loop.
    if (this.#walPath !== null && this.#checkpointer === null && !this.#checkpointsElsewhere) {
      this.#startCheckpointer();
    }
    return writer;
  }

  /** Closes the blob writer's connection; writes still waiting settle as failed. */
  async #stopBlobWriter(): Promise<void> {
    const writer = this.#blobWriter;
    if (writer === null) return;
    this.#blobWriter = null;
    await closeWorker<BlobWriterReport>(writer.worker, (r) => {
      if (r.kind === "closed") return;
      writer.pending.get(r.id)?.(r);
      writer.pending.delete(r.id);
    });
    for (const p of writer.pending.values()) p(undefined);
    writer.pending.clear();
  }

  /** Removes a blob the blob writer committed and no message took. */
  async #dropPendingBlob(blobId: number): Promise<void> {
    try {
      await this.#write(() =>
        this.#transaction(() => {
          this.#run(
            "DELETE FROM blobs WHERE id IN (SELECT blob_id FROM pending_blobs WHERE blob_id = ?)",
            blobId,
          );
        })
      );
    } catch {
      // The sweep at the next open removes it.
    }
  }

  /** Removes the blobs whose message never committed (see `PENDING_BLOB_MS`). */
  #sweepPendingBlobs(): void {
    const stale = this.#all<{ blob_id: number }>(
      "SELECT blob_id FROM pending_blobs WHERE since < ?",
      this.#now() - PENDING_BLOB_MS,
    );
    if (stale.length === 0) return;
    this.#transaction(() => {
      for (const { blob_id } of stale) {
        this.#run("DELETE FROM pending_blobs WHERE blob_id = ?", blob_id);
        this.#freeBlob(blob_id);
      }
    });
  }

  listMessages(mailboxId: number): Promise<readonly MessageMeta[]> {
    return this.#listMessages(mailboxId, false);
  }

  /**
   * The listing, cached or read. A cacheable mailbox being read cold for another caller is not
   * read twice: the call waits for that read (once, `joined`), then takes the cached listing.
   */
  async #listMessages(mailboxId: number, joined: boolean): Promise<readonly MessageMeta[]> {
    const first = await this.#call(() => {
      const m = this.#mailboxById(mailboxId);
      const cached = this.#listings.get(mailboxId);
      if (
        m.message_count <= SMALL_LISTING_CHUNK || cached?.key === listingKey(m) ||
        (cached !== undefined && this.#catchUp(cached, m) >= 0)
      ) {
        return { listing: this.#handOut(m), mailbox: m, snapshot: null, reading: null, own: null };
      }
      const reading = joined ? undefined : this.#coldReads.get(mailboxId);
      if (reading !== undefined) {
        return { listing: null, mailbox: m, snapshot: null, reading, own: null };
      }
      const snapshot = this.#readSnapshot(m);
      // Registered here, in the same call as the check, so that callers in the same turn wait.
      const own = m.message_count >= LISTING_CACHE_MIN && m.message_count <= this.#cacheMax
        ? Promise.withResolvers<void>()
        : null;
      if (own !== null) this.#coldReads.set(mailboxId, own.promise);
      return { listing: null, mailbox: m, snapshot, reading: null, own };
    });
    if (first.listing !== null) return first.listing;
    if (first.reading !== null) {
      await first.reading;
      return this.#listMessages(mailboxId, true);
    }
    const own = first.own;
    try {
      return await this.#listCold(mailboxId, first.mailbox, first.snapshot);
    } finally {
      // Settled whatever the outcome: a waiter then lists on its own if nothing was cached.
      if (own !== null) {
        if (this.#coldReads.get(mailboxId) === own.promise) this.#coldReads.delete(mailboxId);
        own.resolve();
      }
    }
  }

  listColumns(mailboxId: number): Promise<ListingColumns | null> {
    const shared = this.#columnReads.get(mailboxId);
    if (shared === undefined) return this.#listColumns(mailboxId);
    // Too late to share: the caller lists, waiting for the listing's objects.
    return shared.done ? Promise.resolve(null) : shared.promise;
  }

  /**
   * A cold read of a large mailbox with a stored snapshot that hands out the snapshot's UID and
   * flag columns, brought to the present, as soon as its parts are read (a view opens with them:
   * 100,000 UIDs cost about what 10,000 message objects do). The listing's objects are made
   * afterwards from the same parts (`#finishCold`); `listMessages` meanwhile waits for them as
   * for any cold read, and other callers of this share the columns. Null (and no read) when the
   * listing is cached, being read, or has no usable snapshot.
   */
  async #listColumns(mailboxId: number): Promise<ListingColumns | null> {
    const first = await this.#call(() => {
      const m = this.#mailboxById(mailboxId);
      const kept = this.#keptColumns.get(mailboxId);
      if (kept !== undefined) {
        this.#keptColumns.delete(mailboxId);
        if (kept.key === listingKey(m)) {
          this.#keptColumns.set(mailboxId, kept);
          return kept.columns;
        }
      }
      if (this.#listings.has(mailboxId) || this.#coldReads.has(mailboxId)) return null;
      const snapshot = this.#readSnapshot(m, true);
      if (snapshot === null) return null;
      // Registered in the same call as the check, as `#listMessages` does.
      const own = Promise.withResolvers<void>();
      const columns = Promise.withResolvers<ListingColumns | null>();
      const shared = { promise: columns.promise, done: false };
      this.#coldReads.set(mailboxId, own.promise);
      this.#columnReads.set(mailboxId, shared);
      return { m, snapshot, own, columns, shared };
    });
    if (first === null || !("snapshot" in first)) return first;
    const { m, snapshot, own, columns, shared } = first;
    let parts: SnapshotReader[] | null = null;
    let result: ListingColumns | null = null;
    try {
      parts = await this.#snapshotParts(mailboxId, snapshot);
      const read = parts;
      if (read !== null) {
        result = await this.#call(() => {
          shared.done = true;
          return this.#columnsNow(mailboxId, snapshot, read);
        });
      }
      return result;
    } finally {
      // Never rejected: the others sharing it list on their own when it fails.
      columns.resolve(result);
      if (this.#columnReads.get(mailboxId) === shared) this.#columnReads.delete(mailboxId);
      this.#finishCold(mailboxId, m, parts === null ? null : snapshot, parts, own);
    }
  }

  /**
   * The UID and flag columns of a snapshot's parts, brought to the present; null when a part is
   * malformed or the changes since cannot be applied (`#listingChanges`).
   */
  #columnsNow(
    mailboxId: number,
    snapshot: StoredSnapshot,
    parts: readonly SnapshotReader[],
  ): ListingColumns | null {
    const now = this.#mailboxById(mailboxId);
    const { key, count } = snapshot;
    const uids: number[] = new Array(count);
    const flags: (readonly string[])[] = new Array(count);
    // At least the highest MODSEQ of the messages, which is all a view needs of it.
    const floor = now.highestmodseq;
    let at = 0;
    for (const part of parts) {
      if (!readColumns(part, uids, flags, at, at === 0 ? 0 : uids[at - 1]!)) return null;
      at += part.count;
    }
    const sets = new Set<readonly string[]>();
    for (const part of parts) for (const f of part.table) sets.add(f);
    if (key === listingKey(now)) {
      return this.#keepColumns(now, { uids, flags, sets: [...sets], floor });
    }
    const changes = this.#listingChanges(key, now, count);
    if (changes === null) return null;
    const patched = patchColumns(uids, flags, changes, (t) => this.#flagList(t));
    if (!patched || uids.length !== now.message_count) return null;
    if (changes.gone.length > 0) {
      // An expunged message may have held the only copy of a keyword.
      sets.clear();
      for (const f of flags) sets.add(f);
    } else for (const [, , stored] of changes.rows) sets.add(this.#flagList(stored));
    return this.#keepColumns(now, { uids, flags, sets: [...sets], floor });
  }

  /** Keeps columns of `m`'s present state (`#keptColumns`), for a few mailboxes. */
  #keepColumns(m: MailboxRow, columns: ListingColumns): ListingColumns {
    this.#keptColumns.delete(m.id);
    this.#keptColumns.set(m.id, { key: listingKey(m), columns });
    for (const id of this.#keptColumns.keys()) {
      if (this.#keptColumns.size <= KEPT_COLUMNS) break;
      this.#keptColumns.delete(id);
    }
    return columns;
  }

  /**
   * The rest of a cold read whose columns were handed out: the listing's objects, made from the
   * parts already read (or from the rows when there are none) on a later turn, after the command
   * that took the columns has answered, then cached. Other cold reads wait for it until then.
   */
  #finishCold(
    mailboxId: number,
    m: MailboxRow,
    snapshot: StoredSnapshot | null,
    parts: readonly SnapshotReader[] | null,
    own: PromiseWithResolvers<void>,
  ): void {
    const run = async () => {
      try {
        await new Promise((resolve) => setTimeout(resolve, 0));
        if (this.#closing === null) await this.#listCold(mailboxId, m, snapshot, parts);
      } catch {
        // Never rejected: the next listing reads again.
      } finally {
        if (this.#coldReads.get(mailboxId) === own.promise) this.#coldReads.delete(mailboxId);
        own.resolve();
      }
    };
    const finishing = run();
    this.#finishing.add(finishing);
    void finishing.finally(() => this.#finishing.delete(finishing));
  }

  /** The listing of `m` read from its snapshot when it has a usable one, else from its rows. */
  async #listCold(
    mailboxId: number,
    m: MailboxRow,
    snapshot: StoredSnapshot | null,
    parts?: readonly SnapshotReader[] | null,
  ): Promise<readonly MessageMeta[]> {
    if (snapshot !== null) {
      parts ??= await this.#snapshotParts(mailboxId, snapshot);
      const listed = parts === null
        ? null
        : await this.#listFromSnapshot(mailboxId, snapshot, parts);
      if (listed !== null) return listed;
    }
    const step = m.message_count < LISTING_CACHE_MIN ? SMALL_LISTING_CHUNK : LISTING_CHUNK;
    // The mailbox is read a chunk at a time, yielding between chunks once the time slice is used
    // up (yields are macrotasks, so that socket reads and timers run between chunks).
    const metas: MessageMeta[] = [];
    const parsed = new Map<string, readonly string[]>();
    const pacer = new Pacer();
    for (let after = 0;;) {
      const chunk = await this.#call(() => this.#listMetas(mailboxId, after, step, parsed));
      for (const meta of chunk) metas.push(meta);
      if (chunk.length < step) break;
      after = chunk[chunk.length - 1]!.uid;
      if (pacer.due()) await pacer.yield();
    }
    return this.#call(() => {
      // Every change moves the mailbox counters: equal counters before and after mean the
      // chunks form one consistent listing. Otherwise each row read holds its state at the
      // start or a later one, and the rows changed and expunged since the start's MODSEQ
      // (`#catchUp`) bring all of them to the present.
      const now = this.#mailboxById(mailboxId);
      const listing: Listing = { key: listingKey(m), metas, shared: false, stored: null };
      if (listing.key === listingKey(now) || this.#catchUp(listing, now) >= 0) {
        this.#remember(now, listing.metas, true);
        this.#storeSnapshot(mailboxId, this.#listings.get(mailboxId));
        return listing.metas;
      }
      return this.#handOut(now);
    });
  }

  /**
   * The mailbox's stored snapshot when it is one of its current UIDVALIDITY that the store can
   * bring to the present; null otherwise (none, another UIDVALIDITY, malformed, expunge records
   * pruned since, or a mailbox the cache would not keep).
   */
  #readSnapshot(m: MailboxRow, keysOnly = false): StoredSnapshot | null {
    if (!this.#snapshots || m.message_count < LISTING_CACHE_MIN) return null;
    if (m.message_count > this.#cacheMax) return null;
    const part = this.#snapshotPart(m.id, 0, keysOnly);
    if (part === null) return null;
    const { key, reader } = part;
    const [validity, , modseq, count] = key.split(":").map(Number);
    if (validity !== m.uidvalidity || !(modseq! >= m.vanished_floor)) return null;
    if (!(modseq! <= m.highestmodseq) || !(count! <= this.#cacheMax)) return null;
    if (!Number.isSafeInteger(count) || reader.count !== Math.min(count!, PART_MESSAGES)) {
      return null;
    }
    return { key, count: count!, first: reader };
  }

  /**
   * Part `part` of the mailbox's stored snapshot, checked, without its data when `keysOnly`
   * (SQLite then reads no byte of it: the keys come first in the row); null when none or
   * malformed.
   */
  #snapshotPart(
    mailboxId: number,
    part: number,
    keysOnly = false,
  ): { key: string; reader: SnapshotReader } | null {
    const row = this.#arrayStatement(
      keysOnly
        ? "SELECT key, flags, keys FROM listing_snapshots WHERE mailbox_id = ? AND part = ?"
        : "SELECT key, flags, keys, data FROM listing_snapshots WHERE mailbox_id = ? AND part = ?",
    ).get(mailboxId, part) as unknown as unknown[] | undefined;
    if (row === undefined || typeof row[0] !== "string") return null;
    const reader = openSnapshot(row[1], row[2], keysOnly ? null : row[3], (t) => this.#flagList(t));
    return reader === null ? null : { key: row[0], reader };
  }

  /** `reader` (part `part`, read without its data) with its data; null when it does not fit. */
  #snapshotData(
    mailboxId: number,
    part: number,
    key: string,
    reader: SnapshotReader,
  ): SnapshotReader | null {
    const row = this.#arrayStatement(
      "SELECT key, data FROM listing_snapshots WHERE mailbox_id = ? AND part = ?",
    ).get(mailboxId, part) as unknown as unknown[] | undefined;
    return row?.[0] === key ? withData(reader, row[1]) : null;
  }

  /**
   * Every part of `snapshot`, each read on its own store call (yielding between them once the
   * time slice is used up): all must be of the same snapshot (another may have replaced it
   * meanwhile) and together hold exactly its messages. Null when they do not.
   */
  async #snapshotParts(
    mailboxId: number,
    snapshot: StoredSnapshot,
  ): Promise<SnapshotReader[] | null> {
    const { key, count } = snapshot;
    const parts = [snapshot.first];
    const keysOnly = snapshot.first.data === null;
    const pacer = new Pacer();
    for (let read = snapshot.first.count; read < count;) {
      if (pacer.due()) await pacer.yield();
      const part = parts.length;
      const reader = await this.#call(() => this.#snapshotPart(mailboxId, part, keysOnly))
        .then((p) => p?.key === key ? p.reader : null);
      if (reader === null || reader.count !== Math.min(count - read, PART_MESSAGES)) return null;
      parts.push(reader);
      read += reader.count;
    }
    return parts;
  }

  /**
   * A listing unpacked from the parts of `snapshot` a step at a time, yielding between steps
   * once the time slice is used up, then brought to the present (`#catchUp`) and cached. Null
   * when the snapshot turns out malformed or cannot be brought up to date: the caller lists the
   * mailbox afresh.
   */
  async #listFromSnapshot(
    mailboxId: number,
    snapshot: StoredSnapshot,
    parts: readonly SnapshotReader[],
  ): Promise<readonly MessageMeta[] | null> {
    const { key } = snapshot;
    const metas: MessageMeta[] = [];
    const pacer = new Pacer();
    for (let part = 0; part < parts.length; part++) {
      const read = parts[part]!;
      // Parts read for their columns (`listColumns`) are read again for their data.
      const reader = read.data !== null
        ? read
        : await this.#call(() => this.#snapshotData(mailboxId, part, key, read));
      if (reader === null) return null;
      for (let from = 0; from < reader.count; from += SNAPSHOT_STEP) {
        const to = Math.min(reader.count, from + SNAPSHOT_STEP);
        if (!unpackRange(reader, from, to, metas, metas.at(-1)?.uid ?? 0)) return null;
        if (pacer.due()) await pacer.yield();
      }
    }
    return this.#call(() => {
      const now = this.#mailboxById(mailboxId);
      const cached = this.#listings.get(mailboxId);
      // Another read of the same mailbox may have cached a listing meanwhile.
      if (
        cached !== undefined && (cached.key === listingKey(now) || this.#catchUp(cached, now) >= 0)
      ) {
        return this.#handOut(now);
      }
      const listing: Listing = { key, metas, shared: false, stored: key };
      const changes = key === listingKey(now) ? 0 : this.#catchUp(listing, now);
      if (changes < 0) return null;
      this.#remember(now, listing.metas, true, key);
      // A snapshot far behind costs every cold read its catch-up: store the present one.
      if (changes > listing.metas.length >> 4) {
        this.#storeSnapshot(mailboxId, this.#listings.get(mailboxId));
      }
      return listing.metas;
    });
  }

  /**
   * Hands a cached listing whose snapshot is not its present state to the blob writer, which
   * stores it (a cache: a write that fails or is lost costs the next cold read a full listing).
   */
  #storeSnapshot(mailboxId: number, listing: Listing | undefined, paced = true): void {
    if (!this.#snapshots || listing === undefined || listing.stored === listing.key) return;
    const n = listing.metas.length;
    if (n < LISTING_CACHE_MIN || n > this.#cacheMax) return;
    // Started here, a writer would block the event loop while its thread starts.
    if (this.#blobWriter === null || this.#closed) return;
    const { key, metas } = listing;
    // Packed across turns (400,000 messages take about 12 ms): writes meanwhile patch a copy.
    listing.shared = true;
    listing.stored = key;
    const failed = () => {
      if (listing.stored === key) listing.stored = null;
    };
    if (!paced) {
      const parts = [];
      for (let from = 0; from < n; from += PART_MESSAGES) {
        parts.push(packListing(metas, from, Math.min(n, from + PART_MESSAGES)));
      }
      return this.#postSnapshot(mailboxId, key, parts, failed);
    }
    const packing = (async () => {
      try {
        const parts = [];
        const pacer = new Pacer();
        for (let from = 0; from < n; from += PART_MESSAGES) {
          parts.push(packListing(metas, from, Math.min(n, from + PART_MESSAGES)));
          if (pacer.due()) await pacer.yield();
        }
        this.#postSnapshot(mailboxId, key, parts, failed);
      } catch {
        // Never rejected: nobody awaits it but close().
        failed();
      }
    })();
    this.#packing.add(packing);
    packing.finally(() => this.#packing.delete(packing));
  }

  /** Hands a packed snapshot to the blob writer; `failed` when it is not stored. */
  #postSnapshot(
    mailboxId: number,
    key: string,
    parts: readonly PackedListing[],
    failed: () => void,
  ): void {
    const writer = this.#blobWriter;
    if (writer === null || this.#closed) return failed();
    const [uidValidity, , modseq] = key.split(":").map(Number);
    const id = writer.next++;
    const request: BlobWriterRequest = {
      kind: "snapshot",
      id,
      mailboxId,
      uidValidity: uidValidity!,
      modseq: modseq!,
      key,
      parts,
    };
    try {
      writer.worker.postMessage(
        request,
        parts.flatMap((p) => [p.keys.buffer as ArrayBuffer, p.data.buffer as ArrayBuffer]),
      );
    } catch {
      return failed();
    }
    writer.pending.set(id, (report) => {
      if (report?.kind !== "written") failed();
    });
  }

  /**
   * Makes a cached listing's message objects afresh, one after the other and a step at a time
   * between yields, so that they lie together in the heap: a listing followed from empty (100,000
   * appends, each made among its command's other objects) took 3.4 times as long to pick messages
   * from. The copy replaces the listing's array only if no write moved it meanwhile (the next
   * hand-out tries again otherwise); arrays handed out are never changed. Only listings of up to
   * `COMPACT_MAX` messages: the copy is young objects that all survive, and the scavenge that
   * promotes them holds the event loop for about 1 ms per 10,000.
   */
  #compact(mailboxId: number, listing: Listing): void {
    if (this.#compacting.has(listing)) return;
    this.#compacting.add(listing);
    const { key, metas: from } = listing;
    const run = async () => {
      try {
        // After the command that handed the listing out has answered.
        await new Promise((resolve) => setTimeout(resolve, 0));
        const metas: MessageMeta[] = [];
        const pacer = new Pacer();
        for (let at = 0; at < from.length; at += SNAPSHOT_STEP) {
          copyMetas(from, at, Math.min(from.length, at + SNAPSHOT_STEP), metas);
          if (pacer.due()) await pacer.yield();
        }
        if (
          this.#listings.get(mailboxId) === listing && listing.key === key &&
          listing.metas === from
        ) {
          listing.metas = metas;
          listing.shared = false;
          listing.loose = 0;
        }
      } finally {
        this.#compacting.delete(listing);
      }
    };
    void run();
  }

  /** `#listing` to hand out: a cached array is marked shared, so that changes copy it first. */
  #handOut(m: MailboxRow): readonly MessageMeta[] {
    const metas = this.#listing(m);
    const cached = this.#listings.get(m.id);
    if (cached !== undefined && cached.metas === metas) cached.shared = true;
    return metas;
  }

  /** The mailbox's listing, from the cache while its counters are unchanged. */
  #listing(m: MailboxRow): readonly MessageMeta[] {
    const key = listingKey(m);
    const cached = this.#listings.get(m.id);
    if (cached !== undefined) {
      this.#listings.delete(m.id);
      if (cached.key === key || this.#catchUp(cached, m) >= 0) {
        this.#listings.set(m.id, cached);
        const loose = cached.loose ?? 0;
        const n = cached.metas.length;
        if (loose > LISTING_CACHE_MIN && loose * 4 > n && n <= COMPACT_MAX) {
          this.#compact(m.id, cached);
        }
        return cached.metas;
      }
    }
    const metas = this.#listMetas(m.id, 0, -1);
    this.#remember(m, metas);
    this.#storeSnapshot(m.id, this.#listings.get(m.id));
    return metas;
  }

  /**
   * Caches the listing of a large mailbox, evicting the least recently used beyond the cap (their
   * snapshots stored first when behind). `stored`: the key of the mailbox's stored snapshot.
   */
  #remember(
    m: MailboxRow,
    metas: MessageMeta[],
    shared = false,
    stored: string | null = null,
  ): void {
    if (metas.length < LISTING_CACHE_MIN || metas.length > this.#cacheMax) return;
    this.#listings.delete(m.id);
    this.#listings.set(m.id, { key: listingKey(m), metas, shared, stored });
    this.#trimListings(m.id);
  }

  /**
   * Evicts the least recently cached listings but `keep`'s while the cache holds more messages
   * than its cap or more listings than `LISTING_CACHE_ENTRIES` (their snapshots stored first
   * when behind).
   */
  #trimListings(keep: number): void {
    let total = 0;
    for (const l of this.#listings.values()) total += l.metas.length;
    for (const [id, l] of this.#listings) {
      if (total <= this.#cacheMax && this.#listings.size <= LISTING_CACHE_ENTRIES) break;
      if (id === keep) continue;
      this.#listings.delete(id);
      this.#storeSnapshot(id, l);
      total -= l.metas.length;
    }
    this.#cachedTotal = total;
  }

  /**
   * The listing step of a write to `m` (the mailbox as read inside the write transaction),
   * whose counters after it are `uidNext`, `modseq` and `count`.
   */
  #step(m: MailboxRow, uidNext: number, modseq: number, count: number): ListingStep {
    return { before: listingKey(m), after: countersKey(m.uidvalidity, uidNext, modseq, count) };
  }

  /**
   * Brings a cached listing up to date with a committed write, this connection's or (through
   * the relay) another's, when the listing is exactly the state before it (`listing.before`);
   * the next SELECT then need not list the mailbox again. A listing of any other state is left
   * to fail its key check. A rollback drops all listings.
   */
  #applyToListing(event: MailboxEvent): void {
    const step = (event as StepEvent).listing;
    if (typeof step?.before !== "string" || typeof step.after !== "string") return;
    let cached = this.#listings.get(event.mailboxId);
    if (
      cached === undefined && event.kind === "append" && step.before.endsWith(":0") &&
      this.#cacheMax > 0
    ) {
      // The mailbox was empty: its listing is known without reading it, and is followed from
      // its first message on (a new mailbox, or one filled by a migration, then opens cached).
      cached = { key: step.before, metas: [], shared: false, stored: null };
      this.#listings.set(event.mailboxId, cached);
      this.#trimListings(event.mailboxId);
    }
    if (cached === undefined || cached.key !== step.before) return;
    const metas = ownMetas(cached);
    let ok = true;
    switch (event.kind) {
      case "append":
        for (const meta of event.metas ?? []) {
          if ((metas.at(-1)?.uid ?? 0) < meta.uid) metas.push(meta);
          else ok = false;
        }
        if (event.metas === undefined) ok = false;
        cached.loose = (cached.loose ?? 0) + (event.metas?.length ?? 0);
        break;
      case "flags":
        for (const meta of event.metas ?? []) {
          const i = indexOfUid(metas, meta.uid);
          if (i >= 0) metas[i] = meta;
        }
        if (event.metas === undefined) ok = false;
        cached.loose = (cached.loose ?? 0) + (event.metas?.length ?? 0);
        break;
      case "expunge": {
        const gone = new Set(event.uids);
        let kept = 0;
        for (const meta of metas) if (!gone.has(meta.uid)) metas[kept++] = meta;
        metas.length = kept;
        break;
      }
      default:
        ok = false;
    }
    if (!ok || metas.length > this.#cacheMax) {
      this.#listings.delete(event.mailboxId);
      return;
    }
    cached.key = step.after;
    if (event.kind !== "append") return;
    this.#cachedTotal += event.metas?.length ?? 0;
    if (this.#cachedTotal > this.#cacheMax) this.#trimListings(event.mailboxId);
    // A listing that grows by appends is stored again once a fifth larger than its snapshot, so
    // that a cold read after a crash has little to catch up on.
    const storedCount = Number(cached.stored?.split(":")[3] ?? 0);
    if (metas.length >= LISTING_CACHE_MIN && metas.length > storedCount * 1.2) {
      this.#storeSnapshot(event.mailboxId, cached);
    }
  }

  /**
   * Brings a cached listing of an earlier state of `m` up to date from the rows changed and the
   * UIDs expunged since its MODSEQ, both found through their MODSEQ indexes, instead of listing
   * the whole mailbox again. Another connection's writes (the other Workers') move the counters
   * before their events arrive, so without this each of them cost every other connection a
   * listing. -1, leaving the listing as it was, when it cannot be done exactly or cheaply:
   * another UIDVALIDITY, expunge records pruned, more changes than a quarter of the listing, or
   * a result that does not add up to the mailbox's count. Otherwise the number of rows changed
   * and expunged it applied.
   */
  #catchUp(cached: Listing, m: MailboxRow): number {
    const changes = this.#listingChanges(cached.key, m, cached.metas.length);
    if (changes === null) return -1;
    const { rows, gone } = changes;
    const metas = cached.metas.slice();
    if (gone.length > 0) {
      const drop = new Set(gone.map(([uid]) => uid));
      let kept = 0;
      for (const meta of metas) if (!drop.has(meta.uid)) metas[kept++] = meta;
      metas.length = kept;
    }
    const parsed = new Map<string, readonly string[]>();
    for (const [uid, modseq, stored, internalDate, size] of rows) {
      let flags = parsed.get(stored);
      if (!flags) {
        flags = Object.freeze(splitFlags(stored));
        parsed.set(stored, flags);
      }
      const meta = { uid, modseq, flags, internalDate, size };
      if ((metas.at(-1)?.uid ?? 0) < uid) {
        metas.push(meta);
        continue;
      }
      const i = indexOfUid(metas, uid);
      if (i < 0) return -1;
      metas[i] = meta;
    }
    if (metas.length !== m.message_count || metas.length > this.#cacheMax) return -1;
    cached.metas = metas;
    cached.shared = false;
    cached.key = listingKey(m);
    return rows.length + gone.length;
  }

  /**
   * The rows changed and the UIDs expunged in `m` since the state of listing key `key`, in UID
   * order, when they can bring a listing of `count` messages at that state to `m`'s: null when
   * the key is of another UIDVALIDITY or not behind `m`, expunge records were pruned since, or
   * the changes are more than a quarter of the listing (listing afresh is then as cheap).
   */
  #listingChanges(key: string, m: MailboxRow, count: number): ListingChanges | null {
    const [validity, , modseqText] = key.split(":");
    const since = Number(modseqText);
    if (Number(validity) !== m.uidvalidity || !(since >= m.vanished_floor)) return null;
    if (!(since < m.highestmodseq)) return null;
    const limit = Math.max(64, count >> 2);
    const rows = this.#arrayStatement(
      `SELECT uid, modseq, flags, internal_date, size FROM messages
       WHERE mailbox_id = ? AND modseq > ? ORDER BY uid LIMIT ?`,
    ).all(m.id, since, limit + 1) as unknown as ListingChanges["rows"];
    if (rows.length > limit) return null;
    const gone = this.#arrayStatement(
      "SELECT uid FROM expunged WHERE mailbox_id = ? AND modseq > ? LIMIT ?",
    ).all(m.id, since, limit + 1) as unknown as [number][];
    if (gone.length > limit) return null;
    return { rows, gone };
  }

  /**
   * Up to `limit` (-1: all) messages with UIDs above `after`, in UID order. Most messages share
   * a few flag combinations: each is parsed once per `parsed` map and the frozen array shared.
   */
  #listMetas(
    mailboxId: number,
    after: number,
    limit: number,
    parsed = new Map<string, readonly string[]>(),
  ): MessageMeta[] {
    const rows = this.#arrayStatement(
      `SELECT uid, modseq, flags, internal_date, size FROM messages
       WHERE mailbox_id = ? AND uid > ? ORDER BY uid LIMIT ?`,
    ).all(mailboxId, after, limit) as unknown as [number, number, string, number, number][];
    const out: MessageMeta[] = new Array(rows.length);
    for (let i = 0; i < rows.length; i++) {
      const [uid, modseq, stored, internalDate, size] = rows[i]!;
      let flags = parsed.get(stored);
      if (!flags) {
        flags = Object.freeze(splitFlags(stored));
        if (parsed.size < 1024) parsed.set(stored, flags);
      }
      out[i] = { uid, modseq, flags, internalDate, size };
    }
    return out;
  }

  getMessages(mailboxId: number, uids: readonly number[]): Promise<MessageMeta[]> {
    // Many messages of a listing being read cold (its columns handed out): its objects are
    // about to be cached, and picking from them beats reading thousands of rows.
    const reading = uids.length >= WAIT_FOR_LISTING ? this.#coldReads.get(mailboxId) : undefined;
    if (reading !== undefined) return reading.then(() => this.#getMessages(mailboxId, uids));
    return this.#getMessages(mailboxId, uids);
  }

  #getMessages(mailboxId: number, uids: readonly number[]): Promise<MessageMeta[]> {
    return this.#call(() => {
      const m = this.#mailboxById(mailboxId);
      const cached = this.#listings.get(mailboxId);
      if (cached !== undefined && cached.key === listingKey(m)) {
        return pickSorted(cached.metas, uids);
      }
      // Rows share few flag combinations: split each once per call and share the frozen array.
      const parsed = new Map<string, readonly string[]>();
      return this.#messageRows(mailboxId, uids).map((row) => {
        let flags = parsed.get(row.flags);
        if (flags === undefined) {
          flags = Object.freeze(splitFlags(row.flags));
          if (parsed.size < 1024) parsed.set(row.flags, flags);
        }
        return {
          uid: row.uid,
          modseq: row.modseq,
          flags,
          internalDate: row.internal_date,
          size: row.size,
        };
      });
    });
  }

  getObjectInfo(
    mailboxId: number,
    uids: readonly number[],
  ): Promise<Map<number, MessageObjectInfo>> {
    return this.#call(() => {
      this.#mailboxExists(mailboxId);
      const out = new Map<number, MessageObjectInfo>();
      for (const row of this.#messageRows(mailboxId, uids)) {
        out.set(row.uid, {
          emailId: row.email_id,
          threadId: row.thread_id,
          saveDate: row.save_date,
        });
      }
      return out;
    });
  }

  async getRaw(mailboxId: number, uid: number): Promise<Uint8Array | null> {
    const found = await this.#call((): { raw: Uint8Array | null } | { blobId: number } => {
      const m = this.#get<{ blob_id: number; size: number }>(
        "SELECT blob_id, size FROM messages WHERE mailbox_id = ? AND uid = ?",
        mailboxId,
        uid,
      );
      // A message row means its mailbox exists (ON DELETE CASCADE, foreign keys on): only a
      // miss needs to tell a missing mailbox from a missing message.
      if (m === undefined) {
        this.#mailboxExists(mailboxId);
        return { raw: null };
      }
      if (m.size >= OFF_THREAD_READ_BYTES && this.#path !== ":memory:") {
        return { blobId: m.blob_id };
      }
      return { raw: this.#blob(m.blob_id) };
    });
    if ("raw" in found) return found.raw;
    // A stored blob never changes, so reading it on another connection is safe; one expunged
    // meanwhile reads as gone, as it would a moment later.
    const raw = await this.#readOffThread(found.blobId);
    return raw !== undefined ? raw : this.#call(() => this.#blob(found.blobId));
  }

  #blob(blobId: number): Uint8Array | null {
    const row = this.#get<{ raw: Uint8Array; nul: number | null; chunks: number | null }>(
      "SELECT raw, nul, chunks FROM blobs WHERE id = ?",
      blobId,
    );
    if (row === undefined) return null;
    const raw = row.chunks === null ? row.raw : this.#joinChunks(blobId, row.chunks);
    return raw !== null && row.nul === 0 ? markNulFree(raw) : raw;
  }

  /** A blob stored in pieces, joined (null when they are not all there). */
  #joinChunks(blobId: number, chunks: number): Uint8Array | null {
    return joinChunks(this.#statement(SELECT_CHUNKS), blobId, chunks);
  }

  async openRaw(mailboxId: number, uid: number): Promise<ChunkStream | null | undefined> {
    const found = await this.#call(() => {
      const m = this.#get<
        { blob_id: number; size: number; nul: number | null; chunks: number | null }
      >(
        `SELECT m.blob_id, m.size, b.nul, b.chunks FROM messages m JOIN blobs b ON b.id = m.blob_id
         WHERE m.mailbox_id = ? AND m.uid = ?`,
        mailboxId,
        uid,
      );
      if (m === undefined) {
        this.#mailboxExists(mailboxId);
        return null;
      }
      return m.chunks === null || this.#path === ":memory:" ? undefined : m;
    });
    if (found === null || found === undefined) return found;
    const reader = this.#startBlobReader();
    if (reader === null) return undefined;
    const stream = new ChunkStream(found.size, found.nul === 0, found.chunks!);
    const id = reader.next++;
    reader.streams.set(id, stream);
    const request: BlobReaderRequest = { kind: "stream", id, blobId: found.blob_id };
    reader.worker.postMessage(request);
    return stream;
  }

  /**
   * Reads a blob in the blob reader worker (started on first use); undefined when there is no
   * worker or it failed, and the caller reads on the store's own connection.
   */
  #readOffThread(blobId: number): Promise<Uint8Array | null | undefined> {
    const reader = this.#startBlobReader();
    if (reader === null) return Promise.resolve(undefined);
    const id = reader.next++;
    return new Promise((resolve) => {
      reader.pending.set(id, resolve);
      const read: BlobReaderRequest = { kind: "read", id, blobId };
      reader.worker.postMessage(read);
    });
  }

  /** The blob reader, started if need be; null when the store is closed or it cannot start. */
  #startBlobReader(): BlobReader | null {
    if (this.#closed) return null;
    if (this.#blobReader === null) {
      try {
        const worker = new Worker(new URL("./_blob_reader.ts", import.meta.url), {
          type: "module",
        });
        const reader: BlobReader = {
          worker,
          next: 0,
          pending: new Map<number, BlobRead>(),
          streams: new Map<number, ChunkStream>(),
        };
        const failAll = () => {
          if (this.#blobReader === reader) this.#blobReader = null;
          worker.terminate();
          abandonReads(reader, "The blob reader failed");
        };
        worker.onmessage = (e: MessageEvent<BlobReaderReport>) => {
          const r = e.data;
          const stream = reader.streams.get(r.id);
          if (stream !== undefined) {
            if (r.kind === "chunk") return stream.push(r.data);
            reader.streams.delete(r.id);
            if (r.kind === "end") stream.end(r.chunks);
            else stream.fail(r.kind === "error" ? r.message : "Unexpected report");
            return;
          }
          const done = reader.pending.get(r.id);
          reader.pending.delete(r.id);
          done?.(
            r.kind !== "raw"
              ? undefined
              : r.raw !== null && r.nul === 0
              ? markNulFree(r.raw)
              : r.raw,
          );
        };
        worker.onerror = (e: ErrorEvent) => {
          e.preventDefault();
          failAll();
        };
        const open: BlobReaderRequest = { kind: "open", path: this.#path };
        worker.postMessage(open);
        this.#blobReader = reader;
      } catch {
        return null;
      }
    }
    return this.#blobReader;
  }

  /** Stops the blob reader; reads still waiting fall back to the store's own connection. */
  #stopBlobReader(): void {
    const reader = this.#blobReader;
    if (reader === null) return;
    this.#blobReader = null;
    reader.worker.terminate();
    abandonReads(reader, "The store is closing");
  }

  getSummary(mailboxId: number, uid: number): Promise<string | null> {
    return this.#call(() => {
      const row = this.#get<{ summary: string | null }>(
        `SELECT b.summary FROM messages m JOIN blobs b ON b.id = m.blob_id
         WHERE m.mailbox_id = ? AND m.uid = ?`,
        mailboxId,
        uid,
      );
      if (row === undefined) this.#mailboxExists(mailboxId);
      return row?.summary ?? null;
    });
  }

  getSearchTexts(
    mailboxId: number,
    uids: readonly number[],
    contains?: string,
  ): Promise<Map<number, string | null>> {
    return this.#call(() => {
      this.#mailboxExists(mailboxId);
      const out = new Map<number, string | null>();
      if (uids.length === 0) return out;
      const wanted = new Set(uids);
      const [lo, hi] = uidSpan(wanted);
      // One range scan over the primary key; UIDs in the range that were not asked for are
      // skipped here rather than sent as thousands of parameters. instr() compares UTF-8
      // octets, which for a substring of valid text is the same as comparing characters.
      const rows = (contains === undefined
        ? this.#arrayStatement(
          `SELECT m.uid, s.text FROM messages m LEFT JOIN search_texts s ON s.blob_id = m.blob_id
           WHERE m.mailbox_id = ? AND m.uid BETWEEN ? AND ? ORDER BY m.uid`,
        ).all(mailboxId, lo, hi)
        : this.#arrayStatement(
          `SELECT m.uid, s.text FROM messages m LEFT JOIN search_texts s ON s.blob_id = m.blob_id
           WHERE m.mailbox_id = ? AND m.uid BETWEEN ? AND ?
           AND (s.text IS NULL OR instr(s.text, ?) > 0) ORDER BY m.uid`,
        ).all(mailboxId, lo, hi, contains)) as unknown as [number, string | null][];
      for (const [uid, text] of rows) {
        if (wanted.has(uid)) out.set(uid, text);
      }
      return out;
    });
  }

  getSortTexts(mailboxId: number, uids: readonly number[]): Promise<SortTextRow[]> {
    return this.#call(() => {
      this.#mailboxExists(mailboxId);
      if (uids.length === 0) return [];
      const wanted = new Set(uids);
      const [lo, hi] = uidSpan(wanted);
      // One range scan, as in getSearchTexts.
      const rows = this.#arrayStatement(
        `SELECT m.uid, m.size, m.internal_date, t.text FROM messages m
         LEFT JOIN sort_texts t ON t.blob_id = m.blob_id
         WHERE m.mailbox_id = ? AND m.uid BETWEEN ? AND ? ORDER BY m.uid`,
      ).all(mailboxId, lo, hi) as unknown as [number, number, number, string | null][];
      const out: SortTextRow[] = [];
      for (const [uid, size, internalDate, text] of rows) {
        if (wanted.has(uid)) out.push({ uid, size, internalDate, text });
      }
      return out;
    });
  }

  storeFlags(
    mailboxId: number,
    uids: readonly number[],
    op: FlagOperation,
    flags: readonly string[],
    unchangedSince?: number,
  ): Promise<StoreFlagsResult> {
    return this.#write(() => {
      const change = normalizeFlags(flags);
      return this.#transaction(() => {
        const m = this.#mailboxById(mailboxId);
        const updated: MessageMeta[] = [];
        const modified: number[] = [];
        const changedUids: number[] = [];
        const changed: MessageMeta[] = [];
        let modseq = m.highestmodseq;
        let unseenDelta = 0;
        for (const row of this.#messageRows(mailboxId, uids)) {
          if (unchangedSince !== undefined && row.modseq > unchangedSince) {
            modified.push(row.uid);
            continue;
          }
          const before = splitFlags(row.flags);
          const next = applyFlagOperation(before, op, change);
          if (next) {
            modseq++;
            const seen = hasFlag(next, SEEN);
            unseenDelta += (hasFlag(before, SEEN) ? 1 : 0) - (seen ? 1 : 0);
            this.#run(
              `UPDATE messages SET flags = ?, seen = ?, deleted = ?, modseq = ?
               WHERE mailbox_id = ? AND uid = ?`,
              next.join(" "),
              seen ? 1 : 0,
              hasFlag(next, DELETED) ? 1 : 0,
              modseq,
              mailboxId,
              row.uid,
            );
            row.flags = next.join(" ");
            row.modseq = modseq;
            changedUids.push(row.uid);
            changed.push({
              uid: row.uid,
              modseq,
              flags: this.#flagList(row.flags),
              internalDate: row.internal_date,
              size: row.size,
            });
          }
          updated.push(metaView(row));
        }
        if (changedUids.length > 0) {
          this.#run(
            "UPDATE mailboxes SET highestmodseq = ?, unseen_count = unseen_count + ? WHERE id = ?",
            modseq,
            unseenDelta,
            mailboxId,
          );
          const event: StepEvent = {
            kind: "flags",
            mailboxId,
            uids: changedUids,
            metas: changed,
            listing: this.#step(m, m.uidnext, modseq, m.message_count),
          };
          this.#pending!.push(event);
          this.#applyToListing(event);
        }
        return { updated, modified };
      });
    });
  }

  copy(fromMailboxId: number, uids: readonly number[], toMailboxId: number): Promise<CopyResult> {
    return this.#write(() =>
      this.#transaction(() => this.#copy(fromMailboxId, uids, toMailboxId, false))
    );
  }

  move(fromMailboxId: number, uids: readonly number[], toMailboxId: number): Promise<CopyResult> {
    return this.#write(() =>
      this.#transaction(() => this.#copy(fromMailboxId, uids, toMailboxId, true))
    );
  }

  expunge(mailboxId: number, uids?: readonly number[]): Promise<number[]> {
    return this.#write(() =>
      this.#transaction(() => {
        this.#mailboxExists(mailboxId);
        let gone: number[];
        if (uids === undefined) {
          gone = this.#all<{ uid: number }>(
            "SELECT uid FROM messages WHERE mailbox_id = ? AND deleted = 1 ORDER BY uid",
            mailboxId,
          ).map((r) => r.uid);
        } else {
          gone = this.#messageRows(mailboxId, uids)
            .filter((r) => hasFlag(splitFlags(r.flags), DELETED))
            .map((r) => r.uid);
        }
        this.#removeMessages(mailboxId, gone);
        return gone;
      })
    );
  }

  changesSince(mailboxId: number, modseq: number): Promise<ChangesSince> {
    return this.#call(() => {
      const m = this.#mailboxById(mailboxId);
      const changed = this.#selectMessages("modseq > ?", mailboxId, modseq).map(metaView);
      let vanished: number[];
      if (modseq < m.vanished_floor) {
        // Records below the floor were pruned: every UID below UIDNEXT that is not present
        // was expunged at some point, which is a safe superset.
        const present = this.#arrayStatement(
          "SELECT uid FROM messages WHERE mailbox_id = ? ORDER BY uid",
        ).all(mailboxId) as unknown as [number][];
        vanished = [];
        let next = 1;
        for (const [uid] of present) {
          for (; next < uid; next++) vanished.push(next);
          next = uid + 1;
        }
        for (; next < m.uidnext; next++) vanished.push(next);
      } else {
        vanished = this.#all<{ uid: number }>(
          "SELECT uid FROM expunged WHERE mailbox_id = ? AND modseq > ? ORDER BY uid",
          mailboxId,
          modseq,
        ).map((r) => r.uid);
      }
      return { changed, vanished };
    });
  }

  watch(mailboxId: number, listener: (event: MailboxEvent) => void): () => void {
    return this.#hub.watch(mailboxId, listener);
  }

  settle(): Promise<void> {
    return this.#relay?.settled?.() ?? Promise.resolve();
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    if (this.#closed) return;
    await Promise.all(this.#finishing);
    // The cached listings whose snapshots fell behind are stored before the writer stops.
    for (const [id, listing] of this.#listings) this.#storeSnapshot(id, listing, false);
    await Promise.all(this.#packing);
    this.#closed = true;
    this.#unsubscribe?.();
    this.#hub.clear();
    this.#statements.clear();
    try {
      await this.#durable();
    } finally {
      await this.#stopBlobWriter();
      await this.#stopCheckpointer();
      this.#stopBlobReader();
      this.#walFile?.close();
      this.#walFile = null;
      this.#db.close();
    }
  }

  // Exact copy (`postern store copy`, mailstore/transfer.ts)

  exportAccounts(): Promise<AccountRecord[]> {
    return this.#call(() =>
      this.#all<AccountRow>("SELECT * FROM accounts ORDER BY id").map((a) => ({
        name: a.name,
        passwordHash: a.password_hash,
        addresses: this.#all<{ address: string }>(
          "SELECT address FROM addresses WHERE account_id = ? ORDER BY address",
          a.id,
        ).map((r) => r.address),
        subscriptions: this.#all<{ name: string }>(
          "SELECT name FROM subscriptions WHERE account_id = ? ORDER BY name",
          a.id,
        ).map((r) => r.name),
      }))
    );
  }

  exportMailboxes(accountName: string): Promise<MailboxRecord[]> {
    return this.#call(() =>
      this.#all<MailboxRow>(
        `SELECT ${MAILBOX_COLUMNS} FROM mailboxes m JOIN accounts a ON a.id = m.account_id
         WHERE a.name = ? ORDER BY m.id`,
        accountName,
      ).map((m) => ({
        id: m.id,
        name: m.name,
        uidValidity: m.uidvalidity,
        uidNext: m.uidnext,
        highestModseq: m.highestmodseq,
        specialUse: m.special_use as SpecialUse | null,
        vanishedFloor: m.vanished_floor,
        objectId: m.object_id,
      }))
    );
  }

  exportMessages(mailboxId: number, afterUid: number, limit: number): Promise<MessageRecord[]> {
    return this.#call(() =>
      this.#all<
        MessageRow & {
          raw: Uint8Array;
          chunks: number | null;
          summary: string | null;
          text: string | null;
        }
      >(
        `SELECT m.uid, m.modseq, m.flags, m.internal_date, m.size, m.blob_id, m.email_id,
         m.thread_id, m.save_date, b.raw, b.chunks, b.summary, s.text
         FROM messages m JOIN blobs b ON b.id = m.blob_id
         LEFT JOIN search_texts s ON s.blob_id = m.blob_id
         WHERE m.mailbox_id = ? AND m.uid > ? ORDER BY m.uid LIMIT ?`,
        mailboxId,
        afterUid,
        limit,
      ).map((r) => ({
        uid: r.uid,
        modseq: r.modseq,
        flags: splitFlags(r.flags),
        internalDate: r.internal_date,
        raw: r.chunks === null ? r.raw : this.#joinedForExport(r.blob_id, r.chunks),
        summary: r.summary,
        searchText: r.text,
        emailId: r.email_id,
        threadId: r.thread_id,
        saveDate: r.save_date,
      }))
    );
  }

  /** A chunked blob for `exportMessages`, read in the same transaction. */
  #joinedForExport(blobId: number, chunks: number): Uint8Array {
    const raw = this.#joinChunks(blobId, chunks);
    if (raw === null) throw new MailStoreError("cannot", `Blob ${blobId} is missing pieces`);
    return raw;
  }

  exportExpunged(mailboxId: number): Promise<ExpungedRecord[]> {
    return this.#call(() =>
      this.#all<{ uid: number; modseq: number; expunged_at: number }>(
        "SELECT uid, modseq, expunged_at FROM expunged WHERE mailbox_id = ? ORDER BY uid",
        mailboxId,
      ).map((r) => ({ uid: r.uid, modseq: r.modseq, expungedAt: r.expunged_at }))
    );
  }

  importAccount(
    account: AccountRecord,
    mailboxes: readonly MailboxRecord[],
  ): Promise<Map<string, number>> {
    return this.#write(() =>
      this.#transaction(() => {
        validateAccountName(account.name);
        if (this.#get("SELECT 1 FROM accounts WHERE name = ?", account.name)) {
          throw new MailStoreError("alreadyexists", "Account already exists");
        }
        const id = Number(
          this.#run(
            "INSERT INTO accounts (name, password_hash) VALUES (?, ?)",
            account.name,
            account.passwordHash,
          ).lastInsertRowid,
        );
        const ids = new Map<string, number>();
        let top = 0;
        for (const m of mailboxes) {
          ids.set(
            m.name,
            Number(
              this.#run(
                `INSERT INTO mailboxes (account_id, name, uidvalidity, uidnext, highestmodseq,
                 special_use, vanished_floor, object_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
                id,
                normalizeMailboxName(m.name),
                m.uidValidity,
                m.uidNext,
                m.highestModseq,
                validateSpecialUse(m.specialUse),
                m.vanishedFloor,
                checkObjectId(m.objectId),
              ).lastInsertRowid,
            ),
          );
          top = Math.max(top, m.uidValidity);
        }
        for (const name of account.subscriptions) {
          this.#run(
            "INSERT OR IGNORE INTO subscriptions (account_id, name) VALUES (?, ?)",
            id,
            name,
          );
        }
        for (const address of account.addresses) {
          this.#run(
            "INSERT INTO addresses (address, account_id) VALUES (?, ?)",
            normalizeAddress(address),
            id,
          );
        }
        // Mailboxes made here later must not reuse a copied UIDVALIDITY.
        const last = this.#get<{ value: number }>(
          "SELECT value FROM meta WHERE key = 'last_uidvalidity'",
        )?.value ?? 0;
        this.#run(
          "INSERT OR REPLACE INTO meta (key, value) VALUES ('last_uidvalidity', ?)",
          Math.max(last, top),
        );
        return ids;
      })
    );
  }

  importMessages(mailboxId: number, messages: readonly MessageRecord[]): Promise<void> {
    return this.#write(() =>
      this.#transaction(() => {
        const m = this.#mailboxById(mailboxId);
        // Copied rows keep their MODSEQs, so a snapshot could not catch up with them.
        this.#run("DELETE FROM listing_snapshots WHERE mailbox_id = ?", mailboxId);
        let unseen = 0;
        let size = 0;
        for (const message of messages) {
          if (message.uid >= m.uidnext || message.modseq > m.highestmodseq) {
            throw new MailStoreError("cannot", "A copied message lies beyond its mailbox");
          }
          const flags = normalizeFlags(message.flags);
          const blobId = Number(
            this.#run(
              "INSERT INTO blobs (raw, summary, nul) VALUES (?, ?, ?)",
              message.raw,
              message.summary,
              nulFlag(message.raw),
            ).lastInsertRowid,
          );
          if (message.searchText !== null) {
            this.#run(
              "INSERT INTO search_texts (blob_id, text) VALUES (?, ?)",
              blobId,
              message.searchText,
            );
          }
          this.#insertMessage(
            mailboxId,
            message.uid,
            message.modseq,
            flags,
            message.internalDate,
            message.raw.byteLength,
            blobId,
            {
              email_id: checkObjectId(message.emailId),
              thread_id: checkObjectId(message.threadId),
              save_date: message.saveDate,
            },
          );
          if (!hasFlag(flags, SEEN)) unseen++;
          size += message.raw.byteLength;
        }
        this.#run(
          `UPDATE mailboxes SET message_count = message_count + ?, unseen_count = unseen_count + ?,
           total_size = total_size + ? WHERE id = ?`,
          messages.length,
          unseen,
          size,
          mailboxId,
        );
      })
    );
  }

  importExpunged(mailboxId: number, records: readonly ExpungedRecord[]): Promise<void> {
    return this.#write(() =>
      this.#transaction(() => {
        for (const r of records) {
          this.#run(
            `INSERT OR REPLACE INTO expunged (mailbox_id, uid, modseq, expunged_at)
             VALUES (?, ?, ?, ?)`,
            mailboxId,
            r.uid,
            r.modseq,
            r.expungedAt,
          );
        }
      })
    );
  }

  // Internals

  /**
   * Runs `body` now and settles with its outcome once every commit made so far is on disk, so
   * neither a write's acknowledgement nor a read that may have seen another writer's commit
   * gets ahead of durability.
   */
  #call<T>(body: () => T): Promise<T> {
    let result: T;
    try {
      this.#open();
      result = body();
      this.#noteOtherCommits();
    } catch (e) {
      return this.#dirty || this.#syncing
        ? this.#durable().then(() => Promise.reject(e), () => Promise.reject(e))
        : Promise.reject(e);
    }
    return this.#dirty || this.#syncing
      ? this.#durable().then(() => result)
      : Promise.resolve(result);
  }

  /**
   * `#call` for a write. With other connections sharing the write lock (Workers, the blob
   * writer), a write that finds it taken waits for it without blocking the event loop, so that
   * BEGIN IMMEDIATE never waits. A connection holds the lock only while a body runs, which
   * never awaits: the lock is only ever found taken by another connection.
   */
  #write<T>(body: () => T, busySince?: number): Promise<T> {
    const cells = this.#writeCells;
    if (Atomics.compareExchange(cells, WRITE_LOCK, 0, HELD) === 0) {
      return this.#locked(cells, body, busySince);
    }
    return this.#writeInTurn(cells, body, busySince);
  }

  async #writeInTurn<T>(cells: Int32Array, body: () => T, busySince?: number): Promise<T> {
    const start = performance.now();
    let deadline = start;
    for (;;) {
      const held = Atomics.load(cells, WRITE_LOCK);
      deadline = Math.max(deadline, start + turnMs(held));
      const left = deadline - performance.now();
      // The blob writer's turn lasts hundreds of ms: its release wakes us, the poll is a backstop.
      const poll = held === HELD_LONG ? LONG_WRITE_POLL_MS : WRITE_POLL_MS;
      const wait = held === 0
        ? null
        : Atomics.waitAsync(cells, WRITE_LOCK, held, Math.min(left, poll));
      if (wait?.async) {
        // A timer of our own bounds the wait and keeps the event loop alive meanwhile.
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([
          wait.value,
          new Promise((resolve) => timer = setTimeout(resolve, poll)),
        ]);
        clearTimeout(timer);
      }
      // Past the deadline the holder is taken to be gone (see `lockWrites`).
      if (
        Atomics.compareExchange(cells, WRITE_LOCK, 0, HELD) === 0 ||
        performance.now() >= deadline
      ) {
        return await this.#locked(cells, body, busySince);
      }
    }
  }

  /**
   * Runs a write body holding the shared write lock, which it then releases. Another process
   * (an administrator's `postern import`, `postern user`) may hold SQLite's own write lock: the
   * body's BEGIN IMMEDIATE then fails at once instead of sleeping in SQLite's busy handler on
   * the event loop, and the write is tried again after a pause, for as long as the busy timeout
   * would have waited. Every body validates, then opens its transaction: a write refused at
   * BEGIN has done nothing.
   */
  #locked<T>(cells: Int32Array, body: () => T, busySince?: number): Promise<T> {
    this.#holdsWriteLock = true;
    let busy = false;
    let result: Promise<T>;
    try {
      this.#statement(`PRAGMA busy_timeout = 0`).get();
      result = this.#call(() => {
        try {
          return body();
        } catch (e) {
          busy = isBusy(e) &&
            performance.now() - (busySince ?? performance.now()) < BUSY_TIMEOUT_MS;
          throw e;
        }
      });
    } finally {
      this.#statement(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`).get();
      this.#holdsWriteLock = false;
      unlockWrites(cells);
    }
    if (!busy) return result;
    result.catch(() => {});
    const since = busySince ?? performance.now();
    return new Promise((r) => setTimeout(r, EXTERNAL_BUSY_POLL_MS)).then(() =>
      this.#write(body, since)
    );
  }

  /**
   * With other connections on the database (a relay), a result may show a change another one
   * committed but has not synced yet: when `data_version` moved, the next sync (which covers
   * the whole `-wal` file, whoever wrote it) must come first.
   */
  #noteOtherCommits(): void {
    if (this.#relay === null || this.#walPath === null) return;
    const version = this.#readDataVersion();
    if (version === this.#dataVersion) return;
    this.#dataVersion = version;
    this.#noteUnsynced();
  }

  #readDataVersion(): number {
    return Number(
      (this.#statement("PRAGMA data_version").get() as { data_version: number }).data_version,
    );
  }

  /**
   * A commit this connection wrote, or saw, is on disk only once a sync that began after it
   * completes. Noted after the commit (COMMIT returned, or `data_version` moved): with a shared
   * sync record, any connection's sync begun from now on covers it.
   */
  #noteUnsynced(): void {
    this.#dirty = true;
    if (this.#sharedSync !== null) this.#unsyncedFrom = Atomics.load(this.#sharedSync, SYNC_BEGUN);
  }

  /** Resolves once every commit made before this call is synced to disk (group commit). */
  #durable(): Promise<void> {
    if (!this.#dirty) return this.#syncing ?? Promise.resolve();
    if (this.#nextSync === null) {
      const after = this.#syncing ?? Promise.resolve();
      const next: Promise<void> = after.catch(() => {}).then(() => {
        this.#nextSync = null;
        this.#dirty = false;
        this.#syncing = next;
        return this.#syncWal(this.#unsyncedFrom);
      }).finally(() => {
        if (this.#syncing === next) this.#syncing = null;
      });
      this.#nextSync = next;
    }
    return this.#nextSync;
  }

  /**
   * Moves checkpoints to a worker: SQLite's auto-checkpoint (which would run inside a COMMIT
   * on this thread) only remains as a backstop. If the worker fails, it comes back in full.
   */
  #startCheckpointer(): void {
    let worker: Worker;
    try {
      worker = new Worker(new URL("./_checkpointer.ts", import.meta.url), { type: "module" });
    } catch {
      // No worker here (e.g. not permitted): SQLite keeps checkpointing inside COMMIT.
      return;
    }
    this.#checkpointer = worker;
    const fallBack = () => {
      if (this.#checkpointer !== worker) return;
      this.#checkpointer = null;
      worker.terminate();
      if (!this.#closed) this.#db.exec("PRAGMA wal_autocheckpoint = 1000");
    };
    worker.onmessage = (e: MessageEvent<CheckpointerReport>) => {
      if (e.data.kind === "error") fallBack();
    };
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      fallBack();
    };
    const open: CheckpointerRequest = {
      kind: "open",
      path: this.#path,
      intervalMs: CHECKPOINT_INTERVAL_MS,
      cells: this.#writeCells.buffer as SharedArrayBuffer,
    };
    worker.postMessage(open);
    this.#db.exec(`PRAGMA wal_autocheckpoint = ${BACKSTOP_AUTOCHECKPOINT_PAGES}`);
  }

  /** Closes the worker's connection first, so that this one closes last and removes the WAL. */
  async #stopCheckpointer(): Promise<void> {
    const worker = this.#checkpointer;
    if (worker === null) return;
    this.#checkpointer = null;
    await closeWorker<CheckpointerReport>(worker);
  }

  /**
   * One `fdatasync` of the WAL on Deno's blocking-I/O threads. A failed sync leaves it unknown
   * what reached the disk (and a retry may wrongly succeed), so the store refuses every later
   * call: fail closed.
   */
  async #syncWal(from: number): Promise<void> {
    try {
      // SQLite keeps the -wal file (same inode) while this connection is open.
      this.#walFile ??= await Deno.open(this.#walPath!, { read: true });
      if (this.#sharedSync === null) await this.#walFile.syncData();
      else await this.#syncInTurn(this.#sharedSync, this.#walFile, from);
    } catch (e) {
      this.#syncFailed ??= e;
      throw new MailStoreError("cannot", "Mail store could not sync its log to disk");
    }
  }

  /**
   * A sync shared with the other connections, for the commits noted when `from` syncs had
   * begun: any sync with a higher index began after them and covers them, whoever runs it. One
   * connection syncs at a time (the lock), so that one sync covers the commits of every
   * connection made before it; the others wait for it and are done if its index is past
   * `from`, else take the next turn. A holder that vanished mid-sync (its Worker ended) loses
   * the lock after `SYNC_TURN_MS`. A failed sync completes nothing.
   */
  async #syncInTurn(cells: Int32Array, file: Deno.FsFile, from: number): Promise<void> {
    for (;;) {
      // Read before trying the lock: a sync that ends in between then fails the wait at once.
      const seen = Atomics.load(cells, SYNC_DONE);
      if (seen > from) return;
      if (Atomics.compareExchange(cells, SYNC_LOCK, 0, 1) === 0) {
        try {
          const index = Atomics.add(cells, SYNC_BEGUN, 1) + 1;
          await file.syncData();
          for (;;) {
            const done = Atomics.load(cells, SYNC_DONE);
            if (done >= index || Atomics.compareExchange(cells, SYNC_DONE, done, index) === done) {
              break;
            }
          }
        } finally {
          Atomics.store(cells, SYNC_LOCK, 0);
          Atomics.notify(cells, SYNC_DONE);
        }
        return;
      }
      const wait = Atomics.waitAsync(cells, SYNC_DONE, seen, SYNC_TURN_MS);
      if (wait.async) {
        // A timer of our own keeps the event loop alive while the notification is awaited.
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([
          wait.value,
          new Promise((resolve) => timer = setTimeout(resolve, SYNC_TURN_MS + 10)),
        ]);
        clearTimeout(timer);
      }
      if (Atomics.load(cells, SYNC_DONE) === seen) {
        // No sync completed: it failed (the lock is free again), or in a whole turn its holder
        // did not finish and may be gone; then the lock is taken over (a second sync beside a
        // slow one costs time, never durability).
        Atomics.compareExchange(cells, SYNC_LOCK, 1, 0);
      }
    }
  }

  #open(): void {
    if (this.#closed) throw new MailStoreError("cannot", "Mail store is closed");
    if (this.#syncFailed !== null) {
      throw new MailStoreError("cannot", "Mail store could not sync its log to disk");
    }
  }

  /**
   * A relayed event with its metadata's flag lists replaced by this connection's shared frozen
   * ones (a structured clone arrives with fresh, unfrozen arrays).
   */
  #sharedFlags(event: MailboxEvent): MailboxEvent {
    if (event.kind !== "append" && event.kind !== "flags") return event;
    const metas = event.metas;
    if (!Array.isArray(metas)) return event;
    return {
      ...event,
      metas: metas.map((m) => ({ ...m, flags: this.#flagList(m.flags.join(" ")) })),
    };
  }

  /** The shared frozen flag list of a stored `flags` value. */
  #flagList(stored: string): readonly string[] {
    let flags = this.#flagLists.get(stored);
    if (flags === undefined) {
      if (this.#flagLists.size >= 1024) this.#flagLists.clear();
      flags = Object.freeze(splitFlags(stored));
      this.#flagLists.set(stored, flags);
    }
    return flags;
  }

  #statement(sql: string): StatementSync {
    let stmt = this.#statements.get(sql);
    if (!stmt) {
      stmt = this.#db.prepare(sql);
      this.#statements.set(sql, stmt);
    }
    return stmt;
  }

  /** A cached statement returning rows as arrays (cheaper for large listings). */
  #arrayStatement(sql: string): StatementSync {
    const key = `arrays:${sql}`;
    let stmt = this.#statements.get(key);
    if (!stmt) {
      stmt = this.#db.prepare(sql);
      (stmt as StatementSync & { setReturnArrays(on: boolean): void }).setReturnArrays(true);
      this.#statements.set(key, stmt);
    }
    return stmt;
  }

  #run(sql: string, ...params: SQLInputValue[]) {
    return this.#statement(sql).run(...params);
  }

  #get<T>(sql: string, ...params: SQLInputValue[]): T | undefined {
    return this.#statement(sql).get(...params) as T | undefined;
  }

  #all<T>(sql: string, ...params: SQLInputValue[]): T[] {
    return this.#statement(sql).all(...params) as T[];
  }

  /**
   * Runs `body` in one write transaction; events it queued are delivered only after COMMIT
   * has returned, i.e. once the change is durable.
   */
  #transaction<T>(body: () => T): T {
    if (this.#pending) return body();
    this.#pending = [];
    // Writes through `#write` hold the shared lock already; others take it here, blocking.
    const shared = this.#holdsWriteLock ? null : this.#writeCells;
    if (shared !== null) lockWrites(shared);
    let events: MailboxEvent[];
    let result: T;
    try {
      this.#db.exec("BEGIN IMMEDIATE");
      try {
        result = body();
        this.#db.exec("COMMIT");
        events = this.#pending;
      } catch (e) {
        if (this.#db.isTransaction) this.#db.exec("ROLLBACK");
        // A listing read inside the failed transaction may hold what was rolled back.
        this.#listings.clear();
        throw e;
      }
    } finally {
      this.#pending = null;
      if (shared !== null) unlockWrites(shared);
    }
    if (this.#walPath === null) {
      for (const event of events) this.#emit(event);
      return result;
    }
    this.#noteUnsynced();
    if (
      this.#checkpointer === null && !this.#checkpointsElsewhere &&
      ++this.#commits === CHECKPOINTER_AFTER_COMMITS
    ) {
      this.#startCheckpointer();
    }
    if (events.length > 0) {
      // Listeners hear of a change only once it is durable, and before its caller's answer.
      this.#durable().then(() => {
        for (const event of events) this.#emit(event);
      }, () => {});
    }
    return result;
  }

  /** Tells this store's listeners and, through the relay, the other connections'. */
  #emit(event: MailboxEvent): void {
    this.#hub.emit(withoutStep(event));
    this.#relay?.publish(event);
  }

  #migrate(): void {
    this.#db.exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
    const current = this.#schemaVersion();
    if (current > MIGRATIONS.length) {
      throw new Error(`Database schema version ${current} is newer than this program`);
    }
    for (let v = current; v < MIGRATIONS.length; v++) {
      this.#db.exec("BEGIN IMMEDIATE");
      try {
        // Re-read under the write lock: another process may have migrated meanwhile.
        if (this.#schemaVersion() > v) {
          this.#db.exec("ROLLBACK");
          continue;
        }
        this.#db.exec(MIGRATIONS[v]!);
        this.#db.exec("DELETE FROM schema_version");
        this.#run("INSERT INTO schema_version (version) VALUES (?)", v + 1);
        this.#db.exec("COMMIT");
      } catch (e) {
        if (this.#db.isTransaction) this.#db.exec("ROLLBACK");
        throw e;
      }
    }
  }

  #schemaVersion(): number {
    return this.#db.prepare("SELECT max(version) AS v FROM schema_version").get()?.v as
      | number
      | null ?? 0;
  }

  #requireAccount(accountId: number): void {
    if (!this.#get("SELECT 1 FROM accounts WHERE id = ?", accountId)) {
      throw new MailStoreError("nonexistent", "No such account");
    }
  }

  #findMailbox(accountId: number, canonical: string): MailboxRow | undefined {
    return this.#get<MailboxRow>(
      `SELECT ${MAILBOX_COLUMNS} FROM mailboxes m WHERE m.account_id = ? AND m.name = ?`,
      accountId,
      canonical,
    );
  }

  /** Throws `nonexistent` unless the mailbox exists; cheaper than `#mailboxById`. */
  #mailboxExists(id: number): void {
    if (this.#get("SELECT 1 AS x FROM mailboxes WHERE id = ?", id) === undefined) {
      throw new MailStoreError("nonexistent", "No such mailbox");
    }
  }

  #mailboxById(id: number): MailboxRow {
    const m = this.#get<MailboxRow>(
      `SELECT ${MAILBOX_COLUMNS} FROM mailboxes m WHERE m.id = ?`,
      id,
    );
    if (!m) throw new MailStoreError("nonexistent", "No such mailbox");
    return m;
  }

  /** A fresh UIDVALIDITY for every mailbox instance, so a recreated name never reuses one. */
  #nextUidValidity(): number {
    const last = this.#get<{ value: number }>(
      "SELECT value FROM meta WHERE key = 'last_uidvalidity'",
    )?.value ?? 0;
    const next = Math.max(last + 1, Math.floor(this.#now() / 1000));
    this.#run(
      "INSERT OR REPLACE INTO meta (key, value) VALUES ('last_uidvalidity', ?)",
      next,
    );
    return next;
  }

  #insertMailbox(accountId: number, name: string, use: SpecialUse | null): number {
    return Number(
      this.#run(
        `INSERT INTO mailboxes (account_id, name, uidvalidity, uidnext, highestmodseq, special_use,
         object_id) VALUES (?, ?, ?, 1, 1, ?, ?)`,
        accountId,
        name,
        this.#nextUidValidity(),
        use,
        newObjectId("F"),
      ).lastInsertRowid,
    );
  }

  #insertMessage(
    mailboxId: number,
    uid: number,
    modseq: number,
    flags: readonly string[],
    internalDate: number,
    size: number,
    blobId: number,
    ids: Pick<MessageRow, "email_id" | "thread_id" | "save_date">,
  ): void {
    this.#run(
      `INSERT INTO messages (mailbox_id, uid, modseq, flags, seen, deleted, internal_date, size,
       blob_id, email_id, thread_id, save_date) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      mailboxId,
      uid,
      modseq,
      flags.join(" "),
      hasFlag(flags, SEEN) ? 1 : 0,
      hasFlag(flags, DELETED) ? 1 : 0,
      internalDate,
      size,
      blobId,
      ids.email_id,
      ids.thread_id,
      ids.save_date,
    );
  }

  #messageRows(mailboxId: number, uids: readonly number[]): MessageRow[] {
    const wanted = [...new Set(uids)].filter((u) => Number.isSafeInteger(u) && u > 0)
      .sort((a, b) => a - b);
    if (wanted.length === 0) return [];
    const span = wanted.at(-1)! - wanted[0]! + 1;
    // A dense run of UIDs (FETCH 1:*, a batch of a large sequence set) is one range scan; a
    // few scattered UIDs are point lookups.
    if (wanted.length <= POINT_LOOKUP_LIMIT && span > wanted.length * DENSE_FACTOR) {
      const out: MessageRow[] = [];
      for (const uid of wanted) {
        out.push(...this.#selectMessages("uid = ?", mailboxId, uid));
      }
      return out;
    }
    const set = new Set(wanted);
    return this.#selectMessages("uid BETWEEN ? AND ?", mailboxId, wanted[0]!, wanted.at(-1)!)
      .filter((r) => set.has(r.uid));
  }

  /** Message rows of one mailbox matching `where`, in UID order, as fresh objects. */
  #selectMessages(where: string, mailboxId: number, ...params: SQLInputValue[]): MessageRow[] {
    const rows = this.#arrayStatement(
      `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE mailbox_id = ? AND ${where} ORDER BY uid`,
    ).all(mailboxId, ...params) as unknown as MessageTuple[];
    const out: MessageRow[] = new Array(rows.length);
    for (let i = 0; i < rows.length; i++) {
      const [uid, modseq, flags, internal_date, size, blob_id, email_id, thread_id, save_date] =
        rows[i]!;
      out[i] = { uid, modseq, flags, internal_date, size, blob_id, email_id, thread_id, save_date };
    }
    return out;
  }

  #copy(fromId: number, uids: readonly number[], toId: number, move: boolean): CopyResult {
    const from = this.#mailboxById(fromId);
    const to = this.#mailboxById(toId);
    if (from.account_id !== to.account_id) {
      throw new MailStoreError("cannot", "Cannot copy between accounts");
    }
    const rows = this.#messageRows(fromId, uids);
    const mapping = this.#copyRows(rows, to);
    if (move) this.#removeMessages(fromId, rows.map((r) => r.uid));
    return { uidValidity: to.uidvalidity, mapping };
  }

  /** Inserts copies of `rows` into `to`, sharing their blobs; returns the UID mapping. */
  #copyRows(rows: readonly MessageRow[], to: MailboxRow): [number, number][] {
    const mapping: [number, number][] = [];
    if (rows.length === 0) return mapping;
    let uid = to.uidnext;
    let modseq = to.highestmodseq;
    let unseen = 0;
    let size = 0;
    const now = this.#now();
    for (const r of rows) {
      const flags = splitFlags(r.flags);
      this.#insertMessage(to.id, uid, ++modseq, flags, r.internal_date, r.size, r.blob_id, {
        email_id: r.email_id,
        thread_id: r.thread_id,
        save_date: now,
      });
      if (!hasFlag(flags, SEEN)) unseen++;
      size += r.size;
      mapping.push([r.uid, uid++]);
    }
    this.#run(
      `UPDATE mailboxes SET uidnext = ?, highestmodseq = ?, message_count = message_count + ?,
       unseen_count = unseen_count + ?, total_size = total_size + ? WHERE id = ?`,
      uid,
      modseq,
      rows.length,
      unseen,
      size,
      to.id,
    );
    this.#pending!.push({ kind: "append", mailboxId: to.id, uids: mapping.map(([, u]) => u) });
    return mapping;
  }

  /** Expunges `uids` (ascending), records them for VANISHED and frees unshared blobs. */
  #removeMessages(mailboxId: number, uids: readonly number[]): void {
    if (uids.length === 0) return;
    const m = this.#mailboxById(mailboxId);
    let modseq = m.highestmodseq;
    let count = 0;
    let unseen = 0;
    let size = 0;
    const now = this.#now();
    for (const uid of uids) {
      const row = this.#get<{ seen: number; size: number; blob_id: number }>(
        "SELECT seen, size, blob_id FROM messages WHERE mailbox_id = ? AND uid = ?",
        mailboxId,
        uid,
      );
      if (!row) continue;
      this.#run("DELETE FROM messages WHERE mailbox_id = ? AND uid = ?", mailboxId, uid);
      this.#freeBlob(row.blob_id);
      this.#run(
        `INSERT OR REPLACE INTO expunged (mailbox_id, uid, modseq, expunged_at)
         VALUES (?, ?, ?, ?)`,
        mailboxId,
        uid,
        ++modseq,
        now,
      );
      count++;
      if (!row.seen) unseen++;
      size += row.size;
    }
    this.#run(
      `UPDATE mailboxes SET highestmodseq = ?, message_count = message_count - ?,
       unseen_count = unseen_count - ?, total_size = total_size - ? WHERE id = ?`,
      modseq,
      count,
      unseen,
      size,
      mailboxId,
    );
    const event: StepEvent = {
      kind: "expunge",
      mailboxId,
      uids: [...uids],
      listing: this.#step(m, m.uidnext, modseq, m.message_count - count),
    };
    this.#pending!.push(event);
    this.#applyToListing(event);
  }

  #freeBlob(blobId: number): void {
    this.#run(
      `DELETE FROM blobs WHERE id = ?
       AND NOT EXISTS (SELECT 1 FROM messages WHERE blob_id = ?)`,
      blobId,
      blobId,
    );
  }

  /** Deletes a mailbox, its messages and its expunge records, then frees unshared blobs. */
  #dropMailbox(mailboxId: number): void {
    const blobs = this.#all<{ blob_id: number }>(
      "SELECT blob_id FROM messages WHERE mailbox_id = ?",
      mailboxId,
    );
    this.#run("DELETE FROM mailboxes WHERE id = ?", mailboxId);
    for (const { blob_id } of blobs) this.#freeBlob(blob_id);
    this.#pending!.push({ kind: "deleted", mailboxId });
  }

  /** RFC 9051, Section 6.3.6: renaming INBOX moves its messages and leaves INBOX empty. */
  #renameInbox(inbox: MailboxRow, target: string): void {
    const id = this.#insertMailbox(inbox.account_id, target, null);
    const rows = this.#selectMessages("1", inbox.id);
    this.#copyRows(rows, this.#mailboxById(id));
    this.#removeMessages(inbox.id, rows.map((r) => r.uid));
  }
}

function accountView(row: AccountRow): Account {
  return { id: row.id, name: row.name, passwordHash: row.password_hash };
}

function mailboxView(row: MailboxRow): Mailbox {
  return {
    id: row.id,
    accountId: row.account_id,
    name: row.name,
    uidValidity: row.uidvalidity,
    uidNext: row.uidnext,
    highestModseq: row.highestmodseq,
    subscribed: row.subscribed === 1,
    specialUse: row.special_use as SpecialUse | null,
    messages: row.message_count,
    unseen: row.unseen_count,
    size: row.total_size,
    objectId: row.object_id,
  };
}

function metaView(row: MessageRow): MessageMeta {
  return {
    uid: row.uid,
    modseq: row.modseq,
    flags: splitFlags(row.flags),
    internalDate: row.internal_date,
    size: row.size,
  };
}

function splitFlags(stored: string): string[] {
  return stored === "" ? [] : stored.split(" ");
}
