/**
 * Checks that a configured private key belongs to the configured certificate, so that a
 * mismatched pair is refused at startup instead of failing every handshake.
 *
 * TODO(#x509): switch to protocol/x509 `parseCertificate` and `parsePrivateKey` once they exist,
 * comparing the decoded public keys; node:crypto does the parsing until then.
 */
import { createPrivateKey, createPublicKey, X509Certificate } from "node:crypto";

/** Why a certificate or key file was refused. */
export type KeyPairProblem =
  | { kind: "certificate"; reason: string }
  | { kind: "key"; reason: string }
  | { kind: "mismatch" };

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/** The PEM certificate blocks of a file, in order. */
export function pemCertificates(text: string): string[] {
  return text.match(PEM_CERTIFICATE) ?? [];
}

/** Returns null when the first certificate of `certPem` carries the public half of `keyPem`. */
export function checkKeyPair(certPem: string, keyPem: string): KeyPairProblem | null {
  const first = pemCertificates(certPem)[0];
  if (first === undefined) return { kind: "certificate", reason: "no PEM certificate found" };
  let certKey: Uint8Array;
  try {
    certKey = new X509Certificate(first).publicKey.export({ type: "spki", format: "der" });
  } catch {
    return { kind: "certificate", reason: "the certificate cannot be parsed" };
  }
  let ownKey: Uint8Array;
  try {
    ownKey = createPublicKey(createPrivateKey(keyPem)).export({ type: "spki", format: "der" });
  } catch {
    return { kind: "key", reason: "the private key cannot be parsed (PEM PKCS#8, SEC1 or PKCS#1)" };
  }
  return bytesEqual(certKey, ownKey) ? null : { kind: "mismatch" };
}

/** Checks that a file holds at least one parsable certificate; returns the reason when not. */
export function checkCertificates(pem: string): string | null {
  const blocks = pemCertificates(pem);
  if (blocks.length === 0) return "no PEM certificate found";
  for (const block of blocks) {
    try {
      new X509Certificate(block);
    } catch {
      return "a certificate cannot be parsed";
    }
  }
  return null;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
