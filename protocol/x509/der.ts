/**
 * A strict DER codec (ITU-T X.690, Section 10): definite, minimal lengths only, minimal
 * INTEGERs, canonical BOOLEANs and BIT STRINGs, and no trailing bytes. Anything BER-only is
 * rejected, because a certificate's signature covers its exact encoding.
 */

/** A malformed or non-canonical DER encoding. */
export class DerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DerError";
  }
}

/** Universal tags and the tag bytes used by X.509 (X.680, Section 8.4). */
export const Tag = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  T61_STRING: 0x14,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  UNIVERSAL_STRING: 0x1c,
  BMP_STRING: 0x1e,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** Context-specific tag byte `[n]`, constructed (EXPLICIT or IMPLICIT SEQUENCE) or primitive. */
export function contextTag(n: number, constructed: boolean): number {
  return (constructed ? 0xa0 : 0x80) | n;
}

/** Largest element the reader accepts; certificates and keys are far smaller. */
export const MAX_DER_LENGTH = 1 << 20;

/** One tag-length-value element. */
export interface DerElement {
  readonly tag: number;
  /** The contents octets (a view into the input). */
  readonly value: Uint8Array;
  /** The whole encoding, tag and length included (a view into the input). */
  readonly raw: Uint8Array;
}

/** A directory string's type and decoded text. */
export interface DerString {
  readonly tag: number;
  readonly value: string;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });
const utf16be = new TextDecoder("utf-16be", { fatal: true });

/** A bounds-checked cursor over DER bytes. Every method throws `DerError` on bad input. */
export class DerReader {
  readonly #buf: Uint8Array;
  #pos = 0;

  constructor(bytes: Uint8Array) {
    if (bytes.length > MAX_DER_LENGTH) throw new DerError("DER input too large");
    this.#buf = bytes;
  }

  /** True when every byte has been consumed. */
  get done(): boolean {
    return this.#pos >= this.#buf.length;
  }

  /** The tag of the next element, or undefined at the end. */
  peekTag(): number | undefined {
    return this.#pos < this.#buf.length ? this.#buf[this.#pos] : undefined;
  }

  /** Reads the next element of any tag. */
  read(): DerElement {
    const buf = this.#buf;
    const start = this.#pos;
    if (start >= buf.length) throw new DerError("Unexpected end of DER data");
    const tag = buf[start]!;
    if ((tag & 0x1f) === 0x1f) throw new DerError("High tag numbers are not supported");
    if (start + 1 >= buf.length) throw new DerError("Truncated DER length");
    const first = buf[start + 1]!;
    let pos = start + 2;
    let length: number;
    if (first < 0x80) {
      length = first;
    } else if (first === 0x80) {
      throw new DerError("Indefinite length is not allowed in DER");
    } else {
      const count = first & 0x7f;
      if (count > 3) throw new DerError("DER length too large");
      if (pos + count > buf.length) throw new DerError("Truncated DER length");
      if (buf[pos] === 0) throw new DerError("Non-minimal DER length");
      length = 0;
      for (let i = 0; i < count; i++) length = length * 256 + buf[pos + i]!;
      pos += count;
      if (length < 0x80) throw new DerError("Non-minimal DER length");
    }
    if (length > MAX_DER_LENGTH) throw new DerError("DER length too large");
    if (length > buf.length - pos) throw new DerError("DER length runs past the end");
    this.#pos = pos + length;
    return {
      tag,
      value: buf.subarray(pos, pos + length),
      raw: buf.subarray(start, pos + length),
    };
  }

  /** Reads the next element and checks its tag. */
  expect(tag: number, what = "element"): DerElement {
    const got = this.peekTag();
    if (got !== tag) {
      throw new DerError(
        got === undefined
          ? `Missing ${what}`
          : `Expected ${what} (tag 0x${hex(tag)}), got tag 0x${hex(got)}`,
      );
    }
    return this.read();
  }

  /** Reads the next element only when it carries `tag`. */
  optional(tag: number): DerElement | undefined {
    return this.peekTag() === tag ? this.read() : undefined;
  }

  /** Opens a SEQUENCE and returns a reader over its contents. */
  sequence(what = "SEQUENCE"): DerReader {
    return new DerReader(this.expect(Tag.SEQUENCE, what).value);
  }

  /** Opens a SET and returns a reader over its contents. */
  set(what = "SET"): DerReader {
    return new DerReader(this.expect(Tag.SET, what).value);
  }

  /** Opens an EXPLICIT `[n]` tag when present. */
  optionalExplicit(n: number): DerReader | undefined {
    const el = this.optional(contextTag(n, true));
    return el === undefined ? undefined : new DerReader(el.value);
  }

  /** Reads an INTEGER as a bigint (X.690, Section 8.3). */
  integer(what = "INTEGER"): bigint {
    return integerValue(this.expect(Tag.INTEGER, what).value);
  }

  /** Reads a non-negative INTEGER that fits a JavaScript number (versions, path lengths). */
  smallInteger(what = "INTEGER"): number {
    const v = this.integer(what);
    if (v < 0n || v > 0xffffffffn) throw new DerError(`${what} out of range`);
    return Number(v);
  }

  /** Reads a BOOLEAN; DER allows only 0x00 and 0xFF (X.690, Section 11.1). */
  boolean(what = "BOOLEAN"): boolean {
    const v = this.expect(Tag.BOOLEAN, what).value;
    if (v.length !== 1 || (v[0] !== 0 && v[0] !== 0xff)) {
      throw new DerError(`Invalid DER BOOLEAN in ${what}`);
    }
    return v[0] === 0xff;
  }

  /** Reads NULL. */
  null(what = "NULL"): void {
    if (this.expect(Tag.NULL, what).value.length !== 0) throw new DerError("Invalid NULL");
  }

  /** Reads an OBJECT IDENTIFIER in dotted form. */
  oid(what = "OBJECT IDENTIFIER"): string {
    return decodeOid(this.expect(Tag.OID, what).value);
  }

  /** Reads a BIT STRING (X.690, Section 11.2: unused bits must be zero). */
  bitString(what = "BIT STRING"): BitString {
    return bitStringValue(this.expect(Tag.BIT_STRING, what).value);
  }

  /** Reads an OCTET STRING. */
  octetString(what = "OCTET STRING"): Uint8Array {
    return this.expect(Tag.OCTET_STRING, what).value;
  }

  /** Reads a UTCTime or GeneralizedTime in the forms RFC 5280, Section 4.1.2.5 allows. */
  time(what = "Time"): Date {
    const el = this.read();
    if (el.tag !== Tag.UTC_TIME && el.tag !== Tag.GENERALIZED_TIME) {
      throw new DerError(`Expected ${what}`);
    }
    return decodeTime(el.tag, el.value);
  }

  /** Rejects trailing bytes. */
  end(what = "DER structure"): void {
    if (!this.done) throw new DerError(`Trailing bytes after ${what}`);
  }
}

/** A BIT STRING's bytes and count of unused trailing bits. */
export interface BitString {
  readonly bytes: Uint8Array;
  readonly unusedBits: number;
}

function hex(n: number): string {
  return n.toString(16).padStart(2, "0");
}

/** Checks that INTEGER contents are minimal and within the size we accept. */
function checkInteger(v: Uint8Array): void {
  if (v.length === 0) throw new DerError("Empty INTEGER");
  if (v.length > 1) {
    if ((v[0] === 0x00 && v[1]! < 0x80) || (v[0] === 0xff && v[1]! >= 0x80)) {
      throw new DerError("Non-minimal INTEGER");
    }
  }
  // 16384 bits and a sign byte: the largest RSA modulus we parse.
  if (v.length > 2049) throw new DerError("INTEGER too large");
}

const HEX_BYTE = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/** Big-endian bytes as a non-negative bigint, in time linear in their length. */
export function bytesToBigint(bytes: Uint8Array): bigint {
  if (bytes.length === 0) return 0n;
  let hex = "0x";
  for (const b of bytes) hex += HEX_BYTE[b];
  return BigInt(hex);
}

/** Decodes minimal two's-complement INTEGER contents. */
export function integerValue(v: Uint8Array): bigint {
  checkInteger(v);
  let n = bytesToBigint(v);
  if (v[0]! >= 0x80) n -= 1n << BigInt(v.length * 8);
  return n;
}

/**
 * Checks minimal INTEGER contents and returns the unsigned magnitude bytes (no sign byte),
 * without building a bigint: callers cap the size first.
 */
export function unsignedIntegerBytes(v: Uint8Array): Uint8Array {
  checkInteger(v);
  if (v[0]! >= 0x80) throw new DerError("Negative INTEGER");
  return v[0] === 0 && v.length > 1 ? v.subarray(1) : v;
}

function bitStringValue(v: Uint8Array): BitString {
  if (v.length === 0) throw new DerError("Empty BIT STRING");
  const unused = v[0]!;
  if (unused > 7) throw new DerError("Invalid BIT STRING padding");
  if (v.length === 1 && unused !== 0) throw new DerError("Invalid BIT STRING padding");
  if (unused !== 0 && (v[v.length - 1]! & ((1 << unused) - 1)) !== 0) {
    throw new DerError("Non-zero BIT STRING padding bits");
  }
  return { bytes: v.subarray(1), unusedBits: unused };
}

/** Decodes OBJECT IDENTIFIER contents (X.690, Section 8.19). */
export function decodeOid(v: Uint8Array): string {
  if (v.length === 0) throw new DerError("Empty OBJECT IDENTIFIER");
  if (v.length > 128) throw new DerError("OBJECT IDENTIFIER too long");
  const arcs: bigint[] = [];
  let acc = 0n;
  let started = false;
  for (let i = 0; i < v.length; i++) {
    const b = v[i]!;
    if (!started && b === 0x80) throw new DerError("Non-minimal OBJECT IDENTIFIER arc");
    started = true;
    acc = (acc << 7n) | BigInt(b & 0x7f);
    if ((b & 0x80) === 0) {
      arcs.push(acc);
      acc = 0n;
      started = false;
    }
  }
  if (started) throw new DerError("Truncated OBJECT IDENTIFIER");
  const first = arcs[0]!;
  const head = first < 40n ? [0n, first] : first < 80n ? [1n, first - 40n] : [2n, first - 80n];
  return [...head, ...arcs.slice(1)].join(".");
}

/** Encodes a dotted OID into contents octets. */
export function encodeOid(oid: string): Uint8Array {
  const parts = oid.split(".");
  if (parts.length < 2 || parts.some((p) => !/^(0|[1-9][0-9]*)$/.test(p))) {
    throw new DerError(`Invalid OID ${oid}`);
  }
  const arcs = parts.map((p) => BigInt(p));
  if (arcs[0]! > 2n || (arcs[0]! < 2n && arcs[1]! >= 40n)) throw new DerError(`Invalid OID ${oid}`);
  const out: number[] = [];
  const values = [arcs[0]! * 40n + arcs[1]!, ...arcs.slice(2)];
  for (const value of values) {
    const groups: number[] = [];
    let x = value;
    do {
      groups.unshift(Number(x & 0x7fn));
      x >>= 7n;
    } while (x > 0n);
    for (let i = 0; i < groups.length - 1; i++) groups[i]! |= 0x80;
    out.push(...groups);
  }
  return Uint8Array.from(out);
}

const DAYS = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * Decodes a time strictly per RFC 5280, Section 4.1.2.5: UTCTime is `YYMMDDHHMMSSZ` (years
 * 1950–2049), GeneralizedTime is `YYYYMMDDHHMMSSZ`, always in UTC with seconds and no
 * fractions.
 */
export function decodeTime(tag: number, v: Uint8Array): Date {
  if (v.length > 15) throw new DerError("Invalid time value");
  const s = latin1(v);
  const utc = tag === Tag.UTC_TIME;
  const re = utc
    ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/
    : /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/;
  const m = re.exec(s);
  if (m === null) throw new DerError(`Invalid ${utc ? "UTCTime" : "GeneralizedTime"}`);
  let year = Number(m[1]);
  if (utc) year += year >= 50 ? 1900 : 2000;
  const month = Number(m[2]);
  const day = Number(m[3]);
  const hour = Number(m[4]);
  const minute = Number(m[5]);
  const second = Number(m[6]);
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  if (
    month < 1 || month > 12 || day < 1 || day > DAYS[month - 1]! ||
    (month === 2 && day === 29 && !leap) || hour > 23 || minute > 59 || second > 59
  ) {
    throw new DerError("Invalid date in time value");
  }
  const d = new Date(0);
  d.setUTCFullYear(year, month - 1, day);
  d.setUTCHours(hour, minute, second, 0);
  return d;
}

/** An incremental DER encoder. Constructed types take a callback that writes their contents. */
export class DerWriter {
  readonly #chunks: Uint8Array[] = [];
  #length = 0;

  /** Appends already-encoded bytes. */
  raw(bytes: Uint8Array): this {
    this.#chunks.push(bytes);
    this.#length += bytes.length;
    return this;
  }

  /** Appends one element with the given tag and contents. */
  tlv(tag: number, value: Uint8Array): this {
    return this.raw(encodeTlv(tag, value));
  }

  /** Appends a constructed element whose contents `build` writes. */
  constructed(tag: number, build: (w: DerWriter) => void): this {
    const inner = new DerWriter();
    build(inner);
    return this.tlv(tag, inner.bytes());
  }

  sequence(build: (w: DerWriter) => void): this {
    return this.constructed(Tag.SEQUENCE, build);
  }

  /** A SET OF; DER sorts the encoded elements (X.690, Section 11.6). */
  setOf(build: (w: DerWriter) => void): this {
    const inner = new DerWriter();
    build(inner);
    const sorted = [...inner.#chunks].sort(compareBytes);
    const out = new DerWriter();
    for (const c of sorted) out.raw(c);
    return this.tlv(Tag.SET, out.bytes());
  }

  /** An EXPLICIT `[n]` wrapper. */
  explicit(n: number, build: (w: DerWriter) => void): this {
    return this.constructed(contextTag(n, true), build);
  }

  integer(n: bigint | number): this {
    return this.tlv(Tag.INTEGER, encodeInteger(BigInt(n)));
  }

  /** An INTEGER from unsigned big-endian magnitude bytes. */
  unsignedInteger(bytes: Uint8Array): this {
    let i = 0;
    while (i < bytes.length - 1 && bytes[i] === 0) i++;
    const mag = bytes.subarray(i);
    if (mag.length === 0) return this.tlv(Tag.INTEGER, Uint8Array.of(0));
    if (mag[0]! >= 0x80) {
      const v = new Uint8Array(mag.length + 1);
      v.set(mag, 1);
      return this.tlv(Tag.INTEGER, v);
    }
    return this.tlv(Tag.INTEGER, mag);
  }

  boolean(b: boolean): this {
    return this.tlv(Tag.BOOLEAN, Uint8Array.of(b ? 0xff : 0));
  }

  null(): this {
    return this.tlv(Tag.NULL, new Uint8Array(0));
  }

  oid(oid: string): this {
    return this.tlv(Tag.OID, encodeOid(oid));
  }

  bitString(bytes: Uint8Array, unusedBits = 0): this {
    const v = new Uint8Array(bytes.length + 1);
    v[0] = unusedBits;
    v.set(bytes, 1);
    return this.tlv(Tag.BIT_STRING, v);
  }

  octetString(bytes: Uint8Array): this {
    return this.tlv(Tag.OCTET_STRING, bytes);
  }

  utf8(s: string): this {
    return this.tlv(Tag.UTF8_STRING, new TextEncoder().encode(s));
  }

  printable(s: string): this {
    if (!isPrintableString(s)) throw new DerError("Not a PrintableString");
    return this.tlv(Tag.PRINTABLE_STRING, ascii(s));
  }

  ia5(s: string): this {
    if ([...s].some((c) => c.charCodeAt(0) > 0x7f)) throw new DerError("Not an IA5String");
    return this.tlv(Tag.IA5_STRING, ascii(s));
  }

  /** A Time per RFC 5280, Section 4.1.2.5: UTCTime through 2049, GeneralizedTime after. */
  time(d: Date): this {
    const y = d.getUTCFullYear();
    const rest = [
      d.getUTCMonth() + 1,
      d.getUTCDate(),
      d.getUTCHours(),
      d.getUTCMinutes(),
      d
        .getUTCSeconds(),
    ].map((n) => String(n).padStart(2, "0")).join("");
    if (y >= 1950 && y <= 2049) {
      return this.tlv(Tag.UTC_TIME, ascii(String(y % 100).padStart(2, "0") + rest + "Z"));
    }
    if (y < 0 || y > 9999) throw new DerError("Year out of range");
    return this.tlv(Tag.GENERALIZED_TIME, ascii(String(y).padStart(4, "0") + rest + "Z"));
  }

  /** The encoded bytes so far. */
  bytes(): Uint8Array {
    const out = new Uint8Array(this.#length);
    let off = 0;
    for (const c of this.#chunks) {
      out.set(c, off);
      off += c.length;
    }
    return out;
  }
}

/** Encodes one element. */
export function encodeTlv(tag: number, value: Uint8Array): Uint8Array {
  const n = value.length;
  let header: number[];
  if (n < 0x80) header = [tag, n];
  else if (n < 0x100) header = [tag, 0x81, n];
  else if (n < 0x10000) header = [tag, 0x82, n >> 8, n & 0xff];
  else if (n < 0x1000000) header = [tag, 0x83, n >> 16, (n >> 8) & 0xff, n & 0xff];
  else throw new DerError("DER element too large");
  const out = new Uint8Array(header.length + n);
  out.set(header);
  out.set(value, header.length);
  return out;
}

/** Encodes a signed INTEGER's contents minimally. */
export function encodeInteger(n: bigint): Uint8Array {
  const bytes: number[] = [];
  let x = n;
  for (;;) {
    const b = Number(x & 0xffn);
    bytes.unshift(b);
    x >>= 8n;
    if ((x === 0n && b < 0x80) || (x === -1n && b >= 0x80)) break;
  }
  return Uint8Array.from(bytes);
}

/** Lexicographic byte order, shorter first on a common prefix. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a[i] !== b[i]) return a[i]! - b[i]!;
  }
  return a.length - b.length;
}

/** True when both byte strings are equal (not constant time; for public data only). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && compareBytes(a, b) === 0;
}

/** The PrintableString alphabet (X.680, Section 41.4). */
export function isPrintableString(s: string): boolean {
  return /^[A-Za-z0-9 '()+,\-./:=?]*$/.test(s);
}

/** Bytes as Latin-1 text (one char per byte). */
export function latin1(v: Uint8Array): string {
  let s = "";
  for (const b of v) s += String.fromCharCode(b);
  return s;
}

function ascii(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** Decodes a directory string of any X.520 string type into text. */
export function decodeString(tag: number, v: Uint8Array): string {
  try {
    switch (tag) {
      case Tag.UTF8_STRING:
        return utf8.decode(v);
      case Tag.PRINTABLE_STRING: {
        const s = latin1(v);
        if (!isPrintableString(s)) throw new DerError("Invalid PrintableString");
        return s;
      }
      case Tag.IA5_STRING:
        if (v.some((b) => b >= 0x80)) throw new DerError("Invalid IA5String");
        return latin1(v);
      case Tag.T61_STRING:
        // Legacy: treated as Latin-1, as most implementations do.
        return latin1(v);
      case Tag.BMP_STRING:
        if (v.length % 2 !== 0) throw new DerError("Invalid BMPString");
        return utf16be.decode(v);
      case Tag.UNIVERSAL_STRING: {
        if (v.length % 4 !== 0) throw new DerError("Invalid UniversalString");
        let s = "";
        for (let i = 0; i < v.length; i += 4) {
          const cp = ((v[i]! << 24) | (v[i + 1]! << 16) | (v[i + 2]! << 8) | v[i + 3]!) >>> 0;
          if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            throw new DerError("Invalid UniversalString");
          }
          s += String.fromCodePoint(cp);
        }
        return s;
      }
      default:
        throw new DerError(`Unsupported string type 0x${hex(tag)}`);
    }
  } catch (e) {
    if (e instanceof DerError) throw e;
    throw new DerError("Invalid string encoding");
  }
}

/** True for the tags `decodeString` accepts. */
export function isStringTag(tag: number): boolean {
  return tag === Tag.UTF8_STRING || tag === Tag.PRINTABLE_STRING || tag === Tag.IA5_STRING ||
    tag === Tag.T61_STRING || tag === Tag.BMP_STRING || tag === Tag.UNIVERSAL_STRING;
}

const HEX_PAIRS = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, "0"));

/**
 * Lower-case hex of bytes, as one flat string: sessions keep fingerprints and serials, and a
 * string built with `+=` stays a chain of pieces (about 1 KiB for a SHA-256 fingerprint).
 */
export function toHex(bytes: Uint8Array): string {
  const pairs = new Array<string>(bytes.length);
  for (let i = 0; i < bytes.length; i++) pairs[i] = HEX_PAIRS[bytes[i]!]!;
  return pairs.join("");
}
