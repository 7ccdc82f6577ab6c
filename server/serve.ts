/**
 * Runs the server from a validated configuration: binds the listeners, keeps the TLS material
 * current across reloads, writes one access line per connection, and shuts down gracefully.
 */
import { dirname, join } from "node:path";
import { type Config, loadConfig, MAX_SOCKET_PATH } from "./config.ts";
import { getLogger } from "./log.ts";
import { type AccessRecord, type Application, ListenerGroup } from "./listener.ts";
import { buildServerConfig } from "./tls_config.ts";
import type { ServerConfig } from "../protocol/tls/mod.ts";
import type { PeerCheck } from "./tls_channel.ts";
import { ServerStack } from "./stack.ts";
import { type Metrics, NO_METRICS } from "./metrics/metrics.ts";
import { PrometheusMetrics } from "./metrics/prometheus.ts";
import { KeyCounters, teeMetrics } from "./metrics/counters.ts";
import { type MetricsServer, startMetricsServer, startMetricsTlsServer } from "./metrics/http.ts";
import { type AdminServer, isPrivateDirectory, startAdminServer } from "./admin/server.ts";
import { adminHandler } from "./admin/handler.ts";

export interface ServeHandle {
  /** The bound addresses, in the order of `config.listen`. */
  readonly addresses: readonly Deno.NetAddr[];
  /** The metrics listener's address, or null when metrics are off. */
  readonly metricsAddress: Deno.NetAddr | null;
  /** The admin socket's path, or null when it is not open. */
  readonly adminSocket: string | null;
  /** Resolves when the server has stopped. */
  readonly finished: Promise<void>;
  /** Re-reads certificates and CA bundles; keeps the old ones if the new ones fail. */
  reload(config?: Config): Promise<void>;
  /** Graceful shutdown: stop accepting, BYE to sessions, let commits finish. */
  shutdown(): Promise<void>;
}

export interface ServeOptions {
  /** The protocol spoken on each connection; default IMAP over the configured store. */
  readonly application?: Application;
  readonly checkPeer?: PeerCheck;
  /** How long shutdown waits for sessions before closing them. Default 5 s. */
  readonly shutdownGraceMs?: number;
  /** Reads the configuration again for `postern reload`; default: the file it came from. */
  readonly rereadConfig?: () => Promise<Config>;
}

const accessLog = getLogger(["access"]);
const log = getLogger(["server"]);

/** Reads the TLS files named by the configuration and builds the engine configuration. */
export async function loadTlsConfig(config: Config): Promise<ServerConfig> {
  const [certificatePem, privateKeyPem, ...clientCaPems] = await Promise.all([
    Deno.readTextFile(config.tls.certificate),
    Deno.readTextFile(config.tls.privateKey),
    ...(config.tls.clientAuth === "none"
      ? []
      : config.tls.clientCa.map((p) => Deno.readTextFile(p))),
  ]);
  return buildServerConfig({
    certificatePem: certificatePem!,
    privateKeyPem: privateKeyPem!,
    clientAuth: config.tls.clientAuth,
    clientCaPems,
    maxChainDepth: config.tls.maxChainDepth,
  });
}

export function formatAccess(record: AccessRecord): Record<string, unknown> {
  const peer = record.tls?.peer?.identity;
  return {
    conn: record.id,
    peer: record.peer,
    listener: record.listener,
    tls: record.tls ? `${record.tls.version} ${record.tls.cipherSuite}` : "none",
    sni: record.tls?.sni ?? null,
    certSubject: peer?.subject ?? null,
    certSerial: peer?.serial ?? null,
    user: record.user ?? null,
    bytesIn: record.bytesIn,
    bytesOut: record.bytesOut,
    durationMs: record.durationMs,
    close: record.closeReason,
  };
}

export async function serve(config: Config, options: ServeOptions = {}): Promise<ServeHandle> {
  let tlsConfig = await loadTlsConfig(config);
  let current = config;
  const adminOn = await adminSocketWanted(config);
  const prometheus = config.metrics === null ? null : new PrometheusMetrics({
    databaseBytes: () => databaseBytes(join(config.dataDir, "postern.db")),
  });
  const counters = adminOn ? new KeyCounters() : null;
  const metrics: Metrics = prometheus && counters
    ? teeMetrics(prometheus, counters)
    : prometheus ?? counters ?? NO_METRICS;
  let stack: ServerStack | null = null;
  try {
    stack = options.application
      ? null
      : await ServerStack.open(config, { metrics, timeStore: prometheus !== null });
  } catch (error) {
    prometheus?.close();
    throw error;
  }
  const checkPeer = options.checkPeer ?? stack?.checkPeer;
  const group = new ListenerGroup({
    tlsConfig: () => tlsConfig,
    handshakeTimeoutMs: config.tls.handshakeTimeoutMs,
    ...(checkPeer ? { checkPeer } : {}),
    maxConnectionsPerAddress: config.limits.maxConnectionsPerAddress,
    application: options.application ?? stack!.imap.application,
    onAccess: (record) =>
      accessLog.info(
        "{peer} {tls} user={user} cert={certSubject} in={bytesIn} out={bytesOut} {durationMs}ms {close}",
        formatAccess(record),
      ),
    onError: (message, error) => log.error(`${message}: {error}`, { error: describe(error) }),
    metrics,
  });
  let addresses: Deno.NetAddr[];
  try {
    addresses = group.listen(
      config.listen.map((l) => ({ hostname: l.hostname, port: l.port, tls: l.tls })),
    );
  } catch (error) {
    await stack?.close();
    prometheus?.close();
    throw error;
  }
  for (const [i, addr] of addresses.entries()) {
    log.info("Listening on {address} ({tls})", {
      address: `${addr.hostname}:${addr.port}`,
      tls: config.listen[i]!.tls,
    });
  }
  let resolveFinished!: () => void;
  const finished = new Promise<void>((r) => resolveFinished = r);
  let stopping: Promise<void> | null = null;
  let metricsServer: MetricsServer | null = null;
  let metricsTls: ServerConfig | null = null;
  let adminServer: AdminServer | null = null;
  const handle: ServeHandle = {
    addresses,
    get metricsAddress() {
      return metricsServer?.addr ?? null;
    },
    get adminSocket() {
      return adminServer?.path ?? null;
    },
    finished,
    async reload(next?: Config) {
      const candidate = next ?? current;
      try {
        const nextTls = await loadTlsConfig(candidate);
        // The metrics listener presents the new server certificate; its scraper CAs stay.
        const nextMetricsTls = metricsTls === null
          ? null
          : await loadMetricsTlsConfig(candidate, config.metrics?.clientCa ?? []);
        await stack?.reload(candidate);
        tlsConfig = nextTls;
        metricsTls = nextMetricsTls;
        current = candidate;
        log.info("Reloaded TLS certificates, CA bundles and directory settings");
        if (
          JSON.stringify([candidate.metrics, candidate.admin]) !==
            JSON.stringify([config.metrics, config.admin])
        ) {
          log.warn("Changes to metrics: and admin: take effect at the next start");
        }
      } catch (error) {
        log.error("Reload failed, keeping the previous configuration: {error}", {
          error: describe(error),
        });
        throw error;
      }
    },
    shutdown() {
      stopping ??= (async () => {
        log.info("Shutting down: {connections} open connections", {
          connections: group.connectionCount,
        });
        await adminServer?.close();
        await group.close(options.shutdownGraceMs ?? 5000);
        // Sessions are gone and in-flight commits have settled: the store can close.
        await stack?.close();
        await metricsServer?.close();
        prometheus?.close();
        resolveFinished();
      })();
      return stopping;
    },
  };
  const startedAt = Date.now();
  try {
    if (prometheus !== null && config.metrics !== null) {
      const http = {
        hostname: config.metrics.hostname,
        port: config.metrics.port,
        metrics: prometheus,
        readiness: async () => {
          if (stopping !== null) return "shutting down";
          if (!group.listening) return "listeners are not accepting";
          return (await stack?.readiness()) ?? null;
        },
        onError: (error: unknown) =>
          log.error("Metrics request failed: {error}", { error: describe(error) }),
      };
      const secure = config.metrics.clientCa.length > 0;
      if (secure) {
        metricsTls = await loadMetricsTlsConfig(config, config.metrics.clientCa);
        metricsServer = startMetricsTlsServer({
          ...http,
          tlsConfig: () => metricsTls!,
          handshakeTimeoutMs: config.tls.handshakeTimeoutMs,
        });
      } else {
        metricsServer = startMetricsServer(http);
      }
      log.info("Metrics on {scheme}://{address}/metrics", {
        scheme: secure ? "https" : "http",
        address: `${config.metrics.hostname}:${metricsServer.addr.port}`,
      });
      if (!secure && !["127.0.0.1", "::1", "localhost"].includes(config.metrics.hostname)) {
        // Plain HTTP without authentication: traffic figures and /readyz for anyone who can
        // reach the address.
        log.warn("Metrics listener {address} is reachable beyond this machine, in clear", {
          address: config.metrics.address,
        });
      }
    }
    if (counters !== null) {
      const reread = options.rereadConfig ??
        (() => config.source === null ? Promise.resolve(current) : loadConfig(config.source));
      try {
        adminServer = await startAdminServer({
          path: config.admin.socket,
          handler: adminHandler({
            sessions: () => stack?.imap.sessions ?? [],
            reload: async () => await handle.reload(await reread()),
            counters,
            connections: () => group.connectionCount,
            startedAt,
          }),
          onError: (message, error) => log.error(`${message}: {error}`, { error: describe(error) }),
        });
        log.info("Admin socket at {path}", { path: config.admin.socket });
      } catch (error) {
        // Asked for explicitly, a socket that cannot be opened stops the start; by default
        // the server runs without it.
        if (config.admin.enabled === true) throw error;
        log.warn("No admin socket at {path}: {error}", {
          path: config.admin.socket,
          error: describe(error),
        });
      }
    }
  } catch (error) {
    await handle.shutdown();
    throw error;
  }
  return handle;
}

/** The metrics listener's TLS: the server certificate, client certificates required. */
async function loadMetricsTlsConfig(
  config: Config,
  clientCa: readonly string[],
): Promise<ServerConfig> {
  const [certificatePem, privateKeyPem, ...clientCaPems] = await Promise.all([
    Deno.readTextFile(config.tls.certificate),
    Deno.readTextFile(config.tls.privateKey),
    ...clientCa.map((p) => Deno.readTextFile(p)),
  ]);
  const tls = buildServerConfig({
    certificatePem: certificatePem!,
    privateKeyPem: privateKeyPem!,
    clientAuth: "required",
    clientCaPems,
    maxChainDepth: config.tls.maxChainDepth,
  });
  // HTTP/1.1 only (RFC 7301): a client offering h2 alone gets no_application_protocol.
  return { ...tls, alpnProtocols: ["http/1.1"] };
}

/**
 * Whether to open the admin socket: when asked, or by default when its folder is private.
 * Asked for in a folder others can enter, it is refused: between bind and chmod, anyone there
 * could connect.
 */
export async function adminSocketWanted(config: Config): Promise<boolean> {
  const { enabled, socket } = config.admin;
  if (enabled === false) return false;
  const folder = dirname(socket);
  const fits = new TextEncoder().encode(socket).length <= MAX_SOCKET_PATH;
  if (enabled === "auto") {
    if (!fits) log.warn("No admin socket: its path {path} is too long", { path: socket });
    return fits && await isPrivateDirectory(folder);
  }
  if (!(await isPrivateDirectory(folder))) {
    throw new Error(
      `admin.enabled is true but ${folder} is not private to this user (chmod 700 it, or set admin.socket elsewhere)`,
    );
  }
  return true;
}

/** Bytes in the SQLite database and its write-ahead log, or null when they cannot be read. */
function databaseBytes(path: string): number | null {
  try {
    let total = Deno.statSync(path).size;
    try {
      total += Deno.statSync(`${path}-wal`).size;
    } catch {
      // No WAL file right now.
    }
    return total;
  } catch {
    return null;
  }
}

/** An error's message without its stack, for log lines. */
export function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
