/**
 * Signature schemes usable in TLS 1.3 CertificateVerify (RFC 8446, Section 4.2.3), mapped to
 * provider algorithms and to the key type each requires. One table, read both ways.
 */
import type { PrivateKey, PublicKey, SignatureAlgorithm } from "../crypto/provider.ts";
import { TlsAlert } from "./alert.ts";
import { SignatureScheme } from "./wire.ts";

type KeyType = "P-256" | "P-384" | "ed25519" | "rsa";

interface SchemeInfo {
  readonly algorithm: SignatureAlgorithm;
  readonly key: KeyType;
}

/** Schemes we sign or verify with, in our preference order. */
const SCHEMES: ReadonlyMap<number, SchemeInfo> = new Map([
  [SignatureScheme.ed25519, { algorithm: { kind: "ed25519" }, key: "ed25519" }],
  [SignatureScheme.ecdsa_secp256r1_sha256, {
    algorithm: { kind: "ecdsa", hash: "SHA-256" },
    key: "P-256",
  }],
  [SignatureScheme.ecdsa_secp384r1_sha384, {
    algorithm: { kind: "ecdsa", hash: "SHA-384" },
    key: "P-384",
  }],
  [SignatureScheme.rsa_pss_rsae_sha256, {
    algorithm: { kind: "rsa-pss", hash: "SHA-256" },
    key: "rsa",
  }],
  [SignatureScheme.rsa_pss_rsae_sha384, {
    algorithm: { kind: "rsa-pss", hash: "SHA-384" },
    key: "rsa",
  }],
  [SignatureScheme.rsa_pss_rsae_sha512, {
    algorithm: { kind: "rsa-pss", hash: "SHA-512" },
    key: "rsa",
  }],
]);

/** Every scheme we accept in a peer's CertificateVerify, for signature_algorithms. */
export const VERIFY_SCHEMES: readonly number[] = [...SCHEMES.keys()];

/** Schemes that TLS 1.3 forbids in CertificateVerify (RFC 8446, Section 4.2.3). */
const LEGACY_SCHEMES: ReadonlySet<number> = new Set([
  SignatureScheme.rsa_pkcs1_sha256,
  SignatureScheme.rsa_pkcs1_sha384,
  SignatureScheme.rsa_pkcs1_sha512,
  SignatureScheme.rsa_pkcs1_sha1,
  SignatureScheme.ecdsa_sha1,
]);

function keyTypeOfPrivate(key: PrivateKey): KeyType {
  return key.kind === "ec" ? key.curve : key.kind;
}

function keyTypeOfPublic(key: PublicKey): KeyType {
  return key.kind === "ec" ? key.curve : key.kind;
}

/**
 * The first scheme in the peer's list that our key can sign with; null when none
 * (the caller sends handshake_failure).
 */
export function chooseSigningScheme(
  key: PrivateKey,
  peerSchemes: readonly number[],
): number | null {
  const type = keyTypeOfPrivate(key);
  for (const s of peerSchemes) {
    if (SCHEMES.get(s)?.key === type) return s;
  }
  return null;
}

/** The provider algorithm of a scheme we sign with. */
export function signingAlgorithm(scheme: number): SignatureAlgorithm {
  const info = SCHEMES.get(scheme);
  if (info === undefined) throw new TlsAlert("internal_error", "Unsupported signing scheme");
  return info.algorithm;
}

/**
 * The algorithm for checking a peer's CertificateVerify. The scheme must be one we offered and
 * must match the certificate's key; RSASSA-PKCS1-v1_5 and SHA-1 are refused outright.
 */
export function verifyingAlgorithm(
  scheme: number,
  key: PublicKey,
  offered: readonly number[],
): SignatureAlgorithm {
  if (LEGACY_SCHEMES.has(scheme)) {
    throw new TlsAlert("illegal_parameter", "Legacy signature scheme in CertificateVerify");
  }
  const info = SCHEMES.get(scheme);
  if (info === undefined || !offered.includes(scheme)) {
    throw new TlsAlert("illegal_parameter", "Signature scheme was not offered");
  }
  if (info.key !== keyTypeOfPublic(key)) {
    throw new TlsAlert("illegal_parameter", "Signature scheme does not match the certificate key");
  }
  return info.algorithm;
}
