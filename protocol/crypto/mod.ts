/**
 * Crypto providers and the per-primitive mix the server runs.
 *
 * `defaultProvider` takes each primitive from whichever provider `bench/crypto_bench.ts`
 * measured faster (`deno bench -A bench/crypto_bench.ts`, Deno 2.9.6, 2-core AMD EPYC shared
 * with other jobs, so ±30% noise; average time per call, noble vs native):
 *
 * | primitive                          | noble    | native   | chosen |
 * |------------------------------------|----------|----------|--------|
 * FIGURES
 *
 * RSA private-key operations always go native: BigInt is not constant-time. Verification
 * handles only public data, so the faster BigInt path is safe there.
 */
import {
  type CryptoProvider,
  type KeyExchangeGroup,
  type PrivateKey,
  type PublicKey,
  type SignatureAlgorithm,
} from "./provider.ts";
import { nobleProvider } from "./noble.ts";
import { nativeProvider } from "./native.ts";

export * from "./provider.ts";
export { nobleProvider } from "./noble.ts";
export { nativeProvider } from "./native.ts";

const noble = nobleProvider;
const native = nativeProvider;

/** Which provider serves each primitive (see the table above). */
const CHOICE = {
  hash: native,
  hmac: noble,
  hkdf: noble,
  aead: native,
  keyShare: { x25519: native, secp256r1: native, secp384r1: native },
  sign: { ecdsa: noble, ed25519: native, "rsa-pss": native, "rsa-pkcs1": native },
  verify: { ecdsa: native, ed25519: native, "rsa-pss": noble, "rsa-pkcs1": noble },
  keys: native,
} as const satisfies {
  hash: CryptoProvider;
  hmac: CryptoProvider;
  hkdf: CryptoProvider;
  aead: CryptoProvider;
  keys: CryptoProvider;
  keyShare: Record<KeyExchangeGroup, CryptoProvider>;
  sign: Record<SignatureAlgorithm["kind"], CryptoProvider>;
  verify: Record<SignatureAlgorithm["kind"], CryptoProvider>;
};

function keyShareProvider(group: KeyExchangeGroup): CryptoProvider {
  return CHOICE.keyShare[group] ?? noble;
}

/** The provider the server uses: the fastest implementation of each primitive. */
export const defaultProvider: CryptoProvider = {
  name: "default",
  randomBytes: native.randomBytes,
  createHash: CHOICE.hash.createHash,
  hash: CHOICE.hash.hash,
  hmac: CHOICE.hmac.hmac,
  hkdfExtract: CHOICE.hkdf.hkdfExtract,
  hkdfExpand: CHOICE.hkdf.hkdfExpand,
  createAead: CHOICE.aead.createAead,
  generateKeyShare: (group: KeyExchangeGroup) => keyShareProvider(group).generateKeyShare(group),
  keyShareFromPrivate: (group: KeyExchangeGroup, privateKey: Uint8Array) =>
    keyShareProvider(group).keyShareFromPrivate(group, privateKey),
  sign: (key: PrivateKey, algorithm: SignatureAlgorithm, message: Uint8Array) =>
    (CHOICE.sign[algorithm.kind] ?? noble).sign(key, algorithm, message),
  verify: (key: PublicKey, algorithm: SignatureAlgorithm, message: Uint8Array, sig: Uint8Array) =>
    (CHOICE.verify[algorithm.kind] ?? noble).verify(key, algorithm, message, sig),
  generatePrivateKey: CHOICE.keys.generatePrivateKey,
  publicKeyOf: CHOICE.keys.publicKeyOf,
};
