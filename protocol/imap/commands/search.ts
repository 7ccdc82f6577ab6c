/**
 * SEARCH and UID SEARCH (RFC 9051, Section 6.4.4), with ESEARCH answers after ENABLE
 * IMAP4rev2 or when RETURN options are given (RFC 4731), and RETURN (SAVE) for `$`
 * (RFC 5182). Text keys match case-insensitively against the top-level header fields and the
 * decoded-as-UTF-8 body; dates compare whole days, ignoring time and zone.
 */
import type { MessageMeta, MessageObjectInfo } from "../../../mailstore/mail_store.ts";
import { OBJECT_ID } from "../../../mailstore/object_id.ts";
import type { CommandContext, CommandSpec, Completion } from "../context.ts";
import { badSyntax, ImapError } from "../errors.ts";
import { addressKey, headerEnd, type SearchData } from "../fetch_items.ts";
import { foldText } from "../mime/mod.ts";
import type { CommandReader } from "../parser.ts";
import { LineBuilder, MAX_DIGITS } from "../response.ts";
import { formatSequenceSet, type SequenceSet } from "../sequence_set.ts";
import { SearchIndex } from "../search_index.ts";
import {
  checkPartial,
  formatPartial,
  type PartialRange,
  readPartialRange,
} from "../search_context.ts";
import { selected } from "./_util.ts";

/** UIDs whose search text one store call reads. */
const SEARCH_CHUNK = 2000;
/** Messages matched between two looks at the clock (a mask: every 256th). */
const PACE_EVERY = 255;

type DateOp = "before" | "on" | "since";

/** A parsed search key (RFC 9051 `search-key`). */
export type SearchKey =
  | { readonly kind: "all" }
  | { readonly kind: "none" }
  | { readonly kind: "flag"; readonly flag: string; readonly present: boolean }
  | { readonly kind: "size"; readonly larger: boolean; readonly n: number }
  | { readonly kind: "modseq"; readonly n: number }
  /** \\Recent in this session (RFC 3501, Section 6.4.4: RECENT, NEW, OLD). */
  | { readonly kind: "recent" }
  | { readonly kind: "date"; readonly sent: boolean; readonly op: DateOp; readonly day: number }
  | {
    readonly kind: "header";
    readonly name: string;
    readonly value: string;
    /** FROM, TO, CC and BCC match the address forms of the field (see `addressForms`). */
    readonly address?: boolean;
  }
  /** EMAILID and THREADID (RFC 8474, Section 6). */
  | { readonly kind: "objectid"; readonly field: "emailId" | "threadId"; readonly id: string }
  /** SAVEDBEFORE, SAVEDON, SAVEDSINCE (RFC 8514, Section 4.2). */
  | { readonly kind: "savedate"; readonly op: DateOp; readonly day: number }
  | { readonly kind: "savedatesupported" }
  | { readonly kind: "body"; readonly value: string }
  | { readonly kind: "text"; readonly value: string }
  | { readonly kind: "set"; readonly uid: boolean; readonly set: SequenceSet }
  | { readonly kind: "not"; readonly key: SearchKey }
  | { readonly kind: "or"; readonly a: SearchKey; readonly b: SearchKey }
  | { readonly kind: "and"; readonly keys: readonly SearchKey[] };

const FLAG_KEYS: Record<string, [string, boolean]> = {
  ANSWERED: ["\\Answered", true],
  DELETED: ["\\Deleted", true],
  DRAFT: ["\\Draft", true],
  FLAGGED: ["\\Flagged", true],
  SEEN: ["\\Seen", true],
  UNANSWERED: ["\\Answered", false],
  UNDELETED: ["\\Deleted", false],
  UNDRAFT: ["\\Draft", false],
  UNFLAGGED: ["\\Flagged", false],
  UNSEEN: ["\\Seen", false],
};

const HEADER_KEYS: Record<string, string> = {
  BCC: "bcc",
  CC: "cc",
  FROM: "from",
  SUBJECT: "subject",
  TO: "to",
};

const DATE_KEYS: Record<string, [boolean, DateOp]> = {
  BEFORE: [false, "before"],
  ON: [false, "on"],
  SINCE: [false, "since"],
  SENTBEFORE: [true, "before"],
  SENTON: [true, "on"],
  SENTSINCE: [true, "since"],
};

const SAVED_KEYS: Record<string, DateOp> = {
  SAVEDBEFORE: "before",
  SAVEDON: "on",
  SAVEDSINCE: "since",
};

/** Reads one search key. */
export function readSearchKey(r: CommandReader): SearchKey {
  if (r.peek() === 0x28) {
    r.enterGroup();
    r.expectByte(0x28, "(");
    const keys = readSearchKeys(r);
    r.expectByte(0x29, ")");
    r.leaveGroup();
    return keys.length === 1 ? keys[0]! : { kind: "and", keys };
  }
  const c = r.peek();
  if ((c >= 0x30 && c <= 0x39) || c === 0x2a || c === 0x24) {
    return { kind: "set", uid: false, set: r.sequenceSet() };
  }
  const word = r.keyword("search key");
  const flag = FLAG_KEYS[word];
  if (flag !== undefined) return { kind: "flag", flag: flag[0], present: flag[1] };
  const header = HEADER_KEYS[word];
  if (header !== undefined) {
    r.sp();
    return { kind: "header", name: header, value: r.astring(), address: header !== "subject" };
  }
  const saved = SAVED_KEYS[word];
  if (saved !== undefined) {
    r.sp();
    return { kind: "savedate", op: saved, day: r.date() };
  }
  const date = DATE_KEYS[word];
  if (date !== undefined) {
    r.sp();
    return { kind: "date", sent: date[0], op: date[1], day: r.date() };
  }
  switch (word) {
    case "ALL":
      return { kind: "all" };
    case "EMAILID":
    case "THREADID": {
      r.sp();
      const id = r.atom("objectid");
      if (!OBJECT_ID.test(id)) throw badSyntax("Invalid objectid");
      return { kind: "objectid", field: word === "EMAILID" ? "emailId" : "threadId", id };
    }
    case "SAVEDATESUPPORTED":
      return { kind: "savedatesupported" };
    case "RECENT":
      return { kind: "recent" };
    case "OLD":
      return { kind: "not", key: { kind: "recent" } };
    case "NEW":
      return {
        kind: "and",
        keys: [{ kind: "recent" }, { kind: "flag", flag: "\\Seen", present: false }],
      };
    case "KEYWORD":
    case "UNKEYWORD":
      r.sp();
      return { kind: "flag", flag: r.atom("keyword"), present: word === "KEYWORD" };
    case "LARGER":
    case "SMALLER":
      r.sp();
      return { kind: "size", larger: word === "LARGER", n: r.number64("size") };
    case "HEADER": {
      r.sp();
      const name = r.astring("header name").toLowerCase();
      r.sp();
      return { kind: "header", name, value: r.astring() };
    }
    case "BODY":
      r.sp();
      return { kind: "body", value: r.astring() };
    case "TEXT":
      r.sp();
      return { kind: "text", value: r.astring() };
    case "UID":
      r.sp();
      return { kind: "set", uid: true, set: r.sequenceSet() };
    case "MODSEQ": {
      // MODSEQ [entry-name entry-type-req] mod-sequence-valzer (RFC 7162, Section 3.1.5).
      r.sp();
      if (r.peek() === 0x22) {
        r.string();
        r.sp();
        const type = r.keyword("entry type");
        if (type !== "PRIV" && type !== "SHARED" && type !== "ALL") {
          throw badSyntax("Invalid MODSEQ entry type");
        }
        r.sp();
      }
      return { kind: "modseq", n: r.number64("mod-sequence") };
    }
    case "NOT":
      r.sp();
      r.enterGroup();
      try {
        return { kind: "not", key: readSearchKey(r) };
      } finally {
        r.leaveGroup();
      }
    case "OR": {
      r.sp();
      r.enterGroup();
      try {
        const a = readSearchKey(r);
        r.sp();
        const b = readSearchKey(r);
        return { kind: "or", a, b };
      } finally {
        r.leaveGroup();
      }
    }
    default:
      throw badSyntax(`Unknown search key ${word.slice(0, 40)}`);
  }
}

/** Reads space-separated keys up to the end of the command or a closing parenthesis. */
export function readSearchKeys(r: CommandReader): SearchKey[] {
  const keys = [readSearchKey(r)];
  while (r.trySp()) keys.push(readSearchKey(r));
  return keys;
}

type ReturnOption = "MIN" | "MAX" | "ALL" | "COUNT" | "SAVE";

interface SearchArgs {
  /** The result options asked for (RFC 4731, RFC 5182), or null without RETURN. */
  readonly returns: readonly ReturnOption[] | null;
  readonly context: ContextOptions;
  readonly key: SearchKey;
}

const RETURN_OPTIONS = new Set(["MIN", "MAX", "ALL", "COUNT", "SAVE"]);

/** The context return options of RFC 5267, Section 4, shared by SEARCH and SORT. */
export interface ContextOptions {
  /** RETURN () or RETURN (CONTEXT) alone: ALL is implied (RFC 4731, Section 3.1). */
  readonly impliesAll: boolean;
  readonly update: boolean;
  readonly partial: PartialRange | null;
}

/**
 * Reads `RETURN (...)` and the space after it, if present: the result options `allowed`, and
 * CONTEXT (a hint, RFC 5267, 4.2), UPDATE (4.3) and PARTIAL (4.4).
 */
export function readReturnOptions<T extends string>(
  r: CommandReader,
  allowed: ReadonlySet<string>,
  command: string,
): { returns: T[] | null; context: ContextOptions } {
  let update = false;
  let partial: PartialRange | null = null;
  let others = 0;
  if (r.peekKeyword() !== "RETURN") {
    return { returns: null, context: { impliesAll: false, update, partial } };
  }
  r.keyword();
  r.sp();
  const returns: T[] = [];
  r.list(() => {
    const opt = r.keyword("return option");
    if (opt === "CONTEXT") return opt;
    others++;
    if (opt === "UPDATE") update = true;
    else if (opt === "PARTIAL") {
      r.sp();
      partial = readPartialRange(r);
    } else if (allowed.has(opt)) returns.push(opt as T);
    else throw badSyntax(`Unknown ${command} return option ${opt}`);
    return opt;
  });
  r.sp();
  const context = { impliesAll: others === 0, update, partial };
  checkPartial(partial, returns.includes("ALL" as T));
  return { returns, context };
}

function readSearchArgs(r: CommandReader): SearchArgs {
  r.sp();
  const { returns, context } = readReturnOptions<ReturnOption>(r, RETURN_OPTIONS, "SEARCH");
  if (r.peekKeyword() === "CHARSET") {
    r.keyword();
    r.sp();
    readCharset(r);
    r.sp();
  }
  return { returns, context, key: readSearchProgram(r) };
}

/** Reads a charset name and refuses all but UTF-8 and US-ASCII (RFC 9051, Section 6.4.4). */
export function readCharset(r: CommandReader): void {
  const charset = r.astring("charset").toUpperCase();
  if (charset !== "UTF-8" && charset !== "US-ASCII") {
    throw new ImapError("NO", "Unsupported charset", "BADCHARSET (UTF-8 US-ASCII)");
  }
}

/** Reads the search keys that end a command (SEARCH, SORT, THREAD) as one key. */
export function readSearchProgram(r: CommandReader): SearchKey {
  const keys = readSearchKeys(r);
  r.end();
  const key: SearchKey = keys.length === 1 ? keys[0]! : { kind: "and", keys };
  if (countKeys(key) > MAX_KEYS) throw badSyntax("Search has too many keys");
  return key;
}

/** Most search keys in one SEARCH: each is evaluated against every message. */
const MAX_KEYS = 1000;

function countKeys(key: SearchKey): number {
  switch (key.kind) {
    case "not":
      return 1 + countKeys(key.key);
    case "or":
      return 1 + countKeys(key.a) + countKeys(key.b);
    case "and":
      return key.keys.reduce((n, k) => n + countKeys(k), 1);
    default:
      return 1;
  }
}

const DAY = 86_400_000;
const utf8 = new TextDecoder("utf-8");

/**
 * One message as the matcher sees it; the decoded search text (from the stored summary, or
 * parsed from the octets) and the octets are loaded only when a key needs them.
 */
interface Candidate {
  readonly meta: MessageMeta;
  /** Object ids and save date, when a key needs them. */
  readonly objects: MessageObjectInfo | null;
  readonly data: SearchData | null;
  readonly raw: Uint8Array | null;
}

function isoDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

interface Resolved {
  readonly sets: Map<SequenceSet, Set<number>>;
  /** Whether a message is \\Recent in this session. */
  readonly isRecent: (uid: number) => boolean;
  /** Folded needles of the text keys, folded once per SEARCH. */
  readonly needles: Map<SearchKey, string>;
}

function needleOf(key: SearchKey & { readonly value: string }, resolved: Resolved): string {
  let needle = resolved.needles.get(key);
  if (needle === undefined) {
    needle = foldText(key.value);
    resolved.needles.set(key, needle);
  }
  return needle;
}

function headerValues(raw: Uint8Array, name: string): string[] {
  const header = utf8.decode(raw.subarray(0, headerEnd(raw)));
  const out: string[] = [];
  const lines = header.split(/\r?\n(?![ \t])/);
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    if (line.slice(0, colon).trim().toLowerCase() !== name) continue;
    out.push(line.slice(colon + 1).replace(/\r?\n[ \t]/g, " ").trim());
  }
  return out;
}

function sentDay(raw: Uint8Array): number | null {
  const value = headerValues(raw, "date")[0];
  if (value === undefined) return null;
  const ms = Date.parse(value.replace(/\([^)]*\)/g, "").trim());
  if (Number.isNaN(ms)) return null;
  return Math.floor(ms / DAY) * DAY;
}

function compareDay(day: number, op: DateOp, target: number): boolean {
  return op === "before" ? day < target : op === "on" ? day === target : day >= target;
}

/** True when `flags` holds `flag`, compared case-insensitively (exact spelling tried first). */
function hasFlag(flags: readonly string[], flag: string): boolean {
  for (let i = 0; i < flags.length; i++) if (flags[i] === flag) return true;
  const lower = flag.toLowerCase();
  for (let i = 0; i < flags.length; i++) {
    const f = flags[i]!;
    if (f.length === flag.length && f.toLowerCase() === lower) return true;
  }
  return false;
}

function matches(key: SearchKey, c: Candidate, resolved: Resolved): boolean {
  switch (key.kind) {
    case "all":
      return true;
    case "none":
      return false;
    case "flag":
      return hasFlag(c.meta.flags, key.flag) === key.present;
    case "size":
      return key.larger ? c.meta.size > key.n : c.meta.size < key.n;
    case "modseq":
      return c.meta.modseq >= key.n;
    case "recent":
      return resolved.isRecent(c.meta.uid);
    case "objectid":
      return c.objects !== null && c.objects[key.field] === key.id;
    case "savedate": {
      // Without a recorded save date the internal date stands in (RFC 8514, Section 4.2).
      const saved = c.objects?.saveDate ?? c.meta.internalDate;
      return compareDay(Math.floor(saved / DAY) * DAY, key.op, key.day);
    }
    case "savedatesupported":
      // Every mailbox of every store keeps save dates (RFC 8514, Section 4.2).
      return true;
    case "date": {
      if (!key.sent) {
        return compareDay(Math.floor(c.meta.internalDate / DAY) * DAY, key.op, key.day);
      }
      if (c.data !== null) {
        const want = isoDay(key.day);
        const sent = c.data.sentDay;
        if (sent === null) return false;
        return key.op === "before" ? sent < want : key.op === "on" ? sent === want : sent >= want;
      }
      const day = c.raw === null ? null : sentDay(c.raw);
      return day !== null && compareDay(day, key.op, key.day);
    }
    case "header": {
      if (c.data !== null) {
        const needle = needleOf(key, resolved);
        if (c.data.mayContain?.(needle) === false) return false;
        return headerText(c.data, key).some((v) => v.includes(needle));
      }
      if (c.raw === null) return false;
      const needle = key.value.toLowerCase();
      return headerValues(c.raw, key.name).some((v) => v.toLowerCase().includes(needle));
    }
    case "body":
    case "text": {
      if (c.data !== null) {
        const needle = needleOf(key, resolved);
        if (key.kind === "body") {
          return c.data.mayContain?.(needle) !== false && c.data.body.includes(needle);
        }
        if (c.data.body.includes(needle)) return true;
      }
      if (c.raw === null) return false;
      const part = key.kind === "body" ? c.raw.subarray(headerEnd(c.raw)) : c.raw;
      return utf8.decode(part).toLowerCase().includes(key.value.toLowerCase());
    }
    case "set":
      return resolved.sets.get(key.set)?.has(c.meta.uid) ?? false;
    case "not":
      return !matches(key.key, c, resolved);
    case "or":
      return matches(key.a, c, resolved) || matches(key.b, c, resolved);
    case "and":
      return key.keys.every((k) => matches(k, c, resolved));
    default: {
      const never: never = key;
      return never;
    }
  }
}

/**
 * The folded values a header key matches: for an address key the field's address forms, as
 * stored at APPEND (search text written before they existed falls back to the raw value).
 */
function headerText(data: SearchData, key: SearchKey & { kind: "header" }): readonly string[] {
  if (key.address) {
    const forms = data.header(addressKey(key.name));
    if (forms.length > 0) return forms;
  }
  return data.header(key.name);
}

/** True when a message's flags alone decide the key (ALL, UNSEEN, KEYWORD and their NOT/OR/AND). */
function flagsDecide(key: SearchKey): boolean {
  return everyLeaf(key, (k) => k.kind === "all" || k.kind === "none" || k.kind === "flag");
}

/** True when `leaf` holds for every key under the NOT, OR and AND of `key`. */
function everyLeaf(key: SearchKey, leaf: (key: SearchKey) => boolean): boolean {
  switch (key.kind) {
    case "not":
      return everyLeaf(key.key, leaf);
    case "or":
      return everyLeaf(key.a, leaf) && everyLeaf(key.b, leaf);
    case "and":
      return key.keys.every((k) => everyLeaf(k, leaf));
    default:
      return leaf(key);
  }
}

function hasModseqKey(key: SearchKey): boolean {
  switch (key.kind) {
    case "modseq":
      return true;
    case "not":
      return hasModseqKey(key.key);
    case "or":
      return hasModseqKey(key.a) || hasModseqKey(key.b);
    case "and":
      return key.keys.some(hasModseqKey);
    default:
      return false;
  }
}

interface ContentNeeds {
  /** Decoded text (header and body keys). */
  readonly text: boolean;
  /** The raw octets (TEXT). */
  readonly raw: boolean;
  /** Object ids and save dates (EMAILID, THREADID, SAVED*). */
  readonly objects: boolean;
}

/** What a key needs beyond the metadata. */
function contentNeeds(key: SearchKey): ContentNeeds {
  switch (key.kind) {
    case "header":
    case "body":
      return { text: true, raw: false, objects: false };
    case "text":
      return { text: true, raw: true, objects: false };
    case "date":
      return { text: key.sent, raw: false, objects: false };
    case "objectid":
    case "savedate":
      return { text: false, raw: false, objects: true };
    case "not":
      return contentNeeds(key.key);
    case "or":
    case "and": {
      const keys = key.kind === "or" ? [key.a, key.b] : key.keys;
      const needs = keys.map(contentNeeds);
      return {
        text: needs.some((n) => n.text),
        raw: needs.some((n) => n.raw),
        objects: needs.some((n) => n.objects),
      };
    }
    default:
      return { text: false, raw: false, objects: false };
  }
}

/**
 * A folded substring that the stored search text of every match contains (from a header or
 * body key the whole search requires), so that the store can skip the other messages; null
 * when there is none. TEXT keys also match the raw octets, so they never qualify.
 */
function requiredNeedle(key: SearchKey): string | null {
  switch (key.kind) {
    case "header":
    case "body":
      return foldText(key.value);
    case "and": {
      let best: string | null = null;
      for (const k of key.keys) {
        const n = requiredNeedle(k);
        if (n !== null && (best === null || n.length > best.length)) best = n;
      }
      return best;
    }
    default:
      return null;
  }
}

function collectSets(key: SearchKey, out: { uid: boolean; set: SequenceSet }[]): void {
  switch (key.kind) {
    case "set":
      out.push(key);
      return;
    case "not":
      collectSets(key.key, out);
      return;
    case "or":
      collectSets(key.a, out);
      collectSets(key.b, out);
      return;
    case "and":
      for (const k of key.keys) collectSets(k, out);
      return;
    default:
      return;
  }
}

/**
 * The MODSEQ an ESEARCH answer names: the highest of the messages it returns (RFC 4731,
 * Section 3.2 with RFC 7162, Section 3.1.5), so MIN alone gives the first match's, MAX the
 * last's, MIN MAX the higher of the two, and ALL or COUNT (or SAVE) the highest of all.
 */
function returnedModseq(wanted: readonly ReturnOption[], modseqs: readonly number[]): number {
  if (wanted.some((w) => w !== "MIN" && w !== "MAX")) {
    return modseqs.reduce((m, h) => Math.max(m, h), 0);
  }
  let modseq = 0;
  if (wanted.includes("MIN")) modseq = modseqs[0]!;
  if (wanted.includes("MAX")) modseq = Math.max(modseq, modseqs[modseqs.length - 1]!);
  return modseq;
}

/** A message a search matched: its sequence number, UID and MODSEQ. */
export interface SearchHit {
  readonly seq: number;
  readonly uid: number;
  readonly modseq: number;
}

/**
 * The messages of the selected mailbox that `key` matches, in sequence order (shared by
 * SEARCH, SORT and THREAD); with `only`, among those UIDs alone. Enables CONDSTORE when the
 * key uses MODSEQ.
 */
export async function findMatches(
  ctx: CommandContext,
  key: SearchKey,
  only?: ReadonlySet<number>,
): Promise<SearchHit[]> {
  const { seqs, uids, modseqs } = await findMatchColumns(ctx, key, only);
  const hits: SearchHit[] = new Array(seqs.length);
  for (let i = 0; i < seqs.length; i++) {
    hits[i] = { seq: seqs[i]!, uid: uids[i]!, modseq: modseqs[i]! };
  }
  return hits;
}

/** Search matches as three parallel arrays of numbers (no object per match). */
export interface MatchColumns {
  readonly seqs: number[];
  readonly uids: number[];
  readonly modseqs: number[];
}

/** `findMatches`, answering in columns. */
export async function findMatchColumns(
  ctx: CommandContext,
  key: SearchKey,
  only?: ReadonlySet<number>,
): Promise<MatchColumns> {
  const { view } = selected(ctx);
  const sets: { uid: boolean; set: SequenceSet }[] = [];
  collectSets(key, sets);
  const resolved: Resolved = {
    sets: new Map(),
    needles: new Map(),
    isRecent: (uid) => view.isRecent(uid),
  };
  for (const s of sets) {
    let uids: number[];
    try {
      uids = view.resolve(s.set, s.uid, ctx.savedSearch);
    } catch {
      uids = []; // Out-of-range sequence numbers simply match nothing in SEARCH.
    }
    resolved.sets.set(s.set, new Set(uids));
  }
  const metas = only === undefined
    ? await ctx.store.listMessages(view.mailboxId)
    : await ctx.store.getMessages(view.mailboxId, [...only].sort((a, b) => a - b));
  const hits: MatchColumns = { seqs: [], uids: [], modseqs: [] };
  if (hasModseqKey(key)) await ctx.enableCondstore();
  const needs = contentNeeds(key);
  const searchData = ctx.mime.searchData;
  const required = needs.text ? requiredNeedle(key) : null;
  const uids = only === undefined
    ? view.uids
    : [...only].filter((u) => view.seqOf(u) > 0).sort((a, b) => a - b);
  const pacer = ctx.pacer();
  // Both lists are in ascending UID order: walk them together instead of mapping UIDs.
  let mi = 0;
  if (!needs.text && !needs.raw && !needs.objects) {
    // Metadata alone decides (ALL, flags, sizes, sets): one walk, one candidate reused.
    const c: { meta: MessageMeta; objects: null; data: null; raw: null } = {
      meta: metas[0]!,
      objects: null,
      data: null,
      raw: null,
    };
    // When flags alone decide, the answer of the last two flag lists is kept: stores share one
    // array per flag combination, so most messages are decided by one identity check.
    const byFlags = key.kind !== "all" && flagsDecide(key);
    let lastFlags: readonly string[] | null = null;
    let lastMatch = false;
    let prevFlags: readonly string[] | null = null;
    let prevMatch = false;
    for (let i = 0; i < uids.length; i++) {
      const uid = uids[i]!;
      while (mi < metas.length && metas[mi]!.uid < uid) mi++;
      const meta = metas[mi];
      if (meta !== undefined && meta.uid === uid) {
        let match: boolean;
        const flags = meta.flags;
        if (byFlags && flags === lastFlags) match = lastMatch;
        else if (byFlags && flags === prevFlags) match = prevMatch;
        else {
          c.meta = meta;
          match = matches(key, c, resolved);
          prevFlags = lastFlags;
          prevMatch = lastMatch;
          lastFlags = flags;
          lastMatch = match;
        }
        if (match) {
          hits.seqs.push(only === undefined ? i + 1 : view.seqOf(uid));
          hits.uids.push(uid);
          hits.modseqs.push(meta.modseq);
        }
      }
      if ((i & PACE_EVERY) === PACE_EVERY && pacer.due()) await pacer.yield();
    }
    return hits;
  }
  for (let start = 0; start < uids.length; start += SEARCH_CHUNK) {
    const chunk = uids.slice(start, start + SEARCH_CHUNK);
    // One query per chunk for the stored search text; rows stored without one (written before
    // it existed) fall back to their summary, then to the octets.
    const texts = needs.text && chunk.length > 0
      ? await ctx.store.getSearchTexts(view.mailboxId, chunk, required ?? undefined)
      : null;
    const objects = needs.objects && chunk.length > 0
      ? await ctx.store.getObjectInfo(view.mailboxId, chunk)
      : null;
    for (let i = 0; i < chunk.length; i++) {
      const uid = chunk[i]!;
      while (mi < metas.length && metas[mi]!.uid < uid) mi++;
      const meta = metas[mi];
      if (meta === undefined || meta.uid !== uid) continue;
      const seq = only === undefined ? start + i + 1 : view.seqOf(uid);
      let data: SearchData | null = null;
      let raw: Uint8Array | null = null;
      if (texts !== null) {
        const text = texts.get(uid);
        // Absent: expunged meanwhile, or its search text lacks what every match contains.
        if (text === undefined) continue;
        if (text !== null) data = SearchIndex.read(text);
        if (data === null && searchData !== undefined) {
          const summary = await ctx.store.getSummary(view.mailboxId, uid);
          if (summary !== null) data = searchData({ raw: null, summary });
        }
      }
      if (needs.raw || (needs.text && data === null)) {
        raw = await ctx.store.getRaw(view.mailboxId, uid);
        if (needs.text && data === null && raw !== null && searchData !== undefined) {
          data = searchData({ raw, summary: null });
        }
      }
      const info = objects?.get(uid) ?? null;
      if (matches(key, { meta, objects: info, data, raw }, resolved)) {
        hits.seqs.push(seq);
        hits.uids.push(uid);
        hits.modseqs.push(meta.modseq);
      }
      if ((i & PACE_EVERY) === PACE_EVERY && pacer.due()) await pacer.yield();
    }
  }
  return hits;
}

async function search(
  ctx: CommandContext,
  r: CommandReader,
  uidMode: boolean,
): Promise<Completion> {
  const args = readSearchArgs(r);
  const usesModseq = hasModseqKey(args.key);
  const hits = await findMatchColumns(ctx, args.key);
  // With a MODSEQ key the answer names the highest MODSEQ of the matches (RFC 7162, 3.1.5).
  const highest = () => hits.modseqs.reduce((m, h) => Math.max(m, h), 0);
  const numbers = uidMode ? hits.uids : hits.seqs;
  const found = numbers.length;
  const returns = args.returns;
  if (returns !== null && returns.includes("SAVE")) ctx.savedSearch = hits.uids.slice();
  const label = uidMode ? "UID SEARCH" : "SEARCH";
  if (returns === null && !ctx.rev2) {
    const w = new LineBuilder(ctx.out);
    // 100,000 numbers take a few milliseconds to write: paced like the search itself.
    const pacer = ctx.pacer();
    w.reserve(8);
    w.ascii("* SEARCH");
    for (let i = 0; i < numbers.length; i++) {
      w.reserve(1 + MAX_DIGITS);
      w.ascii(" ");
      w.number(numbers[i]!);
      if ((i & PACE_EVERY) === PACE_EVERY && pacer.due()) await pacer.yield();
    }
    const suffix = usesModseq && found > 0 ? ` (MODSEQ ${highest()})\r\n` : "\r\n";
    w.reserve(suffix.length);
    w.ascii(suffix);
    w.flush();
    return { text: `${label} completed` };
  }
  const context = args.context;
  const wanted: ReturnOption[] = returns === null || context.impliesAll ? ["ALL"] : [...returns];
  if (context.update) registerUpdate(ctx, args.key, uidMode, hits.uids.slice());
  if (wanted.length === 1 && wanted[0] === "SAVE" && !context.update && !context.partial) {
    return { text: `${label} completed` };
  }
  const parts = [`* ESEARCH (TAG "${ctx.tag}")`];
  if (uidMode) parts.push("UID");
  if (wanted.includes("MIN") && numbers.length > 0) parts.push(`MIN ${numbers[0]}`);
  if (wanted.includes("MAX") && numbers.length > 0) {
    parts.push(`MAX ${numbers[numbers.length - 1]}`);
  }
  if (wanted.includes("ALL") && numbers.length > 0) parts.push(`ALL ${formatSequenceSet(numbers)}`);
  if (context.partial !== null) parts.push(formatPartial(context.partial, numbers));
  if (wanted.includes("COUNT")) parts.push(`COUNT ${numbers.length}`);
  if (usesModseq && found > 0) parts.push(`MODSEQ ${returnedModseq(wanted, hits.modseqs)}`);
  ctx.out.line(parts.join(" "));
  return { text: `${label} completed` };
}

/**
 * Keeps the result of this SEARCH up to date (RFC 5267, Section 4.3), or says NOUPDATE when
 * the session holds too many contexts.
 */
function registerUpdate(
  ctx: CommandContext,
  key: SearchKey,
  uid: boolean,
  results: number[],
): void {
  const incremental = dependsOnMessageOnly(key);
  const added = ctx.searchUpdates.add({
    tag: ctx.tag,
    uid,
    sorted: false,
    incremental,
    compute: async (c, previous, touched) => {
      if (!incremental) return (await findMatches(c, key)).map((h) => h.uid);
      const fresh = (await findMatches(c, key, touched)).map((h) => h.uid);
      // Both lists ascend: merge them.
      const out: number[] = [];
      let j = 0;
      for (const u of previous) {
        if (touched.has(u)) continue;
        while (j < fresh.length && fresh[j]! < u) out.push(fresh[j++]!);
        out.push(u);
      }
      while (j < fresh.length) out.push(fresh[j++]!);
      return out;
    },
    results,
  });
  if (!added) ctx.out.line(`* NO [NOUPDATE "${ctx.tag}"] Too many or too large kept results`);
}

/**
 * True when whether a message matches `key` depends on that message alone, so that only the
 * messages changed since need evaluating again: not for sequence sets and `$` (numbers move
 * with expunges, `*` with appends) nor for RECENT.
 */
export function dependsOnMessageOnly(key: SearchKey): boolean {
  return everyLeaf(key, (k) => k.kind !== "set" && k.kind !== "recent");
}

export const searchCommand: CommandSpec = {
  name: "SEARCH",
  states: ["selected"],
  allowsExpunge: false,
  run: (ctx, r) => search(ctx, r, false),
};

export const uidSearchCommand: CommandSpec = {
  name: "UID SEARCH",
  states: ["selected"],
  allowsExpunge: true,
  run: (ctx, r) => search(ctx, r, true),
};
