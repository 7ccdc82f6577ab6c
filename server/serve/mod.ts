/**
 * Runs the server from a validated configuration: binds the listeners, keeps the TLS material
 * current across reloads, writes one access line per connection, and shuts down gracefully.
 */
import { Wakeup, wakeupPath } from "../connection/wakeup.ts";
import { dropTurnStart, useTurnStart } from "../../protocol/event_loop.ts";
import { dirname } from "node:path";
import { type Config, loadConfig, MAX_SOCKET_PATH } from "../config/mod.ts";
import { getLogger } from "../log.ts";
import { type AccessRecord, type Application, ListenerGroup } from "../connection/listener.ts";
import { certificatesFromPem, serverOptions } from "../connection/tls_config.ts";
import { ServerAhead } from "../connection/handshake_ahead.ts";
import { readTlsMaterial, type TlsMaterial } from "../config/tls.ts";
import {
  type ServerConfig,
  type ServerOptions,
  SessionCache,
  type SessionStore12,
  TicketKeys,
  type TicketUseCounter,
  TicketUses,
} from "../../protocol/tls/mod.ts";
import { defaultProvider } from "../../protocol/crypto/mod.ts";
import type { PeerCheck } from "../connection/tls_channel.ts";
import { ServerStack } from "./stack.ts";
import { type LmtpBoundAddress, LmtpDelivery, LmtpServer } from "../lmtp/mod.ts";
import { warnIfExposed } from "./data_dir.ts";
import { sqlitePath } from "./store.ts";
import { type CrlCheck, loadCrlCheck, watchCrlFiles } from "./crl.ts";
import { type Metrics, NO_METRICS } from "../metrics/metrics.ts";
import { PrometheusMetrics } from "../metrics/prometheus.ts";
import { KeyCounters, teeMetrics } from "../metrics/counters.ts";
import { type MetricsServer, startMetricsServer, startMetricsTlsServer } from "../metrics/http.ts";
import { type AdminServer, isPrivateDirectory, startAdminServer } from "../admin/server.ts";
import { adminHandler } from "../admin/handler.ts";
import { parseCidr } from "../../protocol/proxy/mod.ts";
import type { AdminHandler } from "../admin/server.ts";
import type { FailureFeed } from "../auth/local.ts";
import type { AddressGate } from "../connection/listener.ts";
import type { EventRelay } from "../../mailstore/event_hub.ts";
import type { SessionRegistry } from "../../mailstore/session_registry.ts";
import type client from "prom-client";

export interface ServeHandle {
  /** The bound addresses, in the order of `config.listen`. */
  readonly addresses: readonly Deno.NetAddr[];
  /** The bound LMTP addresses, in the order of `config.lmtp.listen` (empty without LMTP). */
  readonly lmtpAddresses: readonly LmtpBoundAddress[];
  /** The metrics listener's address, or null when metrics are off. */
  readonly metricsAddress: Deno.NetAddr | null;
  /** The admin socket's path, or null when it is not open. */
  readonly adminSocket: string | null;
  /** Resolves when the server has stopped. */
  readonly finished: Promise<void>;
  /** Which mode revokes open sessions now and when the directory was last in sync. */
  revocation(): { revocation: string; synced: string | null };
  /** Re-reads certificates and CA bundles; keeps the old ones if the new ones fail. */
  reload(config?: Config): Promise<void>;
  /** Graceful shutdown: stop accepting, BYE to sessions, let commits finish. */
  shutdown(): Promise<void>;
  /** In a Worker: what its supervisor asks of this accept loop; null otherwise. */
  readonly worker: WorkerEndpoint | null;
  /**
   * With several Workers, for tests: makes Worker `id` fail as a crash does ("throw": an
   * uncaught error in it; "terminate": it is ended; "close": it ends itself with `self.close()`,
   * of which Deno tells its parent nothing; "block": its event loop is stuck in one task for
   * `BLOCK_FOR_TEST_MS`). False when it is not running. Reachable only from
   * code in this process, never from a connection or the admin socket.
   */
  readonly failWorkerForTest?: (
    id: number,
    how: "throw" | "terminate" | "close" | "block",
  ) => boolean;
}

/**
 * What a Worker's accept loop shares with the others (server/workers/): its listeners bind
 * with SO_REUSEPORT; mailbox events, \Recent, WAL syncs, login failures, ticket keys and the
 * connection counts are common to all of them. The metrics listener and the admin socket are
 * the supervisor's.
 */
export interface WorkerRole {
  /** Which accept loop this is, from 1 (access log, IMAP ID). */
  readonly id: number;
  /** Runs the server's one LMTP listener. */
  readonly primary: boolean;
  readonly relay: EventRelay;
  /** The \Recent boundaries of every Worker (protocol/imap/recent.ts `SharedBoundaries`). */
  readonly recent: SharedArrayBuffer;
  /** The WAL syncs of every Worker's SQLite connection (`allocateSharedSync`). */
  readonly sync: SharedArrayBuffer;
  /** Login failures per address, shared for the back-off. */
  readonly failureFeed: FailureFeed;
  /** The secret every Worker derives its session-ticket keys from. */
  readonly ticketSecret: Uint8Array;
  /** TLS 1.3 ticket uses and TLS 1.2 sessions by ID, common to every Worker. */
  readonly resumption: Pick<Resumption, "ticketUses" | "sessionCache">;
  readonly sessions: SessionRegistry;
  readonly addressGate: AddressGate;
}

/** A Worker's answers to its supervisor. */
export interface WorkerEndpoint {
  /** This loop's metrics, for the supervisor to add up (prom-client's JSON form). */
  metrics(): Promise<client.MetricObjectWithValues<client.MetricValue<string>>[]>;
  /** The admin commands over this loop's sessions; null when the admin socket is off. */
  readonly admin: AdminHandler | null;
}

export interface ServeOptions {
  /** The protocol spoken on each connection; default IMAP over the configured store. */
  readonly application?: Application;
  readonly checkPeer?: PeerCheck;
  /** How long shutdown waits for sessions before closing them. Default 5 s. */
  readonly shutdownGraceMs?: number;
  /** Reads the configuration again for `postern reload`; default: the file it came from. */
  readonly rereadConfig?: () => Promise<Config>;
  /** Runs as one of several accept loops (server/workers/). */
  readonly worker?: WorkerRole;
}

const accessLog = getLogger(["access"]);
const log = getLogger(["server"]);

/** Resumption state (TLS 1.2 and 1.3): made once per process and kept across reloads. */
export interface Resumption {
  readonly ticketKeys: TicketKeys;
  readonly sessionCache: SessionStore12;
  readonly ticketUses: TicketUseCounter;
}

/**
 * The ticket settings are read at start; a reload keeps the keys (and the tickets) alive.
 * Workers derive their ticket keys from one `ticketSecret`, so that each opens the others',
 * and count ticket uses and keep TLS 1.2 sessions in memory they share.
 */
export function newResumption(config: Config, role?: WorkerRole): Resumption {
  const ticketKeys = new TicketKeys({
    provider: defaultProvider,
    count: config.tls.tickets.count,
    keyLifetimeMs: config.tls.tickets.keyLifetimeMs,
    ...(role ? { secret: role.ticketSecret } : {}),
  });
  return role ? { ticketKeys, ...role.resumption } : {
    ticketKeys,
    sessionCache: new SessionCache(),
    ticketUses: new TicketUses({ maxUses: config.tls.tickets.maxUses }),
  };
}

/**
 * The TLS engine configuration from the material the configuration read and parsed (a
 * configuration read without its files has it read here, once).
 */
export function loadTlsConfig(config: Config, resumption?: Resumption): ServerOptions {
  return serverOptions(tlsMaterial(config), {
    clientAuth: config.tls.clientAuth,
    maxChainDepth: config.tls.maxChainDepth,
    minVersion: config.tls.minVersion,
    requireExtendedMasterSecret: config.tls.requireExtendedMasterSecret,
    ticketsPerConnection: config.tls.tickets.perConnection,
    halfRtt: config.tls.halfRtt,
    pskModes: config.tls.tickets.pskKe ? ["psk_dhe_ke", "psk_ke"] : ["psk_dhe_ke"],
    ...(resumption ?? {}),
  });
}

/**
 * Signs once with each ECDSA key of `options`, so that the one-time set-up of the first
 * signature (noble's fixed-base table: about 0.1 s on this machine) runs before the listeners
 * open instead of stalling the event loop in the first client's handshake.
 */
export function warmSigningKeys(options: ServerOptions): void {
  const provider = options.provider ?? defaultProvider;
  const keys = new Set([
    options.privateKey,
    ...(options.certificates ?? []).map((c) => c.privateKey),
  ]);
  for (const key of keys) {
    if (key.kind !== "ec") continue;
    try {
      provider.sign(key, { kind: "ecdsa", hash: "SHA-256" }, new Uint8Array(0));
    } catch {
      // A key the provider cannot use fails in the handshake, with its own error.
    }
  }
}

/**
 * Runs each hash, HKDF, AEAD and key exchange a handshake uses once, so that their one-time
 * set-up (node:crypto's lazily loaded modules, first compilation: about 9 ms on this machine)
 * runs before the listeners open instead of in the first client's handshake.
 */
export function warmPrimitives(options: ServerOptions): void {
  const provider = options.provider ?? defaultProvider;
  try {
    for (const algorithm of ["SHA-256", "SHA-384"] as const) {
      const hash = provider.createHash(algorithm);
      hash.update(new Uint8Array(32));
      hash.clone().digest();
      const prk = provider.hkdfExtract(algorithm, new Uint8Array(0), hash.digest());
      provider.hkdfExpand(algorithm, prk, new Uint8Array(0), 32);
      provider.hmac(algorithm, prk, new Uint8Array(0));
    }
    const aeads = [["AES-128-GCM", 16], ["AES-256-GCM", 32], ["CHACHA20-POLY1305", 32]] as const;
    for (const [algorithm, keyLength] of aeads) {
      const aead = provider.createAead(algorithm, new Uint8Array(keyLength));
      const nonce = new Uint8Array(aead.nonceLength);
      const sealed = aead.seal(nonce, new Uint8Array(5), new Uint8Array(16));
      aead.open(nonce, new Uint8Array(5), sealed);
      const out = new Uint8Array(17 + aead.tagLength);
      aead.sealInto(nonce, new Uint8Array(5), new Uint8Array(16), new Uint8Array(1), out, 0);
    }
    for (const group of ["x25519", "secp256r1"] as const) {
      provider.generateKeyShare(group).computeSecret(provider.generateKeyShare(group).publicKey);
    }
  } catch {
    // A primitive the provider lacks fails in the handshake that needs it, with its own error.
  }
}

function tlsMaterial(config: Config): TlsMaterial {
  return config.tls.material ?? readTlsMaterial(config.tls);
}

/** Reads and verifies the CRLs of `tls.crl`; null when none are configured. */
export async function loadCrls(config: Config): Promise<CrlCheck | null> {
  if (config.tls.crl.length === 0) return null;
  return await loadCrlCheck(
    {
      files: config.tls.crl,
      policy: config.tls.crlPolicy,
      clientCas: tlsMaterial(config).clientCas,
    },
    defaultProvider,
  );
}

export function formatAccess(record: AccessRecord): Record<string, unknown> {
  const peer = record.tls?.peer?.identity;
  return {
    conn: record.id,
    peer: record.peer,
    listener: record.listener,
    tls: record.tls
      ? `${record.tls.version} ${record.tls.cipherSuite}${record.tls.resumed ? " resumed" : ""}`
      : "none",
    sni: record.tls?.sni ?? null,
    certSubject: peer?.subject ?? null,
    certSerial: peer?.serial ?? null,
    user: record.user ?? null,
    bytesIn: record.bytesIn,
    bytesOut: record.bytesOut,
    durationMs: record.durationMs,
    close: record.closeReason,
    notes: Object.entries(record.notes ?? {}).map(([k, v]) => `${k}=${JSON.stringify(v)}`)
      .join(" "),
  };
}

/** The access line's template; `{notes}` follows when the application left any. */
const ACCESS_LINE = "{peer} {tls} user={user} cert={certSubject} in={bytesIn} out={bytesOut} " +
  "{durationMs}ms {close} revocation={revocation} synced={synced}";

/** Warns about secret files that the group or others may read. */
async function warnAboutExposedSecrets(config: Config): Promise<void> {
  const warn = (message: string, props: Record<string, unknown>) => log.warn(message, props);
  for (const key of new Set(config.tls.certificates.map((c) => c.privateKey))) {
    await warnIfExposed("Private key file", key, warn);
  }
  const passwordFile = config.directory?.bindPasswordFile;
  if (passwordFile) await warnIfExposed("Password file", passwordFile, warn);
}

export async function serve(config: Config, options: ServeOptions = {}): Promise<ServeHandle> {
  const resumption = newResumption(config, options.worker);
  let tlsConfig = await loadTlsConfig(config, resumption);
  warmSigningKeys(tlsConfig);
  warmPrimitives(tlsConfig);
  let crls = await loadCrls(config);
  await warnAboutExposedSecrets(config);
  let current = config;
  const role = options.worker ?? null;
  const adminOn = await adminSocketWanted(config);
  const prometheus = config.metrics === null ? null : new PrometheusMetrics({
    // The SQLite file's size; a PostgreSQL store reports none (the database server knows it).
    // Of several Workers, the primary alone reports it, so that the sum is the size.
    databaseBytes: () => {
      const path = role === null || role.primary ? sqlitePath(config) : null;
      return path === null ? null : databaseBytes(path);
    },
  });
  const counters = adminOn ? new KeyCounters() : null;
  const metrics: Metrics = prometheus && counters
    ? teeMetrics(prometheus, counters)
    : prometheus ?? counters ?? NO_METRICS;
  let stack: ServerStack | null = null;
  try {
    stack = options.application ? null : await ServerStack.open(config, {
      metrics,
      timeStore: prometheus !== null,
      ...(role === null ? {} : {
        relay: role.relay,
        recent: role.recent,
        sharedSync: role.sync,
        // One checkpointer per database: the primary Worker's.
        checkpointer: role.primary,
        failureFeed: role.failureFeed,
        sessions: role.sessions,
        idFields: { "x-postern-worker": String(role.id) },
      }),
    });
  } catch (error) {
    prometheus?.close();
    throw error;
  }
  const innerCheck = options.checkPeer ?? stack?.checkPeer;
  // CRLs first: a revoked serial is refused before the directory is asked.
  const checkPeer: PeerCheck = async (peer, context) => {
    const verdict = crls?.checkPeer(peer) ?? { ok: true };
    if (!verdict.ok) {
      log.warn("Refused certificate {subject} serial {serial}: {reason}", {
        subject: peer.identity.subject,
        serial: peer.identity.serial,
        reason: verdict.reason,
      });
      return { ok: false, alert: verdict.alert, reason: verdict.reason };
    }
    return innerCheck ? await innerCheck(peer, context) : { ok: true };
  };
  /** Ends the open sessions whose certificate the current CRLs list. */
  const revokeListed = () => {
    const check = crls;
    if (check === null || stack === null) return;
    for (const session of stack.imap.sessions) {
      const identity = session.identity;
      if (identity === null) continue;
      const verdict = check.checkIdentity(identity);
      if (verdict.ok) continue;
      log.warn("Closing session of {subject}: {reason}", {
        subject: identity.subject,
        reason: verdict.reason,
      });
      stack.certificateRevoked(identity.fingerprintSha256);
      session.bye("Certificate revoked by its CA (CRL)");
    }
  };
  const reloadCrls = async () => {
    crls = await loadCrls(current);
    log.info("Reloaded the CRLs after a change on disk");
    revokeListed();
  };
  let stopWatchingCrls = watchCrlFiles(config.tls.crl, reloadCrls);
  const group = new ListenerGroup({
    tlsConfig: () => tlsConfig,
    handshakeTimeoutMs: config.tls.handshakeTimeoutMs,
    signing: config.tls.signing,
    gateUntilLogin: true,
    checkPeer,
    maxConnectionsPerAddress: config.limits.maxConnectionsPerAddress,
    application: options.application ?? stack!.imap.application,
    onAccess: (record) => {
      const fields = formatAccess(record);
      // The notes (COMPRESS savings, client ID) go on the line only when there are some.
      const line = fields.notes === "" ? ACCESS_LINE : `${ACCESS_LINE} {notes}`;
      accessLog.info(
        role === null ? line : `${line} worker={worker}`,
        { ...fields, ...revocationFields(stack), ...(role === null ? {} : { worker: role.id }) },
      );
    },
    onError: (message, error) => log.error(`${message}: {error}`, { error: describe(error) }),
    metrics,
    ...(role === null ? {} : { reusePort: true, addressGate: role.addressGate }),
  });
  let addresses: Deno.NetAddr[];
  try {
    addresses = group.listen(
      config.listen.map((l) => ({
        hostname: l.hostname,
        port: l.port,
        tls: l.tls,
        ...(l.proxyProtocol
          ? { proxy: { trusted: l.trustedProxies.map((c) => parseCidr(c)!) } }
          : {}),
      })),
    );
  } catch (error) {
    await stopWatchingCrls();
    await stack?.close();
    prometheus?.close();
    throw error;
  }
  let lmtp: LmtpServer | null = null;
  if (stack !== null && config.lmtp !== null && (role === null || role.primary)) {
    try {
      lmtp = await startLmtp(stack, () => current);
    } catch (error) {
      await group.close(0);
      await stack.close();
      throw error;
    }
  }
  // Long commands yield to the event loop through a socket round trip, not a 2 ms timer.
  const wakeup = await Wakeup.open(wakeupPath(config.dataDir, role?.id ?? 0));
  wakeup?.install();
  // Long work begun late in a turn of sessions' commands yields early (protocol/event_loop.ts).
  const turnStart = () => stack?.imap.turnStart ?? -1;
  useTurnStart(turnStart);
  // Of several Workers, the supervisor says so once all of them listen.
  for (const [i, addr] of role !== null ? [] : addresses.entries()) {
    const listen = config.listen[i]!;
    log.info(
      listen.proxyProtocol
        ? "Listening on {address} ({tls}, PROXY protocol from {trusted})"
        : "Listening on {address} ({tls})",
      {
        address: `${addr.hostname}:${addr.port}`,
        tls: listen.tls,
        trusted: listen.trustedProxies.join(", "),
      },
    );
  }
  let resolveFinished!: () => void;
  const finished = new Promise<void>((r) => resolveFinished = r);
  let stopping: Promise<void> | null = null;
  let metricsServer: MetricsServer | null = null;
  let metricsTls: ServerConfig | null = null;
  let adminServer: AdminServer | null = null;
  const startedAt = Date.now();
  const reread = options.rereadConfig ??
    (() => config.source === null ? Promise.resolve(current) : loadConfig(config.source));
  const admin = counters === null ? null : adminHandler({
    sessions: () => stack?.imap.sessions ?? [],
    reload: async () => await handle.reload(await reread()),
    counters,
    connections: () => group.connectionCount,
    startedAt,
  });
  // Nonces of handshake signatures and X25519 key pairs, made ahead on a thread of their own.
  const ahead = new ServerAhead(config.tls.signing);
  ahead.follow(tlsConfig);
  const handle: ServeHandle = {
    addresses,
    lmtpAddresses: lmtp?.addresses ?? [],
    get metricsAddress() {
      return metricsServer?.addr ?? null;
    },
    get adminSocket() {
      return adminServer?.path ?? null;
    },
    finished,
    revocation: () => revocationFields(stack),
    worker: role === null ? null : {
      metrics: async () => await prometheus?.registry.getMetricsAsJSON() ?? [],
      admin,
    },
    async reload(next?: Config) {
      let candidate = next ?? current;
      try {
        // Without a new settings object, the same one with its TLS files read again.
        if (next === undefined) {
          candidate = {
            ...current,
            tls: { ...current.tls, material: readTlsMaterial(current.tls) },
          };
        }
        const nextTls = await loadTlsConfig(candidate, resumption);
        const nextCrls = await loadCrls(candidate);
        // The metrics listener presents the new server certificate; its scraper CAs stay.
        const nextMetricsTls = metricsTls === null
          ? null
          : await loadMetricsTlsConfig(candidate, config.metrics?.clientCa ?? []);
        await stack?.reload(candidate);
        tlsConfig = nextTls;
        ahead.follow(nextTls);
        crls = nextCrls;
        metricsTls = nextMetricsTls;
        current = candidate;
        await stopWatchingCrls();
        stopWatchingCrls = watchCrlFiles(candidate.tls.crl, reloadCrls);
        revokeListed();
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
        await stopWatchingCrls();
        await adminServer?.close();
        await Promise.all([
          group.close(options.shutdownGraceMs ?? 5000),
          lmtp?.close(options.shutdownGraceMs ?? 5000),
        ]);
        await ahead.close();
        // Sessions are gone and in-flight commits have settled: the store can close.
        await stack?.close();
        wakeup?.close();
        dropTurnStart(turnStart);
        await metricsServer?.close();
        prometheus?.close();
        resolveFinished();
      })();
      return stopping;
    },
  };
  try {
    if (prometheus !== null && config.metrics !== null && role === null) {
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
    if (admin !== null && role === null) {
      try {
        adminServer = await startAdminServer({
          path: config.admin.socket,
          handler: admin,
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
export async function loadMetricsTlsConfig(
  config: Config,
  clientCa: readonly string[],
): Promise<ServerConfig> {
  const clientCaPems = await Promise.all(clientCa.map((p) => Deno.readTextFile(p)));
  const [server] = tlsMaterial(config).certificates;
  const tls = serverOptions(
    {
      certificates: server === undefined ? [] : [server],
      clientCas: clientCaPems.flatMap((pem) => certificatesFromPem(pem, "metrics client CA")),
    },
    { clientAuth: "required", maxChainDepth: config.tls.maxChainDepth },
  );
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

/**
 * Starts the LMTP listener over the stack's store and directory. Its settings (limits of new
 * connections, recipient rules, dedup window, quota) follow reloads; its addresses, socket
 * mode and owner are bound once.
 */
async function startLmtp(stack: ServerStack, config: () => Config): Promise<LmtpServer> {
  const effective = (c: Config) =>
    c.lmtp === null ? null : { ...c.lmtp, maxMessageSize: lmtpMaxMessageSize(c) };
  const lmtp = effective(config())!;
  const hostname = lmtp.hostname ?? machineName();
  const current = () => effective(config()) ?? lmtp;
  const delivery = new LmtpDelivery({
    store: stack.store,
    directory: () => stack.directory,
    settings: () => ({ lmtp: current(), quota: config().quota }),
    hostname,
    metrics: stack.metrics,
    deriveOffThread: stack.deriveOffThread,
  });
  const server = await LmtpServer.listen({ config: lmtp, settings: current, delivery, hostname });
  for (const address of server.addresses) {
    log.info("LMTP listening on {address}", {
      address: address.transport === "unix"
        ? `unix:${address.path}`
        : `${address.hostname}:${address.port}`,
    });
  }
  return server;
}

/** The LMTP message size limit: `lmtp.max_message_size`, else `limits.max_message_size`. */
export function lmtpMaxMessageSize(config: Config): number {
  return config.lmtp?.maxMessageSize ?? config.limits.maxMessageSize;
}

/** The host name, or `localhost` when the permission to read it (--allow-sys) is missing. */
function machineName(): string {
  try {
    return Deno.hostname();
  } catch {
    return "localhost";
  }
}

/**
 * Directory health for the access line: which mode revokes open sessions (a push mode, poll,
 * or none without a directory) and when the directory was last known in sync.
 */
export function revocationFields(
  stack: ServerStack | null,
): { revocation: string; synced: string | null } {
  const status = stack?.revocation ?? null;
  if (status === null) return { revocation: "none", synced: null };
  return {
    revocation: status.mode,
    synced: status.lastSyncAt === null ? null : new Date(status.lastSyncAt).toISOString(),
  };
}

/** An error's message without its stack, for log lines. */
export function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
