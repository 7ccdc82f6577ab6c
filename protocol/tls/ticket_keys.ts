/**
 * Rotating keys that seal session tickets: TLS 1.2 tickets (RFC 5077) now, and the TLS 1.3
 * PSK tickets later (RFC 8446, Section 4.6.1), so that one ring serves both.
 *
 * A ticket is `key_name(16) || nonce(12) || ChaCha20-Poly1305(state) || tag(16)`, with the
 * key name as additional data (the layout RFC 5077, Section 4 recommends, with an AEAD in place
 * of CBC + HMAC). ChaCha20-Poly1305 rather than AES-256-GCM (same key, nonce and tag sizes):
 * the default provider seals a ticket of about 120 bytes in WebAssembly in about 2 µs, where
 * node:crypto's AES-256-GCM took 6-8 µs, and a handshake seals two (a login a third, the
 * vouched one). A new key is made every `keyLifetimeMs`; the last `count` keys still open
 * tickets, so a ticket lives at most `count * keyLifetimeMs`. Keys live only in memory: a
 * restart invalidates every ticket, which costs a full handshake and nothing else.
 *
 * Clock and randomness are injected so that rotation is testable without waiting.
 *
 * With a `secret`, the keys are derived from it per period of `keyLifetimeMs` since the epoch
 * (HMAC-SHA256 of the period number) instead of drawn at random: every holder of the secret
 * (the Workers of one server) then seals and opens with the same ring at the same time.
 *
 * Each key has a twin, with its own name and AEAD key, for vouched tickets: those a TLS 1.3
 * server sends after the application vouched for the peer (a login). Its name tells a vouched
 * ticket apart before any AEAD work (`openVouched`), and only a peer that logged in ever sees
 * one (a TLS 1.3 ticket travels encrypted), so a flood of other tickets costs a name compare.
 */
import type { Aead, CryptoProvider } from "../crypto/provider.ts";
import { constantTimeEqual } from "../crypto/provider.ts";

const KEY_NAME_LENGTH = 16;
const NONCE_LENGTH = 12;
const TAG_LENGTH = 16;
/** The smallest well-formed ticket: name, nonce and tag around an empty state. */
export const MIN_TICKET_LENGTH = KEY_NAME_LENGTH + NONCE_LENGTH + TAG_LENGTH;
const EMPTY = new Uint8Array(0);
const TICKET_AEAD = "CHACHA20-POLY1305";

export interface TicketKeysOptions {
  readonly provider: CryptoProvider;
  /** Milliseconds since the epoch (default `Date.now`). */
  readonly now?: () => number;
  /** Random bytes (default the provider's). */
  readonly random?: (length: number) => Uint8Array;
  /** Keys kept: the current one and `count - 1` older ones that still open tickets. */
  readonly count?: number;
  /** How long a key seals new tickets before the next one takes over. */
  readonly keyLifetimeMs?: number;
  /** At least 32 random bytes shared by every instance that must open the others' tickets. */
  readonly secret?: Uint8Array;
}

interface TicketKey {
  readonly name: Uint8Array;
  readonly aead: Aead;
  /** The twin that seals vouched tickets. */
  readonly vouchedName: Uint8Array;
  readonly vouchedAead: Aead;
  readonly createdAt: number;
}

/** What `open` found: the sealed state, and whether a newer key should reissue the ticket. */
export interface OpenedTicket {
  readonly state: Uint8Array;
  /** Sealed under an older key: the server may send a fresh ticket. */
  readonly stale: boolean;
  /** Milliseconds since the ticket's key was made (an upper bound on the ticket's age). */
  readonly keyAgeMs: number;
  /** Sealed as a vouched ticket (`seal(state, true)`). */
  readonly vouched: boolean;
}

export class TicketKeys {
  readonly #provider: CryptoProvider;
  readonly #now: () => number;
  readonly #random: (length: number) => Uint8Array;
  readonly #count: number;
  readonly #keyLifetimeMs: number;
  /** Newest first. */
  #keys: TicketKey[] = [];
  readonly #secret: Uint8Array | null;

  constructor(options: TicketKeysOptions) {
    this.#provider = options.provider;
    this.#now = options.now ?? Date.now;
    this.#random = options.random ?? ((n) => options.provider.randomBytes(n));
    this.#count = options.count ?? 2;
    this.#keyLifetimeMs = options.keyLifetimeMs ?? 12 * 3600 * 1000;
    if (options.secret !== undefined && options.secret.length < 32) {
      throw new RangeError("Ticket key secret under 32 bytes");
    }
    this.#secret = options.secret?.slice() ?? null;
    if (!Number.isInteger(this.#count) || this.#count < 1 || this.#count > 16) {
      throw new RangeError("Ticket key count must be 1 to 16");
    }
    if (!(this.#keyLifetimeMs >= 1000)) throw new RangeError("Ticket key lifetime under 1s");
  }

  /** The longest a ticket stays valid, in seconds (the RFC 5077 lifetime hint). */
  get ticketLifetimeSeconds(): number {
    return Math.floor((this.#count * this.#keyLifetimeMs) / 1000);
  }

  /** Makes a new key when the current one is due, and forgets keys past the ring. */
  #rotate(now: number): void {
    if (this.#secret !== null) return this.#derive(now);
    const newest = this.#keys[0];
    if (newest === undefined || now - newest.createdAt >= this.#keyLifetimeMs) {
      const key = this.#random(32);
      const name = this.#random(KEY_NAME_LENGTH);
      const vouchedKey = this.#random(32);
      this.#keys.unshift({
        name,
        aead: this.#provider.createAead(TICKET_AEAD, key),
        vouchedName: this.#random(KEY_NAME_LENGTH),
        vouchedAead: this.#provider.createAead(TICKET_AEAD, vouchedKey),
        createdAt: now,
      });
      key.fill(0);
      vouchedKey.fill(0);
    }
    const horizon = now - this.#count * this.#keyLifetimeMs;
    this.#keys = this.#keys.slice(0, this.#count).filter((k) => k.createdAt > horizon);
  }

  /** The ring of the period `now` falls in and the `count - 1` before it, from the secret. */
  #derive(now: number): void {
    const period = Math.floor(now / this.#keyLifetimeMs);
    const start = period * this.#keyLifetimeMs;
    if (this.#keys[0]?.createdAt === start) return;
    const keys: TicketKey[] = [];
    for (let p = period; p > period - this.#count && p >= 0; p--) {
      const derive = (kind: string) =>
        this.#provider.hmac(
          "SHA-256",
          this.#secret!,
          new TextEncoder().encode(`postern ticket ${kind} ${p}`),
        );
      const key = derive("key");
      const vouchedKey = derive("vouched key");
      keys.push({
        name: derive("name").subarray(0, KEY_NAME_LENGTH),
        aead: this.#provider.createAead(TICKET_AEAD, key),
        vouchedName: derive("vouched name").subarray(0, KEY_NAME_LENGTH),
        vouchedAead: this.#provider.createAead(TICKET_AEAD, vouchedKey),
        createdAt: p * this.#keyLifetimeMs,
      });
      key.fill(0);
      vouchedKey.fill(0);
    }
    this.#keys = keys;
  }

  /** Seals a session state under the current key (its vouched twin when `vouched`). */
  seal(state: Uint8Array, vouched = false): Uint8Array {
    this.#rotate(this.#now());
    const key = this.#keys[0]!;
    const name = vouched ? key.vouchedName : key.name;
    const nonce = this.#random(NONCE_LENGTH);
    // Sealed straight into the ticket: one buffer, no copy of the ciphertext.
    const out = new Uint8Array(MIN_TICKET_LENGTH + state.length);
    out.set(name, 0);
    out.set(nonce, KEY_NAME_LENGTH);
    (vouched ? key.vouchedAead : key.aead)
      .sealInto(nonce, name, state, EMPTY, out, KEY_NAME_LENGTH + NONCE_LENGTH);
    return out;
  }

  /** Opens a ticket; null when it is malformed, forged, or its key has been retired. */
  open(ticket: Uint8Array): OpenedTicket | null {
    return this.#open(ticket, false) ?? this.#open(ticket, true);
  }

  /**
   * Opens a vouched ticket; null for any other ticket, at the cost of comparing key names only
   * (no AEAD work) unless its name is a vouched key's.
   */
  openVouched(ticket: Uint8Array): OpenedTicket | null {
    return this.#open(ticket, true);
  }

  #open(ticket: Uint8Array, vouched: boolean): OpenedTicket | null {
    if (ticket.length < MIN_TICKET_LENGTH) return null;
    const now = this.#now();
    this.#rotate(now);
    const name = ticket.subarray(0, KEY_NAME_LENGTH);
    const index = this.#keys.findIndex((k) =>
      constantTimeEqual(vouched ? k.vouchedName : k.name, name)
    );
    if (index < 0) return null;
    const key = this.#keys[index]!;
    const state = (vouched ? key.vouchedAead : key.aead).open(
      ticket.subarray(KEY_NAME_LENGTH, KEY_NAME_LENGTH + NONCE_LENGTH),
      name,
      ticket.subarray(KEY_NAME_LENGTH + NONCE_LENGTH),
    );
    if (state === null) return null;
    return { state, stale: index > 0, keyAgeMs: now - key.createdAt, vouched };
  }
}

export { TAG_LENGTH as TICKET_TAG_LENGTH };
