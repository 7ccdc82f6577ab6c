/**
 * Validation rules shared by every provider, so that all of them accept and refuse the same
 * inputs: key share encodings (RFC 8446, Section 4.2.8.2), AEAD key and nonce lengths
 * (RFC 8446, Section 5.3), and scalar ranges.
 */
import {
  type AeadAlgorithm,
  CryptoError,
  type EcCurve,
  type KeyExchangeGroup,
} from "./provider.ts";

/** Key and tag lengths of the TLS 1.3 AEADs; all use a 12-byte nonce (RFC 8446, Section 5.3). */
export const AEAD_PARAMETERS = {
  "AES-128-GCM": { keyLength: 16, nonceLength: 12, tagLength: 16 },
  "AES-256-GCM": { keyLength: 32, nonceLength: 12, tagLength: 16 },
  "CHACHA20-POLY1305": { keyLength: 32, nonceLength: 12, tagLength: 16 },
} as const satisfies Record<AeadAlgorithm, unknown>;

/** Field element size in bytes of each NIST group. */
export const NIST_FIELD_BYTES = { secp256r1: 32, secp384r1: 48 } as const;

/** The ECDSA curve behind each NIST key exchange group. */
export const GROUP_CURVE: Readonly<Record<"secp256r1" | "secp384r1", EcCurve>> = {
  secp256r1: "P-256",
  secp384r1: "P-384",
};

/** Group order n of P-256 and P-384 (SEC 2, Section 2.4). */
export const CURVE_ORDER: Readonly<Record<EcCurve, bigint>> = {
  "P-256": 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
  "P-384":
    0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n,
};

/** Field size in bytes per curve. */
export const CURVE_BYTES: Readonly<Record<EcCurve, number>> = { "P-256": 32, "P-384": 48 };

/** Throws unless `key` has the AEAD's key length. */
export function checkAeadKey(algorithm: AeadAlgorithm, key: Uint8Array): void {
  const params = AEAD_PARAMETERS[algorithm];
  if (params === undefined) throw new CryptoError(`Unsupported AEAD: ${String(algorithm)}`);
  if (key.length !== params.keyLength) {
    throw new CryptoError(`Invalid ${algorithm} key length: ${key.length}`);
  }
}

/**
 * Throws unless `peer` is an uncompressed point of the group's size. TLS 1.3 allows only the
 * uncompressed form (RFC 8446, Section 4.2.8.2); compressed and hybrid forms are refused.
 */
/**
 * Checks the arguments of `Aead.sealInto` (the nonce's length, and that ciphertext and tag fit
 * in `out` at `offset`); returns the sealed length without the tag.
 */
export function checkSealInto(
  lengths: { readonly nonceLength: number; readonly tagLength: number },
  nonce: Uint8Array,
  plaintext: Uint8Array,
  trailer: Uint8Array,
  out: Uint8Array,
  offset: number,
): number {
  if (nonce.length !== lengths.nonceLength) throw new CryptoError("Invalid AEAD nonce length");
  const length = plaintext.length + trailer.length;
  if (offset < 0 || offset + length + lengths.tagLength > out.length) {
    throw new RangeError("AEAD output does not fit");
  }
  return length;
}

export function checkNistShare(group: "secp256r1" | "secp384r1", peer: Uint8Array): void {
  const size = NIST_FIELD_BYTES[group];
  if (peer.length !== 1 + 2 * size || peer[0] !== 0x04) {
    throw new CryptoError(`Invalid ${group} key share: not an uncompressed point`);
  }
}

/** Throws unless `peer` is a 32-byte X25519 public key (RFC 7748, Section 5). */
export function checkX25519Share(peer: Uint8Array): void {
  if (peer.length !== 32) throw new CryptoError("Invalid x25519 key share: wrong length");
}

/**
 * An all-zero X25519 output means the peer sent a low-order point; RFC 8446, Section 7.4.2
 * requires aborting.
 */
export function checkX25519Secret(secret: Uint8Array): void {
  let acc = 0;
  for (let i = 0; i < secret.length; i++) acc |= secret[i]!;
  if (acc === 0) throw new CryptoError("Invalid x25519 key share: all-zero shared secret");
}

/**
 * Normalises a big-endian ECDSA private scalar to the curve size (some encoders drop leading
 * zero bytes of the SEC1 privateKey) and checks 1 <= d < n.
 */
export function normalizeEcScalar(curve: EcCurve, d: Uint8Array): Uint8Array {
  if (curve !== "P-256" && curve !== "P-384") {
    throw new CryptoError(`Unsupported curve: ${String(curve)}`);
  }
  return normalizeNistScalar(curve === "P-256" ? "secp256r1" : "secp384r1", d);
}

/**
 * Normalises a big-endian NIST private scalar to the field size (leading zero bytes are
 * dropped or added) and checks 1 <= d < n.
 */
export function normalizeNistScalar(
  group: "x25519" | "secp256r1" | "secp384r1",
  scalar: Uint8Array,
): Uint8Array {
  if (group === "x25519") {
    if (scalar.length !== 32) throw new CryptoError("Invalid x25519 private key length");
    return scalar;
  }
  const size = NIST_FIELD_BYTES[group];
  let start = 0;
  while (start < scalar.length && scalar[start] === 0) start++;
  const significant = scalar.subarray(start);
  if (significant.length > size) throw new CryptoError(`Invalid ${group} private key: too long`);
  const out = new Uint8Array(size);
  out.set(significant, size - significant.length);
  let d = 0n;
  for (const b of out) d = (d << 8n) | BigInt(b);
  if (d === 0n || d >= CURVE_ORDER[GROUP_CURVE[group]]) {
    throw new CryptoError(`Invalid ${group} private key: out of range`);
  }
  return out;
}

/** Throws unless the value is a supported key exchange group. */
export function checkGroup(
  group: KeyExchangeGroup,
): asserts group is "x25519" | "secp256r1" | "secp384r1" {
  if (group !== "x25519" && group !== "secp256r1" && group !== "secp384r1") {
    throw new CryptoError(`Unsupported key exchange group: ${String(group)}`);
  }
}

/** Copies a Node Buffer (or any view) into a plain Uint8Array that owns its memory. */
export function toUint8Array(view: Uint8Array): Uint8Array {
  return new Uint8Array(view);
}
