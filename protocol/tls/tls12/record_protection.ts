/**
 * TLS 1.2 AEAD record protection (RFC 5246, Section 6.2.3.3) for the two nonce constructions we
 * use: AES-GCM with a 4-byte salt and an 8-byte explicit nonce (RFC 5288, Section 3), and
 * ChaCha20-Poly1305 with a 12-byte IV XORed with the sequence number (RFC 7905, Section 2).
 *
 * The explicit GCM nonce is the record sequence number: a counter never repeats under one key,
 * and the sequence number is refused rather than wrapped.
 */
import type { Aead, CryptoProvider } from "../../crypto/provider.ts";
import { TlsAlert } from "../alert.ts";
import type { OpenedRecord, TlsRecord } from "../record_layer.ts";
import { MAX_SEQUENCE } from "../record_layer.ts";
import { ContentType, MAX_PLAINTEXT, TLS12 } from "../wire.ts";
import type { Suite12 } from "./wire12.ts";

const HEADER_LENGTH = 5;

/**
 * Most records we seal under one TLS 1.2 key. TLS 1.2 cannot change keys mid-connection (we
 * never renegotiate), so the AES-GCM confidentiality bound of RFC 8446, Section 5.5 (2^24.5
 * full-size records) ends the connection instead: about 370 GiB, far beyond any IMAP session.
 * ChaCha20-Poly1305 has no practical bound (2^53 - 1, the sequence limit).
 */
export function sealLimit(suite: Suite12): number {
  return suite.aead === "CHACHA20-POLY1305" ? MAX_SEQUENCE : Math.floor(2 ** 24.5);
}

/** One direction's protection under one key block half. */
export class RecordProtection12 {
  readonly #aead: Aead;
  readonly #fixedIv: Uint8Array;
  readonly #explicit: number;
  readonly #nonce = new Uint8Array(12);
  readonly #aad = new Uint8Array(13);
  readonly #sequenceLimit: number;
  #seq = 0;

  constructor(
    provider: CryptoProvider,
    suite: Suite12,
    key: Uint8Array,
    fixedIv: Uint8Array,
    sequenceLimit: number = MAX_SEQUENCE,
  ) {
    if (fixedIv.length !== suite.fixedIvLength) throw new RangeError("Wrong fixed IV length");
    this.#aead = provider.createAead(suite.aead, key);
    this.#fixedIv = fixedIv;
    this.#explicit = suite.explicitNonceLength;
    this.#sequenceLimit = Math.min(sequenceLimit, MAX_SEQUENCE);
  }

  /** Records protected or opened so far under this key. */
  get sequence(): number {
    return this.#seq;
  }

  /** Writes the 64-bit big-endian `seq` into `out` at `at`. */
  static #putSeq(out: Uint8Array, at: number, seq: number): void {
    const hi = Math.floor(seq / 2 ** 32);
    const lo = seq >>> 0;
    out[at] = hi >>> 24;
    out[at + 1] = (hi >>> 16) & 0xff;
    out[at + 2] = (hi >>> 8) & 0xff;
    out[at + 3] = hi & 0xff;
    out[at + 4] = lo >>> 24;
    out[at + 5] = (lo >>> 16) & 0xff;
    out[at + 6] = (lo >>> 8) & 0xff;
    out[at + 7] = lo & 0xff;
  }

  /** additional_data = seq_num + type + version + length (RFC 5246, Section 6.2.3.3). */
  #additionalData(seq: number, type: number, length: number): Uint8Array {
    const a = this.#aad;
    RecordProtection12.#putSeq(a, 0, seq);
    a[8] = type;
    a[9] = TLS12 >> 8;
    a[10] = TLS12 & 0xff;
    a[11] = length >> 8;
    a[12] = length & 0xff;
    return a;
  }

  /** The GCM nonce salt || explicit, or the ChaCha20 IV XOR the padded sequence number. */
  #nonceFor(seq: number, explicit: Uint8Array | null): Uint8Array {
    const n = this.#nonce;
    if (this.#explicit > 0) {
      n.set(this.#fixedIv, 0);
      n.set(explicit!, 4);
      return n;
    }
    n.fill(0);
    RecordProtection12.#putSeq(n, 4, seq);
    for (let i = 0; i < 12; i++) n[i]! ^= this.#fixedIv[i]!;
    return n;
  }

  /**
   * The next record's sequence number, taken (by the caller) only once its AEAD call has
   * returned: an AEAD that throws leaves no gap, so the alert sealed after it stays readable.
   */
  #nextSequence(): number {
    if (this.#seq >= this.#sequenceLimit) {
      throw new TlsAlert("internal_error", "Record sequence number exhausted");
    }
    return this.#seq;
  }

  /** Protects one record's content into a complete record of the same content type. */
  seal(type: ContentType, content: Uint8Array): Uint8Array {
    if (content.length > MAX_PLAINTEXT) throw new RangeError("Record content too long");
    const seq = this.#nextSequence();
    let explicit: Uint8Array | null = null;
    if (this.#explicit > 0) {
      explicit = new Uint8Array(8);
      RecordProtection12.#putSeq(explicit, 0, seq);
    }
    const sealed = this.#aead.seal(
      this.#nonceFor(seq, explicit),
      this.#additionalData(seq, type, content.length),
      content,
    );
    this.#seq++;
    const length = this.#explicit + sealed.length;
    const out = new Uint8Array(HEADER_LENGTH + length);
    out[0] = type;
    out[1] = TLS12 >> 8;
    out[2] = TLS12 & 0xff;
    out[3] = length >> 8;
    out[4] = length & 0xff;
    if (explicit !== null) out.set(explicit, HEADER_LENGTH);
    out.set(sealed, HEADER_LENGTH + this.#explicit);
    return out;
  }

  /** Opens one protected record; a record that does not authenticate is bad_record_mac. */
  open(record: TlsRecord): OpenedRecord {
    const f = record.fragment;
    const tag = this.#aead.tagLength;
    if (f.length < this.#explicit + tag) {
      throw new TlsAlert("bad_record_mac", "Record too short for its AEAD");
    }
    const plaintextLength = f.length - this.#explicit - tag;
    if (plaintextLength > MAX_PLAINTEXT) {
      throw new TlsAlert("record_overflow", "Record plaintext longer than 2^14 bytes");
    }
    const seq = this.#nextSequence();
    const explicit = this.#explicit > 0 ? f.subarray(0, this.#explicit) : null;
    const content = this.#aead.open(
      this.#nonceFor(seq, explicit),
      this.#additionalData(seq, record.type, plaintextLength),
      f.subarray(this.#explicit),
    );
    if (content === null) throw new TlsAlert("bad_record_mac", "Record authentication failed");
    this.#seq++;
    return { type: record.type, content };
  }
}
