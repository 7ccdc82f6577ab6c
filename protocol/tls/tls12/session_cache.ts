/**
 * The bounded session-ID cache of TLS 1.2 (RFC 5246, Section 7.4.1.2), the fallback for clients
 * without session tickets. The oldest entries go first when the cache holds `maxEntries` sessions
 * or `maxBytes` of them (client chains make sizes vary); entries expire after `lifetimeMs`.
 * Shared by every connection of a listener; the clock is injected.
 */
import { bytesEqual } from "../codec.ts";
import type { Session12 } from "./session.ts";

export interface SessionCacheOptions {
  /** Most sessions held (default 10000). */
  readonly maxEntries?: number;
  /** Most bytes of session state held, counted roughly (default 32 MiB). */
  readonly maxBytes?: number;
  /** How long a session may be resumed (default 1 hour). */
  readonly lifetimeMs?: number;
  /** Milliseconds since the epoch (default `Date.now`). */
  readonly now?: () => number;
}

interface Entry {
  readonly id: Uint8Array;
  readonly session: Session12;
  readonly bytes: number;
}

/** What an entry costs: its secrets, names and chain, plus a fixed overhead for the rest. */
function sizeOf(id: Uint8Array, s: Session12): number {
  let n = 128 + id.length + s.masterSecret.length + s.serverName.length;
  for (const der of s.peerChain) n += der.length;
  return n;
}

/**
 * Where a TLS 1.2 server keeps sessions for their IDs: `SessionCache` in one process's memory,
 * or a store that several servers share (server/workers/session_store.ts).
 */
export interface SessionStore12 {
  /** Stores a session under its ID (1 to 32 bytes); may drop older ones, or this one. */
  put(id: Uint8Array, session: Session12): void;
  /** The session for an ID, or null when unknown or expired. */
  get(id: Uint8Array): Session12 | null;
  /** Forgets a session. */
  delete(id: Uint8Array): void;
}

export class SessionCache implements SessionStore12 {
  readonly #max: number;
  readonly #maxBytes: number;
  #bytes = 0;
  readonly #lifetimeMs: number;
  readonly #now: () => number;
  /** Keyed by the hex of the ID; a Map keeps insertion order, so the oldest is first. */
  readonly #entries = new Map<string, Entry>();

  constructor(options: SessionCacheOptions = {}) {
    this.#max = options.maxEntries ?? 10_000;
    this.#maxBytes = options.maxBytes ?? 32 * 1024 * 1024;
    this.#lifetimeMs = options.lifetimeMs ?? 3600 * 1000;
    this.#now = options.now ?? Date.now;
    if (!Number.isInteger(this.#max) || this.#max < 1) throw new RangeError("maxEntries < 1");
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Stores a session under its ID, evicting the oldest entries when full. */
  put(id: Uint8Array, session: Session12): void {
    if (id.length === 0 || id.length > 32) return;
    const bytes = sizeOf(id, session);
    if (bytes > this.#maxBytes) return;
    const key = toKey(id);
    this.delete(id);
    while (this.#entries.size >= this.#max || this.#bytes + bytes > this.#maxBytes) {
      const oldest = this.#entries.keys().next().value;
      if (oldest === undefined) break;
      this.#remove(oldest);
    }
    this.#entries.set(key, { id: id.slice(), session, bytes });
    this.#bytes += bytes;
  }

  /** Bytes of session state held (as counted for `maxBytes`). */
  get bytes(): number {
    return this.#bytes;
  }

  #remove(key: string): void {
    const e = this.#entries.get(key);
    if (e === undefined) return;
    this.#bytes -= e.bytes;
    this.#entries.delete(key);
  }

  /** The session for an ID, or null when unknown or expired. */
  get(id: Uint8Array): Session12 | null {
    if (id.length === 0 || id.length > 32) return null;
    const key = toKey(id);
    const e = this.#entries.get(key);
    if (e === undefined || !bytesEqual(e.id, id)) return null;
    if (this.#now() - e.session.createdAt >= this.#lifetimeMs) {
      this.#remove(key);
      return null;
    }
    return e.session;
  }

  /** Forgets a session (e.g. one whose resumption failed). */
  delete(id: Uint8Array): void {
    this.#remove(toKey(id));
  }
}

function toKey(id: Uint8Array): string {
  let s = "";
  for (const b of id) s += b.toString(16).padStart(2, "0");
  return s;
}
