/**
 * Authentication as the server assembles it: local accounts (scrypt hashes in the store) or,
 * when a directory is configured, LDAP binds and certificate entries. A successful login
 * makes sure the account exists in the store and counts against the per-user connection limit.
 */
import type { MailStore } from "../mailstore/mail_store.ts";
import type { AuthContext, AuthResult, ImapAuthenticator } from "../protocol/imap/auth.ts";
import type { CertificateIdentity } from "../protocol/x509/identity.ts";
import type { LocalAuthenticator } from "./auth/local.ts";
import type {
  Directory,
  DirectoryDenialReason,
  PasswordDenialReason,
} from "./directory/directory.ts";
import type { AuthMechanism, AuthResultLabel, Metrics } from "./metrics/metrics.ts";

export interface ServerAuthOptions {
  readonly store: MailStore;
  readonly local: LocalAuthenticator;
  readonly directory: Directory | null;
  readonly metrics?: Metrics;
}

/** Called when a connection authenticates; returns false to refuse (connection limit). */
export type OnAuthenticated = (accountName: string) => boolean;

/** Without a directory, a certificate names its local account in its subject CN. */
export function localAccountOf(identity: CertificateIdentity): string | null {
  return identity.subjectAttributes.find((a) => a.type === "CN")?.value ?? null;
}

export class ServerAuthenticator {
  readonly #store: MailStore;
  readonly #local: LocalAuthenticator;
  readonly #directory: Directory | null;
  readonly #metrics: Metrics | undefined;

  constructor(options: ServerAuthOptions) {
    this.#store = options.store;
    this.#local = options.local;
    this.#directory = options.directory;
    this.#metrics = options.metrics;
  }

  /** The authenticator one IMAP session uses. */
  forConnection(onAuthenticated: OnAuthenticated): ImapAuthenticator {
    const decide = async (
      result: AuthResult | null,
      failure: AuthResultLabel,
    ): Promise<AuthResultLabel> => {
      if (result === null) return failure;
      if ((await this.#store.getAccount(result.accountName)) === null) {
        // Directory users get their mail store on first login.
        if (this.#directory === null) return "invalid";
        await this.#store.createAccount(result.accountName, null).catch(() => {});
      }
      return onAuthenticated(result.accountName) ? "ok" : "refused";
    };
    const admit = async (
      mechanism: AuthMechanism,
      result: AuthResult | null,
      failure: AuthResultLabel = "invalid",
    ): Promise<AuthResult | null> => {
      const label = await decide(result, failure);
      this.#metrics?.authentication(mechanism, label);
      return label === "ok" ? result : null;
    };
    return {
      login: async (user: string, password: string, ctx: AuthContext) => {
        if (this.#directory === null) {
          const outcome = await this.#local.check(user, password, ctx.peer);
          if (outcome.ok) return admit("password", { accountName: outcome.account.name });
          return admit("password", null, outcome.reason === "throttled" ? "throttled" : "invalid");
        }
        // LDAP binds get the same back-off, limits and failure delay as local passwords.
        const directory = this.#directory;
        let unavailable = false;
        const outcome = await this.#local.guard(ctx.peer, async () => {
          const verdict = await directory.verifyPassword(user, password);
          if (verdict.ok) return { accountName: verdict.username };
          unavailable = isUnavailable(verdict.reason);
          return null;
        });
        if (outcome.ok) return admit("password", outcome.value);
        const failure = outcome.reason === "throttled"
          ? "throttled"
          : unavailable
          ? "unavailable"
          : "invalid";
        return admit("password", null, failure);
      },
      external: async (identity: CertificateIdentity, authzid: string, _ctx: AuthContext) => {
        if (this.#directory !== null) {
          const verdict = await this.#directory.checkCertificate(identity);
          if (!verdict.ok) {
            return admit(
              "external",
              null,
              isUnavailable(verdict.reason) ? "unavailable" : "invalid",
            );
          }
          // A certificate never authorises acting as somebody else (RFC 4422, Appendix A).
          if (authzid !== "" && authzid !== verdict.username) return admit("external", null);
          return admit("external", { accountName: verdict.username });
        }
        const name = localAccountOf(identity);
        if (name === null || (authzid !== "" && authzid !== name)) return admit("external", null);
        return admit("external", { accountName: name });
      },
    };
  }
}

function isUnavailable(reason: PasswordDenialReason | DirectoryDenialReason): boolean {
  return reason === "directory_unavailable" || reason === "directory_error" ||
    reason === "directory_busy";
}
