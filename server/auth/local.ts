/**
 * Password login for local accounts (IMAP LOGIN and AUTHENTICATE PLAIN), checked against the
 * hashes in the mail store.
 *
 * Defences, and why:
 * - Unknown users and certificate-only accounts are verified against a dummy hash of the same
 *   cost, so response time does not reveal which names exist.
 * - Every failure is answered only after a fixed delay, which slows a single connection.
 * - Failures are counted per client address (IPv6 per /64, since one host owns the whole
 *   prefix). Past a few free failures the address is turned away without a password check,
 *   for an exponentially growing, capped period. Only failures count: any number of right
 *   logins from one office behind one NAT address go through. Repeating the same wrong
 *   password (a phone with an old one) counts once, as the negative cache answers it.
 * - scrypt costs 32 MiB and a core for about 170 ms, so checks run on the native thread pool
 *   with a fixed number at once; the others wait in a bounded queue served round-robin
 *   between addresses (`CheckQueue`). A full queue is answered "busy, try again", never
 *   "wrong password" (RFC 5530 UNAVAILABLE).
 * - Outcomes are cached (`AuthCache`), so most logins cost no scrypt at all.
 * - The tracking table is bounded and forgets old entries, so spoofed or rotating addresses
 *   cannot grow memory.
 * - A successful login with an imported hash, or with a scrypt hash of another cost, stores a
 *   new scrypt hash of the current cost.
 */
import type { Account, MailStore } from "../../mailstore/mail_store.ts";
import {
  DEFAULT_SCRYPT_COST,
  hashPasswordAsync,
  needsRehash,
  type ScryptCost,
  verifyPasswordAsync,
} from "../../mailstore/password.ts";
import { ImapError } from "../../protocol/imap/errors.ts";
import { AuthCache } from "./auth_cache.ts";
import { CheckQueue } from "./check_queue.ts";

/** The settings a reload may change. */
export interface LocalAuthSettings {
  /** How long a successful check is reused (default 1 hour); 0 turns caching off. */
  readonly cacheTtlMs?: number;
  /** How long a failed check is reused (default 1 minute). */
  readonly negativeCacheTtlMs?: number;
  /** Cost of new hashes, of re-hashes at login and of the dummy hash (default ln=15). */
  readonly scryptCost?: ScryptCost;
}

/** Options of `LocalAuthenticator`; every timing knob is injectable for tests. */
/**
 * Failures and successes per address key, shared between the authenticators of one server's
 * Workers, so that the back-off counts every failure of an address whichever Worker saw it;
 * and the cached verdicts of password checks, so that one Worker's check is the others' too.
 */
export interface FailureFeed {
  /** Tells the other authenticators (never this one). */
  publish(notice: FailureNotice): void;
  subscribe(listener: (notice: FailureNotice) => void): () => void;
  /** The key of the cache's keyed hashes, common to the Workers (32 bytes). */
  readonly cacheKey?: Uint8Array;
}

/**
 * A failed or a successful password check from the addresses under `key`, or (`verdict`) an
 * outcome remembered under cache key `key` (see `AuthCache`).
 */
export type FailureNotice =
  | { readonly kind: "failure" | "success"; readonly key: string }
  | {
    readonly kind: "verdict";
    readonly key: string;
    readonly valid: boolean;
    readonly stamp: string | null;
    readonly madeAt: number;
    readonly expires: number;
  };

/** Longest stored hash taken from another Worker's verdict. */
const MAX_STAMP_LENGTH = 1024;

export interface LocalAuthenticatorOptions extends LocalAuthSettings {
  readonly store: Pick<MailStore, "getAccount" | "setPasswordHash">;
  /** Shares the per-address failure counts with the other Workers' authenticators. */
  readonly failureFeed?: FailureFeed;
  /** Clock in milliseconds (default `Date.now`). */
  readonly now?: () => number;
  /** Waits the given milliseconds (default a timer). */
  readonly sleep?: (ms: number) => Promise<void>;
  /** Delay before any failed or refused attempt is answered (default 1,000 ms). */
  readonly failureDelayMs?: number;
  /** Failures from one address before back-off starts (default 3). */
  readonly freeFailures?: number;
  /** First back-off period; it doubles with every further failure (default 2,000 ms). */
  readonly backoffBaseMs?: number;
  /** Longest back-off period (default 5 minutes). */
  readonly backoffMaxMs?: number;
  /** An address with no failure for this long starts afresh (default 15 minutes). */
  readonly forgetAfterMs?: number;
  /** Most addresses tracked at once; the least recently failing are evicted (default 10,000). */
  readonly maxTrackedAddresses?: number;
  /** Password checks running at once (default: one per core). */
  readonly maxConcurrent?: number;
  /** Checks waiting for a slot, overall (default 1,024). */
  readonly maxQueued?: number;
  /** Checks waiting for a slot from one address (default 512). */
  readonly maxQueuedPerAddress?: number;
  /** Most cached outcomes (default 100,000). */
  readonly maxCacheEntries?: number;
  /** Password verifier (default `verifyPasswordAsync`). */
  readonly verifyPassword?: (password: string, encoded: string) => Promise<boolean>;
  /** Hashes a password for storage at login (default `hashPasswordAsync`). */
  readonly hashPassword?: (password: string, cost: ScryptCost) => Promise<string>;
}

/** The outcome of one login attempt, for the session and the log. */
export type AuthOutcome =
  | { readonly ok: true; readonly account: Account }
  | { readonly ok: false; readonly reason: "invalid" }
  /** The address is backing off after failures; nothing was checked. */
  | { readonly ok: false; readonly reason: "throttled"; readonly retryAfterMs: number }
  /** The check queue is full; nothing was checked. */
  | { readonly ok: false; readonly reason: "busy"; readonly retryAfterMs: number };

interface AddressRecord {
  failures: number;
  lastFailure: number;
  blockedUntil: number;
  inFlight: number;
}

const MAX_USERNAME_LENGTH = 256;
/** What a client is told to wait when the queue is full. */
const BUSY_RETRY_MS = 2000;

/** Verifies local passwords with caching, queueing, timing equalisation and back-off. */
export class LocalAuthenticator {
  readonly #store: Pick<MailStore, "getAccount" | "setPasswordHash">;
  readonly #now: () => number;
  readonly #sleep: (ms: number) => Promise<void>;
  readonly #failureDelayMs: number;
  readonly #freeFailures: number;
  readonly #backoffBaseMs: number;
  readonly #backoffMaxMs: number;
  readonly #forgetAfterMs: number;
  readonly #maxTracked: number;
  readonly #verify: (password: string, encoded: string) => Promise<boolean>;
  readonly #hash: (password: string, cost: ScryptCost) => Promise<string>;
  readonly #queue: CheckQueue;
  readonly #cache: AuthCache;
  /** Checks in progress, by cache key, for logins that arrive meanwhile. */
  readonly #checking = new Map<
    string,
    Promise<{ readonly queued: true; readonly value: string | null } | { readonly queued: false }>
  >();
  #cost: ScryptCost = DEFAULT_SCRYPT_COST;
  #dummyHash = "";
  /** Insertion order is recency order: a touched entry is re-inserted at the end. */
  readonly #addresses = new Map<string, AddressRecord>();
  readonly #feed: FailureFeed | null;

  constructor(options: LocalAuthenticatorOptions) {
    this.#feed = options.failureFeed ?? null;
    this.#feed?.subscribe((notice) => {
      if (typeof notice?.key !== "string" || notice.key.length > 64) return;
      if (notice.kind === "verdict") {
        const { key, valid, stamp, madeAt, expires } = notice;
        if (
          key.length === 32 && typeof valid === "boolean" && Number.isFinite(expires) &&
          Number.isFinite(madeAt) &&
          (stamp === null || (typeof stamp === "string" && stamp.length <= MAX_STAMP_LENGTH))
        ) this.#cache.adopt(key, valid, stamp, madeAt, expires);
      } else if (notice.kind === "failure") {
        this.#recordFailure(notice.key, this.#touch(notice.key), false);
      } else if (notice.kind === "success") this.#clearFailures(notice.key, false);
    });
    this.#store = options.store;
    this.#now = options.now ?? Date.now;
    this.#sleep = options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.#failureDelayMs = options.failureDelayMs ?? 1000;
    this.#freeFailures = options.freeFailures ?? 3;
    this.#backoffBaseMs = options.backoffBaseMs ?? 2000;
    this.#backoffMaxMs = options.backoffMaxMs ?? 300_000;
    this.#forgetAfterMs = options.forgetAfterMs ?? 900_000;
    this.#maxTracked = Math.max(1, options.maxTrackedAddresses ?? 10_000);
    this.#queue = new CheckQueue({
      slots: options.maxConcurrent ?? Math.max(1, navigator.hardwareConcurrency || 1),
      maxQueued: options.maxQueued ?? 1024,
      maxQueuedPerAddress: options.maxQueuedPerAddress ?? 512,
    });
    this.#verify = options.verifyPassword ?? verifyPasswordAsync;
    this.#hash = options.hashPassword ?? hashPasswordAsync;
    this.#cache = new AuthCache({ ttlMs: 0, negativeTtlMs: 0 }, this.#now, this.#feed?.cacheKey);
    this.configure(options);
  }

  /** Applies the `auth:` settings; a reload calls it, then `clearCache`. */
  configure(settings: LocalAuthSettings): void {
    this.#cache.configure({
      ttlMs: settings.cacheTtlMs ?? 3_600_000,
      negativeTtlMs: settings.negativeCacheTtlMs ?? 60_000,
    });
    const cost = settings.scryptCost ?? DEFAULT_SCRYPT_COST;
    if (this.#dummyHash === "" || needsRehash(this.#dummyHash, cost)) {
      this.#dummyHash = dummyHash(cost);
    }
    this.#cost = cost;
  }

  /** Forgets every cached outcome (SIGHUP). */
  clearCache(): void {
    this.#cache.clear();
  }

  /** Number of cached outcomes. */
  get cachedOutcomes(): number {
    return this.#cache.size;
  }

  /** The account when `password` is right for `username`, else null (after a delay). */
  async verify(username: string, password: string, peerAddress: string): Promise<Account | null> {
    const outcome = await this.check(username, password, peerAddress);
    return outcome.ok ? outcome.account : null;
  }

  /**
   * The LOGIN / AUTHENTICATE PLAIN half of the IMAP engine's `ImapAuthenticator` contract
   * (protocol/imap/auth.ts): `ctx.peer` may carry a port, which `addressKey` drops. Wrong
   * credentials resolve null (NO [AUTHENTICATIONFAILED]); an attempt that was not checked
   * throws NO [UNAVAILABLE] with a text that says when to retry (RFC 5530).
   */
  async login(
    user: string,
    password: string,
    ctx: { readonly peer: string },
  ): Promise<{ readonly accountName: string } | null> {
    const outcome = await this.check(user, password, ctx.peer);
    if (outcome.ok) return { accountName: outcome.account.name };
    if (outcome.reason === "invalid") return null;
    throw unavailable(outcome);
  }

  /** As `verify`, but says why an attempt failed. */
  async check(username: string, password: string, peerAddress: string): Promise<AuthOutcome> {
    const key = addressKey(peerAddress);
    const refused = await this.#refuseWhileBlocked(key);
    if (refused !== null) return refused;
    const account = username.length <= MAX_USERNAME_LENGTH
      ? await this.#store.getAccount(username)
      : null;
    const stamp = account?.passwordHash ?? null;
    const cacheKey = this.#cache.key(username, password);
    const cached = this.#cache.lookup(cacheKey, stamp);
    if (cached === "valid" && account !== null) return this.#succeeded(key, account);
    if (cached === "invalid") {
      // The same wrong pair again: it teaches a guesser nothing, so it does not count.
      await this.#sleep(this.#failureDelayMs);
      return { ok: false, reason: "invalid" };
    }
    const record = this.#touch(key);
    record.inFlight++;
    // With the cache on, the same (user, password) arriving while it is being checked waits
    // for that one check, as it would have found its outcome in the cache a moment later:
    // a hundred phones of one user reconnecting after a restart cost one scrypt, not a hundred.
    let check = this.#cache.enabled ? this.#checking.get(cacheKey) : undefined;
    const leader = check === undefined;
    if (check === undefined) {
      check = this.#queue.run(key, () => this.#checkAndUpgrade(account, password));
      if (this.#cache.enabled) {
        this.#checking.set(cacheKey, check);
        const done = () => this.#checking.delete(cacheKey);
        check.then(done, done);
      }
    }
    let result;
    try {
      result = await check;
    } finally {
      record.inFlight--;
    }
    if (!result.queued) return { ok: false, reason: "busy", retryAfterMs: BUSY_RETRY_MS };
    const newStamp = result.value;
    if (newStamp !== null && account !== null) {
      if (leader) this.#remember(cacheKey, true, newStamp);
      return this.#succeeded(key, account);
    }
    if (leader) {
      this.#remember(cacheKey, false, stamp);
      this.#recordFailure(key, record);
    }
    await this.#sleep(this.#failureDelayMs);
    return { ok: false, reason: "invalid" };
  }

  /** Caches a verdict, and tells the other Workers' caches when they share the key. */
  #remember(cacheKey: string, valid: boolean, stamp: string | null): void {
    const kept = this.#cache.remember(cacheKey, valid, stamp);
    if (kept === null || this.#feed?.cacheKey === undefined) return;
    this.#feed.publish({ kind: "verdict", key: cacheKey, valid, stamp, ...kept });
  }

  /**
   * Runs one credential check that is not a local password (an LDAP bind) under this
   * authenticator's per-address back-off and failure delay. `attempt` resolves the
   * authenticated value, or null for wrong credentials. The directory client bounds its own
   * concurrency.
   */
  async guard<T>(
    peerAddress: string,
    attempt: () => Promise<T | null>,
  ): Promise<
    | { readonly ok: true; readonly value: T }
    | Exclude<AuthOutcome, { readonly ok: true }>
  > {
    const key = addressKey(peerAddress);
    const refused = await this.#refuseWhileBlocked(key);
    if (refused !== null) return refused;
    const record = this.#touch(key);
    record.inFlight++;
    let value: T | null;
    try {
      value = await attempt();
    } finally {
      record.inFlight--;
    }
    if (value !== null) {
      this.#clearFailures(key);
      return { ok: true, value };
    }
    this.#recordFailure(key, record);
    await this.#sleep(this.#failureDelayMs);
    return { ok: false, reason: "invalid" };
  }

  /** Failures counted for an address (0 when unknown or forgotten). */
  failures(peerAddress: string): number {
    const record = this.#current(addressKey(peerAddress));
    return record?.failures ?? 0;
  }

  /** Number of addresses tracked (bounded by `maxTrackedAddresses`). */
  get trackedAddresses(): number {
    return this.#addresses.size;
  }

  /**
   * Verifies `password` (against the dummy hash when there is no account or no password) and,
   * when it is right and the stored hash is imported or of another cost, stores a fresh scrypt
   * hash. Resolves the account's stored hash after that, or null for a mismatch.
   */
  async #checkAndUpgrade(account: Account | null, password: string): Promise<string | null> {
    const stored = account?.passwordHash ?? null;
    const matched = await this.#verify(password, stored ?? this.#dummyHash);
    if (!matched || account === null || stored === null) return null;
    if (!needsRehash(stored, this.#cost)) return stored;
    try {
      const fresh = await this.#hash(password, this.#cost);
      // Only replace the hash that was checked: `user passwd` may have changed it meanwhile.
      const current = await this.#store.getAccount(account.name);
      if (current?.passwordHash !== stored) return stored;
      await this.#store.setPasswordHash(account.name, fresh);
      return fresh;
    } catch {
      return stored;
    }
  }

  #succeeded(key: string, account: Account): AuthOutcome {
    this.#clearFailures(key);
    return { ok: true, account };
  }

  /**
   * A success from an address forgets its failures: one typo in an office behind a NAT address
   * does not keep slowing everyone else there.
   */
  #clearFailures(key: string, tell = true): void {
    if (tell) this.#feed?.publish({ kind: "success", key });
    const record = this.#addresses.get(key);
    if (record === undefined) return;
    if (record.inFlight === 0) this.#addresses.delete(key);
    else record.failures = 0;
  }

  /** The back-off refusal for an address, answered after the failure delay, or null. */
  async #refuseWhileBlocked(
    key: string,
  ): Promise<Extract<AuthOutcome, { reason: "throttled" }> | null> {
    const record = this.#current(key);
    if (!record) return null;
    const wait = record.blockedUntil - this.#now();
    if (wait <= 0) return null;
    await this.#sleep(this.#failureDelayMs);
    return { ok: false, reason: "throttled", retryAfterMs: wait };
  }

  /** The live record of an address, dropping it when it has expired. */
  #current(key: string): AddressRecord | undefined {
    const record = this.#addresses.get(key);
    if (!record) return undefined;
    if (record.inFlight === 0 && this.#now() - record.lastFailure > this.#forgetAfterMs) {
      this.#addresses.delete(key);
      return undefined;
    }
    return record;
  }

  /** Returns the address's record, creating it and keeping the table bounded. */
  #touch(key: string): AddressRecord {
    let record = this.#current(key);
    if (!record) {
      record = { failures: 0, lastFailure: this.#now(), blockedUntil: 0, inFlight: 0 };
      this.#addresses.set(key, record);
      this.#evict();
    }
    return record;
  }

  #recordFailure(key: string, record: AddressRecord, tell = true): void {
    if (tell) this.#feed?.publish({ kind: "failure", key });
    const now = this.#now();
    record.failures++;
    record.lastFailure = now;
    const over = record.failures - this.#freeFailures;
    if (over > 0) {
      const period = Math.min(
        this.#backoffBaseMs * 2 ** Math.min(over - 1, 30),
        this.#backoffMaxMs,
      );
      record.blockedUntil = now + period;
    }
    // Re-insert so that the map's order stays least-recently-failing first.
    this.#addresses.delete(key);
    this.#addresses.set(key, record);
    this.#evict();
  }

  /** Evicts the oldest idle entries while the table is over its bound. */
  #evict(): void {
    if (this.#addresses.size <= this.#maxTracked) return;
    for (const [key, record] of this.#addresses) {
      if (this.#addresses.size <= this.#maxTracked) break;
      if (record.inFlight === 0) this.#addresses.delete(key);
    }
  }
}

/**
 * The answer to an attempt that was not checked: NO [UNAVAILABLE] (RFC 5530, Section 3), with
 * a text that says to retry, since the credentials may well be right.
 */
export function unavailable(
  outcome: Extract<AuthOutcome, { reason: "throttled" | "busy" }>,
): ImapError {
  const seconds = Math.max(1, Math.ceil(outcome.retryAfterMs / 1000));
  const text = outcome.reason === "busy"
    ? `Too many logins in progress, try again in ${seconds} s`
    : `Too many failed logins from your address, try again in ${seconds} s`;
  return new ImapError("NO", text, "UNAVAILABLE");
}

/**
 * The key failures are counted under: IPv4 as is (also when IPv4-mapped), IPv6 by its /64
 * prefix, anything unparsable as given (lower-cased, bounded). A port is dropped, whether
 * written `192.0.2.1:50122` or `[2001:db8::1]:50122`, so that new connections from one host
 * share one record.
 */
export function addressKey(peerAddress: string): string {
  let a = peerAddress.trim().toLowerCase();
  const bracketed = /^\[([^\]]*)\](?::\d{1,5})?$/.exec(a);
  if (bracketed) a = bracketed[1]!;
  const v4port = /^(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}$/.exec(a);
  if (v4port) a = v4port[1]!;
  const zone = a.indexOf("%");
  if (zone >= 0) a = a.slice(0, zone);
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(a);
  if (mapped) return mapped[1]!;
  if (!a.includes(":")) return a.slice(0, 64);
  const groups = expandIPv6(a);
  if (!groups) return a.slice(0, 64);
  return groups.slice(0, 4).map((g) => g.toString(16)).join(":") + "::/64";
}

function expandIPv6(a: string): number[] | null {
  if (a.length > 45) return null;
  const halves = a.split("::");
  if (halves.length > 2) return null;
  const parse = (s: string): number[] | null => {
    if (s === "") return [];
    const out: number[] = [];
    const parts = s.split(":");
    for (const [i, p] of parts.entries()) {
      if (i === parts.length - 1 && p.includes(".")) {
        const v4 = p.split(".").map(Number);
        if (v4.length !== 4 || v4.some((n) => !Number.isInteger(n) || n < 0 || n > 255)) {
          return null;
        }
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else {
        if (!/^[0-9a-f]{1,4}$/.test(p)) return null;
        out.push(parseInt(p, 16));
      }
    }
    return out;
  };
  const head = parse(halves[0]!);
  const tail = halves.length === 2 ? parse(halves[1]!) : [];
  if (!head || !tail) return null;
  if (halves.length === 1) return head.length === 8 ? head : null;
  const missing = 8 - head.length - tail.length;
  if (missing < 1) return null;
  return [...head, ...new Array<number>(missing).fill(0), ...tail];
}

/**
 * A well-formed hash no password matches: random salt and random "hash", so checking it costs
 * exactly what a real check costs, without computing anything up front.
 */
function dummyHash(cost: ScryptCost): string {
  const b64 = (n: number) =>
    btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(n)))).replace(/=+$/, "");
  return `$scrypt$ln=${cost.ln},r=${cost.r},p=${cost.p}$${b64(16)}$${b64(32)}`;
}
