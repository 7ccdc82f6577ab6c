/**
 * Record framing of what a peer sends, followed from outside the TLS engine to tell whether a
 * read completes a record (RFC 8446, Section 5.1; the same header in TLS 1.2).
 */

/** A record header: type, version, length (RFC 8446, Section 5.1). */
const RECORD_HEADER = 5;
/** The longest record body a peer may send: TLSCiphertext.length (RFC 8446, Section 5.2). */
const MAX_RECORD_BODY = 16384 + 256;
/** Content types a record may carry: change_cipher_spec (20) to application_data (23). */
const FIRST_TYPE = 20;
const LAST_TYPE = 23;

/**
 * Follows the record framing of what a peer sends, to tell whether a read completes a record.
 * Until one is complete the engine only buffers bytes, and a malformed header (an unknown
 * content type, a length over the limit) it rejects on sight; both cost next to nothing, so
 * such a read need not wait at the handshake gate: a slowloris client dribbling its
 * ClientHello a byte at a time, or a client sending garbage, neither queues there nor pushes
 * real handshakes back.
 */
export class RecordFraming {
  /** Bytes of the current header seen so far (0 to 5), then the body's bytes still to come. */
  #headerSeen = 0;
  readonly #header = new Uint8Array(RECORD_HEADER);
  #bodyLeft = -1;
  /** A header was malformed: the engine has failed on it, and what follows is not read. */
  #broken = false;

  /** True when `bytes` complete at least one well-formed record. */
  completes(bytes: Uint8Array): boolean {
    if (this.#broken) return false;
    let complete = false;
    let at = 0;
    while (at < bytes.length) {
      if (this.#bodyLeft < 0) {
        const take = Math.min(RECORD_HEADER - this.#headerSeen, bytes.length - at);
        this.#header.set(bytes.subarray(at, at + take), this.#headerSeen);
        this.#headerSeen += take;
        at += take;
        if (this.#headerSeen < RECORD_HEADER) break;
        this.#headerSeen = 0;
        this.#bodyLeft = (this.#header[3]! << 8) | this.#header[4]!;
        const type = this.#header[0]!;
        if (type < FIRST_TYPE || type > LAST_TYPE || this.#bodyLeft > MAX_RECORD_BODY) {
          this.#broken = true;
          return complete;
        }
      }
      const take = Math.min(this.#bodyLeft, bytes.length - at);
      this.#bodyLeft -= take;
      at += take;
      if (this.#bodyLeft === 0) {
        this.#bodyLeft = -1;
        complete = true;
      }
    }
    return complete;
  }
}
