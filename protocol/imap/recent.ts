/**
 * The \Recent flag of IMAP4rev1 (RFC 3501, Section 2.3.2): a message is recent in exactly one
 * session, the first one to have its mailbox selected read-write after the message arrived.
 *
 * Design (as in Dovecot, which keeps a "first recent UID" in its index): per mailbox, a recent
 * boundary, the lowest UID not yet claimed. A session that SELECTs the mailbox, or learns of
 * new messages while it has it selected read-write, claims every UID at or above the boundary
 * and moves the boundary past them; those messages are \Recent in that session only. EXAMINE
 * (and STATUS) only look: messages above the boundary are \Recent there too, but stay
 * unclaimed. IMAP4rev2 sessions neither see nor claim \Recent (RFC 9051, Appendix E).
 *
 * The registry lives in the server process, next to the store object it belongs to, and is
 * not persisted: after a restart the boundary of a mailbox starts at its next UID (messages
 * that arrived before the restart are no longer recent) unless an APPEND, COPY or MOVE by a
 * session of this process sets it first. Messages imported by another process (`postern
 * import`) are therefore not recent. One server process per store is the deployment model,
 * so the registry is the single owner of the boundary. A server of several Workers keeps the
 * boundaries in shared memory (`SharedBoundaries`), so that its Workers claim as one; nodes
 * of a PostgreSQL cluster still claim each on its own.
 */
import type { MailStore } from "../../mailstore/mail_store.ts";

/** Where a registry keeps its boundaries; every change is one atomic `update`. */
export interface BoundaryTable {
  /** The boundary of a mailbox generation, or undefined when none is known. */
  get(mailboxId: number, uidValidity: number): number | undefined;
  /**
   * Replaces the boundary with `next(current)` (undefined: leave it) as one step that no other
   * user of the table interleaves with; returns what `next` returned.
   */
  update(
    mailboxId: number,
    uidValidity: number,
    next: (current: number | undefined) => number | undefined,
  ): number | undefined;
  /** Drops every generation of a mailbox. */
  forget(mailboxId: number): void;
}

/** Boundaries of one thread, in a Map. */
class LocalBoundaries implements BoundaryTable {
  /** First unclaimed UID, by `mailboxId/uidValidity` (a recreated mailbox starts afresh). */
  readonly #boundary = new Map<string, number>();

  get(mailboxId: number, uidValidity: number): number | undefined {
    return this.#boundary.get(`${mailboxId}/${uidValidity}`);
  }

  update(
    mailboxId: number,
    uidValidity: number,
    next: (current: number | undefined) => number | undefined,
  ): number | undefined {
    const key = `${mailboxId}/${uidValidity}`;
    const value = next(this.#boundary.get(key));
    if (value !== undefined) this.#boundary.set(key, value);
    return value;
  }

  forget(mailboxId: number): void {
    for (const key of this.#boundary.keys()) {
      if (key.startsWith(`${mailboxId}/`)) this.#boundary.delete(key);
    }
  }
}

/** Int32 fields per slot of `SharedBoundaries`: mailbox id, UIDVALIDITY, boundary. */
const SLOT = 3;
const EMPTY = 0;
const GONE = -1;
/** Slots probed before a table counts as full for a key. */
const MAX_PROBES = 64;

/**
 * Boundaries in a SharedArrayBuffer, for the Workers of one server: an open-addressing table
 * behind a spin lock (each step holds it for a few field reads and writes). A full table
 * knows no boundary for the mailboxes it cannot hold: their new messages are not \Recent,
 * which RFC 9051 allows (\Recent is gone from IMAP4rev2).
 */
export class SharedBoundaries implements BoundaryTable {
  readonly #cells: Int32Array;
  readonly #slots: number;

  /** A table for `slots` mailbox generations (rounded up to a power of two). */
  static allocate(slots = 1 << 16): SharedArrayBuffer {
    let size = 1;
    while (size < slots) size *= 2;
    return new SharedArrayBuffer((1 + size * SLOT) * 4);
  }

  constructor(buffer: SharedArrayBuffer) {
    this.#cells = new Int32Array(buffer);
    this.#slots = (this.#cells.length - 1) / SLOT;
  }

  get(mailboxId: number, uidValidity: number): number | undefined {
    return this.#locked(() => {
      const at = this.#find(mailboxId, uidValidity, false);
      return at === null ? undefined : this.#cells[at + 2]! >>> 0;
    });
  }

  update(
    mailboxId: number,
    uidValidity: number,
    next: (current: number | undefined) => number | undefined,
  ): number | undefined {
    return this.#locked(() => {
      const found = this.#find(mailboxId, uidValidity, false);
      const value = next(found === null ? undefined : this.#cells[found + 2]! >>> 0);
      if (value === undefined) return undefined;
      const at = found ?? this.#find(mailboxId, uidValidity, true);
      if (at === null) return value;
      this.#cells[at] = mailboxId | 0;
      this.#cells[at + 1] = uidValidity | 0;
      this.#cells[at + 2] = value | 0;
      return value;
    });
  }

  forget(mailboxId: number): void {
    this.#locked(() => {
      for (let i = 0; i < this.#slots; i++) {
        const at = 1 + i * SLOT;
        if (this.#cells[at] === (mailboxId | 0)) this.#cells[at] = GONE;
      }
    });
  }

  /** The slot of a key, or (with `insert`) the first free one on its probe path. */
  #find(mailboxId: number, uidValidity: number, insert: boolean): number | null {
    const id = mailboxId | 0;
    const validity = uidValidity | 0;
    let i = (Math.imul(id, 0x9e3779b1) ^ validity) & (this.#slots - 1);
    for (let probe = 0; probe < MAX_PROBES; probe++, i = (i + 1) & (this.#slots - 1)) {
      const at = 1 + i * SLOT;
      const slotId = this.#cells[at]!;
      if (slotId === EMPTY) return insert ? at : null;
      if (slotId === GONE) {
        if (insert) return at;
        continue;
      }
      if (slotId === id && this.#cells[at + 1] === validity) return at;
    }
    return null;
  }

  #locked<T>(body: () => T): T {
    while (Atomics.compareExchange(this.#cells, 0, 0, 1) !== 0) {
      // Another Worker is inside a step of a few instructions.
    }
    try {
      return body();
    } finally {
      Atomics.store(this.#cells, 0, 0);
    }
  }
}

/** Per-mailbox recent boundaries of one store. */
export class RecentRegistry {
  readonly #table: BoundaryTable;

  /** Boundaries of this thread by default; `SharedBoundaries` for a server of Workers. */
  constructor(table: BoundaryTable = new LocalBoundaries()) {
    this.#table = table;
  }

  /**
   * Records that messages from `firstUid` on were just added to a mailbox; when nobody has
   * looked at the mailbox yet, they become recent for the next claimer.
   */
  noteArrival(mailboxId: number, uidValidity: number, firstUid: number): void {
    this.#table.update(mailboxId, uidValidity, (b) => b === undefined ? firstUid : undefined);
  }

  /**
   * Claims the unclaimed ones among `uids` (ascending) and moves the boundary past the last
   * of them; returns the index in `uids` of the first one claimed (`uids.length`: none). The
   * claimed ones are always a tail of `uids`, so a SELECT of 100,000 copies no UID.
   */
  claim(mailboxId: number, uidValidity: number, uids: readonly number[]): number {
    const last = uids[uids.length - 1] ?? 0;
    let from = uids.length;
    this.#table.update(mailboxId, uidValidity, (boundary) => {
      if (boundary === undefined) return last + 1;
      from = firstAtOrAbove(uids, boundary);
      return last + 1 > boundary ? last + 1 : undefined;
    });
    return from;
  }

  /** The first unclaimed UID, or null when no session has claimed or added anything yet. */
  boundary(mailboxId: number, uidValidity: number): number | null {
    return this.#table.get(mailboxId, uidValidity) ?? null;
  }

  /** Drops what is known of a deleted mailbox. */
  forget(mailboxId: number): void {
    this.#table.forget(mailboxId);
  }

  /**
   * The index in `uids` (ascending) of the first unclaimed one, without claiming (EXAMINE,
   * STATUS): the unclaimed ones are the tail from there.
   */
  unclaimedFrom(mailboxId: number, uidValidity: number, uids: readonly number[]): number {
    const boundary = this.#table.get(mailboxId, uidValidity);
    if (boundary === undefined) return uids.length;
    return firstAtOrAbove(uids, boundary);
  }
}

/** The index of the first of the ascending `uids` at or above `uid` (a SELECT of 100,000). */
export function firstAtOrAbove(uids: readonly number[], uid: number): number {
  let lo = 0;
  let hi = uids.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (uids[mid]! < uid) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

const registries = new WeakMap<MailStore, RecentRegistry>();

/** The registry of a store object, shared by every session that uses that object. */
export function recentRegistryFor(store: MailStore): RecentRegistry {
  let registry = registries.get(store);
  if (registry === undefined) {
    registry = new RecentRegistry();
    registries.set(store, registry);
  }
  return registry;
}

/**
 * Gives a store object the registry its sessions use (before the first session): a Worker's
 * store shares its boundaries with the other Workers' stores.
 */
export function useRecentRegistry(store: MailStore, registry: RecentRegistry): void {
  registries.set(store, registry);
}

/** How a session treats \Recent in its selected mailbox. */
export type RecentMode = "claim" | "peek" | "off";
