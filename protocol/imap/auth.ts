/**
 * The authentication contract the session calls. The server supplies the implementations:
 * local accounts (scrypt hashes in the store) and the LDAP directory. The session never sees a
 * password hash and never logs a password.
 */
import type { CertificateIdentity } from "../x509/identity.ts";

/** What the authenticator learns about the connection. */
export interface AuthContext {
  /** Peer address, e.g. `127.0.0.1:50122`. */
  readonly peer: string;
  /** True when the connection is encrypted (implicit TLS or after STARTTLS). */
  readonly tls: boolean;
}

/** The account a successful authentication grants. */
export interface AuthResult {
  readonly accountName: string;
}

/** Checks credentials; resolves null for a failed login, never throws for bad credentials. */
export interface ImapAuthenticator {
  /** LOGIN and AUTHENTICATE PLAIN (RFC 9051, Section 6.2.3; RFC 4616). */
  login(user: string, password: string, ctx: AuthContext): Promise<AuthResult | null>;
  /**
   * AUTHENTICATE EXTERNAL (RFC 4422, Appendix A): maps a verified client certificate to an
   * account. `authzid` is the identity the client asked for, or "" to derive it from the
   * certificate.
   */
  external?(
    identity: CertificateIdentity,
    authzid: string,
    ctx: AuthContext,
  ): Promise<AuthResult | null>;
}
