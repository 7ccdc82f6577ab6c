/**
 * The pure-TypeScript crypto provider, built on @noble/hashes, @noble/ciphers and
 * @noble/curves, plus BigInt RSA (`_rsa.ts`). It runs everywhere and is the reference every other
 * provider is checked against.
 *
 * RSA private-key operations use BigInt, which is not constant-time; they are blinded, but the
 * native provider is preferred for RSA signing. RSA key generation borrows `node:crypto`.
 */
import { extraShareFromPrivate, generateExtraShare, isExtraGroup } from "./_groups.ts";
import { sha256, sha384, sha512 } from "@noble/hashes/sha2.js";
import { hmac } from "@noble/hashes/hmac.js";
import { expand, extract } from "@noble/hashes/hkdf.js";
import { gcm } from "@noble/ciphers/aes.js";
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { p256, p384 } from "@noble/curves/nist.js";
import { ecdsa } from "@noble/curves/abstract/weierstrass.js";
import { hmacSha256, MAX_INPUT as FAST_HMAC_MAX_INPUT } from "./_hmac_sha256.ts";
import {
  hmacSha384Short,
  MAX_INPUT as FAST_HMAC384_MAX_INPUT,
  MAX_KEY as FAST_HMAC384_MAX_KEY,
} from "./_hmac_sha384.ts";
import { ed25519, x25519 } from "@noble/curves/ed25519.js";
import {
  type Aead,
  type AeadAlgorithm,
  CryptoError,
  type CryptoProvider,
  type EcCurve,
  type HashAlgorithm,
  type HashContext,
  type KeyExchangeGroup,
  type KeyShare,
  type PrivateKey,
  type PrivateKeyKind,
  type PublicKey,
  type SignatureAlgorithm,
} from "./provider.ts";
import {
  AEAD_PARAMETERS,
  checkAeadKey,
  checkGroup,
  checkNistShare,
  checkSealInto,
  checkX25519Secret,
  checkX25519Share,
  CURVE_BYTES,
  GROUP_CURVE,
  normalizeEcScalar,
  normalizeNistScalar,
} from "./_common.ts";
import { rsaSign, rsaVerify } from "./_rsa.ts";
import { bitLength } from "./_bigint.ts";
import { generateRsaKey } from "./_rsa_keygen.ts";

const HASHES = { "SHA-256": sha256, "SHA-384": sha384, "SHA-512": sha512 } as const;

/**
 * HMAC through the short-input HMAC-SHA-256 where it applies (`_hmac_sha256.ts`, about twice as
 * fast here: 2.8 against 5.5 µs for an HKDF-Expand-Label block) and the short-input
 * HMAC-SHA-384 (`_hmac_sha384.ts`), else noble's.
 */
function hmacOf(h: (typeof HASHES)[HashAlgorithm], key: Uint8Array, data: Uint8Array): Uint8Array {
  return hmacShort(h, key, [data]) ?? hmac(h, key, data);
}

/** The short-input HMAC of `parts` where one applies to `h` and these sizes, else null. */
function hmacShort(
  h: (typeof HASHES)[HashAlgorithm],
  key: Uint8Array,
  parts: readonly Uint8Array[],
): Uint8Array | null {
  let length = 0;
  for (const p of parts) length += p.length;
  if (h === sha256) {
    return key.length <= 64 && length <= FAST_HMAC_MAX_INPUT ? hmacSha256(key, parts) : null;
  }
  if (h === sha384) {
    return key.length <= FAST_HMAC384_MAX_KEY && length <= FAST_HMAC384_MAX_INPUT
      ? hmacSha384Short(key, parts)
      : null;
  }
  return null;
}

/**
 * P-256 with the RFC 6979 nonce generator on the short-input HMAC (5 to 7 MACs per
 * signature). The same deterministic signatures as `p256` (the provider tests compare them);
 * the curve, its point tables and verification are `p256`'s.
 */
const p256Signer = ecdsa(p256.Point, sha256, {
  hmac: (key: Uint8Array, message: Uint8Array) => hmacOf(sha256, key, message),
});

const CURVES = { "P-256": p256, "P-384": p384 } as const;
const SIGNERS = { "P-256": p256Signer, "P-384": p384 } as const;

/** The largest request `crypto.getRandomValues` serves at once (WebCrypto, Section 10.1.1). */
const RANDOM_CHUNK = 65536;

/** Fills a fresh buffer from the system CSPRNG. */
export function systemRandomBytes(length: number): Uint8Array {
  if (!Number.isSafeInteger(length) || length < 0 || length > 1 << 24) {
    throw new CryptoError(`Invalid random length: ${length}`);
  }
  const out = new Uint8Array(length);
  for (let offset = 0; offset < length; offset += RANDOM_CHUNK) {
    crypto.getRandomValues(out.subarray(offset, Math.min(length, offset + RANDOM_CHUNK)));
  }
  return out;
}

function hashFunction(algorithm: HashAlgorithm): (typeof HASHES)[HashAlgorithm] {
  const h = HASHES[algorithm];
  if (h === undefined) throw new CryptoError(`Unsupported hash: ${String(algorithm)}`);
  return h;
}

type NobleHash = ReturnType<(typeof HASHES)[HashAlgorithm]["create"]>;

function wrapHash(state: NobleHash): HashContext {
  return {
    update(data: Uint8Array): void {
      state.update(data);
    },
    digest(): Uint8Array {
      return state.clone().digest();
    },
    clone(): HashContext {
      return wrapHash(state.clone());
    },
  };
}

function createAead(algorithm: AeadAlgorithm, key: Uint8Array): Aead {
  checkAeadKey(algorithm, key);
  const params = AEAD_PARAMETERS[algorithm];
  const k = key.slice();
  const cipher = algorithm === "CHACHA20-POLY1305" ? chacha20poly1305 : gcm;
  return {
    keyLength: params.keyLength,
    nonceLength: params.nonceLength,
    tagLength: params.tagLength,
    seal(nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Uint8Array {
      if (nonce.length !== params.nonceLength) throw new CryptoError("Invalid AEAD nonce length");
      return cipher(k, nonce, aad).encrypt(plaintext);
    },
    sealInto(
      nonce: Uint8Array,
      aad: Uint8Array,
      plaintext: Uint8Array,
      trailer: Uint8Array,
      out: Uint8Array,
      offset: number,
    ): void {
      const length = checkSealInto(params, nonce, plaintext, trailer, out, offset);
      const joined = new Uint8Array(length);
      joined.set(plaintext);
      joined.set(trailer, plaintext.length);
      out.set(cipher(k, nonce, aad).encrypt(joined), offset);
    },
    open(nonce: Uint8Array, aad: Uint8Array, ciphertextAndTag: Uint8Array): Uint8Array | null {
      if (nonce.length !== params.nonceLength) return null;
      if (ciphertextAndTag.length < params.tagLength) return null;
      try {
        return cipher(k, nonce, aad).decrypt(ciphertextAndTag);
      } catch {
        return null;
      }
    },
  };
}

function x25519Share(secretKey: Uint8Array): KeyShare {
  const publicKey = x25519.getPublicKey(secretKey);
  return {
    group: "x25519",
    publicKey,
    computeSecret(peerPublicKey: Uint8Array): Uint8Array {
      checkX25519Share(peerPublicKey);
      let secret: Uint8Array;
      try {
        secret = x25519.getSharedSecret(secretKey, peerPublicKey);
      } catch {
        throw new CryptoError("Invalid x25519 key share: all-zero shared secret");
      }
      checkX25519Secret(secret);
      return secret;
    },
  };
}

function nistShare(group: "secp256r1" | "secp384r1", secretKey: Uint8Array): KeyShare {
  const curve = CURVES[GROUP_CURVE[group]];
  let publicKey: Uint8Array | undefined;
  return {
    group,
    // Derived on first use: a replayed or test share may only ever compute a secret.
    get publicKey(): Uint8Array {
      return publicKey ??= curve.getPublicKey(secretKey, false);
    },
    computeSecret(peerPublicKey: Uint8Array): Uint8Array {
      checkNistShare(group, peerPublicKey);
      let shared: Uint8Array;
      try {
        shared = curve.getSharedSecret(secretKey, peerPublicKey, true);
      } catch {
        throw new CryptoError(`Invalid ${group} key share: not a point on the curve`);
      }
      // The shared secret is the x-coordinate only (RFC 8446, Section 7.4.2).
      return shared.slice(1);
    },
  };
}

function keyShareFromPrivate(group: KeyExchangeGroup, privateKey: Uint8Array): KeyShare {
  if (isExtraGroup(group)) return extraShareFromPrivate(group, privateKey);
  checkGroup(group);
  const scalar = normalizeNistScalar(group, privateKey).slice();
  return group === "x25519" ? x25519Share(scalar) : nistShare(group, scalar);
}

function generateKeyShare(group: KeyExchangeGroup): KeyShare {
  if (isExtraGroup(group)) return generateExtraShare(group, false, systemRandomBytes);
  checkGroup(group);
  if (group === "x25519") return x25519Share(x25519.utils.randomSecretKey());
  return nistShare(group, CURVES[GROUP_CURVE[group]].utils.randomSecretKey());
}

function ecPublicPoint(curve: EcCurve, d: Uint8Array): Uint8Array {
  const scalar = normalizeEcScalar(curve, d);
  try {
    return CURVES[curve].getPublicKey(scalar, false);
  } catch {
    throw new CryptoError(`Invalid ${curve} private key`);
  }
}

/** The counter byte of HKDF-Expand's first block. */
const HKDF_FIRST_BLOCK = Uint8Array.of(1);

const warmed = new Set<EcCurve>();

/**
 * A server signs every handshake with one key, so a larger fixed-base table pays off: window 8
 * instead of noble's 6 makes P-256 signing about 20% faster (bench/crypto_bench.ts) for a
 * one-time cost of about 0.1 s on the first signature.
 */
function warmBasePoint(curve: EcCurve): void {
  if (warmed.has(curve)) return;
  warmed.add(curve);
  CURVES[curve].Point.BASE.precompute(8, false);
}

function checkCurve(curve: EcCurve): void {
  if (CURVES[curve] === undefined) throw new CryptoError(`Unsupported curve: ${String(curve)}`);
}

function sign(key: PrivateKey, algorithm: SignatureAlgorithm, message: Uint8Array): Uint8Array {
  switch (algorithm.kind) {
    case "ecdsa": {
      if (key.kind !== "ec") throw new CryptoError("ECDSA needs an EC key");
      const d = normalizeEcScalar(key.curve, key.d);
      const digest = hashFunction(algorithm.hash)(message);
      warmBasePoint(key.curve);
      return SIGNERS[key.curve].sign(digest, d, { prehash: false, format: "der" });
    }
    case "ed25519":
      if (key.kind !== "ed25519") throw new CryptoError("Ed25519 needs an Ed25519 key");
      if (key.seed.length !== 32) throw new CryptoError("Invalid Ed25519 private key length");
      return ed25519.sign(message, key.seed);
    case "rsa-pss":
    case "rsa-pkcs1":
      if (key.kind !== "rsa") throw new CryptoError("RSA signatures need an RSA key");
      hashFunction(algorithm.hash);
      return rsaSign(key, algorithm.kind, algorithm.hash, message, systemRandomBytes);
    default:
      throw new CryptoError("Unsupported signature algorithm");
  }
}

function verify(
  key: PublicKey,
  algorithm: SignatureAlgorithm,
  message: Uint8Array,
  signature: Uint8Array,
): boolean {
  switch (algorithm.kind) {
    case "ecdsa": {
      if (key.kind !== "ec") throw new CryptoError("ECDSA needs an EC key");
      checkCurve(key.curve);
      const curve = CURVES[key.curve];
      if (
        !curve.utils.isValidPublicKey(
          key.point,
          key.point.length !== 1 + 2 * CURVE_BYTES[key.curve],
        )
      ) {
        throw new CryptoError(`Invalid ${key.curve} public key`);
      }
      const digest = hashFunction(algorithm.hash)(message);
      try {
        // High-S signatures are valid ECDSA (OpenSSL emits them); do not impose low-S.
        return curve.verify(signature, digest, key.point, {
          prehash: false,
          lowS: false,
          format: "der",
        });
      } catch {
        return false;
      }
    }
    case "ed25519":
      if (key.kind !== "ed25519") throw new CryptoError("Ed25519 needs an Ed25519 key");
      if (key.key.length !== 32) throw new CryptoError("Invalid Ed25519 public key length");
      try {
        // RFC 8032 strict verification, not the permissive ZIP-215 rules.
        return ed25519.verify(signature, message, key.key, { zip215: false });
      } catch {
        return false;
      }
    case "rsa-pss":
    case "rsa-pkcs1":
      if (key.kind !== "rsa") throw new CryptoError("RSA signatures need an RSA key");
      hashFunction(algorithm.hash);
      return rsaVerify(key, algorithm.kind, algorithm.hash, message, signature);
    default:
      return false;
  }
}

function generatePrivateKey(kind: PrivateKeyKind): PrivateKey {
  switch (kind) {
    case "P-256":
    case "P-384": {
      const d = CURVES[kind].utils.randomSecretKey();
      return { kind: "ec", curve: kind, d, publicKey: CURVES[kind].getPublicKey(d, false) };
    }
    case "ed25519": {
      const seed = ed25519.utils.randomSecretKey();
      return { kind: "ed25519", seed, publicKey: ed25519.getPublicKey(seed) };
    }
    case "rsa2048":
      return generateRsaKey(2048);
    case "rsa3072":
      return generateRsaKey(3072);
    case "rsa4096":
      return generateRsaKey(4096);
    default:
      throw new CryptoError(`Unsupported key kind: ${String(kind)}`);
  }
}

/** Derives the public key from the private components rather than trusting the stored copy. */
function publicKeyOf(key: PrivateKey): PublicKey {
  switch (key.kind) {
    case "ec":
      checkCurve(key.curve);
      return { kind: "ec", curve: key.curve, point: ecPublicPoint(key.curve, key.d) };
    case "ed25519":
      if (key.seed.length !== 32) throw new CryptoError("Invalid Ed25519 private key length");
      return { kind: "ed25519", key: ed25519.getPublicKey(key.seed) };
    case "rsa":
      return { kind: "rsa", n: key.n, e: key.e, bits: bitLength(key.n) };
  }
}

/** The pure-noble provider. */
export const nobleProvider: CryptoProvider = {
  name: "noble",
  randomBytes: systemRandomBytes,
  createHash(algorithm: HashAlgorithm): HashContext {
    return wrapHash(hashFunction(algorithm).create());
  },
  hash(algorithm: HashAlgorithm, data: Uint8Array): Uint8Array {
    return hashFunction(algorithm)(data);
  },
  hmac(algorithm: HashAlgorithm, key: Uint8Array, data: Uint8Array): Uint8Array {
    return hmacOf(hashFunction(algorithm), key, data);
  },
  hkdfExtract(algorithm: HashAlgorithm, salt: Uint8Array, ikm: Uint8Array): Uint8Array {
    const h = hashFunction(algorithm);
    // HKDF-Extract is HMAC(salt, IKM); an empty salt is HashLen zeros (RFC 5869, Section 2.2),
    // which HMAC's zero padding of the key makes the same MAC.
    return hmacShort(h, salt, [ikm]) ?? extract(h, ikm, salt);
  },
  hkdfExpand(
    algorithm: HashAlgorithm,
    prk: Uint8Array,
    info: Uint8Array,
    length: number,
  ): Uint8Array {
    const h = hashFunction(algorithm);
    if (!Number.isSafeInteger(length) || length < 0 || length > 255 * h.outputLen) {
      throw new CryptoError(`Invalid HKDF output length: ${length}`);
    }
    if (prk.length < h.outputLen) throw new CryptoError("HKDF pseudorandom key too short");
    if (length > h.outputLen) return expand(h, prk, info, length);
    // One block, as every TLS 1.3 label is: T(1) = HMAC(PRK, info || 0x01) (RFC 5869, 2.3).
    const block = hmacShort(h, prk, [info, HKDF_FIRST_BLOCK]) ??
      hmac.create(h, prk).update(info).update(HKDF_FIRST_BLOCK).digest();
    return length === block.length ? block : block.subarray(0, length);
  },
  createAead,
  generateKeyShare,
  keyShareFromPrivate,
  sign,
  verify,
  generatePrivateKey,
  publicKeyOf,
};
