/**
 * Material for hostile-client tests: RSA public keys nobody holds the private key of, and
 * client certificate chains built from them that reach a real CA by name only.
 */
import { defaultProvider } from "../../protocol/crypto/mod.ts";
import type { PrivateKey, PublicKey } from "../../protocol/crypto/provider.ts";
import { issueCertificate } from "../../protocol/x509/writer.ts";

/** An RSA public key of exactly `bits` bits with exponent `e`, its private half unknown. */
export function fakeRsaKey(bits: number, e = 65537n): PublicKey {
  const bytes = crypto.getRandomValues(new Uint8Array(Math.ceil(bits / 8)));
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  n = (n & ((1n << BigInt(bits)) - 1n)) | (1n << BigInt(bits - 1)) | 1n;
  return { kind: "rsa", n, e, bits };
}

export interface HostileChainOptions {
  /** Intermediates between the leaf and the CA. Default 4. */
  readonly intermediates?: number;
  /** Modulus size of every key in the chain. Default 16383 (the reported attack). */
  readonly modulusBits?: number;
  /** Public exponent of every key. Default a 16383-bit odd number (the reported attack). */
  readonly exponent?: bigint;
}

let signer: PrivateKey | undefined;

/**
 * A client chain, leaf first, whose top intermediate names `caDer`'s subject as its issuer and
 * whose every key is oversized: a server that checks signatures while building the path would
 * exponentiate with those keys. Signatures are real RSA-2048 PKCS#1 signatures by a throwaway
 * key, so that they reach the arithmetic rather than fail on their form.
 */
export function hostileRsaChain(caDer: Uint8Array, options: HostileChainOptions = {}): {
  chain: Uint8Array[];
  privateKey: PrivateKey;
} {
  signer ??= defaultProvider.generatePrivateKey("rsa2048");
  const key = signer;
  const bits = options.modulusBits ?? 16383;
  const e = options.exponent ?? ((1n << 16382n) | 1n);
  const now = Date.now();
  const validity = { notBefore: new Date(now - 3_600_000), notAfter: new Date(now + 86_400_000) };
  // The writer reads the issuer's name from a certificate it can parse; a twin with the same
  // name and an ordinary key stands in for each hostile issuer.
  const twin = (subject: string) =>
    issueCertificate({ subject, key, isCa: true, ...validity }, defaultProvider);
  let issuer = caDer;
  const upward: Uint8Array[] = [];
  const count = options.intermediates ?? 4;
  for (let i = 0; i < count; i++) {
    const subject = `CN=Hostile Intermediate ${i}`;
    upward.push(issueCertificate({
      subject,
      issuer: { certificate: issuer, key },
      publicKey: fakeRsaKey(bits, e),
      isCa: true,
      ...validity,
    }, defaultProvider));
    issuer = twin(subject);
  }
  const leaf = issueCertificate({
    subject: "CN=mallory",
    issuer: { certificate: issuer, key },
    publicKey: fakeRsaKey(bits, e),
    extKeyUsage: ["clientAuth"],
    ...validity,
  }, defaultProvider);
  return { chain: [leaf, ...upward.reverse()], privateKey: key };
}
