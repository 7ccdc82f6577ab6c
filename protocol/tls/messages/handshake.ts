/**
 * Handshake message framing (RFC 8446, Section 4): the 4-byte header, and reassembly of
 * messages fragmented over records or coalesced in one record (Section 5.1).
 */
import { TlsAlert } from "../alert.ts";
import { concat, Writer } from "../codec.ts";
import { HandshakeType, MAX_HANDSHAKE_MESSAGE } from "../wire.ts";

/** One complete handshake message: its type, body, and the encoded bytes for the transcript. */
export interface HandshakeMessage {
  readonly type: number;
  readonly body: Uint8Array;
  readonly encoded: Uint8Array;
}

/** Frames a handshake message body with its header. */
export function writeHandshake(type: HandshakeType, body: (w: Writer) => void): Uint8Array {
  const w = new Writer();
  w.u8(type).lengthPrefixed(3, body);
  return w.finish();
}

/**
 * Reassembles handshake messages from record fragments. The declared length is capped before
 * any buffering, so a peer cannot make us hold more than `MAX_HANDSHAKE_MESSAGE` bytes.
 */
export class HandshakeJoiner {
  #buf: Uint8Array = new Uint8Array(0);

  /** True when a message is partly received (a key change must not happen then). */
  get pending(): boolean {
    return this.#buf.length > 0;
  }

  /** Adds the fragment of one handshake record. */
  push(fragment: Uint8Array): void {
    if (fragment.length === 0) {
      throw new TlsAlert("unexpected_message", "Empty handshake record");
    }
    this.#buf = this.#buf.length === 0 ? fragment.slice() : concat(this.#buf, fragment);
    if (this.#buf.length >= 4) this.#checkLength();
  }

  #checkLength(): void {
    const b = this.#buf;
    const length = (b[1]! << 16) | (b[2]! << 8) | b[3]!;
    if (length > MAX_HANDSHAKE_MESSAGE) {
      throw new TlsAlert("decode_error", "Handshake message exceeds the size limit");
    }
  }

  /** The next complete message, or null. */
  next(): HandshakeMessage | null {
    const b = this.#buf;
    if (b.length < 4) return null;
    this.#checkLength();
    const length = (b[1]! << 16) | (b[2]! << 8) | b[3]!;
    if (b.length < 4 + length) return null;
    const encoded = b.subarray(0, 4 + length);
    this.#buf = b.subarray(4 + length);
    return { type: b[0]!, body: encoded.subarray(4), encoded };
  }
}
