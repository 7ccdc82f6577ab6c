/**
 * The TLS 1.3 record layer (RFC 8446, Section 5): deframing of a byte stream into records,
 * fragmentation of outgoing data, and AEAD record protection with per-record nonces.
 */
import type { Aead, CryptoProvider } from "../crypto/provider.ts";
import { TlsAlert } from "./alert.ts";
import type { KeyStage, TrafficKeys } from "./key_schedule.ts";
import { ContentType, MAX_CIPHERTEXT, MAX_PLAINTEXT, type Suite, TLS12 } from "./wire.ts";

/** One record as received: outer content type and fragment (a view into the stream buffer). */
export interface TlsRecord {
  readonly type: ContentType;
  readonly header: Uint8Array;
  readonly fragment: Uint8Array;
}

const HEADER_LENGTH = 5;

function isContentType(v: number): v is ContentType {
  return v >= ContentType.change_cipher_spec && v <= ContentType.application_data;
}

const NO_BYTES = new Uint8Array(0);

/**
 * Splits a byte stream into records, whether records arrive split across reads or several in
 * one read (RFC 8446, Section 5.1). The length is checked against the ciphertext limit as soon
 * as the header is complete, before the body is buffered.
 */
export class RecordDeframer {
  /** Empty (shared, never written: its length is 0) until the first push. */
  #buf = NO_BYTES;
  #start = 0;
  #end = 0;

  /** Bytes received but not yet returned as records. */
  get buffered(): number {
    return this.#end - this.#start;
  }

  push(data: Uint8Array): void {
    if (data.length === 0) return;
    if (this.#end + data.length > this.#buf.length) {
      const live = this.#end - this.#start;
      let cap = Math.max(this.#buf.length, 1024);
      while (cap < live + data.length) cap *= 2;
      const next = cap === this.#buf.length ? this.#buf : new Uint8Array(cap);
      next.set(this.#buf.subarray(this.#start, this.#end), 0);
      this.#buf = next;
      this.#start = 0;
      this.#end = live;
    }
    this.#buf.set(data, this.#end);
    this.#end += data.length;
  }

  /**
   * The next complete record, or null when more bytes are needed. The returned views stay
   * valid until the next `push`.
   */
  next(): TlsRecord | null {
    const avail = this.#end - this.#start;
    if (avail < HEADER_LENGTH) return null;
    const b = this.#buf;
    const s = this.#start;
    const type = b[s]!;
    if (!isContentType(type)) {
      throw new TlsAlert("unexpected_message", "Unknown record content type");
    }
    const length = (b[s + 3]! << 8) | b[s + 4]!;
    if (length > MAX_CIPHERTEXT) {
      throw new TlsAlert("record_overflow", "Record longer than 2^14+256 bytes");
    }
    if (avail < HEADER_LENGTH + length) return null;
    this.#start += HEADER_LENGTH + length;
    return {
      type,
      header: b.subarray(s, s + HEADER_LENGTH),
      fragment: b.subarray(s + HEADER_LENGTH, s + HEADER_LENGTH + length),
    };
  }
}

/** Encodes one unprotected record (RFC 8446, Section 5.1). */
export function writePlaintextRecord(type: ContentType, fragment: Uint8Array): Uint8Array {
  const out = new Uint8Array(HEADER_LENGTH + fragment.length);
  writePlaintextRecordInto(type, fragment, out, 0);
  return out;
}

/** Writes one unprotected record into `out` at `offset`; returns its length. */
export function writePlaintextRecordInto(
  type: ContentType,
  fragment: Uint8Array,
  out: Uint8Array,
  offset: number,
): number {
  if (fragment.length > MAX_PLAINTEXT) throw new RangeError("Record fragment too long");
  out[offset] = type;
  out[offset + 1] = TLS12 >> 8;
  out[offset + 2] = TLS12 & 0xff;
  out[offset + 3] = fragment.length >> 8;
  out[offset + 4] = fragment.length & 0xff;
  out.set(fragment, offset + HEADER_LENGTH);
  return HEADER_LENGTH + fragment.length;
}

/** The one-byte TLSInnerPlaintext trailer (the true content type) of each type. */
const TRAILERS: Readonly<Record<ContentType, Uint8Array>> = {
  [ContentType.change_cipher_spec]: Uint8Array.of(ContentType.change_cipher_spec),
  [ContentType.alert]: Uint8Array.of(ContentType.alert),
  [ContentType.handshake]: Uint8Array.of(ContentType.handshake),
  [ContentType.application_data]: Uint8Array.of(ContentType.application_data),
};

/** A decrypted record: its true content type and content without padding. */
export interface OpenedRecord {
  readonly type: ContentType;
  readonly content: Uint8Array;
}

/**
 * Every record nonce is computed here just before its AEAD call, which reads it during the
 * call only (the nonce is public): one buffer for all keys instead of one per key.
 */
const NONCE_SCRATCH = new Uint8Array(12);

/** The largest sequence number we use; records beyond it are refused, never wrapped. */
export const MAX_SEQUENCE = Number.MAX_SAFE_INTEGER;

/**
 * AEAD protection of one direction under one traffic key (RFC 8446, Section 5.2). The nonce is
 * the IV XOR the 64-bit record sequence number (Section 5.3).
 */
export class RecordProtection<S extends KeyStage = KeyStage> {
  readonly stage: S;
  readonly #aead: Aead;
  readonly #iv: Uint8Array;
  readonly #nonce: Uint8Array;
  readonly #sequenceLimit: number;
  #seq = 0;

  constructor(
    provider: CryptoProvider,
    suite: Suite,
    keys: TrafficKeys<S>,
    sequenceLimit: number = MAX_SEQUENCE,
  ) {
    this.stage = keys.stage;
    this.#aead = provider.createAead(suite.aead, keys.key);
    this.#iv = keys.iv;
    this.#nonce = keys.iv.length === NONCE_SCRATCH.length
      ? NONCE_SCRATCH
      : new Uint8Array(keys.iv.length);
    this.#sequenceLimit = Math.min(sequenceLimit, MAX_SEQUENCE);
  }

  /** Records protected or opened so far under this key. */
  get sequence(): number {
    return this.#seq;
  }

  /**
   * The nonce of the next record. The sequence number is taken only once its AEAD call has
   * returned: an AEAD that throws leaves no gap, so the alert sealed after it stays readable.
   */
  #nextNonce(): Uint8Array {
    if (this.#seq >= this.#sequenceLimit) {
      throw new TlsAlert("internal_error", "Record sequence number exhausted");
    }
    return this.#nonceFor(this.#seq);
  }

  #nonceFor(seq: number): Uint8Array {
    const n = this.#nonce;
    n.set(this.#iv);
    const hi = Math.floor(seq / 2 ** 32);
    const lo = seq >>> 0;
    const l = n.length;
    n[l - 8]! ^= hi >>> 24;
    n[l - 7]! ^= (hi >>> 16) & 0xff;
    n[l - 6]! ^= (hi >>> 8) & 0xff;
    n[l - 5]! ^= hi & 0xff;
    n[l - 4]! ^= lo >>> 24;
    n[l - 3]! ^= (lo >>> 16) & 0xff;
    n[l - 2]! ^= (lo >>> 8) & 0xff;
    n[l - 1]! ^= lo & 0xff;
    return n;
  }

  /**
   * Protects `content` of true type `type` into a complete application_data record
   * (TLSInnerPlaintext with `padding` zero bytes).
   */
  seal(type: ContentType, content: Uint8Array, padding = 0): Uint8Array {
    if (type === ContentType.application_data && this.stage !== "application") {
      throw new TlsAlert("internal_error", "Application data under handshake keys");
    }
    if (content.length + padding > MAX_PLAINTEXT) throw new RangeError("Record content too long");
    if (padding === 0) {
      // One buffer for the whole record: the content is sealed straight into it.
      const out = new Uint8Array(this.sealedLength(content.length));
      this.sealInto(type, content, out, 0);
      return out;
    }
    const inner = new Uint8Array(content.length + 1 + padding);
    inner.set(content);
    inner[content.length] = type;
    const length = inner.length + this.#aead.tagLength;
    const header = new Uint8Array([
      ContentType.application_data,
      TLS12 >> 8,
      TLS12 & 0xff,
      length >> 8,
      length & 0xff,
    ]);
    const sealed = this.#aead.seal(this.#nextNonce(), header, inner);
    this.#seq++;
    const out = new Uint8Array(HEADER_LENGTH + sealed.length);
    out.set(header);
    out.set(sealed, HEADER_LENGTH);
    return out;
  }

  /** The bytes of the record `seal` makes of `contentLength` bytes, header included. */
  sealedLength(contentLength: number): number {
    return HEADER_LENGTH + contentLength + 1 + this.#aead.tagLength;
  }

  /**
   * Protects `content` of true type `type` as `seal` does, but writes the record into `out` at
   * `offset` (`sealedLength(content.length)` bytes) without copying `content` first: a large
   * write becomes one buffer of many records.
   */
  sealInto(type: ContentType, content: Uint8Array, out: Uint8Array, offset: number): number {
    if (type === ContentType.application_data && this.stage !== "application") {
      throw new TlsAlert("internal_error", "Application data under handshake keys");
    }
    if (content.length > MAX_PLAINTEXT) throw new RangeError("Record content too long");
    const length = content.length + 1 + this.#aead.tagLength;
    const header = out.subarray(offset, offset + HEADER_LENGTH);
    header[0] = ContentType.application_data;
    header[1] = TLS12 >> 8;
    header[2] = TLS12 & 0xff;
    header[3] = length >> 8;
    header[4] = length & 0xff;
    const trailer = TRAILERS[type];
    this.#aead.sealInto(
      this.#nextNonce(),
      header,
      content,
      trailer,
      out,
      offset + HEADER_LENGTH,
    );
    this.#seq++;
    return HEADER_LENGTH + length;
  }

  /**
   * Protects application data. Only a protection built from application traffic keys has this
   * method at compile time, so handshake keys can never seal application data.
   */
  sealData(this: RecordProtection<"application">, content: Uint8Array): Uint8Array {
    return this.seal(ContentType.application_data, content);
  }

  /** Opens a protected record; its outer type must be application_data. */
  open(record: TlsRecord): OpenedRecord {
    const opened = this.tryOpen(record);
    if (opened === null) throw new TlsAlert("bad_record_mac", "Record authentication failed");
    return opened;
  }

  /**
   * Opens a protected record, or returns null (without consuming a sequence number) when it
   * does not authenticate. Malformed inner plaintext still throws.
   */
  tryOpen(record: TlsRecord): OpenedRecord | null {
    const nonce = this.#nextNonce();
    const inner = this.#aead.open(nonce, record.header, record.fragment);
    if (inner === null) return null;
    this.#seq++;
    if (inner.length > MAX_PLAINTEXT + 1) {
      throw new TlsAlert("record_overflow", "Record plaintext longer than 2^14 bytes");
    }
    let i = inner.length - 1;
    while (i >= 0 && inner[i] === 0) i--;
    if (i < 0) throw new TlsAlert("unexpected_message", "Record has no content type");
    const type = inner[i]!;
    if (
      type !== ContentType.handshake && type !== ContentType.alert &&
      type !== ContentType.application_data
    ) {
      throw new TlsAlert("unexpected_message", "Unexpected inner content type");
    }
    return { type, content: inner.subarray(0, i) };
  }
}
