/**
 * What SORT and THREAD (RFC 5256) order messages by, read from the sort text stored at APPEND
 * (`sort_text.ts`: decoded, folded header values), else from the search text, so that neither
 * re-parses a message, and kept in the
 * session's `SortKeyCache`. Messages stored without search text fall back to their summary,
 * then to their octets, as SEARCH does.
 */
import { type BaseSubject, baseSubject } from "../base_subject.ts";
import type { CommandContext } from "../context.ts";
import { addressKey, type SearchData } from "../fetch_items.ts";
import { parseDate } from "../mime/mod.ts";
import type { MessageSortKeys } from "../sort_cache.ts";
import { SearchIndex } from "../search_index.ts";
import type { MessageMeta } from "../../../mailstore/mail_store.ts";
import { findMatches, type SearchKey } from "./search.ts";
import { selected } from "./_util.ts";
import type { Pacer } from "../../event_loop.ts";

/** UIDs whose search text one store call reads. */
const CHUNK = 2000;

/** One matched message and its keys. */
export interface SortRecord {
  readonly seq: number;
  readonly uid: number;
  readonly keys: MessageSortKeys;
}

interface Address {
  readonly name: string;
  readonly addrSpec: string;
  readonly local: string;
}

/** Splits an address form of the search text (`name <local@domain>`, `local@domain`, `name`). */
function parseForm(form: string): Address {
  let name = "";
  let addrSpec = "";
  if (form.endsWith(">") && form.includes("<")) {
    const i = form.lastIndexOf("<");
    name = form.slice(0, i).trim();
    addrSpec = form.slice(i + 1, -1);
  } else if (form.endsWith(":")) {
    // A group: Dovecot, like the IMAP address list, shows its name as the mailbox.
    name = form.slice(0, -1);
    addrSpec = name;
  } else addrSpec = form;
  const at = addrSpec.lastIndexOf("@");
  return { name, addrSpec, local: at < 0 ? addrSpec : addrSpec.slice(0, at) };
}

/** The first value of a header field of a message, if any. */
type First = (name: string) => string | undefined;

/** The first address of a field (a group's name when it starts with a group). */
function firstAddress(first: First, field: string): Address | null {
  const form = first(addressKey(field));
  return form === undefined ? null : parseForm(form);
}

/**
 * The i;unicode-casemap form of a folded string (RFC 5051): compatibility decomposition, then
 * upper case for the ASCII-range order Dovecot's titlecase gives.
 */
function casemap(s: string): string {
  // NFKD leaves ASCII as it is.
  return NON_ASCII.test(s) ? s.normalize("NFKD").toUpperCase() : s.toUpperCase();
}

// deno-lint-ignore no-control-regex -- the range is the point
const NON_ASCII = /[^\x00-\x7f]/;

const MSG_ID = /<([^<>]+)>/g;

function messageIds(value: string | undefined): string[] {
  if (value === undefined) return [];
  return [...value.matchAll(MSG_ID)].map((m) => m[1]!.replace(/ /g, ""));
}

function displayForm(a: Address | null): string {
  if (a === null) return "";
  return casemap(a.name !== "" ? a.name : a.addrSpec);
}

/** SUBJECT's keys (and THREAD's base subject). */
interface SubjectKeys {
  readonly subject: BaseSubject;
  readonly subjectKey: string;
}

function subjectKeys(first: First): SubjectKeys {
  const subject = baseSubject(first("subject") ?? "");
  return { subject, subjectKey: casemap(subject.base) };
}

/** The address keys: FROM, TO, CC, DISPLAYFROM, DISPLAYTO. */
type AddressKeys = Pick<MessageSortKeys, "from" | "to" | "cc" | "displayFrom" | "displayTo">;

function addressKeys(first: First): AddressKeys {
  const from = firstAddress(first, "from");
  const to = firstAddress(first, "to");
  const cc = firstAddress(first, "cc");
  return {
    from: from?.local.toUpperCase() ?? "",
    to: to?.local.toUpperCase() ?? "",
    cc: cc?.local.toUpperCase() ?? "",
    displayFrom: displayForm(from),
    displayTo: displayForm(to),
  };
}

/** THREAD REFERENCES's keys. */
type IdKeys = Pick<MessageSortKeys, "messageId" | "references">;

function idKeys(first: First): IdKeys {
  let references = messageIds(first("references"));
  if (references.length === 0) references = messageIds(first("in-reply-to")).slice(0, 1);
  return { messageId: messageIds(first("message-id"))[0] ?? null, references };
}

/** The sent date in ms (RFC 5256, Section 2.2): the Date field, else INTERNALDATE. */
function sentDate(first: First, internalDate: number): number {
  return sentTime(first("date") ?? null) ?? Math.floor(internalDate / 1000) * 1000;
}

/** Derives the keys of one message from its metadata and decoded search data. */
export function sortKeys(
  meta: Pick<MessageMeta, "size" | "internalDate">,
  data: SearchData | null,
): MessageSortKeys {
  const first: First = (name) => data?.header(name)[0];
  return {
    size: meta.size,
    arrival: Math.floor(meta.internalDate / 1000),
    date: sentDate(first, meta.internalDate),
    ...subjectKeys(first),
    ...addressKeys(first),
    ...idKeys(first),
  };
}

const US = "\x1f";
const RS = "\x1e";

/** The first value of header field `name` in a search or sort text, as `SearchIndex.header`. */
function firstValue(text: string, name: string): string | null {
  const end = text.indexOf(RS, 2);
  let i = text.indexOf(US, 2) + 1;
  while (i > 0 && i < end) {
    const a = text.indexOf(US, i);
    if (a < 0 || a >= end) break;
    const b = text.indexOf(US, a + 1);
    if (b < 0 || b > end) break;
    if (a - i === name.length && text.startsWith(name, i)) return text.slice(a + 1, b);
    i = b + 1;
  }
  return null;
}

const MONTH = new Map(
  ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"].map((
    m,
    i,
  ) => [m, i]),
);

/** The number of `n` decimal digits at `at` in `s`; NaN where one is not a digit. */
function digits(s: string, at: number, n: number): number {
  let v = 0;
  for (let i = at; i < at + n; i++) {
    const d = s.charCodeAt(i) - 48;
    if (!(d >= 0 && d <= 9)) return NaN;
    v = v * 10 + d;
  }
  return v;
}

/**
 * The instant of a Date value in the form RFC 5322 writes, folded (lower case) and without
 * comments: `[ddd, ]d[d] mon yyyy hh:mm:ss +zzzz`; undefined for any other form.
 */
function plainDate(v: string): number | undefined {
  let i = 0;
  if (v.length > 5 && v[3] === "," && v[4] === " ") i = 5;
  const short = v.charCodeAt(i + 1) === 32; // One-digit day.
  const day = digits(v, i, short ? 1 : 2);
  i += short ? 2 : 3;
  if (v.length !== i + 23 || v[i - 1] !== " " || v[i + 3] !== " " || v[i + 8] !== " ") {
    return undefined;
  }
  const month = MONTH.get(v.slice(i, i + 3));
  const year = digits(v, i + 4, 4);
  const h = digits(v, i + 9, 2);
  const mi = digits(v, i + 12, 2);
  const s = digits(v, i + 15, 2);
  const sign = v[i + 18];
  const zone = digits(v, i + 19, 4);
  if (
    month === undefined || v[i + 11] !== ":" || v[i + 14] !== ":" || v[i + 17] !== " " ||
    (sign !== "+" && sign !== "-") || Number.isNaN(day + year + h + mi + s + zone) ||
    day < 1 || day > 31 || h > 23 || mi > 59 || s > 60
  ) return undefined;
  const offset = (sign === "-" ? -1 : 1) * (Math.floor(zone / 100) * 60 + zone % 100);
  return Date.UTC(year, month, day, h, mi, s) - offset * 60_000;
}

/**
 * `parseDate(value)?.time` (the sent date of SORT), reading the plain form without the
 * comment strip, regular expression and calendar-day string `parseDate` builds for SEARCH;
 * any other form goes to `parseDate` itself.
 */
export function sentTime(value: string | null): number | undefined {
  if (value === null) return undefined;
  return plainDate(value) ?? parseDate(value)?.time;
}

/**
 * The keys of a message with a stored sort text, derived per group of fields when first asked
 * for: DATE, ARRIVAL and SIZE (the common webmail sorts) read the Date field alone, SUBJECT the
 * Subject field alone, and so on; the text goes once every group is derived. Each group is
 * derived as `sortKeys` derives it.
 */
class LazySortKeys implements MessageSortKeys {
  readonly size: number;
  readonly arrival: number;
  readonly #internalDate: number;
  #text: string | null;
  #date: number | undefined;
  #subject: SubjectKeys | undefined;
  #address: AddressKeys | undefined;
  #ids: IdKeys | undefined;
  /** Groups not derived yet. */
  #left = 4;

  constructor(meta: Pick<MessageMeta, "size" | "internalDate">, text: string) {
    this.size = meta.size;
    this.arrival = Math.floor(meta.internalDate / 1000);
    this.#internalDate = meta.internalDate;
    this.#text = text;
  }

  /** The accessor of the text's fields for one group; drops the text after the last. */
  #take(): First {
    const text = this.#text!;
    if (--this.#left === 0) this.#text = null;
    return (name) => firstValue(text, name) ?? undefined;
  }

  get date(): number {
    return this.#date ??= sentDate(this.#take(), this.#internalDate);
  }
  get subject(): BaseSubject {
    return (this.#subject ??= subjectKeys(this.#take())).subject;
  }
  get subjectKey(): string {
    return (this.#subject ??= subjectKeys(this.#take())).subjectKey;
  }
  get from(): string {
    return (this.#address ??= addressKeys(this.#take())).from;
  }
  get to(): string {
    return (this.#address ??= addressKeys(this.#take())).to;
  }
  get cc(): string {
    return (this.#address ??= addressKeys(this.#take())).cc;
  }
  get displayFrom(): string {
    return (this.#address ??= addressKeys(this.#take())).displayFrom;
  }
  get displayTo(): string {
    return (this.#address ??= addressKeys(this.#take())).displayTo;
  }
  get messageId(): string | null {
    return (this.#ids ??= idKeys(this.#take())).messageId;
  }
  get references(): readonly string[] {
    return (this.#ids ??= idKeys(this.#take())).references;
  }
}

/**
 * Reads `fields` of every keys object once, consulting `pacer` every 64, so that deriving them
 * (a `LazySortKeys` derives a group of fields when first asked) never runs long unpaced. Loops
 * after it read the fields as plain values.
 */
export async function deriveKeys(
  keys: Iterable<MessageSortKeys>,
  fields: readonly (keyof MessageSortKeys)[],
  pacer: Pacer,
): Promise<void> {
  let i = 0;
  for (const k of keys) {
    for (const f of fields) void k[f];
    if ((++i & 63) === 0 && pacer.due()) await pacer.yield();
  }
}

/** Keys of a message expunged before its keys were read: it sorts first, then goes away. */
const NO_KEYS = sortKeys({ internalDate: 0, size: 0 }, null);

/** False for a record whose message went away before its keys were read. */
export function hasKeys(record: SortRecord): boolean {
  return record.keys !== NO_KEYS;
}

/** What the keys of a chunk of messages are derived from: size, INTERNALDATE and text. */
interface ChunkRows {
  readonly metas: readonly Pick<MessageMeta, "uid" | "size" | "internalDate">[];
  /**
   * By index in `metas`: sort text, else search text, else null; undefined when expunged
   * meanwhile.
   */
  readonly texts: readonly (string | null | undefined)[];
  /** By index in `metas`: 1 where the text is a sort text. */
  readonly sortTexts: Uint8Array;
}

/**
 * The sort texts of `uids` with their size and date where the store keeps them (a few hundred
 * bytes each, one query), and the search texts of the others.
 */
async function readRows(
  ctx: CommandContext,
  mailboxId: number,
  uids: readonly number[],
): Promise<ChunkRows> {
  const rows = await ctx.store.getSortTexts?.(mailboxId, uids);
  if (rows === undefined) {
    const [metas, found] = await Promise.all([
      ctx.store.getMessages(mailboxId, uids),
      ctx.store.getSearchTexts(mailboxId, uids),
    ]);
    const texts = metas.map((m) => found.get(m.uid));
    return { metas, texts, sortTexts: new Uint8Array(metas.length) };
  }
  const texts: (string | null | undefined)[] = new Array(rows.length);
  const sortTexts = new Uint8Array(rows.length);
  const without: number[] = [];
  for (let i = 0; i < rows.length; i++) {
    const text = rows[i]!.text;
    texts[i] = text;
    if (text === null) without.push(rows[i]!.uid);
    else sortTexts[i] = 1;
  }
  if (without.length > 0) {
    const found = await ctx.store.getSearchTexts(mailboxId, without);
    for (let i = 0; i < rows.length; i++) {
      if (sortTexts[i] === 0) texts[i] = found.get(rows[i]!.uid);
    }
  }
  return { metas: rows, texts, sortTexts };
}

/** True for a text `SearchIndex.read` reads (checked without reading it). */
function isIndexText(text: string): boolean {
  if (text.length < 3 || text[0] !== "1" || text[1] !== US) return false;
  const dayEnd = text.indexOf(US, 2);
  const rs = text.indexOf(RS, 2);
  return dayEnd >= 0 && rs >= 0 && dayEnd <= rs;
}

/**
 * The sort records of the messages `key` matches, in sequence order. For ALL, the common case
 * (webmail sorts whole mailboxes), cached keys need no store access at all.
 */
export async function loadSortRecords(
  ctx: CommandContext,
  key: SearchKey,
  matched?: readonly { readonly seq: number; readonly uid: number }[],
): Promise<SortRecord[]> {
  const { view } = selected(ctx);
  const all = matched === undefined && key.kind === "all" ? view.uids : null;
  const hits: readonly { readonly seq: number; readonly uid: number }[] = all !== null
    ? []
    : matched ?? await findMatches(ctx, key);
  const cache = ctx.sortKeys.mailbox(view.mailboxId, view.uidValidity, view.uids.length);
  const missing = all !== null
    ? all.filter((uid) => !cache.has(uid))
    : hits.flatMap((h) => cache.has(h.uid) ? [] : [h.uid]);
  const searchData = ctx.mime.searchData;
  const pacer = ctx.pacer();
  for (let start = 0; start < missing.length; start += CHUNK) {
    const uids = missing.slice(start, start + CHUNK);
    const { metas, texts, sortTexts } = await readRows(ctx, view.mailboxId, uids);
    for (let i = 0; i < metas.length; i++) {
      if ((i & 63) === 63 && pacer.due()) await pacer.yield();
      const meta = metas[i]!;
      const text = texts[i];
      if (text === undefined) continue; // Expunged meanwhile.
      if (sortTexts[i] === 1 && isIndexText(text!)) {
        cache.set(meta.uid, new LazySortKeys(meta, text!));
        continue;
      }
      let data: SearchData | null = text === null ? null : SearchIndex.read(text);
      if (data === null && searchData !== undefined) {
        const summary = await ctx.store.getSummary(view.mailboxId, meta.uid);
        if (summary !== null) data = searchData({ raw: null, summary });
        if (data === null) {
          const raw = await ctx.store.getRaw(view.mailboxId, meta.uid);
          if (raw !== null) data = searchData({ raw, summary: null });
        }
      }
      cache.set(meta.uid, sortKeys(meta, data));
    }
    ctx.sortKeys.added(metas.length);
  }
  if (all !== null) {
    return all.map((uid, i) => ({ seq: i + 1, uid, keys: cache.get(uid) ?? NO_KEYS }));
  }
  return hits.map((h) => ({ seq: h.seq, uid: h.uid, keys: cache.get(h.uid) ?? NO_KEYS }));
}
