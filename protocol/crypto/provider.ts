/**
 * The crypto provider: every primitive the TLS engine and the X.509 validator use, behind one
 * synchronous interface. Several implementations exist (pure noble, and a native one that
 * uses `node:crypto` where a benchmark shows it is faster); all pass the same Wycheproof vectors.
 *
 * Synchronous on purpose: the TLS engine stays a pure state machine with no promise ordering.
 */

/** Hash functions used by TLS 1.3 and by certificate signatures. */
export type HashAlgorithm = "SHA-256" | "SHA-384" | "SHA-512";

/** AEAD algorithms of the TLS 1.3 cipher suites (RFC 8446, Appendix B.4). */
export type AeadAlgorithm = "AES-128-GCM" | "AES-256-GCM" | "CHACHA20-POLY1305";

/** Key exchange groups (RFC 8446, Section 4.2.7). */
export type KeyExchangeGroup =
  | "x25519"
  | "secp256r1"
  | "secp384r1"
  | "secp521r1"
  | "x448"
  | "ffdhe2048"
  | "ffdhe3072";

/** Curves for ECDSA keys. */
export type EcCurve = "P-256" | "P-384";

/** Kinds of private key that `generatePrivateKey` can create. */
export type PrivateKeyKind = "P-256" | "P-384" | "ed25519" | "rsa2048" | "rsa3072" | "rsa4096";

/** An incremental hash; `digest()` does not disturb the running state (transcript hashes). */
export interface HashContext {
  update(data: Uint8Array): void;
  /** The digest of everything so far; the context stays usable. */
  digest(): Uint8Array;
  clone(): HashContext;
}

/** An AEAD keyed once; nonces are supplied per call (RFC 5116). */
export interface Aead {
  readonly keyLength: number;
  readonly nonceLength: number;
  readonly tagLength: number;
  /** Returns ciphertext || tag. */
  seal(nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Uint8Array;
  /**
   * Seals `plaintext || trailer` and writes ciphertext || tag into `out` at `offset`
   * (`plaintext.length + trailer.length + tagLength` bytes), without joining the two first: a
   * record layer builds many records in one buffer this way (the trailer is the TLS 1.3 inner
   * content type).
   */
  sealInto(
    nonce: Uint8Array,
    aad: Uint8Array,
    plaintext: Uint8Array,
    trailer: Uint8Array,
    out: Uint8Array,
    offset: number,
  ): void;
  /** Returns the plaintext, or null when the tag does not verify. Never throws on bad input. */
  open(nonce: Uint8Array, aad: Uint8Array, ciphertextAndTag: Uint8Array): Uint8Array | null;
}

/** One ephemeral key pair for a key exchange. */
export interface KeyShare {
  readonly group: KeyExchangeGroup;
  /** The encoded public key as sent on the wire (32 bytes for x25519, 0x04||x||y for NIST). */
  readonly publicKey: Uint8Array;
  /**
   * Computes the shared secret with the peer's encoded public key. Throws `CryptoError` on an
   * invalid point, a non-uncompressed NIST point, or an all-zero X25519 result.
   */
  computeSecret(peerPublicKey: Uint8Array): Uint8Array;
}

/**
 * A private signing key, as decoded from PKCS#8 / SEC1 / PKCS#1 by protocol/x509.
 * Raw components; the provider turns them into whatever its backend wants.
 */
export type PrivateKey =
  | { kind: "ec"; curve: EcCurve; d: Uint8Array; publicKey: Uint8Array }
  | { kind: "ed25519"; seed: Uint8Array; publicKey: Uint8Array }
  | {
    kind: "rsa";
    n: bigint;
    e: bigint;
    d: bigint;
    p: bigint;
    q: bigint;
    dp: bigint;
    dq: bigint;
    qi: bigint;
  };

/** A public key, as decoded from a SubjectPublicKeyInfo by protocol/x509. */
export type PublicKey =
  | { kind: "ec"; curve: EcCurve; point: Uint8Array }
  | { kind: "ed25519"; key: Uint8Array }
  | { kind: "rsa"; n: bigint; e: bigint; bits: number };

/**
 * A signature algorithm, independent of TLS code points.
 * - ecdsa: DER-encoded ECDSA-Sig-Value over hash(message). High-S signatures verify.
 * - ed25519: pure Ed25519 (RFC 8032), strict (not ZIP-215).
 * - rsa-pss: RSASSA-PSS with MGF1 on the same hash and salt length = hash length.
 * - rsa-pkcs1: RSASSA-PKCS1-v1_5 (certificate signatures only; never in TLS 1.3 CertificateVerify).
 */
export type SignatureAlgorithm =
  | { kind: "ecdsa"; hash: HashAlgorithm }
  | { kind: "ed25519" }
  | { kind: "rsa-pss"; hash: HashAlgorithm }
  | { kind: "rsa-pkcs1"; hash: HashAlgorithm };

/** Raised on malformed keys or points; never for an ordinary signature mismatch. */
export class CryptoError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CryptoError";
  }
}

export interface CryptoProvider {
  readonly name: string;
  randomBytes(length: number): Uint8Array;
  createHash(algorithm: HashAlgorithm): HashContext;
  hash(algorithm: HashAlgorithm, data: Uint8Array): Uint8Array;
  hmac(algorithm: HashAlgorithm, key: Uint8Array, data: Uint8Array): Uint8Array;
  /** HKDF-Extract (RFC 5869, Section 2.2). */
  hkdfExtract(algorithm: HashAlgorithm, salt: Uint8Array, ikm: Uint8Array): Uint8Array;
  /** HKDF-Expand (RFC 5869, Section 2.3). */
  hkdfExpand(
    algorithm: HashAlgorithm,
    prk: Uint8Array,
    info: Uint8Array,
    length: number,
  ): Uint8Array;
  createAead(algorithm: AeadAlgorithm, key: Uint8Array): Aead;
  generateKeyShare(group: KeyExchangeGroup): KeyShare;
  /**
   * A key share with a given private key, for deterministic replays (RFC 8448) and test
   * vectors. x25519 takes the 32-byte scalar (RFC 7748, Section 5); NIST groups take the
   * big-endian scalar, which must lie in [1, n-1]. Throws `CryptoError` otherwise.
   */
  keyShareFromPrivate(group: KeyExchangeGroup, privateKey: Uint8Array): KeyShare;
  /** Generates a fresh signing key (used by the PKI tooling to issue certificates). */
  generatePrivateKey(kind: PrivateKeyKind): PrivateKey;
  /** The public half of a private key. */
  publicKeyOf(key: PrivateKey): PublicKey;
  /** Signs `message` (not a digest). ECDSA output is DER. */
  sign(key: PrivateKey, algorithm: SignatureAlgorithm, message: Uint8Array): Uint8Array;
  /** Verifies a signature over `message`. Returns false on mismatch or malformed signature. */
  verify(
    key: PublicKey,
    algorithm: SignatureAlgorithm,
    message: Uint8Array,
    signature: Uint8Array,
  ): boolean;
}

/**
 * A signer whose work may run off the JavaScript thread (WebCrypto runs on Deno's thread pool).
 * Used by the server driver to answer a handshake's `signatureRequired` event; the provider's
 * synchronous `sign` stays the reference and the fallback.
 */
export interface AsyncSigner {
  readonly name: string;
  /** Signs `message` (not a digest); the output is what `CryptoProvider.sign` returns. */
  sign(key: PrivateKey, algorithm: SignatureAlgorithm, message: Uint8Array): Promise<Uint8Array>;
}

/** Compares two byte strings in time that depends only on their lengths. */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}
