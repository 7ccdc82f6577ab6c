/**
 * Password login for local accounts (IMAP LOGIN and AUTHENTICATE PLAIN), checked against the
 * scrypt hashes in the mail store.
 *
 * Defences, and why:
 * - Unknown users and certificate-only accounts are verified against a dummy hash of the same
 *   cost, so response time does not reveal which names exist.
 * - Every failure is answered only after a fixed delay, which slows a single connection.
 * - Failures are counted per client address (IPv6 per /64, since one host owns the whole
 *   prefix). Past a few free failures the address is refused without a password check, for
 *   an exponentially growing, capped period.
 * - scrypt costs 32 MiB and about half a second per check, so checks run with bounded
 *   concurrency, per address and overall; excess attempts are refused, not queued without
 *   limit.
 * - The tracking table is bounded and forgets old entries, so spoofed or rotating addresses
 *   cannot grow memory.
 */
import type { Account, MailStore } from "../../mailstore/mail_store.ts";
import {
  DEFAULT_SCRYPT_COST,
  type ScryptCost,
  verifyPasswordAsync,
} from "../../mailstore/password.ts";

/** Options of `LocalAuthenticator`; every timing knob is injectable for tests. */
export interface LocalAuthenticatorOptions {
  readonly store: Pick<MailStore, "getAccount">;
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
  /** Password checks running at once from one address (default 2). */
  readonly maxConcurrentPerAddress?: number;
  /** Password checks running at once overall (default 4). */
  readonly maxConcurrent?: number;
  /** Checks waiting for a slot before further attempts are refused (default 64). */
  readonly maxQueued?: number;
  /** Cost of the dummy hash used for unknown users; match the cost of real hashes. */
  readonly dummyCost?: ScryptCost;
  /** Password verifier (default `verifyPasswordAsync`). */
  readonly verifyPassword?: (password: string, encoded: string) => Promise<boolean>;
}

/** The outcome of one login attempt, for the session and the log. */
export type AuthOutcome =
  | { readonly ok: true; readonly account: Account }
  | { readonly ok: false; readonly reason: "invalid" }
  | { readonly ok: false; readonly reason: "throttled"; readonly retryAfterMs: number };

interface AddressRecord {
  failures: number;
  lastFailure: number;
  blockedUntil: number;
  inFlight: number;
}

const MAX_USERNAME_LENGTH = 256;

/** Verifies local passwords with timing equalisation, delays and per-address back-off. */
export class LocalAuthenticator {
  readonly #store: Pick<MailStore, "getAccount">;
  readonly #now: () => number;
  readonly #sleep: (ms: number) => Promise<void>;
  readonly #failureDelayMs: number;
  readonly #freeFailures: number;
  readonly #backoffBaseMs: number;
  readonly #backoffMaxMs: number;
  readonly #forgetAfterMs: number;
  readonly #maxTracked: number;
  readonly #maxPerAddress: number;
  readonly #maxConcurrent: number;
  readonly #maxQueued: number;
  readonly #verify: (password: string, encoded: string) => Promise<boolean>;
  readonly #dummyHash: string;
  /** Insertion order is recency order: a touched entry is re-inserted at the end. */
  readonly #addresses = new Map<string, AddressRecord>();
  readonly #queue: (() => void)[] = [];
  #running = 0;

  constructor(options: LocalAuthenticatorOptions) {
    this.#store = options.store;
    this.#now = options.now ?? Date.now;
    this.#sleep = options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.#failureDelayMs = options.failureDelayMs ?? 1000;
    this.#freeFailures = options.freeFailures ?? 3;
    this.#backoffBaseMs = options.backoffBaseMs ?? 2000;
    this.#backoffMaxMs = options.backoffMaxMs ?? 300_000;
    this.#forgetAfterMs = options.forgetAfterMs ?? 900_000;
    this.#maxTracked = Math.max(1, options.maxTrackedAddresses ?? 10_000);
    this.#maxPerAddress = Math.max(1, options.maxConcurrentPerAddress ?? 2);
    this.#maxConcurrent = Math.max(1, options.maxConcurrent ?? 4);
    this.#maxQueued = Math.max(0, options.maxQueued ?? 64);
    this.#verify = options.verifyPassword ?? verifyPasswordAsync;
    this.#dummyHash = dummyHash(options.dummyCost ?? DEFAULT_SCRYPT_COST);
  }

  /** The account when `password` is right for `username`, else null (after a delay). */
  async verify(username: string, password: string, peerAddress: string): Promise<Account | null> {
    const outcome = await this.check(username, password, peerAddress);
    return outcome.ok ? outcome.account : null;
  }

  /**
   * The LOGIN / AUTHENTICATE PLAIN half of the IMAP engine's `ImapAuthenticator` contract
   * (protocol/imap/auth.ts): `ctx.peer` may carry a port, which `addressKey` drops.
   */
  async login(
    user: string,
    password: string,
    ctx: { readonly peer: string },
  ): Promise<{ readonly accountName: string } | null> {
    const account = await this.verify(user, password, ctx.peer);
    return account ? { accountName: account.name } : null;
  }

  /** As `verify`, but says why an attempt failed. */
  async check(username: string, password: string, peerAddress: string): Promise<AuthOutcome> {
    const outcome = await this.guard(peerAddress, async () => {
      const account = username.length <= MAX_USERNAME_LENGTH
        ? await this.#store.getAccount(username)
        : null;
      // Unknown users are checked against a dummy hash so that timing reveals nothing.
      const matched = await this.#verify(password, account?.passwordHash ?? this.#dummyHash);
      return matched && account?.passwordHash ? account : null;
    });
    return outcome.ok ? { ok: true, account: outcome.value } : outcome;
  }

  /**
   * Runs one credential check (local, or an LDAP bind) under this authenticator's defences:
   * the per-address back-off, the concurrency limits and the delay before a failure is
   * answered. `attempt` resolves the authenticated value, or null for wrong credentials.
   */
  async guard<T>(
    peerAddress: string,
    attempt: () => Promise<T | null>,
  ): Promise<
    | { readonly ok: true; readonly value: T }
    | Exclude<AuthOutcome, { readonly ok: true }>
  > {
    const key = addressKey(peerAddress);
    const refusal = this.#refusal(key);
    if (refusal !== null) {
      await this.#sleep(this.#failureDelayMs);
      return { ok: false, reason: "throttled", retryAfterMs: refusal };
    }
    const record = this.#touch(key);
    record.inFlight++;
    let value: T | null = null;
    try {
      await this.#acquire();
      try {
        value = await attempt();
      } finally {
        this.#release();
      }
    } finally {
      record.inFlight--;
    }
    if (value !== null) {
      if (record.inFlight === 0) this.#addresses.delete(key);
      else record.failures = 0;
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

  /** Milliseconds the address must still wait, or null when it may try now. */
  #refusal(key: string): number | null {
    const record = this.#current(key);
    if (!record) {
      return this.#queue.length >= this.#maxQueued && this.#running >= this.#maxConcurrent
        ? this.#failureDelayMs
        : null;
    }
    const now = this.#now();
    if (record.blockedUntil > now) return record.blockedUntil - now;
    if (record.inFlight >= this.#maxPerAddress) return this.#failureDelayMs;
    if (this.#queue.length >= this.#maxQueued && this.#running >= this.#maxConcurrent) {
      return this.#failureDelayMs;
    }
    return null;
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

  #recordFailure(key: string, record: AddressRecord): void {
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

  async #acquire(): Promise<void> {
    if (this.#running < this.#maxConcurrent) {
      this.#running++;
      return;
    }
    await new Promise<void>((resolve) => this.#queue.push(resolve));
  }

  #release(): void {
    const next = this.#queue.shift();
    // The slot passes straight to the next waiter, so the running count stays as it is.
    if (next) next();
    else this.#running--;
  }
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
