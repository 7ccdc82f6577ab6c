/**
 * Signature algorithms in TLS 1.2 (RFC 5246, Section 7.4.1.4.1, read through the TLS 1.3 code
 * points of RFC 8446, Section 4.2.3). Unlike TLS 1.3, an ECDSA hash is not tied to the curve,
 * and RSASSA-PKCS1-v1_5 is allowed; we still never sign or accept SHA-1.
 */
import type { PrivateKey, PublicKey, SignatureAlgorithm } from "../../crypto/provider.ts";
import { TlsAlert } from "../alert.ts";
import { SignatureScheme } from "../wire.ts";
import type { SuiteAuth } from "./wire12.ts";

type KeyClass = "ec" | "ed25519" | "rsa";

interface Scheme12 {
  readonly algorithm: SignatureAlgorithm;
  readonly key: KeyClass;
}

const S = SignatureScheme;

/** Every scheme we sign or verify with in TLS 1.2, in our preference order. */
const SCHEMES12: ReadonlyMap<number, Scheme12> = new Map([
  [S.ecdsa_secp256r1_sha256, { algorithm: { kind: "ecdsa", hash: "SHA-256" }, key: "ec" }],
  [S.ecdsa_secp384r1_sha384, { algorithm: { kind: "ecdsa", hash: "SHA-384" }, key: "ec" }],
  [S.ecdsa_secp521r1_sha512, { algorithm: { kind: "ecdsa", hash: "SHA-512" }, key: "ec" }],
  [S.ed25519, { algorithm: { kind: "ed25519" }, key: "ed25519" }],
  [S.rsa_pss_rsae_sha256, { algorithm: { kind: "rsa-pss", hash: "SHA-256" }, key: "rsa" }],
  [S.rsa_pss_rsae_sha384, { algorithm: { kind: "rsa-pss", hash: "SHA-384" }, key: "rsa" }],
  [S.rsa_pss_rsae_sha512, { algorithm: { kind: "rsa-pss", hash: "SHA-512" }, key: "rsa" }],
  // RSASSA-PKCS1-v1_5 last: chosen for our ServerKeyExchange only when the client offers no
  // RSA-PSS scheme (RFC 8446, Section 4.2.3 lets 1.2 peers use it; SHA-1 never).
  [S.rsa_pkcs1_sha256, { algorithm: { kind: "rsa-pkcs1", hash: "SHA-256" }, key: "rsa" }],
  [S.rsa_pkcs1_sha384, { algorithm: { kind: "rsa-pkcs1", hash: "SHA-384" }, key: "rsa" }],
  [S.rsa_pkcs1_sha512, { algorithm: { kind: "rsa-pkcs1", hash: "SHA-512" }, key: "rsa" }],
]);

/** The schemes we list in CertificateRequest and accept in a client's CertificateVerify. */
export const VERIFY_SCHEMES12: readonly number[] = [...SCHEMES12.keys()];

function classOfPrivate(key: PrivateKey): KeyClass {
  return key.kind;
}

function classOfPublic(key: PublicKey): KeyClass {
  return key.kind;
}

/** The suite authentication a server key can provide (RFC 8422 Section 2; RFC 5246). */
export function suiteAuthOf(key: PrivateKey): SuiteAuth {
  return key.kind === "rsa" ? "rsa" : "ecdsa";
}

/**
 * The scheme for our ServerKeyExchange: the first of ours that the client offers and our key
 * can make, with the curve's own hash first for ECDSA. Null when there is none, including a
 * client without signature_algorithms (whose implied default is SHA-1): handshake_failure.
 */
export function chooseSigningScheme12(
  key: PrivateKey,
  clientSchemes: readonly number[] | null,
): number | null {
  if (clientSchemes === null) return null;
  const cls = classOfPrivate(key);
  const order = [...SCHEMES12.keys()];
  if (key.kind === "ec" && key.curve === "P-384") {
    order.unshift(S.ecdsa_secp384r1_sha384);
  }
  for (const s of order) {
    if (SCHEMES12.get(s)?.key === cls && clientSchemes.includes(s)) return s;
  }
  return null;
}

/** The provider algorithm of a scheme we sign with. */
export function signingAlgorithm12(scheme: number): SignatureAlgorithm {
  const info = SCHEMES12.get(scheme);
  if (info === undefined) throw new TlsAlert("internal_error", "Unsupported signing scheme");
  return info.algorithm;
}

/**
 * The algorithm for checking a client's TLS 1.2 CertificateVerify: one we offered in the
 * CertificateRequest, and one that fits the certificate's key.
 */
export function verifyingAlgorithm12(scheme: number, key: PublicKey): SignatureAlgorithm {
  const info = SCHEMES12.get(scheme);
  if (info === undefined) {
    throw new TlsAlert("illegal_parameter", "Signature scheme was not offered");
  }
  if (info.key !== classOfPublic(key)) {
    throw new TlsAlert("illegal_parameter", "Signature scheme does not match the certificate key");
  }
  return info.algorithm;
}
