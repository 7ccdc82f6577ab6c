/**
 * Assembles the running services from a configuration: the mail store, local and directory
 * authentication, the IMAP application, the directory check of client certificates and its
 * periodic re-check of live sessions.
 */
import { join } from "node:path";
import { openSqliteMailStore } from "../mailstore/sqlite/mod.ts";
import type { MailStore } from "../mailstore/mail_store.ts";
import type { CertificateIdentity } from "../protocol/x509/identity.ts";
import { LocalAuthenticator } from "./auth/local.ts";
import { type Config, directoryConfigInput } from "./config.ts";
import { resolveDirectoryConfig } from "./directory/config.ts";
import type { DirectoryConfig as DirectorySettings } from "./directory/config.ts";
import { Directory } from "./directory/directory.ts";
import { ImapApplication } from "./imap_app.ts";
import { defaultLimits, type SessionLimits } from "../protocol/imap/mod.ts";
import { localAccountOf, ServerAuthenticator } from "./imap_auth.ts";
import { getLogger } from "./log.ts";
import type { PeerCheck } from "./tls_channel.ts";
import { type Metrics, NO_METRICS } from "./metrics/metrics.ts";
import { instrumentStore } from "./metrics/store.ts";

const log = getLogger(["directory"]);

/** The directory settings of the config file, in the form the directory client takes. */
export async function directorySettings(config: Config): Promise<DirectorySettings | null> {
  if (config.directory === null) return null;
  return resolveDirectoryConfig(await directoryConfigInput(config.directory));
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

/** The services behind the listeners; the directory can be replaced by a reload. */
export class ServerStack {
  readonly store: MailStore;
  readonly imap: ImapApplication;
  readonly #local: LocalAuthenticator;
  readonly #metrics: Metrics;
  #directory: Directory | null;
  #auth: ServerAuthenticator;
  #stopRecheck: () => Promise<void> = () => Promise.resolve();

  private constructor(
    store: MailStore,
    config: Config,
    directory: Directory | null,
    metrics: Metrics,
  ) {
    this.store = store;
    this.#metrics = metrics;
    this.#local = new LocalAuthenticator({ store });
    this.#directory = directory;
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
      preauthWithCertificate: config.imap.preauthWithCertificate,
      certificateUser: (identity) => this.#certificateUser(identity),
      metrics,
    });
    this.#startRecheck();
  }

  /** `timeStore` wraps the store to time every call (when Prometheus metrics are on). */
  static async open(
    config: Config,
    { metrics = NO_METRICS, timeStore = false }: { metrics?: Metrics; timeStore?: boolean } = {},
  ): Promise<ServerStack> {
    await Deno.mkdir(config.dataDir, { recursive: true, mode: 0o700 });
    const sqlite = await openSqliteMailStore(join(config.dataDir, "postern.db"));
    const store = timeStore ? instrumentStore(sqlite, metrics) : sqlite;
    const settings = await directorySettings(config);
    const directory = settings ? new Directory(settings, { metrics }) : null;
    return new ServerStack(store, config, directory, metrics);
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

  /** The directory check of a verified client certificate, run before IMAP starts. */
  readonly checkPeer: PeerCheck = async (peer) => {
    const directory = this.#directory;
    if (directory === null) return { ok: true };
    const verdict = await directory.checkCertificate(peer.identity);
    if (verdict.ok) return { ok: true };
    if (verdict.reason === "not_in_entry") this.#metrics.revocation("handshake");
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
    const settings = await directorySettings(config);
    const old = this.#directory;
    await this.#stopRecheck();
    this.#directory = settings ? new Directory(settings, { metrics: this.#metrics }) : null;
    this.#auth = this.#makeAuth();
    this.#startRecheck();
    await old?.close();
  }

  async close(): Promise<void> {
    await this.#stopRecheck();
    await this.#directory?.close();
    await this.store.close();
  }

  #makeAuth(): ServerAuthenticator {
    return new ServerAuthenticator({
      store: this.store,
      local: this.#local,
      directory: this.#directory,
      metrics: this.#metrics,
    });
  }

  async #certificateUser(identity: CertificateIdentity): Promise<string | null> {
    if (this.#directory === null) {
      const name = localAccountOf(identity);
      return name !== null && (await this.store.getAccount(name)) !== null ? name : null;
    }
    const verdict = await this.#directory.checkCertificate(identity);
    return verdict.ok ? verdict.username : null;
  }

  #startRecheck(): void {
    const directory = this.#directory;
    if (directory === null) return;
    const stackSessions = this.imap.sessions;
    const metrics = this.#metrics;
    this.#stopRecheck = directory.startRecheck(function* () {
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
            session.bye("Certificate no longer valid");
          },
        };
      }
    });
  }
}

/** The directory could not answer, as opposed to refusing the certificate. */
function isDirectoryFailure(reason: string): boolean {
  return reason === "directory_unavailable" || reason === "directory_error" ||
    reason === "directory_busy";
}
