/**
 * One session's view of its selected mailbox: the message sequence numbers it has told the
 * client about, and the changes (from any session) it has not reported yet.
 *
 * Sequence numbers only change when this session reports an EXPUNGE or an EXISTS, so they stay
 * consistent for the client even while other sessions change the mailbox (RFC 9051, Sections
 * 2.3.1.2 and 7.5.1). Changes arrive through `MailStore.watch()` and are queued; `sync()` reports
 * them as untagged EXPUNGE, EXISTS and FETCH responses, holding back EXPUNGE when the command in
 * progress forbids it.
 */
import type { MailboxEvent, MailStore, MessageMeta } from "../../mailstore/mail_store.ts";
import { flagList, type Output } from "./response.ts";
import {
  formatSequenceSet,
  selectFromSorted,
  type SequenceSet,
  sequenceSpans,
} from "./sequence_set.ts";
import { ImapError } from "./errors.ts";
import { Pacer } from "../event_loop.ts";
import {
  firstAtOrAbove,
  type RecentMode,
  type RecentRegistry,
  recentRegistryFor,
} from "./recent.ts";

/** How a changed view wants the session to react. */
export type ViewNotice = "changed" | "deleted";

/** Options of `sync()`. */
export interface SyncOptions {
  /** False during FETCH, STORE and SEARCH: expunges stay pending. */
  readonly allowExpunge: boolean;
  /** CONDSTORE is enabled: flag updates carry MODSEQ (RFC 7162, Section 3.2). */
  readonly condstore: boolean;
  /** QRESYNC is enabled: expunges go out as one VANISHED response (RFC 7162, 3.2.10). */
  readonly qresync: boolean;
}

/** The system flags every mailbox offers (RFC 9051, Section 2.3.2), in the FLAGS response. */
export const SYSTEM_FLAGS = "\\Answered \\Flagged \\Deleted \\Seen \\Draft";

/** True when the flag list holds \\Seen (flags compare case-insensitively). */
function hasSeen(flags: readonly string[]): boolean {
  for (const f of flags) if (f.length === 5 && f.toLowerCase() === "\\seen") return true;
  return false;
}

function sameFlags(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const keys = new Set(a.map((f) => f.toLowerCase()));
  return b.every((f) => keys.has(f.toLowerCase()));
}

/** The view's unwatch before it watches and after it closes. */
const NOTHING = (): void => {};

/** Distinct flag lists a listing is expected to hold; beyond them a set finds the rest. */
const FEW_FLAG_SETS = 8;

/**
 * A listing split into the arrays a view keeps: the UIDs and flag lists in order, and the
 * distinct flag lists.
 */
interface SplitListing {
  readonly uids: number[];
  readonly flags: (readonly string[])[];
  readonly sets: readonly (readonly string[])[];
  /** The highest MODSEQ in the listing. */
  readonly floor: number;
  /**
   * True when `uids` and `flags` are also held elsewhere (a kept split, other views): a view
   * copies them before its first change.
   */
  readonly shared: boolean;
  /** `MailboxView.firstUnseen()` of the listing, once computed (kept splits only). */
  firstUnseen?: number;
}

/** Messages split between two looks at the clock. */
const SPLIT_STEP = 2048;

/** A split in progress (`splitStep`). */
interface SplitState {
  readonly uids: number[];
  readonly flags: (readonly string[])[];
  readonly sets: (readonly string[])[];
  more: Set<readonly string[]> | null;
  floor: number;
}

/**
 * Splits `messages[from..to)` into `state`, synchronously: the hot loop stays out of the async
 * function. Stores share one array per flag combination, so a few identity checks find the
 * distinct ones without hashing every message.
 */
function splitStep(
  messages: readonly MessageMeta[],
  from: number,
  to: number,
  state: SplitState,
): void {
  const { uids, flags, sets } = state;
  let floor = state.floor;
  for (let i = from; i < to; i++) {
    const m = messages[i]!;
    const f = m.flags;
    uids[i] = m.uid;
    if (m.modseq > floor) floor = m.modseq;
    flags[i] = f;
    let j = 0;
    while (j < sets.length && j < FEW_FLAG_SETS && sets[j] !== f) j++;
    if (j < sets.length && j < FEW_FLAG_SETS) continue;
    if (sets.length < FEW_FLAG_SETS) {
      sets.push(f);
      continue;
    }
    state.more ??= new Set(sets);
    if (state.more.has(f)) continue;
    state.more.add(f);
    sets.push(f);
  }
  state.floor = floor;
}

/**
 * Splits a listing, `SPLIT_STEP` messages at a time, yielding to the event loop between steps
 * once a time slice is used up when given a pacer (a SELECT of 100,000 takes a few slices
 * while its code is cold).
 */
async function splitListing(
  messages: readonly MessageMeta[],
  pacer: Pacer | null,
): Promise<SplitListing> {
  const count = messages.length;
  const state: SplitState = {
    uids: new Array(count),
    flags: new Array(count),
    sets: [],
    more: null,
    floor: 0,
  };
  for (let at = 0; at < count; at += SPLIT_STEP) {
    if (pacer !== null && at > 0 && pacer.due()) await pacer.yield();
    splitStep(messages, at, Math.min(count, at + SPLIT_STEP), state);
  }
  return {
    uids: state.uids,
    flags: state.flags,
    sets: state.sets,
    floor: state.floor,
    shared: false,
  };
}

/** Listings shorter than this are split at every SELECT; longer ones are kept (`splitFor`). */
const SPLIT_CACHE_MIN = 1000;
/** Large mailboxes per store whose last split listing is kept. */
const SPLIT_CACHE_MAILBOXES = 4;

/** The last split listing of a large mailbox, and the listing it was split from. */
interface KeptSplit extends SplitListing {
  readonly source: readonly MessageMeta[];
}

const keptSplits = new WeakMap<MailStore, Map<number, KeptSplit>>();

/**
 * `splitListing`, reusing the last split of a large mailbox when the store handed out the very
 * same listing array again (a store's cached listing, unchanged: `listMessages` arrays are never
 * changed once handed out). The views of that mailbox then share one UID column and one flag
 * column, each copying them before its first change, and a SELECT of 100,000 copies nothing.
 * A store that builds a new array at every listing simply never matches.
 */
async function splitFor(
  store: MailStore,
  mailboxId: number,
  messages: readonly MessageMeta[],
): Promise<SplitListing> {
  if (messages.length < SPLIT_CACHE_MIN) return await splitListing(messages, null);
  let kept = keptSplits.get(store);
  if (kept === undefined) {
    kept = new Map();
    keptSplits.set(store, kept);
  }
  const last = kept.get(mailboxId);
  if (last !== undefined && last.source === messages) {
    kept.delete(mailboxId);
    kept.set(mailboxId, last);
    return last;
  }
  const split: KeptSplit = {
    ...await splitListing(messages, new Pacer()),
    shared: true,
    source: messages,
  };
  kept.delete(mailboxId);
  kept.set(mailboxId, split);
  for (const id of kept.keys()) {
    if (kept.size <= SPLIT_CACHE_MAILBOXES) break;
    kept.delete(id);
  }
  return split;
}

/** The selected mailbox as one session sees it. */
/** Widest UID gap read by listing the range; a wider one lists the mailbox. */
const MAX_GAP_READ = 4096;

export class MailboxView {
  readonly mailboxId: number;
  readonly uidValidity: number;
  readonly readOnly: boolean;
  #name: string;
  /** UIDs in sequence order: `#uids[seq - 1]`. Ascending. */
  #uids: number[];
  /**
   * The flags last reported to (or known by) the client, in sequence order beside `#uids`: an
   * array of shared flag lists, not a map of 100,000 entries built at every SELECT.
   */
  #flags: (readonly string[])[];
  /**
   * The split `#uids` and `#flags` are shared with (other views of the same listing), until
   * this view's first change copies them (`#own()`); null once they are this view's own.
   */
  #split: SplitListing | null;
  #appended = new Set<number>();
  #flagged = new Set<number>();
  /**
   * The newest metadata the store's events carried for UIDs in `#appended` and `#flagged`, so
   * that `sync()` need not read them back. A UID an event named without it is in `#unsure` and
   * is read. `#floor` is the highest MODSEQ this view had reported or listed when the sync
   * began (raised within a sync by what the store returned): a carried meta below it may be
   * older than what the client was told (events of other connections can arrive out of
   * order), so it is read too. Within one sync, carried metas of other messages do not raise
   * it: a change committed before an append may be heard of after it.
   */
  #carried = new Map<number, MessageMeta>();
  #unsure = new Set<number>();
  #floor = 0;
  #trustFrom = 0;
  /** UIDs appended, flagged or expunged since `takeTouched()` (for search contexts). */
  #touched = new Set<number>();
  #expunged = new Set<number>();
  /**
   * UIDs expunged while this view did not know them, above the last UID announced: a new
   * message read by `sync()` may be expunged while the read is in flight, or its expunge may
   * arrive before its append (another Worker's event), and must not then be reported as
   * existing (it would never get its EXPUNGE). Dropped once arrivals pass them.
   */
  #goneUnknown = new Set<number>();
  #deleted = false;
  /**
   * Messages that are \\Recent in this session (IMAP4rev1 only; see recent.ts): those of the
   * listing the view opened with from `#recentFrom` to `#recentTo` (a tail of it: no set of
   * 100,000 UIDs at a SELECT) but the expunged ones in `#recentGone`, and `#recentMore`.
   */
  #recentFrom = 1;
  #recentTo = 0;
  #recentGone = new Set<number>();
  #recentMore = new Set<number>();
  /** \\Recent claimed by this session's own APPEND/COPY/MOVE, for messages not yet in view. */
  #claimedAhead = new Set<number>();
  #withRecent = new WeakMap<readonly string[], readonly string[]>();
  /** The RECENT count last sent to the client; RECENT goes out again only when it changes. */
  #reportedRecent = 0;
  readonly #recentMode: RecentMode;
  readonly #registry: RecentRegistry;
  /** Keywords this client has been told of in a FLAGS response, by lower-cased name. */
  #keywords = new Map<string, string>();
  /** Flag lists already checked against `#keywords` (stores share one array per set). */
  #announced = new WeakSet<readonly string[]>();
  #unwatch: () => void = NOTHING;
  #listener: (notice: ViewNotice) => void = () => {};

  private constructor(
    mailboxId: number,
    name: string,
    uidValidity: number,
    readOnly: boolean,
    listing: SplitListing,
    recentMode: RecentMode,
    registry: RecentRegistry,
  ) {
    this.#recentMode = recentMode;
    this.#registry = registry;
    this.mailboxId = mailboxId;
    this.#name = name;
    this.uidValidity = uidValidity;
    this.readOnly = readOnly;
    const { uids, flags, sets, floor } = listing;
    this.#uids = uids;
    this.#flags = flags;
    this.#split = listing.shared ? listing : null;
    this.#floor = floor;
    for (const f of sets) this.#addKeywords(f);
    this.#takeRecent(this.#uids, true);
    this.#reportedRecent = this.recentCount;
  }

  /**
   * Claims (SELECT) or notes (EXAMINE) the recent ones among newly known UIDs (ascending): those
   * of the opening listing as a range, later ones one by one.
   */
  #takeRecent(uids: readonly number[], opening = false): void {
    if (this.#recentMode === "off" || uids.length === 0) return;
    const from = this.#recentMode === "claim"
      ? this.#registry.claim(this.mailboxId, this.uidValidity, uids)
      : this.#registry.unclaimedFrom(this.mailboxId, this.uidValidity, uids);
    if (from >= uids.length) return;
    if (opening) {
      this.#recentFrom = uids[from]!;
      this.#recentTo = uids[uids.length - 1]!;
      return;
    }
    for (let i = from; i < uids.length; i++) this.#recentMore.add(uids[i]!);
  }

  /** Number of \\Recent messages in this session (the RECENT response). */
  get recentCount(): number {
    let count = this.#recentMore.size;
    if (this.#recentTo >= this.#recentFrom) {
      // Expunged ones have left `#uids` too.
      count += firstAtOrAbove(this.#uids, this.#recentTo + 1) -
        firstAtOrAbove(this.#uids, this.#recentFrom);
    }
    return count;
  }

  /** True when the message is \\Recent in this session. */
  isRecent(uid: number): boolean {
    if (uid >= this.#recentFrom && uid <= this.#recentTo) return !this.#recentGone.has(uid);
    return this.#recentMore.has(uid);
  }

  /** Forgets the \\Recent of an expunged message. */
  #dropRecent(uid: number): void {
    if (uid >= this.#recentFrom && uid <= this.#recentTo) this.#recentGone.add(uid);
    else this.#recentMore.delete(uid);
  }

  /**
   * The sequence number of the first message without \\Seen in the flags the client was told
   * of, or 0 (the UNSEEN response code of RFC 3501, Section 7.1). Each distinct flag list is
   * looked at once.
   */
  firstUnseen(): number {
    const split = this.#split;
    if (split === null) return this.#findFirstUnseen();
    split.firstUnseen ??= this.#findFirstUnseen();
    return split.firstUnseen;
  }

  #findFirstUnseen(): number {
    const flags = this.#flags;
    let seen: readonly string[] | null = null;
    let other: readonly string[] | null = null;
    for (let i = 0; i < flags.length; i++) {
      const f = flags[i]!;
      if (f === seen || f === other) continue;
      if (!hasSeen(f)) return i + 1;
      other = seen;
      seen = f;
    }
    return 0;
  }

  /** Makes `#uids` and `#flags` this view's own before it changes them (see `#split`). */
  #own(): void {
    if (this.#split === null) return;
    this.#split = null;
    this.#uids = this.#uids.slice();
    this.#flags = this.#flags.slice();
  }

  /** The flags to show the client for a message: the stored ones, plus \\Recent if so. */
  shownFlags(uid: number, flags: readonly string[]): readonly string[] {
    if (!this.isRecent(uid)) return flags;
    // One array per stored flag set (stores share them), so FETCH's flag-text cache still hits.
    let shown = this.#withRecent.get(flags);
    if (shown === undefined) {
      shown = Object.freeze([...flags, "\\Recent"]);
      if (Object.isFrozen(flags)) this.#withRecent.set(flags, shown);
    }
    return shown;
  }

  /** Adds unknown keywords of `flags`; true when there were any. */
  #addKeywords(flags: readonly string[]): boolean {
    if (this.#announced.has(flags)) return false;
    let added = false;
    for (const f of flags) {
      if (f.startsWith("\\")) continue;
      const key = f.toLowerCase();
      if (this.#keywords.has(key)) continue;
      this.#keywords.set(key, f);
      added = true;
    }
    if (Object.isFrozen(flags)) this.#announced.add(flags);
    return added;
  }

  /**
   * Writes the untagged FLAGS and PERMANENTFLAGS responses: the system flags and every keyword
   * the client has been told of (RFC 9051, Sections 7.3.5 and 7.1).
   */
  writeFlags(out: Output): void {
    const keywords = [...this.#keywords.values()].map((k) => " " + k).join("");
    out.line(`* FLAGS (${SYSTEM_FLAGS}${keywords})`);
    out.line(
      this.readOnly
        ? "* OK [PERMANENTFLAGS ()] No permanent flags permitted"
        : `* OK [PERMANENTFLAGS (${SYSTEM_FLAGS}${keywords} \\*)] Flags permitted`,
    );
  }

  /**
   * Call before sending a FETCH that shows `flags`: a keyword the client has not been told of
   * is first announced with FLAGS and PERMANENTFLAGS (RFC 3501, Section 7.2.6), so that every
   * keyword a client sees in FETCH FLAGS is in the last FLAGS response.
   */
  announce(flags: readonly string[], out: Output): void {
    if (this.#addKeywords(flags)) this.writeFlags(out);
  }

  /** `announce()` for several messages at once: one FLAGS response for all their keywords. */
  announceAll(lists: Iterable<readonly string[]>, out: Output): void {
    let added = false;
    // Stores share one array per flag combination: a few identity checks skip the repeats.
    const recent: (readonly string[])[] = [];
    for (const flags of lists) {
      if (recent.includes(flags)) continue;
      if (recent.length < FEW_FLAG_SETS) recent.push(flags);
      if (this.#addKeywords(flags)) added = true;
    }
    if (added) this.writeFlags(out);
  }

  /**
   * Opens a view: starts watching first, then lists the messages, so no change can slip
   * between the two. A store that can give the listing's UID and flag columns without its
   * objects (`listColumns`) is asked for them first.
   */
  static async open(
    store: MailStore,
    mailbox: { readonly id: number; readonly name: string; readonly uidValidity: number },
    readOnly: boolean,
    recentMode: RecentMode = "off",
  ): Promise<MailboxView> {
    const early: MailboxEvent[] = [];
    let view: MailboxView | null = null;
    const unwatch = store.watch(mailbox.id, (event) => {
      if (view === null) {
        early.push(event);
        return;
      }
      view.#onEvent(event);
    });
    try {
      const columns = await store.listColumns?.(mailbox.id) ?? null;
      view = new MailboxView(
        mailbox.id,
        mailbox.name,
        mailbox.uidValidity,
        readOnly,
        columns !== null
          ? { ...columns, shared: true }
          : await splitFor(store, mailbox.id, await store.listMessages(mailbox.id)),
        recentMode,
        recentRegistryFor(store),
      );
      view.#unwatch = unwatch;
      // Events that raced with the listing may or may not be in it; replaying them is safe
      // because sync() ignores appends it already has, expunges of unknown UIDs and flags
      // that did not change.
      for (const event of early) view.#onEvent(event);
      return view;
    } catch (e) {
      unwatch();
      throw e;
    }
  }

  get name(): string {
    return this.#name;
  }

  /** Number of messages the client knows about (its EXISTS count). */
  get count(): number {
    return this.#uids.length;
  }

  get deleted(): boolean {
    return this.#deleted;
  }

  /** True when changes are waiting to be reported. */
  get hasPending(): boolean {
    return this.#deleted || this.#appended.size > 0 || this.#flagged.size > 0 ||
      this.#expunged.size > 0;
  }

  /** The UIDs in sequence order. */
  get uids(): readonly number[] {
    return this.#uids;
  }

  /** Called (synchronously, from the store's feed) whenever a change is queued. */
  set onNotice(listener: (notice: ViewNotice) => void) {
    this.#listener = listener;
  }

  /** The sequence number of a UID, or 0 when the client does not know it. */
  seqOf(uid: number): number {
    let lo = 0;
    let hi = this.#uids.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const v = this.#uids[mid]!;
      if (v === uid) return mid + 1;
      if (v < uid) lo = mid + 1;
      else hi = mid - 1;
    }
    return 0;
  }

  /** True when the UID was expunged by someone but not yet reported to this client. */
  isExpungePending(uid: number): boolean {
    return this.#expunged.has(uid);
  }

  /**
   * Resolves a sequence set (or a UID set when `uid`) to the UIDs it names, ascending.
   * Out-of-range sequence numbers are a BAD (RFC 9051, Section 6.4.8 leaves UID sets lenient).
   */
  resolve(set: SequenceSet, uid: boolean, saved: readonly number[]): number[] {
    if (set.kind === "saved") return saved.filter((u) => this.seqOf(u) > 0);
    if (uid) return selectFromSorted(set.ranges, this.#uids);
    const spans = sequenceSpans(set.ranges, this.#uids.length);
    if (spans === null) throw new ImapError("BAD", "Invalid message sequence number");
    // Each range of sequence numbers is one slice of the UID column.
    const slices = spans.map(([lo, hi]) => this.#uids.slice(lo - 1, hi));
    return slices.length === 1 ? slices[0]! : slices.flat();
  }

  /** Records flags the client has just been told (FETCH FLAGS, STORE). */
  noteFlags(uid: number, flags: readonly string[]): void {
    const seq = this.seqOf(uid);
    if (seq > 0) this.noteFlagsAt(seq, flags);
  }

  /**
   * Records that the client has just been told a message's state at `modseq` outside `sync()`
   * (FETCH, STORE, QRESYNC): a change an event carries that is older than that must be read
   * again, not reported (events of other connections can arrive out of order).
   */
  noteModseq(modseq: number): void {
    if (modseq > this.#floor) this.#floor = modseq;
  }

  /** `noteFlags` for the message at sequence number `seq`, known to be in the view. */
  noteFlagsAt(seq: number, flags: readonly string[]): void {
    if (this.#flags[seq - 1] === flags) return;
    this.#own();
    this.#flags[seq - 1] = flags;
  }

  /** Records this session's own expunge so it is reported even if the feed is late. */
  noteExpunged(uids: readonly number[]): void {
    for (const u of uids) if (this.seqOf(u) > 0) this.#expunged.add(u);
  }

  /**
   * Records this session's own APPEND, COPY or MOVE into its mailbox, so that EXISTS follows at
   * completion; a read-write session claims their \Recent at once, as the one that added them.
   */
  noteAppended(uids: readonly number[]): void {
    for (const u of uids) this.#appended.add(u);
    if (this.#recentMode !== "claim") return;
    const sorted = [...uids].sort((a, b) => a - b);
    const from = this.#registry.claim(this.mailboxId, this.uidValidity, sorted);
    for (let i = from; i < sorted.length; i++) this.#claimedAhead.add(sorted[i]!);
  }

  /** The UIDs appended, flagged or expunged since the last call. */
  takeTouched(): Set<number> {
    const out = this.#touched;
    this.#touched = new Set();
    return out;
  }

  /**
   * The messages to announce after `last`. Events of writers on other connections (Workers,
   * nodes) can arrive out of UID order, and a UID once passed can never be announced; so when
   * the new UIDs do not follow `last` without a gap, the gap is read too (those UIDs were
   * committed before the highest one was handed out).
   */
  async #arrivals(
    store: MailStore,
    last: number,
    fresh: readonly number[],
  ): Promise<MessageMeta[]> {
    const highest = fresh[fresh.length - 1]!;
    const { known, rest } = this.#takeCarried(fresh);
    if (highest - last === fresh.length) {
      if (rest.length === 0) return known;
      return this.#raiseFloor(await store.getMessages(this.mailboxId, fresh));
    }
    if (highest - last <= MAX_GAP_READ) {
      const span = Array.from({ length: highest - last }, (_, i) => last + 1 + i);
      return this.#raiseFloor(await store.getMessages(this.mailboxId, span));
    }
    return this.#raiseFloor(
      (await store.listMessages(this.mailboxId)).filter((m) => m.uid > last && m.uid <= highest),
    );
  }

  /** The current metadata of flagged UIDs (ascending): carried by events, or read. */
  async #flagMetas(store: MailStore, uids: readonly number[]): Promise<MessageMeta[]> {
    const { known, rest } = this.#takeCarried(uids);
    if (rest.length === 0) return known;
    const read = this.#raiseFloor(await store.getMessages(this.mailboxId, rest));
    if (known.length === 0) return read;
    return [...known, ...read].sort((a, b) => a.uid - b.uid);
  }

  /**
   * Splits `uids` into those whose carried metadata can be trusted (see `#carried`) and the
   * rest, and forgets what was carried for all of them: the caller reports them now.
   */
  #takeCarried(uids: readonly number[]): { known: MessageMeta[]; rest: number[] } {
    const known: MessageMeta[] = [];
    const rest: number[] = [];
    for (const u of uids) {
      const meta = this.#carried.get(u);
      if (meta !== undefined && !this.#unsure.has(u) && meta.modseq >= this.#trustFrom) {
        known.push(meta);
      } else rest.push(u);
      this.#carried.delete(u);
      this.#unsure.delete(u);
    }
    for (const m of known) if (m.modseq > this.#floor) this.#floor = m.modseq;
    return { known, rest };
  }

  /** Notes metadata read from the store (see `#carried`). */
  #raiseFloor(metas: MessageMeta[]): MessageMeta[] {
    for (const m of metas) {
      if (m.modseq > this.#floor) this.#floor = m.modseq;
      if (m.modseq > this.#trustFrom) this.#trustFrom = m.modseq;
    }
    return metas;
  }

  /** Keeps the newest metadata an event carried, or marks its UIDs to be read. */
  #carry(uids: readonly number[], metas: readonly MessageMeta[] | undefined): void {
    for (let i = 0; i < uids.length; i++) {
      const u = uids[i]!;
      const meta = metas?.[i];
      if (meta === undefined || meta.uid !== u) {
        this.#unsure.add(u);
        continue;
      }
      const held = this.#carried.get(u);
      if (held === undefined || meta.modseq > held.modseq) this.#carried.set(u, meta);
    }
  }

  #onEvent(event: MailboxEvent): void {
    if (event.kind === "append" || event.kind === "flags" || event.kind === "expunge") {
      for (const u of event.uids) this.#touched.add(u);
    }
    switch (event.kind) {
      case "append":
        for (const u of event.uids) this.#appended.add(u);
        this.#carry(event.uids, event.metas);
        break;
      case "flags":
        for (const u of event.uids) this.#flagged.add(u);
        this.#carry(event.uids, event.metas);
        break;
      case "expunge":
        for (const u of event.uids) {
          if (this.seqOf(u) > 0) this.#expunged.add(u);
          else this.#goneUnknown.add(u);
          this.#appended.delete(u);
          this.#claimedAhead.delete(u);
        }
        break;
      case "deleted":
        this.#deleted = true;
        this.#listener("deleted");
        return;
      case "renamed":
        this.#name = event.name;
        return;
      default: {
        const never: never = event;
        return never;
      }
    }
    this.#listener("changed");
  }

  /**
   * Reports queued changes as untagged responses (RFC 9051, Section 7.5.1): EXPUNGE first
   * (when allowed), then EXISTS for new messages, then FETCH for changed flags. Every FETCH
   * carries the UID, which IMAP4rev2 requires and IMAP4rev1 clients accept. Resolves true when
   * expunges were reported.
   */
  async sync(store: MailStore, out: Output, options: SyncOptions): Promise<boolean> {
    let expunged = false;
    this.#trustFrom = this.#floor;
    if (options.allowExpunge && this.#expunged.size > 0) {
      const gone = [...this.#expunged].sort((a, b) => a - b);
      this.#expunged.clear();
      if (options.qresync) {
        const known = gone.filter((u) => this.seqOf(u) > 0);
        const drop = new Set(known);
        // filter() makes arrays of this view's own.
        this.#split = null;
        const flags = this.#flags;
        this.#flags = flags.filter((_, i) => !drop.has(this.#uids[i]!));
        this.#uids = this.#uids.filter((u) => !drop.has(u));
        for (const u of known) {
          this.#flagged.delete(u);
          this.#dropRecent(u);
        }
        if (known.length > 0) {
          out.line(`* VANISHED ${formatSequenceSet(known)}`);
          expunged = true;
        }
      }
      if (!options.qresync) expunged = this.#expungeInOrder(gone, out);
    }
    if (this.#appended.size > 0) {
      const last = this.#uids[this.#uids.length - 1] ?? 0;
      const fresh = [...this.#appended].filter((u) => u > last).sort((a, b) => a - b);
      this.#appended.clear();
      let metas: MessageMeta[] = [];
      try {
        if (fresh.length > 0) metas = await this.#arrivals(store, last, fresh);
      } catch (e) {
        // The store could not be read (a database restart): the arrivals stay queued.
        for (const u of fresh) this.#appended.add(u);
        throw e;
      }
      const before = this.#uids.length;
      this.announceAll(metas.map((m) => m.flags), out);
      if (metas.length > 0) this.#own();
      for (const m of metas.sort((a, b) => a.uid - b.uid)) {
        if (m.uid <= (this.#uids[this.#uids.length - 1] ?? 0) || this.#goneUnknown.has(m.uid)) {
          continue;
        }
        this.#uids.push(m.uid);
        this.#flags.push(m.flags);
        if (this.#claimedAhead.delete(m.uid)) this.#recentMore.add(m.uid);
        // A change heard of while the arrival was read stays queued; it may be newer.
        if (!this.#carried.has(m.uid) && !this.#unsure.has(m.uid)) this.#flagged.delete(m.uid);
      }
      if (this.#uids.length !== before) {
        this.#takeRecent(this.#uids.slice(before));
        out.line(`* ${this.#uids.length} EXISTS`);
      }
    }
    if (this.#recentMode !== "off" && this.recentCount !== this.#reportedRecent) {
      this.#reportedRecent = this.recentCount;
      out.line(`* ${this.#reportedRecent} RECENT`);
    }
    if (this.#flagged.size > 0) {
      // A message whose expunge waits to be reported is not reported changed (its state is gone).
      const changed = [...this.#flagged].filter((u) => this.seqOf(u) > 0 && !this.#expunged.has(u))
        .sort((a, b) => a - b);
      this.#flagged.clear();
      let metas: MessageMeta[] = [];
      try {
        if (changed.length > 0) metas = await this.#flagMetas(store, changed);
      } catch (e) {
        for (const u of changed) this.#flagged.add(u);
        throw e;
      }
      this.announceAll(metas.map((m) => m.flags), out);
      for (const m of metas) {
        const seq = this.seqOf(m.uid);
        if (seq === 0 || sameFlags(this.#flags[seq - 1]!, m.flags)) continue;
        this.noteFlagsAt(seq, m.flags);
        const modseq = options.condstore ? ` MODSEQ (${m.modseq})` : "";
        const shown = flagList(this.shownFlags(m.uid, m.flags));
        out.line(`* ${seq} FETCH (UID ${m.uid} FLAGS ${shown}${modseq})`);
      }
    }
    // What was carried for UIDs that were not reported (unknown to the client) is dropped.
    for (const u of this.#carried.keys()) {
      if (!this.#appended.has(u) && !this.#flagged.has(u)) this.#carried.delete(u);
    }
    for (const u of this.#unsure) {
      if (!this.#appended.has(u) && !this.#flagged.has(u)) this.#unsure.delete(u);
    }
    // An expunge can arrive before its message's append: another Worker's append event and
    // this one's expunge come from different senders, in no set order. Such a UID above the
    // last one announced must stay refused until arrivals pass it; below, none can arrive.
    const last = this.#uids[this.#uids.length - 1] ?? 0;
    for (const u of this.#goneUnknown) if (u <= last) this.#goneUnknown.delete(u);
    return expunged;
  }

  /**
   * Reports `* n EXPUNGE` for the known ones of `gone` (ascending), each numbered as the
   * client sees it after the ones before (RFC 9051, Section 7.5.1), and drops them in one pass
   * rather than one splice each. True when any was known.
   */
  #expungeInOrder(gone: readonly number[], out: Output): boolean {
    const drop = new Set<number>();
    for (const uid of gone) {
      const seq = this.seqOf(uid);
      if (seq === 0) continue;
      // Earlier ones are still in `#uids`, each lowering this one's number by one.
      out.line(`* ${seq - drop.size} EXPUNGE`);
      drop.add(uid);
      this.#flagged.delete(uid);
      this.#dropRecent(uid);
    }
    if (drop.size === 0) return false;
    this.#own();
    let kept = 0;
    for (let i = 0; i < this.#uids.length; i++) {
      const uid = this.#uids[i]!;
      if (drop.has(uid)) continue;
      this.#uids[kept] = uid;
      this.#flags[kept] = this.#flags[i]!;
      kept++;
    }
    this.#uids.length = kept;
    this.#flags.length = kept;
    return true;
  }

  /** Stops watching the store. */
  close(): void {
    this.#unwatch();
    this.#unwatch = NOTHING;
  }
}
