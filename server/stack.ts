/**
 * Assembles the running services from a configuration: the mail store, local and directory
 * authentication, the IMAP application, the directory check of client certificates and its
 * periodic re-check of live sessions.
 */
import { openConfiguredStore } from "./store.ts";
import { isSessionRegistry } from "../mailstore/session_registry.ts";
import type { MailStore } from "../mailstore/mail_store.ts";
import type { CertificateIdentity } from "../protocol/x509/identity.ts";
import { LegacyVerifierPool } from "./auth/legacy_pool.ts";
import { LocalAuthenticator, type LocalAuthSettings } from "./auth/local.ts";
import { type Config, directoryConfigInput } from "./config.ts";
import { resolveDirectoryConfig } from "./directory/config.ts";
import type { DirectoryConfig as DirectorySettings } from "./directory/config.ts";
import { Directory } from "./directory/directory.ts";
import { ImapApplication } from "./imap_app.ts";
import { defaultLimits, type SessionLimits } from "../protocol/imap/mod.ts";
import { localAccountOf, ServerAuthenticator } from "./imap_auth.ts";
import { getLogger } from "./log.ts";
import type { PeerCheck } from "./tls_channel.ts";

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

/** The `auth:` settings in the form the local authenticator takes. */
export function localAuthSettings(config: Config): LocalAuthSettings {
  return {
    cacheTtlMs: config.auth.cacheTtlMs,
    negativeCacheTtlMs: config.auth.cacheNegativeTtlMs,
    scryptCost: config.auth.scryptCost,
  };
}

/** The services behind the listeners; the directory can be replaced by a reload. */
export class ServerStack {
  readonly store: MailStore;
  readonly imap: ImapApplication;
  readonly #local: LocalAuthenticator;
  /** Workers for imported password hashes, started on the first one. */
  readonly #legacy = new LegacyVerifierPool();
  #directory: Directory | null;
  #auth: ServerAuthenticator;
  #stopRecheck: () => Promise<void> = () => Promise.resolve();

  private constructor(store: MailStore, config: Config, directory: Directory | null) {
    this.store = store;
    this.#local = new LocalAuthenticator({
      store,
      verifyPassword: this.#legacy.verifyPassword,
      ...localAuthSettings(config),
    });
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
      ...(isSessionRegistry(store) ? { sessions: store } : {}),
      preauthWithCertificate: config.imap.preauthWithCertificate,
      certificateUser: (identity) => this.#certificateUser(identity),
    });
    this.#startRecheck();
  }

  static async open(config: Config): Promise<ServerStack> {
    await Deno.mkdir(config.dataDir, { recursive: true, mode: 0o700 });
    const store = await openConfiguredStore(config);
    const settings = await directorySettings(config);
    return new ServerStack(store, config, settings ? new Directory(settings) : null);
  }

  /** The current directory client (replaced by a reload), or null without one. */
  get directory(): Directory | null {
    return this.#directory;
  }

  /** The directory check of a verified client certificate, run before IMAP starts. */
  readonly checkPeer: PeerCheck = async (peer) => {
    const directory = this.#directory;
    if (directory === null) return { ok: true };
    const verdict = await directory.checkCertificate(peer.identity);
    if (verdict.ok) return { ok: true };
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
    this.#directory = settings ? new Directory(settings) : null;
    this.#auth = this.#makeAuth();
    this.#startRecheck();
    await old?.close();
  }

  async close(): Promise<void> {
    this.#legacy.close();
    await this.#stopRecheck();
    await this.#directory?.close();
    await this.store.close();
  }

  #makeAuth(): ServerAuthenticator {
    return new ServerAuthenticator({
      store: this.store,
      local: this.#local,
      directory: this.#directory,
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
    this.#stopRecheck = directory.startRecheck(function* () {
      for (const session of stackSessions) {
        const identity = session.identity;
        if (identity === null) continue;
        yield {
          identity,
          revoke: (denial) => {
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
