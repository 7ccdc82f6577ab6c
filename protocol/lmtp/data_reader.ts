/**
 * The DATA body reader: finds the end of data (`CRLF . CRLF`), undoes dot-stuffing
 * (RFC 5321, Section 4.5.2) and enforces the size and line-length limits while streaming, so
 * that an oversized message is read to its end (keeping the command stream in step) without
 * being held in memory.
 *
 * Only `CRLF . CRLF` ends the data: a bare LF or CR never starts a line, so `LF . LF` or
 * `LF . CRLF` smuggled inside a message stays message text (the "SMTP smuggling" class of
 * bugs).
 */

import { Pacer } from "../event_loop.ts";

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;

/** Why a message was refused while it was read. */
export type DataProblem = "size" | "line";

/** What `DataReader.feed` consumed. */
export interface FeedResult {
  /** Bytes of the chunk used; the rest belongs to the next command. */
  readonly consumed: number;
  /** True once the terminating `.` line has been read. */
  readonly done: boolean;
}

export class DataReader {
  readonly #maxSize: number;
  readonly #maxLine: number;
  #parts: Uint8Array[] = [];
  #size = 0;
  #problem: DataProblem | null = null;
  /** Octets of the current line so far, CR and LF excluded. */
  #lineLength = 0;
  #atLineStart = true;
  /** 0: nothing pending; 1: `.` read at a line start; 2: `.` CR read at a line start. */
  #dot: 0 | 1 | 2 = 0;
  #lastWasCr = false;

  /** `maxSize` caps the unstuffed message; `maxLine` caps each line, CRLF excluded. */
  constructor(maxSize: number, maxLine: number) {
    this.#maxSize = maxSize;
    this.#maxLine = maxLine;
  }

  /** The first limit the message broke, or null. */
  get problem(): DataProblem | null {
    return this.#problem;
  }

  /** Octets of message read so far (after unstuffing), counted even past the limit. */
  get size(): number {
    return this.#size;
  }

  /**
   * Reads as much of `chunk` as belongs to the message. Bytes are kept in runs: only a
   * stuffed dot or the end of data breaks a run, so an ordinary chunk is copied once.
   */
  feed(chunk: Uint8Array): FeedResult {
    let i = 0;
    let run = 0;
    const n = chunk.length;
    while (i < n) {
      if (this.#dot === 1) {
        if (chunk[i] === CR) {
          // Maybe the end of data: hold the CR back until the next octet tells.
          this.#dot = 2;
          run = ++i;
          continue;
        }
        // A stuffed dot (already left out of the run): the line goes on from here.
        this.#dot = 0;
        this.#atLineStart = false;
      } else if (this.#dot === 2) {
        if (chunk[i] === LF) {
          this.#dot = 0;
          return { consumed: i + 1, done: true };
        }
        // `.` CR then something else: the dot was stuffing, the CR is text.
        this.#dot = 0;
        this.#atLineStart = false;
        this.#emit(Uint8Array.of(CR));
        this.#lineLength = 1;
        this.#lastWasCr = true;
      } else if (this.#atLineStart) {
        if (chunk[i] === DOT) {
          this.#emit(chunk.subarray(run, i));
          this.#dot = 1;
          run = ++i;
          continue;
        }
        this.#atLineStart = false;
      }
      const lf = chunk.indexOf(LF, i);
      if (lf === -1) {
        this.#lineLength += n - i;
        this.#lastWasCr = chunk[n - 1] === CR;
        this.#checkLine(this.#lineLength - (this.#lastWasCr ? 1 : 0));
        i = n;
        break;
      }
      const crlf = lf > i ? chunk[lf - 1] === CR : this.#lastWasCr;
      const lineLength = this.#lineLength + (lf - i) - (crlf ? 1 : 0);
      if (crlf) {
        this.#checkLine(lineLength);
        this.#lineLength = 0;
        this.#atLineStart = true;
      } else {
        this.#lineLength = lineLength + 1;
      }
      this.#lastWasCr = false;
      i = lf + 1;
    }
    this.#emit(chunk.subarray(run, n));
    return { consumed: n, done: false };
  }

  /**
   * The message as one array (empty once a limit was broken), joined in paced slices: a 50 MB
   * message is ~800 parts, and copying them at once would hold the event loop for ~40 ms.
   */
  take(): Promise<Uint8Array> {
    const parts = this.#parts;
    this.#parts = [];
    return joinParts(parts, parts.reduce((s, p) => s + p.length, 0));
  }

  #checkLine(length: number): void {
    if (length > this.#maxLine && this.#problem === null) {
      this.#problem = "line";
      this.#parts = [];
    }
  }

  #emit(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.#size += bytes.length;
    if (this.#problem !== null) return;
    if (this.#size > this.#maxSize) {
      this.#problem = "size";
      this.#parts = [];
      return;
    }
    // Copy: the driver may reuse its read buffer.
    this.#parts.push(bytes.slice());
  }
}

/**
 * `parts` joined into one array of `total` octets, with a yield to the event loop whenever a
 * time slice is used up (a single part is returned as it is).
 */
export async function joinParts(parts: readonly Uint8Array[], total: number): Promise<Uint8Array> {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(total);
  const pacer = new Pacer();
  let offset = 0;
  for (const p of parts) {
    if (pacer.due()) await pacer.yield();
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}
