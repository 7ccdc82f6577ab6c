/**
 * A bounds-checked cursor over one received command (RFC 9051, Section 9 grammar). Text parts
 * and literals alternate; the reader moves from one to the next as the grammar consumes them.
 * Every failure is an `ImapError` with status BAD, and nesting of parenthesised lists is capped.
 */
import { badSyntax } from "./errors.ts";
import type { CommandPart } from "./receiver.ts";
import { MAX_NUMBER, type SeqRange, type SequenceSet } from "./sequence_set.ts";

const SP = 0x20;
const DQUOTE = 0x22;
const BACKSLASH = 0x5c;

/** Characters excluded from ATOM-CHAR: atom-specials (RFC 9051, Section 9). */
function isAtomChar(c: number): boolean {
  if (c <= 0x1f || c === 0x7f || c === SP) return false;
  // ( ) { % * " \ ]
  return c !== 0x28 && c !== 0x29 && c !== 0x7b && c !== 0x25 && c !== 0x2a && c !== DQUOTE &&
    c !== BACKSLASH && c !== 0x5d && c < 0x80;
}

/** ASTRING-CHAR = ATOM-CHAR / resp-specials. */
function isAstringChar(c: number): boolean {
  return isAtomChar(c) || c === 0x5d;
}

/** list-char = ATOM-CHAR / list-wildcards / resp-specials. */
function isListChar(c: number): boolean {
  return isAstringChar(c) || c === 0x25 || c === 0x2a;
}

/** Tag characters: ASTRING-CHAR except "+". */
function isTagChar(c: number): boolean {
  return isAstringChar(c) && c !== 0x2b;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });
const latin1 = new TextDecoder("latin1");

/** Decodes UTF-8 strictly; invalid input is a syntax error. */
export function decodeUtf8(bytes: Uint8Array): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw badSyntax("Invalid UTF-8 in string");
  }
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** A string as read: its octets, and whether it came from a literal8. */
export interface StringValue {
  readonly bytes: Uint8Array;
  readonly binary: boolean;
}

/** The grammar cursor over one command. */
export class CommandReader {
  readonly #parts: readonly CommandPart[];
  readonly #maxDepth: number;
  #index = 0;
  #pos = 0;
  #depth = 0;

  constructor(parts: readonly CommandPart[], maxDepth = 16) {
    this.#parts = parts;
    this.#maxDepth = maxDepth;
  }

  /** The current text part's bytes, or null when a literal or the end comes next. */
  #text(): Uint8Array | null {
    // Step over exhausted text parts, but never past a literal.
    for (;;) {
      const part = this.#parts[this.#index];
      if (part === undefined || part.kind !== "text") return null;
      if (this.#pos < part.bytes.length) return part.bytes;
      const next = this.#parts[this.#index + 1];
      if (next === undefined || next.kind !== "text") return null;
      this.#index++;
      this.#pos = 0;
    }
  }

  /** The next byte, or -1 when a literal or the end of the command comes next. */
  peek(): number {
    const text = this.#text();
    return text === null ? -1 : text[this.#pos]!;
  }

  /** The byte `n` places after the next one in the same text part, or -1. */
  peekAhead(n: number): number {
    const text = this.#text();
    return text === null ? -1 : text[this.#pos + n] ?? -1;
  }

  /** True when the next item is a literal. */
  atLiteral(): boolean {
    if (this.#text() !== null) return false;
    let i = this.#index;
    const part = this.#parts[i];
    if (part !== undefined && part.kind === "text") i++;
    return this.#parts[i]?.kind === "literal";
  }

  atEnd(): boolean {
    return this.#text() === null && !this.atLiteral();
  }

  /** Fails unless the whole command has been consumed. */
  end(): void {
    if (!this.atEnd()) throw badSyntax("Unexpected extra arguments");
  }

  /** Consumes `c` if it is next. */
  tryByte(c: number): boolean {
    if (this.peek() !== c) return false;
    this.#pos++;
    return true;
  }

  expectByte(c: number, what: string): void {
    if (!this.tryByte(c)) throw badSyntax(`Expected ${what}`);
  }

  sp(): void {
    this.expectByte(SP, "space");
  }

  /** Consumes a space if one is next. */
  trySp(): boolean {
    return this.tryByte(SP);
  }

  /** Consumes the run of bytes accepted by `accept`. */
  #run(accept: (c: number) => boolean): string {
    const text = this.#text();
    if (text === null) return "";
    const start = this.#pos;
    while (this.#pos < text.length && accept(text[this.#pos]!)) this.#pos++;
    return latin1.decode(text.subarray(start, this.#pos));
  }

  /** Consumes the run of bytes accepted by `accept` (possibly empty), as Latin-1 text. */
  chars(accept: (c: number) => boolean): string {
    return this.#run(accept);
  }

  tag(): string {
    const tag = this.#run(isTagChar);
    if (tag === "") throw badSyntax("Missing or invalid tag");
    return tag;
  }

  /** An atom (RFC 9051 `atom`). */
  atom(what = "atom"): string {
    const atom = this.#run(isAtomChar);
    if (atom === "") throw badSyntax(`Expected ${what}`);
    return atom;
  }

  /** An atom, upper-cased: command names and keywords of the grammar. */
  keyword(what = "keyword"): string {
    return this.atom(what).toUpperCase();
  }

  /** Peeks at the next atom without consuming it (upper-cased), or "" if none. */
  peekKeyword(): string {
    const text = this.#text();
    if (text === null) return "";
    let end = this.#pos;
    while (end < text.length && isAtomChar(text[end]!)) end++;
    return latin1.decode(text.subarray(this.#pos, end)).toUpperCase();
  }

  /** A quoted string with `\"` and `\\` escapes (RFC 9051 `quoted`), as octets. */
  quotedBytes(): Uint8Array {
    const text = this.#text();
    if (text === null || text[this.#pos] !== DQUOTE) throw badSyntax("Expected quoted string");
    const out: number[] = [];
    let i = this.#pos + 1;
    for (;;) {
      if (i >= text.length) throw badSyntax("Unterminated quoted string");
      const c = text[i]!;
      if (c === DQUOTE) break;
      if (c === BACKSLASH) {
        const e = text[i + 1];
        if (e !== DQUOTE && e !== BACKSLASH) throw badSyntax("Invalid escape in quoted string");
        out.push(e);
        i += 2;
        continue;
      }
      if (c === 0x0d || c === 0x0a || c === 0) {
        throw badSyntax("Invalid character in quoted string");
      }
      out.push(c);
      i++;
    }
    this.#pos = i + 1;
    return Uint8Array.from(out);
  }

  /** A literal (`{n}` or `~{n}`) as octets. */
  literal(): StringValue {
    if (!this.atLiteral()) throw badSyntax("Expected literal");
    if (this.#parts[this.#index]?.kind === "text") this.#index++;
    const part = this.#parts[this.#index];
    if (part === undefined || part.kind !== "literal") throw badSyntax("Expected literal");
    this.#index++;
    this.#pos = 0;
    return { bytes: part.bytes, binary: part.binary };
  }

  /** `string` = quoted / literal, as octets. */
  stringValue(): StringValue {
    if (this.atLiteral()) return this.literal();
    return { bytes: this.quotedBytes(), binary: false };
  }

  /** `string` decoded as UTF-8. */
  string(): string {
    const v = this.stringValue();
    if (v.binary) throw badSyntax("Binary literal not allowed here");
    return decodeUtf8(v.bytes);
  }

  /** `astring` = 1*ASTRING-CHAR / string, decoded as UTF-8. */
  astring(what = "string"): string {
    if (this.atLiteral() || this.peek() === DQUOTE) return this.string();
    const atom = this.#run(isAstringChar);
    if (atom === "") throw badSyntax(`Expected ${what}`);
    return atom;
  }

  /** `list-mailbox` = 1*list-char / string (LIST patterns with `%` and `*`). */
  listMailbox(): string {
    if (this.atLiteral() || this.peek() === DQUOTE) return this.string();
    const atom = this.#run(isListChar);
    if (atom === "") throw badSyntax("Expected mailbox pattern");
    return atom;
  }

  /** A number up to 2^32-1 (RFC 9051 `number`). */
  number(what = "number"): number {
    const digits = this.#run((c) => c >= 0x30 && c <= 0x39);
    if (digits === "" || digits.length > 10) throw badSyntax(`Expected ${what}`);
    const n = Number(digits);
    if (n > MAX_NUMBER) throw badSyntax(`Number out of range`);
    return n;
  }

  /** A number up to 2^63-1 (RFC 9051 `number64`), limited here to safe integers. */
  number64(what = "number"): number {
    const digits = this.#run((c) => c >= 0x30 && c <= 0x39);
    if (digits === "" || digits.length > 16) throw badSyntax(`Expected ${what}`);
    const n = Number(digits);
    if (!Number.isSafeInteger(n)) throw badSyntax(`Number out of range`);
    return n;
  }

  nzNumber(what = "number"): number {
    const n = this.number(what);
    if (n === 0) throw badSyntax(`Expected non-zero ${what}`);
    return n;
  }

  /** A sequence set or UID set: `1,3:5,7:*`, reversed ranges allowed, or `$`. */
  sequenceSet(): SequenceSet {
    if (this.tryByte(0x24 /* $ */)) return { kind: "saved" };
    const ranges: SeqRange[] = [];
    do {
      const start = this.#seqNumber();
      const end = this.tryByte(0x3a /* : */) ? this.#seqNumber() : start;
      ranges.push({ start, end });
    } while (this.tryByte(0x2c /* , */));
    return { kind: "ranges", ranges };
  }

  #seqNumber(): number | "*" {
    if (this.tryByte(0x2a /* * */)) return "*";
    return this.nzNumber("sequence number");
  }

  /**
   * A parenthesised, space-separated list; `item` reads one element. Depth is capped so that a
   * hostile `((((...` cannot exhaust the stack.
   */
  list<T>(item: () => T, allowEmpty = true): T[] {
    this.expectByte(0x28, "(");
    if (++this.#depth > this.#maxDepth) throw badSyntax("Lists nested too deeply");
    const out: T[] = [];
    if (!this.tryByte(0x29)) {
      do out.push(item()); while (this.trySp());
      this.expectByte(0x29, ")");
    } else if (!allowEmpty) {
      throw badSyntax("Empty list");
    }
    this.#depth--;
    return out;
  }

  /** Enters a nested group for a caller that parses its own parentheses (SEARCH). */
  enterGroup(): void {
    if (++this.#depth > this.#maxDepth) throw badSyntax("Lists nested too deeply");
  }

  leaveGroup(): void {
    this.#depth--;
  }

  /** A flag: `\Word` or a keyword atom (RFC 9051 `flag`). `\*` only when `allowWildcard`. */
  flag(allowWildcard = false): string {
    if (this.tryByte(BACKSLASH)) {
      if (allowWildcard && this.tryByte(0x2a)) return "\\*";
      return "\\" + this.atom("flag");
    }
    return this.atom("flag");
  }

  /** A parenthesised flag list, or a single flag when `bare` is allowed (STORE). */
  flagList(): string[] {
    return this.list(() => this.flag());
  }

  /** `date` = date-text / DQUOTE date-text DQUOTE, `d-Mon-yyyy`; returns UTC midnight ms. */
  date(): number {
    const quoted = this.tryByte(DQUOTE);
    const text = this.#run((c) => c === 0x2d || (c >= 0x30 && c <= 0x39) || isLetter(c));
    if (quoted) this.expectByte(DQUOTE, "closing quote");
    const m = /^(\d{1,2})-([A-Za-z]{3})-(\d{4})$/.exec(text);
    const month = m ? monthIndex(m[2]!) : -1;
    if (!m || month < 0) throw badSyntax("Invalid date");
    const day = Number(m[1]);
    const ms = Date.UTC(Number(m[3]), month, day);
    if (new Date(ms).getUTCDate() !== day) throw badSyntax("Invalid date");
    return ms;
  }

  /** `date-time` = DQUOTE `dd-Mon-yyyy hh:mm:ss +zzzz` DQUOTE; returns ms since the epoch. */
  dateTime(): number {
    const text = decodeUtf8(this.quotedBytes());
    const m = /^([ \d]\d)-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)$/.exec(
      text,
    );
    const month = m ? monthIndex(m[2]!) : -1;
    if (!m || month < 0) throw badSyntax("Invalid date-time");
    const day = Number(m[1]!.trim());
    const [h, min, s] = [Number(m[4]), Number(m[5]), Number(m[6])];
    if (h > 23 || min > 59 || s > 60 || day < 1 || day > 31) throw badSyntax("Invalid date-time");
    const offset = (m[7] === "-" ? -1 : 1) * (Number(m[8]) * 60 + Number(m[9])) * 60000;
    const ms = Date.UTC(Number(m[3]), month, day, h, min, s) - offset;
    if (!Number.isFinite(ms)) throw badSyntax("Invalid date-time");
    return ms;
  }
}

function isLetter(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}

function monthIndex(name: string): number {
  return MONTHS.findIndex((m) => m.toLowerCase() === name.toLowerCase());
}

/** The three-letter month names of `date-month`. */
export const MONTH_NAMES: readonly string[] = MONTHS;
