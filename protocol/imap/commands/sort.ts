/**
 * SORT and UID SORT (RFC 5256, Section 3), with the DISPLAYFROM and DISPLAYTO keys of
 * SORT=DISPLAY (RFC 5957), the ESORT return options MIN, MAX, ALL and COUNT (RFC 5267,
 * Section 3) and the context options CONTEXT, UPDATE and PARTIAL (RFC 5267, Section 4). Keys come from the stored search text (see `_sort_data.ts`); ties fall back to
 * sequence order.
 */
import type { CommandContext, CommandSpec, Completion } from "../context.ts";
import { badSyntax } from "../errors.ts";
import type { CommandReader } from "../parser.ts";
import { formatSequenceSet } from "../sequence_set.ts";
import { deriveKeys, hasKeys, loadSortRecords, type SortRecord } from "./_sort_data.ts";
import { keepResult, keptResult } from "../sort_cache.ts";
import {
  dependsOnMessageOnly,
  findMatchColumns,
  findMatches,
  readCharset,
  readReturnOptions,
  readSearchProgram,
  type SearchKey,
} from "./search.ts";
import { selected } from "./_util.ts";
import { formatPartial } from "../search_context.ts";
import type { Pacer } from "../../event_loop.ts";
import { pacedSort } from "../paced_sort.ts";

type KeyField = keyof SortRecord["keys"];

/** The sort keys (RFC 5256 `sort-key`, RFC 5957 DISPLAYFROM and DISPLAYTO): field, is text. */
const KEYS: Record<string, readonly [KeyField, boolean]> = {
  ARRIVAL: ["arrival", false],
  CC: ["cc", true],
  DATE: ["date", false],
  FROM: ["from", true],
  SIZE: ["size", false],
  SUBJECT: ["subjectKey", true],
  TO: ["to", true],
  DISPLAYFROM: ["displayFrom", true],
  DISPLAYTO: ["displayTo", true],
};

interface Criterion {
  readonly field: KeyField;
  readonly text: boolean;
  readonly reverse: boolean;
}

/** The keys of one mailbox as the shared sort-key cache holds them (add-only while kept). */
export type MailboxKeys = ReadonlyMap<number, SortRecord["keys"]>;

/**
 * Ranks of a text field over every message of a mailbox, kept per mailbox key map while that
 * map has not grown: keys never change once cached, so the ranks of an unchanged set of messages
 * stay right, and a repeated text SORT compares numbers without sorting the distinct values again.
 */
const rankCache = new WeakMap<
  MailboxKeys,
  { size: number; ranks: Map<KeyField, ReadonlyMap<string, number>> }
>();

/**
 * The mailbox-wide ranks of `field`: kept ones while valid; else built, when `wanted` records are
 * a good part of the mailbox (a narrow SORT after a change ranks its own few values instead).
 */
async function mailboxRanks(
  keys: MailboxKeys,
  field: KeyField,
  wanted: number,
  pacer: Pacer,
): Promise<ReadonlyMap<string, number> | undefined> {
  let entry = rankCache.get(keys);
  if (entry === undefined || entry.size !== keys.size) {
    entry = { size: keys.size, ranks: new Map() };
    rankCache.set(keys, entry);
  }
  let rank = entry.ranks.get(field);
  if (rank === undefined) {
    if (wanted * 4 < keys.size) return undefined;
    await deriveKeys(keys.values(), [field], pacer);
    const distinct = new Set<string>();
    for (const k of keys.values()) distinct.add(k[field] as string);
    rank = await rankValues([...distinct], pacer);
    entry.ranks.set(field, rank);
  }
  return rank;
}

/**
 * The mailbox-wide ranks of base subjects that SORT (SUBJECT) keeps, for THREAD ORDEREDSUBJECT
 * over `wanted` messages; built when they are a good part of the mailbox, as for SORT.
 */
export function subjectRanks(
  keys: MailboxKeys,
  wanted: number,
  pacer: Pacer,
): Promise<ReadonlyMap<string, number> | undefined> {
  return mailboxRanks(keys, "subjectKey", wanted, pacer);
}

const byCodeUnit = (a: string, b: string): number => a < b ? -1 : a > b ? 1 : 0;

/** Ranks of distinct strings, by code unit. */
async function rankValues(
  distinct: string[],
  pacer: Pacer,
): Promise<ReadonlyMap<string, number>> {
  await pacedSort(distinct, byCodeUnit, pacer);
  return new Map(distinct.map((v, i) => [v, i]));
}

/**
 * The value each record sorts by under one criterion, as numbers: text keys become their rank
 * among the distinct values (by code unit), so that the main sort compares numbers only. With
 * the mailbox's cached keys, the ranks come from there (any ordering consistent with code-unit
 * order gives the same result).
 */
async function sortValues(
  records: readonly SortRecord[],
  c: Criterion,
  pacer: Pacer,
  keys?: MailboxKeys,
): Promise<Float64Array> {
  const out = new Float64Array(records.length);
  if (!c.text) {
    for (let i = 0; i < records.length; i++) out[i] = records[i]!.keys[c.field] as number;
  } else {
    const values = records.map((r) => r.keys[c.field] as string);
    let rank = keys === undefined
      ? undefined
      : await mailboxRanks(keys, c.field, values.length, pacer);
    // A record whose keys are not in the cached map (evicted meanwhile) ranks them itself.
    if (rank === undefined || values.some((v) => !rank!.has(v))) {
      rank = await rankValues([...new Set(values)], pacer);
    }
    for (let i = 0; i < values.length; i++) out[i] = rank.get(values[i]!)!;
  }
  if (c.reverse) { for (let i = 0; i < out.length; i++) out[i] = -out[i]!; }
  return out;
}

/**
 * Orders `records` by the criteria, then by sequence number (RFC 5256, Section 3), yielding
 * through `pacer`.
 */
export async function sortRecords(
  records: readonly SortRecord[],
  criteria: readonly Criterion[],
  pacer: Pacer,
  keys?: MailboxKeys,
): Promise<SortRecord[]> {
  const { order } = await sortOrder(records, criteria, pacer, keys);
  return order.map((i) => records[i]!);
}

/**
 * `sortRecords` as indexes into `records`, with the values each criterion compared (`ties`
 * reads them: equal keys have equal values).
 */
async function sortOrder(
  records: readonly SortRecord[],
  criteria: readonly Criterion[],
  pacer: Pacer,
  keys?: MailboxKeys,
): Promise<{ order: number[]; columns: Float64Array[] }> {
  await deriveKeys(records.map((r) => r.keys), criteria.map((c) => c.field), pacer);
  const columns: Float64Array[] = [];
  for (const c of criteria) columns.push(await sortValues(records, c, pacer, keys));
  const order = Array.from(records.keys());
  await pacedSort(order, (a, b) => {
    for (const col of columns) {
      const d = col[a]! - col[b]!;
      if (d !== 0) return d;
    }
    return records[a]!.seq - records[b]!.seq;
  }, pacer);
  return { order, columns };
}

/**
 * The order of `sortRecords` as a comparison of two records: text keys by code unit (as the
 * ranks are), numbers by value, REVERSE negated, then sequence number.
 */
function compareRecords(criteria: readonly Criterion[]): (a: SortRecord, b: SortRecord) => number {
  return (a, b) => {
    for (const c of criteria) {
      const x = a.keys[c.field] as number | string;
      const y = b.keys[c.field] as number | string;
      const d = x < y ? -1 : x > y ? 1 : 0;
      if (d !== 0) return c.reverse ? -d : d;
    }
    return a.seq - b.seq;
  };
}

/**
 * A kept sorted result after changes (RFC 5267, Section 4.3): sort keys never change, so the
 * untouched members keep their order, and the touched ones that match now are merged in.
 */
function mergeSorted(
  kept: readonly SortRecord[],
  added: SortRecord[],
  criteria: readonly Criterion[],
): SortRecord[] {
  const cmp = compareRecords(criteria);
  added.sort(cmp);
  const out: SortRecord[] = [];
  let i = 0;
  let j = 0;
  while (i < kept.length || j < added.length) {
    if (j >= added.length || (i < kept.length && cmp(kept[i]!, added[j]!) <= 0)) {
      out.push(kept[i++]!);
    } else out.push(added[j++]!);
  }
  return out;
}

/**
 * The kept result with the untouched members in their order and each new member inserted by
 * binary search, reading sort keys from the session cache; null when a key is not cached
 * (then the caller rebuilds every record).
 */
async function insertSorted(
  ctx: CommandContext,
  previous: readonly number[],
  touched: ReadonlySet<number>,
  fresh: ReadonlySet<number>,
  criteria: readonly Criterion[],
): Promise<number[] | null> {
  const { view } = selected(ctx);
  // Expunged members are touched, so every kept one is still in the view.
  const result = previous.filter((u) => !touched.has(u));
  const hits = [...fresh].map((uid) => ({ seq: view.seqOf(uid), uid })).filter((h) => h.seq > 0);
  const cmp = compareRecords(criteria);
  const added = (await loadSortRecords(ctx, { kind: "all" }, hits)).sort(cmp);
  const cache = ctx.sortKeys.mailbox(view.mailboxId, view.uidValidity, view.uids.length);
  for (const record of added) {
    let lo = 0;
    let hi = result.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const uid = result[mid]!;
      const keys = cache.get(uid);
      if (keys === undefined) return null;
      if (cmp({ seq: view.seqOf(uid), uid, keys }, record) <= 0) lo = mid + 1;
      else hi = mid;
    }
    result.splice(lo, 0, record.uid);
  }
  return result;
}

/** Most criteria in one SORT. */
const MAX_CRITERIA = 32;

type ReturnOption = "MIN" | "MAX" | "ALL" | "COUNT";
const RETURN_OPTIONS: ReadonlySet<string> = new Set(["MIN", "MAX", "ALL", "COUNT"]);

function readCriteria(r: CommandReader): Criterion[] {
  const criteria = r.list(() => {
    let reverse = false;
    let key = r.keyword("sort key");
    if (key === "REVERSE") {
      reverse = true;
      r.sp();
      key = r.keyword("sort key");
    }
    const spec = KEYS[key];
    if (spec === undefined) throw badSyntax(`Unknown sort key ${key.slice(0, 40)}`);
    return { field: spec[0], text: spec[1], reverse };
  }, false);
  if (criteria.length > MAX_CRITERIA) throw badSyntax("Too many sort criteria");
  return criteria;
}

/** The selected mailbox's keys in the shared sort-key cache. */
function mailboxKeys(ctx: CommandContext): MailboxKeys {
  const { view } = selected(ctx);
  return ctx.sortKeys.mailbox(view.mailboxId, view.uidValidity, view.uids.length);
}

function orderName(criteria: readonly Criterion[]): string {
  return "SORT " + criteria.map((c) => (c.reverse ? "-" : "") + c.field).join(" ");
}

/**
 * A whole-mailbox order: sequence numbers, and where each has the same keys as the one before
 * it (1), so that the order of the criteria all reversed follows without reading keys (5 bytes
 * per message in all).
 */
interface KeptOrder {
  readonly seqs: Uint32Array;
  readonly ties: Uint8Array;
}

/**
 * The kept whole-mailbox order of `criteria`; else, derived from the kept order of the same
 * criteria each reversed (REVERSE DATE for DATE), that order's runs of equal keys taken from
 * the last to the first, each still by sequence number, and kept in turn.
 */
function keptOrder(ctx: CommandContext, criteria: readonly Criterion[]): KeptOrder | undefined {
  const { view } = selected(ctx);
  const keys = mailboxKeys(ctx);
  const kept = keptResult<KeptOrder>(keys, view.uids, orderName(criteria));
  if (kept !== undefined) return kept;
  const flipped = criteria.map((c) => ({ ...c, reverse: !c.reverse }));
  const other = keptResult<KeptOrder>(keys, view.uids, orderName(flipped));
  if (other === undefined) return undefined;
  const n = other.seqs.length;
  const seqs = new Uint32Array(n);
  const ties = new Uint8Array(n);
  let w = 0;
  for (let end = n; end > 0;) {
    let start = end - 1;
    while (start > 0 && other.ties[start] === 1) start--;
    seqs[w] = other.seqs[start]!;
    for (let i = start + 1; i < end; i++) {
      ties[++w] = 1;
      seqs[w] = other.seqs[i]!;
    }
    w++;
    end = start;
  }
  const out = { seqs, ties };
  keepResult(keys, view.uids, orderName(criteria), out);
  return out;
}

/**
 * Sequence numbers of the whole mailbox in the order of the criteria, kept (`keptResult`)
 * until its set of messages changes: webmail sorts whole mailboxes again and again.
 */
async function wholeMailboxOrder(
  ctx: CommandContext,
  criteria: readonly Criterion[],
): Promise<Uint32Array> {
  const kept = keptOrder(ctx, criteria);
  if (kept !== undefined) return kept.seqs;
  const name = orderName(criteria);
  const records = await loadSortRecords(ctx, { kind: "all" });
  const keys = mailboxKeys(ctx);
  const { order, columns } = await sortOrder(records, criteria, ctx.pacer(), keys);
  const seqs = new Uint32Array(order.length);
  for (let i = 0; i < order.length; i++) seqs[i] = records[order[i]!]!.seq;
  if (records.every(hasKeys)) {
    const ties = new Uint8Array(order.length);
    for (let i = 1; i < order.length; i++) {
      const a = order[i - 1]!;
      const b = order[i]!;
      let same = 1;
      for (const col of columns) if (col[a] !== col[b]) same = 0;
      ties[i] = same;
    }
    keepResult(keys, records.map((x) => x.uid), name, { seqs, ties });
  }
  return seqs;
}

/**
 * Sequence numbers of the messages `key` matches, in the order of the criteria. When they are
 * a good part of the mailbox and its whole order is kept, they are picked from that order
 * (ties break by sequence number, so the order of a subset is the same).
 */
async function sortedSeqs(
  ctx: CommandContext,
  key: SearchKey,
  criteria: readonly Criterion[],
): Promise<ArrayLike<number>> {
  if (key.kind === "all") return wholeMailboxOrder(ctx, criteria);
  const { seqs, uids } = await findMatchColumns(ctx, key);
  const { view } = selected(ctx);
  const live = view.uids.length;
  const n = seqs.length;
  // Sorting the whole mailbox would cost more than sorting the matches: only a kept order.
  const whole = n * 4 >= live ? keptOrder(ctx, criteria)?.seqs : undefined;
  if (whole === undefined) {
    const hits = seqs.map((seq, i) => ({ seq, uid: uids[i]! }));
    const records = await loadSortRecords(ctx, key, hits);
    return (await sortRecords(records, criteria, ctx.pacer(), mailboxKeys(ctx))).map((x) => x.seq);
  }
  const matched = new Uint8Array(live + 1);
  for (let i = 0; i < n; i++) matched[seqs[i]!] = 1;
  const out = new Uint32Array(n);
  let w = 0;
  for (let i = 0; i < whole.length; i++) {
    const seq = whole[i]!;
    if (matched[seq] === 1) out[w++] = seq;
  }
  return out.subarray(0, w);
}

async function sort(ctx: CommandContext, r: CommandReader, uidMode: boolean): Promise<Completion> {
  r.sp();
  const { returns, context } = readReturnOptions<ReturnOption>(r, RETURN_OPTIONS, "SORT");
  const criteria = readCriteria(r);
  r.sp();
  readCharset(r);
  r.sp();
  const key = readSearchProgram(r);
  const seqs = await sortedSeqs(ctx, key, criteria);
  const { view } = selected(ctx);
  const uids = Array.from(seqs, (s) => view.uids[s - 1]!);
  const numbers = uidMode ? uids : Array.from(seqs);
  const label = uidMode ? "UID SORT" : "SORT";
  if (returns === null) {
    ctx.out.line(numbers.length === 0 ? "* SORT" : "* SORT " + numbers.join(" "));
    return { text: `${label} completed` };
  }
  const wanted: readonly ReturnOption[] = context.impliesAll ? ["ALL"] : returns;
  if (context.update) {
    const incremental = dependsOnMessageOnly(key);
    const added = ctx.searchUpdates.add({
      tag: ctx.tag,
      uid: uidMode,
      sorted: true,
      incremental,
      compute: async (c, previous, touched) => {
        if (!incremental) {
          const records = await loadSortRecords(c, key);
          return (await sortRecords(records, criteria, c.pacer(), mailboxKeys(c))).map((x) =>
            x.uid
          );
        }
        // Members: the previous ones untouched since, and the touched ones that match now.
        const fresh = new Set((await findMatches(c, key, touched)).map((h) => h.uid));
        const { view } = selected(c);
        const quick = await insertSorted(c, previous, touched, fresh, criteria);
        if (quick !== null) return quick;
        const members = new Set(previous.filter((u) => !touched.has(u)));
        const hits = view.uids.flatMap((uid, i) =>
          members.has(uid) || fresh.has(uid) ? [{ seq: i + 1, uid }] : []
        );
        const byUid = new Map((await loadSortRecords(c, key, hits)).map((r) => [r.uid, r]));
        const kept = previous.flatMap((u) => {
          const r = members.has(u) ? byUid.get(u) : undefined;
          return r === undefined ? [] : [r];
        });
        const added = [...fresh].flatMap((u) => {
          const r = byUid.get(u);
          return r === undefined ? [] : [r];
        });
        return mergeSorted(kept, added, criteria).map((x) => x.uid);
      },
      results: uids,
    });
    if (!added) ctx.out.line(`* NO [NOUPDATE "${ctx.tag}"] Too many or too large kept results`);
  }
  const parts = [`* ESEARCH (TAG "${ctx.tag}")`];
  if (uidMode) parts.push("UID");
  if (numbers.length > 0) {
    if (wanted.includes("MIN")) parts.push(`MIN ${numbers[0]}`);
    if (wanted.includes("MAX")) parts.push(`MAX ${numbers[numbers.length - 1]}`);
    // ALL keeps the sort order: only ascending runs become ranges (RFC 5267, Section 3.1).
    if (wanted.includes("ALL")) parts.push(`ALL ${formatSequenceSet(numbers)}`);
  }
  if (context.partial !== null) parts.push(formatPartial(context.partial, numbers));
  if (wanted.includes("COUNT")) parts.push(`COUNT ${numbers.length}`);
  ctx.out.line(parts.join(" "));
  return { text: `${label} completed` };
}

export const sortCommand: CommandSpec = {
  name: "SORT",
  states: ["selected"],
  allowsExpunge: false,
  run: (ctx, r) => sort(ctx, r, false),
};

export const uidSortCommand: CommandSpec = {
  name: "UID SORT",
  states: ["selected"],
  allowsExpunge: true,
  run: (ctx, r) => sort(ctx, r, true),
};
