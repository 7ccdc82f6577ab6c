/**
 * Authentication as the server assembles it: local accounts (scrypt hashes in the store) or,
 * when a directory is configured, LDAP binds and certificate entries. A successful login
 * makes sure the account exists in the store and counts against the per-user connection limit.
 */
import type { MailStore } from "../mailstore/mail_store.ts";
import type { AuthContext, AuthResult, ImapAuthenticator } from "../protocol/imap/auth.ts";
import { ImapError } from "../protocol/imap/errors.ts";
import type { CertificateIdentity } from "../protocol/x509/identity.ts";
import { type LocalAuthenticator, unavailable } from "./auth/local.ts";
import { DirectoryAuthenticator } from "./directory/authenticator.ts";
import type { Directory } from "./directory/directory.ts";

export interface ServerAuthOptions {
  readonly store: MailStore;
  readonly local: LocalAuthenticator;
  readonly directory: Directory | null;
}

/**
 * Called when a connection authenticates; returns false to refuse it (the per-user connection
 * limit), which is answered NO [LIMIT].
 */
export type OnAuthenticated = (accountName: string) => boolean | Promise<boolean>;

/** Without a directory, a certificate names its local account in its subject CN. */
export function localAccountOf(identity: CertificateIdentity): string | null {
  return identity.subjectAttributes.find((a) => a.type === "CN")?.value ?? null;
}

export class ServerAuthenticator {
  readonly #store: MailStore;
  readonly #local: LocalAuthenticator;
  readonly #directory: DirectoryAuthenticator | null;

  constructor(options: ServerAuthOptions) {
    this.#store = options.store;
    this.#local = options.local;
    this.#directory = options.directory ? new DirectoryAuthenticator(options.directory) : null;
  }

  /** The authenticator one IMAP session uses. */
  forConnection(onAuthenticated: OnAuthenticated): ImapAuthenticator {
    const admit = async (result: AuthResult | null): Promise<AuthResult | null> => {
      if (result === null) return null;
      if ((await this.#store.getAccount(result.accountName)) === null) {
        // Directory users get their mail store on first login.
        if (this.#directory === null) return null;
        await this.#store.createAccount(result.accountName, null).catch(() => {});
      }
      if (await onAuthenticated(result.accountName)) return result;
      // The credentials were right: say which limit refused them (RFC 5530), so that the
      // client does not ask its user for the password again.
      throw new ImapError(
        "NO",
        "Too many connections for this user, try again when one has closed",
        "LIMIT",
      );
    };
    return {
      login: async (user: string, password: string, ctx: AuthContext) => {
        if (this.#directory === null) return admit(await this.#local.login(user, password, ctx));
        // LDAP binds get the same back-off, limits and failure delay as local passwords.
        const directory = this.#directory;
        const outcome = await this.#local.guard(
          ctx.peer,
          () => directory.login(user, password, ctx),
        );
        if (outcome.ok) return admit(outcome.value);
        if (outcome.reason === "invalid") return null;
        throw unavailable(outcome);
      },
      external: async (identity: CertificateIdentity, authzid: string, ctx: AuthContext) => {
        if (this.#directory !== null) {
          return admit(await this.#directory.external(identity, authzid, ctx));
        }
        const name = localAccountOf(identity);
        if (name === null || (authzid !== "" && authzid !== name)) return null;
        return admit({ accountName: name });
      },
    };
  }
}
