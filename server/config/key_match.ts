/**
 * Checks that a configured private key belongs to the configured certificate, so that a
 * mismatched pair is refused at startup instead of failing every handshake, and that CA files
 * hold parsable certificates. Parsing is protocol/x509's, the same code the TLS stack uses.
 */
import type { PrivateKey, PublicKey } from "../../protocol/crypto/provider.ts";
import { parseCertificate } from "../../protocol/x509/certificate.ts";
import { parsePrivateKey } from "../../protocol/x509/keys.ts";
import { decodePem } from "../../protocol/x509/pem.ts";

/** Why a certificate or key file was refused. */
export type KeyPairProblem =
  | { kind: "certificate"; reason: string }
  | { kind: "key"; reason: string }
  | { kind: "mismatch" };

/** The DER certificates of a PEM file, in order; throws on malformed PEM. */
export function pemCertificates(text: string): Uint8Array[] {
  return decodePem(text).filter((b) => b.label === "CERTIFICATE").map((b) => b.der);
}

/** A server certificate chain (DER, leaf first) with its parsed private key. */
export interface KeyPair {
  readonly chain: readonly Uint8Array[];
  readonly privateKey: PrivateKey;
}

/** Parses a PEM chain and key, and checks that the key is the leaf certificate's. */
export function loadKeyPair(
  certPem: string,
  keyPem: string,
): { ok: true; pair: KeyPair } | { ok: false; problem: KeyPairProblem } {
  const certProblem = checkCertificates(certPem);
  if (certProblem !== null) {
    return { ok: false, problem: { kind: "certificate", reason: certProblem } };
  }
  const chain = pemCertificates(certPem);
  const leaf = parseCertificate(chain[0]!);
  const certKey = leaf.publicKeyInfo.key;
  if (certKey === undefined) {
    const reason = "the certificate's key algorithm is not supported";
    return { ok: false, problem: { kind: "certificate", reason } };
  }
  let privateKey: PrivateKey;
  try {
    privateKey = parsePrivateKey(keyPem);
  } catch (error) {
    const detail = error instanceof Error ? `: ${lowerFirst(error.message)}` : "";
    return {
      ok: false,
      problem: { kind: "key", reason: `the private key cannot be used${detail}` },
    };
  }
  if (!samePublicKey(certKey, privateKey)) return { ok: false, problem: { kind: "mismatch" } };
  return { ok: true, pair: { chain, privateKey } };
}

/** Returns null when the first certificate of `certPem` carries the public half of `keyPem`. */
export function checkKeyPair(certPem: string, keyPem: string): KeyPairProblem | null {
  const loaded = loadKeyPair(certPem, keyPem);
  return loaded.ok ? null : loaded.problem;
}

/** Checks that a PEM file holds at least one parsable certificate; returns the reason when not. */
export function checkCertificates(pem: string): string | null {
  let blocks: Uint8Array[];
  try {
    blocks = pemCertificates(pem);
  } catch (error) {
    return `malformed PEM${error instanceof Error ? `: ${lowerFirst(error.message)}` : ""}`;
  }
  if (blocks.length === 0) return "no PEM certificate found";
  for (const [index, der] of blocks.entries()) {
    try {
      parseCertificate(der);
    } catch {
      return `certificate ${index + 1} cannot be parsed`;
    }
  }
  return null;
}

/** Whether `key` is the private half of `publicKey`. */
function samePublicKey(publicKey: PublicKey, key: PrivateKey): boolean {
  switch (key.kind) {
    case "ec":
      return publicKey.kind === "ec" && publicKey.curve === key.curve &&
        bytesEqual(publicKey.point, key.publicKey);
    case "ed25519":
      return publicKey.kind === "ed25519" && bytesEqual(publicKey.key, key.publicKey);
    case "rsa":
      return publicKey.kind === "rsa" && publicKey.n === key.n && publicKey.e === key.e;
    default: {
      const unreachable: never = key;
      throw new Error(`Unknown key kind ${JSON.stringify(unreachable)}`);
    }
  }
}

function lowerFirst(text: string): string {
  return text.charAt(0).toLowerCase() + text.slice(1);
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
