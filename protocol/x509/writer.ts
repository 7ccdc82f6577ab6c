/**
 * Issues X.509 v3 certificates (RFC 5280, Section 4): enough for a development CA, server
 * certificates for localhost, client certificates with an email SAN, and test chains that
 * break one rule at a time.
 */
import { createPrivateKey, sign as nodeSign } from "node:crypto";
import { Buffer } from "node:buffer";
import type {
  CryptoProvider,
  HashAlgorithm,
  PrivateKey,
  PublicKey,
  SignatureAlgorithm,
} from "../crypto/provider.ts";
import { contextTag, DerError, DerWriter } from "./der.ts";
import { parseCertificate } from "./certificate.ts";
import type { KeyUsageName } from "./certificate.ts";
import { KeyUsage } from "./certificate.ts";
import { encodePrivateKeyPkcs8, encodeRsaPublicKey, encodeSpki } from "./keys.ts";
import { encodeName, parseDnString } from "./name.ts";
import type { NameInput } from "./name.ts";
import { Oid } from "./oid.ts";
import { encodePem } from "./pem.ts";
import { parseIp, parseIpRange } from "./_ip.ts";

/** A general name to put into a nameConstraints subtree. */
export type GeneralNameInput =
  | { readonly dns: string }
  | { readonly email: string }
  | { readonly directoryName: string }
  /** `addr/prefix`, e.g. `10.0.0.0/8`. */
  | { readonly ip: string };

/** An extension given as raw DER (for tests: unknown critical extensions). */
export interface ExtensionInput {
  readonly oid: string;
  readonly critical: boolean;
  readonly value: Uint8Array;
}

/** What to put into a certificate. */
export interface CertificateSpec {
  /** RFC 4514 string (`CN=alice,O=Example`) or RDNs in DER order. */
  readonly subject: string | readonly (readonly NameInput[])[];
  /** The issuing CA; absent for a self-signed certificate (then `key` signs). */
  readonly issuer?: { readonly certificate: Uint8Array; readonly key: PrivateKey };
  /** The subject's private key; required when self-signed, else `publicKey` may be given. */
  readonly key?: PrivateKey;
  readonly publicKey?: PublicKey;
  /** Default: 16 random bytes. */
  readonly serial?: bigint;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly isCa?: boolean;
  readonly pathLen?: number;
  /** Default: keyCertSign + cRLSign for CAs, digitalSignature otherwise. */
  readonly keyUsage?: readonly KeyUsageName[];
  /** Omit the keyUsage extension entirely. */
  readonly omitKeyUsage?: boolean;
  /** Omit basicConstraints entirely. */
  readonly omitBasicConstraints?: boolean;
  /** Names (`serverAuth`, `clientAuth`, `anyExtendedKeyUsage`, ...) or dotted OIDs. */
  readonly extKeyUsage?: readonly string[];
  readonly sanDns?: readonly string[];
  readonly sanIp?: readonly string[];
  readonly sanEmail?: readonly string[];
  readonly nameConstraints?: {
    readonly permitted?: readonly GeneralNameInput[];
    readonly excluded?: readonly GeneralNameInput[];
  };
  readonly extraExtensions?: readonly ExtensionInput[];
  /** Signature hash override; `SHA-1` (tests only) signs through node:crypto. */
  readonly signatureHash?: HashAlgorithm | "SHA-1";
  /** For RSA issuers: PKCS#1 v1.5 (default) or RSASSA-PSS. */
  readonly rsaPadding?: "pkcs1" | "pss";
}

const HASH_OID: Record<HashAlgorithm, string> = {
  "SHA-256": Oid.sha256,
  "SHA-384": Oid.sha384,
  "SHA-512": Oid.sha512,
};
const HASH_LENGTH: Record<HashAlgorithm, number> = { "SHA-256": 32, "SHA-384": 48, "SHA-512": 64 };
const ECDSA_OID: Record<HashAlgorithm | "SHA-1", string> = {
  "SHA-1": Oid.ecdsaWithSha1,
  "SHA-256": Oid.ecdsaWithSha256,
  "SHA-384": Oid.ecdsaWithSha384,
  "SHA-512": Oid.ecdsaWithSha512,
};
const RSA_OID: Record<HashAlgorithm | "SHA-1", string> = {
  "SHA-1": Oid.sha1WithRsa,
  "SHA-256": Oid.sha256WithRsa,
  "SHA-384": Oid.sha384WithRsa,
  "SHA-512": Oid.sha512WithRsa,
};

const EKU_NAMES: Record<string, string> = {
  serverAuth: Oid.serverAuth,
  clientAuth: Oid.clientAuth,
  codeSigning: Oid.codeSigning,
  emailProtection: Oid.emailProtection,
  timeStamping: Oid.timeStamping,
  ocspSigning: Oid.ocspSigning,
  anyExtendedKeyUsage: Oid.anyExtendedKeyUsage,
};

interface SignaturePlan {
  readonly algorithmIdentifier: Uint8Array;
  sign(tbs: Uint8Array): Uint8Array;
}

function planSignature(
  key: PrivateKey,
  spec: CertificateSpec,
  provider: CryptoProvider,
): SignaturePlan {
  const hash = spec.signatureHash ??
    (key.kind === "ec" && key.curve === "P-384" ? "SHA-384" : "SHA-256");
  const w = new DerWriter();
  let algorithm: SignatureAlgorithm | undefined;
  switch (key.kind) {
    case "ec":
      w.sequence((a) => a.oid(ECDSA_OID[hash]));
      if (hash !== "SHA-1") algorithm = { kind: "ecdsa", hash };
      break;
    case "ed25519":
      if (spec.signatureHash !== undefined) throw new DerError("Ed25519 takes no hash override");
      w.sequence((a) => a.oid(Oid.ed25519));
      algorithm = { kind: "ed25519" };
      break;
    case "rsa":
      if (spec.rsaPadding === "pss") {
        if (hash === "SHA-1") throw new DerError("RSASSA-PSS with SHA-1 is not supported");
        const hashId = (a: DerWriter) => a.sequence((h) => h.oid(HASH_OID[hash]).null());
        w.sequence((a) => {
          a.oid(Oid.rsassaPss);
          a.sequence((p) => {
            p.explicit(0, hashId);
            p.explicit(1, (m) => m.sequence((g) => hashId(g.oid(Oid.mgf1))));
            p.explicit(2, (s) => s.integer(HASH_LENGTH[hash]));
          });
        });
        algorithm = { kind: "rsa-pss", hash };
      } else {
        w.sequence((a) => a.oid(RSA_OID[hash]).null());
        if (hash !== "SHA-1") algorithm = { kind: "rsa-pkcs1", hash };
      }
      break;
  }
  const alg = algorithm;
  return {
    algorithmIdentifier: w.bytes(),
    sign: (tbs) => alg === undefined ? signSha1(key, tbs) : provider.sign(key, alg, tbs),
  };
}

/** SHA-1 signing for tests that need a weak certificate; the provider refuses SHA-1. */
function signSha1(key: PrivateKey, data: Uint8Array): Uint8Array {
  const keyObject = createPrivateKey({
    key: Buffer.from(encodePrivateKeyPkcs8(key)),
    format: "der",
    type: "pkcs8",
  });
  return new Uint8Array(nodeSign("sha1", data, keyObject));
}

/** A named-bit BIT STRING with trailing zero bits removed (X.690, Section 11.2.2). */
function keyUsageBits(usages: readonly KeyUsageName[]): { bytes: Uint8Array; unused: number } {
  let mask = 0;
  for (const u of usages) mask |= 1 << KeyUsage[u];
  if (mask === 0) throw new DerError("Empty keyUsage");
  let highest = 0;
  for (let i = 0; i < 9; i++) if (mask & (1 << i)) highest = i;
  const bytes = new Uint8Array((highest >> 3) + 1);
  for (let i = 0; i <= highest; i++) if (mask & (1 << i)) bytes[i >> 3]! |= 0x80 >> (i & 7);
  return { bytes, unused: 7 - (highest & 7) };
}

function writeGeneralName(w: DerWriter, g: GeneralNameInput, constraint: boolean): void {
  const ascii = (s: string) => {
    if ([...s].some((c) => c.charCodeAt(0) > 0x7e)) throw new DerError(`Non-ASCII name ${s}`);
    return new TextEncoder().encode(s);
  };
  if ("dns" in g) w.tlv(contextTag(2, false), ascii(g.dns));
  else if ("email" in g) w.tlv(contextTag(1, false), ascii(g.email));
  else if ("directoryName" in g) {
    w.tlv(contextTag(4, true), encodeName(parseDnString(g.directoryName)));
  } else w.tlv(contextTag(7, false), constraint ? parseIpRange(g.ip) : parseIp(g.ip));
}

function dnOf(subject: CertificateSpec["subject"]): Uint8Array {
  return encodeName(typeof subject === "string" ? parseDnString(subject) : subject);
}

/** Key identifier: the leftmost 160 bits of SHA-256 over the key bits (RFC 7093, Section 2). */
function keyIdentifier(publicKey: PublicKey, provider: CryptoProvider): Uint8Array {
  const bits = publicKey.kind === "ec"
    ? publicKey.point
    : publicKey.kind === "ed25519"
    ? publicKey.key
    : encodeRsaPublicKey(publicKey.n, publicKey.e);
  return provider.hash("SHA-256", bits).subarray(0, 20);
}

function randomSerial(provider: CryptoProvider): bigint {
  const b = provider.randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 0x01;
  let n = 0n;
  for (const x of b) n = (n << 8n) | BigInt(x);
  return n;
}

/** Issues a certificate and returns its DER. */
export function issueCertificate(spec: CertificateSpec, provider: CryptoProvider): Uint8Array {
  const subjectDer = dnOf(spec.subject);
  let signingKey: PrivateKey;
  let issuerDer: Uint8Array;
  let issuerKeyId: Uint8Array | undefined;
  let publicKey: PublicKey;
  if (spec.issuer === undefined) {
    if (spec.key === undefined) throw new DerError("A self-signed certificate needs its key");
    signingKey = spec.key;
    issuerDer = subjectDer;
    publicKey = provider.publicKeyOf(spec.key);
  } else {
    const issuer = parseCertificate(spec.issuer.certificate);
    signingKey = spec.issuer.key;
    issuerDer = issuer.subject.der;
    issuerKeyId = issuer.extensions.subjectKeyIdentifier;
    const pk = spec.publicKey ?? (spec.key && provider.publicKeyOf(spec.key));
    if (pk === undefined) throw new DerError("The subject's public key is missing");
    publicKey = pk;
  }
  issuerKeyId ??= keyIdentifier(provider.publicKeyOf(signingKey), provider);
  const plan = planSignature(signingKey, spec, provider);
  const isCa = spec.isCa ?? false;

  const extensions: ExtensionInput[] = [];
  const ext = (oid: string, critical: boolean, build: (w: DerWriter) => void) => {
    const w = new DerWriter();
    build(w);
    extensions.push({ oid, critical, value: w.bytes() });
  };
  if (!spec.omitBasicConstraints) {
    ext(Oid.basicConstraints, true, (w) =>
      w.sequence((s) => {
        if (isCa) s.boolean(true);
        if (isCa && spec.pathLen !== undefined) s.integer(spec.pathLen);
      }));
  }
  if (!spec.omitKeyUsage) {
    const usages = spec.keyUsage ??
      (isCa ? ["keyCertSign", "cRLSign"] as const : ["digitalSignature"] as const);
    const { bytes, unused } = keyUsageBits(usages);
    ext(Oid.keyUsage, true, (w) => w.bitString(bytes, unused));
  }
  if (spec.extKeyUsage !== undefined && spec.extKeyUsage.length > 0) {
    ext(Oid.extKeyUsage, false, (w) =>
      w.sequence((s) => {
        for (const e of spec.extKeyUsage!) s.oid(EKU_NAMES[e] ?? e);
      }));
  }
  const san: GeneralNameInput[] = [
    ...(spec.sanEmail ?? []).map((email) => ({ email })),
    ...(spec.sanDns ?? []).map((dns) => ({ dns })),
    ...(spec.sanIp ?? []).map((ip) => ({ ip })),
  ];
  if (san.length > 0) {
    const emptySubject = subjectDer.length === 2;
    ext(Oid.subjectAltName, emptySubject, (w) =>
      w.sequence((s) => {
        for (const g of san) writeGeneralName(s, g, false);
      }));
  }
  const nc = spec.nameConstraints;
  if (nc !== undefined) {
    ext(Oid.nameConstraints, true, (w) =>
      w.sequence((s) => {
        const subtrees = (n: number, list: readonly GeneralNameInput[] | undefined) => {
          if (list === undefined || list.length === 0) return;
          s.constructed(contextTag(n, true), (t) => {
            for (const g of list) t.sequence((sub) => writeGeneralName(sub, g, true));
          });
        };
        subtrees(0, nc.permitted);
        subtrees(1, nc.excluded);
      }));
  }
  ext(Oid.subjectKeyIdentifier, false, (w) => w.octetString(keyIdentifier(publicKey, provider)));
  ext(
    Oid.authorityKeyIdentifier,
    false,
    (w) => w.sequence((s) => s.tlv(contextTag(0, false), issuerKeyId!)),
  );
  extensions.push(...(spec.extraExtensions ?? []));

  const notBefore = new Date(Math.floor(spec.notBefore.getTime() / 1000) * 1000);
  const notAfter = new Date(Math.floor(spec.notAfter.getTime() / 1000) * 1000);
  const tbs = new DerWriter().sequence((t) => {
    t.explicit(0, (v) => v.integer(2));
    t.integer(spec.serial ?? randomSerial(provider));
    t.raw(plan.algorithmIdentifier);
    t.raw(issuerDer);
    t.sequence((v) => v.time(notBefore).time(notAfter));
    t.raw(subjectDer);
    t.raw(encodeSpki(publicKey));
    t.explicit(3, (x) =>
      x.sequence((list) => {
        for (const e of extensions) {
          list.sequence((one) => {
            one.oid(e.oid);
            if (e.critical) one.boolean(true);
            one.octetString(e.value);
          });
        }
      }));
  }).bytes();
  const signature = plan.sign(tbs);
  return new DerWriter().sequence((c) => {
    c.raw(tbs);
    c.raw(plan.algorithmIdentifier);
    c.bitString(signature);
  }).bytes();
}

/** PEM form of a certificate. */
export function toPem(der: Uint8Array): string {
  return encodePem("CERTIFICATE", der);
}
