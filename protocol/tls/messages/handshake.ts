/**
 * Handshake message framing (RFC 8446, Section 4): the 4-byte header, and reassembly of
 * messages fragmented over records or coalesced in one record (Section 5.1).
 */
import { TlsAlert } from "../alert.ts";
import { encoded, type Writer } from "../codec.ts";
import { HandshakeType, MAX_HANDSHAKE_MESSAGE } from "../wire.ts";

/** One complete handshake message: its type, body, and the encoded bytes for the transcript. */
export interface HandshakeMessage {
  readonly type: number;
  readonly body: Uint8Array;
  readonly encoded: Uint8Array;
}

/** Frames a handshake message body with its header. */
export function writeHandshake(type: HandshakeType, body: (w: Writer) => void): Uint8Array {
  return encoded((w) => w.u8(type).lengthPrefixed(3, body));
}

/**
 * The largest body a message of `type` may have now, or -1 when that type is not expected at
 * all. Lets each state keep its own tight limit (RFC 8446 leaves limits to implementations).
 */
export type HandshakeLimit = (type: number) => number;

/** The default limit: any type, at most `MAX_HANDSHAKE_MESSAGE` bytes. */
export const anyHandshakeMessage: HandshakeLimit = () => MAX_HANDSHAKE_MESSAGE;

/**
 * Reassembles handshake messages from record fragments. The type and declared length are
 * checked as soon as the 4-byte header is in, before the body is buffered: an unexpected type
 * is `unexpected_message` (whatever its length, as OpenSSL's state machine does), then a
 * length over the type's limit is `decode_error`. So a peer cannot make us hold more than
 * the limit of a message we actually expect.
 */
const EMPTY = new Uint8Array(0);

export class HandshakeJoiner {
  #buf: Uint8Array = EMPTY;
  #start = 0;
  #end = 0;
  readonly #limit: HandshakeLimit;

  constructor(limit: HandshakeLimit = anyHandshakeMessage) {
    this.#limit = limit;
  }

  /** True when a message is partly received (a key change must not happen then). */
  get pending(): boolean {
    return this.#end > this.#start;
  }

  /**
   * Adds the fragment of one handshake record. The buffer grows by doubling, so a message
   * sent one byte per record costs linear time, not quadratic.
   */
  push(fragment: Uint8Array): void {
    if (fragment.length === 0) {
      throw new TlsAlert("unexpected_message", "Empty handshake record");
    }
    const live = this.#end - this.#start;
    if (this.#end + fragment.length > this.#buf.length) {
      let cap = Math.max(256, this.#buf.length);
      while (cap < live + fragment.length) cap *= 2;
      const next = cap === this.#buf.length ? this.#buf : new Uint8Array(cap);
      next.set(this.#buf.subarray(this.#start, this.#end), 0);
      this.#buf = next;
      this.#start = 0;
      this.#end = live;
    }
    this.#buf.set(fragment, this.#end);
    this.#end += fragment.length;
    this.#declaredLength();
  }

  /** The body length of the message at the front, checked against the cap; -1 if unknown. */
  #declaredLength(): number {
    if (this.#end - this.#start < 4) return -1;
    const b = this.#buf;
    const s = this.#start;
    const length = (b[s + 1]! << 16) | (b[s + 2]! << 8) | b[s + 3]!;
    const limit = this.#limit(b[s]!);
    if (limit < 0) {
      throw new TlsAlert("unexpected_message", `Unexpected handshake message type ${b[s]}`);
    }
    if (length > limit) {
      throw new TlsAlert("decode_error", "Handshake message exceeds the size limit");
    }
    return length;
  }

  /** The next complete message (a copy, safe to keep), or null. */
  next(): HandshakeMessage | null {
    const length = this.#declaredLength();
    if (length < 0 || this.#end - this.#start < 4 + length) return null;
    const encoded = this.#buf.slice(this.#start, this.#start + 4 + length);
    this.#start += 4 + length;
    if (this.#start === this.#end) {
      // Nothing partial is held: let the buffer go (after the handshake a connection rarely
      // sees another handshake message, and idle connections are many).
      this.#start = this.#end = 0;
      this.#buf = EMPTY;
    }
    return { type: encoded[0]!, body: encoded.subarray(4), encoded };
  }
}
