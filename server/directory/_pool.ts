/**
 * The LDAP connections of the directory: opened and bound as the service account (StartTLS or
 * ldaps:// when configured), a few idle ones kept for reuse, and every lookup bounded in number
 * (a queue behind `maxConcurrency` slots) and in time (`timeoutMs`, waiting included). A
 * connection that failed, timed out or was re-bound as a user is unbound in `finally` and never
 * reused, so a restarted directory is simply reached again on a fresh connection.
 */
import net from "node:net";
import tls, { type ConnectionOptions } from "node:tls";
import { getLogger } from "@logtape/logtape";
import { Client, ResultCodeError } from "ldapts";
import { type DirectoryConfig, loadCaPem } from "./config.ts";
import { Limiter } from "./_limiter.ts";

const MAX_QUEUED_PER_SLOT = 64;
/** Idle connections older than this are closed rather than reused. */
const POOL_IDLE_MS = 30_000;

const log = getLogger(["postern", "directory"]);

/** A lookup that did not finish within the directory's `timeoutMs`. */
export class LookupTimeoutError extends Error {
  constructor(ms: number) {
    super(`Directory lookup timed out after ${ms} ms`);
    this.name = "LookupTimeoutError";
  }
}

/** The pool's share of the directory's counters. */
export interface PoolStats {
  readonly inFlight: number;
  readonly peakInFlight: number;
  readonly queued: number;
  readonly lookups: number;
  readonly operations: number;
  readonly idleConnections: number;
}

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

/** Service-account connections to one directory, pooled and bounded. */
export class LdapPool {
  readonly #config: DirectoryConfig;
  readonly #tls: ConnectionOptions;
  readonly #limiter: Limiter;
  readonly #idle: Array<{ client: Client; since: number }> = [];
  readonly #poolSize: number;
  #closed = false;
  #lookups = 0;
  #operations = 0;

  /** Keeps at most `poolSize` idle connections. Throws `DirectoryConfigError` for a bad CA. */
  constructor(config: DirectoryConfig, poolSize: number) {
    this.#config = config;
    this.#tls = config.ca !== undefined ? { ca: [loadCaPem(config.ca)] } : {};
    this.#poolSize = Math.min(poolSize, config.maxConcurrency);
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

  get stats(): PoolStats {
    return {
      inFlight: this.#limiter.inFlight,
      peakInFlight: this.#limiter.peak,
      queued: this.#limiter.queued,
      lookups: this.#lookups,
      operations: this.#operations,
      idleConnections: this.#idle.length,
    };
  }

  /**
   * Runs `work` on a connection bound as the service account, within the concurrency bound and
   * the lookup timeout. The connection comes from the idle pool when one is there and still
   * connected and bound; it goes back only when `work` ended normally and `keep` holds, and is
   * closed otherwise, so no failed or re-bound connection is ever reused. A pooled connection
   * that breaks (a restarted slapd) is retried once on a fresh one.
   */
  async withClient<T>(work: (client: Client) => Promise<T>, keep = true): Promise<T> {
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

  /** Closes the idle connections; later lookups open and close their own. */
  async close(): Promise<void> {
    this.#closed = true;
    const idle = this.#idle.splice(0);
    await Promise.all(idle.map(({ client }) => client.unbind().catch(() => {})));
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
