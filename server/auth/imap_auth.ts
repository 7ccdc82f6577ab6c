/**
 * Authentication as the server assembles it: local accounts (scrypt hashes in the store) or,
 * when a directory is configured, LDAP binds and certificate entries. A successful login
 * makes sure the account exists in the store and counts against the per-user connection limit.
 */
import type { MailStore } from "../../mailstore/mail_store.ts";
import type { AuthContext, AuthResult, ImapAuthenticator } from "../../protocol/imap/auth.ts";
import { ImapError } from "../../protocol/imap/errors.ts";
import type { CertificateIdentity } from "../../protocol/x509/identity.ts";
import { type LocalAuthenticator, unavailable } from "./local.ts";
import { DirectoryAuthenticator } from "../directory/authenticator.ts";
import type { Directory } from "../directory/directory.ts";
import type { CertificateUsername } from "../config/mod.ts";
import type { AuthMechanism, AuthResultLabel, Metrics } from "../metrics/metrics.ts";

export interface ServerAuthOptions {
  readonly store: MailStore;
  readonly local: LocalAuthenticator;
  readonly directory: Directory | null;
  /** Without a directory, which certificate field names the account. Default `cn`. */
  readonly certificateUsername?: CertificateUsername;
  readonly metrics?: Metrics;
}

/**
 * Called when a connection authenticates; returns false to refuse it (the per-user connection
 * limit), which is answered NO [LIMIT].
 */
export type OnAuthenticated = (accountName: string) => boolean | Promise<boolean>;

/**
 * Without a directory, the local account a certificate names, or null when it names none or
 * is ambiguous:
 * - `cn`: the subject's common name. A subject with several CNs (such as
 *   `CN=alice,CN=Users,DC=corp`) is refused rather than guessed at; use an email mapping for
 *   such certificates.
 * - `email`: the certificate's one email address (rfc822Name SANs and the subject's
 *   emailAddress); several different addresses are refused.
 * - `email-localpart`: the part of that address before the last `@`.
 */
export function localAccountOf(
  identity: CertificateIdentity,
  mode: CertificateUsername = "cn",
): string | null {
  switch (mode) {
    case "cn": {
      const cns = identity.subjectAttributes.filter((a) => a.type === "CN");
      if (cns.length !== 1) return null;
      // The most specific CN, last in DER order; with exactly one CN, that CN.
      const name = cns[cns.length - 1]!.value;
      return name === "" ? null : name;
    }
    case "email":
    case "email-localpart": {
      const distinct = new Set(identity.emails.map((e) => e.toLowerCase()));
      if (distinct.size !== 1) return null;
      const email = identity.emails[0]!;
      const at = email.lastIndexOf("@");
      if (at <= 0 || at === email.length - 1) return null;
      return mode === "email" ? email : email.slice(0, at);
    }
  }
}

export class ServerAuthenticator {
  readonly #store: MailStore;
  readonly #local: LocalAuthenticator;
  readonly #directory: DirectoryAuthenticator | null;
  readonly #certificateUsername: CertificateUsername;
  readonly #metrics: Metrics | undefined;

  constructor(options: ServerAuthOptions) {
    this.#metrics = options.metrics;
    this.#certificateUsername = options.certificateUsername ?? "cn";
    this.#store = options.store;
    this.#local = options.local;
    this.#directory = options.directory ? new DirectoryAuthenticator(options.directory) : null;
  }

  /** The authenticator one IMAP session uses. */
  forConnection(onAuthenticated: OnAuthenticated): ImapAuthenticator {
    const count = (mechanism: AuthMechanism, label: AuthResultLabel) =>
      this.#metrics?.authentication(mechanism, label);
    const admit = async (
      mechanism: AuthMechanism,
      result: AuthResult | null,
    ): Promise<AuthResult | null> => {
      if (result === null) return count(mechanism, "invalid"), null;
      if ((await this.#store.getAccount(result.accountName)) === null) {
        // Directory users get their mail store on first login.
        if (this.#directory === null) return count(mechanism, "invalid"), null;
        await this.#store.createAccount(result.accountName, null).catch(() => {});
      }
      if (await onAuthenticated(result.accountName)) return count(mechanism, "ok"), result;
      count(mechanism, "refused");
      // The credentials were right: say which limit refused them (RFC 5530), so that the
      // client does not ask its user for the password again.
      throw new ImapError(
        "NO",
        "Too many connections for this user, try again when one has closed",
        "LIMIT",
      );
    };
    /** Counts an attempt that ends in NO [UNAVAILABLE] (`label`) before passing it on. */
    const unchecked = async <T>(
      mechanism: AuthMechanism,
      label: AuthResultLabel,
      attempt: () => Promise<T>,
    ): Promise<T> => {
      try {
        return await attempt();
      } catch (error) {
        if (error instanceof ImapError && error.code === "UNAVAILABLE") count(mechanism, label);
        throw error;
      }
    };
    return {
      login: async (user: string, password: string, ctx: AuthContext) => {
        if (this.#directory === null) {
          const result = await unchecked(
            "password",
            "throttled",
            () => this.#local.login(user, password, ctx),
          );
          return admit("password", result);
        }
        // LDAP binds get the same back-off, limits and failure delay as local passwords.
        const directory = this.#directory;
        const outcome = await unchecked(
          "password",
          "unavailable",
          () => this.#local.guard(ctx.peer, () => directory.login(user, password, ctx)),
        );
        if (outcome.ok) return admit("password", outcome.value);
        if (outcome.reason === "invalid") return admit("password", null);
        count("password", "throttled");
        throw unavailable(outcome);
      },
      external: async (identity: CertificateIdentity, authzid: string, ctx: AuthContext) => {
        if (this.#directory !== null) {
          const directory = this.#directory;
          const result = await unchecked(
            "external",
            "unavailable",
            () => directory.external(identity, authzid, ctx),
          );
          return admit("external", result);
        }
        const name = localAccountOf(identity, this.#certificateUsername);
        if (name === null || (authzid !== "" && authzid !== name)) return admit("external", null);
        return admit("external", { accountName: name });
      },
    };
  }
}
