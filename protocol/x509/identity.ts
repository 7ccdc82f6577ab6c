/**
 * What certificate validation hands to the layers above: the verified identity of a peer, and
 * the verifier contract that the TLS engine calls. Kept free of TLS imports so that the
 * dependency runs tls → x509 only.
 */
import type { PublicKey } from "../crypto/provider.ts";

/** TLS alert names a certificate failure maps to (RFC 8446, Section 6.2). */
export type CertificateAlert =
  | "bad_certificate"
  | "unsupported_certificate"
  | "certificate_revoked"
  | "certificate_expired"
  | "certificate_unknown"
  | "unknown_ca"
  | "access_denied"
  | "decrypt_error"
  | "internal_error";

/** A rejected certificate: the alert to send and a reason for the log (never for the peer). */
export class CertificateError extends Error {
  readonly alert: CertificateAlert;
  /** Subject DN of the certificate at fault, when known, for the log line. */
  readonly subject: string | undefined;
  /** Serial number (hex) of the certificate at fault, when known. */
  readonly serial: string | undefined;
  constructor(
    alert: CertificateAlert,
    message: string,
    at?: { subject?: string; serial?: string },
  ) {
    super(message);
    this.name = "CertificateError";
    this.alert = alert;
    this.subject = at?.subject;
    this.serial = at?.serial;
  }
}

/** One attribute of a distinguished name, e.g. `{ type: "CN", oid: "2.5.4.3", value: "alice" }`. */
export interface NameAttribute {
  /** Short name (CN, O, OU, C, L, ST, UID, emailAddress, DC, ...) or the dotted OID. */
  readonly type: string;
  readonly oid: string;
  readonly value: string;
}

/** The verified identity of a certificate holder, as the layers above receive it. */
export interface CertificateIdentity {
  /** Subject DN in RFC 4514 string form, most specific RDN first (`CN=alice,O=Example`). */
  readonly subject: string;
  readonly subjectAttributes: readonly NameAttribute[];
  readonly issuer: string;
  /** rfc822Name entries of subjectAltName (and emailAddress attributes of the subject). */
  readonly emails: readonly string[];
  /** dNSName entries of subjectAltName. */
  readonly dnsNames: readonly string[];
  /** Serial number, lower-case hex without leading zeros stripped of sign byte. */
  readonly serial: string;
  /** SHA-256 of the leaf DER, lower-case hex. */
  readonly fingerprintSha256: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** The leaf certificate's DER. */
  readonly der: Uint8Array;
}

/** The outcome of a successful chain validation. */
export interface VerifiedPeer {
  readonly identity: CertificateIdentity;
  /** The leaf's public key, for checking CertificateVerify. */
  readonly publicKey: PublicKey;
  /** The validated path, leaf first, ending with the trust anchor. */
  readonly path: readonly Uint8Array[];
}

/** The synchronous chain check the TLS engine runs on a client's Certificate message. */
export interface ClientCertVerifier {
  /** DER-encoded distinguished names of the trust anchors (for certificate_authorities). */
  readonly authorityNames: readonly Uint8Array[];
  /** Validates `chain` (leaf first, as sent). Throws `CertificateError` on failure. */
  verify(chain: readonly Uint8Array[]): VerifiedPeer;
}
