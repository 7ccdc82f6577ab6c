/**
 * The native crypto provider: every primitive through `node:crypto` (OpenSSL/BoringSSL inside
 * Deno), using only its synchronous APIs. It applies the same validation rules as the noble
 * provider (`_common.ts`), so both accept and refuse the same inputs; Wycheproof checks that.
 *
 * This provider is native-only so that the vectors cover every native code path. The mix of
 * native and noble that the server runs is `defaultProvider` in `mod.ts`.
 */
import { extraShareFromPrivate, generateExtraShare, isExtraGroup } from "./_groups.ts";
import { concatBytes } from "../bytes.ts";
import { Buffer } from "node:buffer";
import {
  constants,
  createCipheriv,
  createDecipheriv,
  createECDH,
  createHash as nodeCreateHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  type Hash as NodeHash,
  type KeyObject,
  sign as nodeSign,
  verify as nodeVerify,
} from "node:crypto";
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
import { bigIntToMinimalBytes, bitLength } from "./_bigint.ts";
import { checkRsaPublicKey } from "./_rsa.ts";
import { generateRsaKey } from "./_rsa_keygen.ts";
import { systemRandomBytes } from "./noble.ts";
import { composedGcmFits, composedGcmOpen, composedGcmSealInto } from "./_gcm_composed.ts";

const NO_BYTES = new Uint8Array(0);

const NODE_HASH = { "SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512" } as const;
const HASH_LENGTH = { "SHA-256": 32, "SHA-384": 48, "SHA-512": 64 } as const;
const NODE_CIPHER = {
  "AES-128-GCM": "aes-128-gcm",
  "AES-256-GCM": "aes-256-gcm",
  "CHACHA20-POLY1305": "chacha20-poly1305",
} as const;
const NODE_CURVE = { "P-256": "prime256v1", "P-384": "secp384r1" } as const;
const JWK_CURVE = { "P-256": "P-256", "P-384": "P-384" } as const;

/** DER prefixes of fixed-size key encodings (RFC 8410, Sections 4 and 7). */
const X25519_PKCS8_PREFIX = hex("302e020100300506032b656e04220420");
const X25519_SPKI_PREFIX = hex("302a300506032b656e032100");
const ED25519_PKCS8_PREFIX = hex("302e020100300506032b657004220420");
const ED25519_SPKI_PREFIX = hex("302a300506032b6570032100");
/** AlgorithmIdentifier for id-ecPublicKey with each named curve (RFC 5480, Section 2.1.1). */
const EC_ALGORITHM_ID: Readonly<Record<EcCurve, Uint8Array>> = {
  "P-256": hex("301306072a8648ce3d020106082a8648ce3d030107"),
  "P-384": hex("301006072a8648ce3d020106052b81040022"),
};

/**
 * Largest record content (with its trailer) that `sealInto` joins for one cipher update; above
 * it, the copy costs more than the second update saves (ChaCha20-Poly1305, per seal: 60 bytes
 * 6.5 µs as two updates against 3.6 µs joined, 1,300 bytes 6.5 against 5.5, 16 KiB 19 against
 * 24).
 */
const JOIN_BELOW = 4096;

/**
 * AES-GCM inputs from this many bytes (content and trailer) are sealed and opened composed of an
 * ECB keystream and a GMAC (see _gcm_composed.ts), smaller ones by the plain cipher. Per seal,
 * plain against composed (`deno bench -A bench/crypto_bench.ts --filter "/ B$/"` for the plain
 * figures and the provider's): 1-2 KiB within 3-6 % either way, 4 KiB 26.0-27.3 µs against
 * 19.6-20.2, 16 KiB 94-97 against 51.
 */
const COMPOSE_FROM = 4096;

/**
 * A plain Uint8Array of a Node Buffer's bytes. A Buffer that spans its whole ArrayBuffer owns it
 * (what digest(), diffieHellman() and export() return in Deno), so it is wrapped without a copy;
 * one that may share a pooled ArrayBuffer is copied, so callers get memory of their own.
 */
function own(buf: Uint8Array): Uint8Array {
  return buf.byteOffset === 0 && buf.byteLength === buf.buffer.byteLength
    ? new Uint8Array(buf.buffer, 0, buf.byteLength)
    : new Uint8Array(buf);
}

function nodeHashName(algorithm: HashAlgorithm): "sha256" | "sha384" | "sha512" {
  const name = NODE_HASH[algorithm];
  if (name === undefined) throw new CryptoError(`Unsupported hash: ${String(algorithm)}`);
  return name;
}

function wrapHash(state: NodeHash): HashContext {
  return {
    update(data: Uint8Array): void {
      state.update(data);
    },
    digest(): Uint8Array {
      return own(state.copy().digest());
    },
    clone(): HashContext {
      return wrapHash(state.copy());
    },
  };
}

function hmac(algorithm: HashAlgorithm, key: Uint8Array, data: Uint8Array): Uint8Array {
  return own(createHmac(nodeHashName(algorithm), key).update(data).digest());
}

/** HKDF-Expand (RFC 5869, Section 2.3); `hkdfSync` always extracts first, so it cannot serve. */
function hkdfExpand(
  algorithm: HashAlgorithm,
  prk: Uint8Array,
  info: Uint8Array,
  length: number,
): Uint8Array {
  const name = nodeHashName(algorithm);
  const hLen = HASH_LENGTH[algorithm];
  if (!Number.isSafeInteger(length) || length < 0 || length > 255 * hLen) {
    throw new CryptoError(`Invalid HKDF output length: ${length}`);
  }
  if (prk.length < hLen) throw new CryptoError("HKDF pseudorandom key too short");
  const out = new Uint8Array(Math.ceil(length / hLen) * hLen);
  const counter = new Uint8Array(1);
  let previous: Uint8Array = new Uint8Array(0);
  for (let i = 0, offset = 0; offset < length; i++, offset += hLen) {
    counter[0] = i + 1;
    const block = createHmac(name, prk).update(previous).update(info).update(counter).digest();
    out.set(block, offset);
    previous = block;
  }
  return out.length === length ? out : out.slice(0, length);
}

/**
 * AEAD through node:crypto. A class, so that the methods live on the prototype: every record key
 * of every connection is one of these, and closures per instance would live as long as the
 * connection does.
 */
class NativeAead implements Aead {
  readonly keyLength: number;
  readonly nonceLength: number;
  readonly tagLength: number;
  readonly #cipherName: (typeof NODE_CIPHER)[AeadAlgorithm];
  readonly #key: Uint8Array;
  readonly #options: { readonly authTagLength: number };

  constructor(algorithm: AeadAlgorithm, key: Uint8Array) {
    checkAeadKey(algorithm, key);
    const params = AEAD_PARAMETERS[algorithm];
    this.keyLength = params.keyLength;
    this.nonceLength = params.nonceLength;
    this.tagLength = params.tagLength;
    this.#cipherName = NODE_CIPHER[algorithm];
    this.#key = key.slice();
    this.#options = { authTagLength: params.tagLength };
  }

  #cipher(nonce: Uint8Array) {
    // Two calls, so that each picks its typed overload (GCM or ChaCha20-Poly1305).
    const name = this.#cipherName;
    return name === "chacha20-poly1305"
      ? createCipheriv(name, this.#key, nonce, this.#options)
      : createCipheriv(name, this.#key, nonce, this.#options);
  }

  /** Whether AES-GCM composed of ECB and GMAC serves inputs of these sizes. */
  #composes(aadLength: number, textLength: number): boolean {
    return textLength >= COMPOSE_FROM && this.#cipherName !== "chacha20-poly1305" &&
      composedGcmFits(aadLength, textLength);
  }

  #decipher(nonce: Uint8Array) {
    const name = this.#cipherName;
    return name === "chacha20-poly1305"
      ? createDecipheriv(name, this.#key, nonce, this.#options)
      : createDecipheriv(name, this.#key, nonce, this.#options);
  }

  seal(nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Uint8Array {
    if (nonce.length !== this.nonceLength) throw new CryptoError("Invalid AEAD nonce length");
    if (this.#composes(aad.length, plaintext.length)) {
      const out = new Uint8Array(plaintext.length + this.tagLength);
      composedGcmSealInto(this, this.#key, nonce, aad, plaintext, NO_BYTES, out, 0);
      return out;
    }
    const cipher = this.#cipher(nonce);
    cipher.setAAD(aad, { plaintextLength: plaintext.length });
    const body = cipher.update(plaintext);
    cipher.final();
    const out = new Uint8Array(body.length + this.tagLength);
    out.set(body);
    out.set(cipher.getAuthTag(), body.length);
    return out;
  }

  sealInto(
    nonce: Uint8Array,
    aad: Uint8Array,
    plaintext: Uint8Array,
    trailer: Uint8Array,
    out: Uint8Array,
    offset: number,
  ): void {
    const length = checkSealInto(this, nonce, plaintext, trailer, out, offset);
    if (this.#composes(aad.length, length)) {
      composedGcmSealInto(this, this.#key, nonce, aad, plaintext, trailer, out, offset);
      return;
    }
    const cipher = this.#cipher(nonce);
    cipher.setAAD(aad, { plaintextLength: length });
    let at = offset;
    if (trailer.length > 0 && length <= JOIN_BELOW) {
      // Each `update` is a call into Deno's native side and a new Buffer: for a small record
      // (every handshake record) one update of the content joined to its trailer, in the
      // space the ciphertext will take, costs less than two updates.
      out.set(plaintext, offset);
      out.set(trailer, offset + plaintext.length);
      const sealed = cipher.update(out.subarray(offset, offset + length));
      out.set(sealed, at);
      at += sealed.length;
    } else {
      for (const part of [plaintext, trailer]) {
        if (part.length === 0) continue;
        const sealed = cipher.update(part);
        out.set(sealed, at);
        at += sealed.length;
      }
    }
    cipher.final();
    out.set(cipher.getAuthTag(), at);
  }

  open(nonce: Uint8Array, aad: Uint8Array, ciphertextAndTag: Uint8Array): Uint8Array | null {
    if (nonce.length !== this.nonceLength) return null;
    if (ciphertextAndTag.length < this.tagLength) return null;
    const split = ciphertextAndTag.length - this.tagLength;
    try {
      if (this.#composes(aad.length, split)) {
        return composedGcmOpen(this, this.#key, nonce, aad, ciphertextAndTag);
      }
      const decipher = this.#decipher(nonce);
      decipher.setAuthTag(ciphertextAndTag.subarray(split));
      decipher.setAAD(aad, { plaintextLength: split });
      const body = decipher.update(ciphertextAndTag.subarray(0, split));
      decipher.final();
      return own(body);
    } catch {
      return null;
    }
  }
}

function createAead(algorithm: AeadAlgorithm, key: Uint8Array): Aead {
  return new NativeAead(algorithm, key);
}

function x25519Share(secretKey: KeyObject, publicKey: Uint8Array): KeyShare {
  return {
    group: "x25519",
    publicKey,
    computeSecret(peerPublicKey: Uint8Array): Uint8Array {
      checkX25519Share(peerPublicKey);
      let secret: Uint8Array;
      try {
        const peer = createPublicKey({
          key: Buffer.from(concatBytes([X25519_SPKI_PREFIX, peerPublicKey])),
          format: "der",
          type: "spki",
        });
        secret = own(diffieHellman({ privateKey: secretKey, publicKey: peer }));
      } catch {
        throw new CryptoError("Invalid x25519 key share: all-zero shared secret");
      }
      checkX25519Secret(secret);
      return secret;
    },
  };
}

/**
 * An X25519 share from a key pair made ahead (protocol/crypto/ahead.ts): the private scalar and
 * the public key, 32 bytes each, in `pair`; both are copied.
 */
export function x25519ShareOfPair(pair: Uint8Array): KeyShare {
  const der = Buffer.from(concatBytes([X25519_PKCS8_PREFIX, pair.subarray(0, 32)]));
  try {
    const privateKey = createPrivateKey({ key: der, format: "der", type: "pkcs8" });
    return x25519Share(privateKey, pair.slice(32, 64));
  } finally {
    der.fill(0);
  }
}

function x25519FromScalar(scalar: Uint8Array): KeyShare {
  const privateKey = createPrivateKey({
    key: Buffer.from(concatBytes([X25519_PKCS8_PREFIX, scalar])),
    format: "der",
    type: "pkcs8",
  });
  const spki = createPublicKey(privateKey).export({ format: "der", type: "spki" });
  return x25519Share(privateKey, own(spki.subarray(spki.length - 32)));
}

function nistShare(group: "secp256r1" | "secp384r1", scalar: Uint8Array | null): KeyShare {
  const curve = GROUP_CURVE[group];
  const pointLength = 1 + 2 * CURVE_BYTES[curve];
  let privateKey: KeyObject;
  let publicKey: Uint8Array | undefined;
  if (scalar === null) {
    // Measured about twice as fast as createECDH() for keygen + derive (bench/crypto_bench.ts).
    const pair = generateKeyPairSync("ec", { namedCurve: NODE_CURVE[curve] });
    privateKey = pair.privateKey;
    const spki = pair.publicKey.export({ format: "der", type: "spki" });
    publicKey = own(spki.subarray(spki.length - pointLength));
  } else {
    try {
      privateKey = createPrivateKey({
        key: Buffer.from(ecPkcs8(curve, scalar)),
        format: "der",
        type: "pkcs8",
      });
    } catch {
      throw new CryptoError(`Invalid ${group} private key`);
    }
  }
  return {
    group,
    // Derived on first use: a replayed or test share may only ever compute a secret.
    get publicKey(): Uint8Array {
      if (publicKey === undefined) {
        const spki = createPublicKey(privateKey).export({ format: "der", type: "spki" });
        publicKey = own(spki.subarray(spki.length - pointLength));
      }
      return publicKey;
    },
    computeSecret(peerPublicKey: Uint8Array): Uint8Array {
      checkNistShare(group, peerPublicKey);
      try {
        const peer = createPublicKey({
          key: Buffer.from(ecSpki(curve, peerPublicKey)),
          format: "der",
          type: "spki",
        });
        // ECDH on KeyObjects yields the x-coordinate, the TLS shared secret (RFC 8446, 7.4.2).
        return own(diffieHellman({ privateKey, publicKey: peer }));
      } catch {
        throw new CryptoError(`Invalid ${group} key share: not a point on the curve`);
      }
    },
  };
}

function generateKeyShare(group: KeyExchangeGroup): KeyShare {
  if (isExtraGroup(group)) return generateExtraShare(group, true, systemRandomBytes);
  checkGroup(group);
  if (group === "x25519") {
    const { privateKey, publicKey } = generateKeyPairSync("x25519");
    const spki = publicKey.export({ format: "der", type: "spki" });
    return x25519Share(privateKey, own(spki.subarray(spki.length - 32)));
  }
  return nistShare(group, null);
}

function keyShareFromPrivate(group: KeyExchangeGroup, privateKey: Uint8Array): KeyShare {
  if (isExtraGroup(group)) return extraShareFromPrivate(group, privateKey);
  checkGroup(group);
  const scalar = normalizeNistScalar(group, privateKey);
  return group === "x25519" ? x25519FromScalar(scalar) : nistShare(group, scalar);
}

/** KeyObjects are costly to build; cache one per key object (keys are treated as immutable). */
const privateKeyCache = new WeakMap<PrivateKey, KeyObject>();
const publicKeyCache = new WeakMap<PublicKey, KeyObject>();

function b64u(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64url");
}

function bigB64u(value: bigint): string {
  return b64u(bigIntToMinimalBytes(value));
}

function checkCurve(curve: EcCurve): void {
  if (NODE_CURVE[curve] === undefined) throw new CryptoError(`Unsupported curve: ${String(curve)}`);
}

function ecPublicPoint(curve: EcCurve, d: Uint8Array): Uint8Array {
  const scalar = normalizeEcScalar(curve, d);
  const ecdh = createECDH(NODE_CURVE[curve]);
  try {
    ecdh.setPrivateKey(scalar);
  } catch {
    throw new CryptoError(`Invalid ${curve} private key`);
  }
  return own(ecdh.getPublicKey());
}

function nodePrivateKey(key: PrivateKey): KeyObject {
  const cached = privateKeyCache.get(key);
  if (cached !== undefined) return cached;
  let object: KeyObject;
  try {
    switch (key.kind) {
      case "ec": {
        const d = normalizeEcScalar(key.curve, key.d);
        const point = ecPublicPoint(key.curve, d);
        const size = CURVE_BYTES[key.curve];
        object = createPrivateKey({
          key: {
            kty: "EC",
            crv: JWK_CURVE[key.curve],
            d: b64u(d),
            x: b64u(point.subarray(1, 1 + size)),
            y: b64u(point.subarray(1 + size)),
          },
          format: "jwk",
        });
        break;
      }
      case "ed25519":
        if (key.seed.length !== 32) throw new CryptoError("Invalid Ed25519 private key length");
        object = createPrivateKey({
          key: Buffer.from(concatBytes([ED25519_PKCS8_PREFIX, key.seed])),
          format: "der",
          type: "pkcs8",
        });
        break;
      case "rsa":
        checkRsaPublicKey(key.n, key.e);
        object = createPrivateKey({
          key: {
            kty: "RSA",
            n: bigB64u(key.n),
            e: bigB64u(key.e),
            d: bigB64u(key.d),
            p: bigB64u(key.p),
            q: bigB64u(key.q),
            dp: bigB64u(key.dp),
            dq: bigB64u(key.dq),
            qi: bigB64u(key.qi),
          },
          format: "jwk",
        });
        break;
      default:
        throw new CryptoError("Unsupported private key");
    }
  } catch (e) {
    if (e instanceof CryptoError) throw e;
    throw new CryptoError("Invalid private key");
  }
  privateKeyCache.set(key, object);
  return object;
}

function derLength(length: number): Uint8Array {
  if (length < 0x80) return Uint8Array.of(length);
  if (length < 0x100) return Uint8Array.of(0x81, length);
  return Uint8Array.of(0x82, length >> 8, length & 0xff);
}

function ecSpki(curve: EcCurve, point: Uint8Array): Uint8Array {
  if (point.length > 1 + 2 * CURVE_BYTES[curve]) throw new CryptoError("Invalid EC public key");
  const bitString = concatBytes([
    Uint8Array.of(0x03),
    derLength(point.length + 1),
    Uint8Array.of(0),
    point,
  ]);
  const body = concatBytes([EC_ALGORITHM_ID[curve], bitString]);
  return concatBytes([Uint8Array.of(0x30), derLength(body.length), body]);
}

/** PKCS#8 PrivateKeyInfo holding a SEC1 ECPrivateKey without the optional public key (RFC 5915). */
function ecPkcs8(curve: EcCurve, d: Uint8Array): Uint8Array {
  const ecPrivateKey = der(0x30, concatBytes([hex("020101"), der(0x04, d)]));
  return der(0x30, concatBytes([hex("020100"), EC_ALGORITHM_ID[curve], der(0x04, ecPrivateKey)]));
}

function der(tag: number, content: Uint8Array): Uint8Array {
  return concatBytes([Uint8Array.of(tag), derLength(content.length), content]);
}

function nodePublicKey(key: PublicKey): KeyObject {
  const cached = publicKeyCache.get(key);
  if (cached !== undefined) return cached;
  let object: KeyObject;
  try {
    switch (key.kind) {
      case "ec":
        checkCurve(key.curve);
        object = createPublicKey({
          key: Buffer.from(ecSpki(key.curve, key.point)),
          format: "der",
          type: "spki",
        });
        break;
      case "ed25519":
        if (key.key.length !== 32) throw new CryptoError("Invalid Ed25519 public key length");
        object = createPublicKey({
          key: Buffer.from(concatBytes([ED25519_SPKI_PREFIX, key.key])),
          format: "der",
          type: "spki",
        });
        break;
      case "rsa":
        checkRsaPublicKey(key.n, key.e);
        object = createPublicKey({
          key: { kty: "RSA", n: bigB64u(key.n), e: bigB64u(key.e) },
          format: "jwk",
        });
        break;
      default:
        throw new CryptoError("Unsupported public key");
    }
  } catch (e) {
    if (e instanceof CryptoError) throw e;
    throw new CryptoError(`Invalid ${key.kind === "ec" ? key.curve : key.kind} public key`);
  }
  publicKeyCache.set(key, object);
  return object;
}

function sign(key: PrivateKey, algorithm: SignatureAlgorithm, message: Uint8Array): Uint8Array {
  switch (algorithm.kind) {
    case "ecdsa":
      if (key.kind !== "ec") throw new CryptoError("ECDSA needs an EC key");
      return own(
        nodeSign(nodeHashName(algorithm.hash), message, {
          key: nodePrivateKey(key),
          dsaEncoding: "der",
        }),
      );
    case "ed25519":
      if (key.kind !== "ed25519") throw new CryptoError("Ed25519 needs an Ed25519 key");
      return own(nodeSign(null, message, nodePrivateKey(key)));
    case "rsa-pss":
    case "rsa-pkcs1": {
      if (key.kind !== "rsa") throw new CryptoError("RSA signatures need an RSA key");
      const pss = algorithm.kind === "rsa-pss";
      return own(
        nodeSign(nodeHashName(algorithm.hash), message, {
          key: nodePrivateKey(key),
          padding: pss ? constants.RSA_PKCS1_PSS_PADDING : constants.RSA_PKCS1_PADDING,
          ...(pss ? { saltLength: HASH_LENGTH[algorithm.hash] } : {}),
        }),
      );
    }
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
      const object = nodePublicKey(key);
      try {
        // OpenSSL accepts high-S signatures, as ECDSA intends.
        return nodeVerify(
          nodeHashName(algorithm.hash),
          message,
          { key: object, dsaEncoding: "der" },
          signature,
        );
      } catch {
        return false;
      }
    }
    case "ed25519": {
      if (key.kind !== "ed25519") throw new CryptoError("Ed25519 needs an Ed25519 key");
      if (key.key.length !== 32) throw new CryptoError("Invalid Ed25519 public key length");
      try {
        // A 32-byte key that does not decode to a point fails verification, as in noble.
        return nodeVerify(null, message, nodePublicKey(key), signature);
      } catch {
        return false;
      }
    }
    case "rsa-pss":
    case "rsa-pkcs1": {
      if (key.kind !== "rsa") throw new CryptoError("RSA signatures need an RSA key");
      const object = nodePublicKey(key);
      const hash = nodeHashName(algorithm.hash);
      const pss = algorithm.kind === "rsa-pss";
      try {
        return nodeVerify(
          hash,
          message,
          {
            key: object,
            padding: pss ? constants.RSA_PKCS1_PSS_PADDING : constants.RSA_PKCS1_PADDING,
            ...(pss ? { saltLength: HASH_LENGTH[algorithm.hash] } : {}),
          },
          signature,
        );
      } catch {
        return false;
      }
    }
    default:
      return false;
  }
}

function fromB64u(value: string | undefined): Uint8Array {
  if (value === undefined) throw new CryptoError("Generated key lacks a component");
  return own(Buffer.from(value, "base64url"));
}

function generatePrivateKey(kind: PrivateKeyKind): PrivateKey {
  switch (kind) {
    case "P-256":
    case "P-384": {
      const { privateKey } = generateKeyPairSync("ec", { namedCurve: NODE_CURVE[kind] });
      const jwk = privateKey.export({ format: "jwk" });
      const size = CURVE_BYTES[kind];
      const d = fromB64u(jwk.d);
      const x = fromB64u(jwk.x);
      const y = fromB64u(jwk.y);
      if (d.length !== size || x.length !== size || y.length !== size) {
        throw new CryptoError("Generated EC key has unexpected component sizes");
      }
      return { kind: "ec", curve: kind, d, publicKey: concatBytes([Uint8Array.of(4), x, y]) };
    }
    case "ed25519": {
      const { privateKey } = generateKeyPairSync("ed25519");
      const jwk = privateKey.export({ format: "jwk" });
      return { kind: "ed25519", seed: fromB64u(jwk.d), publicKey: fromB64u(jwk.x) };
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

function publicKeyOf(key: PrivateKey): PublicKey {
  switch (key.kind) {
    case "ec":
      return { kind: "ec", curve: key.curve, point: ecPublicPoint(key.curve, key.d) };
    case "ed25519": {
      const jwk = createPublicKey(nodePrivateKey(key)).export({ format: "jwk" });
      return { kind: "ed25519", key: fromB64u(jwk.x) };
    }
    case "rsa":
      return { kind: "rsa", n: key.n, e: key.e, bits: bitLength(key.n) };
  }
}

/** The `node:crypto` provider. */
export const nativeProvider: CryptoProvider = {
  name: "native",
  randomBytes: systemRandomBytes,
  createHash(algorithm: HashAlgorithm): HashContext {
    return wrapHash(nodeCreateHash(nodeHashName(algorithm)));
  },
  hash(algorithm: HashAlgorithm, data: Uint8Array): Uint8Array {
    return own(nodeCreateHash(nodeHashName(algorithm)).update(data).digest());
  },
  hmac,
  hkdfExtract(algorithm: HashAlgorithm, salt: Uint8Array, ikm: Uint8Array): Uint8Array {
    // An absent salt is HashLen zero bytes (RFC 5869, Section 2.2); HMAC pads keys with zeros.
    return hmac(algorithm, salt, ikm);
  },
  hkdfExpand,
  createAead,
  generateKeyShare,
  keyShareFromPrivate,
  sign,
  verify,
  generatePrivateKey,
  publicKeyOf,
};

function hex(s: string): Uint8Array {
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.substring(2 * i, 2 * i + 2), 16);
  return out;
}
