/**
 * The bounded session-ID cache of TLS 1.2 (RFC 5246, Section 7.4.1.2), the fallback for clients
 * without session tickets. The oldest entry goes first when the cache is full; entries expire
 * after `lifetimeMs`. Shared by every connection of a listener; the clock is injected.
 */
import { bytesEqual } from "../codec.ts";
import type { Session12 } from "./session.ts";

export interface SessionCacheOptions {
  /** Most sessions held (default 10000). */
  readonly maxEntries?: number;
  /** How long a session may be resumed (default 1 hour). */
  readonly lifetimeMs?: number;
  /** Milliseconds since the epoch (default `Date.now`). */
  readonly now?: () => number;
}

interface Entry {
  readonly id: Uint8Array;
  readonly session: Session12;
}

export class SessionCache {
  readonly #max: number;
  readonly #lifetimeMs: number;
  readonly #now: () => number;
  /** Keyed by the hex of the ID; a Map keeps insertion order, so the oldest is first. */
  readonly #entries = new Map<string, Entry>();

  constructor(options: SessionCacheOptions = {}) {
    this.#max = options.maxEntries ?? 10_000;
    this.#lifetimeMs = options.lifetimeMs ?? 3600 * 1000;
    this.#now = options.now ?? Date.now;
    if (!Number.isInteger(this.#max) || this.#max < 1) throw new RangeError("maxEntries < 1");
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Stores a session under its ID, evicting the oldest entry when full. */
  put(id: Uint8Array, session: Session12): void {
    if (id.length === 0 || id.length > 32) return;
    const key = toKey(id);
    this.#entries.delete(key);
    while (this.#entries.size >= this.#max) {
      const oldest = this.#entries.keys().next().value;
      if (oldest === undefined) break;
      this.#entries.delete(oldest);
    }
    this.#entries.set(key, { id: id.slice(), session });
  }

  /** The session for an ID, or null when unknown or expired. */
  get(id: Uint8Array): Session12 | null {
    if (id.length === 0 || id.length > 32) return null;
    const key = toKey(id);
    const e = this.#entries.get(key);
    if (e === undefined || !bytesEqual(e.id, id)) return null;
    if (this.#now() - e.session.createdAt >= this.#lifetimeMs) {
      this.#entries.delete(key);
      return null;
    }
    return e.session;
  }

  /** Forgets a session (e.g. one whose resumption failed). */
  delete(id: Uint8Array): void {
    this.#entries.delete(toKey(id));
  }
}

function toKey(id: Uint8Array): string {
  let s = "";
  for (const b of id) s += b.toString(16).padStart(2, "0");
  return s;
}
