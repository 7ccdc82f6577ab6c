/**
 * The incremental command receiver (RFC 9051, Sections 2.2 and 4.3; RFC 7888 LITERAL+;
 * RFC 3516 literal8). It is fed arbitrary fragments of client input and yields whole commands:
 * the command lines with their literals cut out as separate parts.
 *
 * It is pull-based: `push()` only queues bytes, and `next()` parses just far enough to return one
 * event. The session pulls the next event only after the previous command has completed, so a
 * continuation request (`+`) is never sent ahead of an earlier command's responses.
 *
 * Every limit is enforced before memory is allocated: the line length, the literal size (asked
 * per command, so APPEND may take more than a LOGIN), the number of literals and the total size
 * of one command. The limits may be given as a function, read again as each command starts,
 * so that they can be tighter before authentication. A command over a limit is skipped safely
 * and answered with BAD or NO [TOOBIG]; only a non-synchronizing literal too large even to skip
 * closes the connection.
 */

/** One piece of a command: line text (without CRLF or literal markers) or a literal's octets. */
export type CommandPart =
  | { readonly kind: "text"; readonly bytes: Uint8Array }
  | { readonly kind: "literal"; readonly bytes: Uint8Array; readonly binary: boolean };

/** A complete command as received: text and literal parts in order. */
export interface RawCommand {
  readonly parts: readonly CommandPart[];
}

/** What the receiver yields. */
export type ReceiverEvent =
  | { readonly kind: "command"; readonly command: RawCommand }
  /** A synchronizing literal was accepted: the session must send a `+` continuation now. */
  | { readonly kind: "continue" }
  /** The command was refused without being parsed; answer it with this tagged status. */
  | {
    readonly kind: "reject";
    readonly tag: string;
    readonly status: "BAD" | "NO";
    readonly code: string | null;
    readonly text: string;
  }
  /** The stream cannot be resynchronised; send `* BYE` with this text and close. */
  | { readonly kind: "fatal"; readonly text: string };

/** Receiver limits, all in octets except `maxLiteralsPerCommand`. */
export interface ReceiverLimits {
  /** Longest command line, excluding literals. */
  readonly maxLineLength: number;
  /** Largest non-synchronizing literal that is skipped (and refused) rather than closing. */
  readonly maxLiteralSkip: number;
  readonly maxLiteralsPerCommand: number;
  /** Largest total of lines and literals in one command. */
  readonly maxCommandSize: number;
}

export const defaultReceiverLimits: ReceiverLimits = {
  maxLineLength: 64 * 1024,
  maxLiteralSkip: 256 * 1024 * 1024,
  maxLiteralsPerCommand: 1000,
  maxCommandSize: 128 * 1024 * 1024,
};

/**
 * Decides the largest literal accepted for a command. `command` is the upper-cased command name
 * (`APPEND`, `LOGIN`, `UID STORE`, ...), or "" when it cannot be read yet.
 */
export type LiteralLimit = (command: string) => number;

type Mode =
  | { readonly kind: "line" }
  | {
    readonly kind: "literal";
    readonly data: Uint8Array;
    filled: number;
    readonly binary: boolean;
  }
  | { readonly kind: "skip"; remaining: number };

interface Rejection {
  readonly status: "BAD" | "NO";
  readonly code: string | null;
  readonly text: string;
}

const CR = 0x0d;
const LF = 0x0a;
/** Bytes of a discarded line kept to recognise a literal marker at its end. */
const TAIL = 32;
/** A command with this many times the literal limit is a flood: the connection is closed. */
const FLOOD_FACTOR = 4;
/** Bytes of a command's first line kept to recover its tag and name for an error reply. */
const HEAD = 96;

/** A FIFO of byte chunks; avoids copying the whole backlog on every push. */
class ByteQueue {
  #chunks: Uint8Array[] = [];
  #offset = 0;
  #length = 0;

  get length(): number {
    return this.#length;
  }

  push(data: Uint8Array): void {
    if (data.length === 0) return;
    this.#chunks.push(data);
    this.#length += data.length;
  }

  /** The first contiguous run of queued bytes (a view, not a copy). */
  front(): Uint8Array {
    const chunk = this.#chunks[0];
    return chunk === undefined ? new Uint8Array(0) : chunk.subarray(this.#offset);
  }

  consume(n: number): void {
    this.#length -= n;
    while (n > 0) {
      const chunk = this.#chunks[0];
      if (chunk === undefined) throw new RangeError("ByteQueue underflow");
      const available = chunk.length - this.#offset;
      if (n < available) {
        this.#offset += n;
        return;
      }
      n -= available;
      this.#chunks.shift();
      this.#offset = 0;
    }
  }
}

/** A growable byte buffer with a hard cap checked before every growth. */
class LineBuffer {
  #data = new Uint8Array(256);
  #length = 0;

  get length(): number {
    return this.#length;
  }

  append(bytes: Uint8Array): void {
    const need = this.#length + bytes.length;
    if (need > this.#data.length) {
      let size = this.#data.length * 2;
      while (size < need) size *= 2;
      const grown = new Uint8Array(size);
      grown.set(this.#data.subarray(0, this.#length));
      this.#data = grown;
    }
    this.#data.set(bytes, this.#length);
    this.#length = need;
  }

  /** Keeps only the last `n` bytes. */
  keepTail(n: number): void {
    if (this.#length <= n) return;
    this.#data.copyWithin(0, this.#length - n, this.#length);
    this.#length = n;
  }

  take(): Uint8Array {
    const out = this.#data.slice(0, this.#length);
    this.clear();
    return out;
  }

  view(): Uint8Array {
    return this.#data.subarray(0, this.#length);
  }

  clear(): void {
    this.#length = 0;
    if (this.#data.length > 4096) this.#data = new Uint8Array(256);
  }
}

/** A literal marker at the end of a line: `{n}`, `{n+}`, `~{n}` or `~{n+}`. */
interface LiteralMarker {
  /** Offset of the marker in the line (where the text part ends). */
  readonly at: number;
  readonly size: number;
  readonly synchronizing: boolean;
  readonly binary: boolean;
}

/** Finds a literal marker ending the line (RFC 9051 `literal`, RFC 7888 `literal+`). */
export function findLiteralMarker(line: Uint8Array): LiteralMarker | null {
  let i = line.length - 1;
  if (i < 2 || line[i] !== 0x7d /* } */) return null;
  i--;
  let synchronizing = true;
  if (line[i] === 0x2b /* + */) {
    synchronizing = false;
    i--;
  }
  const digitsEnd = i + 1;
  while (i >= 0 && line[i]! >= 0x30 && line[i]! <= 0x39) i--;
  const digits = digitsEnd - (i + 1);
  if (digits === 0 || i < 0 || line[i] !== 0x7b /* { */) return null;
  // More than 15 digits cannot be a literal we would ever accept; treat it as huge.
  let size = 0;
  for (let k = i + 1; k < digitsEnd; k++) {
    size = digits > 15 ? Number.MAX_SAFE_INTEGER : size * 10 + (line[k]! - 0x30);
  }
  let at = i;
  let binary = false;
  if (at > 0 && line[at - 1] === 0x7e /* ~ */) {
    binary = true;
    at--;
  }
  return { at, size, synchronizing, binary };
}

const TAG_CHAR = /^[\x21\x23\x24\x26\x27\x2c-\x5b\x5e-\x7a\x7c\x7e]+$/;

/** Reads the tag and command name from the start of a first line, for error replies. */
export function peekTagAndName(head: Uint8Array): { tag: string; name: string } {
  const text = new TextDecoder("latin1").decode(head);
  const words = text.split(" ");
  const rawTag = words[0] ?? "";
  const tag = rawTag.length < 64 && TAG_CHAR.test(rawTag) && !rawTag.includes("+") ? rawTag : "*";
  let name = (words[1] ?? "").toUpperCase();
  if (name === "UID" && words[2] !== undefined) name = `UID ${words[2].toUpperCase()}`;
  return { tag, name: /^[A-Z0-9. -]*$/.test(name) ? name : "" };
}

/** Receiver limits, or a function giving the limits for the command about to start. */
export type ReceiverLimitsInput = Partial<ReceiverLimits> | (() => Partial<ReceiverLimits>);

/** The incremental command receiver; see the module comment. */
export class CommandReceiver {
  readonly #limitsInput: ReceiverLimitsInput;
  #limits: ReceiverLimits;
  readonly #literalLimit: LiteralLimit;
  readonly #input = new ByteQueue();
  readonly #line = new LineBuffer();
  #mode: Mode = { kind: "line" };
  #parts: CommandPart[] = [];
  #head: Uint8Array | null = null;
  /** The command name, read from `#head` at its first literal. */
  #name: string | null = null;
  #commandSize = 0;
  #literals = 0;
  /** Set while the rest of the current command is being discarded. */
  #rejection: Rejection | null = null;
  /** True while the current line is being discarded because it is too long. */
  #lineOverflow = false;
  #dead = false;

  constructor(literalLimit: LiteralLimit, limits: ReceiverLimitsInput = {}) {
    this.#limitsInput = limits;
    this.#limits = this.#readLimits();
    this.#literalLimit = literalLimit;
  }

  #readLimits(): ReceiverLimits {
    const input = this.#limitsInput;
    return { ...defaultReceiverLimits, ...(typeof input === "function" ? input() : input) };
  }

  /** Octets queued but not yet parsed, for the driver's flow control. */
  get buffered(): number {
    return this.#input.length;
  }

  /** True when a command is partly received (the client is between two of its fragments). */
  get midCommand(): boolean {
    return this.#mode.kind !== "line" || this.#line.length > 0 || this.#parts.length > 0;
  }

  push(data: Uint8Array): void {
    if (!this.#dead) this.#input.push(data);
  }

  /** Parses queued input until one event is ready; null when more input is needed. */
  next(): ReceiverEvent | null {
    while (!this.#dead) {
      const front = this.#input.front();
      if (front.length === 0) return null;
      const event = this.#mode.kind === "line" ? this.#stepLine(front) : this.#stepLiteral(front);
      if (event !== null) return event;
    }
    return null;
  }

  #stepLiteral(front: Uint8Array): ReceiverEvent | null {
    const mode = this.#mode;
    if (mode.kind === "literal") {
      const n = Math.min(front.length, mode.data.length - mode.filled);
      mode.data.set(front.subarray(0, n), mode.filled);
      mode.filled += n;
      this.#input.consume(n);
      if (mode.filled === mode.data.length) {
        this.#parts.push({ kind: "literal", bytes: mode.data, binary: mode.binary });
        this.#mode = { kind: "line" };
      }
    } else if (mode.kind === "skip") {
      const n = Math.min(front.length, mode.remaining);
      mode.remaining -= n;
      this.#input.consume(n);
      if (mode.remaining === 0) this.#mode = { kind: "line" };
    }
    return null;
  }

  #stepLine(front: Uint8Array): ReceiverEvent | null {
    if (!this.midCommand && this.#rejection === null && !this.#lineOverflow) {
      this.#limits = this.#readLimits();
    }
    const lf = front.indexOf(LF);
    const chunk = lf < 0 ? front : front.subarray(0, lf);
    this.#input.consume(lf < 0 ? front.length : lf + 1);
    this.#appendLine(chunk);
    if (lf < 0) return null;
    return this.#endOfLine();
  }

  #appendLine(chunk: Uint8Array): void {
    if (this.#lineOverflow || this.#rejection !== null) {
      this.#line.append(chunk.subarray(Math.max(0, chunk.length - TAIL)));
      this.#line.keepTail(TAIL);
      return;
    }
    if (this.#line.length + chunk.length > this.#limits.maxLineLength) {
      this.#captureHead(chunk);
      this.#lineOverflow = true;
      this.#reject({ status: "BAD", code: null, text: "Command line too long" });
      this.#appendLine(chunk);
      return;
    }
    this.#line.append(chunk);
  }

  #captureHead(extra: Uint8Array): void {
    if (this.#head !== null) return;
    const have = this.#line.view();
    const head = new Uint8Array(Math.min(HEAD, have.length + extra.length));
    head.set(have.subarray(0, head.length));
    if (have.length < head.length) {
      head.set(extra.subarray(0, head.length - have.length), have.length);
    }
    this.#head = head;
  }

  #reject(rejection: Rejection): void {
    if (this.#rejection === null) this.#rejection = rejection;
    this.#parts = [];
  }

  #endOfLine(): ReceiverEvent | null {
    if (this.#head === null) this.#captureHead(new Uint8Array(0));
    let line = this.#line.take();
    if (line.length > 0 && line[line.length - 1] === CR) line = line.subarray(0, line.length - 1);
    this.#lineOverflow = false;
    const marker = findLiteralMarker(line);
    this.#commandSize += line.length + 2;
    if (this.#rejection === null) {
      if (this.#commandSize > this.#limits.maxCommandSize) {
        this.#reject({ status: "BAD", code: null, text: "Command too long" });
      } else {
        this.#parts.push({
          kind: "text",
          bytes: marker === null ? line : line.subarray(0, marker.at),
        });
      }
    }
    if (marker === null) return this.#finishCommand();
    return this.#startLiteral(marker);
  }

  #startLiteral(marker: LiteralMarker): ReceiverEvent | null {
    this.#literals++;
    // Skipping a refused command's literals one by one costs work per literal, so a command far
    // beyond the limit (a flood of tiny literals) ends the connection instead.
    if (this.#literals > this.#limits.maxLiteralsPerCommand * FLOOD_FACTOR) {
      this.#dead = true;
      return { kind: "fatal", text: "Too many literals" };
    }
    if (this.#rejection === null) {
      // Decoded once per command: a command may announce a great many literals.
      this.#name ??= peekTagAndName(this.#head ?? new Uint8Array(0)).name;
      const limit = this.#literalLimit(this.#name);
      if (this.#literals > this.#limits.maxLiteralsPerCommand) {
        this.#reject({ status: "BAD", code: null, text: "Too many literals" });
      } else if (marker.size > limit) {
        this.#reject({ status: "NO", code: "TOOBIG", text: "Literal too large" });
      } else if (this.#commandSize + marker.size > this.#limits.maxCommandSize) {
        this.#reject({ status: "NO", code: "TOOBIG", text: "Command too large" });
      }
    }
    if (this.#rejection !== null) {
      // A refused synchronizing literal is never sent (RFC 9051, Section 4.3): the command ends.
      if (marker.synchronizing) return this.#finishCommand();
      // RFC 7888, Section 4: read and discard the non-synchronizing literal, then answer BAD.
      if (marker.size > this.#limits.maxLiteralSkip) {
        this.#dead = true;
        return { kind: "fatal", text: "Literal too large" };
      }
      this.#commandSize += marker.size;
      this.#mode = { kind: "skip", remaining: marker.size };
      return null;
    }
    this.#commandSize += marker.size;
    this.#mode = {
      kind: "literal",
      data: new Uint8Array(marker.size),
      filled: 0,
      binary: marker.binary,
    };
    if (marker.size === 0) {
      this.#parts.push({ kind: "literal", bytes: new Uint8Array(0), binary: marker.binary });
      this.#mode = { kind: "line" };
    }
    return marker.synchronizing ? { kind: "continue" } : null;
  }

  #finishCommand(): ReceiverEvent {
    const rejection = this.#rejection;
    const parts = this.#parts;
    const head = this.#head ?? new Uint8Array(0);
    this.#parts = [];
    this.#head = null;
    this.#name = null;
    this.#commandSize = 0;
    this.#literals = 0;
    this.#rejection = null;
    this.#mode = { kind: "line" };
    if (rejection !== null) {
      return { kind: "reject", tag: peekTagAndName(head).tag, ...rejection };
    }
    return { kind: "command", command: { parts } };
  }
}
