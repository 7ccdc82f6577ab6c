/**
 * The TLS 1.2 session-ID cache (RFC 5246, Section 7.4.1.2) for every Worker of a server, in a
 * SharedArrayBuffer, so that a session made in one Worker resumes in another. Sessions are
 * written, encoded, one after the other into a ring of bytes, and a direct-mapped index finds
 * the latest entry of an ID: memory is fixed at allocation, the oldest entries are overwritten
 * first, and an ID whose index slot another took is simply forgotten (a full handshake).
 * Reads and writes copy under a spin lock, so nobody sees a half-written entry.
 */
import type { SessionStore12 } from "../../protocol/tls/mod.ts";
import {
  decodeSession12,
  encodeSession12,
  type Session12,
} from "../../protocol/tls/tls12/session.ts";
import { MAX_SESSION_STATE } from "../../protocol/tls/tls12/server12.ts";
import { withSpinLock } from "./spin_lock.ts";

/**
 * Bytes before the index: the lock (Int32 at 0), then from byte 8 the ring's write position
 * and the index's slot count (two Float64).
 */
const HEADER_BYTES = 24;
/** An entry: the ID's length (1 byte), the ID (32 bytes), the state's length (4), the state. */
const ENTRY_HEAD = 1 + 32 + 4;

export interface SharedSessionsLayout {
  /** Bytes of encoded sessions held (default 16 MiB). */
  readonly ringBytes?: number;
  /** Index slots, rounded up to a power of two (default 16384). */
  readonly slots?: number;
}

/** Allocates the shared cache: its index is empty, its ring unwritten. */
export function allocateSharedSessions(layout: SharedSessionsLayout = {}): SharedArrayBuffer {
  let slots = 1;
  while (slots < (layout.slots ?? 1 << 14)) slots *= 2;
  const ring = layout.ringBytes ?? 16 * 1024 * 1024;
  if (ring < 4 * (ENTRY_HEAD + 1024)) throw new RangeError("Session ring under 4 KiB");
  const buffer = new SharedArrayBuffer(HEADER_BYTES + slots * 8 + ring);
  const meta = new Float64Array(buffer, 8, 2);
  meta[0] = 0;
  // The slot count, then the index: -1 is an empty slot.
  meta[1] = slots;
  new Float64Array(buffer, HEADER_BYTES, slots).fill(-1);
  return buffer;
}

export class SharedSessionStore implements SessionStore12 {
  readonly #lock: Int32Array;
  /** [0] is the ring's write position: bytes ever written, which only grows. */
  readonly #meta: Float64Array;
  readonly #index: Float64Array;
  readonly #ring: Uint8Array;
  readonly #lifetimeMs: number;
  readonly #now: () => number;

  constructor(
    buffer: SharedArrayBuffer,
    options: { readonly lifetimeMs?: number; readonly now?: () => number } = {},
  ) {
    this.#lock = new Int32Array(buffer, 0, 1);
    this.#meta = new Float64Array(buffer, 8, 2);
    const slots = this.#meta[1]!;
    this.#index = new Float64Array(buffer, HEADER_BYTES, slots);
    this.#ring = new Uint8Array(buffer, HEADER_BYTES + slots * 8);
    this.#lifetimeMs = options.lifetimeMs ?? 3600 * 1000;
    this.#now = options.now ?? Date.now;
  }

  put(id: Uint8Array, session: Session12): void {
    if (id.length === 0 || id.length > 32) return;
    const state = encodeSession12(session);
    const size = ENTRY_HEAD + state.length;
    if (state.length > MAX_SESSION_STATE || size > this.#ring.length / 4) return;
    const ring = this.#ring;
    this.#locked(() => {
      let position = this.#meta[0]!;
      let offset = position % ring.length;
      // An entry never wraps: the ring's tail is skipped instead.
      if (offset + size > ring.length) {
        position += ring.length - offset;
        offset = 0;
      }
      ring[offset] = id.length;
      ring.fill(0, offset + 1, offset + 33);
      ring.set(id, offset + 1);
      new DataView(ring.buffer, ring.byteOffset + offset + 33, 4).setUint32(0, state.length);
      ring.set(state, offset + ENTRY_HEAD);
      this.#index[this.#slotOf(id)] = position;
      this.#meta[0] = position + size;
    });
  }

  get(id: Uint8Array): Session12 | null {
    if (id.length === 0 || id.length > 32) return null;
    const state = this.#locked(() => {
      const at = this.#find(id);
      if (at === null) return null;
      const length = new DataView(this.#ring.buffer, this.#ring.byteOffset + at + 33, 4)
        .getUint32(0);
      return this.#ring.slice(at + ENTRY_HEAD, at + ENTRY_HEAD + length);
    });
    if (state === null) return null;
    const session = decodeSession12(state);
    if (session === null || this.#now() - session.createdAt >= this.#lifetimeMs) {
      this.delete(id);
      return null;
    }
    return session;
  }

  delete(id: Uint8Array): void {
    if (id.length === 0 || id.length > 32) return;
    this.#locked(() => {
      if (this.#find(id) !== null) this.#index[this.#slotOf(id)] = -1;
    });
  }

  /** The ring offset of the live entry of `id`, or null (call with the lock held). */
  #find(id: Uint8Array): number | null {
    const position = this.#index[this.#slotOf(id)]!;
    // Overwritten once the ring has been written round past it.
    if (position < 0 || this.#meta[0]! - position > this.#ring.length) return null;
    const at = position % this.#ring.length;
    const ring = this.#ring;
    if (ring[at] !== id.length) return null;
    let differ = 0;
    for (let i = 0; i < id.length; i++) differ |= ring[at + 1 + i]! ^ id[i]!;
    return differ === 0 ? at : null;
  }

  #slotOf(id: Uint8Array): number {
    let h = 0x811c9dc5;
    for (const b of id) h = Math.imul(h ^ b, 0x01000193);
    return (h >>> 0) & (this.#index.length - 1);
  }

  #locked<T>(body: () => T): T {
    return withSpinLock(this.#lock, body);
  }
}
