/**
 * The client certificate verifier the TLS engine calls (see `identity.ts`): validates the
 * peer's chain against the configured CAs (RFC 5280, Section 6) with the clientAuth purpose
 * and turns the leaf into a `CertificateIdentity`.
 */
import type { CryptoProvider } from "../crypto/provider.ts";
import { parseCertificate } from "./certificate.ts";
import type { Certificate } from "./certificate.ts";
import { toHex } from "./der.ts";
import { CertificateError } from "./identity.ts";
import type { CertificateIdentity, ClientCertVerifier, VerifiedPeer } from "./identity.ts";
import { nameAttributes, nameToString } from "./name.ts";
import { NameAttributeOid } from "./oid.ts";
import { createTrustStore, MAX_INTERMEDIATES, validatePath } from "./path.ts";
import { decodePem, PemError } from "./pem.ts";

/** Options of `createClientCertVerifier`. */
export interface ClientCertVerifierOptions {
  /** DER certificates of the trusted CAs. */
  readonly anchors: readonly Uint8Array[];
  readonly provider: CryptoProvider;
  /** The clock validity is checked against; defaults to the system time. */
  readonly clock?: () => Date;
  /** Most certificates in a path, anchor excluded. Default 8. */
  readonly maxDepth?: number;
}

/**
 * Builds a verifier. Malformed anchors are rejected here, at configuration time, with a
 * `CertificateError`.
 */
export function createClientCertVerifier(options: ClientCertVerifierOptions): ClientCertVerifier {
  if (options.anchors.length === 0) {
    throw new CertificateError("internal_error", "No trusted client CA configured");
  }
  const store = createTrustStore(options.anchors);
  const clock = options.clock ?? (() => new Date());
  return {
    authorityNames: store.anchors.map((a) => a.subject.der),
    verify(chain: readonly Uint8Array[]): VerifiedPeer {
      if (chain.length > MAX_INTERMEDIATES + 1) {
        throw new CertificateError("bad_certificate", "Too many certificates in chain");
      }
      // Copies: the caller's buffers may be reused, and the identity outlives the handshake.
      const [leafDer, ...rest] = chain.map((c) => c.slice());
      if (leafDer === undefined) throw new CertificateError("bad_certificate", "Empty chain");
      const path = validatePath(leafDer, rest, store, {
        now: clock(),
        provider: options.provider,
        requiredEku: "clientAuth",
        ...(options.maxDepth === undefined ? {} : { maxDepth: options.maxDepth }),
      });
      return {
        identity: certificateIdentity(path.leaf, options.provider),
        publicKey: path.leaf.publicKeyInfo.key!,
        path: path.certificates.map((c) => c.der),
      };
    },
  };
}

/** The identity fields of a certificate, as the layers above receive them. */
export function certificateIdentity(
  cert: Certificate,
  provider: CryptoProvider,
): CertificateIdentity {
  const emails: string[] = [];
  const dnsNames: string[] = [];
  for (const n of cert.extensions.subjectAltName ?? []) {
    if (n.kind === "rfc822Name") emails.push(n.value);
    if (n.kind === "dNSName") dnsNames.push(n.value);
  }
  const subjectAttributes = nameAttributes(cert.subject);
  for (const a of subjectAttributes) {
    if (
      a.oid === NameAttributeOid.emailAddress &&
      !emails.some((e) => e.toLowerCase() === a.value.toLowerCase())
    ) {
      emails.push(a.value);
    }
  }
  return {
    subject: nameToString(cert.subject),
    subjectAttributes,
    issuer: nameToString(cert.issuer),
    emails,
    dnsNames,
    serial: cert.serialHex,
    fingerprintSha256: toHex(provider.hash("SHA-256", cert.der)),
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    der: cert.der,
  };
}

/** The DER certificates of a PEM bundle (`CERTIFICATE` blocks; other blocks are skipped). */
export function loadPemBundle(text: string): Uint8Array[] {
  const certs = decodePem(text).filter((b) => b.label === "CERTIFICATE").map((b) => b.der);
  if (certs.length === 0) throw new PemError("No CERTIFICATE block in PEM bundle");
  for (const der of certs) parseCertificate(der);
  return certs;
}
