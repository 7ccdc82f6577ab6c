/**
 * Response encoding (RFC 9051, Section 7): an output buffer that batches a response group into
 * one write, and the string forms the server sends (atom, quoted, literal).
 */

import { concatBytes } from "../bytes.ts";

const encoder = new TextEncoder();

/** Bytes a response group may reach before it is flushed early (a long FETCH). */
export const FLUSH_THRESHOLD = 256 * 1024;

/**
 * Chunks at least this long (a message body in a literal) are handed on by `takeParts` as they
 * are, not copied into a joined buffer.
 */
export const PASS_THROUGH = 64 * 1024;

/**
 * Collects the bytes of one response group. Text is kept as strings and encoded in one call
 * per run (between literals), since encoding many tiny strings dominates a large FETCH.
 */
export class Output {
  #chunks: Uint8Array[] = [];
  #text = "";
  #size = 0;

  /** Bytes collected so far (text counted in UTF-16 units until encoded; close enough). */
  get size(): number {
    return this.#size + this.#text.length;
  }

  #encodeText(): void {
    if (this.#text === "") return;
    const bytes = encoder.encode(this.#text);
    this.#text = "";
    this.#chunks.push(bytes);
    this.#size += bytes.length;
  }

  /** Appends raw bytes. */
  bytes(data: Uint8Array): void {
    if (data.length === 0) return;
    this.#encodeText();
    this.#chunks.push(data);
    this.#size += data.length;
  }

  /** Appends text (UTF-8) without a line ending. */
  text(s: string): void {
    this.#text += s;
  }

  /** Appends one response line and its CRLF. */
  line(s: string): void {
    this.#text += s + "\r\n";
  }

  /** Appends a literal `{n}\r\n` followed by its octets. */
  literal(data: Uint8Array): void {
    this.#text += `{${data.length}}\r\n`;
    this.bytes(data);
  }

  /** Appends a value built of text and literal pieces (see `Value`). */
  value(v: Value): void {
    if (typeof v === "string") this.#text += v;
    else if (v instanceof Uint8Array) this.literal(v);
    else for (const piece of v) this.value(piece);
  }

  /**
   * Takes everything collected so far as one new array (never a view of stored data, so a
   * driver may encrypt it in place), leaving the buffer empty.
   */
  take(): Uint8Array {
    this.#encodeText();
    const out = concatBytes(this.#chunks, this.#size);
    this.#chunks = [];
    this.#size = 0;
    return out;
  }

  /**
   * Takes everything collected so far in order, as few arrays as possible: runs of short
   * pieces are joined into new arrays, while chunks of `PASS_THROUGH` bytes or more are
   * returned as they were given (possibly views of stored data: a driver must not modify them).
   * A 50 MB literal thus reaches the driver without being copied here.
   */
  takeParts(): Uint8Array[] {
    this.#encodeText();
    const parts: Uint8Array[] = [];
    let run: Uint8Array[] = [];
    let runSize = 0;
    for (const chunk of this.#chunks) {
      if (chunk.length < PASS_THROUGH) {
        run.push(chunk);
        runSize += chunk.length;
        continue;
      }
      if (run.length > 0) parts.push(concatBytes(run, runSize));
      run = [];
      runSize = 0;
      parts.push(chunk);
    }
    if (run.length > 0) parts.push(concatBytes(run, runSize));
    this.#chunks = [];
    this.#size = 0;
    return parts;
  }
}

/**
 * A piece of response syntax: text that is sent as is, octets sent as a literal, or a sequence
 * of pieces.
 */
export type Value = string | Uint8Array | readonly Value[];

/** Longest string sent quoted; longer ones go as literals. */
const MAX_QUOTED = 1024;

/**
 * Encodes a string as `quoted` when it can be (no CR, LF or NUL; 8-bit only when `utf8`), and
 * as a literal otherwise (RFC 9051, Section 4.3).
 */
export function stringValue(s: string, utf8 = true): Value {
  const quotable = s.length <= MAX_QUOTED && !s.includes("\r") && !s.includes("\n") &&
    !s.includes("\0") && (utf8 || isAscii(s));
  if (quotable) return `"${s.replace(/[\\"]/g, (c) => "\\" + c)}"`;
  return encoder.encode(s);
}

/** True when every character is 7-bit. */
export function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}

/** Encodes an `nstring`: NIL for null. */
export function nstringValue(s: string | null, utf8 = true): Value {
  return s === null ? "NIL" : stringValue(s, utf8);
}

const ATOM = /^[\x21\x23\x24\x26\x27\x2b-\x5b\x5e-\x7a\x7c\x7e]+$/;

/** Encodes an `astring`: a plain atom when safe, else a string. */
export function astringValue(s: string, utf8 = true): Value {
  return ATOM.test(s) && s.toUpperCase() !== "NIL" ? s : stringValue(s, utf8);
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** Formats INTERNALDATE as `"dd-Mon-yyyy hh:mm:ss +0000"` (RFC 9051 `date-time`), in UTC. */
export function formatDateTime(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, "0");
  return `"${p(d.getUTCDate())}-${MONTHS[d.getUTCMonth()]}-${d.getUTCFullYear()} ` +
    `${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000"`;
}

/** A parenthesised flag list, `(\Seen $Junk)`. */
export function flagList(flags: readonly string[]): string {
  return `(${flags.join(" ")})`;
}
