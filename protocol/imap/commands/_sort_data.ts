/**
 * What SORT and THREAD (RFC 5256) order messages by, read from the search text stored at APPEND
 * (decoded, folded header values), so that neither re-parses a message. Messages stored without
 * search text fall back to their summary, then to their octets, as SEARCH does.
 */
import { type BaseSubject, baseSubject } from "../base_subject.ts";
import type { CommandContext } from "../context.ts";
import { addressKey, type SearchData } from "../fetch_items.ts";
import { parseDate } from "../mime/mod.ts";
import { SearchIndex } from "../search_index.ts";
import type { SearchHit } from "./search.ts";
import { selected } from "./_util.ts";

/** UIDs whose search text one store call reads. */
const CHUNK = 2000;

/** One message's sort and thread keys. Strings compare as upper-cased (RFC 4790 casemaps). */
export interface SortRecord {
  readonly seq: number;
  readonly uid: number;
  readonly size: number;
  /** INTERNALDATE in whole seconds, as IMAP shows it. */
  readonly arrival: number;
  /** Sent date (RFC 5256, Section 2.2): the Date header, else INTERNALDATE. */
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
  return s.normalize("NFKD").toUpperCase();
}

const MSG_ID = /<([^<>]+)>/g;

function messageIds(value: string | undefined): string[] {
  if (value === undefined) return [];
  return [...value.matchAll(MSG_ID)].map((m) => m[1]!.replace(/ /g, ""));
}

function displayForm(a: Address | null): string {
  if (a === null) return "";
  return casemap(a.name !== "" ? a.name : a.addrSpec);
}

/** Builds the record of one message from its decoded search data. */
export function sortRecord(hit: SearchHit, data: SearchData | null): SortRecord {
  const meta = hit.meta;
  const subject = baseSubject(data?.header("subject")[0] ?? "");
  const sent = parseDate(data?.header("date")[0] ?? null);
  const from = firstAddress(data, "from");
  const to = firstAddress(data, "to");
  const cc = firstAddress(data, "cc");
  let references = messageIds(data?.header("references")[0]);
  if (references.length === 0) references = messageIds(data?.header("in-reply-to")[0]).slice(0, 1);
  return {
    seq: hit.seq,
    uid: hit.uid,
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

/** Reads the sort records of the matched messages, in the order of `hits`. */
export async function loadSortRecords(
  ctx: CommandContext,
  hits: readonly SearchHit[],
): Promise<SortRecord[]> {
  const { view } = selected(ctx);
  const searchData = ctx.mime.searchData;
  const out: SortRecord[] = [];
  for (let start = 0; start < hits.length; start += CHUNK) {
    const chunk = hits.slice(start, start + CHUNK);
    const uids = chunk.map((h) => h.uid);
    const texts = await ctx.store.getSearchTexts(view.mailboxId, uids);
    for (const hit of chunk) {
      const text = texts.get(hit.uid);
      let data: SearchData | null = text === undefined || text === null
        ? null
        : SearchIndex.read(text);
      if (data === null && searchData !== undefined) {
        const summary = await ctx.store.getSummary(view.mailboxId, hit.uid);
        if (summary !== null) data = searchData({ raw: null, summary });
        if (data === null) {
          const raw = await ctx.store.getRaw(view.mailboxId, hit.uid);
          if (raw !== null) data = searchData({ raw, summary: null });
        }
      }
      out.push(sortRecord(hit, data));
    }
  }
  return out;
}
