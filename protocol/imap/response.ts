/**
 * Response encoding (RFC 9051, Section 7): an output buffer that batches a response group into
 * one write, and the string forms the server sends (atom, quoted, literal).
 */

import { concatBytes } from "../bytes.ts";

const encoder = new TextEncoder();

/** Bytes a response group may reach before it is flushed early (a long FETCH). */
export const FLUSH_THRESHOLD = 256 * 1024;

/**
 * A command's first early flush comes at this many bytes, and each one after it at twice the
 * last, up to `FLUSH_THRESHOLD`: the client starts reading a long response while the rest is
 * built, instead of after the first 256 KiB.
 */
export const FIRST_FLUSH = 8 * 1024;

/**
 * Chunks at least this long (a message body in a literal) are handed on by `takeParts` as they
 * are, not copied into a joined buffer.
 */
export const PASS_THROUGH = 64 * 1024;

/** Bytes per piece of a `NulMappedLiteral`; each is mapped when it is handed on. */
export const NUL_MAP_PIECE = 1024 * 1024;

/** Pieces of `NulMappedLiteral`s not mapped yet (views of stored octets). */
const UNMAPPED = new WeakSet<Uint8Array>();

/**
 * Octets for a plain literal that may hold NUL, which a plain literal must not carry (RFC 9051,
 * Section 4.3): each NUL is sent as 0x80 (see `withoutNul`). The mapping is done a piece of
 * `NUL_MAP_PIECE` bytes at a time as the output is handed to the driver (`mappedPart`), not in
 * one pass before the response starts: a 50 MB body's scan then runs between the writes of its
 * earlier pieces instead of ahead of all of them.
 */
export class NulMappedLiteral {
  readonly data: Uint8Array;
  constructor(data: Uint8Array) {
    this.data = data;
  }
}

/**
 * Where a literal of `size` octets read from the store while it is sent goes (FETCH of a large
 * body, `MailStore.openRaw`): the command writes it piece by piece, so `Output.value` refuses it.
 */
export class StreamedLiteral {
  readonly size: number;
  constructor(size: number) {
    this.size = size;
  }
}

/**
 * `data` with each NUL replaced by 0x80: the same array when it holds none (the common case),
 * else a copy; the stored octets are never changed. Sizes and offsets stay those of the stored
 * octets, so RFC822.SIZE, partial fetches and BODYSTRUCTURE sizes remain consistent (Dovecot
 * does the same).
 */
export function withoutNul(data: Uint8Array): Uint8Array {
  // indexOf, not includes: V8 scans a Uint8Array about twice as fast with it.
  const first = data.indexOf(0);
  if (first < 0) return data;
  const out = data.slice();
  for (let i = first; i >= 0; i = out.indexOf(0, i + 1)) out[i] = 0x80;
  return out;
}

/**
 * A part from `Output.takeParts` ready to send: a piece of a `NulMappedLiteral` is mapped here,
 * once; any other part is returned as it is.
 */
export function mappedPart(part: Uint8Array): Uint8Array {
  return UNMAPPED.delete(part) ? withoutNul(part) : part;
}

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
    else if (v instanceof NulMappedLiteral) this.#nulMappedLiteral(v.data);
    else if (v instanceof StreamedLiteral) {
      throw new Error("A streamed literal is sent by its command");
    } else for (const piece of v) this.value(piece);
  }

  /** A literal whose pieces are left to `mappedPart` (see `NulMappedLiteral`). */
  #nulMappedLiteral(data: Uint8Array): void {
    this.#text += `{${data.length}}\r\n`;
    this.#encodeText();
    for (let at = 0; at < data.length; at += NUL_MAP_PIECE) {
      const piece = data.subarray(at, at + NUL_MAP_PIECE);
      UNMAPPED.add(piece);
      this.#chunks.push(piece);
      this.#size += piece.length;
    }
  }

  /**
   * Takes everything collected so far as one new array (never a view of stored data, so a
   * driver may encrypt it in place), leaving the buffer empty.
   */
  take(): Uint8Array {
    this.#encodeText();
    const out = concatBytes(this.#chunks.map(mappedPart), this.#size);
    this.#chunks = [];
    this.#size = 0;
    return out;
  }

  /**
   * Takes everything collected so far in order, as few arrays as possible: runs of short
   * pieces are joined into new arrays, while chunks of `PASS_THROUGH` bytes or more are
   * returned as they were given (possibly views of stored data: a driver must not modify them).
   * A 50 MB literal thus reaches the driver without being copied here. Pieces of a
   * `NulMappedLiteral` are mapped when joined; passed through, they are left to `mappedPart`.
   */
  takeParts(): Uint8Array[] {
    this.#encodeText();
    const parts: Uint8Array[] = [];
    let run: Uint8Array[] = [];
    let runSize = 0;
    for (const chunk of this.#chunks) {
      if (chunk.length < PASS_THROUGH) {
        run.push(mappedPart(chunk));
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
 * A piece of response syntax: text that is sent as is, octets sent as a literal (with NUL
 * mapped to 0x80 as it is sent, for a `NulMappedLiteral`), the place of a literal its command
 * streams (`StreamedLiteral`), or a sequence of pieces.
 */
export type Value =
  | string
  | Uint8Array
  | NulMappedLiteral
  | StreamedLiteral
  | readonly Value[];

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

const POWERS_OF_TEN = [1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];

/** The first buffer of a `LineBuilder`; it doubles as needed up to `FLUSH_THRESHOLD`. */
const BUILDER_FIRST = 4096;

/**
 * Builds many short ASCII response lines (a FETCH of every message's UID and FLAGS, a SEARCH
 * of 100,000 numbers) straight into bytes handed to an `Output`: no string per line, no joining
 * of strings and no encoding pass. Numbers are written digit by digit. The buffer grows to
 * `FLUSH_THRESHOLD`, so a long FETCH reaches the driver in few large pieces (each sealed and
 * written in one go). Call `flush()` before anything else writes to the output (a session
 * writes only from the command in progress, so its `await`s need no flush) and before the
 * output is handed on.
 */
export class LineBuilder {
  readonly #out: Output;
  #buf = new Uint8Array(0);
  #at = 0;

  constructor(out: Output) {
    this.#out = out;
  }

  /** Bytes built and not yet handed to the output. */
  get pending(): number {
    return this.#at;
  }

  /** Makes room for `n` more bytes, growing the buffer or handing a full one to the output. */
  reserve(n: number): void {
    if (this.#at + n <= this.#buf.length) return;
    if (this.#at + n > FLUSH_THRESHOLD) this.flush();
    const size = Math.max(
      this.#at + n,
      Math.min(FLUSH_THRESHOLD, Math.max(BUILDER_FIRST, 2 * this.#buf.length)),
    );
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(0, this.#at));
    this.#buf = next;
  }

  /** Appends 7-bit text (the caller knows it is ASCII); `reserve` its length first. */
  ascii(s: string): void {
    const buf = this.#buf;
    let at = this.#at;
    for (let i = 0; i < s.length; i++) buf[at++] = s.charCodeAt(i);
    this.#at = at;
  }

  /** Appends bytes; `reserve` their length first. */
  bytes(b: Uint8Array): void {
    this.#buf.set(b, this.#at);
    this.#at += b.length;
  }

  /** Appends a non-negative integer in decimal (`MAX_DIGITS` at most); `reserve` room first. */
  number(n: number): void {
    if (n > 0x7fffffff) {
      this.ascii(String(n));
      return;
    }
    let digits = 1;
    while (digits < 10 && n >= POWERS_OF_TEN[digits]!) digits++;
    const buf = this.#buf;
    let at = this.#at + digits;
    this.#at = at;
    do {
      const q = (n / 10) | 0;
      buf[--at] = 0x30 + n - q * 10;
      n = q;
    } while (n > 0);
  }

  /** Hands the bytes built so far to the output (the rest of the buffer is used next). */
  flush(): void {
    if (this.#at === 0) return;
    this.#out.bytes(this.#buf.subarray(0, this.#at));
    this.#buf = this.#buf.subarray(this.#at);
    this.#at = 0;
  }
}

/** Digits of the largest integer `LineBuilder.number` writes (2^63 - 1, a mod-sequence). */
export const MAX_DIGITS = 19;
