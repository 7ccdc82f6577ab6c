/**
 * Header-field helpers for RFC 5322 messages: byte-to-text conversion, unfolding, RFC 2047
 * encoded words, RFC 2045/2231 parameter lists and RFC 5322 address lists.
 *
 * Every function here is total: malformed input produces a best-effort result, never an
 * exception.
 */

const utf8Strict = new TextDecoder("utf-8", { fatal: true });
const utf8Lenient = new TextDecoder("utf-8");
const utf8Encoder = new TextEncoder();
const decoderCache = new Map<string, TextDecoder | null>();

/** Caps a single unfolded header value; longer values are cut (the message still parses). */
export const MAX_HEADER_VALUE = 64 * 1024;

/**
 * Turns raw header bytes into text: UTF-8 when the bytes are valid UTF-8 (RFC 6532), otherwise
 * each byte becomes the code point of the same value (ISO-8859-1), so no byte is lost.
 */
export function bytesToText(bytes: Uint8Array): string {
  let ascii = true;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i]! >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii) return latin1(bytes);
  try {
    return utf8Strict.decode(bytes);
  } catch {
    return latin1(bytes);
  }
}

/** Decodes bytes one byte per code point. */
export function latin1(bytes: Uint8Array): string {
  let out = "";
  const step = 8192;
  for (let i = 0; i < bytes.length; i += step) {
    out += String.fromCharCode(...bytes.subarray(i, Math.min(bytes.length, i + step)));
  }
  return out;
}

/**
 * Unfolds a header value (RFC 5322, Section 2.2.3): a line break and the whitespace character
 * after it become one space (as Dovecot does, so a folding tab reads as a space); other CR and LF
 * characters are dropped.
 */
export function unfold(value: string): string {
  return value.replace(/\r?\n[ \t]/g, " ").replace(/[\r\n]/g, "");
}

/**
 * Returns a TextDecoder for a MIME charset name, or null when the runtime does not know it.
 * Labels follow the WHATWG Encoding Standard, which covers the IANA names used in mail.
 */
export function charsetDecoder(charset: string): TextDecoder | null {
  const key = charset.trim().toLowerCase();
  const cached = decoderCache.get(key);
  if (cached !== undefined) return cached;
  let decoder: TextDecoder | null = null;
  const label = key === "utf8" ? "utf-8" : key === "latin1" ? "iso-8859-1" : key;
  if (/^[a-z0-9_.:-]{1,40}$/.test(label)) {
    try {
      decoder = new TextDecoder(label);
    } catch {
      decoder = null;
    }
  }
  if (decoderCache.size < 256) decoderCache.set(key, decoder);
  return decoder;
}

/** Decodes bytes in a charset; unknown charsets fall back to UTF-8 (lenient). */
export function decodeCharset(bytes: Uint8Array, charset: string | null): string {
  const decoder = charset === null ? null : charsetDecoder(charset);
  if (decoder === null) return charset === null ? bytesToText(bytes) : utf8Lenient.decode(bytes);
  return decoder.decode(bytes);
}

const ENCODED_WORD = /=\?([^?\s]{1,75})\?([bBqQ])\?([^?\s]*)\?=/g;

/** Decodes the payload of one encoded word to bytes (RFC 2047, Section 4). */
function encodedWordBytes(encoding: string, text: string): Uint8Array {
  if (encoding === "b" || encoding === "B") return decodeBase64Text(text);
  const out = new Uint8Array(text.length);
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5f) {
      out[n++] = 0x20;
    } else if (c === 0x3d && isHex(text, i + 1) && isHex(text, i + 2)) {
      out[n++] = parseInt(text.substring(i + 1, i + 3), 16);
      i += 2;
    } else {
      out[n++] = c & 0xff;
    }
  }
  return out.subarray(0, n);
}

function isHex(s: string, i: number): boolean {
  const c = s.charCodeAt(i);
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

const B64 = new Int16Array(256).fill(-1);
for (let i = 0; i < 64; i++) {
  B64["ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".charCodeAt(i)] = i;
}

/** Tolerant base64 of a JS string (characters outside the alphabet are skipped). */
function decodeBase64Text(text: string): Uint8Array {
  const out = new Uint8Array(Math.floor((text.length * 3) / 4) + 3);
  let n = 0;
  let acc = 0;
  let bits = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x3d) break;
    const v = c < 256 ? B64[c]! : -1;
    if (v < 0) continue;
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[n++] = (acc >> bits) & 0xff;
    }
  }
  return out.subarray(0, n);
}

/**
 * Decodes RFC 2047 encoded words in unstructured text (Sections 5 and 6.2). Whitespace between
 * adjacent encoded words is dropped, and adjacent words in the same charset are joined as bytes
 * before charset decoding, so a multibyte character split across words survives. Words in an
 * unknown charset are left exactly as written.
 */
export function decodeEncodedWords(text: string): string {
  if (!text.includes("=?")) return text;
  let out = "";
  let last = 0;
  let pending: { charset: string; chunks: Uint8Array[]; raw: string } | null = null;
  const flush = (): void => {
    if (pending === null) return;
    const decoder = charsetDecoder(pending.charset);
    if (decoder === null) {
      out += pending.raw;
    } else {
      let len = 0;
      for (const c of pending.chunks) len += c.length;
      const all = new Uint8Array(len);
      let o = 0;
      for (const c of pending.chunks) {
        all.set(c, o);
        o += c.length;
      }
      out += decoder.decode(all);
    }
    pending = null;
  };
  ENCODED_WORD.lastIndex = 0;
  for (let m = ENCODED_WORD.exec(text); m !== null; m = ENCODED_WORD.exec(text)) {
    const between = text.substring(last, m.index);
    const charset = (m[1] ?? "").split("*")[0]!.toLowerCase();
    const bytes = encodedWordBytes(m[2] ?? "q", m[3] ?? "");
    if (pending !== null && /^[ \t\r\n]*$/.test(between)) {
      if (pending.charset === charset) {
        pending.chunks.push(bytes);
        pending.raw += between + m[0];
      } else {
        flush();
        pending = { charset, chunks: [bytes], raw: m[0] };
      }
    } else {
      flush();
      out += between;
      pending = { charset, chunks: [bytes], raw: m[0] };
    }
    last = m.index + m[0].length;
  }
  flush();
  return out + text.substring(last);
}

/** A MIME parameter as written (after merging RFC 2231 continuations) and decoded. */
export interface MimeParam {
  /** Lower-cased attribute name without RFC 2231 markers. */
  readonly name: string;
  /** Decoded value (RFC 2231 charset applied, RFC 2047 words in quoted values decoded). */
  readonly value: string;
  /** Attribute as written, with `*` appended when the merged value is extended (RFC 2231). */
  readonly rawName: string;
  /** Merged value as written (for extended values: `charset'lang'pct-encoded`). */
  readonly rawValue: string;
}

/** A structured header value: `value; a=b; c="d"` (RFC 2045, Section 5.1). */
export interface ParamValue {
  readonly value: string;
  readonly params: readonly MimeParam[];
}

/** Splits off the leading comment-free token and the parameter list of a MIME header. */
export function parseParamValue(text: string): ParamValue {
  const t = new Lexer(text);
  let value = "";
  while (!t.done()) {
    t.skipCfws();
    if (t.done() || t.peek() === ";") break;
    const c = t.peek();
    if (c === '"') value += t.quoted();
    else value += t.next();
  }
  const raw: { name: string; section: number | null; extended: boolean; value: string }[] = [];
  while (!t.done() && raw.length < 100) {
    if (t.peek() !== ";") {
      t.next();
      continue;
    }
    t.next();
    t.skipCfws();
    let attr = "";
    while (!t.done() && !/[=;\s("]/.test(t.peek())) attr += t.next();
    t.skipCfws();
    if (t.peek() !== "=") continue;
    t.next();
    t.skipCfws();
    let v = "";
    if (t.peek() === '"') v = t.quoted();
    else {
      while (!t.done() && !/[;\s(]/.test(t.peek())) v += t.next();
    }
    if (attr === "") continue;
    const m = /^(.*?)(?:\*(\d{1,3}))?(\*)?$/.exec(attr)!;
    raw.push({
      name: m[1]!,
      section: m[2] === undefined ? null : Number(m[2]),
      extended: m[3] !== undefined,
      value: v,
    });
  }
  return { value: value.trim(), params: mergeParams(raw) };
}

function mergeParams(
  raw: { name: string; section: number | null; extended: boolean; value: string }[],
): MimeParam[] {
  const out: MimeParam[] = [];
  const rfc2231: MimeParam[] = [];
  const seen = new Set<string>();
  for (const p of raw) {
    const key = p.name.toLowerCase();
    if (seen.has(key)) continue;
    seen.add(key);
    const same = raw.filter((q) => q.name.toLowerCase() === key);
    const sections = same.filter((q) => q.section !== null);
    const extended = same.find((q) => q.section === null && q.extended);
    const plain = same.find((q) => q.section === null && !q.extended);
    if (sections.length > 0) rfc2231.push(joinSections(p.name, sections));
    else if (extended !== undefined) rfc2231.push(extendedParam(extended.name, extended.value));
    else if (plain !== undefined) {
      out.push({
        name: key,
        value: decodeEncodedWords(plain.value),
        rawName: plain.name,
        rawValue: plain.value,
      });
    }
  }
  // RFC 2231 parameters follow the plain ones, ordered by name, as Dovecot lists them.
  rfc2231.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  return [...out, ...rfc2231];
}

/** Joins RFC 2231 continuations (Section 3) in section order; section 0 carries the charset. */
function joinSections(
  name: string,
  parts: { section: number | null; extended: boolean; value: string }[],
): MimeParam {
  const sorted = parts.filter((p) => p.section !== null).sort((a, b) => a.section! - b.section!);
  const usable: typeof sorted = [];
  for (let i = 0; i < sorted.length; i++) {
    if (sorted[i]!.section !== i) break;
    usable.push(sorted[i]!);
  }
  const anyExtended = usable.length > 0 && usable[0]!.extended;
  if (!anyExtended) {
    const v = usable.map((p) => p.value).join("");
    return { name: name.toLowerCase(), value: decodeEncodedWords(v), rawName: name, rawValue: v };
  }
  let merged = "";
  for (const p of usable) merged += p.extended ? p.value : pctEscape(p.value);
  return extendedParam(name, merged);
}

function pctEscape(s: string): string {
  return s.replace(/[%*'\s]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase());
}

/** Decodes `charset'lang'pct-encoded` (RFC 2231, Section 4). */
function extendedParam(name: string, value: string): MimeParam {
  const first = value.indexOf("'");
  const second = first < 0 ? -1 : value.indexOf("'", first + 1);
  const charset = second < 0 ? "" : value.substring(0, first);
  const encoded = second < 0 ? value : value.substring(second + 1);
  const bytes = pctDecode(encoded);
  const decoded = charset === "" ? bytesToText(bytes) : decodeCharset(bytes, charset);
  return { name: name.toLowerCase(), value: decoded, rawName: name + "*", rawValue: value };
}

function pctDecode(s: string): Uint8Array {
  const out = new Uint8Array(s.length * 3);
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x25 && isHex(s, i + 1) && isHex(s, i + 2)) {
      out[n++] = parseInt(s.substring(i + 1, i + 3), 16);
      i += 2;
    } else if (c < 0x80) {
      out[n++] = c;
    } else {
      const b = utf8Encoder.encode(s[i]!);
      out.set(b, n);
      n += b.length;
    }
  }
  return out.subarray(0, n);
}

/** A character cursor over a structured header value (RFC 5322, Section 3.2). */
class Lexer {
  #s: string;
  #i = 0;
  constructor(s: string) {
    this.#s = s;
  }
  done(): boolean {
    return this.#i >= this.#s.length;
  }
  peek(): string {
    return this.#s[this.#i] ?? "";
  }
  next(): string {
    return this.#s[this.#i++] ?? "";
  }
  /** Skips whitespace and comments; returns the comments' text. */
  skipCfws(): string[] {
    const comments: string[] = [];
    while (!this.done()) {
      const c = this.peek();
      if (c === " " || c === "\t" || c === "\r" || c === "\n") this.#i++;
      else if (c === "(") comments.push(this.comment());
      else break;
    }
    return comments;
  }
  /** Reads a (possibly nested) comment starting at `(`; returns its inner text unescaped. */
  comment(): string {
    let depth = 0;
    let out = "";
    while (!this.done()) {
      const c = this.next();
      if (c === "\\") {
        out += this.next();
      } else if (c === "(") {
        if (depth > 0) out += c;
        depth++;
      } else if (c === ")") {
        depth--;
        if (depth === 0) return out;
        out += c;
      } else out += c;
    }
    return out;
  }
  /** Reads a quoted string starting at `"`; returns its content unescaped. */
  quoted(): string {
    this.#i++;
    let out = "";
    while (!this.done()) {
      const c = this.next();
      if (c === "\\") out += this.next();
      else if (c === '"') return out;
      else out += c;
    }
    return out;
  }
}

/** One mailbox of an address list (RFC 5322, Section 3.4). */
export interface Mailbox {
  readonly kind: "mailbox";
  /** Display name as written (quotes removed, encoded words not decoded), or null. */
  readonly name: string | null;
  /** Obsolete source route (`@a,@b`), or null. */
  readonly route: string | null;
  readonly local: string;
  /** Domain, or MISSING_DOMAIN when the address has none. */
  readonly domain: string;
}

/** A named group of mailboxes (RFC 5322, Section 3.4). */
export interface Group {
  readonly kind: "group";
  readonly name: string;
  readonly members: readonly Mailbox[];
}

export type Address = Mailbox | Group;

type Token =
  | { kind: "word"; text: string; quoted: boolean; space: boolean }
  | { kind: "special"; text: string; space: boolean }
  | { kind: "comment"; text: string; space: boolean }
  | { kind: "literal"; text: string; space: boolean };

const ADDRESS_SPECIALS = "<>@,;:.[]";
const MAX_ADDRESSES = 1000;

function tokenize(s: string): Token[] {
  const out: Token[] = [];
  const lx = new Lexer(s);
  let space = false;
  while (!lx.done()) {
    const c = lx.peek();
    if (c === " " || c === "\t" || c === "\r" || c === "\n") {
      lx.next();
      space = true;
      continue;
    }
    if (c === "(") {
      out.push({ kind: "comment", text: lx.comment(), space });
    } else if (c === '"') {
      out.push({ kind: "word", text: lx.quoted(), quoted: true, space });
    } else if (c === "[") {
      let text = "";
      while (!lx.done() && lx.peek() !== "]") {
        const ch = lx.next();
        text += ch === "\\" ? lx.next() : ch;
      }
      lx.next();
      out.push({ kind: "literal", text: text + "]", space });
    } else if (ADDRESS_SPECIALS.includes(c)) {
      out.push({ kind: "special", text: lx.next(), space });
    } else {
      let text = "";
      while (!lx.done() && !/[\s()"<>@,;:.[\]]/.test(lx.peek())) text += lx.next();
      if (text === "") text = lx.next();
      out.push({ kind: "word", text, quoted: false, space });
    }
    space = false;
  }
  return out;
}

/**
 * Parses an address list (RFC 5322, Section 3.4, with the obsolete forms of Section 4.4):
 * groups, display names, comments, quoted local parts and source routes. Garbage yields the
 * best guess; empty entries are skipped.
 */
export function parseAddressList(text: string): Address[] {
  const tokens = tokenize(text);
  const p = new AddressParser(tokens);
  const out: Address[] = [];
  while (!p.done() && out.length < MAX_ADDRESSES) {
    const before = p.pos;
    const a = p.address(false);
    if (a !== null) out.push(a);
    if (p.isSpecial(",") || p.isSpecial(";")) p.pos++;
    if (p.pos === before) p.pos++;
  }
  return out;
}

class AddressParser {
  pos = 0;
  #t: Token[];
  constructor(t: Token[]) {
    this.#t = t;
  }
  done(): boolean {
    return this.pos >= this.#t.length;
  }
  isSpecial(s: string): boolean {
    const t = this.#t[this.pos];
    return t !== undefined && t.kind === "special" && t.text === s;
  }

  /** Reads one mailbox or group, stopping before `,` (or `;` inside a group). */
  address(inGroup: boolean): Address | null {
    const phrase: Token[] = [];
    while (!this.done()) {
      const t = this.#t[this.pos]!;
      if (t.kind === "special" && (t.text === "<" || t.text === "," || t.text === ";")) break;
      if (t.kind === "special" && t.text === ":" && !inGroup) break;
      phrase.push(t);
      this.pos++;
    }
    if (this.isSpecial(":") && !inGroup) {
      this.pos++;
      const members: Mailbox[] = [];
      while (!this.done() && !this.isSpecial(";") && members.length < MAX_ADDRESSES) {
        const before = this.pos;
        const m = this.address(true);
        if (m !== null && m.kind === "mailbox") members.push(m);
        if (this.isSpecial(",")) this.pos++;
        if (this.pos === before) this.pos++;
      }
      if (this.isSpecial(";")) this.pos++;
      return { kind: "group", name: phraseText(phrase), members };
    }
    if (this.isSpecial("<")) {
      this.pos++;
      const inner: Token[] = [];
      while (!this.done() && !this.isSpecial(">")) inner.push(this.#t[this.pos++]!);
      if (this.isSpecial(">")) this.pos++;
      while (!this.done() && !this.isSpecial(",") && !(inGroup && this.isSpecial(";"))) {
        this.pos++;
      }
      const name = phraseText(phrase);
      return angleAddr(inner, name === "" ? null : name);
    }
    // Nothing but comments (`group: (foo) ;`) is no mailbox at all.
    if (phrase.every((t) => t.kind === "comment")) return null;
    return addrSpec(phrase);
  }
}

/** Joins the words of a display name, one space where the source had whitespace (3.2.5). */
function phraseText(tokens: Token[]): string {
  let out = "";
  for (const t of tokens) {
    if (t.kind === "comment") continue;
    if (out !== "" && t.space) out += " ";
    out += t.text;
  }
  return out.trim();
}

function angleAddr(inner: Token[], name: string | null): Mailbox {
  let route: string | null = null;
  let i = 0;
  const first = inner[0];
  if (first !== undefined && first.kind === "special" && first.text === "@") {
    const colon = inner.findIndex((t) => t.kind === "special" && t.text === ":");
    if (colon >= 0) {
      route = inner.slice(0, colon).filter((t) => t.kind !== "comment").map((t) => t.text).join(
        "",
      );
      i = colon + 1;
    }
  }
  const spec = addrSpec(inner.slice(i));
  return { kind: "mailbox", name, route, local: spec.local, domain: spec.domain };
}

function addrSpec(tokens: Token[]): Mailbox {
  const at = tokens.findLastIndex((t) => t.kind === "special" && t.text === "@");
  const localTokens = at < 0 ? tokens : tokens.slice(0, at);
  const domainTokens = at < 0 ? [] : tokens.slice(at + 1);
  const comments = tokens.filter((t) => t.kind === "comment");
  // Quoted local parts are given unquoted, as UW-IMAP and Dovecot do in ENVELOPE.
  const local = localTokens.filter((t) => t.kind !== "comment").map((t) => t.text).join("");
  const domain = domainTokens.filter((t) => t.kind !== "comment").map((t) => t.text).join("");
  const lastComment = comments.at(-1);
  const words = localTokens.filter((t) => t.kind === "word");
  if (at < 0 && words.length > 1) {
    // A bare phrase without "@" is a display name with no address (as Dovecot reads it).
    return {
      kind: "mailbox",
      name: phraseText(localTokens),
      route: null,
      local: MISSING_MAILBOX,
      domain: MISSING_DOMAIN,
    };
  }
  return {
    kind: "mailbox",
    name: lastComment === undefined || lastComment.text.trim() === ""
      ? null
      : lastComment.text.trim(),
    route: null,
    local: local === "" ? MISSING_MAILBOX : local,
    domain: at < 0 || domain === "" ? MISSING_DOMAIN : domain,
  };
}

/** Placeholders for the missing halves of an address, the names Dovecot uses. */
export const MISSING_MAILBOX = "MISSING_MAILBOX";
export const MISSING_DOMAIN = "MISSING_DOMAIN";
