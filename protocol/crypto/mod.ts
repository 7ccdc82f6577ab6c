/**
 * Crypto providers and the per-primitive mix the server runs.
 *
 * `defaultProvider` takes each primitive from whichever provider `bench/crypto_bench.ts`
 * measured faster (`deno bench -A bench/crypto_bench.ts`, Deno 2.9.6, 2-core AMD EPYC shared
 * with other jobs, so ±30% noise; average time per call, noble vs native):
 *
 * | primitive                          | noble    | native   | chosen |
 * |------------------------------------|----------|----------|--------|
 * | X25519 keygen + derive             | 708 µs   | 97 µs    | native |
 * | P-256 keygen + derive              | 1.3 ms   | 679 µs   | native |
 * | P-384 keygen + derive              | 2.1 ms   | 1.3 ms   | native |
 * | P-256 ECDSA sign (SHA-256)         | 269 µs   | 548 µs   | wasm   |
 * | P-256 ECDSA verify                 | 1.8 ms   | 695 µs   | native |
 * | P-384 ECDSA sign (SHA-384)         | 450 µs   | 2.0 ms   | noble  |
 * | P-384 ECDSA verify                 | 2.7 ms   | 1.6 ms   | native |
 * | Ed25519 sign                       | 396 µs   | 25 µs    | native |
 * | Ed25519 verify                     | 660 µs   | 78 µs    | native |
 * | RSA-2048 PSS sign                  | 2.7 ms   | 2.1 ms   | native |
 * | RSA-2048 PSS verify                | 289 µs   | 500 µs   | noble  |
 * | RSA-2048 PKCS#1 verify             | 246 µs   | 350 µs   | noble  |
 * | RSA-4096 PKCS#1 verify, new key    | 384 µs   | 825 µs   | noble  |
 * | RSA-8192 PKCS#1 verify, new key    | ~1.0 ms  | refused  | noble  |
 * | AES-128-GCM seal 16 KiB            | 664 µs   | 226 µs   | native |
 * | AES-128-GCM open 16 KiB            | 626 µs   | 130 µs   | native |
 * | AES-256-GCM seal 16 KiB            | 491 µs   | 158 µs   | native |
 * | CHACHA20-POLY1305 seal 16 KiB      | 291 µs   | 32 µs    | native |
 * | CHACHA20-POLY1305 open 16 KiB      | 140 µs   | 28 µs    | native |
 * | SHA-256 of 16 KiB                  | 180 µs   | 15 µs    | native |
 * | transcript update + digest x2      | 9.9 µs   | 8.8 µs   | native |
 * | HKDF-Expand SHA-256, 32 bytes      | 37 µs    | 61 µs    | noble  |
 * | HMAC-SHA-256, 32 bytes             | 29 µs    | 47 µs    | noble  |
 *
 * Since then the noble provider computes HMAC-SHA-256 of short inputs (HKDF, Finished, the
 * RFC 6979 nonce of P-256 signing) with `_hmac_sha256.ts`: an HKDF-Expand-Label block took
 * 2.8 µs against 5.5 µs with @noble/hashes and 9.5 µs with node:crypto's createHmac (thread
 * CPU, one process, interleaved). HMAC-SHA-384 of short inputs (the SHA-384 key schedules) runs
 * in the WebAssembly core (`_hmac_sha384.ts`): 1.7-2.2 µs per MAC against 8.7-10.7 µs for
 * @noble/hashes and 7.1-8.7 µs for node:crypto.
 *
 * P-256 ECDSA signing goes to our WebAssembly core (`p256_wasm/`, C compiled with clang):
 * 61-96 µs per CertificateVerify signature against 204-372 µs for noble, 492-661 µs for
 * node:crypto and 451-759 µs for WebCrypto (`deno task bench --only hscpu`, five runs, same
 * process each, machine shared), with the same RFC 6979 bytes as noble; noble signs where
 * WebAssembly cannot be instantiated. The same module seals and opens ChaCha20-Poly1305 records
 * of up to 2 KiB (see `createAead` below).
 *
 * RSA private-key operations always go native: BigInt is not constant-time. Verification
 * handles only public data, so the faster BigInt path is safe there. Deno's node:crypto pays a
 * key import for every certificate's key ("new key": each path brings keys seen once) and
 * refuses moduli over 4096 bits ("modulus too large"), so native RSA verification is faster at
 * no size here; what bounds the cost of a hostile key is the size cap in x509 (modulus at most
 * 8192 bits, 16384 for trust anchors; exponent at most 2^32) and the per-validation budget.
 */
import {
  type Aead,
  type AeadAlgorithm,
  type CryptoProvider,
  type HashAlgorithm,
  type HashContext,
  type KeyExchangeGroup,
  type KeyShare,
  type PrivateKey,
  type PublicKey,
  type SignatureAlgorithm,
} from "./provider.ts";
import { nobleProvider } from "./noble.ts";
import { nativeProvider, x25519ShareOfPair } from "./native.ts";
import { chachaWasmAead, type P256WasmSigner, p256WasmSigner } from "./p256_wasm/mod.ts";
import type { HandshakeAhead } from "./ahead.ts";
import { normalizeEcScalar } from "./_common.ts";
import { MAX_INPUT as SHORT_INPUT, Sha256Context, sha256Short } from "./_hmac_sha256.ts";

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
  keyShare: {
    x25519: native,
    secp256r1: native,
    secp384r1: native,
    secp521r1: noble,
    x448: noble,
    ffdhe2048: native,
    ffdhe3072: native,
  },
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

let wasmP256: P256WasmSigner | null | undefined;

/**
 * Each P-256 key's scalar, normalised to 32 bytes and range-checked once: the check builds a
 * BigInt byte by byte (about 5 µs per signature). Keys are treated as immutable, as the native
 * provider's KeyObject cache does; an entry lives as long as its key.
 */
const p256Scalars = new WeakMap<PrivateKey, Uint8Array>();

/** Where each P-256 key's nonces are drawn ahead (`useHandshakeAhead`), and its ring. */
const noncesAhead = new WeakMap<PrivateKey, { work: HandshakeAhead; index: number }>();
/** Threads making X25519 key pairs ahead, in the order they came. */
const x25519Ahead = new Set<HandshakeAhead>();

/**
 * Lets this isolate's signatures and X25519 key shares use what `work` makes ahead (see
 * ahead.ts): the nonces of the P-256 keys `p256Keys` (in the order `work` was given their
 * scalars), and its X25519 key pairs if it makes them. `stopUsing` undoes it; the caller
 * starts and stops the thread.
 */
export function useHandshakeAhead(work: HandshakeAhead, p256Keys: readonly PrivateKey[]): void {
  p256Keys.forEach((key, index) => noncesAhead.set(key, { work, index }));
  x25519Ahead.add(work);
}

/** Stops using `work` for the keys `p256Keys` and for key shares. */
export function stopUsing(work: HandshakeAhead, p256Keys: readonly PrivateKey[]): void {
  for (const key of p256Keys) if (noncesAhead.get(key)?.work === work) noncesAhead.delete(key);
  x25519Ahead.delete(work);
}

/** An X25519 share: from a key pair made ahead when one is ready, else made now. */
function generateKeyShare(group: KeyExchangeGroup): KeyShare {
  if (group === "x25519") {
    for (const work of x25519Ahead) {
      const share = work.takeX25519(x25519ShareOfPair);
      if (share !== null) return share;
    }
  }
  return keyShareProvider(group).generateKeyShare(group);
}

/** The P-256 private scalar of `key` as the WebAssembly core takes it (32 bytes, checked). */
export function p256Scalar(key: Extract<PrivateKey, { kind: "ec" }>): Uint8Array {
  let d = p256Scalars.get(key);
  if (d === undefined) p256Scalars.set(key, d = normalizeEcScalar("P-256", key.d));
  return d;
}

/**
 * Signs ECDSA P-256 in WebAssembly (`p256_wasm/`): the same bytes as noble's RFC 6979
 * signature in a third of its time (see above), or with a nonce made ahead when a thread makes
 * the key's nonces (`useHandshakeAhead`) and one is ready; where WebAssembly cannot be
 * instantiated, noble signs.
 */
function sign(key: PrivateKey, algorithm: SignatureAlgorithm, message: Uint8Array): Uint8Array {
  if (algorithm.kind === "ecdsa" && key.kind === "ec" && key.curve === "P-256") {
    wasmP256 ??= p256WasmSigner();
    if (wasmP256 !== null) {
      const d = p256Scalar(key);
      const digest = algorithm.hash === "SHA-256" && message.length <= SHORT_INPUT
        ? sha256Short(message)
        : noble.hash(algorithm.hash, message);
      const ahead = noncesAhead.get(key);
      return ahead?.work.signP256(ahead.index, wasmP256, d, digest) ??
        wasmP256.sign(d, digest);
    }
  }
  return (CHOICE.sign[algorithm.kind] ?? noble).sign(key, algorithm, message);
}

/**
 * ChaCha20-Poly1305 seals and opens records of up to 2 KiB in the WebAssembly core
 * (`p256_wasm/chacha20poly1305.c`) and larger ones natively: node:crypto builds a cipher object
 * and a stream per record, 8-10 µs of CPU at any size up to 4 KiB, against 1.7-1.9 µs for a
 * 60-byte record and 5-7 µs for 1,300 bytes in the module. Every handshake record is small.
 */
function createAead(algorithm: AeadAlgorithm, key: Uint8Array): Aead {
  const native = (k: Uint8Array) => CHOICE.aead.createAead(algorithm, k);
  if (algorithm !== "CHACHA20-POLY1305") return native(key);
  if (key.length !== 32) return native(key); // the native provider's error
  return chachaWasmAead(key, native) ?? native(key);
}

/**
 * The transcript hash: SHA-256 in JavaScript (`Sha256Context`), where node:crypto spends a
 * dozen allocations on each copy a transcript digest takes; other hashes natively.
 */
function createHash(algorithm: HashAlgorithm): HashContext {
  return algorithm === "SHA-256" ? new Sha256Context() : CHOICE.hash.createHash(algorithm);
}

/** The provider the server uses: the fastest implementation of each primitive. */
export const defaultProvider: CryptoProvider = {
  name: "default",
  randomBytes: native.randomBytes,
  createHash,
  hash: CHOICE.hash.hash,
  hmac: CHOICE.hmac.hmac,
  hkdfExtract: CHOICE.hkdf.hkdfExtract,
  hkdfExpand: CHOICE.hkdf.hkdfExpand,
  createAead,
  generateKeyShare,
  keyShareFromPrivate: (group: KeyExchangeGroup, privateKey: Uint8Array) =>
    keyShareProvider(group).keyShareFromPrivate(group, privateKey),
  sign,
  verify: (key: PublicKey, algorithm: SignatureAlgorithm, message: Uint8Array, sig: Uint8Array) =>
    (CHOICE.verify[algorithm.kind] ?? noble).verify(key, algorithm, message, sig),
  generatePrivateKey: CHOICE.keys.generatePrivateKey,
  publicKeyOf: CHOICE.keys.publicKeyOf,
};

export { webCryptoSigner } from "./webcrypto_signer.ts";
