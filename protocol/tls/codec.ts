/**
 * Bounds-checked byte codecs for the TLS presentation language (RFC 8446, Section 3).
 *
 * Every decoding failure is a `decode_error` alert: a length that overruns its container,
 * trailing data, or a vector whose length is outside its declared bounds.
 */
import { concatBytes } from "../bytes.ts";
import { TlsAlert } from "./alert.ts";

/** A cursor over a byte string; `take()` returns views, never copies. */
export class Reader {
  readonly #bytes: Uint8Array;
  #offset = 0;
  readonly #what: string;

  constructor(bytes: Uint8Array, what = "message") {
    this.#bytes = bytes;
    this.#what = what;
  }

  get remaining(): number {
    return this.#bytes.length - this.#offset;
  }

  get offset(): number {
    return this.#offset;
  }

  #need(n: number): void {
    if (n > this.remaining) {
      throw new TlsAlert("decode_error", `Cannot decode ${this.#what}: truncated`);
    }
  }

  u8(): number {
    this.#need(1);
    return this.#bytes[this.#offset++]!;
  }

  u16(): number {
    this.#need(2);
    const b = this.#bytes;
    const v = (b[this.#offset]! << 8) | b[this.#offset + 1]!;
    this.#offset += 2;
    return v;
  }

  u24(): number {
    this.#need(3);
    const b = this.#bytes;
    const v = (b[this.#offset]! << 16) | (b[this.#offset + 1]! << 8) | b[this.#offset + 2]!;
    this.#offset += 3;
    return v;
  }

  /** Reads an unsigned 32-bit big-endian integer. */
  u32(): number {
    return this.u16() * 0x10000 + this.u16();
  }

  /** Reads an unsigned big-endian integer of 1 to 3 bytes. */
  uint(size: 1 | 2 | 3): number {
    return size === 1 ? this.u8() : size === 2 ? this.u16() : this.u24();
  }

  /** A view of the next `n` bytes. */
  take(n: number): Uint8Array {
    this.#need(n);
    const view = this.#bytes.subarray(this.#offset, this.#offset + n);
    this.#offset += n;
    return view;
  }

  /** A view of all remaining bytes. */
  rest(): Uint8Array {
    return this.take(this.remaining);
  }

  /**
   * Reads a vector with a `size`-byte length prefix and returns its body as a view.
   * `min`/`max` are the vector's declared bounds in bytes.
   */
  vec(size: 1 | 2 | 3, min = 0, max = Infinity): Uint8Array {
    const n = this.uint(size);
    if (n < min || n > max) {
      throw new TlsAlert("decode_error", `Cannot decode ${this.#what}: vector length out of range`);
    }
    return this.take(n);
  }

  /** Opens a length-prefixed vector as a nested reader. */
  sub(size: 1 | 2 | 3, min = 0, max = Infinity): Reader {
    return new Reader(this.vec(size, min, max), this.#what);
  }

  /** Rejects trailing data. */
  end(): void {
    if (this.remaining !== 0) {
      throw new TlsAlert("decode_error", `Cannot decode ${this.#what}: trailing data`);
    }
  }
}

/** A growable byte sink with back-patched length prefixes. */
export class Writer {
  #buf: Uint8Array;
  #len = 0;

  constructor(initialCapacity = 256) {
    this.#buf = new Uint8Array(initialCapacity);
  }

  get length(): number {
    return this.#len;
  }

  #reserve(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    let cap = this.#buf.length * 2;
    while (cap < this.#len + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
  }

  u8(v: number): this {
    this.#reserve(1);
    this.#buf[this.#len++] = v & 0xff;
    return this;
  }

  u16(v: number): this {
    this.#reserve(2);
    this.#buf[this.#len++] = (v >>> 8) & 0xff;
    this.#buf[this.#len++] = v & 0xff;
    return this;
  }

  u24(v: number): this {
    this.#reserve(3);
    this.#buf[this.#len++] = (v >>> 16) & 0xff;
    this.#buf[this.#len++] = (v >>> 8) & 0xff;
    this.#buf[this.#len++] = v & 0xff;
    return this;
  }

  u32(v: number): this {
    return this.u16(Math.floor(v / 0x10000) & 0xffff).u16(v & 0xffff);
  }

  uint(size: 1 | 2 | 3, v: number): this {
    return size === 1 ? this.u8(v) : size === 2 ? this.u16(v) : this.u24(v);
  }

  bytes(data: Uint8Array): this {
    this.#reserve(data.length);
    this.#buf.set(data, this.#len);
    this.#len += data.length;
    return this;
  }

  /** Writes a `size`-byte length prefix, runs `body`, then patches the prefix. */
  lengthPrefixed(size: 1 | 2 | 3, body: (w: this) => void): this {
    this.#reserve(size);
    const at = this.#len;
    this.#len += size;
    body(this);
    const n = this.#len - at - size;
    if (n >= 2 ** (8 * size)) throw new RangeError("Vector too long for its length prefix");
    for (let i = size - 1, v = n; i >= 0; i--, v >>>= 8) this.#buf[at + i] = v & 0xff;
    return this;
  }

  /** Writes `data` as a vector with a `size`-byte length prefix. */
  vec(size: 1 | 2 | 3, data: Uint8Array): this {
    return this.lengthPrefixed(size, (w) => w.bytes(data));
  }

  /** A view of the bytes written from `start` on, valid until the writer grows or is cleared. */
  view(start = 0): Uint8Array {
    return this.#buf.subarray(start, this.#len);
  }

  /** The bytes written so far (a copy of exactly that length). */
  finish(): Uint8Array {
    return this.#buf.slice(0, this.#len);
  }

  /** Empties the writer for reuse: what it held is zeroed (it may be key material). */
  clear(): void {
    if (this.#buf.length > REUSED_WRITER_MAX) this.#buf = new Uint8Array(REUSED_WRITER_CAPACITY);
    else this.#buf.fill(0, 0, this.#len);
    this.#len = 0;
  }
}

/** The first buffer of a reused writer, and the largest one kept for reuse. */
const REUSED_WRITER_CAPACITY = 1024;
const REUSED_WRITER_MAX = 32 * 1024;

/**
 * Writers that `encoded` lends out. A handshake encodes about a dozen messages and structures;
 * each fresh writer cost an off-heap buffer (the V8 ArrayBuffer allocator, then a sweep on a
 * background thread) besides the copy of the result. A stack, so that nested encodings each
 * get their own.
 */
const spareWriters: Writer[] = [];

/** A reused, empty writer; give it back with `returnWriter` once its bytes are no longer read. */
export function lendWriter(): Writer {
  return spareWriters.pop() ?? new Writer(REUSED_WRITER_CAPACITY);
}

/** Takes back a writer from `lendWriter`: it is cleared (zeroed) and kept for reuse. */
export function returnWriter(w: Writer): void {
  w.clear();
  if (spareWriters.length < SPARE_WRITERS) spareWriters.push(w);
}

/** Writers kept for reuse; connections borrow one while a flight is queued. */
const SPARE_WRITERS = 32;

/** Runs `body` on a reused writer and returns a copy of what it wrote. */
export function encoded(body: (w: Writer) => void): Uint8Array {
  const w = lendWriter();
  try {
    body(w);
    return w.finish();
  } finally {
    returnWriter(w);
  }
}

/** Encodes a value with a writer function into a fresh byte string. */
export function encode<T>(write: (w: Writer, x: T) => void, x: T): Uint8Array {
  return encoded((w) => write(w, x));
}

/** Concatenates byte strings. */
export function concat(...parts: readonly Uint8Array[]): Uint8Array {
  return concatBytes(parts);
}

/** ASCII bytes of a constant protocol label (labels are fixed ASCII strings in the RFC). */
export function ascii(label: string): Uint8Array {
  const out = new Uint8Array(label.length);
  for (let i = 0; i < label.length; i++) out[i] = label.charCodeAt(i) & 0x7f;
  return out;
}

/** Byte-wise equality for public values (not secrets; use `constantTimeEqual` for those). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
