/**
 * X.509 v3 certificate parsing (RFC 5280, Section 4). Parsing checks syntax only; whether a
 * certificate may be trusted is decided by path validation (`path.ts`).
 */
import type { EcCurve, HashAlgorithm, PublicKey, SignatureAlgorithm } from "../crypto/provider.ts";
import { CertificateError } from "./identity.ts";
import {
  bytesEqual,
  bytesToBigint,
  contextTag,
  DerError,
  DerReader,
  Tag,
  toHex,
  unsignedIntegerBytes,
} from "./der.ts";
import { readName } from "./name.ts";
import type { Name } from "./name.ts";
import { Oid } from "./oid.ts";

/** Largest certificate accepted (RFC 8446 allows 2^24, real ones stay under a few KiB). */
export const MAX_CERTIFICATE_LENGTH = 64 * 1024;

/**
 * The certificate's signature algorithm: usable, recognised but refused as weak (MD5, SHA-1),
 * or not supported.
 */
export type CertSignatureAlgorithm =
  | { readonly kind: "supported"; readonly name: string; readonly algorithm: SignatureAlgorithm }
  | { readonly kind: "weak"; readonly name: string }
  | { readonly kind: "unsupported"; readonly name: string };

/** Key usage bits (RFC 5280, Section 4.2.1.3). */
export const KeyUsage = {
  digitalSignature: 0,
  nonRepudiation: 1,
  keyEncipherment: 2,
  dataEncipherment: 3,
  keyAgreement: 4,
  keyCertSign: 5,
  cRLSign: 6,
  encipherOnly: 7,
  decipherOnly: 8,
} as const;
export type KeyUsageName = keyof typeof KeyUsage;

/** A GeneralName (RFC 5280, Section 4.2.1.6), the forms we use; others are kept opaque. */
export type GeneralName =
  | { readonly kind: "rfc822Name"; readonly value: string }
  | { readonly kind: "dNSName"; readonly value: string }
  | { readonly kind: "directoryName"; readonly value: Name }
  | { readonly kind: "iPAddress"; readonly value: Uint8Array }
  | { readonly kind: "uri"; readonly value: string }
  | { readonly kind: "other"; readonly tag: number; readonly value: Uint8Array };

/** The nameConstraints extension (RFC 5280, Section 4.2.1.10). */
export interface NameConstraints {
  readonly permitted: readonly GeneralName[];
  readonly excluded: readonly GeneralName[];
}

/** The authorityKeyIdentifier extension (RFC 5280, Section 4.2.1.1). */
export interface AuthorityKeyIdentifier {
  readonly keyIdentifier: Uint8Array | undefined;
  readonly issuerSerial: Uint8Array | undefined;
}

/** The extensions this module understands, parsed. */
export interface Extensions {
  readonly basicConstraints:
    | { readonly ca: boolean; readonly pathLen: number | undefined; readonly critical: boolean }
    | undefined;
  /** Bit mask of `KeyUsage` bits (bit n = 1 << n), or undefined when absent. */
  readonly keyUsage: number | undefined;
  readonly extKeyUsage: readonly string[] | undefined;
  readonly subjectAltName: readonly GeneralName[] | undefined;
  readonly nameConstraints: NameConstraints | undefined;
  readonly subjectKeyIdentifier: Uint8Array | undefined;
  readonly authorityKeyIdentifier: AuthorityKeyIdentifier | undefined;
  /** OIDs of critical extensions this module does not process. */
  readonly unknownCritical: readonly string[];
  /** OIDs of all extensions present, in order. */
  readonly present: readonly string[];
}

/** The subject public key: decoded when supported, the algorithm OID otherwise. */
export interface SubjectPublicKeyInfo {
  readonly algorithm: string;
  /** The key, or undefined for an unsupported algorithm or curve. */
  readonly key: PublicKey | undefined;
  /** The whole SubjectPublicKeyInfo DER. */
  readonly der: Uint8Array;
}

/** A parsed certificate (RFC 5280, Section 4.1). */
export interface Certificate {
  readonly der: Uint8Array;
  /** The signed TBSCertificate bytes. */
  readonly tbs: Uint8Array;
  /** 1, 2 or 3. */
  readonly version: number;
  /** Serial number contents without the sign byte. */
  readonly serial: Uint8Array;
  /** Serial in lower-case hex with no leading zero bytes ("00" for zero). */
  readonly serialHex: string;
  readonly signatureAlgorithm: CertSignatureAlgorithm;
  readonly signature: Uint8Array;
  readonly issuer: Name;
  readonly subject: Name;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly publicKeyInfo: SubjectPublicKeyInfo;
  readonly extensions: Extensions;
}

const HASH_OIDS: Record<string, HashAlgorithm> = {
  [Oid.sha256]: "SHA-256",
  [Oid.sha384]: "SHA-384",
  [Oid.sha512]: "SHA-512",
};
const HASH_LENGTH: Record<HashAlgorithm, number> = { "SHA-256": 32, "SHA-384": 48, "SHA-512": 64 };

/** Plain signature algorithm OIDs and what they mean. */
const SIGNATURE_ALGORITHMS: Record<
  string,
  { name: string; algorithm?: SignatureAlgorithm; params: "absent" | "null" | "either" }
> = {
  [Oid.ecdsaWithSha256]: {
    name: "ecdsa-with-SHA256",
    algorithm: { kind: "ecdsa", hash: "SHA-256" },
    params: "absent",
  },
  [Oid.ecdsaWithSha384]: {
    name: "ecdsa-with-SHA384",
    algorithm: { kind: "ecdsa", hash: "SHA-384" },
    params: "absent",
  },
  [Oid.ecdsaWithSha512]: {
    name: "ecdsa-with-SHA512",
    algorithm: { kind: "ecdsa", hash: "SHA-512" },
    params: "absent",
  },
  [Oid.ed25519]: { name: "Ed25519", algorithm: { kind: "ed25519" }, params: "absent" },
  [Oid.sha256WithRsa]: {
    name: "sha256WithRSAEncryption",
    algorithm: { kind: "rsa-pkcs1", hash: "SHA-256" },
    params: "either",
  },
  [Oid.sha384WithRsa]: {
    name: "sha384WithRSAEncryption",
    algorithm: { kind: "rsa-pkcs1", hash: "SHA-384" },
    params: "either",
  },
  [Oid.sha512WithRsa]: {
    name: "sha512WithRSAEncryption",
    algorithm: { kind: "rsa-pkcs1", hash: "SHA-512" },
    params: "either",
  },
  [Oid.md2WithRsa]: { name: "md2WithRSAEncryption", params: "either" },
  [Oid.md5WithRsa]: { name: "md5WithRSAEncryption", params: "either" },
  [Oid.sha1WithRsa]: { name: "sha1WithRSAEncryption", params: "either" },
  [Oid.ecdsaWithSha1]: { name: "ecdsa-with-SHA1", params: "absent" },
  [Oid.dsaWithSha1]: { name: "dsa-with-SHA1", params: "absent" },
};

function fail(message: string): never {
  throw new DerError(message);
}

/** Reads an AlgorithmIdentifier's OID and its raw parameters (RFC 5280, Section 4.1.1.2). */
export function readAlgorithmIdentifier(
  r: DerReader,
): { oid: string; params: Uint8Array | undefined; raw: Uint8Array } {
  const el = r.expect(Tag.SEQUENCE, "AlgorithmIdentifier");
  const seq = new DerReader(el.value);
  const oid = seq.oid();
  const params = seq.done ? undefined : seq.read().raw;
  seq.end("AlgorithmIdentifier");
  return { oid, params, raw: el.raw };
}

function isNull(params: Uint8Array | undefined): boolean {
  return params !== undefined && params.length === 2 && params[0] === Tag.NULL && params[1] === 0;
}

/** Reads a hash AlgorithmIdentifier whose parameters are NULL or absent (RFC 4055). */
function readHashAlgorithm(r: DerReader): HashAlgorithm | "SHA-1" | undefined {
  const { oid, params } = readAlgorithmIdentifier(r);
  if (params !== undefined && !isNull(params)) fail("Invalid hash algorithm parameters");
  if (oid === Oid.sha1) return "SHA-1";
  return HASH_OIDS[oid];
}

/**
 * Interprets RSASSA-PSS-params (RFC 4055, Section 3.1). Only the forms the crypto provider
 * implements are supported: MGF1 with the same hash, salt length = hash length, trailer 1.
 */
function pssAlgorithm(params: Uint8Array | undefined): CertSignatureAlgorithm {
  if (params === undefined) fail("RSASSA-PSS parameters missing");
  const seq = new DerReader(params).sequence("RSASSA-PSS-params");
  let hash: HashAlgorithm | "SHA-1" | undefined = "SHA-1";
  let mgfHash: HashAlgorithm | "SHA-1" | undefined = "SHA-1";
  let salt = 20;
  let trailer = 1;
  const h = seq.optionalExplicit(0);
  if (h !== undefined) {
    hash = readHashAlgorithm(h);
    h.end();
  }
  const m = seq.optionalExplicit(1);
  if (m !== undefined) {
    const mgf = m.sequence("MaskGenAlgorithm");
    if (mgf.oid() !== Oid.mgf1) return { kind: "unsupported", name: "RSASSA-PSS" };
    mgfHash = readHashAlgorithm(mgf);
    mgf.end();
    m.end();
  }
  const s = seq.optionalExplicit(2);
  if (s !== undefined) {
    salt = s.smallInteger("saltLength");
    s.end();
  }
  const t = seq.optionalExplicit(3);
  if (t !== undefined) {
    trailer = t.smallInteger("trailerField");
    t.end();
  }
  seq.end("RSASSA-PSS-params");
  if (hash === "SHA-1") return { kind: "weak", name: "RSASSA-PSS with SHA-1" };
  if (hash === undefined || mgfHash !== hash || salt !== HASH_LENGTH[hash] || trailer !== 1) {
    return { kind: "unsupported", name: "RSASSA-PSS" };
  }
  return {
    kind: "supported",
    name: `RSASSA-PSS with ${hash}`,
    algorithm: { kind: "rsa-pss", hash },
  };
}

export function signatureAlgorithmOf(
  oid: string,
  params: Uint8Array | undefined,
): CertSignatureAlgorithm {
  if (oid === Oid.rsassaPss) return pssAlgorithm(params);
  const entry = SIGNATURE_ALGORITHMS[oid];
  if (entry === undefined) return { kind: "unsupported", name: oid };
  if (entry.params === "absent" && params !== undefined) {
    fail(`Parameters not allowed for ${entry.name}`);
  }
  if (entry.params === "either" && params !== undefined && !isNull(params)) {
    fail(`Invalid parameters for ${entry.name}`);
  }
  if (entry.algorithm === undefined) return { kind: "weak", name: entry.name };
  return { kind: "supported", name: entry.name, algorithm: entry.algorithm };
}

const CURVES: Record<string, { curve: EcCurve; pointLength: number }> = {
  [Oid.secp256r1]: { curve: "P-256", pointLength: 65 },
  [Oid.secp384r1]: { curve: "P-384", pointLength: 97 },
};

/** Largest RSA modulus parsed at all, in bits (OpenSSL's OPENSSL_RSA_MAX_MODULUS_BITS). */
export const MAX_RSA_MODULUS_BITS = 16384;
/**
 * Largest RSA public exponent accepted: 2^32, OpenSSL's cap for moduli over 3072 bits
 * (OPENSSL_RSA_MAX_PUBEXP_BITS is 64; mature stacks such as Go and BoringSSL cap lower still).
 */
export const MAX_RSA_EXPONENT = 2n ** 32n;

/** Parses an RSAPublicKey (RFC 8017, Appendix A.1.1) with an odd exponent in (1, 2^32]. */
export function parseRsaPublicKey(der: Uint8Array): PublicKey {
  const r = new DerReader(der);
  const seq = r.sequence("RSAPublicKey");
  const nBytes = unsignedIntegerBytes(seq.expect(Tag.INTEGER, "modulus").value);
  const eBytes = unsignedIntegerBytes(seq.expect(Tag.INTEGER, "publicExponent").value);
  seq.end("RSAPublicKey");
  r.end("RSAPublicKey");
  // Sizes are capped here, on the bytes, before any arithmetic: a hostile modulus or exponent
  // makes every verification with the key slow. Path validation narrows the modulus further.
  const bits = nBytes[0] === 0 ? 0 : (nBytes.length - 1) * 8 + (32 - Math.clz32(nBytes[0]!));
  if (bits > MAX_RSA_MODULUS_BITS) fail("RSA modulus is too large");
  if (eBytes.length > 5) fail("Invalid RSA public exponent");
  const n = bytesToBigint(nBytes);
  const e = bytesToBigint(eBytes);
  if (n < 3n || (n & 1n) === 0n) fail("Invalid RSA modulus");
  if (e < 3n || (e & 1n) === 0n || e >= n || e > MAX_RSA_EXPONENT) {
    fail("Invalid RSA public exponent");
  }
  return { kind: "rsa", n, e, bits };
}

/** Reads a SubjectPublicKeyInfo (RFC 5280, Section 4.1.2.7). */
export function readSubjectPublicKeyInfo(r: DerReader): SubjectPublicKeyInfo {
  const el = r.expect(Tag.SEQUENCE, "SubjectPublicKeyInfo");
  const seq = new DerReader(el.value);
  const { oid, params } = readAlgorithmIdentifier(seq);
  const bits = seq.bitString("subjectPublicKey");
  seq.end("SubjectPublicKeyInfo");
  if (bits.unusedBits !== 0) fail("Public key BIT STRING has unused bits");
  const key = bits.bytes;
  let publicKey: PublicKey | undefined;
  switch (oid) {
    case Oid.ecPublicKey: {
      if (params === undefined || params[0] !== Tag.OID) fail("EC key needs a named curve");
      const curveOid = new DerReader(params).oid();
      const curve = CURVES[curveOid];
      if (curve !== undefined) {
        if (key.length !== curve.pointLength || key[0] !== 0x04) {
          fail("EC public key must be an uncompressed point");
        }
        publicKey = { kind: "ec", curve: curve.curve, point: key };
      }
      break;
    }
    case Oid.ed25519:
      if (params !== undefined) fail("Ed25519 key must have no parameters");
      if (key.length !== 32) fail("Ed25519 public key must be 32 bytes");
      publicKey = { kind: "ed25519", key };
      break;
    case Oid.rsaEncryption:
      if (params !== undefined && !isNull(params)) fail("RSA key parameters must be NULL");
      publicKey = parseRsaPublicKey(key);
      break;
    case Oid.rsassaPss:
      // An id-RSASSA-PSS key is restricted to PSS, possibly with fixed parameters (RFC 4055,
      // Section 3.1). Rather than carry those restrictions through every use of the key, such
      // keys are unsupported: `key` stays undefined and path validation refuses them.
      break;
  }
  return { algorithm: oid, key: publicKey, der: el.raw };
}

/** Reads one GeneralName (RFC 5280, Section 4.2.1.6). */
export function readGeneralName(r: DerReader): GeneralName {
  const el = r.read();
  const ia5 = (what: string): string => {
    if (el.value.some((b) => b >= 0x80)) fail(`Invalid ${what}`);
    let s = "";
    for (const b of el.value) s += String.fromCharCode(b);
    return s;
  };
  switch (el.tag) {
    case contextTag(1, false):
      return { kind: "rfc822Name", value: ia5("rfc822Name") };
    case contextTag(2, false):
      return { kind: "dNSName", value: ia5("dNSName") };
    case contextTag(4, true): {
      const inner = new DerReader(el.value);
      const name = readName(inner);
      inner.end("directoryName");
      return { kind: "directoryName", value: name };
    }
    case contextTag(6, false):
      return { kind: "uri", value: ia5("uniformResourceIdentifier") };
    case contextTag(7, false):
      return { kind: "iPAddress", value: el.value };
    default:
      if ((el.tag & 0xc0) !== 0x80) fail("Invalid GeneralName tag");
      return { kind: "other", tag: el.tag, value: el.value };
  }
}

function readGeneralNames(r: DerReader, what: string): GeneralName[] {
  const seq = r.sequence(what);
  const names: GeneralName[] = [];
  while (!seq.done) {
    if (names.length >= 1024) fail(`Too many names in ${what}`);
    const name = readGeneralName(seq);
    if (name.kind === "iPAddress" && name.value.length !== 4 && name.value.length !== 16) {
      fail(`Invalid iPAddress in ${what}`);
    }
    names.push(name);
  }
  if (names.length === 0) fail(`Empty ${what}`);
  return names;
}

function readSubtrees(r: DerReader): GeneralName[] {
  const names: GeneralName[] = [];
  while (!r.done) {
    if (names.length >= 1024) fail("Too many name constraints");
    const sub = r.sequence("GeneralSubtree");
    const base = readGeneralName(sub);
    // RFC 5280, Section 4.2.1.10: minimum MUST be zero and maximum MUST be absent.
    if (!sub.done) fail("GeneralSubtree minimum and maximum are not allowed");
    if (base.kind === "iPAddress" && base.value.length !== 8 && base.value.length !== 32) {
      fail("Invalid iPAddress name constraint");
    }
    names.push(base);
  }
  if (names.length === 0) fail("Empty GeneralSubtrees");
  return names;
}

/** Certificate extensions this module processes; certificatePolicies is tolerated when critical. */
const PROCESSED = new Set<string>([
  Oid.basicConstraints,
  Oid.keyUsage,
  Oid.extKeyUsage,
  Oid.subjectAltName,
  Oid.nameConstraints,
  Oid.subjectKeyIdentifier,
  Oid.authorityKeyIdentifier,
  Oid.certificatePolicies,
]);

function readExtensions(r: DerReader | undefined): Extensions {
  let basicConstraints: Extensions["basicConstraints"];
  let keyUsage: number | undefined;
  let extKeyUsage: string[] | undefined;
  let subjectAltName: GeneralName[] | undefined;
  let nameConstraints: NameConstraints | undefined;
  let subjectKeyIdentifier: Uint8Array | undefined;
  let authorityKeyIdentifier: AuthorityKeyIdentifier | undefined;
  const unknownCritical: string[] = [];
  const present: string[] = [];
  if (r !== undefined) {
    const seq = r.sequence("Extensions");
    r.end("Extensions");
    if (seq.done) fail("Empty Extensions");
    while (!seq.done) {
      if (present.length >= 64) fail("Too many extensions");
      const ext = seq.sequence("Extension");
      const oid = ext.oid();
      let critical = false;
      if (ext.peekTag() === Tag.BOOLEAN) {
        critical = ext.boolean("critical");
        // DER: a DEFAULT value is never encoded (X.690, Section 11.5).
        if (!critical) fail("Extension critical FALSE must be omitted in DER");
      }
      const value = ext.octetString("extnValue");
      ext.end("Extension");
      if (present.includes(oid)) fail(`Duplicate extension ${oid}`);
      present.push(oid);
      if (critical && !PROCESSED.has(oid)) unknownCritical.push(oid);
      const v = new DerReader(value);
      switch (oid) {
        case Oid.basicConstraints: {
          const bc = v.sequence("BasicConstraints");
          let ca = false;
          if (bc.peekTag() === Tag.BOOLEAN) {
            ca = bc.boolean("cA");
            if (!ca) fail("BasicConstraints cA FALSE must be omitted in DER");
          }
          const pathLen = bc.peekTag() === Tag.INTEGER
            ? bc.smallInteger("pathLenConstraint")
            : undefined;
          bc.end("BasicConstraints");
          basicConstraints = { ca, pathLen, critical };
          break;
        }
        case Oid.keyUsage: {
          const bits = v.bitString("KeyUsage");
          if (bits.bytes.length > 2) fail("KeyUsage too long");
          let mask = 0;
          for (let i = 0; i < 9; i++) {
            const byte = bits.bytes[i >> 3] ?? 0;
            if (byte & (0x80 >> (i & 7))) mask |= 1 << i;
          }
          keyUsage = mask;
          break;
        }
        case Oid.extKeyUsage: {
          const seqEku = v.sequence("ExtKeyUsageSyntax");
          const list: string[] = [];
          while (!seqEku.done) {
            if (list.length >= 64) fail("Too many extended key usages");
            list.push(seqEku.oid("KeyPurposeId"));
          }
          if (list.length === 0) fail("Empty ExtKeyUsageSyntax");
          extKeyUsage = list;
          break;
        }
        case Oid.subjectAltName:
          subjectAltName = readGeneralNames(v, "SubjectAltName");
          break;
        case Oid.nameConstraints: {
          const nc = v.sequence("NameConstraints");
          const p = nc.optional(contextTag(0, true));
          const x = nc.optional(contextTag(1, true));
          nc.end("NameConstraints");
          if (p === undefined && x === undefined) fail("Empty NameConstraints");
          nameConstraints = {
            permitted: p === undefined ? [] : readSubtrees(new DerReader(p.value)),
            excluded: x === undefined ? [] : readSubtrees(new DerReader(x.value)),
          };
          break;
        }
        case Oid.subjectKeyIdentifier:
          subjectKeyIdentifier = v.octetString("SubjectKeyIdentifier");
          break;
        case Oid.authorityKeyIdentifier: {
          const aki = v.sequence("AuthorityKeyIdentifier");
          const kid = aki.optional(contextTag(0, false));
          aki.optional(contextTag(1, true));
          const serial = aki.optional(contextTag(2, false));
          aki.end("AuthorityKeyIdentifier");
          authorityKeyIdentifier = {
            keyIdentifier: kid?.value,
            issuerSerial: serial?.value,
          };
          break;
        }
        default:
          continue;
      }
      v.end(`extension ${oid}`);
    }
  }
  return {
    basicConstraints,
    keyUsage,
    extKeyUsage,
    subjectAltName,
    nameConstraints,
    subjectKeyIdentifier,
    authorityKeyIdentifier,
    unknownCritical,
    present,
  };
}

/**
 * Parses a DER certificate (RFC 5280, Section 4.1). Throws `CertificateError` with
 * `bad_certificate` when the encoding is malformed or not DER.
 */
export function parseCertificate(der: Uint8Array): Certificate {
  if (der.length > MAX_CERTIFICATE_LENGTH) {
    throw new CertificateError("bad_certificate", "Certificate too large");
  }
  try {
    return parseCertificateDer(der);
  } catch (e) {
    if (e instanceof DerError) {
      throw new CertificateError("bad_certificate", `Malformed certificate: ${e.message}`);
    }
    throw e;
  }
}

function parseCertificateDer(der: Uint8Array): Certificate {
  const outer = new DerReader(der);
  const cert = outer.sequence("Certificate");
  outer.end("Certificate");
  const tbsEl = cert.expect(Tag.SEQUENCE, "TBSCertificate");
  const sigAlg = readAlgorithmIdentifier(cert);
  const sigBits = cert.bitString("signatureValue");
  cert.end("Certificate");
  if (sigBits.unusedBits !== 0) fail("Signature BIT STRING has unused bits");

  const tbs = new DerReader(tbsEl.value);
  let version = 1;
  const v = tbs.optionalExplicit(0);
  if (v !== undefined) {
    const n = v.smallInteger("version");
    v.end("version");
    if (n === 0) fail("Version 1 must be omitted in DER");
    if (n > 2) fail("Unknown certificate version");
    version = n + 1;
  }
  const serialEl = tbs.expect(Tag.INTEGER, "serialNumber");
  if (serialEl.value.length > 21) fail("Serial number too long");
  const serialValue = serialEl.value;
  const serial = unsignedOrRaw(serialValue);
  const tbsSigRaw = tbs.expect(Tag.SEQUENCE, "signature").raw;
  const issuer = readName(tbs);
  const validity = tbs.sequence("Validity");
  const notBefore = validity.time("notBefore");
  const notAfter = validity.time("notAfter");
  validity.end("Validity");
  const subject = readName(tbs);
  const publicKeyInfo = readSubjectPublicKeyInfo(tbs);
  const iuid = tbs.optional(contextTag(1, false));
  const suid = tbs.optional(contextTag(2, false));
  if ((iuid !== undefined || suid !== undefined) && version < 2) {
    fail("Unique identifiers need version 2 or 3");
  }
  const extEl = tbs.optionalExplicit(3);
  if (extEl !== undefined && version !== 3) fail("Extensions need version 3");
  const extensions = readExtensions(extEl);
  tbs.end("TBSCertificate");

  if (!bytesEqual(tbsSigRaw, sigAlg.raw)) {
    fail("Signature algorithm differs between TBSCertificate and Certificate");
  }
  return {
    der,
    tbs: tbsEl.raw,
    version,
    serial,
    serialHex: toHex(serial.length === 0 ? Uint8Array.of(0) : serial),
    signatureAlgorithm: signatureAlgorithmOf(sigAlg.oid, sigAlg.params),
    signature: sigBits.bytes,
    issuer,
    subject,
    notBefore,
    notAfter,
    publicKeyInfo,
    extensions,
  };
}

/** Serial contents without a leading sign byte (negative serials are kept as they are). */
function unsignedOrRaw(v: Uint8Array): Uint8Array {
  new DerReader(Uint8Array.of(Tag.INTEGER, v.length, ...v)).integer("serialNumber");
  return v.length > 1 && v[0] === 0 ? v.subarray(1) : v;
}

/** True when `cert` asserts the key usage bit, or has no keyUsage extension at all. */
export function allowsKeyUsage(cert: Certificate, usage: KeyUsageName): boolean {
  const ku = cert.extensions.keyUsage;
  return ku === undefined || (ku & (1 << KeyUsage[usage])) !== 0;
}
