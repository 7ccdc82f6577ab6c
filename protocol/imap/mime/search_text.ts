/**
 * Text for SEARCH (RFC 9051, Section 6.4.4): decoded, folded header values and body text, and
 * the sent date of the SENT* keys. It is stored once per message, in the store's search text
 * (protocol/imap/search_index.ts); the summary (summary.ts) does not repeat it.
 */

import { decodeTransfer } from "./decode.ts";
import {
  type Address,
  decodeCharset,
  decodeEncodedWords,
  type Mailbox,
  MISSING_DOMAIN,
  MISSING_MAILBOX,
  parseAddressList,
} from "./header.ts";
import { headerValue, type MimePart } from "./parse.ts";

/** Cap on the decoded body text kept for search, in UTF-16 code units. */
export const MAX_SEARCH_TEXT = 256 * 1024;

/** Decoded, case-folded text of a message for substring search. */
export interface SearchText {
  /** Top-level header fields by lower-cased name; values RFC 2047-decoded and folded. */
  readonly headers: Map<string, string[]>;
  /** Decoded text of the text/* parts (nested messages included), folded. */
  readonly body: string;
}

/**
 * Folds text for case-insensitive substring matching: Unicode NFC, lower case, and runs of
 * whitespace collapsed to one space.
 */
export function foldText(s: string): string {
  return s.normalize("NFC").toLowerCase().replace(/\s+/g, " ");
}

/** The header fields whose SEARCH keys match address forms (RFC 9051, Section 6.4.4). */
const ADDRESS_FIELDS: ReadonlySet<string> = new Set(["from", "to", "cc", "bcc"]);

/**
 * Key under which the address forms of an address field are kept, next to its raw value (the
 * `addressKey` of protocol/imap/fetch_items.ts). Field names cannot contain ":" (RFC 5322,
 * Section 3.6.8), so it never clashes with one.
 */
function addressKey(field: string): string {
  return "addr:" + field;
}

/** `Name <local@domain>`, `local@domain` or `Name`, with encoded words decoded. */
function mailboxForm(m: Mailbox): string {
  const local = m.local === MISSING_MAILBOX ? "" : m.local;
  const addr = local === "" ? "" : m.domain === MISSING_DOMAIN ? local : `${local}@${m.domain}`;
  const name = m.name === null ? "" : decodeEncodedWords(m.name);
  if (name === "") return addr;
  return addr === "" ? name : `${name} <${addr}>`;
}

/**
 * The normalised forms of an address list that FROM, TO, CC and BCC match, as Dovecot does:
 * each mailbox as `Display Name <local@domain>` (quotes, comments and folding removed, encoded
 * words decoded) and each group as `name:` followed by its members.
 */
export function addressForms(value: string): string[] {
  const out: string[] = [];
  const add = (a: Address) => {
    if (a.kind === "mailbox") {
      const form = mailboxForm(a);
      if (form !== "") out.push(foldText(form));
      return;
    }
    out.push(foldText(decodeEncodedWords(a.name) + ":"));
    for (const m of a.members) add(m);
  };
  for (const a of parseAddressList(value)) add(a);
  return out;
}

/** Builds the search text of a parsed message. */
export function searchText(raw: Uint8Array, root: MimePart): SearchText {
  const headers = new Map<string, string[]>();
  for (const f of root.headers) {
    const list = headers.get(f.key);
    const v = foldText(decodeEncodedWords(f.value));
    if (list === undefined) headers.set(f.key, [v]);
    else list.push(v);
    if (ADDRESS_FIELDS.has(f.key)) {
      const key = addressKey(f.key);
      headers.set(key, [...(headers.get(key) ?? []), ...addressForms(f.value)]);
    }
  }
  const chunks: string[] = [];
  let total = 0;
  const visit = (part: MimePart, depth: number): void => {
    if (total >= MAX_SEARCH_TEXT || depth > 64) return;
    if (part.type === "multipart") {
      for (const c of part.children) visit(c, depth + 1);
      return;
    }
    if (part.message !== null) {
      const m = part.message;
      for (const key of ["subject", "from", "to", "cc"]) {
        const v = headerValue(m, key);
        if (v !== null) push(decodeEncodedWords(v));
      }
      visit(m, depth + 1);
      return;
    }
    if (part.type !== "text") return;
    const decoded = decodeTransfer(raw.subarray(part.bodyStart, part.bodyEnd), part.encoding);
    if (!decoded.ok) return;
    const bytes = decoded.bytes.subarray(0, Math.min(decoded.bytes.length, MAX_SEARCH_TEXT * 4));
    const charset = part.params.find((p) => p.name === "charset")?.value ?? "utf-8";
    let text = decodeCharset(bytes, charset);
    if (part.subtype === "html") text = htmlToText(text);
    push(text);
  };
  const push = (text: string): void => {
    const room = MAX_SEARCH_TEXT - total;
    if (room <= 0) return;
    const folded = foldText(text).slice(0, room);
    chunks.push(folded);
    total += folded.length + 1;
  };
  visit(root, 0);
  return { headers, body: chunks.join("\n") };
}

/** Strips tags, comments, scripts and styles, and decodes common entities. */
export function htmlToText(html: string): string {
  return html
    .replace(/<!--[\s\S]*?-->/g, " ")
    .replace(/<(script|style)\b[\s\S]*?<\/\1\s*>/gi, " ")
    .replace(/<[^>]*>/g, " ")
    .replace(/&nbsp;/gi, " ")
    .replace(/&lt;/gi, "<")
    .replace(/&gt;/gi, ">")
    .replace(/&quot;/gi, '"')
    .replace(/&#(\d{1,7});/g, (_, d: string) => safeCodePoint(Number(d)))
    .replace(/&#x([0-9a-f]{1,6});/gi, (_, h: string) => safeCodePoint(parseInt(h, 16)))
    .replace(/&amp;/gi, "&");
}

function safeCodePoint(n: number): string {
  return n > 0 && n <= 0x10ffff ? String.fromCodePoint(n) : " ";
}

const MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const ZONES: Record<string, number> = {
  ut: 0,
  utc: 0,
  gmt: 0,
  z: 0,
  edt: -240,
  est: -300,
  cdt: -300,
  cst: -360,
  mdt: -360,
  mst: -420,
  pdt: -420,
  pst: -480,
};

/** A Date header (RFC 5322, Section 3.3, with obsolete forms) read for SENT* searches. */
export interface SentDate {
  /** The instant in milliseconds since the epoch. */
  readonly time: number;
  /** The calendar day as written, disregarding time and zone (`YYYY-MM-DD`). */
  readonly day: string;
}

/** Parses a Date header value; null when it cannot be read. */
export function parseDate(value: string | null): SentDate | null {
  if (value === null) return null;
  const m =
    /(\d{1,2})\s+([a-z]{3})[a-z]*\s+(\d{2,4})\s+(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([+-]\d{4}|[a-z]{1,5})?/i
      .exec(value.replace(/\([^()]*\)/g, " "));
  if (m === null) return null;
  const month = MONTHS.indexOf(m[2]!.toLowerCase());
  if (month < 0) return null;
  let year = Number(m[3]);
  if (m[3]!.length <= 2) year += year < 50 ? 2000 : 1900;
  else if (m[3]!.length === 3) year += 1900;
  const day = Number(m[1]);
  const [h, mi, s] = [Number(m[4]), Number(m[5]), Number(m[6] ?? "0")];
  if (day < 1 || day > 31 || h > 23 || mi > 59 || s > 60) return null;
  let offset = 0;
  const zone = m[7];
  if (zone !== undefined) {
    if (/^[+-]\d{4}$/.test(zone)) {
      const sign = zone[0] === "-" ? -1 : 1;
      offset = sign * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(3, 5)));
    } else offset = ZONES[zone.toLowerCase()] ?? 0;
  }
  const time = Date.UTC(year, month, day, h, mi, s) - offset * 60_000;
  const pad = (n: number, w: number): string => String(n).padStart(w, "0");
  return { time, day: `${pad(year, 4)}-${pad(month + 1, 2)}-${pad(day, 2)}` };
}
