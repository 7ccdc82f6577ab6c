/**
 * What SORT and THREAD (RFC 5256) order messages by, read from the sort text stored at APPEND
 * (`sort_text.ts`: decoded, folded header values), else from the search text, so that neither
 * re-parses a message, and kept in the
 * session's `SortKeyCache`. Messages stored without search text fall back to their summary,
 * then to their octets, as SEARCH does.
 */
import { baseSubject } from "../base_subject.ts";
import type { CommandContext } from "../context.ts";
import { addressKey, type SearchData } from "../fetch_items.ts";
import { parseDate } from "../mime/mod.ts";
import type { MessageSortKeys } from "../sort_cache.ts";
import { SearchIndex } from "../search_index.ts";
import type { MessageMeta } from "../../../mailstore/mail_store.ts";
import { findMatches, type SearchKey } from "./search.ts";
import { selected } from "./_util.ts";

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

/** The first address of a field (a group's name when it starts with a group). */
function firstAddress(data: SearchData | null, field: string): Address | null {
  const form = data?.header(addressKey(field))[0];
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

/** Derives the keys of one message from its metadata and decoded search data. */
export function sortKeys(
  meta: Pick<MessageMeta, "size" | "internalDate">,
  data: SearchData | null,
): MessageSortKeys {
  const subject = baseSubject(data?.header("subject")[0] ?? "");
  const sent = parseDate(data?.header("date")[0] ?? null);
  const from = firstAddress(data, "from");
  const to = firstAddress(data, "to");
  const cc = firstAddress(data, "cc");
  let references = messageIds(data?.header("references")[0]);
  if (references.length === 0) references = messageIds(data?.header("in-reply-to")[0]).slice(0, 1);
  return {
    size: meta.size,
    arrival: Math.floor(meta.internalDate / 1000),
    date: sent?.time ?? Math.floor(meta.internalDate / 1000) * 1000,
    subject,
    subjectKey: casemap(subject.base),
    from: from?.local.toUpperCase() ?? "",
    to: to?.local.toUpperCase() ?? "",
    cc: cc?.local.toUpperCase() ?? "",
    displayFrom: displayForm(from),
    displayTo: displayForm(to),
    messageId: messageIds(data?.header("message-id")[0])[0] ?? null,
    references,
  };
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
  /** Sort text, else search text, else null; absent when expunged meanwhile. */
  readonly texts: Map<number, string | null>;
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
    const [metas, texts] = await Promise.all([
      ctx.store.getMessages(mailboxId, uids),
      ctx.store.getSearchTexts(mailboxId, uids),
    ]);
    return { metas, texts };
  }
  const texts = new Map(rows.map((r) => [r.uid, r.text]));
  const without = rows.flatMap((r) => r.text === null ? [r.uid] : []);
  if (without.length > 0) {
    const found = await ctx.store.getSearchTexts(mailboxId, without);
    for (const uid of without) {
      const text = found.get(uid);
      if (text === undefined) texts.delete(uid);
      else texts.set(uid, text);
    }
  }
  return { metas: rows, texts };
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
    const { metas, texts } = await readRows(ctx, view.mailboxId, uids);
    for (const [i, meta] of metas.entries()) {
      if ((i & 63) === 63 && pacer.due()) await pacer.yield();
      const text = texts.get(meta.uid);
      if (text === undefined) continue; // Expunged meanwhile.
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
