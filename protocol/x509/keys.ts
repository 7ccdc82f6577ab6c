/**
 * Private and public key encodings: PKCS#8 (RFC 5208, RFC 5958), SEC1 ECPrivateKey
 * (RFC 5915), PKCS#1 RSAPrivateKey (RFC 8017, Appendix A.1.2), and SubjectPublicKeyInfo
 * (RFC 5280, RFC 5480, RFC 8410).
 */
import type { CryptoProvider, EcCurve, PrivateKey, PublicKey } from "../crypto/provider.ts";
import { CryptoError } from "../crypto/provider.ts";
import { nobleProvider } from "../crypto/mod.ts";
import {
  bytesEqual,
  contextTag,
  DerError,
  DerReader,
  DerWriter,
  Tag,
  unsignedIntegerBytes,
} from "./der.ts";
import { Oid } from "./oid.ts";
import { decodePem, encodePem, PemError } from "./pem.ts";

/** A key that cannot be decoded or is not supported. */
export class KeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "KeyError";
  }
}

const CURVE_OIDS: Record<string, EcCurve> = {
  [Oid.secp256r1]: "P-256",
  [Oid.secp384r1]: "P-384",
};
const CURVE_OID: Record<EcCurve, string> = { "P-256": Oid.secp256r1, "P-384": Oid.secp384r1 };
const CURVE_BYTES: Record<EcCurve, number> = { "P-256": 32, "P-384": 48 };
const MAX_RSA_BITS = 16384;

/** PEM labels `parsePrivateKey` accepts. */
const KEY_LABELS = ["PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY"] as const;

/**
 * Decodes a private key from PEM text (PKCS#8 `PRIVATE KEY`, SEC1 `EC PRIVATE KEY`, PKCS#1
 * `RSA PRIVATE KEY`; other blocks such as `EC PARAMETERS` are skipped) or from DER bytes in
 * any of those forms. Encrypted keys are refused. The public half is recomputed and checked.
 */
export function parsePrivateKey(
  pemOrDer: string | Uint8Array,
  provider: CryptoProvider = nobleProvider,
): PrivateKey {
  try {
    if (typeof pemOrDer === "string") {
      const blocks = decodePem(pemOrDer);
      if (blocks.some((b) => b.label === "ENCRYPTED PRIVATE KEY")) {
        throw new KeyError("Encrypted private keys are not supported");
      }
      const keys = blocks.filter((b) => (KEY_LABELS as readonly string[]).includes(b.label));
      if (keys.length !== 1) throw new KeyError("Expected exactly one private key PEM block");
      const { label, der } = keys[0]!;
      if (label === "PRIVATE KEY") return checked(readPkcs8(der), provider);
      if (label === "EC PRIVATE KEY") return checked(readEcPrivateKey(der, undefined), provider);
      return checked(readRsaPrivateKey(der), provider);
    }
    const attempts = [
      () => readPkcs8(pemOrDer),
      () => readEcPrivateKey(pemOrDer, undefined),
      () => readRsaPrivateKey(pemOrDer),
    ];
    for (const attempt of attempts) {
      let key: PrivateKey;
      try {
        key = attempt();
      } catch (e) {
        if (e instanceof DerError || e instanceof KeyError) continue;
        throw e;
      }
      return checked(key, provider);
    }
    throw new KeyError("Unrecognised private key encoding");
  } catch (e) {
    if (e instanceof DerError || e instanceof PemError) {
      throw new KeyError(`Malformed private key: ${e.message}`);
    }
    if (e instanceof CryptoError) throw new KeyError(`Invalid private key: ${e.message}`);
    throw e;
  }
}

/** Checks that the stored public half matches the private key. */
function checked(key: PrivateKey, provider: CryptoProvider): PrivateKey {
  switch (key.kind) {
    case "ec": {
      const pub = provider.publicKeyOf(key);
      if (pub.kind !== "ec") throw new KeyError("Invalid EC key");
      if (key.publicKey.length === 0) return { ...key, publicKey: pub.point };
      if (!bytesEqual(pub.point, key.publicKey)) throw new KeyError("EC public key mismatch");
      return key;
    }
    case "ed25519": {
      const pub = provider.publicKeyOf(key);
      if (pub.kind !== "ed25519") throw new KeyError("Invalid Ed25519 key");
      if (key.publicKey.length !== 0 && !bytesEqual(pub.key, key.publicKey)) {
        throw new KeyError("Ed25519 public key mismatch");
      }
      return { ...key, publicKey: pub.key };
    }
    case "rsa":
      if (key.p * key.q !== key.n) throw new KeyError("RSA key factors do not match modulus");
      return key;
  }
}

function readPkcs8(der: Uint8Array): PrivateKey {
  const r = new DerReader(der);
  const seq = r.sequence("PrivateKeyInfo");
  r.end("PrivateKeyInfo");
  const version = seq.smallInteger("version");
  if (version > 1) throw new KeyError("Unsupported PKCS#8 version");
  const alg = seq.sequence("AlgorithmIdentifier");
  const oid = alg.oid();
  const params = alg.done ? undefined : alg.read();
  alg.end("AlgorithmIdentifier");
  const inner = seq.octetString("privateKey");
  seq.optional(contextTag(0, true));
  const pub = seq.optional(contextTag(1, false));
  seq.end("PrivateKeyInfo");
  switch (oid) {
    case Oid.ecPublicKey: {
      if (params?.tag !== Tag.OID) throw new KeyError("EC key needs a named curve");
      return readEcPrivateKey(inner, new DerReader(params.raw).oid());
    }
    case Oid.ed25519: {
      if (params !== undefined) throw new KeyError("Ed25519 key must have no parameters");
      const ir = new DerReader(inner);
      const seed = ir.octetString("CurvePrivateKey");
      ir.end("CurvePrivateKey");
      if (seed.length !== 32) throw new KeyError("Ed25519 private key must be 32 bytes");
      let publicKey = new Uint8Array(0);
      if (pub !== undefined) {
        if (pub.value[0] !== 0 || pub.value.length !== 33) {
          throw new KeyError("Invalid Ed25519 public key");
        }
        publicKey = pub.value.slice(1);
      }
      return { kind: "ed25519", seed: seed.slice(), publicKey };
    }
    case Oid.rsaEncryption:
      if (params !== undefined && (params.tag !== Tag.NULL || params.value.length !== 0)) {
        throw new KeyError("RSA key parameters must be NULL");
      }
      return readRsaPrivateKey(inner);
    default:
      throw new KeyError(`Unsupported private key algorithm ${oid}`);
  }
}

/** Reads an ECPrivateKey (RFC 5915, Section 3); `curveOid` comes from PKCS#8 when wrapped. */
function readEcPrivateKey(der: Uint8Array, curveOid: string | undefined): PrivateKey {
  const r = new DerReader(der);
  const seq = r.sequence("ECPrivateKey");
  r.end("ECPrivateKey");
  if (seq.smallInteger("version") !== 1) throw new KeyError("Unsupported ECPrivateKey version");
  const d = seq.octetString("privateKey");
  const params = seq.optionalExplicit(0);
  let oid = curveOid;
  if (params !== undefined) {
    const inner = params.oid("namedCurve");
    params.end("ECParameters");
    if (oid !== undefined && oid !== inner) throw new KeyError("EC curve parameters disagree");
    oid = inner;
  }
  const pubEl = seq.optionalExplicit(1);
  let publicKey = new Uint8Array(0);
  if (pubEl !== undefined) {
    const bits = pubEl.bitString("publicKey");
    pubEl.end("publicKey");
    if (bits.unusedBits !== 0) throw new KeyError("Invalid EC public key");
    publicKey = bits.bytes.slice();
  }
  seq.end("ECPrivateKey");
  if (oid === undefined) throw new KeyError("EC key needs a named curve");
  const curve = CURVE_OIDS[oid];
  if (curve === undefined) throw new KeyError(`Unsupported EC curve ${oid}`);
  if (d.length !== CURVE_BYTES[curve]) throw new KeyError("EC private key has the wrong length");
  return { kind: "ec", curve, d: d.slice(), publicKey };
}

function toBigint(bytes: Uint8Array): bigint {
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  return n;
}

/** Reads an RSAPrivateKey (RFC 8017, Appendix A.1.2); two-prime keys only. */
function readRsaPrivateKey(der: Uint8Array): PrivateKey {
  const r = new DerReader(der);
  const seq = r.sequence("RSAPrivateKey");
  r.end("RSAPrivateKey");
  if (seq.smallInteger("version") !== 0) throw new KeyError("Multi-prime RSA is not supported");
  const ints = ["n", "e", "d", "p", "q", "dp", "dq", "qi"].map((what) =>
    toBigint(unsignedIntegerBytes(seq.expect(Tag.INTEGER, what).value))
  );
  seq.end("RSAPrivateKey");
  const [n, e, d, p, q, dp, dq, qi] = ints as [
    bigint,
    bigint,
    bigint,
    bigint,
    bigint,
    bigint,
    bigint,
    bigint,
  ];
  if (n.toString(2).length > MAX_RSA_BITS) throw new KeyError("RSA key too large");
  return { kind: "rsa", n, e, d, p, q, dp, dq, qi };
}

function bigintBytes(n: bigint, length?: number): Uint8Array {
  let hex = n.toString(16);
  if (hex.length % 2) hex = "0" + hex;
  const raw = Uint8Array.from(hex.match(/../g) ?? [], (x) => parseInt(x, 16));
  if (length === undefined || raw.length >= length) return raw;
  const out = new Uint8Array(length);
  out.set(raw, length - raw.length);
  return out;
}

function writeRsaPrivateKey(w: DerWriter, key: Extract<PrivateKey, { kind: "rsa" }>): void {
  w.sequence((s) => {
    s.integer(0);
    for (const v of [key.n, key.e, key.d, key.p, key.q, key.dp, key.dq, key.qi]) s.integer(v);
  });
}

/** Encodes a private key as PKCS#8 PrivateKeyInfo DER (RFC 5208). */
export function encodePrivateKeyPkcs8(key: PrivateKey): Uint8Array {
  return new DerWriter().sequence((w) => {
    w.integer(0);
    switch (key.kind) {
      case "ec":
        w.sequence((a) => a.oid(Oid.ecPublicKey).oid(CURVE_OID[key.curve]));
        w.octetString(
          new DerWriter().sequence((s) => {
            s.integer(1);
            s.octetString(bigintBytes(toBigint(key.d), CURVE_BYTES[key.curve]));
            s.explicit(1, (p) => p.bitString(key.publicKey));
          }).bytes(),
        );
        break;
      case "ed25519":
        w.sequence((a) => a.oid(Oid.ed25519));
        w.octetString(new DerWriter().octetString(key.seed).bytes());
        break;
      case "rsa":
        w.sequence((a) => a.oid(Oid.rsaEncryption).null());
        w.octetString((() => {
          const inner = new DerWriter();
          writeRsaPrivateKey(inner, key);
          return inner.bytes();
        })());
        break;
    }
  }).bytes();
}

/** Encodes a private key as a PKCS#8 PEM block. */
export function encodePrivateKeyPem(key: PrivateKey): string {
  return encodePem("PRIVATE KEY", encodePrivateKeyPkcs8(key));
}

/** Encodes an RSAPublicKey (RFC 8017, Appendix A.1.1). */
export function encodeRsaPublicKey(n: bigint, e: bigint): Uint8Array {
  return new DerWriter().sequence((s) => s.integer(n).integer(e)).bytes();
}

/** Encodes a SubjectPublicKeyInfo (RFC 5280, Section 4.1.2.7). */
export function encodeSpki(key: PublicKey): Uint8Array {
  return new DerWriter().sequence((w) => {
    switch (key.kind) {
      case "ec":
        w.sequence((a) => a.oid(Oid.ecPublicKey).oid(CURVE_OID[key.curve]));
        w.bitString(key.point);
        break;
      case "ed25519":
        w.sequence((a) => a.oid(Oid.ed25519));
        w.bitString(key.key);
        break;
      case "rsa":
        w.sequence((a) => a.oid(Oid.rsaEncryption).null());
        w.bitString(encodeRsaPublicKey(key.n, key.e));
        break;
    }
  }).bytes();
}
