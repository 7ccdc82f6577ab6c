/**
 * The authentication cache, after Dovecot's `auth_cache`: the outcome of a password check is
 * remembered, so that a user whose phone reconnects all day pays for scrypt once an hour, not
 * on every connection.
 *
 * - Entries are keyed by HMAC-SHA-256 of (user, password) under a random key made when the
 *   process starts and never written anywhere. Neither the password nor an unkeyed hash of it
 *   is kept. The trade-off: someone who obtains a memory dump gets the key too, and can then
 *   test password guesses against the cached entries at HMAC speed instead of scrypt speed.
 * - Each entry carries the account's stored hash as it was when checked (the "stamp"). A hit
 *   counts only while the store still holds that same hash, so `postern user passwd` and
 *   `user remove`, run as separate processes, take effect at the next login without any
 *   message to the server: the lookup of the account row is needed for the login anyway.
 * - Failures are remembered for a shorter time, so that a client repeating a wrong password
 *   costs one check, not one per attempt.
 * - The table is bounded; the oldest entries go first.
 * - The Workers of one server share the key (it is made by their supervisor) and tell each
 *   other their verdicts (`adopt`), so that a check made in one is a hit in the others.
 */
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";

/** Settings of `AuthCache`; changed by a reload. */
export interface AuthCacheSettings {
  /** How long a successful check is reused; 0 turns the cache off. */
  readonly ttlMs: number;
  /** How long a failed check is reused; 0 turns negative caching off. */
  readonly negativeTtlMs: number;
  /** Most entries kept (default 100,000, about 20 MiB at most). */
  readonly maxEntries?: number;
}

/** What the cache knows about one (user, password) pair. */
export type CacheVerdict = "valid" | "invalid" | "unknown";

interface Entry {
  readonly valid: boolean;
  /** The stored hash the verdict was made against; null for an unknown user. */
  readonly stamp: string | null;
  readonly expires: number;
}

const encoder = new TextEncoder();

/** A bounded map from keyed hashes of (user, password) to verdicts. */
export class AuthCache {
  readonly #key: Uint8Array;
  readonly #now: () => number;
  readonly #entries = new Map<string, Entry>();
  #settings: Required<AuthCacheSettings>;
  /** When `clear` last ran: outcomes adopted from others must be newer. */
  #clearedAt = -Infinity;

  /** `key` (32 bytes) is shared by caches that exchange entries; default a random one. */
  constructor(settings: AuthCacheSettings, now: () => number = Date.now, key?: Uint8Array) {
    this.#settings = withDefaults(settings);
    this.#now = now;
    if (key !== undefined && key.length !== 32) throw new RangeError("Cache key is not 32 bytes");
    this.#key = key ?? crypto.getRandomValues(new Uint8Array(32));
  }

  /** Applies new TTLs (after a reload); existing entries keep their expiry. */
  configure(settings: AuthCacheSettings): void {
    this.#settings = withDefaults(settings);
    this.#evict();
  }

  /** True when successful checks are remembered at all (`ttlMs` above 0). */
  get enabled(): boolean {
    return this.#settings.ttlMs > 0;
  }

  /** The opaque key of (user, password); a memory dump shows neither. */
  key(user: string, password: string): string {
    const mac = hmac(
      sha256,
      this.#key,
      encoder.encode(`${user.length}:${user}\u0000${password}`),
    );
    let text = "";
    for (const b of mac) text += String.fromCharCode(b);
    return text;
  }

  /**
   * The remembered verdict for `key`, valid only while the account's stored hash is still
   * `stamp` (null: no such account or no password). Stale and expired entries are dropped.
   */
  lookup(key: string, stamp: string | null): CacheVerdict {
    const entry = this.#entries.get(key);
    if (entry === undefined) return "unknown";
    if (entry.expires <= this.#now() || entry.stamp !== stamp) {
      this.#entries.delete(key);
      return "unknown";
    }
    return entry.valid ? "valid" : "invalid";
  }

  /**
   * Remembers the outcome of a check made against `stamp`; returns when that was and when it
   * expires, null when such outcomes are not kept.
   */
  remember(
    key: string,
    valid: boolean,
    stamp: string | null,
  ): { readonly madeAt: number; readonly expires: number } | null {
    const ttl = valid ? this.#settings.ttlMs : this.#settings.negativeTtlMs;
    this.#entries.delete(key);
    if (ttl <= 0) return null;
    const madeAt = this.#now();
    const expires = madeAt + ttl;
    this.#entries.set(key, { valid, stamp, expires });
    this.#evict();
    return { madeAt, expires };
  }

  /**
   * Takes an outcome another cache with the same key remembered at `madeAt`, until `expires`
   * but never longer than this cache's own TTL would keep it. One made before this cache was
   * last cleared (a reload of every Worker) is not taken.
   */
  adopt(key: string, valid: boolean, stamp: string | null, madeAt: number, expires: number): void {
    const ttl = valid ? this.#settings.ttlMs : this.#settings.negativeTtlMs;
    const now = this.#now();
    if (ttl <= 0 || !(expires > now) || !(madeAt >= this.#clearedAt)) return;
    this.#entries.delete(key);
    this.#entries.set(key, { valid, stamp, expires: Math.min(expires, now + ttl) });
    this.#evict();
  }

  /** Forgets everything (SIGHUP). */
  clear(): void {
    this.#entries.clear();
    this.#clearedAt = this.#now();
  }

  /** Number of entries held. */
  get size(): number {
    return this.#entries.size;
  }

  #evict(): void {
    const max = this.#settings.maxEntries;
    if (this.#entries.size <= max) return;
    for (const key of this.#entries.keys()) {
      if (this.#entries.size <= max) break;
      this.#entries.delete(key);
    }
  }
}

function withDefaults(settings: AuthCacheSettings): Required<AuthCacheSettings> {
  return {
    ttlMs: settings.ttlMs,
    negativeTtlMs: settings.negativeTtlMs,
    maxEntries: Math.max(1, settings.maxEntries ?? 100_000),
  };
}
