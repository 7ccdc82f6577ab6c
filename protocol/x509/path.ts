/**
 * Certification path building and validation (RFC 5280, Section 6; RFC 4158 for building).
 *
 * Paths are built from the leaf towards a trust anchor through the supplied intermediates, in
 * any order, trying every candidate issuer by name with backtracking. Only a candidate path that
 * reaches a trust anchor by name is checked: first every cheap RFC 5280, Section 6.1 check
 * (validity, key sizes, constraints, key usage), then its signatures, from the anchor down. The
 * search is bounded by a budget of signature work charged before each verification, a budget
 * of search steps and by `maxDepth`, and never visits a certificate twice on one path. There is
 * no policy processing (the initial policy set is any-policy and no explicit policy is required).
 * Revocation is not checked here; the directory check does that.
 */
import type { CryptoProvider, PublicKey } from "../crypto/provider.ts";
import { allowsKeyUsage, parseCertificate } from "./certificate.ts";
import type { Certificate, GeneralName, NameConstraints } from "./certificate.ts";
import { bytesEqual } from "./der.ts";
import { CertificateError } from "./identity.ts";
import type { CertificateAlert } from "./identity.ts";
import { nameKey, namesEqual, nameToString, nameWithinSubtree } from "./name.ts";
import { NameAttributeOid, Oid } from "./oid.ts";

/** Options of `validatePath`. */
export interface PathOptions {
  /** The time to validate at (injected clock). */
  readonly now: Date;
  readonly provider: CryptoProvider;
  /** Most certificates in a path, trust anchor excluded (leaf + intermediates). Default 8. */
  readonly maxDepth?: number;
  /** The extended key usage the leaf must allow when it has the extension. */
  readonly requiredEku?: "clientAuth" | "serverAuth";
  /** Smallest RSA modulus accepted, in bits. Default 2048. */
  readonly minRsaBits?: number;
  /** Most signature verifications one validation may spend. Default 64. */
  readonly maxSignatureChecks?: number;
  /**
   * Most estimated verification time, in microseconds (see `verifyCost`), one validation may
   * spend. Default `DEFAULT_SIGNATURE_COST`.
   */
  readonly maxSignatureCost?: number;
}

/** A validated path. */
export interface ValidatedPath {
  /** Leaf first, trust anchor last. */
  readonly certificates: readonly Certificate[];
  readonly leaf: Certificate;
  readonly anchor: Certificate;
}

/** Most candidate paths explored; stops factorial blow-up among cross-signed issuers. */
export const MAX_SEARCH_STEPS = 256;

/** Most intermediates accepted from a peer. */
export const MAX_INTERMEDIATES = 32;

const EKU_OID = { clientAuth: Oid.clientAuth, serverAuth: Oid.serverAuth } as const;

function at(cert: Certificate): { subject: string; serial: string } {
  return { subject: nameToString(cert.subject), serial: cert.serialHex };
}

function reject(alert: CertificateAlert, message: string, cert?: Certificate): never {
  throw new CertificateError(alert, message, cert === undefined ? undefined : at(cert));
}

function parseAll(list: readonly (Certificate | Uint8Array)[]): Certificate[] {
  return list.map((c) => c instanceof Uint8Array ? parseCertificate(c) : c);
}

/** Largest RSA modulus accepted in a certificate on a path, trust anchor excepted. */
export const MAX_RSA_BITS = 8192;
/** Largest RSA modulus accepted in a trust anchor (RSA_MAX_MODULUS_BITS in OpenSSL). */
export const MAX_ANCHOR_RSA_BITS = 16384;

/**
 * The verification budget of one path validation, in estimated microseconds: a handful of
 * milliseconds, enough for a 16384-bit anchor and a full-depth chain of ordinary keys.
 */
export const DEFAULT_SIGNATURE_COST = 10_000;

/**
 * Estimated time, in microseconds, to verify one signature made by `key` on this 2-core machine
 * (bench/hardening_bench.ts prints the measured figures). RSA public-key operations grow a
 * little under quadratically with the modulus and linearly with the exponent's bits and ones:
 * 2048 bits with e = 65537 is ~100 µs.
 */
export function verifyCost(key: PublicKey): number {
  switch (key.kind) {
    case "ec":
      return key.curve === "P-256" ? 700 : 1600;
    case "ed25519":
      return 80;
    case "rsa": {
      const e = key.e;
      let ones = 0;
      for (let x = e; x > 0n; x >>= 1n) ones += Number(x & 1n);
      const exponentWork = (e.toString(2).length + ones) / 18;
      return Math.ceil(100 * (key.bits / 2048) ** 1.6 * exponentWork);
    }
  }
}

/** Checks a key is one we accept for signatures on the path (RSA sizes as in the mature stacks). */
function checkKey(cert: Certificate, minRsaBits: number, anchor: boolean): void {
  const key = cert.publicKeyInfo.key;
  if (key === undefined) {
    reject(
      "unsupported_certificate",
      `Unsupported public key algorithm ${cert.publicKeyInfo.algorithm}`,
      cert,
    );
  }
  if (key.kind === "rsa" && key.bits < minRsaBits) {
    reject("unsupported_certificate", `RSA key of ${key.bits} bits is too small`, cert);
  }
  const maxBits = anchor ? MAX_ANCHOR_RSA_BITS : MAX_RSA_BITS;
  if (key.kind === "rsa" && key.bits > maxBits) {
    reject("unsupported_certificate", `RSA key of ${key.bits} bits is too large`, cert);
  }
}

/** Trust anchors indexed by subject name, built once and reused across validations. */
export interface TrustStore {
  readonly anchors: readonly Certificate[];
  readonly bySubject: ReadonlyMap<string, readonly Certificate[]>;
}

function indexBySubject(certs: readonly Certificate[]): Map<string, Certificate[]> {
  const map = new Map<string, Certificate[]>();
  for (const c of certs) {
    const k = nameKey(c.subject);
    const list = map.get(k);
    if (list === undefined) map.set(k, [c]);
    else list.push(c);
  }
  return map;
}

/** Parses and indexes trust anchors. */
export function createTrustStore(anchors: readonly (Certificate | Uint8Array)[]): TrustStore {
  const parsed = parseAll(anchors);
  return { anchors: parsed, bySubject: indexBySubject(parsed) };
}

function isTrustStore(x: readonly (Certificate | Uint8Array)[] | TrustStore): x is TrustStore {
  return "bySubject" in x;
}

/**
 * Validates `leaf` up to one of `anchors` (RFC 5280, Section 6). Throws `CertificateError`
 * with the TLS alert for the failure (RFC 8446, Section 6.2).
 */
export function validatePath(
  leafInput: Certificate | Uint8Array,
  intermediatesInput: readonly (Certificate | Uint8Array)[],
  anchorsInput: readonly (Certificate | Uint8Array)[] | TrustStore,
  options: PathOptions,
): ValidatedPath {
  const maxDepth = options.maxDepth ?? 8;
  const minRsaBits = options.minRsaBits ?? 2048;
  let checks = options.maxSignatureChecks ?? 64;
  let costLeft = options.maxSignatureCost ?? DEFAULT_SIGNATURE_COST;
  let steps = MAX_SEARCH_STEPS;
  if (intermediatesInput.length > MAX_INTERMEDIATES) {
    reject("bad_certificate", "Too many certificates in chain");
  }
  const leaf = leafInput instanceof Uint8Array ? parseCertificate(leafInput) : leafInput;
  const intermediates: Certificate[] = [];
  for (const c of parseAll(intermediatesInput)) {
    if (!intermediates.some((x) => bytesEqual(x.der, c.der)) && !bytesEqual(c.der, leaf.der)) {
      intermediates.push(c);
    }
  }
  const anchorsBySubject = isTrustStore(anchorsInput)
    ? anchorsInput.bySubject
    : createTrustStore(anchorsInput).bySubject;
  const interBySubject = indexBySubject(intermediates);

  // The most informative failure so far: a failed complete path beats a failed link, which
  // beats a depth cut-off, which beats having found no issuer at all.
  let best: { rank: number; error: CertificateError } | undefined;
  const note = (rank: number, e: unknown) => {
    if (!(e instanceof CertificateError)) throw e;
    if (best === undefined || rank > best.rank) best = { rank, error: e };
  };

  const linkCache = new Map<string, CertificateError | null>();
  const certIds = new Map<Certificate, number>();
  const idOf = (c: Certificate) => {
    let id = certIds.get(c);
    if (id === undefined) certIds.set(c, id = certIds.size);
    return id;
  };
  const linkKey = (child: Certificate, issuer: Certificate) => `${idOf(child)}>${idOf(issuer)}`;

  /** The cheap half of a link: a signature algorithm we support and a key we accept. */
  const checkLinkShape = (child: Certificate, issuer: Certificate, anchor: boolean): void => {
    const alg = child.signatureAlgorithm;
    if (alg.kind !== "supported") {
      reject(
        "unsupported_certificate",
        `${alg.kind === "weak" ? "Weak" : "Unsupported"} signature algorithm ${alg.name}`,
        child,
      );
    }
    checkKey(issuer, minRsaBits, anchor);
  };

  /**
   * Checks that `issuer` signed `child`; throws CertificateError otherwise. The work budget is
   * charged before the verification runs, so one handshake cannot buy more than its budget.
   */
  const checkSignature = (child: Certificate, issuer: Certificate): void => {
    const key = linkKey(child, issuer);
    const cached = linkCache.get(key);
    if (cached === null) return;
    if (cached !== undefined) throw cached;
    const alg = child.signatureAlgorithm;
    if (alg.kind !== "supported") throw new Error("unreachable: link shape not checked");
    const issuerKey = issuer.publicKeyInfo.key!;
    const cost = verifyCost(issuerKey);
    if (checks <= 0 || cost > costLeft) {
      reject("bad_certificate", "Path building gave up: too much work", child);
    }
    checks--;
    costLeft -= cost;
    let ok = false;
    try {
      ok = options.provider.verify(issuerKey, alg.algorithm, child.tbs, child.signature);
    } catch {
      ok = false;
    }
    if (!ok) {
      const e = new CertificateError(
        "bad_certificate",
        "Certificate signature does not verify",
        at(child),
      );
      linkCache.set(key, e);
      throw e;
    }
    linkCache.set(key, null);
  };

  /**
   * Validates a candidate path that reached `anchor` by name: every cheap RFC 5280 check first,
   * then the signatures from the anchor down, the expensive part, last.
   */
  const complete = (path: readonly Certificate[], anchor: Certificate): ValidatedPath => {
    checkLinkShape(path[path.length - 1]!, anchor, true);
    validateChain(path, anchor, options, minRsaBits);
    let issuer = anchor;
    for (let i = path.length - 1; i >= 0; i--) {
      checkSignature(path[i]!, issuer);
      issuer = path[i]!;
    }
    return { certificates: [...path, anchor], leaf: path[0]!, anchor };
  };

  /**
   * Depth-first search over names; `path` is leaf first. No signature is checked until a
   * candidate path reaches a trust anchor. Returns a validated path or undefined.
   */
  const search = (path: Certificate[]): ValidatedPath | undefined => {
    if (--steps < 0) {
      note(
        1,
        new CertificateError("bad_certificate", "Path building gave up: too much work", at(leaf)),
      );
      return undefined;
    }
    const child = path[path.length - 1]!;
    const issuerKey = nameKey(child.issuer);
    for (const anchor of anchorsBySubject.get(issuerKey) ?? []) {
      if (!namesEqual(anchor.subject, child.issuer)) continue;
      try {
        return complete(path, anchor);
      } catch (e) {
        note(3, e);
      }
    }
    for (const issuer of interBySubject.get(issuerKey) ?? []) {
      if (path.includes(issuer)) continue;
      if (path.length >= maxDepth) {
        note(1, new CertificateError("bad_certificate", "Certificate chain too long", at(leaf)));
        continue;
      }
      // A link whose signature already failed on another path cannot succeed on this one.
      const failed = linkCache.get(linkKey(child, issuer));
      if (failed) {
        note(2, failed);
        continue;
      }
      try {
        checkLinkShape(child, issuer, false);
      } catch (e) {
        note(2, e);
        continue;
      }
      const found = search([...path, issuer]);
      if (found !== undefined) return found;
    }
    return undefined;
  };

  const found = search([leaf]);
  if (found !== undefined) return found;
  if (best !== undefined) throw best.error;
  reject("unknown_ca", "No path to a trusted certificate authority", leaf);
}

/** True when a certificate's issuer and subject are the same name (RFC 5280, Section 6.1). */
function isSelfIssued(c: Certificate): boolean {
  return namesEqual(c.issuer, c.subject);
}

/**
 * RFC 5280, Section 6.1 on a complete path whose signatures were already checked. `path` is
 * leaf first; the anchor's constraints (validity, basicConstraints, keyUsage and
 * nameConstraints) apply too, as RFC 5937 allows.
 */
function validateChain(
  path: readonly Certificate[],
  anchor: Certificate,
  options: PathOptions,
  minRsaBits: number,
): void {
  const now = options.now.getTime();
  const ordered = [anchor, ...[...path].reverse()]; // anchor, top CA, ..., leaf
  let maxPathLength = path.length;
  const constraints: NameConstraints[] = [];
  for (let i = 0; i < ordered.length; i++) {
    const cert = ordered[i]!;
    const isAnchor = i === 0;
    const isLeaf = i === ordered.length - 1;
    if (now < cert.notBefore.getTime()) {
      reject("certificate_expired", "Certificate is not yet valid", cert);
    }
    if (now > cert.notAfter.getTime()) {
      reject("certificate_expired", "Certificate has expired", cert);
    }
    checkKey(cert, minRsaBits, isAnchor);
    if (cert.extensions.unknownCritical.length > 0) {
      reject(
        "unsupported_certificate",
        `Unknown critical extension ${cert.extensions.unknownCritical.join(", ")}`,
        cert,
      );
    }
    if (!isAnchor && (isLeaf || !isSelfIssued(cert))) checkNameConstraints(cert, constraints);
    if (isLeaf) {
      if (!allowsKeyUsage(cert, "digitalSignature")) {
        reject("bad_certificate", "Leaf key usage lacks digitalSignature", cert);
      }
      checkEku(cert, options.requiredEku);
      if (isAnchor) return;
      continue;
    }
    // Preparation for the next certificate (RFC 5280, Section 6.1.4).
    const bc = cert.extensions.basicConstraints;
    if (isAnchor) {
      // A v1 anchor without extensions is trusted as a CA by configuration.
      if (cert.version === 3 && bc !== undefined && !bc.ca) {
        reject("bad_certificate", "Trust anchor is not a CA", cert);
      }
    } else if (cert.version !== 3 || bc === undefined || !bc.ca) {
      reject("bad_certificate", "Issuer is not a CA (basicConstraints cA is not set)", cert);
    }
    if (!isAnchor && !isSelfIssued(cert)) {
      if (maxPathLength <= 0) reject("bad_certificate", "Path length constraint exceeded", cert);
      maxPathLength--;
    }
    if (bc?.pathLen !== undefined && bc.pathLen < maxPathLength) {
      maxPathLength = bc.pathLen;
    }
    if (!allowsKeyUsage(cert, "keyCertSign")) {
      reject("bad_certificate", "Issuer key usage lacks keyCertSign", cert);
    }
    if (!isAnchor) checkEku(cert, options.requiredEku);
    if (cert.extensions.nameConstraints !== undefined) {
      constraints.push(cert.extensions.nameConstraints);
    }
  }
}

/**
 * The leaf, and intermediates as most clients do, must allow the required purpose when they
 * carry extendedKeyUsage (RFC 5280, Section 4.2.1.12).
 */
function checkEku(cert: Certificate, required: PathOptions["requiredEku"]): void {
  const eku = cert.extensions.extKeyUsage;
  if (required === undefined || eku === undefined) return;
  if (eku.includes(EKU_OID[required]) || eku.includes(Oid.anyExtendedKeyUsage)) return;
  reject("bad_certificate", `Certificate is not valid for ${required}`, cert);
}

/** Names of `cert` subject to name constraints (RFC 5280, Section 4.2.1.10). */
function constrainedNames(cert: Certificate): GeneralName[] {
  const names: GeneralName[] = [];
  if (cert.subject.rdns.length > 0) names.push({ kind: "directoryName", value: cert.subject });
  for (const rdn of cert.subject.rdns) {
    for (const a of rdn) {
      if (a.oid === NameAttributeOid.emailAddress) {
        names.push({ kind: "rfc822Name", value: a.value });
      }
    }
  }
  names.push(...(cert.extensions.subjectAltName ?? []));
  return names;
}

function checkNameConstraints(cert: Certificate, constraints: readonly NameConstraints[]): void {
  if (constraints.length === 0) return;
  const names = constrainedNames(cert);
  for (const nc of constraints) {
    for (const name of names) {
      if (name.kind === "other") continue;
      if (
        name.kind === "uri" &&
        [...nc.permitted, ...nc.excluded].some((c) => c.kind === "uri")
      ) {
        reject("bad_certificate", "URI name constraints are not supported", cert);
      }
      const permitted = nc.permitted.filter((c) => c.kind === name.kind);
      if (permitted.length > 0 && !permitted.some((c) => matchesConstraint(name, c))) {
        reject(
          "bad_certificate",
          `Name ${describe(name)} is not permitted by name constraints`,
          cert,
        );
      }
      if (nc.excluded.some((c) => c.kind === name.kind && matchesConstraint(name, c))) {
        reject("bad_certificate", `Name ${describe(name)} is excluded by name constraints`, cert);
      }
    }
  }
}

function describe(n: GeneralName): string {
  switch (n.kind) {
    case "directoryName":
      return `directoryName:${nameToString(n.value)}`;
    case "iPAddress":
      return `iPAddress:${[...n.value].join(".")}`;
    case "other":
      return "other";
    default:
      return `${n.kind}:${n.value}`;
  }
}

/** Lower-cases ASCII only, as DNS and mail host comparisons require. */
function asciiLower(s: string): string {
  return s.replace(/[A-Z]/g, (c) => c.toLowerCase());
}

/** dNSName subtree match: the name equals the constraint or ends in "." + it. */
function dnsMatches(name: string, constraint: string): boolean {
  const n = asciiLower(name).replace(/\.$/, "");
  let c = asciiLower(constraint).replace(/\.$/, "");
  if (c === "") return true;
  if (c.startsWith(".")) return n.endsWith(c);
  c = "." + c;
  return n === c.slice(1) || n.endsWith(c);
}

/** rfc822Name match per RFC 5280, Section 4.2.1.10: mailbox, host, or domain (leading dot). */
function emailMatches(name: string, constraint: string): boolean {
  const at = name.lastIndexOf("@");
  if (at < 0) return false;
  if (constraint.includes("@")) {
    const ci = constraint.lastIndexOf("@");
    return name.slice(0, at) === constraint.slice(0, ci) &&
      asciiLower(name.slice(at + 1)) === asciiLower(constraint.slice(ci + 1));
  }
  const host = asciiLower(name.slice(at + 1));
  const c = asciiLower(constraint);
  if (c.startsWith(".")) return host.endsWith(c);
  return host === c;
}

function matchesConstraint(name: GeneralName, c: GeneralName): boolean {
  switch (name.kind) {
    case "dNSName":
      return c.kind === "dNSName" && dnsMatches(name.value, c.value);
    case "rfc822Name":
      return c.kind === "rfc822Name" && emailMatches(name.value, c.value);
    case "directoryName":
      return c.kind === "directoryName" && nameWithinSubtree(name.value, c.value);
    case "iPAddress": {
      if (c.kind !== "iPAddress" || c.value.length !== name.value.length * 2) return false;
      const n = name.value.length;
      for (let i = 0; i < n; i++) {
        if ((name.value[i]! & c.value[n + i]!) !== (c.value[i]! & c.value[n + i]!)) return false;
      }
      return true;
    }
    case "uri":
    case "other":
      return false;
  }
}
