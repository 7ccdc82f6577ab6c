/**
 * FETCH data items (RFC 9051, Section 6.4.5): parsing the item list and rendering one
 * message's response. Top-level sections (HEADER, HEADER.FIELDS, HEADER.FIELDS.NOT, TEXT and
 * the whole message) are cut here; ENVELOPE, BODYSTRUCTURE, numeric sections and BINARY come
 * from an injected `MimeSupport`, the seam for `protocol/imap/mime/`.
 */
import { badSyntax, ImapError } from "./errors.ts";
import type { CommandReader } from "./parser.ts";
import {
  flagList,
  formatDateTime,
  NUL_MAP_PIECE,
  NulMappedLiteral,
  type StreamedLiteral,
  type Value,
  withoutNul,
} from "./response.ts";
import { nstring } from "./mime/imap_string.ts";
import type { MessageMeta, MessageObjectInfo } from "../../mailstore/mail_store.ts";

/** The text part of a section specification (RFC 9051 `section-text`). */
export type SectionText = "HEADER" | "HEADER.FIELDS" | "HEADER.FIELDS.NOT" | "TEXT" | "MIME";

/** A parsed `section-spec`: a part path (empty for the top level) and a text specifier. */
export interface SectionSpec {
  readonly path: readonly number[];
  readonly text: SectionText | null;
  /** Header field names for HEADER.FIELDS and HEADER.FIELDS.NOT, as the client gave them. */
  readonly fields: readonly string[];
}

export interface Partial {
  readonly start: number;
  readonly count: number;
}

/** One requested FETCH item. */
export type FetchItem =
  | { readonly kind: "UID" }
  | { readonly kind: "FLAGS" }
  | { readonly kind: "INTERNALDATE" }
  | { readonly kind: "RFC822.SIZE" }
  /** The message's MODSEQ (RFC 7162, Section 3.1.4). */
  | { readonly kind: "MODSEQ" }
  /** Object ids (RFC 8474, Section 5.3) and the save date (RFC 8514, Section 4.1). */
  | { readonly kind: "EMAILID" }
  | { readonly kind: "THREADID" }
  | { readonly kind: "SAVEDATE" }
  /** PREVIEW (RFC 8970, Section 3); with LAZY, NIL when not computed yet. */
  | { readonly kind: "PREVIEW"; readonly lazy: boolean }
  | { readonly kind: "ENVELOPE" }
  | { readonly kind: "BODYSTRUCTURE" }
  /** `BODY` without a section: the non-extensible BODYSTRUCTURE. */
  | { readonly kind: "BODY" }
  | { readonly kind: "RFC822" }
  | { readonly kind: "RFC822.HEADER" }
  | { readonly kind: "RFC822.TEXT" }
  | {
    readonly kind: "BODY[]";
    readonly peek: boolean;
    readonly section: SectionSpec;
    /** The section as echoed in the response, e.g. `HEADER.FIELDS (From To)`. */
    readonly label: string;
    readonly partial: Partial | null;
  }
  | {
    readonly kind: "BINARY[]";
    readonly peek: boolean;
    readonly path: readonly number[];
    readonly partial: Partial | null;
  }
  | { readonly kind: "BINARY.SIZE"; readonly path: readonly number[] };

/** Decoded content of a BINARY section, or the failure to decode it (RFC 3516). */
export type BinaryResult = { readonly ok: true; readonly bytes: Uint8Array } | {
  readonly ok: false;
};

/** A stored message as the MIME support sees it: its octets and/or its append-time summary. */
export interface MessageData {
  /** The raw message; null when it was not loaded (a summary is enough for the item). */
  readonly raw: Uint8Array | null;
  /** `AppendInput.summary` as stored, or null. */
  readonly summary: string | null;
}

/**
 * The `SearchData.header` key of the address forms of an address field (`from`, `to`, `cc`,
 * `bcc`): each mailbox as `display name <local@domain>`, decoded and folded, which FROM, TO, CC
 * and BCC match. Field names cannot contain ":" (RFC 5322, Section 3.6.8).
 */
export function addressKey(field: string): string {
  return "addr:" + field;
}

/** Decoded text of a message for SEARCH: header values and body, already case-folded. */
export interface SearchData {
  /** Folded values of the top-level header fields, by lower-cased name. */
  header(name: string): readonly string[];
  /** Folded text of the body's text parts. */
  readonly body: string;
  /** The Date header's calendar day as written, `YYYY-MM-DD`, or null. */
  readonly sentDay: string | null;
  /** Optional quick test: false only when no header value and no body text contain `folded`. */
  mayContain?(folded: string): boolean;
}

/**
 * MIME-aware FETCH and SEARCH support (ENVELOPE, BODYSTRUCTURE, numeric sections, BINARY,
 * decoded search text) and the append-time summary; the seam for `protocol/imap/mime/`.
 * Structure items work from the summary when one is stored and fall back to parsing `raw`;
 * sections and BINARY always get `raw`. A missing function makes its items unsupported (BAD).
 */
export interface MimeSupport {
  /** Derived data stored with a message at APPEND (`AppendInput.summary`). */
  summarize?(raw: Uint8Array): string;
  /** The ENVELOPE value in IMAP syntax (RFC 9051, Section 7.5.2); null if it cannot tell. */
  envelope?(m: MessageData): string | null;
  /** BODYSTRUCTURE (`extensible`) or BODY, in IMAP syntax; null if it cannot tell. */
  bodyStructure?(m: MessageData, extensible: boolean): string | null;
  /** Any section with a non-empty part path; null when the part does not exist. */
  section?(m: MessageData, spec: SectionSpec): Uint8Array | null;
  /** BINARY[path]; null when the part does not exist. */
  binary?(m: MessageData, path: readonly number[]): BinaryResult | null;
  /** Decoded search text; null when it cannot be built. */
  searchData?(m: MessageData): SearchData | null;
  /**
   * The PREVIEW text (RFC 8970), "" for a message without text; null when neither the summary
   * holds it nor the octets are at hand.
   */
  preview?(m: MessageData): string | null;
  /**
   * The compact search text stored at APPEND (`AppendInput.searchText`, see
   * `search_index.ts`); null when it cannot be built.
   */
  searchIndex?(m: MessageData): string | null;
}

const MACROS: Record<string, readonly FetchItem[]> = {
  ALL: [{ kind: "FLAGS" }, { kind: "INTERNALDATE" }, { kind: "RFC822.SIZE" }, {
    kind: "ENVELOPE",
  }],
  FAST: [{ kind: "FLAGS" }, { kind: "INTERNALDATE" }, { kind: "RFC822.SIZE" }],
  FULL: [{ kind: "FLAGS" }, { kind: "INTERNALDATE" }, { kind: "RFC822.SIZE" }, {
    kind: "ENVELOPE",
  }, { kind: "BODY" }],
};

const SIMPLE = new Set([
  "UID",
  "FLAGS",
  "INTERNALDATE",
  "RFC822.SIZE",
  "ENVELOPE",
  "BODYSTRUCTURE",
  "RFC822",
  "RFC822.HEADER",
  "RFC822.TEXT",
  "MODSEQ",
  "EMAILID",
  "THREADID",
  "SAVEDATE",
]);

function isNameChar(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) ||
    c === 0x2e;
}

/** Parses the FETCH item list: a macro, one item, or a parenthesised list. */
export function readFetchItems(r: CommandReader): FetchItem[] {
  if (r.peek() === 0x28) return r.list(() => readFetchItem(r), false);
  const macro = MACROS[r.peekKeyword()];
  if (macro !== undefined) {
    r.keyword();
    return [...macro];
  }
  return [readFetchItem(r)];
}

function readFetchItem(r: CommandReader): FetchItem {
  const name = r.chars(isNameChar).toUpperCase();
  if (name === "") throw badSyntax("Expected FETCH item");
  if (SIMPLE.has(name)) return { kind: name } as FetchItem;
  if (name === "PREVIEW") return { kind: "PREVIEW", lazy: readPreviewModifiers(r) };
  if (name === "BODY" || name === "BODY.PEEK") {
    if (r.peek() !== 0x5b) {
      if (name === "BODY.PEEK") throw badSyntax("BODY.PEEK needs a section");
      return { kind: "BODY" };
    }
    const { section, label } = readSection(r);
    return { kind: "BODY[]", peek: name === "BODY.PEEK", section, label, partial: readPartial(r) };
  }
  if (name === "BINARY" || name === "BINARY.PEEK" || name === "BINARY.SIZE") {
    r.expectByte(0x5b, "[");
    const path = readPath(r);
    r.expectByte(0x5d, "]");
    if (name === "BINARY.SIZE") return { kind: "BINARY.SIZE", path };
    return { kind: "BINARY[]", peek: name === "BINARY.PEEK", path, partial: readPartial(r) };
  }
  throw badSyntax(`Unknown FETCH item ${name.slice(0, 40)}`);
}

/** Reads ` (LAZY)` after PREVIEW, if present (RFC 8970, Section 6); true with LAZY. */
function readPreviewModifiers(r: CommandReader): boolean {
  if (r.peek() !== 0x20 || r.peekAhead(1) !== 0x28) return false;
  r.sp();
  let lazy = false;
  r.list(() => {
    const mod = r.keyword("PREVIEW modifier");
    if (mod !== "LAZY") throw badSyntax(`Unknown PREVIEW modifier ${mod.slice(0, 40)}`);
    lazy = true;
    return mod;
  }, false);
  return lazy;
}

function readPath(r: CommandReader): number[] {
  const path: number[] = [];
  while (r.peek() >= 0x31 && r.peek() <= 0x39) {
    if (path.length >= 100) throw badSyntax("Section path too deep");
    path.push(r.nzNumber("part number"));
    if (!r.tryByte(0x2e)) break;
  }
  return path;
}

/** Reads `[section-spec]` (RFC 9051 `section`). */
export function readSection(r: CommandReader): { section: SectionSpec; label: string } {
  r.expectByte(0x5b, "[");
  const path: number[] = [];
  let text: SectionText | null = null;
  let fields: string[] = [];
  for (;;) {
    const c = r.peek();
    if (c >= 0x31 && c <= 0x39) {
      if (path.length >= 100) throw badSyntax("Section path too deep");
      path.push(r.nzNumber("part number"));
      if (r.tryByte(0x2e)) continue;
      break;
    }
    if (c === 0x5d) {
      if (path.length > 0 && text === null) break;
      break;
    }
    const word = r.chars(isNameChar).toUpperCase();
    if (word === "HEADER" || word === "TEXT" || (word === "MIME" && path.length > 0)) {
      text = word;
    } else if (word === "HEADER.FIELDS" || word === "HEADER.FIELDS.NOT") {
      text = word;
      r.sp();
      fields = r.list(() => r.astring("header field name"), false);
    } else {
      throw badSyntax("Invalid section");
    }
    break;
  }
  r.expectByte(0x5d, "]");
  const parts: string[] = [];
  if (path.length > 0) parts.push(path.join("."));
  if (text !== null) parts.push(text);
  let label = parts.join(".");
  if (fields.length > 0) label += ` (${fields.map(fieldLabel).join(" ")})`;
  return { section: { path, text, fields }, label };
}

function fieldLabel(name: string): string {
  return /^[\x21-\x7e]+$/.test(name) && !/[()"\\{%*\]]/.test(name) ? name : JSON.stringify(name);
}

function readPartial(r: CommandReader): Partial | null {
  if (!r.tryByte(0x3c /* < */)) return null;
  const start = r.number("partial offset");
  r.expectByte(0x2e, ".");
  const count = r.nzNumber("partial length");
  r.expectByte(0x3e, ">");
  return { start, count };
}

/** True when the items need the message's octets (structure items can use the summary). */
export function needsRaw(items: readonly FetchItem[]): boolean {
  return items.some((i) =>
    !(i.kind === "UID" || i.kind === "FLAGS" || i.kind === "INTERNALDATE" ||
      i.kind === "RFC822.SIZE" || i.kind === "MODSEQ" || needsObjectInfo([i]) ||
      needsStructure([i]))
  );
}

/** True for an item that sends the whole message: RFC822, or BODY[] without section or partial. */
export function isWholeBody(item: FetchItem): boolean {
  return item.kind === "RFC822" ||
    (item.kind === "BODY[]" && item.section.path.length === 0 && item.section.text === null &&
      item.partial === null);
}

/**
 * True when exactly one item reads the message's octets and it sends them whole: the octets
 * can then be streamed from the store (`MailStore.openRaw`) instead of read in one piece first.
 */
export function streamsWholeBody(items: readonly FetchItem[]): boolean {
  let whole = 0;
  for (const item of items) {
    if (isWholeBody(item)) whole++;
    else if (needsRaw([item]) || needsStructure([item])) return false;
  }
  return whole === 1;
}

/** True when the items need the store's `getObjectInfo` (EMAILID, THREADID, SAVEDATE). */
export function needsObjectInfo(items: readonly FetchItem[]): boolean {
  return items.some((i) => i.kind === "EMAILID" || i.kind === "THREADID" || i.kind === "SAVEDATE");
}

/** True when the items need the summary (ENVELOPE, BODY, BODYSTRUCTURE, PREVIEW). */
export function needsStructure(items: readonly FetchItem[]): boolean {
  return items.some((i) =>
    i.kind === "ENVELOPE" || i.kind === "BODY" || i.kind === "BODYSTRUCTURE" ||
    i.kind === "PREVIEW"
  );
}

/** True when an item reads the body without PEEK, which sets \Seen (RFC 9051, 6.4.5). */
export function setsSeen(items: readonly FetchItem[]): boolean {
  return items.some((i) =>
    i.kind === "RFC822" || i.kind === "RFC822.TEXT" ||
    ((i.kind === "BODY[]" || i.kind === "BINARY[]") && !i.peek)
  );
}

/** Fails early for items the configured MIME support cannot produce. */
export function checkSupported(items: readonly FetchItem[], mime: MimeSupport): void {
  for (const i of items) {
    const missing = (i.kind === "ENVELOPE" && !mime.envelope) ||
      ((i.kind === "BODYSTRUCTURE" || i.kind === "BODY") && !mime.bodyStructure) ||
      (i.kind === "BODY[]" && i.section.path.length > 0 && !mime.section) ||
      ((i.kind === "BINARY[]" || i.kind === "BINARY.SIZE") && !mime.binary) ||
      (i.kind === "PREVIEW" && !mime.preview);
    if (missing) throw new ImapError("BAD", `FETCH ${i.kind} is not supported`);
  }
}

/** Offset just past the header block and its blank line (RFC 5322, Section 2.1). */
export function headerEnd(raw: Uint8Array): number {
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] !== 0x0a) continue;
    if (raw[i + 1] === 0x0a) return i + 2;
    if (raw[i + 1] === 0x0d && raw[i + 2] === 0x0a) return i + 3;
    if (i === 0) return 1;
  }
  if (raw.length >= 2 && raw[0] === 0x0d && raw[1] === 0x0a) return 2;
  return raw.length;
}

/** The header fields of a header block as [name, start, end] (continuation lines included). */
function headerFields(header: Uint8Array): [string, number, number][] {
  const fields: [string, number, number][] = [];
  let i = 0;
  while (i < header.length) {
    const start = i;
    let lineEnd = header.indexOf(0x0a, i);
    if (lineEnd < 0) lineEnd = header.length - 1;
    i = lineEnd + 1;
    while (i < header.length && (header[i] === 0x20 || header[i] === 0x09)) {
      const e = header.indexOf(0x0a, i);
      i = e < 0 ? header.length : e + 1;
    }
    const colon = header.indexOf(0x3a, start);
    if (colon < 0 || colon >= i) continue;
    // Field names are short ASCII; building them by hand avoids a decoder call per line.
    let name = "";
    for (let k = start; k < colon; k++) name += String.fromCharCode(header[k]!);
    fields.push([name.trim().toLowerCase(), start, i]);
  }
  return fields;
}

/** Selected header fields in message order, followed by the blank line (RFC 9051, 6.4.5). */
export function selectHeaderFields(
  header: Uint8Array,
  names: readonly string[],
  not: boolean,
): Uint8Array {
  const wanted = new Set(names.map((n) => n.toLowerCase()));
  const chosen = headerFields(header).filter(([name]) => wanted.has(name) !== not);
  let size = 2;
  for (const [, s, e] of chosen) size += e - s;
  const out = new Uint8Array(size);
  let o = 0;
  for (const [, s, e] of chosen) {
    out.set(header.subarray(s, e), o);
    o += e - s;
  }
  out[o++] = 0x0d;
  out[o] = 0x0a;
  return out;
}

/** The octets `BODY[section]` names, or null for a part that does not exist. */
export function extractSection(
  m: MessageData & { readonly raw: Uint8Array },
  spec: SectionSpec,
  mime: MimeSupport,
): Uint8Array | null {
  if (spec.path.length > 0) return mime.section ? mime.section(m, spec) : null;
  const raw = m.raw;
  const end = headerEnd(raw);
  switch (spec.text) {
    case null:
      return raw;
    case "HEADER":
      return raw.subarray(0, end);
    case "TEXT":
      return raw.subarray(end);
    case "HEADER.FIELDS":
    case "HEADER.FIELDS.NOT":
      return selectHeaderFields(
        raw.subarray(0, end),
        spec.fields,
        spec.text === "HEADER.FIELDS.NOT",
      );
    case "MIME":
      return null;
    default: {
      const never: never = spec.text;
      return never;
    }
  }
}

/**
 * A plain `{n}` literal must not carry NUL (RFC 3501, Section 4.3; RFC 9051, Section 4.3), yet
 * a message APPENDed as a literal8 may hold NUL in a binary part. Outside BINARY fetches each
 * NUL is sent as 0x80 (`withoutNul`). Octets of `NUL_MAP_PIECE` or more are mapped a piece at
 * a time as they are sent (`NulMappedLiteral`): a 50 MB body is not scanned whole before its
 * response starts. Octets the store recorded as free of NUL are not scanned at all.
 */
function nulMappedLiteral(data: Uint8Array): Uint8Array | NulMappedLiteral {
  return data.length >= NUL_MAP_PIECE ? new NulMappedLiteral(data) : withoutNul(data);
}

/** The octets of a raw message the store knows to hold no NUL, sent as they are. */
function sameOctets(data: Uint8Array): Uint8Array {
  return data;
}

function applyPartial(data: Uint8Array, partial: Partial | null): Uint8Array {
  if (partial === null) return data;
  if (partial.start >= data.length) return new Uint8Array(0);
  return data.subarray(partial.start, Math.min(data.length, partial.start + partial.count));
}

/** What rendering one message needs. */
export interface RenderInput {
  readonly seq: number;
  readonly meta: MessageMeta;
  /** The raw message, or null when it is gone or was not loaded. */
  readonly raw: Uint8Array | null;
  /** The stored summary, or null. */
  readonly summary: string | null;
  /** Object ids and save date, loaded when `needsObjectInfo`. */
  readonly objects?: MessageObjectInfo | null;
  readonly mime: MimeSupport;
  /** Adds UID (UID FETCH, IMAP4rev2) and FLAGS (after \Seen was set) when not requested. */
  readonly addUid: boolean;
  readonly addFlags: boolean;
  /** With `addFlags` under CONDSTORE, the implied FLAGS carry MODSEQ too. */
  readonly addModseq: boolean;
  /** True when the store recorded that `raw` holds no NUL (`knownNulFree`). */
  readonly rawNulFree?: boolean;
  /**
   * The place of the whole message's octets when the command streams them (`raw` is then null,
   * and only `isWholeBody` items may read the octets).
   */
  readonly rawStream?: StreamedLiteral | undefined;
}

/**
 * Renders `* seq FETCH (...)` for one message. Returns null when a body item is requested but
 * the message's octets are gone (expunged meanwhile).
 */
export function renderFetch(items: readonly FetchItem[], input: RenderInput): Value | null {
  const { meta, mime } = input;
  const out: Value[] = [];
  const add = (name: string, value: Value) => {
    if (out.length > 0) out.push(" ");
    out.push(name + " ", value);
  };
  const seen = new Set<string>();
  const wantUid = input.addUid && !items.some((i) => i.kind === "UID");
  if (wantUid) add("UID", String(meta.uid));
  for (const item of items) {
    const once = item.kind === "BODY[]"
      ? `BODY[${item.label}]`
      : item.kind === "BINARY.SIZE"
      ? `BINARY.SIZE[${item.path.join(".")}]`
      : item.kind;
    if (item.kind !== "BODY[]" && item.kind !== "BINARY[]" && seen.has(once)) continue;
    seen.add(once);
    switch (item.kind) {
      case "UID":
        add("UID", String(meta.uid));
        break;
      case "FLAGS":
        add("FLAGS", flagList(meta.flags));
        break;
      case "INTERNALDATE":
        add("INTERNALDATE", formatDateTime(meta.internalDate));
        break;
      case "RFC822.SIZE":
        add("RFC822.SIZE", String(meta.size));
        break;
      case "MODSEQ":
        add("MODSEQ", `(${meta.modseq})`);
        break;
      case "EMAILID":
      case "THREADID":
      case "SAVEDATE": {
        const info = input.objects;
        if (info === undefined || info === null) return null;
        if (item.kind === "EMAILID") add("EMAILID", `(${info.emailId})`);
        else if (item.kind === "THREADID") add("THREADID", `(${info.threadId})`);
        else add("SAVEDATE", info.saveDate === null ? "NIL" : formatDateTime(info.saveDate));
        break;
      }
      default: {
        const v = renderBodyItem(item, input, mime);
        if (v === null) return null;
        add(v[0], v[1]);
      }
    }
  }
  if (input.addFlags && !items.some((i) => i.kind === "FLAGS")) {
    add("FLAGS", flagList(meta.flags));
    if (input.addModseq && !items.some((i) => i.kind === "MODSEQ")) {
      add("MODSEQ", `(${meta.modseq})`);
    }
  }
  return [`* ${input.seq} FETCH (`, out, ")\r\n"];
}

function renderBodyItem(
  item: FetchItem,
  m: MessageData & Pick<RenderInput, "rawNulFree" | "rawStream">,
  mime: MimeSupport,
): [string, Value] | null {
  switch (item.kind) {
    case "ENVELOPE": {
      const v = mime.envelope!(m);
      return v === null ? null : ["ENVELOPE", v];
    }
    case "BODYSTRUCTURE": {
      const v = mime.bodyStructure!(m, true);
      return v === null ? null : ["BODYSTRUCTURE", v];
    }
    case "BODY": {
      const v = mime.bodyStructure!(m, false);
      return v === null ? null : ["BODY", v];
    }
    case "PREVIEW": {
      const v = mime.preview!(m);
      if (v !== null) return ["PREVIEW", nstring(v)];
      // LAZY: not computed yet, the client may ask again without it (RFC 8970, Section 3.1).
      return item.lazy && (m.raw !== null || m.summary !== null) ? ["PREVIEW", "NIL"] : null;
    }
    default:
      break;
  }
  if (m.rawStream !== undefined && isWholeBody(item)) {
    return [item.kind === "RFC822" ? "RFC822" : "BODY[]", m.rawStream];
  }
  const raw = m.raw;
  if (raw === null) return null;
  const withRaw = { raw, summary: m.summary };
  // Sections of the raw octets hold NUL only if the octets do.
  const plainLiteral = m.rawNulFree === true ? sameOctets : nulMappedLiteral;
  switch (item.kind) {
    case "RFC822":
      return ["RFC822", plainLiteral(raw)];
    case "RFC822.HEADER":
      return ["RFC822.HEADER", plainLiteral(raw.subarray(0, headerEnd(raw)))];
    case "RFC822.TEXT":
      return ["RFC822.TEXT", plainLiteral(raw.subarray(headerEnd(raw)))];
    case "BODY[]": {
      const data = extractSection(withRaw, item.section, mime);
      const name = `BODY[${item.label}]` + (item.partial ? `<${item.partial.start}>` : "");
      return [name, data === null ? '""' : plainLiteral(applyPartial(data, item.partial))];
    }
    case "BINARY[]": {
      const result = mime.binary!(withRaw, item.path);
      if (result === null) throw new ImapError("NO", "No such message part", "NONEXISTENT");
      if (!result.ok) throw new ImapError("NO", "Unknown content transfer encoding", "UNKNOWN-CTE");
      const name = `BINARY[${item.path.join(".")}]` +
        (item.partial ? `<${item.partial.start}>` : "");
      const data = applyPartial(result.bytes, item.partial);
      return [name, data.includes(0) ? ["~", data] : data];
    }
    case "BINARY.SIZE": {
      const result = mime.binary!(withRaw, item.path);
      if (result === null) throw new ImapError("NO", "No such message part", "NONEXISTENT");
      if (!result.ok) throw new ImapError("NO", "Unknown content transfer encoding", "UNKNOWN-CTE");
      return [`BINARY.SIZE[${item.path.join(".")}]`, String(result.bytes.length)];
    }
    default:
      throw new ImapError("BAD", `FETCH ${item.kind} cannot be rendered`);
  }
}
