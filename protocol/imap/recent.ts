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
 * so the registry is the single owner of the boundary.
 */
import type { MailStore } from "../../mailstore/mail_store.ts";

/** Per-mailbox recent boundaries of one store. */
export class RecentRegistry {
  /** First unclaimed UID, by `mailboxId/uidValidity` (a recreated mailbox starts afresh). */
  readonly #boundary = new Map<string, number>();

  #key(mailboxId: number, uidValidity: number): string {
    return `${mailboxId}/${uidValidity}`;
  }

  /**
   * Records that messages from `firstUid` on were just added to a mailbox; when nobody has
   * looked at the mailbox yet, they become recent for the next claimer.
   */
  noteArrival(mailboxId: number, uidValidity: number, firstUid: number): void {
    const key = this.#key(mailboxId, uidValidity);
    if (!this.#boundary.has(key)) this.#boundary.set(key, firstUid);
  }

  /**
   * Claims the unclaimed ones among `uids` (ascending) and moves the boundary past the last
   * of them; returns the claimed UIDs.
   */
  claim(mailboxId: number, uidValidity: number, uids: readonly number[]): number[] {
    const key = this.#key(mailboxId, uidValidity);
    const last = uids[uids.length - 1] ?? 0;
    const boundary = this.#boundary.get(key);
    if (boundary === undefined) {
      this.#boundary.set(key, last + 1);
      return [];
    }
    const claimed = uids.slice(firstAtOrAbove(uids, boundary));
    if (last + 1 > boundary) this.#boundary.set(key, last + 1);
    return claimed;
  }

  /** The first unclaimed UID, or null when no session has claimed or added anything yet. */
  boundary(mailboxId: number, uidValidity: number): number | null {
    return this.#boundary.get(this.#key(mailboxId, uidValidity)) ?? null;
  }

  /** Drops what is known of a deleted mailbox. */
  forget(mailboxId: number): void {
    for (const key of this.#boundary.keys()) {
      if (key.startsWith(`${mailboxId}/`)) this.#boundary.delete(key);
    }
  }

  /** The unclaimed ones among `uids`, without claiming them (EXAMINE, STATUS). */
  unclaimed(mailboxId: number, uidValidity: number, uids: readonly number[]): number[] {
    const boundary = this.#boundary.get(this.#key(mailboxId, uidValidity));
    if (boundary === undefined) return [];
    return uids.slice(firstAtOrAbove(uids, boundary));
  }
}

/** The index of the first of the ascending `uids` at or above `uid` (a SELECT of 100,000). */
function firstAtOrAbove(uids: readonly number[], uid: number): number {
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

/** How a session treats \Recent in its selected mailbox. */
export type RecentMode = "claim" | "peek" | "off";
