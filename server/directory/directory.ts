/**
 * The directory's policy and cache for client certificates and password logins. A client
 * certificate that passed chain validation is accepted only when exactly one directory entry
 * maps to it and that entry still holds the very same certificate among its
 * `userCertificate;binary` values (the searches are in `_lookup.ts`, the connections in
 * `_pool.ts`). A directory that does not answer fails closed unless `onError` is `cached` and a
 * positive answer younger than the cache TTL exists. Positive answers are cached per
 * certificate fingerprint for `cacheTtlMs`; refusals are never cached, and an authoritative
 * refusal evicts the entry. Live sessions are re-checked by `_recheck.ts`.
 *
 * Call `close()` at shutdown: pooled sockets keep the process alive.
 */
import { getLogger } from "@logtape/logtape";
import { InvalidCredentialsError, ResultCodeError } from "ldapts";
import type { CertificateIdentity } from "../../protocol/x509/identity.ts";
import type { DirectoryConfig } from "./config.ts";
import type { FilterTemplate } from "./filter_template.ts";
import { LimiterFullError } from "./_limiter.ts";
import { type Metrics, NO_METRICS, secondsSince } from "../metrics/metrics.ts";
import { lookupCertificate, lookupPassword, searchRecipient } from "./_lookup.ts";
import { LdapPool, LookupTimeoutError } from "./_pool.ts";
import { recheckRound, type RecheckSession, scheduleRechecks } from "./_recheck.ts";
import {
  denial,
  type DirectoryAcceptance,
  type DirectoryDenial,
  type DirectoryVerdict,
  type EntryQuota,
  type FailureReason,
  isDirectoryFailure,
  type PasswordVerdict,
  type RecipientLookup,
} from "./verdict.ts";

export { recipientFilter } from "./_lookup.ts";
export type { RecheckSession } from "./_recheck.ts";
export {
  DENIAL_ALERTS,
  type DirectoryAcceptance,
  type DirectoryAlert,
  type DirectoryDenial,
  type DirectoryDenialReason,
  type DirectoryVerdict,
  type PasswordDenialReason,
  type PasswordVerdict,
  type RecipientLookup,
} from "./verdict.ts";

export interface CheckOptions {
  /** Skip the cache and ask the directory (the re-check does). The answer still refreshes it. */
  readonly fresh?: boolean;
}

export interface DirectoryOptions {
  /** Milliseconds clock for cache ages; `Date.now` by default. */
  readonly now?: () => number;
  /**
   * Idle service connections kept for reuse (at most maxConcurrency, the default). 0 opens and
   * closes a connection per lookup.
   */
  readonly poolSize?: number;
  readonly metrics?: Metrics;
}

export interface DirectoryStats {
  readonly inFlight: number;
  /** Highest number of lookups in flight at once since construction. */
  readonly peakInFlight: number;
  readonly queued: number;
  readonly cacheEntries: number;
  /** Lookups sent to the directory (cache misses, re-checks, password logins). */
  readonly lookups: number;
  /** LDAP requests sent for lookups: binds (and StartTLS) of new connections plus searches. */
  readonly operations: number;
  /** Bound service connections waiting in the pool. */
  readonly idleConnections: number;
}

const MAX_CACHE_ENTRIES = 10_000;
/** Certificates whose entry DN is remembered for pushed changes (one per open session, say). */
const MAX_ENTRY_MAP = 100_000;
const MAX_USERNAME_LENGTH = 256;
const MAX_ADDRESS_LENGTH = 320;
const MAX_PASSWORD_LENGTH = 1024;

interface CacheEntry {
  readonly username: string;
  readonly entryDn: string;
  readonly at: number;
}

const log = getLogger(["postern", "directory"]);

/** The directory check for client certificates and password logins. */
export class Directory {
  readonly #config: DirectoryConfig;
  readonly #template: FilterTemplate | undefined;
  readonly #now: () => number;
  readonly #pool: LdapPool;
  readonly #metrics: Metrics;
  readonly #cache = new Map<string, CacheEntry>();
  /** Certificate fingerprint → normalised DN of the entry that last accepted it. */
  readonly #entryOf = new Map<string, string>();
  /** The reverse of #entryOf: normalised entry DN → fingerprints, so a change costs O(its own). */
  readonly #certificatesOf = new Map<string, Set<string>>();
  /**
   * Username → the STORAGE quota its entry gave at the last lookup (certificate, password or
   * recipient), when a quota attribute is configured; kept until the next lookup replaces it.
   */
  readonly #quotas = new Map<
    string,
    { readonly storage?: EntryQuota; readonly messages?: EntryQuota }
  >();
  #lastRecheckAt: number | null = null;
  #closed = false;

  /** Throws `DirectoryConfigError` when the CA cannot be read. */
  constructor(config: DirectoryConfig, options: DirectoryOptions = {}) {
    this.#config = config;
    this.#template = config.mapping.kind === "filter" ? config.mapping.parsed : undefined;
    this.#now = options.now ?? Date.now;
    this.#pool = new LdapPool(config, options.poolSize ?? config.maxConcurrency);
    this.#metrics = options.metrics ?? NO_METRICS;
  }

  /** The validated settings this directory runs with. */
  get config(): DirectoryConfig {
    return this.#config;
  }

  get stats(): DirectoryStats {
    return { ...this.#pool.stats, cacheEntries: this.#cache.size };
  }

  /** Forgets every cached answer. */
  clearCache(): void {
    this.#cache.clear();
  }

  /** The normalised DN of the entry that last accepted this certificate, if known. */
  entryOf(fingerprint: string): string | undefined {
    return this.#entryOf.get(fingerprint);
  }

  /**
   * Drops the cached answers of every certificate that maps to entry `dn` (a change pushed by
   * the directory), so new connections ask the directory again. Returns their fingerprints.
   */
  invalidateEntry(dn: string): string[] {
    const dropped = [...(this.#certificatesOf.get(normalizeDn(dn)) ?? [])];
    for (const fp of dropped) this.#cache.delete(fp);
    return dropped;
  }

  /** Forgets everything known of a revoked certificate: its cached answer and its entry. */
  forget(fingerprint: string): void {
    this.#cache.delete(fingerprint);
    this.#forgetEntry(fingerprint);
  }

  /** When the last periodic or triggered re-check round finished; null before the first. */
  get lastRecheckAt(): number | null {
    return this.#lastRecheckAt;
  }

  /**
   * Re-checks `sessions` now, bypassing the cache, and revokes those refused (as a periodic
   * round does). For pushed changes and for the full re-check after the watcher reconnects.
   */
  async recheckNow(sessions: Iterable<RecheckSession>): Promise<void> {
    await this.#recheckRound(() => sessions, () => this.#closed);
  }

  /**
   * Decides whether a verified client certificate may log in, and as whom. Never throws: any
   * failure becomes a denial.
   */
  async checkCertificate(
    identity: CertificateIdentity,
    options: CheckOptions = {},
  ): Promise<DirectoryVerdict> {
    const key = identity.fingerprintSha256;
    if (options.fresh !== true) {
      const hit = this.#cached(key);
      if (hit !== undefined) {
        this.#metrics.directoryCacheHit();
        return hit;
      }
    }
    let verdict: DirectoryVerdict;
    const started = performance.now();
    try {
      verdict = await this.#pool.withClient((client) =>
        lookupCertificate(client, this.#config, this.#template, identity)
      );
    } catch (e) {
      verdict = failure(e);
    }
    this.#metrics.directoryLookup("certificate", outcomeOf(verdict), secondsSince(started));
    if (verdict.ok) {
      this.#remember(key, verdict);
      this.#rememberEntry(key, verdict.entryDn);
      this.#rememberQuota(verdict.username, verdict);
      log.debug("Certificate accepted for {username}", {
        username: verdict.username,
        fingerprint: short(key),
      });
      return verdict;
    }
    if (isDirectoryFailure(verdict.reason)) {
      if (this.#config.onError === "cached") {
        const hit = this.#cached(key);
        if (hit !== undefined) {
          log.warn("Directory failed ({reason}); using the cached answer for {username}", {
            reason: verdict.reason,
            detail: verdict.detail,
            username: hit.username,
            fingerprint: short(key),
          });
          return hit;
        }
      }
    } else {
      // An authoritative refusal ends any earlier acceptance at once.
      this.#cache.delete(key);
      this.#forgetEntry(key);
    }
    log.warn("Certificate refused: {reason}", {
      reason: verdict.reason,
      detail: verdict.detail,
      fingerprint: short(key),
    });
    return verdict;
  }

  /**
   * Checks a username and password: finds the one entry whose username attribute equals
   * `username`, then binds as that entry (RFC 4513, Section 5.1.3) on a connection that is
   * closed afterwards. Never throws.
   */
  async verifyPassword(username: string, password: string): Promise<PasswordVerdict> {
    let verdict: PasswordVerdict;
    if (password === "") {
      // An empty simple-bind password is an unauthenticated bind that succeeds for any DN
      // (RFC 4513, Section 5.1.2), so it must never reach the directory.
      verdict = { ok: false, reason: "empty_password", detail: "Empty password refused" };
    } else if (username === "" || username.length > MAX_USERNAME_LENGTH) {
      verdict = { ok: false, reason: "invalid_username", detail: "Username empty or too long" };
    } else if (password.length > MAX_PASSWORD_LENGTH) {
      verdict = { ok: false, reason: "invalid_credentials", detail: "Password too long" };
    } else {
      const started = performance.now();
      try {
        verdict = await this.#pool.withClient(
          (client) => lookupPassword(client, this.#config, username, password),
          false,
        );
      } catch (e) {
        const f = failure(e);
        verdict = { ok: false, reason: f.reason, detail: f.detail };
      }
      this.#metrics.directoryLookup("password", outcomeOf(verdict), secondsSince(started));
    }
    if (verdict.ok) {
      this.#rememberQuota(verdict.username, verdict);
      log.debug("Password accepted for {username}", { username: verdict.username });
    } else {
      log.info("Password login refused: {reason}", {
        reason: verdict.reason,
        detail: verdict.detail,
      });
    }
    return verdict;
  }

  /**
   * Finds the account that receives mail for `address`: the one entry matching `filter`, a
   * filter template whose `{address}` placeholders are replaced by the escaped address
   * (RFC 4515), e.g. `(mail={address})`. Several entries count as none, so that an ambiguous
   * address is refused rather than delivered to the wrong person. Never throws.
   */
  async findRecipient(address: string, filter: string): Promise<RecipientLookup> {
    if (address === "" || address.length > MAX_ADDRESS_LENGTH) return { kind: "none" };
    try {
      const found = await this.#pool.withClient((client) =>
        searchRecipient(client, this.#config, address, filter)
      );
      if (found.kind === "found") this.#rememberQuota(found.username, found);
      return found;
    } catch (e) {
      const f = failure(e);
      log.warn("Recipient lookup failed: {reason} ({detail})", {
        reason: f.reason,
        detail: f.detail,
      });
      return { kind: "failed", detail: f.detail };
    }
  }

  /**
   * Re-checks every live certificate session each `recheckIntervalMs`, bypassing the cache,
   * and revokes those refused. A directory failure revokes too, unless `onError` is `cached`
   * and the session's answer is younger than the TTL. Returns a function that stops the
   * re-check and resolves once a round in progress has finished.
   */
  startRecheck(
    sessions: () => Iterable<RecheckSession>,
    options: { readonly skip?: () => boolean } = {},
  ): () => Promise<void> {
    return scheduleRechecks(
      this.#config.recheckIntervalMs,
      (stopped) => this.#recheckRound(sessions, stopped),
      options.skip,
    );
  }

  async #recheckRound(
    sessions: () => Iterable<RecheckSession>,
    stopped: () => boolean,
  ): Promise<void> {
    await recheckRound(
      sessions,
      (identity) => this.checkCertificate(identity, { fresh: true }),
      this.#config.maxConcurrency,
      stopped,
    );
    this.#lastRecheckAt = this.#now();
  }

  /**
   * Binds as the service account (on a pooled connection when one is idle), for readiness
   * checks. Resolves null when the directory answers, else why not.
   */
  async ping(): Promise<string | null> {
    try {
      await this.#pool.withClient(() => Promise.resolve());
      return null;
    } catch (e) {
      return failure(e).detail;
    }
  }

  /** Closes the idle connections; later lookups open and close their own. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#pool.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #cached(key: string): DirectoryAcceptance | undefined {
    const ttl = this.#config.cacheTtlMs;
    const hit = this.#cache.get(key);
    if (hit === undefined) return undefined;
    if (ttl === 0 || this.#now() - hit.at >= ttl) {
      this.#cache.delete(key);
      return undefined;
    }
    return { ok: true, username: hit.username, entryDn: hit.entryDn, cached: true };
  }

  #rememberEntry(key: string, dn: string): void {
    this.#forgetEntry(key);
    if (this.#entryOf.size >= MAX_ENTRY_MAP) {
      const oldest = this.#entryOf.keys().next();
      if (oldest.done !== true) this.#forgetEntry(oldest.value);
    }
    const entry = normalizeDn(dn);
    this.#entryOf.set(key, entry);
    const certificates = this.#certificatesOf.get(entry);
    if (certificates === undefined) this.#certificatesOf.set(entry, new Set([key]));
    else certificates.add(key);
  }

  #forgetEntry(key: string): void {
    const entry = this.#entryOf.get(key);
    if (entry === undefined) return;
    this.#entryOf.delete(key);
    const certificates = this.#certificatesOf.get(entry);
    certificates?.delete(key);
    if (certificates?.size === 0) this.#certificatesOf.delete(entry);
  }

  /**
   * The STORAGE quota (octets) the user's entry gave at its last lookup: null when the entry
   * has none, undefined when the user was not looked up (or no quota attribute is set).
   */
  storageQuota(username: string): EntryQuota | undefined {
    return this.#quotas.get(username)?.storage;
  }

  /** As `storageQuota`, for the MESSAGE quota (`messageQuotaAttribute`). */
  messageQuota(username: string): EntryQuota | undefined {
    return this.#quotas.get(username)?.messages;
  }

  #rememberQuota(
    username: string,
    { quota, messageQuota }: { readonly quota?: EntryQuota; readonly messageQuota?: EntryQuota },
  ): void {
    if (quota === undefined && messageQuota === undefined) return;
    const entry = {
      ...(quota !== undefined ? { storage: quota } : {}),
      ...(messageQuota !== undefined ? { messages: messageQuota } : {}),
    };
    this.#quotas.delete(username);
    if (this.#quotas.size >= MAX_CACHE_ENTRIES) {
      const oldest = this.#quotas.keys().next();
      if (oldest.done !== true) this.#quotas.delete(oldest.value);
    }
    this.#quotas.set(username, entry);
  }

  #remember(key: string, v: DirectoryAcceptance): void {
    if (this.#config.cacheTtlMs === 0) return;
    this.#cache.delete(key);
    if (this.#cache.size >= MAX_CACHE_ENTRIES) {
      const oldest = this.#cache.keys().next();
      if (oldest.done !== true) this.#cache.delete(oldest.value);
    }
    this.#cache.set(key, { username: v.username, entryDn: v.entryDn, at: this.#now() });
  }
}

/** Turns an exception from a lookup into the denial it stands for. */
function failure(e: unknown): DirectoryDenial & { readonly reason: FailureReason } {
  if (e instanceof LimiterFullError) return denial("directory_busy", e.message);
  if (e instanceof LookupTimeoutError) return denial("directory_unavailable", e.message);
  if (e instanceof InvalidCredentialsError) {
    return denial("directory_error", "The directory refused the service bind");
  }
  if (e instanceof ResultCodeError) {
    return denial("directory_error", `The directory answered with LDAP result ${e.code}`);
  }
  const message = e instanceof Error ? e.message : String(e);
  return denial("directory_unavailable", `Directory unreachable: ${message}`);
}

/**
 * A DN in a form two spellings of one entry share, as far as the watcher needs: attribute
 * types and values lower-cased (the usual case-insensitive matching of naming attributes) and
 * spaces around separators dropped (RFC 4514, Section 3). Escapes are left as they are.
 */
export function normalizeDn(dn: string): string {
  return dn.trim().replace(/\s*([,=+])\s*/g, "$1").toLowerCase();
}

function short(fingerprint: string): string {
  return fingerprint.slice(0, 16);
}

/** A verdict as the lookup counter labels it: "ok" or the denial reason (a fixed set). */
function outcomeOf(verdict: DirectoryVerdict | PasswordVerdict): string {
  return verdict.ok ? "ok" : verdict.reason;
}
