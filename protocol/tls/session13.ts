/**
 * The state of a TLS 1.3 resumption ticket (RFC 8446, Section 4.6.1), as sealed with
 * `TicketKeys`, and the per-ticket use counter. Like the TLS 1.2 session it carries the
 * client's certificate chain, not a verdict: a resumption validates the chain again and the
 * driver's directory check runs again before the connection is accepted, so a ticket never
 * outlives a revocation.
 */
import { TlsAlert } from "./alert.ts";
import { encoded, Reader } from "./codec.ts";
import { TLS13 } from "./wire.ts";

export interface Session13 {
  /** The cipher suite of the connection that issued the ticket (its hash binds the PSK). */
  readonly suite: number;
  readonly psk: Uint8Array;
  /** Milliseconds since the epoch when the ticket was issued. */
  readonly createdAt: number;
  readonly ageAdd: number;
  /** A random name of this ticket, for counting its uses. */
  readonly id: Uint8Array;
  /** The client's certificate chain, leaf first; empty without client authentication. */
  readonly peerChain: readonly Uint8Array[];
  /** The server_name of the issuing connection; empty without SNI. */
  readonly serverName: Uint8Array;
  /** The ALPN protocol of the issuing connection; empty without ALPN. */
  readonly alpn: Uint8Array;
}

/** A format tag distinct from the TLS 1.2 one (0x12), so neither state is misread. */
const FORMAT = 0x13;
export const TICKET_ID_LENGTH = 16;

export function encodeSession13(s: Session13): Uint8Array {
  return encoded((w) => {
    w.u8(FORMAT).u16(TLS13).u16(s.suite).vec(1, s.psk);
    const t = Math.floor(s.createdAt);
    w.u16(Math.floor(t / 2 ** 32) & 0xffff).u32(t % 2 ** 32).u32(s.ageAdd).bytes(s.id);
    w.lengthPrefixed(3, (w) => {
      for (const der of s.peerChain) w.vec(3, der);
    });
    w.vec(2, s.serverName).vec(1, s.alpn);
  });
}

/** Decodes a ticket state; null when it is not a TLS 1.3 state in our format. */
export function decodeSession13(bytes: Uint8Array): Session13 | null {
  try {
    const r = new Reader(bytes, "ticket state");
    if (r.u8() !== FORMAT || r.u16() !== TLS13) return null;
    const suite = r.u16();
    const psk = r.vec(1, 32, 64).slice();
    const createdAt = r.u16() * 2 ** 32 + r.u32();
    const ageAdd = r.u32();
    const id = r.take(TICKET_ID_LENGTH).slice();
    const list = r.sub(3);
    const peerChain: Uint8Array[] = [];
    while (list.remaining > 0) peerChain.push(list.vec(3, 1).slice());
    const serverName = r.vec(2).slice();
    const alpn = r.vec(1).slice();
    r.end();
    return { suite, psk, createdAt, ageAdd, id, peerChain, serverName, alpn };
  } catch (e) {
    if (e instanceof TlsAlert) return null;
    throw e;
  }
}

export interface TicketUsesOptions {
  /** Resumptions allowed per ticket (default 8). */
  readonly maxUses?: number;
  /** Tickets tracked at once (default 100,000); when full, resumption fails closed. */
  readonly capacity?: number;
}

/**
 * What counts ticket uses: `TicketUses` in one process's memory, or a table that several
 * servers sharing the ticket keys share (server/workers/ticket_uses.ts).
 */
export interface TicketUseCounter {
  /** Records one use of a ticket; false when it is used up (or no more can be tracked). */
  take(id: Uint8Array, expiresAt: number, now: number): boolean;
  /**
   * Whether `take` would record a use now, without recording one: false when the ticket is
   * used up, or when it is new and no more tickets can be tracked.
   */
  usable(id: Uint8Array, now: number): boolean;
}

/**
 * Counts how often each ticket was used, so that one ticket resumes a bounded number of
 * connections. Entries expire with their ticket; memory is capped, and a full table refuses
 * new tickets (a full handshake) rather than forgetting counts.
 */
export class TicketUses implements TicketUseCounter {
  readonly maxUses: number;
  readonly #capacity: number;
  /** Ticket id (latin1) -> uses and expiry; insertion order is expiry order, near enough. */
  readonly #uses = new Map<string, { count: number; expiresAt: number }>();

  constructor(options: TicketUsesOptions = {}) {
    this.maxUses = options.maxUses ?? 8;
    this.#capacity = options.capacity ?? 100_000;
    if (!Number.isInteger(this.maxUses) || this.maxUses < 1) {
      throw new RangeError("Ticket uses must be a positive integer");
    }
  }

  /** Records one use of a ticket; false when it is used up (or the table is full). */
  take(id: Uint8Array, expiresAt: number, now: number): boolean {
    const key = String.fromCharCode(...id);
    const entry = this.#uses.get(key);
    if (entry !== undefined) {
      if (entry.count >= this.maxUses) return false;
      entry.count++;
      return true;
    }
    if (this.#uses.size >= this.#capacity) this.#prune(now);
    if (this.#uses.size >= this.#capacity) return false;
    this.#uses.set(key, { count: 1, expiresAt });
    return true;
  }

  usable(id: Uint8Array, _now: number): boolean {
    const entry = this.#uses.get(String.fromCharCode(...id));
    if (entry !== undefined) return entry.count < this.maxUses;
    // A full table may be pruned by `take`; a peek does not prune, and says no.
    return this.#uses.size < this.#capacity;
  }

  #prune(now: number): void {
    for (const [key, e] of this.#uses) {
      if (e.expiresAt <= now) this.#uses.delete(key);
    }
  }
}
