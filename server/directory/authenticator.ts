/**
 * The directory as an IMAP authenticator: LOGIN and AUTHENTICATE PLAIN bind as the user's
 * entry, and AUTHENTICATE EXTERNAL (RFC 4422, Appendix A) maps the verified client
 * certificate to the entry that still holds it.
 *
 * Brute-force throttling is not done here; wrap this or put the per-address back-off of
 * server/auth in front of it.
 */
import type { AuthContext, AuthResult, ImapAuthenticator } from "../../protocol/imap/auth.ts";
import type { CertificateIdentity } from "../../protocol/x509/identity.ts";
import { ImapError } from "../../protocol/imap/errors.ts";
import type { Directory, PasswordDenialReason } from "./directory.ts";

const UNAVAILABLE_REASONS: ReadonlySet<PasswordDenialReason> = new Set([
  "directory_unavailable",
  "directory_error",
  "directory_busy",
]);

export class DirectoryAuthenticator implements ImapAuthenticator {
  readonly #directory: Directory;

  constructor(directory: Directory) {
    this.#directory = directory;
  }

  /**
   * Resolves the entry's own username on success and null for wrong credentials. When the
   * directory could not answer, the password may well be right, so that is NO [UNAVAILABLE]
   * (RFC 5530), not a failed login.
   */
  async login(user: string, password: string, _ctx: AuthContext): Promise<AuthResult | null> {
    const v = await this.#directory.verifyPassword(user, password);
    if (v.ok) return { accountName: v.username };
    if (UNAVAILABLE_REASONS.has(v.reason)) {
      throw new ImapError("NO", "The directory is not answering, try again later", "UNAVAILABLE");
    }
    return null;
  }

  /**
   * Resolves the account of the certificate's entry. A non-empty `authzid` must name that
   * same account: a certificate never authorises acting as somebody else.
   */
  async external(
    identity: CertificateIdentity,
    authzid: string,
    _ctx: AuthContext,
  ): Promise<AuthResult | null> {
    const v = await this.#directory.checkCertificate(identity);
    if (!v.ok) return null;
    if (authzid !== "" && authzid !== v.username) return null;
    return { accountName: v.username };
  }
}
