/**
 * Search and sort contexts (RFC 5267, Section 4): the PARTIAL return option, and the results a
 * client asked to keep up to date with UPDATE, whose changes go out as ESEARCH ADDTO and
 * REMOVEFROM whenever the session may report expunges.
 */
import type { CommandContext } from "./context.ts";
import { badSyntax } from "./errors.ts";
import type { CommandReader } from "./parser.ts";
import { formatSequenceSet } from "./sequence_set.ts";

/** Contexts one session keeps up to date; more are refused with NOUPDATE (RFC 5267, 4.2). */
export const MAX_UPDATE_CONTEXTS = 8;

/**
 * UIDs one session's kept results may hold in all when a context is added (8 bytes each), so
 * that a client cannot pin the memory of several 100k-message results per connection.
 */
export const MAX_UPDATE_UIDS = 250_000;

/** `PARTIAL low:high`: positions in the result, 1-based, in either order (RFC 5267, 4.4). */
export interface PartialRange {
  readonly low: number;
  readonly high: number;
}

/** Reads the range after `PARTIAL `. */
export function readPartialRange(r: CommandReader): PartialRange {
  const a = r.nzNumber("partial range");
  r.expectByte(0x3a, ":");
  const b = r.nzNumber("partial range");
  return { low: Math.min(a, b), high: Math.max(a, b) };
}

/** `PARTIAL (low:high set)`, NIL when no result lies in the range (RFC 5267, Section 4.4). */
export function formatPartial(range: PartialRange, numbers: readonly number[]): string {
  const slice = numbers.slice(range.low - 1, range.high);
  const set = slice.length === 0 ? "NIL" : formatSequenceSet(slice);
  return `PARTIAL (${range.low}:${range.high} ${set})`;
}

/** A result kept up to date (RETURN (UPDATE)). */
export interface UpdateContext {
  /** The tag of the SEARCH or SORT that asked for it (CANCELUPDATE names it). */
  readonly tag: string;
  readonly uid: boolean;
  /** Sorted results report real positions; plain SEARCH results report 0, as Dovecot does. */
  readonly sorted: boolean;
  /**
   * Whether only the messages appended, flagged or expunged since can have joined or left the
   * result (keys that depend on the message alone); otherwise it is compared whole.
   */
  readonly incremental: boolean;
  /**
   * Recomputes the result, as UIDs in result order, from the previous one and the UIDs
   * appended, flagged or expunged since (the only messages whose membership can have changed,
   * for keys that depend on the message alone).
   */
  readonly compute: (
    ctx: CommandContext,
    previous: readonly number[],
    touched: ReadonlySet<number>,
  ) => Promise<number[]>;
  /** The result last reported, as UIDs in result order. */
  results: number[];
}

/**
 * The ESEARCH line telling the client how `before` became `after` (RFC 5267, Section 4.3), or
 * null when nothing changed. Removals come first, each position counted after the removals
 * before it; then additions, at their positions in the new result. `number` maps a UID to what
 * the client sees (its sequence number unless UID); a message it can no longer number (its
 * EXPUNGE was sent) needs no REMOVEFROM.
 */
export function updateLine(
  context: UpdateContext,
  after: readonly number[],
  number: (uid: number) => number,
  candidates?: ReadonlySet<number>,
): string | null {
  const before = context.results;
  let leaving: number[];
  let joining: number[];
  if (candidates !== undefined && candidates.size <= MAX_CANDIDATES) {
    // Only these can have left or joined: look them up rather than compare whole results.
    const find = context.sorted
      ? (list: readonly number[], uid: number) => list.indexOf(uid)
      : ascendingIndex;
    leaving = [];
    joining = [];
    for (const uid of candidates) {
      const i = find(before, uid);
      const j = find(after, uid);
      if (i >= 0 && j < 0) leaving.push(i);
      if (j >= 0 && i < 0) joining.push(j);
    }
    leaving.sort((a, b) => a - b);
    joining.sort((a, b) => a - b);
  } else {
    const now = new Set(after);
    const was = new Set(before);
    leaving = [...before.keys()].filter((i) => !now.has(before[i]!));
    joining = [...after.keys()].filter((j) => !was.has(after[j]!));
  }
  const removed: [number, number][] = [];
  for (const [gone, i] of leaving.entries()) {
    const n = number(before[i]!);
    if (n > 0) removed.push([context.sorted ? i + 1 - gone : 0, n]);
  }
  const added: [number, number][] = joining.map((j) => [
    context.sorted ? j + 1 : 0,
    number(after[j]!),
  ]);
  if (removed.length === 0 && added.length === 0) return null;
  const parts = [`* ESEARCH (TAG "${context.tag}")`];
  if (context.uid) parts.push("UID");
  if (removed.length > 0) parts.push(`REMOVEFROM (${pairs(removed, context.sorted, false)})`);
  if (added.length > 0) parts.push(`ADDTO (${pairs(added, context.sorted, true)})`);
  return parts.join(" ");
}

/** Beyond this many changed messages, results are compared whole. */
const MAX_CANDIDATES = 64;

/** The index of `uid` in an ascending list, or -1. */
function ascendingIndex(list: readonly number[], uid: number): number {
  let lo = 0;
  let hi = list.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const v = list[mid]!;
    if (v === uid) return mid;
    if (v < uid) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

/**
 * `pos set pos set ...`. Unsorted results put everything at position 0. Sorted additions at
 * consecutive positions with consecutive numbers share one pair (`4 7:9`: 7 at 4, 8 at 5, 9 at
 * 6); sorted removals get a pair each, each position counted after the removals before it.
 */
function pairs(list: readonly [number, number][], sorted: boolean, group: boolean): string {
  if (!sorted) return `0 ${formatSequenceSet([...list.map(([, n]) => n)].sort((a, b) => a - b))}`;
  const out: string[] = [];
  let start = 0;
  for (let i = 1; i <= list.length; i++) {
    const prev = list[i - 1]!;
    const cur = list[i];
    if (group && cur !== undefined && cur[0] === prev[0] + 1 && cur[1] === prev[1] + 1) continue;
    const run = list.slice(start, i).map(([, n]) => n);
    out.push(`${list[start]![0]} ${formatSequenceSet(run)}`);
    start = i;
  }
  return out.join(" ");
}

/** The session's registry of update contexts (`CommandContext.searchUpdates`). */
export interface SearchUpdates {
  /** Keeps `context` up to date; false when the session holds too many already. */
  add(context: UpdateContext): boolean;
  /** Stops updating the contexts of these tags; returns the tags it did not know. */
  cancel(tags: readonly string[]): string[];
}

/** Rejects PARTIAL with ALL (RFC 5267, Section 4.4: PARTIAL is a window onto ALL). */
export function checkPartial(partial: PartialRange | null, all: boolean): void {
  if (partial !== null && all) throw badSyntax("PARTIAL conflicts with ALL");
}
