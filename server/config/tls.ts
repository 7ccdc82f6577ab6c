/** `tls:` — server certificates, client certificates, versions, tickets and revocation. */
import * as v from "valibot";
import type { Positions, SettingPath } from "./_positions.ts";
import {
  bool,
  checkedByReader,
  choice,
  describeValue,
  duration,
  int,
  optional,
  path,
  pathList,
  section,
} from "./_schema.ts";
import { fileProblem, lowerFirst, readPath, readPathList, readText } from "./_files.ts";
import { checkCertificates, type KeyPair, loadKeyPair, pemCertificates } from "./key_match.ts";
import { type CrlPolicy, decodeCrlFile, verifyCrl } from "../../protocol/x509/crl.ts";
import type { ClientAuthMode } from "../../protocol/tls/mod.ts";
import { type Certificate, parseCertificate } from "../../protocol/x509/certificate.ts";
import { defaultProvider } from "../../protocol/crypto/mod.ts";

/** Whether the server asks for a client certificate: the TLS engine's `ClientAuthMode`. */
export type { ClientAuthMode };
export const CLIENT_AUTH_MODES = [
  "none",
  "optional",
  "required",
] as const satisfies readonly ClientAuthMode[];
/**
 * How a client certificate names its local account when no directory is configured: the
 * subject CN, the local part of its one email address, or that whole address.
 */
export const CERTIFICATE_USERNAMES = ["cn", "email-localpart", "email"] as const;

/** Where handshake signatures are made (`tls.signing`; see `SigningMode`). */
export const SIGNING_MODES = ["auto", "sync", "async"] as const;
/**
 * `sync` signs on the event loop (P-256 in WebAssembly, else noble or native), `async` on the
 * thread pool (WebCrypto), `auto` signs P-256 inline with nonces made ahead on a thread of
 * their own (server/connection/handshake_ahead.ts), and other keys inline while one handshake
 * runs and off the loop once handshakes overlap (with more than two cores; see
 * server/connection/tls_channel.ts).
 */
export type SigningMode = (typeof SIGNING_MODES)[number];
export type CertificateUsername = (typeof CERTIFICATE_USERNAMES)[number];
/** Whether an issuer without a current CRL is tolerated (`soft`) or refused (`hard`). */
export type { CrlPolicy };
export const CRL_POLICIES = ["soft", "hard"] as const satisfies readonly CrlPolicy[];
export const MIN_VERSIONS = ["1.2", "1.3"] as const;

const DEFAULT_CERTIFICATE = "certs/server.pem";
const DEFAULT_PRIVATE_KEY = "certs/server.key";
const DEFAULT_CLIENT_CA = ["certs/ca.pem"];

/** tls.min_version; YAML reads an unquoted 1.2 as a number, which means the same. */
const minVersion = v.pipe(
  v.union([choice(MIN_VERSIONS), v.literal(1.2), v.literal(1.3)], (i) => {
    const shown = typeof i.input === "string" ? `"${i.input}"` : describeValue(i.input);
    return `invalid value ${shown} (expected ${MIN_VERSIONS.join(" or ")})`;
  }),
  v.transform((x): "1.2" | "1.3" => x === 1.2 || x === "1.2" ? "1.2" : "1.3"),
);

export const tlsSchema = section({
  certificate: v.optional(path()),
  private_key: v.optional(path()),
  certificates: v.optional(
    checkedByReader({
      type: "array",
      minItems: 1,
      items: {
        type: "object",
        additionalProperties: false,
        required: ["certificate", "private_key"],
        properties: {
          certificate: { type: "string" },
          private_key: { type: "string" },
          names: { type: "array", items: { type: "string" } },
        },
      },
    }),
  ),
  client_auth: optional(choice(CLIENT_AUTH_MODES), "optional"),
  client_ca: v.optional(pathList()),
  handshake_timeout: optional(duration(100), "10s"),
  max_chain_depth: optional(int(1, 16), 8),
  certificate_username: optional(choice(CERTIFICATE_USERNAMES), "cn"),
  min_version: optional(minVersion, "1.2"),
  require_extended_master_secret: optional(bool(), false),
  signing: optional(choice(SIGNING_MODES), "auto"),
  half_rtt: optional(bool(), true),
  tickets: optional(
    section({
      count: optional(int(1, 16), 2),
      key_lifetime: optional(duration(60_000), "12h"),
      per_connection: optional(int(0, 10), 2),
      max_uses: optional(int(1, 1000), 8),
      psk_ke: optional(bool(), false),
    }),
    {},
  ),
  crl: v.optional(pathList()),
  crl_policy: optional(choice(CRL_POLICIES), "soft"),
}, "Server certificates, client certificates, TLS versions, session tickets and CRLs");

/** One server certificate of `tls.certificates`. */
export interface ServerCertificateConfig {
  /** Absolute path of the PEM chain, leaf first. */
  readonly certificate: string;
  /** Absolute path of the PEM private key. */
  readonly privateKey: string;
  /** Lower-case host names it serves (`*.example.org` for one label); may be empty. */
  readonly names: readonly string[];
}

export interface TlsConfig {
  /**
   * Absolute path of the PEM chain, leaf first. Default `certs/server.pem`. With
   * `tls.certificates`, the first entry's.
   */
  readonly certificate: string;
  /** Absolute path of the PEM private key. Default `certs/server.key`. */
  readonly privateKey: string;
  /**
   * Every server certificate, chosen by server name and signature algorithms; the first is the
   * default. Without `tls.certificates`, the one of `certificate` and `private_key`.
   */
  readonly certificates: readonly ServerCertificateConfig[];
  /** Default `optional`. */
  readonly clientAuth: ClientAuthMode;
  /** Absolute paths of PEM files with trusted client CAs. Default `[certs/ca.pem]`. */
  readonly clientCa: readonly string[];
  /** Default 10s. */
  readonly handshakeTimeoutMs: number;
  /** Most certificates in a client path: the leaf and intermediates, not the anchor. Default 8. */
  readonly maxChainDepth: number;
  /** Without a directory, which certificate field names the local account. Default `cn`. */
  readonly certificateUsername: CertificateUsername;
  /** The lowest TLS version accepted. Default "1.2" (as Dovecot). */
  readonly minVersion: "1.2" | "1.3";
  /** Refuse TLS 1.2 clients without the extended master secret (RFC 7627). Default false. */
  readonly requireExtendedMasterSecret: boolean;
  /** Where handshake signatures are made (see `SigningMode`). Default `auto`. */
  readonly signing: SigningMode;
  /**
   * TLS 1.3 without client certificates: the greeting leaves with the server's flight, before
   * the client's Finished (`ServerConfig.halfRtt`). Default true.
   */
  readonly halfRtt: boolean;
  /**
   * Session tickets. Keys: how many are kept and how long each seals (default 2 and 12h).
   * TLS 1.3: NewSessionTickets per connection (default 2), resumptions per ticket (default 8),
   * and whether psk_ke (resumption without a fresh key exchange) is allowed (default false).
   */
  readonly tickets: {
    readonly count: number;
    readonly keyLifetimeMs: number;
    readonly perConnection: number;
    readonly maxUses: number;
    readonly pskKe: boolean;
  };
  /** Absolute paths of CRL files (PEM or DER), reloaded on SIGHUP and on change. Default none. */
  readonly crl: readonly string[];
  /** `hard`: refuse a certificate whose issuer has no current CRL. Default `soft`. */
  readonly crlPolicy: CrlPolicy;
  /**
   * The certificate, key and CA files, read and parsed once when the configuration was read
   * with its files checked (as `serve` and a reload do); null otherwise.
   */
  readonly material: TlsMaterial | null;
}

/** The TLS files of a configuration, parsed: what the TLS engine is built from. */
export interface TlsMaterial {
  /** Every server certificate with the names it serves, the default first. */
  readonly certificates: readonly ServerKeyPair[];
  /** The trusted client CA certificates (DER), from `tls.client_ca`. */
  readonly clientCas: readonly Uint8Array[];
}

/** A server certificate chain and key with the host names it serves. */
export interface ServerKeyPair extends KeyPair {
  readonly names: readonly string[];
}

/**
 * Why `mode` cannot work with `caCount` trusted CAs, or null: asking for client certificates
 * needs something to verify them against.
 */
export function clientAuthProblem(mode: ClientAuthMode, caCount: number): string | null {
  return mode !== "none" && caCount === 0
    ? `at least one CA file is required when client_auth is ${mode}`
    : null;
}

/**
 * Reads and parses the TLS files of a configuration read without checking its files; throws
 * an error naming the file at the first problem.
 */
export function readTlsMaterial(tls: TlsConfig): TlsMaterial {
  const certificates = tls.certificates.map((c) => {
    const loaded = loadKeyPair(
      Deno.readTextFileSync(c.certificate),
      Deno.readTextFileSync(c.privateKey),
    );
    if (!loaded.ok) {
      const problem = loaded.problem;
      const reason = problem.kind === "mismatch"
        ? "the private key does not match the certificate"
        : problem.reason;
      throw new Error(
        `${problem.kind === "certificate" ? c.certificate : c.privateKey}: ${reason}`,
      );
    }
    return { ...loaded.pair, names: c.names };
  });
  const clientCas = tls.clientCa.flatMap((path) => {
    const pem = Deno.readTextFileSync(path);
    const problem = checkCertificates(pem);
    if (problem !== null) throw new Error(`${path}: ${problem}`);
    return pemCertificates(pem);
  });
  const problem = clientAuthProblem(tls.clientAuth, clientCas.length);
  if (problem !== null) throw new Error(`tls.client_ca: ${problem}`);
  return { certificates, clientCas };
}

const TLS: SettingPath = ["tls"];
const at_ = (key: string): SettingPath => [...TLS, key];

export function readTls(file: v.InferOutput<typeof tlsSchema>, at: Positions): TlsConfig {
  const before = at.issues.length;
  const pairs: (ServerKeyPair | null)[] = [];
  const list = file.certificates === undefined
    ? null
    : readServerCertificates(at, file.certificates, file, pairs);
  const certificate = list?.[0]?.certificate ??
    readPath(at, at_("certificate"), file.certificate, DEFAULT_CERTIFICATE, list === null);
  const privateKey = list?.[0]?.privateKey ??
    readPath(at, at_("private_key"), file.private_key, DEFAULT_PRIVATE_KEY, list === null);
  const certificates = list ?? [{ certificate, privateKey, names: [] }];
  const clientAuth = file.client_auth;
  // Without client certificates the CA bundle is read only when it is named explicitly.
  const clientCas: Uint8Array[] = [];
  const clientCa = readPathList(
    at,
    at_("client_ca"),
    file.client_ca,
    clientAuth === "none" ? [] : DEFAULT_CLIENT_CA,
    (path) => {
      const pem = readText(path);
      const problem = pem === null ? "cannot be read" : checkCertificates(pem);
      if (pem !== null && problem === null) clientCas.push(...pemCertificates(pem));
      return problem;
    },
  );
  const authProblem = clientAuthProblem(clientAuth, clientCa.length);
  if (authProblem !== null) at.fail(at_("client_ca"), authProblem);
  if (at.checkFiles && list === null) {
    pairs.push(loadServerKeyPair(at, TLS, certificate, privateKey, []));
  }
  const crlSettings = readCrlSettings(at, file, clientAuth, clientCas);
  const loaded = pairs.filter((p) => p !== null);
  const complete = at.checkFiles && loaded.length === certificates.length &&
    loaded.length === pairs.length && at.issues.length === before && authProblem === null;
  return {
    certificate,
    privateKey,
    certificates,
    clientAuth,
    clientCa,
    handshakeTimeoutMs: file.handshake_timeout,
    maxChainDepth: file.max_chain_depth,
    certificateUsername: file.certificate_username,
    minVersion: file.min_version,
    requireExtendedMasterSecret: file.require_extended_master_secret,
    signing: file.signing,
    halfRtt: file.half_rtt,
    tickets: {
      count: file.tickets.count,
      keyLifetimeMs: file.tickets.key_lifetime,
      perConnection: file.tickets.per_connection,
      maxUses: file.tickets.max_uses,
      pskKe: file.tickets.psk_ke,
    },
    ...crlSettings,
    material: complete ? { certificates: loaded, clientCas } : null,
  };
}

/** A host name or a one-label wildcard, as `tls.certificates[].names` takes them. */
const SERVER_NAME =
  /^(\*\.)?[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

const certificateEntry = section({
  certificate: v.optional(path()),
  private_key: v.optional(path()),
  names: v.optional(v.unknown()),
});

/**
 * `tls.certificates`: a non-empty list of {certificate, private_key, names}, each key pair
 * checked like the single one. It replaces `certificate` and `private_key`.
 */
function readServerCertificates(
  at: Positions,
  value: unknown,
  file: v.InferOutput<typeof tlsSchema>,
  pairs: (ServerKeyPair | null)[],
): ServerCertificateConfig[] | null {
  if (file.certificate !== undefined || file.private_key !== undefined) {
    at.fail(at_("certificates"), "replaces certificate and private_key; give one or the other");
  }
  if (!Array.isArray(value) || value.length === 0) {
    at.fail(
      at_("certificates"),
      `expected a non-empty list of entries, got ${describeValue(value)}`,
    );
    return null;
  }
  const out: ServerCertificateConfig[] = [];
  value.forEach((item, index) => {
    const base: SettingPath = [...at_("certificates"), index];
    const checked = at.section(certificateEntry, item, base);
    if (checked === undefined) return;
    if (checked.certificate === undefined) at.missing([...base, "certificate"]);
    if (checked.private_key === undefined) at.missing([...base, "private_key"]);
    if (checked.certificate === undefined || checked.private_key === undefined) return;
    const certificate = readPath(at, [...base, "certificate"], checked.certificate, "", true);
    const privateKey = readPath(at, [...base, "private_key"], checked.private_key, "", true);
    const names: string[] = [];
    if (checked.names !== undefined) {
      const list = Array.isArray(checked.names);
      const items: unknown[] = list ? checked.names as unknown[] : [checked.names];
      items.forEach((n, i) => {
        const name = typeof n === "string" ? n.toLowerCase() : null;
        if (name === null || !SERVER_NAME.test(name) || name.length > 253) {
          const where = list ? [...base, "names", i] : [...base, "names"];
          at.report(
            where,
            `${at.show([...base, "names"])}: expected host names, got ${describeValue(n)}`,
          );
          return;
        }
        names.push(name);
      });
    }
    if (at.checkFiles) pairs.push(loadServerKeyPair(at, base, certificate, privateKey, names));
    out.push({ certificate, privateKey, names });
  });
  return out.length > 0 ? out : null;
}

/** Reads and checks one certificate and key; reports a problem at its setting. */
function loadServerKeyPair(
  at: Positions,
  base: SettingPath,
  certFile: string,
  keyFile: string,
  names: readonly string[],
): ServerKeyPair | null {
  const before = at.issues.length;
  const certPem = readText(certFile);
  const keyPem = readText(keyFile);
  if (certPem === null || keyPem === null || at.issues.length !== before) return null;
  const loaded = loadKeyPair(certPem, keyPem);
  if (loaded.ok) return { ...loaded.pair, names };
  const problem = loaded.problem;
  switch (problem.kind) {
    case "certificate":
      at.fail([...base, "certificate"], `${problem.reason} in ${certFile}`);
      return null;
    case "key":
      at.fail([...base, "private_key"], `${problem.reason} in ${keyFile}`);
      return null;
    case "mismatch":
      at.fail(
        [...base, "private_key"],
        `the private key does not match the certificate in ${certFile}`,
      );
      return null;
    default: {
      const unreachable: never = problem;
      throw new Error(`Unknown key pair problem ${JSON.stringify(unreachable)}`);
    }
  }
}

// Revocation settings (issue 20): tls.crl and tls.crl_policy.

function readCrlSettings(
  at: Positions,
  file: v.InferOutput<typeof tlsSchema>,
  clientAuth: ClientAuthMode,
  clientCas: readonly Uint8Array[],
): Pick<TlsConfig, "crl" | "crlPolicy"> {
  // Each CRL must be signed by one of the client CAs: parse them once for all CRL files.
  let issuers: Certificate[] | null = null;
  const cas = (): Certificate[] => issuers ??= clientCas.map((der) => parseCertificate(der));
  const crl = file.crl === undefined
    ? []
    : readPathList(at, at_("crl"), file.crl, [], (path) => crlProblem(path, cas()));
  if (crl.length > 0 && clientAuth === "none") {
    at.fail(at_("crl"), "CRLs need client certificates: set client_auth to optional or required");
  }
  const crlPolicy = file.crl_policy;
  if (crlPolicy === "hard" && crl.length === 0) {
    at.fail(at_("crl_policy"), "hard needs at least one file in tls.crl");
  }
  return { crl, crlPolicy };
}

/** A reason the file at `path` holds no CRL signed by one of `issuers`, or null. */
function crlProblem(path: string, issuers: readonly Certificate[]): string | null {
  let bytes: Uint8Array;
  try {
    bytes = Deno.readFileSync(path);
  } catch (error) {
    return fileProblem(error);
  }
  try {
    for (const crl of decodeCrlFile(bytes)) verifyCrl(crl, issuers, defaultProvider);
    return null;
  } catch (error) {
    return error instanceof Error ? lowerFirst(error.message) : "not a CRL";
  }
}
