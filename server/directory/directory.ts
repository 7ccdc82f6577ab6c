/**
 * The LDAP directory check. A client certificate that passed chain validation is accepted only
 * when exactly one directory entry maps to it and that entry still holds the very same
 * certificate among its `userCertificate;binary` values (RFC 4523, Section 2.1). OpenLDAP cannot
 * match a whole DER certificate in a filter, so the values are fetched and compared here, byte
 * for byte.
 *
 * Lookups run on connections bound as the service account (StartTLS or ldaps:// when
 * configured). A few idle ones are pooled; a connection that failed, timed out or was re-bound
 * as a user is unbound in `finally` and never reused, so a restarted directory is simply
 * reached again on a fresh connection. Lookups are bounded in number and in time; a directory
 * that does not answer fails closed unless `onError` is `cached` and a positive answer younger
 * than the cache TTL exists. Positive answers are cached per certificate fingerprint for
 * `cacheTtlMs`; refusals are never cached, and an authoritative refusal evicts the entry.
 *
 * Call `close()` at shutdown: pooled sockets keep the process alive.
 */
import { timingSafeEqual } from "node:crypto";
import { Buffer } from "node:buffer";
import net from "node:net";
import tls, { type ConnectionOptions } from "node:tls";
import { getLogger } from "@logtape/logtape";
import {
  Client,
  EqualityFilter,
  escapeFilter,
  ExtensibleFilter,
  type Filter,
  InvalidCredentialsError,
  InvalidDNSyntaxError,
  NoSuchObjectError,
  ResultCodeError,
  SizeLimitExceededError,
} from "ldapts";
import type { CertificateIdentity } from "../../protocol/x509/identity.ts";
import { type DirectoryConfig, loadCaPem } from "./config.ts";
import { fillFilterTemplate, type FilterTemplate, parseFilterTemplate } from "./filter_template.ts";
import { Limiter, LimiterFullError } from "./_limiter.ts";
import { type Metrics, NO_METRICS, secondsSince } from "../metrics/metrics.ts";

/** Why a certificate was refused, as log lines name it. */
export type DirectoryDenialReason =
  /** The entry exists but no longer holds this certificate: it counts as revoked. */
  | "not_in_entry"
  /** No entry maps to the certificate. */
  | "no_entry"
  /** More than one entry maps to the certificate; which user it is, is ambiguous. */
  | "several_entries"
  /** The certificate lacks the field the lookup needs (e.g. no email for `{cert.san.email}`). */
  | "no_lookup_value"
  /** The entry has no value for the username attribute. */
  | "no_username"
  /** The directory could not be reached, or did not answer in time. */
  | "directory_unavailable"
  /** The directory answered with an error (e.g. the service bind was refused). */
  | "directory_error"
  /** Too many lookups are already waiting. */
  | "directory_busy";

/** The TLS alert each refusal is sent with (RFC 8446, Section 6.2). */
export const DENIAL_ALERTS = {
  not_in_entry: "certificate_revoked",
  no_entry: "access_denied",
  several_entries: "access_denied",
  no_lookup_value: "access_denied",
  no_username: "access_denied",
  // The failure lies with us, not with the peer's certificate: RFC 8446 defines internal_error
  // for "an internal error unrelated to the peer". access_denied would tell a valid user that
  // the server decided against them, which it did not.
  directory_unavailable: "internal_error",
  directory_error: "internal_error",
  directory_busy: "internal_error",
} as const satisfies Record<DirectoryDenialReason, string>;

export type DirectoryAlert = (typeof DENIAL_ALERTS)[DirectoryDenialReason];

/** A refused certificate: the alert to send, and the case and detail for the log. */
export interface DirectoryDenial {
  readonly ok: false;
  readonly alert: DirectoryAlert;
  readonly reason: DirectoryDenialReason;
  /** For the log, never for the peer. Holds no secrets. */
  readonly detail: string;
}

/** An accepted certificate and the user it maps to. */
export interface DirectoryAcceptance {
  readonly ok: true;
  readonly username: string;
  readonly entryDn: string;
  /** Whether the answer came from the cache rather than from the directory just now. */
  readonly cached: boolean;
}

export type DirectoryVerdict = DirectoryAcceptance | DirectoryDenial;

/** Why a password login was refused. */
export type PasswordDenialReason =
  | "empty_password"
  | "invalid_username"
  | "no_entry"
  | "several_entries"
  | "invalid_credentials"
  | "directory_unavailable"
  | "directory_error"
  | "directory_busy";

export type PasswordVerdict =
  | { readonly ok: true; readonly username: string }
  | { readonly ok: false; readonly reason: PasswordDenialReason; readonly detail: string };

/** Who receives mail for an address (LMTP RCPT), as the directory answers. */
export type RecipientLookup =
  | { readonly kind: "found"; readonly username: string }
  | { readonly kind: "none" }
  | { readonly kind: "failed"; readonly detail: string };

/** A live certificate session, as the re-check sees it. */
export interface RecheckSession {
  readonly identity: CertificateIdentity;
  /** Ends the session; called at most once per re-check round. */
  revoke(denial: DirectoryDenial): void;
}

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

const CERTIFICATE_ATTRIBUTE = "userCertificate;binary";
/** Some servers answer a `;binary` request under the bare name (RFC 4522, Section 2). */
const CERTIFICATE_ATTRIBUTE_BARE = "userCertificate";
const MAX_CACHE_ENTRIES = 10_000;
/** Certificates whose entry DN is remembered for pushed changes (one per open session, say). */
const MAX_ENTRY_MAP = 100_000;
const MAX_QUEUED_PER_SLOT = 64;
const MAX_USERNAME_LENGTH = 256;
const MAX_ADDRESS_LENGTH = 320;
const MAX_PASSWORD_LENGTH = 1024;
/** Idle connections older than this are closed rather than reused. */
const POOL_IDLE_MS = 30_000;

interface CacheEntry {
  readonly username: string;
  readonly entryDn: string;
  readonly at: number;
}

type LookupOutcome =
  | { readonly kind: "entries"; readonly entries: readonly LdapEntry[] }
  | { readonly kind: "denied"; readonly denial: DirectoryDenial };

type LdapEntry = { dn: string; [attribute: string]: Buffer | Buffer[] | string[] | string };

class LookupTimeoutError extends Error {
  constructor(ms: number) {
    super(`Directory lookup timed out after ${ms} ms`);
    this.name = "LookupTimeoutError";
  }
}

const log = getLogger(["postern", "directory"]);

// LDAP exchanges are small request/response pairs: with Nagle's algorithm on, each TLS
// handshake and bind waits out the peer's delayed ACK (about 40 ms per connection here).
const connectNoDelay =
  ((...args: unknown[]) =>
    (net.connect as (...a: unknown[]) => net.Socket)(...args).setNoDelay(
      true,
    )) as typeof net.connect;
const connectTlsNoDelay =
  ((...args: unknown[]) =>
    (tls.connect as (...a: unknown[]) => tls.TLSSocket)(...args).setNoDelay(
      true,
    )) as typeof tls.connect;

/** The directory check for client certificates and password logins. */
export class Directory {
  readonly #config: DirectoryConfig;
  readonly #template: FilterTemplate | undefined;
  readonly #tls: ConnectionOptions;
  readonly #now: () => number;
  readonly #limiter: Limiter;
  readonly #cache = new Map<string, CacheEntry>();
  /** Certificate fingerprint → normalised DN of the entry that last accepted it. */
  readonly #entryOf = new Map<string, string>();
  /** The reverse of #entryOf: normalised entry DN → fingerprints, so a change costs O(its own). */
  readonly #certificatesOf = new Map<string, Set<string>>();
  #lastRecheckAt: number | null = null;
  readonly #idle: Array<{ client: Client; since: number }> = [];
  readonly #poolSize: number;
  readonly #metrics: Metrics;
  #closed = false;
  #lookups = 0;
  #operations = 0;

  /** Throws `DirectoryConfigError` when the CA cannot be read. */
  constructor(config: DirectoryConfig, options: DirectoryOptions = {}) {
    this.#config = config;
    this.#template = config.mapping.kind === "filter"
      ? parseFilterTemplate(config.mapping.template)
      : undefined;
    this.#tls = config.ca !== undefined ? { ca: [loadCaPem(config.ca)] } : {};
    this.#now = options.now ?? Date.now;
    this.#metrics = options.metrics ?? NO_METRICS;
    this.#poolSize = Math.min(options.poolSize ?? config.maxConcurrency, config.maxConcurrency);
    this.#limiter = new Limiter(config.maxConcurrency, config.maxConcurrency * MAX_QUEUED_PER_SLOT);
    if (config.url.startsWith("ldap:") && !config.starttls) {
      const host = new URL(config.url).hostname;
      if (host !== "127.0.0.1" && host !== "localhost" && host !== "[::1]") {
        log.warn("Directory {url} is reached without TLS: the bind password crosses in clear", {
          url: config.url,
        });
      }
    }
  }

  /** The validated settings this directory runs with. */
  get config(): DirectoryConfig {
    return this.#config;
  }

  get stats(): DirectoryStats {
    return {
      inFlight: this.#limiter.inFlight,
      peakInFlight: this.#limiter.peak,
      queued: this.#limiter.queued,
      cacheEntries: this.#cache.size,
      lookups: this.#lookups,
      operations: this.#operations,
      idleConnections: this.#idle.length,
    };
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
      verdict = await this.#lookupCertificate(identity);
    } catch (e) {
      verdict = failure(e);
    }
    this.#metrics.directoryLookup("certificate", outcomeOf(verdict), secondsSince(started));
    if (verdict.ok) {
      this.#remember(key, verdict);
      this.#rememberEntry(key, verdict.entryDn);
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
   * `username`, then binds as that entry (RFC 4513, Section 5.1.3). Never throws.
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
        verdict = await this.#lookupPassword(username, password);
      } catch (e) {
        const f = failure(e);
        verdict = { ok: false, reason: f.reason, detail: f.detail };
      }
      this.#metrics.directoryLookup("password", outcomeOf(verdict), secondsSince(started));
    }
    if (verdict.ok) {
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
    const { baseDn, usernameAttribute } = this.#config;
    try {
      return await this.#withClient(async (client) => {
        const result = await client.search(baseDn, {
          scope: "sub",
          filter: recipientFilter(filter, address),
          attributes: [usernameAttribute],
          sizeLimit: 2,
          timeLimit: Math.max(1, Math.ceil(this.#config.timeoutMs / 1000)),
        }).catch((e) => {
          if (e instanceof SizeLimitExceededError) return undefined;
          if (e instanceof NoSuchObjectError) return { searchEntries: [] };
          throw e;
        });
        const entries = result?.searchEntries;
        if (entries === undefined || entries.length !== 1) {
          if (entries === undefined || entries.length > 1) {
            log.warn("Several directory entries match the recipient {address}", { address });
          }
          return { kind: "none" };
        }
        const username = firstString(attribute(entries[0]!, usernameAttribute));
        return username === undefined ? { kind: "none" } : { kind: "found", username };
      });
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
    const interval = this.#config.recheckIntervalMs;
    if (interval === 0) return () => Promise.resolve();
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let round: Promise<void> = Promise.resolve();
    const schedule = () => {
      timer = setTimeout(() => {
        timer = undefined;
        // A live push search makes the round unnecessary: changes arrive as they happen.
        const run = options.skip?.() === true
          ? Promise.resolve()
          : this.#recheckRound(sessions, () => stopped);
        round = run.finally(() => {
          if (!stopped) schedule();
        });
      }, interval);
    };
    schedule();
    return async () => {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      await round;
    };
  }

  async #recheckRound(
    sessions: () => Iterable<RecheckSession>,
    stopped: () => boolean,
  ): Promise<void> {
    const byFingerprint = new Map<string, RecheckSession[]>();
    try {
      for (const s of sessions()) {
        const fp = s.identity.fingerprintSha256;
        const group = byFingerprint.get(fp);
        if (group === undefined) byFingerprint.set(fp, [s]);
        else group.push(s);
      }
    } catch (e) {
      log.error("Cannot list sessions for the directory re-check: {error}", { error: e });
      return;
    }
    // Only maxConcurrency workers, so a round never floods the queue and turns into
    // directory_busy refusals of its own making.
    const groups = [...byFingerprint.values()];
    let next = 0;
    const worker = async () => {
      for (;;) {
        const group = groups[next++];
        if (group === undefined || stopped()) return;
        const first = group[0];
        if (first === undefined) continue;
        const verdict = await this.checkCertificate(first.identity, { fresh: true });
        if (verdict.ok || stopped()) continue;
        for (const s of group) {
          try {
            s.revoke(verdict);
          } catch (e) {
            log.error("Revoking a session failed: {error}", { error: e });
          }
        }
      }
    };
    const workers = Math.min(this.#config.maxConcurrency, groups.length);
    await Promise.all(Array.from({ length: workers }, worker));
    this.#lastRecheckAt = this.#now();
  }

  async #lookupCertificate(identity: CertificateIdentity): Promise<DirectoryVerdict> {
    const { usernameAttribute } = this.#config;
    return await this.#withClient(async (client) => {
      const found = await this.#findEntries(client, identity);
      if (found.kind === "denied") return found.denial;
      const [entry, extra] = found.entries;
      if (entry === undefined) return denial("no_entry", "No entry matched the certificate");
      if (extra !== undefined) {
        return denial("several_entries", `${found.entries.length} entries matched the certificate`);
      }
      const stored = [
        ...buffers(attribute(entry, CERTIFICATE_ATTRIBUTE)),
        ...buffers(attribute(entry, CERTIFICATE_ATTRIBUTE_BARE)),
      ];
      if (!stored.some((der) => sameBytes(der, identity.der))) {
        return denial(
          "not_in_entry",
          `The entry's ${stored.length} certificate value(s) do not include this certificate`,
        );
      }
      const username = firstString(attribute(entry, usernameAttribute));
      if (username === undefined) {
        return denial("no_username", `The entry has no ${usernameAttribute} value`);
      }
      return { ok: true, username, entryDn: entry.dn, cached: false };
    });
  }

  async #findEntries(client: Client, identity: CertificateIdentity): Promise<LookupOutcome> {
    const { mapping, baseDn, usernameAttribute } = this.#config;
    const attributes = [usernameAttribute, CERTIFICATE_ATTRIBUTE];
    const common = {
      attributes,
      explicitBufferAttributes: [CERTIFICATE_ATTRIBUTE, CERTIFICATE_ATTRIBUTE_BARE],
      // Two are enough to tell "exactly one" from "several".
      sizeLimit: 2,
      timeLimit: Math.max(1, Math.ceil(this.#config.timeoutMs / 1000)),
    };
    let base = baseDn;
    let scope: "base" | "sub" = "sub";
    let filter: Filter | string;
    switch (mapping.kind) {
      case "filter": {
        const f = this.#template === undefined
          ? undefined
          : fillFilterTemplate(this.#template, identity);
        if (f === undefined) {
          return {
            kind: "denied",
            denial: denial("no_lookup_value", "The certificate lacks a field the filter needs"),
          };
        }
        filter = f;
        break;
      }
      case "attribute":
        if (identity.subject === "") {
          return {
            kind: "denied",
            denial: denial("no_lookup_value", "The certificate has an empty subject"),
          };
        }
        filter = new EqualityFilter({ attribute: mapping.attribute, value: identity.subject });
        break;
      case "subject_dn":
        if (identity.subject === "") {
          return {
            kind: "denied",
            denial: denial("no_lookup_value", "The certificate has an empty subject"),
          };
        }
        base = identity.subject;
        scope = "base";
        // A base-scope read of the subject's own DN, filtered with OpenLDAP's dnSubtreeMatch
        // on entryDN (RFC 5020): the server compares normalised DNs, so an entry outside
        // baseDn never matches, however the subject spells its RDNs.
        filter = new ExtensibleFilter({
          matchType: "entryDN",
          rule: "dnSubtreeMatch",
          value: baseDn,
        });
        break;
      default: {
        const never: never = mapping;
        throw new Error(`Unknown mapping ${JSON.stringify(never)}`);
      }
    }
    try {
      const result = await client.search(base, { ...common, scope, filter });
      return { kind: "entries", entries: result.searchEntries };
    } catch (e) {
      if (e instanceof NoSuchObjectError || e instanceof InvalidDNSyntaxError) {
        return { kind: "entries", entries: [] };
      }
      if (e instanceof SizeLimitExceededError) {
        return {
          kind: "denied",
          denial: denial("several_entries", "More entries matched than the size limit"),
        };
      }
      throw e;
    }
  }

  async #lookupPassword(username: string, password: string): Promise<PasswordVerdict> {
    const { usernameAttribute, baseDn } = this.#config;
    return await this.#withClient(async (client) => {
      const result = await client.search(baseDn, {
        scope: "sub",
        filter: new EqualityFilter({ attribute: usernameAttribute, value: username }),
        attributes: [usernameAttribute],
        sizeLimit: 2,
        timeLimit: Math.max(1, Math.ceil(this.#config.timeoutMs / 1000)),
      }).catch((e) => {
        if (e instanceof SizeLimitExceededError) return undefined;
        throw e;
      });
      const entries = result?.searchEntries;
      if (entries === undefined || entries.length > 1) {
        return { ok: false, reason: "several_entries", detail: "Several entries have that name" };
      }
      const entry = entries[0];
      if (entry === undefined) {
        return { ok: false, reason: "no_entry", detail: "No entry has that name" };
      }
      try {
        await client.bind(entry.dn, password);
      } catch (e) {
        if (e instanceof ResultCodeError) {
          const detail = e instanceof InvalidCredentialsError
            ? "Wrong password"
            : `User bind refused with LDAP result ${e.code}`;
          return { ok: false, reason: "invalid_credentials", detail };
        }
        throw e;
      }
      const canonical = firstString(attribute(entry, usernameAttribute)) ?? username;
      return { ok: true, username: canonical };
    }, false);
  }

  /**
   * Runs `work` on a connection bound as the service account, within the concurrency bound and
   * the lookup timeout. The connection comes from the idle pool when one is there and still
   * connected and bound; it goes back only when `work` ended normally and `keep` holds, and is
   * closed otherwise, so no failed or re-bound connection is ever reused. A pooled connection
   * that breaks (a restarted slapd) is retried once on a fresh one.
   */
  async #withClient<T>(work: (client: Client) => Promise<T>, keep = true): Promise<T> {
    // One budget covers waiting for a slot and the lookup itself, so a hung directory cannot
    // hold a handshake longer than timeoutMs however many lookups queue behind it.
    const deadline = performance.now() + this.#config.timeoutMs;
    return await this.#limiter.run(async () => {
      this.#lookups++;
      const pooled = this.#takeIdle();
      if (pooled !== undefined) {
        try {
          return await this.#attempt(pooled, true, work, keep, deadline);
        } catch (e) {
          if (e instanceof ResultCodeError || e instanceof LookupTimeoutError) throw e;
          log.debug("Pooled directory connection failed, retrying on a fresh one: {error}", {
            error: e instanceof Error ? e.message : String(e),
          });
        }
      }
      return await this.#attempt(this.#newClient(), false, work, keep, deadline);
    }, this.#config.timeoutMs);
  }

  async #attempt<T>(
    client: Client,
    reused: boolean,
    work: (client: Client) => Promise<T>,
    keep: boolean,
    deadline: number,
  ): Promise<T> {
    const { starttls, bindDn, bindPassword, timeoutMs } = this.#config;
    const budget = Math.max(1, Math.ceil(deadline - performance.now()));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new LookupTimeoutError(timeoutMs)), budget);
    });
    const task = (async () => {
      if (!reused) {
        // For ldap:// the TLS options go to startTLS(); in the constructor they would make
        // ldapts open TLS at once on the plain port.
        this.#operations += starttls ? 2 : 1;
        if (starttls) await client.startTLS(this.#tls);
        await client.bind(bindDn, bindPassword);
      }
      // The search, and for a password login the user's bind after it.
      this.#operations += keep ? 1 : 2;
      return await work(client);
    })();
    // The loser of the race must not surface as an unhandled rejection.
    task.catch(() => {});
    let healthy = false;
    try {
      const result = await Promise.race([task, timeout]);
      healthy = true;
      return result;
    } finally {
      clearTimeout(timer);
      if (healthy && keep && !this.#closed && this.#idle.length < this.#poolSize) {
        this.#idle.push({ client, since: performance.now() });
      } else {
        await client.unbind().catch(() => {});
      }
    }
  }

  #newClient(): Client {
    const { url, timeoutMs } = this.#config;
    return new Client({
      url,
      timeout: timeoutMs,
      connectTimeout: timeoutMs,
      createConnection: connectNoDelay,
      createSecureConnection: connectTlsNoDelay,
      ...(url.startsWith("ldaps:") ? { tlsOptions: this.#tls } : {}),
    });
  }

  /** An idle connection that is still connected and bound, or undefined. */
  #takeIdle(): Client | undefined {
    const now = performance.now();
    for (;;) {
      const idle = this.#idle.pop();
      if (idle === undefined) return undefined;
      const { client, since } = idle;
      if (client.isConnected && client.isBound && now - since < POOL_IDLE_MS) return client;
      client.unbind().catch(() => {});
    }
  }

  /**
   * Binds as the service account (on a pooled connection when one is idle), for readiness
   * checks. Resolves null when the directory answers, else why not.
   */
  async ping(): Promise<string | null> {
    try {
      await this.#withClient(() => Promise.resolve());
      return null;
    } catch (e) {
      return failure(e).detail;
    }
  }

  /** Closes the idle connections; later lookups open and close their own. */
  async close(): Promise<void> {
    this.#closed = true;
    const idle = this.#idle.splice(0);
    await Promise.all(idle.map(({ client }) => client.unbind().catch(() => {})));
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

/**
 * The search filter of a recipient lookup. The common `(attr={address})` form becomes an
 * equality filter built directly, which keeps UTF-8 addresses intact (ldapts' string parser
 * mangles escaped bytes of 0x80 and above); any other template gets the address escaped with
 * ldapts' `escapeFilter` (RFC 4515, Section 3).
 */
export function recipientFilter(template: string, address: string): Filter | string {
  const simple = /^\(([A-Za-z][A-Za-z0-9-]*)=\{address\}\)$/.exec(template);
  if (simple !== null) return new EqualityFilter({ attribute: simple[1]!, value: address });
  const parts = template.split("{address}");
  const strings = Object.assign([...parts], { raw: [...parts] }) as TemplateStringsArray;
  return escapeFilter(strings, ...parts.slice(1).map(() => address));
}

function denial<R extends DirectoryDenialReason>(
  reason: R,
  detail: string,
): DirectoryDenial & { readonly reason: R } {
  return { ok: false, alert: DENIAL_ALERTS[reason], reason, detail };
}

function isDirectoryFailure(reason: DirectoryDenialReason): reason is FailureReason {
  return reason === "directory_unavailable" || reason === "directory_error" ||
    reason === "directory_busy";
}

/** The refusals that mean the directory, not the certificate, is at fault. */
type FailureReason = "directory_unavailable" | "directory_error" | "directory_busy";

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

/** An attribute of an entry, its description matched case-insensitively (RFC 4512, 2.5). */
function attribute(entry: LdapEntry, name: string): LdapEntry[string] | undefined {
  const want = name.toLowerCase();
  for (const [k, v] of Object.entries(entry)) {
    if (k !== "dn" && k.toLowerCase() === want) return v;
  }
  return undefined;
}

/** ldapts gives a single value as a scalar and several as an array; this always gives a list. */
function buffers(value: LdapEntry[string] | undefined): Buffer[] {
  if (value === undefined) return [];
  const list = Array.isArray(value) ? value : [value];
  const out: Buffer[] = [];
  for (const v of list) if (Buffer.isBuffer(v)) out.push(v);
  return out;
}

function firstString(value: LdapEntry[string] | undefined): string | undefined {
  if (value === undefined) return undefined;
  const first = Array.isArray(value) ? value[0] : value;
  if (first === undefined) return undefined;
  const s = typeof first === "string" ? first : first.toString("utf8");
  return s === "" ? undefined : s;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
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
