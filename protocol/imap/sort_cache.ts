/**
 * A cache of the SORT and THREAD keys of messages (RFC 5256), shared by the sessions of one
 * store: a message never changes once appended, so its keys, derived once from the stored
 * search text, stay valid for as long as its UID does (mailbox id and UIDVALIDITY included in
 * the key). Webmail clients reconnect for every page and sort again each time, so the keys
 * must outlive a session. Bounded: beyond `maxEntries` keys in all, the least recently sorted
 * mailbox is dropped.
 */
import type { BaseSubject } from "./base_subject.ts";

/** The keys of one message. Strings are in the form they compare in (RFC 4790 casemaps). */
export interface MessageSortKeys {
  readonly size: number;
  /** INTERNALDATE in whole seconds, as IMAP shows it. */
  readonly arrival: number;
  /** Sent date in ms (RFC 5256, Section 2.2): the Date header, else INTERNALDATE. */
  readonly date: number;
  readonly subject: BaseSubject;
  /** The base subject as compared (i;unicode-casemap). */
  readonly subjectKey: string;
  /** addr-mailbox of the first From, To and Cc address (i;ascii-casemap). */
  readonly from: string;
  readonly to: string;
  readonly cc: string;
  /** RFC 5957 display forms of the first From and To address. */
  readonly displayFrom: string;
  readonly displayTo: string;
  readonly messageId: string | null;
  /** References, or else the first In-Reply-To id (RFC 5256, Section 3, step 1). */
  readonly references: readonly string[];
}

/** Keys of the messages of several mailboxes, by mailbox and UID. */
export class SortKeyCache {
  readonly #maxEntries: number;
  /** By `mailboxId:uidValidity`, in least recently used order. */
  readonly #mailboxes = new Map<string, Map<number, MessageSortKeys>>();
  #entries = 0;

  constructor(maxEntries = 500_000) {
    this.#maxEntries = maxEntries;
  }

  /**
   * The keys of one mailbox, to read and fill; `live` is its number of messages now, so that
   * keys of expunged messages do not pile up.
   */
  mailbox(mailboxId: number, uidValidity: number, live: number): Map<number, MessageSortKeys> {
    const id = `${mailboxId}:${uidValidity}`;
    let keys = this.#mailboxes.get(id);
    if (keys !== undefined) {
      this.#mailboxes.delete(id);
      this.#entries -= keys.size;
      if (keys.size > live * 2 + 1000) keys = new Map();
    } else keys = new Map();
    this.#mailboxes.set(id, keys);
    this.#entries += keys.size;
    return keys;
  }

  /** Records that `added` keys were put into a mailbox's map, and evicts beyond the bound. */
  added(added: number): void {
    this.#entries += added;
    for (const [id, keys] of this.#mailboxes) {
      if (this.#entries <= this.#maxEntries || this.#mailboxes.size <= 1) break;
      this.#mailboxes.delete(id);
      this.#entries -= keys.size;
    }
  }

  /** Keys held in all. */
  get size(): number {
    return this.#entries;
  }
}

const shared = new WeakMap<object, SortKeyCache>();

/** The cache shared by every session over `store`. */
export function sortKeyCacheFor(store: object): SortKeyCache {
  let cache = shared.get(store);
  if (cache === undefined) {
    cache = new SortKeyCache();
    shared.set(store, cache);
  }
  return cache;
}

/** Whole-mailbox results kept per mailbox keys map: the UIDs they cover, and each by name. */
interface KeptResults {
  readonly uids: Uint32Array;
  readonly byName: Map<string, unknown>;
}

/** Most whole-mailbox results kept per mailbox (the least recently used goes first). */
export const MAX_KEPT_RESULTS = 8;

const keptResults = new WeakMap<ReadonlyMap<number, MessageSortKeys>, KeptResults>();

function sameUids(a: Uint32Array, b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * A result computed over every message of a mailbox (a SORT or THREAD of ALL), when it was
 * computed over exactly `uids` (the mailbox's messages in sequence order now): keys never
 * change, so only a different set of messages (an APPEND or an EXPUNGE) makes it stale. Kept
 * beside the mailbox's keys map, so it goes when `SortKeyCache` drops that map; at most
 * `MAX_KEPT_RESULTS` per mailbox, each of a size linear in its message count.
 */
export function keptResult<T>(
  keys: ReadonlyMap<number, MessageSortKeys>,
  uids: readonly number[],
  name: string,
): T | undefined {
  const kept = keptResults.get(keys);
  if (kept === undefined || !kept.byName.has(name) || !sameUids(kept.uids, uids)) return undefined;
  const value = kept.byName.get(name);
  kept.byName.delete(name);
  kept.byName.set(name, value);
  return value as T;
}

/** Keeps `value`, computed over exactly `uids`, for `keptResult`. */
export function keepResult<T>(
  keys: ReadonlyMap<number, MessageSortKeys>,
  uids: readonly number[],
  name: string,
  value: T,
): void {
  let kept = keptResults.get(keys);
  if (kept === undefined || !sameUids(kept.uids, uids)) {
    kept = { uids: Uint32Array.from(uids), byName: new Map() };
    keptResults.set(keys, kept);
  }
  kept.byName.delete(name);
  kept.byName.set(name, value);
  for (const oldest of kept.byName.keys()) {
    if (kept.byName.size <= MAX_KEPT_RESULTS) break;
    kept.byName.delete(oldest);
  }
}
