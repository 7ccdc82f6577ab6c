/**
 * Runs the server as several accept loops (`server.workers`), each a Worker that binds the
 * same IMAP ports with SO_REUSEPORT, so that the kernel spreads connections over the cores.
 * The main thread supervises: it starts the Workers (the first binds the ports, the others
 * join them) and hands them the shared memory they coordinate through (\Recent boundaries,
 * WAL syncs, connections per address, TLS 1.3 ticket uses, TLS 1.2 sessions) and the
 * session-ticket secret; it counts sessions per
 * user for all of them, serves the metrics listener (their figures added up) and the admin
 * socket (their sessions together), and passes reloads and shutdown on. Mailbox events and
 * login failures travel between the Workers over BroadcastChannels. A Worker that fails (an
 * uncaught error), or falls silent (its heartbeat in shared memory stands still: it ended
 * itself, or its event loop is stuck), is replaced after a back-off, a bounded number of times
 * a minute (`RestartPolicy`); the others go on serving meanwhile. `Worker.terminate()` (Deno
 * 2.9) takes effect only once the Worker's running task ends: it never cuts a synchronous step
 * (a SQLite transaction, a step of a shared table) short, and it cannot end a Worker stuck in a
 * task for good, whose listeners then keep their share of new connections.
 */
import client from "prom-client";
import { type Config, loadConfig } from "../config/mod.ts";
import { getLogger } from "../log.ts";
import {
  adminSocketWanted,
  describe,
  loadMetricsTlsConfig,
  type ServeHandle,
  type ServeOptions,
} from "../serve/mod.ts";
import type { LmtpBoundAddress } from "../lmtp/mod.ts";
import { type MetricsServer, startMetricsServer, startMetricsTlsServer } from "../metrics/http.ts";
import { type AdminServer, startAdminServer } from "../admin/server.ts";
import type { KickResult, SessionRecord, StatsResult, WhoResult } from "../admin/protocol.ts";
import type { ServerConfig } from "../../protocol/tls/mod.ts";
import { SharedBoundaries } from "../../protocol/imap/recent.ts";
import { allocateSharedSync } from "../../mailstore/sqlite/mod.ts";
import { allocateAddressCounts, clearAddressColumn } from "./address_counts.ts";
import { allocateTicketUses } from "./ticket_uses.ts";
import { allocateRelayCounts } from "./event_relay.ts";
import { allocateSharedSessions } from "./session_store.ts";
import type { AdminCall, FromWorker, ToWorker } from "./protocol.ts";
import { HEARTBEAT_MS, RestartPolicy, SILENCE_MS, Watchdog } from "./restart_policy.ts";

const log = getLogger(["server", "workers"]);

type MetricJson = client.MetricObjectWithValues<client.MetricValue<string>>;

/** Figures of the whole process, which every Worker reports alike: not to be added up. */
const PROCESS_WIDE: Readonly<Record<string, "max" | "min">> = {
  process_resident_memory_bytes: "max",
  process_start_time_seconds: "min",
  postern_event_loop_lag_seconds: "max",
};

/** How long a Worker may take to stop after its sessions' grace period. */
const STOP_MARGIN_MS = 5000;
/** How long a question to a Worker (metrics, admin, reload) may go unanswered. */
const ANSWER_MS = 30_000;

/** What `serveWorkers` takes besides the configuration. */
export type SupervisorOptions = Pick<ServeOptions, "shutdownGraceMs" | "rereadConfig"> & {
  /**
   * How long a Worker's heartbeat may stand still before it is ended and replaced (default
   * `SILENCE_MS`; tests shorten it).
   */
  readonly heartbeatSilenceMs?: number;
};

/** One Worker and what the supervisor holds for it. */
class WorkerEntry {
  readonly id: number;
  readonly primary: boolean;
  readonly worker: Worker;
  /** Answers awaited from this Worker, by call number. */
  readonly waiting = new Map<number, (message: FromWorker | null) => void>();
  /** Claims it holds, by `scope NUL key`, released if it dies. */
  readonly held = new Map<string, number>();
  alive = true;

  constructor(id: number, primary: boolean) {
    this.id = id;
    this.primary = primary;
    this.worker = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });
  }

  post(message: ToWorker): void {
    if (this.alive) this.worker.postMessage(message);
  }
}

/**
 * Starts `count` Workers serving `config` and returns the same handle as `serve`. Fails (with
 * every Worker stopped) when any of them cannot start.
 */
export async function serveWorkers(
  config: Config,
  count: number,
  options: SupervisorOptions = {},
): Promise<ServeHandle> {
  const supervisor = new Supervisor(config, options);
  try {
    await supervisor.start(count);
  } catch (error) {
    await supervisor.stop();
    throw error;
  }
  return supervisor.handle();
}

class Supervisor {
  readonly #config: Config;
  readonly #options: SupervisorOptions;
  readonly #channel = `postern-mailbox-events-${crypto.randomUUID()}`;
  readonly #recent = SharedBoundaries.allocate();
  readonly #sync = allocateSharedSync();
  readonly #ticketSecret = crypto.getRandomValues(new Uint8Array(32));
  readonly #authCacheKey = crypto.getRandomValues(new Uint8Array(32));
  readonly #ticketUses = allocateTicketUses();
  readonly #sessions = allocateSharedSessions();
  #addressCounts = allocateAddressCounts();
  /** The current Worker of each id (index id - 1); a restarted one replaces its entry. */
  readonly #workers: WorkerEntry[] = [];
  readonly #policy = new RestartPolicy();
  readonly #watchdog: Watchdog;
  /** A heartbeat cell per Worker id (index id - 1), which the Worker bumps. */
  #heartbeats = new Int32Array(new SharedArrayBuffer(4));
  /** Mailbox events published by each Worker (`BroadcastRelay`), index id - 1. */
  #relayCounts = allocateRelayCounts(1);
  readonly #heartbeatMs: number;
  #watchTimer: ReturnType<typeof setInterval> | undefined;
  readonly #restartTimers = new Set<ReturnType<typeof setTimeout>>();
  /** Set once every Worker listens: from then on a failed Worker is restarted. */
  #serving = false;
  /** The configuration a restarted Worker starts with: the bound ports, fixed. */
  #restartConfig: Config | null = null;
  /** Live claims of every Worker together, by `scope NUL key`. */
  readonly #counts = new Map<string, number>();
  #nextCall = 1;
  #current: Config;
  #addresses: Deno.NetAddr[] = [];
  #lmtpAddresses: readonly LmtpBoundAddress[] = [];
  #metricsServer: MetricsServer | null = null;
  #metricsTls: ServerConfig | null = null;
  #adminServer: AdminServer | null = null;
  #stopping: Promise<void> | null = null;
  #resolveFinished!: () => void;
  readonly finished = new Promise<void>((resolve) => this.#resolveFinished = resolve);

  constructor(config: Config, options: SupervisorOptions) {
    this.#config = config;
    this.#current = config;
    this.#options = options;
    const silence = options.heartbeatSilenceMs ?? SILENCE_MS;
    this.#watchdog = new Watchdog(silence);
    // Several beats within the silence, so that one late timer is no death.
    this.#heartbeatMs = Math.max(10, Math.min(HEARTBEAT_MS, Math.floor(silence / 5)));
  }

  /** The first Worker binds the ports (0: free ones), then the others share them. */
  async start(count: number): Promise<void> {
    this.#addressCounts = allocateAddressCounts(undefined, count);
    this.#heartbeats = new Int32Array(new SharedArrayBuffer(4 * count));
    this.#relayCounts = allocateRelayCounts(count);
    const first = await this.#spawn(1, this.#config, true);
    this.#addresses = [...first.addresses];
    this.#lmtpAddresses = first.lmtpAddresses;
    const shared = this.#bound(this.#config);
    const rest = [];
    for (let id = 2; id <= count; id++) rest.push(this.#spawn(id, shared, false));
    const started = await Promise.allSettled(rest);
    const failed = started.find((r) => r.status === "rejected");
    if (failed) throw failed.reason;
    this.#serving = true;
    this.#restartConfig = shared;
    for (const [i, addr] of this.#addresses.entries()) {
      log.info("Listening on {address} ({tls})", {
        address: `${addr.hostname}:${addr.port}`,
        tls: this.#config.listen[i]!.tls,
      });
    }
    log.info("Serving with {count} workers", { count });
    this.#watchTimer = setInterval(() => this.#checkHeartbeats(), this.#heartbeatMs);
    Deno.unrefTimer(this.#watchTimer);
    await this.#startMetrics();
    await this.#startAdmin();
  }

  handle(): ServeHandle {
    // deno-lint-ignore no-this-alias
    const supervisor = this;
    return {
      addresses: this.#addresses,
      lmtpAddresses: this.#lmtpAddresses,
      get metricsAddress() {
        return supervisor.#metricsServer?.addr ?? null;
      },
      get adminSocket() {
        return supervisor.#adminServer?.path ?? null;
      },
      finished: this.finished,
      // Each Worker revokes its own sessions; the directory's state is theirs.
      revocation: () => ({ revocation: "workers", synced: null }),
      reload: (next) => this.reload(next ?? this.#current),
      shutdown: () => this.stop(),
      worker: null,
      failWorkerForTest: (id, how) => this.#failForTest(id, how),
    };
  }

  /** Passes a new configuration to every Worker; fails if any refuses it. */
  async reload(next: Config): Promise<void> {
    const answers = await this.#askAll((call) => ({ kind: "reload", call, config: next }));
    const refused = answers.find((a) => a?.kind === "reloaded" && a.error !== null);
    if (refused?.kind === "reloaded") throw new Error(refused.error!);
    if (answers.includes(null)) throw new Error("A worker did not answer the reload");
    if (this.#metricsTls !== null) {
      this.#metricsTls = await loadMetricsTlsConfig(next, this.#config.metrics?.clientCa ?? []);
    }
    this.#current = next;
    this.#restartConfig = this.#bound(next);
  }

  /**
   * `config` with the ports the first Worker bound (0 in the file picks free ones), for the
   * Workers that join it and those that replace a failed one.
   */
  #bound(config: Config): Config {
    const lmtp = config.lmtp;
    const sameLmtp = lmtp !== null && lmtp.listen.length === this.#lmtpAddresses.length;
    return {
      ...config,
      listen: config.listen.map((l, i) => ({ ...l, port: this.#addresses[i]?.port ?? l.port })),
      ...(sameLmtp ? { lmtp: { ...lmtp, listen: this.#lmtpAddresses } } : {}),
    };
  }

  /** Makes Worker `id` fail as a crash would (tests only: nothing outside the process can). */
  #failForTest(id: number, how: "throw" | "terminate" | "close" | "block"): boolean {
    const entry = this.#workers[id - 1];
    if (entry === undefined || !entry.alive) return false;
    if (how === "terminate") this.#exited(entry, "terminated");
    else entry.post({ kind: "fail", how });
    return true;
  }

  /** Ends and replaces the Workers whose heartbeat stood still too long. */
  #checkHeartbeats(): void {
    if (this.#stopping !== null) return;
    const now = performance.now();
    for (const id of this.#watchdog.check(now, (id) => Atomics.load(this.#heartbeats, id - 1))) {
      const entry = this.#workers[id - 1];
      if (entry?.alive) this.#exited(entry, "its heartbeat stopped");
    }
  }

  /** Graceful shutdown of every Worker, then of the supervisor's own listeners. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      clearInterval(this.#watchTimer);
      for (const timer of this.#restartTimers) clearTimeout(timer);
      this.#restartTimers.clear();
      await this.#adminServer?.close();
      const grace = this.#options.shutdownGraceMs ?? 5000;
      await Promise.all(this.#workers.map((entry) => this.#stopWorker(entry, grace)));
      await this.#metricsServer?.close();
      this.#resolveFinished();
    })();
    return this.#stopping;
  }

  async #stopWorker(entry: WorkerEntry, graceMs: number): Promise<void> {
    if (entry.alive) {
      const stopped = new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, graceMs + STOP_MARGIN_MS);
        entry.waiting.set(0, () => {
          clearTimeout(timer);
          resolve();
        });
      });
      entry.post({ kind: "shutdown" });
      await stopped;
    }
    this.#exited(entry, null);
  }

  /** Starts Worker `id` and waits until it listens (or fails). */
  #spawn(
    id: number,
    config: Config,
    primary: boolean,
  ): Promise<{ addresses: readonly Deno.NetAddr[]; lmtpAddresses: readonly LmtpBoundAddress[] }> {
    const entry = new WorkerEntry(id, primary);
    this.#workers[id - 1] = entry;
    return new Promise((resolve, reject) => {
      let starting = true;
      entry.worker.onmessage = (e: MessageEvent<FromWorker>) => {
        const message = e.data;
        if (starting && message.kind === "ready") {
          starting = false;
          this.#watchdog.watch(id, Atomics.load(this.#heartbeats, id - 1), performance.now());
          resolve(message);
        } else if (starting && message.kind === "failed") {
          starting = false;
          reject(new Error(message.error));
          // A replacement that cannot start is a failure like any other (retried, bounded).
          if (this.#serving) this.#exited(entry, message.error);
        } else {
          this.#onMessage(entry, message);
        }
      };
      entry.worker.onerror = (e: ErrorEvent) => {
        e.preventDefault();
        log.error("Worker {id} failed: {error}", { id, error: e.message });
        this.#exited(entry, e.message);
        if (starting) {
          starting = false;
          reject(new Error(`Worker ${id} failed: ${e.message}`));
        }
      };
      entry.post({
        kind: "start",
        id,
        primary,
        column: id - 1,
        config,
        channel: this.#channel,
        relayCounts: this.#relayCounts,
        recent: this.#recent,
        sync: this.#sync,
        ticketSecret: this.#ticketSecret,
        authCacheKey: this.#authCacheKey,
        ticketUses: this.#ticketUses,
        sessions: this.#sessions,
        addressCounts: this.#addressCounts,
        heartbeats: this.#heartbeats.buffer as SharedArrayBuffer,
        heartbeatMs: this.#heartbeatMs,
        shutdownGraceMs: this.#options.shutdownGraceMs ?? 5000,
      });
    });
  }

  #onMessage(entry: WorkerEntry, message: FromWorker): void {
    switch (message.kind) {
      case "claim": {
        const key = `${message.scope}\0${message.key}`;
        const count = this.#counts.get(key) ?? 0;
        const ok = count < message.limit;
        if (ok) {
          this.#counts.set(key, count + 1);
          entry.held.set(key, (entry.held.get(key) ?? 0) + 1);
        }
        entry.post({ kind: "claimed", call: message.call, ok });
        return;
      }
      case "release": {
        const key = `${message.scope}\0${message.key}`;
        const held = entry.held.get(key) ?? 0;
        if (held === 0) return;
        if (held === 1) entry.held.delete(key);
        else entry.held.set(key, held - 1);
        this.#decrement(key, 1);
        return;
      }
      case "reloaded":
      case "metrics":
      case "admin": {
        const resolve = entry.waiting.get(message.call);
        entry.waiting.delete(message.call);
        resolve?.(message);
        return;
      }
      case "stopped":
        entry.waiting.get(0)?.(message);
        return;
      case "ready":
      case "failed":
        return;
      default: {
        const never: never = message;
        log.error("Unknown message from worker {id}: {message}", { id: entry.id, message: never });
      }
    }
  }

  /**
   * A Worker is gone: its claims and connection counts are released, its pending answers are
   * given up. One that failed (`cause`) while serving is restarted.
   */
  #exited(entry: WorkerEntry, cause: string | null): void {
    if (!entry.alive) return;
    entry.alive = false;
    this.#watchdog.forget(entry.id);
    entry.worker.terminate();
    for (const [key, held] of entry.held) this.#decrement(key, held);
    entry.held.clear();
    for (const resolve of entry.waiting.values()) resolve(null);
    entry.waiting.clear();
    clearAddressColumn(this.#addressCounts, entry.id - 1);
    if (cause !== null && this.#serving && this.#stopping === null && this.#restart(entry, cause)) {
      return;
    }
    if (this.#stopping === null && this.#workers.every((w) => !w.alive)) {
      log.error("Every worker has stopped");
      void this.stop();
    }
  }

  /**
   * Schedules a replacement for a failed Worker, after a back-off that doubles with each
   * restart of the last minute; past the cap (`RestartPolicy`), it waits for the minute to
   * pass. False when it failed too often and no other Worker is left: the server then stops
   * (a service manager starts it afresh) rather than spin.
   */
  #restart(entry: WorkerEntry, cause: string): boolean {
    const now = performance.now();
    const othersAlive = this.#workers.some((w) => w.alive);
    const delay = this.#policy.onFailure(entry.id, now, othersAlive);
    if (delay === null) {
      log.error("Worker {id} stopped ({cause}) after {count} restarts within a minute", {
        id: entry.id,
        cause,
        count: this.#policy.recentCount(entry.id, now),
      });
      return false;
    }
    log.error("Worker {id} stopped ({cause}); restarting it in {delay} ms", {
      id: entry.id,
      cause,
      delay,
    });
    const timer = setTimeout(() => {
      this.#restartTimers.delete(timer);
      if (this.#stopping !== null) return;
      // Anything the failed Worker counted after it was cleared at its exit goes too.
      clearAddressColumn(this.#addressCounts, entry.id - 1);
      this.#spawn(entry.id, this.#restartConfig!, entry.primary).then(
        () => log.info("Worker {id} restarted", { id: entry.id }),
        // Its failure was logged and handled (another try) where it was heard.
        () => {},
      );
    }, delay);
    this.#restartTimers.add(timer);
    return true;
  }

  #decrement(key: string, by: number): void {
    const left = (this.#counts.get(key) ?? by) - by;
    if (left <= 0) this.#counts.delete(key);
    else this.#counts.set(key, left);
  }

  /** Sends a request to every live Worker and collects the answers (null from a dead one). */
  #askAll(request: (call: number) => ToWorker): Promise<(FromWorker | null)[]> {
    return Promise.all(
      this.#workers.filter((w) => w.alive).map((entry) => {
        const call = this.#nextCall++;
        return new Promise<FromWorker | null>((resolve) => {
          const timer = setTimeout(() => {
            entry.waiting.delete(call);
            log.warn("Worker {id} did not answer in time", { id: entry.id });
            resolve(null);
          }, ANSWER_MS);
          entry.waiting.set(call, (answer) => {
            clearTimeout(timer);
            resolve(answer);
          });
          entry.post(request(call));
        });
      }),
    );
  }

  async #metricsText(): Promise<string> {
    const answers = await this.#askAll((call) => ({ kind: "metrics", call }));
    const sets: MetricJson[][] = [];
    for (const answer of answers) {
      if (answer?.kind !== "metrics") continue;
      sets.push(answer.metrics.map((m) => {
        const aggregator = PROCESS_WIDE[m.name];
        return aggregator ? { ...m, aggregator } : m;
      }));
    }
    return await client.AggregatorRegistry.aggregate(sets).metrics();
  }

  async #startMetrics(): Promise<void> {
    const settings = this.#config.metrics;
    if (settings === null) return;
    const http = {
      hostname: settings.hostname,
      port: settings.port,
      metrics: { expose: () => this.#metricsText() },
      readiness: () => {
        if (this.#stopping !== null) return Promise.resolve("shutting down");
        const down = this.#workers.filter((w) => !w.alive).map((w) => w.id);
        return Promise.resolve(down.length === 0 ? null : `workers stopped: ${down.join(", ")}`);
      },
      onError: (error: unknown) =>
        log.error("Metrics request failed: {error}", { error: describe(error) }),
    };
    if (settings.clientCa.length > 0) {
      this.#metricsTls = await loadMetricsTlsConfig(this.#config, settings.clientCa);
      this.#metricsServer = startMetricsTlsServer({
        ...http,
        tlsConfig: () => this.#metricsTls!,
        handshakeTimeoutMs: this.#config.tls.handshakeTimeoutMs,
      });
    } else {
      this.#metricsServer = startMetricsServer(http);
    }
    log.info("Metrics on {address}", {
      address: `${settings.hostname}:${this.#metricsServer.addr.port}`,
    });
  }

  async #startAdmin(): Promise<void> {
    const config = this.#config;
    if (!(await adminSocketWanted(config))) return;
    const reread = this.#options.rereadConfig ??
      (() => config.source === null ? Promise.resolve(this.#current) : loadConfig(config.source));
    const ask = async <T>(request: AdminCall): Promise<T[]> =>
      (await this.#askAll((call) => ({ kind: "admin", call, request })))
        .flatMap((a) => a?.kind === "admin" && a.result !== null ? [a.result as T] : []);
    try {
      this.#adminServer = await startAdminServer({
        path: config.admin.socket,
        handler: {
          who: async (): Promise<WhoResult> => ({
            sessions: (await ask<WhoResult>({ cmd: "who" })).flatMap(
              (r): SessionRecord[] => [...r.sessions],
            ),
          }),
          kick: async (target): Promise<KickResult> => ({
            kicked: (await ask<KickResult>({ cmd: "kick", target }))
              .reduce((sum, r) => sum + r.kicked, 0),
          }),
          stats: async (): Promise<StatsResult> =>
            addStats(await ask<StatsResult>({ cmd: "stats" })),
          reload: async () => {
            try {
              await this.reload(await reread());
              return { taken: true };
            } catch (error) {
              return {
                taken: false,
                error: error instanceof Error ? error.message : String(error),
              };
            }
          },
        },
        onError: (message, error) => log.error(`${message}: {error}`, { error: describe(error) }),
      });
      log.info("Admin socket at {path}", { path: config.admin.socket });
    } catch (error) {
      if (config.admin.enabled === true) throw error;
      log.warn("No admin socket at {path}: {error}", {
        path: config.admin.socket,
        error: describe(error),
      });
    }
  }
}

/** Counters of every Worker added up; the process-wide ones are taken once. */
function addStats(all: readonly StatsResult[]): StatsResult {
  const counters: Record<string, number> = {};
  for (const { counters: one } of all) {
    for (const [name, value] of Object.entries(one)) {
      const once = name === "uptimeSeconds" || name === "residentMemoryBytes";
      counters[name] = once ? Math.max(counters[name] ?? 0, value) : (counters[name] ?? 0) + value;
    }
  }
  return { counters };
}
