/**
 * Assembles the running services from a configuration: the mail store, local and directory
 * authentication, the IMAP application, the directory check of client certificates, and the
 * revocation of live sessions (changes pushed by the directory, else a periodic re-check).
 */
import { quotaUsage } from "./quota.ts";
import { quotaLimits } from "../config/quota.ts";
import { prepareDataDir } from "./data_dir.ts";
import { openConfiguredStore } from "./store.ts";
import { DeriveWorker } from "./derive_worker.ts";
import { isSessionRegistry, type SessionRegistry } from "../../mailstore/session_registry.ts";
import type { EventRelay } from "../../mailstore/event_hub.ts";
import type { MailStore } from "../../mailstore/mail_store.ts";
import type { CertificateIdentity } from "../../protocol/x509/identity.ts";
import { LegacyVerifierPool } from "../auth/legacy_pool.ts";
import { type FailureFeed, LocalAuthenticator, type LocalAuthSettings } from "../auth/local.ts";
import { type CertificateUsername, type Config, directoryConfigInput } from "../config/mod.ts";
import { resolveDirectoryConfig } from "../directory/config.ts";
import type { DirectoryConfig } from "../directory/config.ts";
import {
  Directory,
  type DirectoryDenialReason,
  type RecheckSession,
} from "../directory/directory.ts";
import { type RevocationStatus, SessionRevoker } from "../directory/revoker.ts";
import { ImapApplication } from "./imap_app.ts";
import { RecentRegistry, SharedBoundaries, useRecentRegistry } from "../../protocol/imap/recent.ts";
import { defaultLimits, type SessionLimits } from "../../protocol/imap/mod.ts";
import type { DeriveOffThread } from "../../protocol/imap/mime_support.ts";
import { localAccountOf, ServerAuthenticator } from "../auth/imap_auth.ts";
import { getLogger } from "../log.ts";
import type { PeerCheck } from "../connection/tls_channel.ts";
import { type Metrics, NO_METRICS } from "../metrics/metrics.ts";
import { instrumentStore } from "../metrics/store.ts";

const log = getLogger(["directory"]);

/** The directory settings of the config file, in the form the directory client takes. */
export async function directorySettings(config: Config): Promise<DirectoryConfig | null> {
  if (config.directory === null) return null;
  const { directoryAttribute: attribute, directoryMessageAttribute: messages } = config.quota;
  return resolveDirectoryConfig({
    ...await directoryConfigInput(config.directory),
    ...(attribute !== undefined ? { quotaAttribute: attribute } : {}),
    ...(messages !== undefined ? { messageQuotaAttribute: messages } : {}),
  });
}

/** The IMAP session limits of the `limits:` section. */
export function sessionLimits(config: Config): Partial<SessionLimits> {
  const { maxLineLength, maxLiteralSize, maxMessageSize } = config.limits;
  return {
    maxLineLength,
    // An APPEND literal is a message; every literal is also capped by max_literal_size.
    maxLiteral: Math.min(maxMessageSize, maxLiteralSize),
    maxOtherLiteral: Math.min(defaultLimits.maxOtherLiteral, maxLiteralSize),
    maxLiteralBeforeLogin: Math.min(defaultLimits.maxLiteralBeforeLogin, maxLiteralSize),
  };
}

/** The `auth:` settings in the form the local authenticator takes. */
export function localAuthSettings(config: Config): LocalAuthSettings {
  return {
    cacheTtlMs: config.auth.cacheTtlMs,
    negativeCacheTtlMs: config.auth.cacheNegativeTtlMs,
    scryptCost: config.auth.scryptCost,
  };
}

/** How `ServerStack.open` wires the stack into its process. */
export interface StackOptions {
  readonly metrics?: Metrics;
  /** Wraps the store to time every call (when Prometheus metrics are on). */
  readonly timeStore?: boolean;
  /** Carries mailbox events between the Workers' store connections. */
  readonly relay?: EventRelay;
  /** Login failures per address, shared by the Workers' back-off. */
  readonly failureFeed?: FailureFeed;
  /** The SQLite WAL syncs shared by the Workers' connections. */
  readonly sharedSync?: SharedArrayBuffer;
  /**
   * Whether this stack's SQLite connection runs the WAL's checkpoint worker (default true); of
   * several Workers, the primary's alone does.
   */
  readonly checkpointer?: boolean;
  /** The \Recent boundaries shared by the Workers (`SharedBoundaries`). */
  readonly recent?: SharedArrayBuffer;
  /** Counts sessions across the Workers, for `limits.max_connections_per_user`. */
  readonly sessions?: SessionRegistry;
  /** More fields of the IMAP ID response (which Worker runs the session). */
  readonly idFields?: Readonly<Record<string, string>>;
}

/** The services behind the listeners; the directory can be replaced by a reload. */
export class ServerStack {
  readonly store: MailStore;
  readonly imap: ImapApplication;
  readonly #local: LocalAuthenticator;
  /** Workers for imported password hashes, started on the first one. */
  readonly #legacy = new LegacyVerifierPool();
  /** MIME derivation of large APPENDs, off the event loop; started with the server. */
  readonly #derive = new DeriveWorker();
  readonly #metrics: Metrics;
  #directory: Directory | null;
  #certificateUsername: CertificateUsername;
  /** The `quota:` section, which a reload replaces. */
  #quota: Config["quota"];
  #auth: ServerAuthenticator;
  #revoker: SessionRevoker | null = null;
  readonly #revokedListeners = new Set<(fingerprint: string) => void>();

  private constructor(
    store: MailStore,
    config: Config,
    directory: Directory | null,
    metrics: Metrics,
    { sessions, idFields, failureFeed }: StackOptions,
  ) {
    this.store = store;
    this.#metrics = metrics;
    this.#local = new LocalAuthenticator({
      store,
      verifyPassword: this.#legacy.verifyPassword,
      ...localAuthSettings(config),
      ...(failureFeed ? { failureFeed } : {}),
    });
    this.#directory = directory;
    this.#certificateUsername = config.tls.certificateUsername;
    this.#quota = config.quota;
    this.#auth = this.#makeAuth();
    const currentAuth = () => this.#auth;
    this.imap = new ImapApplication({
      store,
      get auth() {
        return currentAuth();
      },
      limits: sessionLimits(config),
      idleTimeoutMs: config.limits.idleTimeoutMs,
      maxConnectionsPerUser: config.limits.maxConnectionsPerUser,
      // A PostgreSQL store counts the sessions of every node (so every Worker too); else the
      // Workers' supervisor counts them, when there is one.
      ...(isSessionRegistry(store)
        ? { sessions: store }
        : sessions !== undefined
        ? { sessions }
        : {}),
      ...(idFields ? { idFields } : {}),
      preauthWithCertificate: config.imap.preauthWithCertificate,
      certificateUser: (identity) => this.#certificateUser(identity),
      metrics,
      deriveOffThread: this.#derive.derive,
      quota: {
        limits: (name) =>
          quotaLimits(
            { quota: this.#quota },
            name,
            this.#directory?.storageQuota(name),
            this.#directory?.messageQuota(name),
          ),
        usage: (accountId) => quotaUsage(store, accountId),
      },
    });
    this.#startRecheck();
  }

  static async open(config: Config, options: StackOptions = {}): Promise<ServerStack> {
    const { metrics = NO_METRICS, timeStore = false } = options;
    await prepareDataDir(config.dataDir);
    const opened = await openConfiguredStore(config, {
      // A server opens its workers now rather than stall a request on their start.
      startWorkers: true,
      ...(options.relay ? { relay: options.relay } : {}),
      ...(options.sharedSync ? { sharedSync: options.sharedSync } : {}),
      ...(options.checkpointer !== undefined ? { checkpointer: options.checkpointer } : {}),
    });
    const store = timeStore ? instrumentStore(opened, metrics) : opened;
    if (options.recent) {
      useRecentRegistry(store, new RecentRegistry(new SharedBoundaries(options.recent)));
    }
    const settings = await directorySettings(config);
    const directory = settings ? new Directory(settings, { metrics }) : null;
    return new ServerStack(store, config, directory, metrics, options);
  }

  /** Null when the store and the directory (if any) answer, else why not (for /readyz). */
  async readiness(): Promise<string | null> {
    try {
      await this.store.getAccount("");
    } catch (error) {
      return `store: ${error instanceof Error ? error.message : String(error)}`;
    }
    const problem = await this.#directory?.ping() ?? null;
    return problem === null ? null : `directory: ${problem}`;
  }

  /** Where the stack's hooks report (no-op when metrics and the admin socket are off). */
  get metrics(): Metrics {
    return this.#metrics;
  }

  /** Derives the MIME data of a large message on the stack's derive thread (LMTP). */
  get deriveOffThread(): DeriveOffThread {
    return this.#derive.derive;
  }

  /** The current directory client (replaced by a reload), or null without one. */
  get directory(): Directory | null {
    return this.#directory;
  }

  /** The directory check of a verified client certificate, run before IMAP starts. */
  // pretenured: one per server stack.
  readonly checkPeer: PeerCheck = async (peer, context) => {
    const directory = this.#directory;
    if (directory === null) return { ok: true };
    const verdict = await directory.checkCertificate(peer.identity);
    if (verdict.ok) return { ok: true };
    if (verdict.reason === "not_in_entry") {
      this.#metrics.revocation(context?.resumed === true ? "resumption" : "handshake");
    }
    log.warn("Refused certificate {subject} serial {serial}: {reason} ({detail})", {
      subject: peer.identity.subject,
      serial: peer.identity.serial,
      reason: verdict.reason,
      detail: verdict.detail,
    });
    return { ok: false, alert: verdict.alert, reason: verdict.reason };
  };

  /** Applies new directory settings; the old client is closed once replaced. */
  async reload(config: Config): Promise<void> {
    // SIGHUP also forgets every cached password check (auth.cache_ttl).
    this.#local.configure(localAuthSettings(config));
    this.#local.clearCache();
    const settings = await directorySettings(config);
    const old = this.#directory;
    await this.#stopRecheck();
    this.#directory = settings ? new Directory(settings, { metrics: this.#metrics }) : null;
    this.#certificateUsername = config.tls.certificateUsername;
    this.#quota = config.quota;
    this.#auth = this.#makeAuth();
    this.#startRecheck();
    await old?.close();
  }

  /**
   * Registers a listener told the fingerprint of every certificate whose sessions are revoked
   * (directory push, re-check or CRL). Session resumption must refuse that certificate from
   * then on: when tickets exist, their store subscribes here. Returns an unsubscribe function.
   */
  onCertificateRevoked(listener: (fingerprint: string) => void): () => void {
    this.#revokedListeners.add(listener);
    return () => this.#revokedListeners.delete(listener);
  }

  /** Which mode revokes open sessions, and when the directory was last in sync; null: none. */
  get revocation(): RevocationStatus | null {
    return this.#revoker?.status ?? null;
  }

  /** Tells the revocation listeners; for revocations decided outside the directory (CRLs). */
  certificateRevoked(fingerprint: string): void {
    this.#directory?.forget(fingerprint);
    for (const listener of this.#revokedListeners) {
      try {
        listener(fingerprint);
      } catch (error) {
        log.error("A revocation listener failed: {error}", { error });
      }
    }
  }

  async close(): Promise<void> {
    this.imap.close();
    this.#legacy.close();
    this.#derive.close();
    await this.#stopRecheck();
    await this.#directory?.close();
    await this.store.close();
  }

  #makeAuth(): ServerAuthenticator {
    return new ServerAuthenticator({
      store: this.store,
      local: this.#local,
      directory: this.#directory,
      certificateUsername: this.#certificateUsername,
      metrics: this.#metrics,
    });
  }

  async #certificateUser(identity: CertificateIdentity): Promise<string | null> {
    if (this.#directory === null) {
      const name = localAccountOf(identity, this.#certificateUsername);
      return name !== null && (await this.store.getAccount(name)) !== null ? name : null;
    }
    const verdict = await this.#directory.checkCertificate(identity);
    return verdict.ok ? verdict.username : null;
  }

  async #stopRecheck(): Promise<void> {
    const revoker = this.#revoker;
    this.#revoker = null;
    await revoker?.stop();
  }

  #startRecheck(): void {
    const directory = this.#directory;
    if (directory === null) return;
    const stackSessions = this.imap.sessions;
    const metrics = this.#metrics;
    const sessions = function* (): Generator<RecheckSession> {
      for (const session of stackSessions) {
        const identity = session.identity;
        if (identity === null) continue;
        yield {
          identity,
          revoke: (denial) => {
            if (!isDirectoryFailure(denial.reason)) metrics.revocation("live");
            log.warn("Closing session of {subject}: {reason}", {
              subject: identity.subject,
              reason: denial.reason,
            });
            session.bye(byeText(denial.reason));
          },
        };
      }
    };
    this.#revoker = new SessionRevoker(directory, sessions, {
      onRevoked: (fingerprint) => this.certificateRevoked(fingerprint),
    });
    this.#revoker.start();
  }
}

/** The BYE a revoked session gets: the reason in words, without the directory's inner state. */
function byeText(reason: DirectoryDenialReason): string {
  switch (reason) {
    case "not_in_entry":
      return "Certificate revoked: removed from the directory";
    case "directory_unavailable":
    case "directory_error":
    case "directory_busy":
      return "Certificate could not be checked again; reconnect later";
    default:
      return "Certificate no longer accepted";
  }
}

/** The directory could not answer, as opposed to refusing the certificate. */
function isDirectoryFailure(reason: string): boolean {
  return reason === "directory_unavailable" || reason === "directory_error" ||
    reason === "directory_busy";
}
