/**
 * RSA signatures in pure TypeScript with BigInt and noble hashes: RSASSA-PSS with MGF1 and
 * RSASSA-PKCS1-v1_5 (RFC 8017, Sections 8 and 9).
 *
 * BigInt arithmetic is not constant-time. Signing therefore blinds the message representative
 * with a fresh random factor (RFC 8017, Section 5.1.2, note) and checks the result against the
 * public key before releasing it (guards against CRT fault attacks). Even so, prefer the native
 * provider for RSA private-key operations.
 */
import { sha256, sha384, sha512 } from "@noble/hashes/sha2.js";
import { CryptoError, type HashAlgorithm, type PrivateKey, type PublicKey } from "./provider.ts";
import {
  bigIntToBytes,
  bitLength,
  byteLength,
  bytesToBigInt,
  modInverse,
  modPow,
} from "./_bigint.ts";

type RsaPublicKey = Extract<PublicKey, { kind: "rsa" }>;
type RsaPrivateKey = Extract<PrivateKey, { kind: "rsa" }>;

/** Largest modulus we accept, so a hostile certificate cannot make us exponentiate forever. */
export const MAX_RSA_BITS = 16384;
/** Largest public exponent we exponentiate with (2^32, as OpenSSL for large moduli). */
export const MAX_RSA_EXPONENT = 2n ** 32n;
/** Smallest modulus we do arithmetic with at all; policy (e.g. 2048 bits) belongs to x509. */
export const MIN_RSA_BITS = 512;

const HASHES = {
  "SHA-256": sha256,
  "SHA-384": sha384,
  "SHA-512": sha512,
} as const;

const HASH_LENGTHS = { "SHA-256": 32, "SHA-384": 48, "SHA-512": 64 } as const;

/** DER DigestInfo prefixes for EMSA-PKCS1-v1_5 (RFC 8017, Section 9.2, note 1). */
const DIGEST_INFO_PREFIX: Readonly<Record<HashAlgorithm, Uint8Array>> = {
  "SHA-256": hex("3031300d060960864801650304020105000420"),
  "SHA-384": hex("3041300d060960864801650304020205000430"),
  "SHA-512": hex("3051300d060960864801650304020305000440"),
};

/** Checks modulus and exponent sizes; throws `CryptoError` on a key we refuse to use. */
export function checkRsaPublicKey(n: bigint, e: bigint): void {
  const bits = bitLength(n);
  if (bits < MIN_RSA_BITS || bits > MAX_RSA_BITS) {
    throw new CryptoError(`Unsupported RSA modulus size: ${bits} bits`);
  }
  if ((n & 1n) === 0n) throw new CryptoError("Invalid RSA modulus: even");
  if (e < 3n || (e & 1n) === 0n || e >= n || e > MAX_RSA_EXPONENT) {
    throw new CryptoError("Invalid RSA public exponent");
  }
}

/** MGF1 (RFC 8017, Appendix B.2.1). */
function mgf1(hash: HashAlgorithm, seed: Uint8Array, length: number): Uint8Array {
  const h = HASHES[hash];
  const hLen = HASH_LENGTHS[hash];
  const out = new Uint8Array(Math.ceil(length / hLen) * hLen);
  const input = new Uint8Array(seed.length + 4);
  input.set(seed);
  for (let counter = 0, offset = 0; offset < length; counter++, offset += hLen) {
    input[seed.length] = counter >>> 24;
    input[seed.length + 1] = (counter >>> 16) & 0xff;
    input[seed.length + 2] = (counter >>> 8) & 0xff;
    input[seed.length + 3] = counter & 0xff;
    out.set(h(input), offset);
  }
  return out.subarray(0, length);
}

/** EMSA-PSS-ENCODE with salt length = hash length (RFC 8017, Section 9.1.1). */
function emsaPssEncode(
  hash: HashAlgorithm,
  message: Uint8Array,
  emBits: number,
  salt: Uint8Array,
): Uint8Array {
  const h = HASHES[hash];
  const hLen = HASH_LENGTHS[hash];
  const sLen = salt.length;
  const emLen = Math.ceil(emBits / 8);
  if (emLen < hLen + sLen + 2) throw new CryptoError("RSA key too small for RSA-PSS");
  const mPrime = new Uint8Array(8 + hLen + sLen);
  mPrime.set(h(message), 8);
  mPrime.set(salt, 8 + hLen);
  const hPrime = h(mPrime);
  const dbLen = emLen - hLen - 1;
  const db = new Uint8Array(dbLen);
  db[dbLen - sLen - 1] = 0x01;
  db.set(salt, dbLen - sLen);
  const mask = mgf1(hash, hPrime, dbLen);
  const em = new Uint8Array(emLen);
  for (let i = 0; i < dbLen; i++) em[i] = db[i]! ^ mask[i]!;
  em[0]! &= 0xff >>> (8 * emLen - emBits);
  em.set(hPrime, dbLen);
  em[emLen - 1] = 0xbc;
  return em;
}

/** EMSA-PSS-VERIFY with salt length = hash length (RFC 8017, Section 9.1.2). */
function emsaPssVerify(
  hash: HashAlgorithm,
  message: Uint8Array,
  em: Uint8Array,
  emBits: number,
): boolean {
  const h = HASHES[hash];
  const hLen = HASH_LENGTHS[hash];
  const sLen = hLen;
  const emLen = em.length;
  if (emLen < hLen + sLen + 2) return false;
  if (em[emLen - 1] !== 0xbc) return false;
  const dbLen = emLen - hLen - 1;
  const maskedDb = em.subarray(0, dbLen);
  const hPrime = em.subarray(dbLen, dbLen + hLen);
  const topMask = 0xff >>> (8 * emLen - emBits);
  if ((maskedDb[0]! & ~topMask) !== 0) return false;
  const db = mgf1(hash, hPrime, dbLen);
  for (let i = 0; i < dbLen; i++) db[i]! ^= maskedDb[i]!;
  db[0]! &= topMask;
  const psLen = dbLen - sLen - 1;
  for (let i = 0; i < psLen; i++) if (db[i] !== 0) return false;
  if (db[psLen] !== 0x01) return false;
  const mPrime = new Uint8Array(8 + hLen + sLen);
  mPrime.set(h(message), 8);
  mPrime.set(db.subarray(dbLen - sLen), 8 + hLen);
  return equalBytes(h(mPrime), hPrime);
}

/** EMSA-PKCS1-v1_5-ENCODE (RFC 8017, Section 9.2). */
function emsaPkcs1Encode(hash: HashAlgorithm, message: Uint8Array, emLen: number): Uint8Array {
  const prefix = DIGEST_INFO_PREFIX[hash];
  const tLen = prefix.length + HASH_LENGTHS[hash];
  if (emLen < tLen + 11) throw new CryptoError("RSA key too small for the digest");
  const em = new Uint8Array(emLen);
  em[1] = 0x01;
  em.fill(0xff, 2, emLen - tLen - 1);
  em.set(prefix, emLen - tLen);
  em.set(HASHES[hash](message), emLen - HASH_LENGTHS[hash]);
  return em;
}

/** Verifies an RSASSA-PSS or RSASSA-PKCS1-v1_5 signature (RFC 8017, Sections 8.1.2, 8.2.2). */
export function rsaVerify(
  key: RsaPublicKey,
  scheme: "rsa-pss" | "rsa-pkcs1",
  hash: HashAlgorithm,
  message: Uint8Array,
  signature: Uint8Array,
): boolean {
  checkRsaPublicKey(key.n, key.e);
  const k = byteLength(key.n);
  if (signature.length !== k) return false;
  const s = bytesToBigInt(signature);
  if (s >= key.n) return false;
  const m = modPow(s, key.e, key.n);
  if (scheme === "rsa-pkcs1") {
    return equalBytes(bigIntToBytes(m, k), emsaPkcs1Encode(hash, message, k));
  }
  const emBits = bitLength(key.n) - 1;
  const emLen = Math.ceil(emBits / 8);
  if (byteLength(m) > emLen) return false;
  return emsaPssVerify(hash, message, bigIntToBytes(m, emLen), emBits);
}

/**
 * Signs with RSASSA-PSS (salt length = hash length) or RSASSA-PKCS1-v1_5, using CRT with
 * blinding (RFC 8017, Sections 5.1.2, 8.1.1, 8.2.1). `random` supplies salt and blinding bytes.
 */
export function rsaSign(
  key: RsaPrivateKey,
  scheme: "rsa-pss" | "rsa-pkcs1",
  hash: HashAlgorithm,
  message: Uint8Array,
  random: (length: number) => Uint8Array,
): Uint8Array {
  checkRsaPublicKey(key.n, key.e);
  const k = byteLength(key.n);
  const modBits = bitLength(key.n);
  const em = scheme === "rsa-pss"
    ? emsaPssEncode(hash, message, modBits - 1, random(HASH_LENGTHS[hash]))
    : emsaPkcs1Encode(hash, message, k);
  const m = bytesToBigInt(em);
  const s = rsaPrivateOperation(key, m, random);
  return bigIntToBytes(s, k);
}

/** RSASP1 with CRT, blinding and a final public-key check (RFC 8017, Section 5.2.1). */
function rsaPrivateOperation(
  key: RsaPrivateKey,
  m: bigint,
  random: (length: number) => Uint8Array,
): bigint {
  const { n, e, p, q, dp, dq, qi } = key;
  if (m >= n) throw new CryptoError("Message representative out of range");
  let r = 0n;
  let rInv = 0n;
  for (let attempt = 0; attempt < 8 && rInv === 0n; attempt++) {
    r = bytesToBigInt(random(byteLength(n) + 8)) % n;
    if (r < 2n) continue;
    try {
      rInv = modInverse(r, n);
    } catch {
      rInv = 0n;
    }
  }
  if (rInv === 0n) throw new CryptoError("Cannot find an RSA blinding factor");
  const blinded = (m * modPow(r, e, n)) % n;
  const m1 = modPow(blinded % p, dp, p);
  const m2 = modPow(blinded % q, dq, q);
  const h = (((m1 - m2) % p + p) * qi) % p;
  const sBlinded = m2 + h * q;
  const s = (sBlinded * rInv) % n;
  if (modPow(s, e, n) !== m) throw new CryptoError("RSA signature self-check failed");
  return s;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

function hex(s: string): Uint8Array {
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.substring(2 * i, 2 * i + 2), 16);
  return out;
}
