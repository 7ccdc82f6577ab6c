/**
 * Certificate revocation lists (RFC 5280, Section 5): a strict DER parser, the signature check
 * against the issuing CA, and the revocation check of a certificate path (Section 6.3).
 *
 * Scope: complete CRLs issued directly by the CA that issued the certificates. Delta CRLs
 * (deltaCRLIndicator), indirect CRLs (certificateIssuer entries) and CRLs scoped by an
 * issuingDistributionPoint are refused when loading, as Section 5.2 requires for critical
 * extensions an application does not process; distribution points are never fetched.
 */
import type { CryptoProvider } from "../crypto/provider.ts";
import {
  allowsKeyUsage,
  type Certificate,
  type CertSignatureAlgorithm,
  readAlgorithmIdentifier,
  signatureAlgorithmOf,
} from "./certificate.ts";
import { bytesEqual, contextTag, DerError, DerReader, MAX_DER_LENGTH, Tag, toHex } from "./der.ts";
import type { CertificateAlert } from "./identity.ts";
import { type Name, namesEqual, nameToString, readName } from "./name.ts";
import { decodePem } from "./pem.ts";

/** A CRL that cannot be used, with the reason. */
export class CrlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CrlError";
  }
}

/** Revocation reasons (RFC 5280, Section 5.3.1). */
export const REVOCATION_REASONS: Readonly<Record<number, string>> = {
  0: "unspecified",
  1: "keyCompromise",
  2: "cACompromise",
  3: "affiliationChanged",
  4: "superseded",
  5: "cessationOfOperation",
  6: "certificateHold",
  8: "removeFromCRL",
  9: "privilegeWithdrawn",
  10: "aACompromise",
};

export interface RevokedCertificate {
  /** Serial in the form of `Certificate.serialHex`. */
  readonly serialHex: string;
  readonly revocationDate: Date;
  /** The reasonCode entry extension's name, or null when absent. */
  readonly reason: string | null;
}

/** A parsed CertificateList. Its signature is not yet checked: see `verifyCrl`. */
export interface Crl {
  readonly der: Uint8Array;
  /** The signed TBSCertList bytes. */
  readonly tbs: Uint8Array;
  /** 1 or 2. */
  readonly version: number;
  readonly signatureAlgorithm: CertSignatureAlgorithm;
  readonly signature: Uint8Array;
  readonly issuer: Name;
  readonly thisUpdate: Date;
  /** Null when the CRL gives none (RFC 5280 requires it; such a CRL is never current). */
  readonly nextUpdate: Date | null;
  /** The cRLNumber extension, or null. */
  readonly crlNumber: bigint | null;
  /** The keyIdentifier of the authorityKeyIdentifier extension, or null. */
  readonly authorityKeyId: Uint8Array | null;
  /** Revoked serials, keyed by `serialHex`. */
  readonly revoked: ReadonlyMap<string, RevokedCertificate>;
}

const CrlOid = {
  authorityKeyIdentifier: "2.5.29.35",
  issuerAltName: "2.5.29.18",
  crlNumber: "2.5.29.20",
  deltaCrlIndicator: "2.5.29.27",
  issuingDistributionPoint: "2.5.29.28",
  freshestCrl: "2.5.29.46",
  authorityInfoAccess: "1.3.6.1.5.5.7.1.1",
  reasonCode: "2.5.29.21",
  invalidityDate: "2.5.29.24",
  certificateIssuer: "2.5.29.29",
} as const;

/** Most revoked entries one CRL may hold (each takes at least 15 DER bytes). */
export const MAX_CRL_ENTRIES = Math.floor(MAX_DER_LENGTH / 15);

/**
 * The DER CRLs in a file's bytes: every `X509 CRL` block of a PEM file, or the file itself
 * when it is DER. Throws `CrlError` when there is none.
 */
export function decodeCrlFile(bytes: Uint8Array): Crl[] {
  if (bytes.length > 0 && bytes[0] === Tag.SEQUENCE) return [parseCrl(bytes)];
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new CrlError("Neither DER nor PEM");
  }
  let blocks;
  try {
    blocks = decodePem(text).filter((b) => b.label === "X509 CRL");
  } catch (e) {
    throw new CrlError(`Bad PEM: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (blocks.length === 0) throw new CrlError("No X509 CRL block in the file");
  return blocks.map((b) => parseCrl(b.der));
}

/** Parses a DER CertificateList (RFC 5280, Section 5.1). Throws `CrlError`. */
export function parseCrl(der: Uint8Array): Crl {
  try {
    return parseCrlDer(der);
  } catch (e) {
    if (e instanceof DerError) throw new CrlError(`Malformed CRL: ${e.message}`);
    throw e;
  }
}

function parseCrlDer(der: Uint8Array): Crl {
  const outer = new DerReader(der);
  const list = outer.sequence("CertificateList");
  outer.end("CertificateList");
  const tbsEl = list.expect(Tag.SEQUENCE, "TBSCertList");
  const sigAlg = readAlgorithmIdentifier(list);
  const sigBits = list.bitString("signatureValue");
  list.end("CertificateList");
  if (sigBits.unusedBits !== 0) throw new DerError("Signature BIT STRING has unused bits");

  const tbs = new DerReader(tbsEl.value);
  let version = 1;
  if (tbs.peekTag() === Tag.INTEGER) {
    const v = tbs.smallInteger("version");
    // Version 1 is encoded by omission; the field, when present, must say v2 (Section 5.1.2.1).
    if (v !== 1) throw new DerError(`Unknown CRL version ${v}`);
    version = 2;
  }
  const tbsSigRaw = tbs.expect(Tag.SEQUENCE, "signature").raw;
  const issuer = readName(tbs);
  if (issuer.rdns.length === 0) throw new DerError("Empty CRL issuer");
  const thisUpdate = tbs.time("thisUpdate");
  const next = tbs.peekTag();
  const nextUpdate = next === Tag.UTC_TIME || next === Tag.GENERALIZED_TIME
    ? tbs.time("nextUpdate")
    : null;
  const revoked = new Map<string, RevokedCertificate>();
  if (tbs.peekTag() === Tag.SEQUENCE) {
    const entries = tbs.sequence("revokedCertificates");
    while (!entries.done) {
      if (revoked.size >= MAX_CRL_ENTRIES) throw new DerError("Too many CRL entries");
      const entry = readRevoked(entries.sequence("revoked certificate"), version);
      // A serial listed twice keeps its first entry; either way it is revoked.
      if (!revoked.has(entry.serialHex)) revoked.set(entry.serialHex, entry);
    }
  }
  let crlNumber: bigint | null = null;
  let authorityKeyId: Uint8Array | null = null;
  const extensions = tbs.optionalExplicit(0);
  if (extensions !== undefined) {
    if (version !== 2) throw new DerError("CRL extensions need version 2");
    const seen = new Set<string>();
    const list = extensions.sequence("crlExtensions");
    extensions.end("crlExtensions");
    if (list.done) throw new DerError("Empty crlExtensions");
    while (!list.done) {
      const ext = readExtension(list, seen);
      switch (ext.oid) {
        case CrlOid.crlNumber: {
          const r = new DerReader(ext.value);
          crlNumber = r.integer("cRLNumber");
          r.end("cRLNumber");
          if (crlNumber < 0n) throw new DerError("Negative cRLNumber");
          break;
        }
        case CrlOid.authorityKeyIdentifier: {
          const r = new DerReader(ext.value);
          const aki = r.sequence("AuthorityKeyIdentifier");
          r.end("AuthorityKeyIdentifier");
          const keyId = aki.optional(contextTag(0, false));
          authorityKeyId = keyId === undefined ? null : keyId.value;
          break;
        }
        case CrlOid.deltaCrlIndicator:
          throw new CrlError("Delta CRLs are not supported");
        case CrlOid.issuingDistributionPoint:
          throw new CrlError("CRLs with an issuingDistributionPoint are not supported");
        case CrlOid.issuerAltName:
        case CrlOid.freshestCrl:
        case CrlOid.authorityInfoAccess:
          break;
        default:
          if (ext.critical) throw new CrlError(`Unsupported critical CRL extension ${ext.oid}`);
      }
    }
  }
  tbs.end("TBSCertList");
  if (!bytesEqual(tbsSigRaw, sigAlg.raw)) {
    throw new DerError("Signature algorithm differs between TBSCertList and CertificateList");
  }
  return {
    der,
    tbs: tbsEl.raw,
    version,
    signatureAlgorithm: signatureAlgorithmOf(sigAlg.oid, sigAlg.params),
    signature: sigBits.bytes,
    issuer,
    thisUpdate,
    nextUpdate,
    crlNumber,
    authorityKeyId,
    revoked,
  };
}

function readRevoked(r: DerReader, version: number): RevokedCertificate {
  const serialEl = r.expect(Tag.INTEGER, "userCertificate");
  if (serialEl.value.length > 21) throw new DerError("Serial number too long");
  // Checks the INTEGER is minimal.
  new DerReader(serialEl.raw).integer("userCertificate");
  const v = serialEl.value;
  const serial = v.length > 1 && v[0] === 0 ? v.subarray(1) : v;
  const revocationDate = r.time("revocationDate");
  let reason: string | null = null;
  if (!r.done) {
    if (version !== 2) throw new DerError("CRL entry extensions need version 2");
    const list = r.sequence("crlEntryExtensions");
    if (list.done) throw new DerError("Empty crlEntryExtensions");
    const seen = new Set<string>();
    while (!list.done) {
      const ext = readExtension(list, seen);
      switch (ext.oid) {
        case CrlOid.reasonCode: {
          const er = new DerReader(ext.value);
          const el = er.expect(0x0a, "CRLReason");
          er.end("CRLReason");
          if (el.value.length !== 1) throw new DerError("Bad CRLReason");
          reason = REVOCATION_REASONS[el.value[0]!] ?? `reason ${el.value[0]}`;
          break;
        }
        case CrlOid.invalidityDate:
          break;
        case CrlOid.certificateIssuer:
          throw new CrlError("Indirect CRLs (certificateIssuer) are not supported");
        default:
          if (ext.critical) {
            throw new CrlError(`Unsupported critical CRL entry extension ${ext.oid}`);
          }
      }
    }
  }
  r.end("revoked certificate");
  return {
    serialHex: toHex(serial.length === 0 ? Uint8Array.of(0) : serial),
    revocationDate,
    reason,
  };
}

function readExtension(
  list: DerReader,
  seen: Set<string>,
): { oid: string; critical: boolean; value: Uint8Array } {
  const ext = list.sequence("Extension");
  const oid = ext.oid("extnID");
  if (seen.has(oid)) throw new DerError(`Duplicate extension ${oid}`);
  seen.add(oid);
  let critical = false;
  if (ext.peekTag() === Tag.BOOLEAN) {
    critical = ext.boolean("critical");
    // DEFAULT FALSE is encoded by omission in DER.
    if (!critical) throw new DerError("critical FALSE must be omitted in DER");
  }
  const value = ext.octetString("extnValue");
  ext.end("Extension");
  return { oid, critical, value };
}

/**
 * Finds the CA among `candidates` that issued `crl` and checks its signature (RFC 5280,
 * Section 6.3.3 (f) and (g)): same name, matching key identifier when both give one, the
 * cRLSign key usage when the CA restricts its key usage. Returns the issuer; throws `CrlError`.
 */
export function verifyCrl(
  crl: Crl,
  candidates: readonly Certificate[],
  provider: CryptoProvider,
): Certificate {
  const alg = crl.signatureAlgorithm;
  if (alg.kind !== "supported") {
    throw new CrlError(
      `${alg.kind === "weak" ? "Weak" : "Unsupported"} CRL signature algorithm ${alg.name}`,
    );
  }
  let reason = `No CA named ${nameToString(crl.issuer)} among the client CAs`;
  for (const ca of candidates) {
    if (!namesEqual(ca.subject, crl.issuer)) continue;
    const ski = ca.extensions.subjectKeyIdentifier;
    if (crl.authorityKeyId !== null && ski !== undefined && !bytesEqual(ski, crl.authorityKeyId)) {
      reason = "The CRL's authority key identifier matches no client CA of that name";
      continue;
    }
    if (!allowsKeyUsage(ca, "cRLSign")) {
      reason = "The CA's key usage does not allow signing CRLs";
      continue;
    }
    const key = ca.publicKeyInfo.key;
    if (key === undefined) {
      reason = "The CA's key type is not supported";
      continue;
    }
    let ok = false;
    try {
      ok = provider.verify(key, alg.algorithm, crl.tbs, crl.signature);
    } catch {
      ok = false;
    }
    if (ok) return ca;
    reason = "The CRL signature does not verify";
  }
  throw new CrlError(reason);
}

/** Whether `crl` is current at `now`: issued already, and its nextUpdate not yet passed. */
export function isCurrent(crl: Crl, now: Date): boolean {
  return crl.thisUpdate.getTime() <= now.getTime() && crl.nextUpdate !== null &&
    now.getTime() < crl.nextUpdate.getTime();
}

/** `hard`: a certificate whose issuer has no current CRL is refused; `soft`: it passes. */
export type CrlPolicy = "soft" | "hard";

/** The revocation status of a path, from the CRLs at hand. */
export type RevocationVerdict =
  | { readonly ok: true }
  | {
    readonly ok: false;
    readonly alert: CertificateAlert;
    /** For the log, never for the peer. */
    readonly reason: string;
  };

/** A set of verified CRLs, one per issuer (the newest wins), queried per certificate. */
export class CrlSet {
  readonly #crls: readonly Crl[];

  /** `crls` must already have passed `verifyCrl`. */
  constructor(crls: readonly Crl[]) {
    // Per issuer, keep the CRL with the highest cRLNumber, else the latest thisUpdate.
    const best: Crl[] = [];
    for (const crl of crls) {
      const i = best.findIndex((b) => namesEqual(b.issuer, crl.issuer));
      if (i === -1) best.push(crl);
      else if (newer(crl, best[i]!)) best[i] = crl;
    }
    this.#crls = best;
  }

  get size(): number {
    return this.#crls.length;
  }

  get crls(): readonly Crl[] {
    return this.#crls;
  }

  /**
   * Checks each certificate of `path` (leaf first, trust anchor excluded) against the CRL of
   * its issuer (RFC 5280, Section 6.3.3). A listed serial is `certificate_revoked`, whatever
   * the CRL's age; under `hard`, an issuer without a current CRL is `certificate_unknown`.
   */
  check(path: readonly Certificate[], now: Date, policy: CrlPolicy): RevocationVerdict {
    for (const cert of path) {
      const crl = this.#crls.find((c) => namesEqual(c.issuer, cert.issuer));
      const entry = crl?.revoked.get(cert.serialHex);
      // Listed is revoked, whatever the revocationDate says (fail closed).
      if (entry !== undefined) {
        const why = entry.reason === null ? "" : ` (${entry.reason})`;
        return {
          ok: false,
          alert: "certificate_revoked",
          reason: `Serial ${cert.serialHex} of ${nameToString(cert.issuer)} is revoked${why}`,
        };
      }
      if (policy === "hard" && (crl === undefined || !isCurrent(crl, now))) {
        return {
          ok: false,
          alert: "certificate_unknown",
          reason: crl === undefined
            ? `No CRL for issuer ${nameToString(cert.issuer)}`
            : `The CRL of ${nameToString(cert.issuer)} is not current (nextUpdate ${
              crl.nextUpdate?.toISOString() ?? "missing"
            })`,
        };
      }
    }
    return { ok: true };
  }
}

function newer(a: Crl, b: Crl): boolean {
  if (a.crlNumber !== null && b.crlNumber !== null && a.crlNumber !== b.crlNumber) {
    return a.crlNumber > b.crlNumber;
  }
  return a.thisUpdate.getTime() > b.thisUpdate.getTime();
}
