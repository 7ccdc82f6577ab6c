/**
 * The Postern configuration: one YAML file, validated into a typed `Config` with every default
 * filled in. Every problem — YAML syntax, an unknown key, a wrong type, a bad value, a missing
 * certificate file, a key that does not match its certificate — becomes one line of a
 * `ConfigError` that points at the file, line and column:
 *
 * ```
 * config.yaml:12:5: unknown key "lissten" (did you mean "listen"?)
 * ```
 *
 * Relative paths resolve against the directory of the configuration file (or the working
 * directory when no file is used). See config.example.yaml for every setting.
 */
import { dirname, isAbsolute, join, resolve } from "node:path";
import {
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  parseDocument,
  type Scalar,
  type YAMLMap,
} from "yaml";
import { checkCertificates, checkKeyPair, pemCertificates } from "./config/key_match.ts";
import { decodeCrlFile, verifyCrl } from "../protocol/x509/crl.ts";
import { type Certificate, parseCertificate } from "../protocol/x509/certificate.ts";
import { defaultProvider } from "../protocol/crypto/mod.ts";
import {
  type DirectoryConfigInput,
  type DirectoryMapping,
  isAttributeDescription,
  SYNC_SETTINGS,
  type SyncSetting,
} from "./directory/config.ts";
import { parseFilterTemplate } from "./directory/filter_template.ts";
import { suggest } from "./config/suggest.ts";
import { checkCost, DEFAULT_SCRYPT_COST, type ScryptCost } from "../mailstore/password.ts";
import { formatDuration, parseAddress, parseDuration, parseSize } from "./config/values.ts";

export { formatDuration, parseAddress, parseDuration, parseSize } from "./config/values.ts";

/** How a listener starts TLS: at once (RFC 8314) or after STARTTLS (RFC 9051, Section 6.2.1). */
export type TlsMode = "implicit" | "starttls";
/** Whether the server asks for a client certificate (RFC 8446, Section 4.3.2). */
export type ClientAuthMode = "none" | "optional" | "required";
/** How a client certificate is tied to a directory entry. */
export type CertificateMapping = "subject_dn" | "filter" | "attribute";
/** What to do when the directory cannot be reached: refuse, or trust a recent positive answer. */
export type DirectoryErrorPolicy = "deny" | "cached";
export type LogLevel = "debug" | "info" | "warning" | "error";
/** Whether an issuer without a current CRL is tolerated (`soft`) or refused (`hard`). */
export type CrlPolicy = "soft" | "hard";
export type LogFormat = "text" | "json";

/** One listening socket. */
export interface ListenerConfig {
  /** The address as written, e.g. `127.0.0.1:9993`. */
  readonly address: string;
  readonly hostname: string;
  /** 0 lets the OS pick a free port. */
  readonly port: number;
  readonly tls: TlsMode;
}

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
}

/**
 * How a client certificate names its local account when no directory is configured: the
 * subject CN, the local part of its one email address, or that whole address.
 */
export type CertificateUsername = typeof CERTIFICATE_USERNAMES[number];

export interface DirectoryConfig {
  /** `ldap://host:port` or `ldaps://host:port`. */
  readonly url: string;
  /** StartTLS on an `ldap://` URL. Default false. */
  readonly starttls: boolean;
  /** Absolute path of a PEM CA file to verify the LDAP server, or null for the system store. */
  readonly ca: string | null;
  /** The service account the server binds as. */
  readonly bindDn: string;
  /**
   * Absolute path of the file holding the bind password (one line). The password itself stays
   * out of `Config` so that a logged configuration cannot leak it; see `directoryConfigInput`.
   */
  readonly bindPasswordFile: string;
  readonly baseDn: string;
  /**
   * `subject_dn`: the certificate's subject is the entry's DN; `filter`: search with
   * `certificateLookup`; `attribute`: search for `subjectDnAttribute` equal to the subject DN.
   * Default `filter` with `(mail={cert.san.email})`.
   */
  readonly certificateMapping: CertificateMapping;
  /** LDAP filter template with `{cert.…}` placeholders, e.g. `(mail={cert.san.email})`. */
  readonly certificateLookup: string | null;
  readonly subjectDnAttribute: string | null;
  /** Default `uid`. */
  readonly usernameAttribute: string;
  /** How often a live session's certificate is checked again; 0 turns it off. Default 60s. */
  readonly recheckIntervalMs: number;
  /** How long a positive directory answer is reused; 0 turns caching off. Default 60s. */
  readonly cacheTtlMs: number;
  /** Default `deny`. */
  readonly onError: DirectoryErrorPolicy;
  /** Budget of one lookup (connect, TLS, bind, search). Default 5s. */
  readonly timeoutMs: number;
  /** Simultaneous LDAP lookups. Default 4. */
  readonly maxConcurrency: number;
  /** How changes reach open sessions: push (RFC 4533, psearch) or polling. Default `auto`. */
  readonly sync: SyncSetting;
}

export interface LimitsConfig {
  /** Default 20. */
  readonly maxConnectionsPerUser: number;
  /** Default 50. */
  readonly maxConnectionsPerAddress: number;
  /** At least 30m (RFC 9051, Section 5.4). Default 30m. */
  readonly idleTimeoutMs: number;
  /** Longest command line in octets, at least 8192 (RFC 7162, Section 4). Default 64KiB. */
  readonly maxLineLength: number;
  /** Largest literal in octets. Default 50MiB. */
  readonly maxLiteralSize: number;
  /** Largest APPENDed message in octets. Default 50MiB. */
  readonly maxMessageSize: number;
}

export interface ImapConfig {
  /**
   * Greet a client with a valid certificate as PREAUTH (RFC 9051, Section 7.1.4) instead of
   * waiting for AUTHENTICATE EXTERNAL. Default false.
   */
  readonly preauthWithCertificate: boolean;
}

export interface LogConfig {
  /** Default `info`. */
  readonly level: LogLevel;
  /** Default `text`. */
  readonly format: LogFormat;
}

/** The validated configuration with all defaults applied and all paths absolute. */
export interface Config {
  /** Absolute path of the file it was read from, or null for the built-in defaults. */
  readonly source: string | null;
  /** Directory relative paths were resolved against. */
  readonly baseDir: string;
  /** Absolute path of the data directory. Default `./data`. */
  readonly dataDir: string;
  /** Default `127.0.0.1:9993` implicit and `127.0.0.1:9143` starttls. */
  readonly listen: readonly ListenerConfig[];
  readonly tls: TlsConfig;
  /** Null when no LDAP directory is configured. */
  readonly directory: DirectoryConfig | null;
  readonly limits: LimitsConfig;
  readonly imap: ImapConfig;
  readonly log: LogConfig;
  readonly auth: AuthConfig;
  /** Null when no `lmtp:` section is present (no delivery listener). */
  readonly lmtp: LmtpConfig | null;
  readonly quota: QuotaConfig;
  /** Null when metrics are off (the default). */
  readonly metrics: MetricsConfig | null;
  readonly admin: AdminConfig;
  /** Where mail is kept. Default: SQLite at `<data_dir>/postern.db`. */
  readonly store: StoreConfig;
  readonly server: ServerSettings;
}

/** One problem found in a configuration file; `line` and `col` are 1-based. */
export interface ConfigIssue {
  readonly file: string;
  readonly line: number;
  readonly col: number;
  readonly message: string;
}

/** A configuration that cannot be used; the message holds one `file:line:col: …` line per issue. */
export class ConfigError extends Error {
  readonly issues: readonly ConfigIssue[];
  constructor(issues: readonly ConfigIssue[]) {
    super(issues.map((i) => `${i.file}:${i.line}:${i.col}: ${i.message}`).join("\n"));
    this.name = "ConfigError";
    this.issues = issues;
  }
}

/** Options for `parseConfig` and `loadConfig`. */
export interface ConfigOptions {
  /**
   * Check that certificate, key, CA and password files exist and that the key matches the
   * certificate. Default true. Turned off when the dev PKI is about to be generated.
   */
  readonly checkFiles?: boolean;
  /** The file name used in messages. Default: the path as given. */
  readonly displayName?: string;
}

/** Largest configuration file read; a real one is a few KiB. */
export const MAX_CONFIG_BYTES = 1 << 20;

/** The file `postern` reads when no `--config` is given. */
export const DEFAULT_CONFIG_FILE = "config.yaml";

const DEFAULTS = {
  dataDir: "data",
  listen: [
    { address: "127.0.0.1:9993", tls: "implicit" },
    { address: "127.0.0.1:9143", tls: "starttls" },
  ],
  certificate: "certs/server.pem",
  privateKey: "certs/server.key",
  clientAuth: "optional",
  clientCa: ["certs/ca.pem"],
  handshakeTimeoutMs: 10_000,
  maxChainDepth: 8,
  certificateUsername: "cn",
  minVersion: "1.2",
  requireExtendedMasterSecret: false,
  tickets: { count: 2, keyLifetimeMs: 12 * 3600_000, perConnection: 2, maxUses: 8, pskKe: false },
  usernameAttribute: "uid",
  certificateLookup: "(mail={cert.san.email})",
  recheckIntervalMs: 60_000,
  cacheTtlMs: 60_000,
  directoryTimeoutMs: 5_000,
  maxConcurrency: 4,
  maxConnectionsPerUser: 20,
  maxConnectionsPerAddress: 50,
  idleTimeoutMs: 30 * 60_000,
  maxLineLength: 64 * 1024,
  maxLiteralSize: 50 * 1024 * 1024,
  maxMessageSize: 50 * 1024 * 1024,
} as const;

const TLS_MODES = ["implicit", "starttls"] as const;
const CLIENT_AUTH_MODES = ["none", "optional", "required"] as const;
export const CERTIFICATE_USERNAMES = ["cn", "email-localpart", "email"] as const;
const MAPPINGS = ["subject_dn", "filter", "attribute"] as const;
const ON_ERROR = ["deny", "cached"] as const;
const LOG_LEVELS = ["debug", "info", "warning", "error"] as const;
const LOG_FORMATS = ["text", "json"] as const;

const KEYS = {
  root: [
    "data_dir",
    "listen",
    "tls",
    "directory",
    "limits",
    "imap",
    "log",
    "auth",
    "lmtp",
    "quota",
    "metrics",
    "admin",
    "store",
    "server",
  ],
  listen: ["address", "tls"],
  tls: [
    "certificate",
    "private_key",
    "certificates",
    "client_auth",
    "client_ca",
    "handshake_timeout",
    "max_chain_depth",
    "certificate_username",
    "min_version",
    "require_extended_master_secret",
    "tickets",
    "crl",
    "crl_policy",
  ],
  tickets: ["count", "key_lifetime", "per_connection", "max_uses", "psk_ke"],
  certificates: ["certificate", "private_key", "names"],
  directory: [
    "url",
    "starttls",
    "ca",
    "bind_dn",
    "bind_password_file",
    "base_dn",
    "certificate_lookup",
    "certificate_mapping",
    "subject_dn_attribute",
    "username_attribute",
    "recheck_interval",
    "cache_ttl",
    "on_error",
    "timeout",
    "max_concurrency",
    "sync",
  ],
  limits: [
    "max_connections_per_user",
    "max_connections_per_address",
    "idle_timeout",
    "max_line_length",
    "max_literal_size",
    "max_message_size",
  ],
  imap: ["preauth_with_certificate"],
  log: ["level", "format"],
} as const;

/** The configuration used when no file exists, with paths relative to `baseDir`. */
export function defaultConfig(baseDir: string = Deno.cwd()): Config {
  const config = parseConfig("", join(baseDir, DEFAULT_CONFIG_FILE), { checkFiles: false });
  return { ...config, source: null };
}

/**
 * Reads and validates a configuration file. Throws `ConfigError` (also when the file cannot be
 * read); the messages name the file as `path` was given.
 */
export async function loadConfig(path: string, options: ConfigOptions = {}): Promise<Config> {
  const file = options.displayName ?? path;
  let text: string;
  try {
    const info = await Deno.stat(path);
    if (info.size > MAX_CONFIG_BYTES) {
      const message = `the file is larger than ${MAX_CONFIG_BYTES} bytes`;
      throw new ConfigError([{ file, line: 1, col: 1, message }]);
    }
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError([{ file, line: 1, col: 1, message: fileProblem(error) }]);
  }
  return parseConfig(text, path, options);
}

/**
 * Validates configuration text. `fileName` is used in messages and to resolve relative paths
 * (against its directory). Throws `ConfigError` listing every problem found.
 */
export function parseConfig(
  text: string,
  fileName: string,
  options: ConfigOptions = {},
): Config {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const ctx: Context = {
    file: options.displayName ?? fileName,
    lines,
    issues: [],
    baseDir: resolve(dirname(fileName)),
    checkFiles: options.checkFiles ?? true,
  };
  for (const error of doc.errors) {
    const { line, col } = lines.linePos(error.pos[0]);
    const message = error.message.split("\n")[0]!.replace(/\s*at line \d+, column \d+:?$/, "");
    ctx.issues.push({ file: ctx.file, line, col, message: `YAML syntax error: ${message}` });
  }
  if (ctx.issues.length > 0) throw new ConfigError(ctx.issues);

  const root = Section.open(ctx, doc.contents, null, "", KEYS.root, "the configuration");
  const dataDir = root.path("data_dir", DEFAULTS.dataDir, false);
  const config: Config = {
    source: resolve(fileName),
    baseDir: ctx.baseDir,
    dataDir,
    listen: readListeners(ctx, root),
    tls: readTls(ctx, root),
    directory: readDirectory(ctx, root),
    limits: readLimits(ctx, root),
    imap: readImap(ctx, root),
    log: readLog(ctx, root),
    auth: readAuth(ctx, root),
    lmtp: readLmtp(ctx, root),
    quota: readQuota(ctx, root),
    ...readObservability(ctx, root, dataDir),
    store: readStore(ctx, root),
    server: readServer(ctx, root),
  };
  if (ctx.issues.length > 0) {
    ctx.issues.sort((a, b) => a.line - b.line || a.col - b.col);
    throw new ConfigError(ctx.issues);
  }
  return config;
}

interface Context {
  readonly file: string;
  readonly lines: LineCounter;
  readonly issues: ConfigIssue[];
  readonly baseDir: string;
  readonly checkFiles: boolean;
}

function report(ctx: Context, node: Node | null | undefined, message: string): void {
  const offset = node?.range?.[0] ?? 0;
  const { line, col } = ctx.lines.linePos(offset);
  ctx.issues.push({ file: ctx.file, line, col, message });
}

function describe(node: Node): string {
  if (isMap(node)) return "a mapping";
  if (isSeq(node)) return "a list";
  if (isScalar(node)) {
    const value = node.value;
    if (value === null) return "nothing";
    if (typeof value === "string") return `"${value}"`;
    if (typeof value === "number" || typeof value === "boolean") return `${typeof value} ${value}`;
  }
  return "an unsupported value";
}

function quoteList(values: readonly string[]): string {
  if (values.length === 1) return values[0]!;
  return `${values.slice(0, -1).join(", ")} or ${values[values.length - 1]}`;
}

/**
 * One mapping of the file, with typed accessors. An accessor that finds a bad value reports it
 * and returns the default, so that checking goes on and several problems surface at once.
 */
class Section {
  readonly #ctx: Context;
  readonly #node: Node | null;
  readonly #anchor: Node | null;
  readonly #values = new Map<string, Node>();
  #keys = new Map<string, Node>();
  /** Dotted path of the section (`tls`, `listen[0]`), empty for the root. */
  readonly label: string;

  private constructor(ctx: Context, node: Node | null, anchor: Node | null, path: string) {
    this.#ctx = ctx;
    this.#node = node;
    this.#anchor = anchor;
    this.label = path;
  }

  /**
   * Opens a mapping node, reporting unknown keys; a missing or null node gives an empty one.
   * `anchor` (the section's key) is where problems without a node of their own are reported.
   */
  static open(
    ctx: Context,
    node: unknown,
    anchor: Node | null,
    path: string,
    keys: readonly string[],
    what: string,
  ): Section {
    const valueNode = asNode(node);
    const section = new Section(ctx, valueNode, anchor ?? valueNode, path);
    section.#keys = new Map();
    if (valueNode === null || (isScalar(valueNode) && valueNode.value === null)) return section;
    if (!isMap(valueNode)) {
      report(ctx, valueNode, `${what} must be a mapping of keys, got ${describe(valueNode)}`);
      return section;
    }
    for (const pair of (valueNode as YAMLMap<unknown, unknown>).items) {
      const key = asNode(pair.key);
      if (!isScalar(key) || typeof key.value !== "string") {
        report(ctx, key, `keys in ${what} must be plain names`);
        continue;
      }
      const name = key.value;
      if (!keys.includes(name)) {
        const guess = suggest(name, keys);
        const where = path === "" ? "" : ` in ${path}`;
        const hint = guess === undefined ? "" : ` (did you mean "${guess}"?)`;
        report(ctx, key, `unknown key "${name}"${where}${hint}`);
        continue;
      }
      section.#keys.set(name, key);
      const value = asNode(pair.value);
      if (value !== null && !(isScalar(value) && value.value === null)) {
        section.#values.set(name, value);
      }
    }
    return section;
  }

  get node(): Node | null {
    return this.#node;
  }

  has(key: string): boolean {
    return this.#values.has(key);
  }

  raw(key: string): Node | undefined {
    return this.#values.get(key);
  }

  /** The key node of `key`, for positions. */
  keyNode(key: string): Node | null {
    return this.#keys.get(key) ?? null;
  }

  name(key: string): string {
    return this.label === "" ? key : `${this.label}.${key}`;
  }

  fail(key: string, message: string): void {
    const at = this.#values.get(key) ?? this.#keys.get(key) ?? this.#anchor;
    report(this.#ctx, at, `${this.name(key)}: ${message}`);
  }

  missing(key: string): void {
    const where = this.label === "" ? "" : ` in ${this.label}`;
    report(this.#ctx, this.#anchor, `missing required key "${key}"${where}`);
  }

  #scalar(key: string, type: "string" | "number" | "boolean"): Scalar | undefined {
    const node = this.#values.get(key);
    if (node === undefined) return undefined;
    if (!isScalar(node) || typeof node.value !== type) {
      const wanted = type === "boolean" ? "true or false" : type === "number" ? "a number" : "text";
      this.fail(key, `expected ${wanted}, got ${describe(node)}`);
      return undefined;
    }
    return node;
  }

  string(key: string): string | undefined {
    const value = this.#scalar(key, "string")?.value as string | undefined;
    if (value !== undefined && value.trim() === "") {
      this.fail(key, "must not be empty");
      return undefined;
    }
    return value;
  }

  requiredString(key: string): string {
    if (!this.has(key)) this.missing(key);
    return this.string(key) ?? "";
  }

  bool(key: string, fallback: boolean): boolean {
    return (this.#scalar(key, "boolean")?.value as boolean | undefined) ?? fallback;
  }

  int(key: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
    const value = this.#scalar(key, "number")?.value as number | undefined;
    if (value === undefined) return fallback;
    if (!Number.isInteger(value) || value < min || value > max) {
      this.fail(key, `expected a whole number from ${min} to ${max}, got ${value}`);
      return fallback;
    }
    return value;
  }

  size(key: string, fallback: number, min: number): number {
    const node = this.#values.get(key);
    if (node === undefined) return fallback;
    const value = isScalar(node) ? node.value : undefined;
    if (typeof value !== "number" && typeof value !== "string") {
      this.fail(key, `expected a size such as 65536 or 50MiB, got ${describe(node)}`);
      return fallback;
    }
    const parsed = parseSize(value);
    if (!parsed.ok) {
      this.fail(key, `invalid size ${JSON.stringify(value)}: ${parsed.reason}`);
      return fallback;
    }
    if (parsed.value < min) {
      this.fail(key, `must be at least ${min} bytes, got ${parsed.value}`);
      return fallback;
    }
    return parsed.value;
  }

  duration(key: string, fallback: number, minMs = 1): number {
    const node = this.#values.get(key);
    if (node === undefined) return fallback;
    const value = isScalar(node) ? node.value : undefined;
    if (typeof value !== "string" && typeof value !== "number") {
      this.fail(key, `expected a duration such as 10s, got ${describe(node)}`);
      return fallback;
    }
    const parsed = parseDuration(String(value));
    if (!parsed.ok) {
      this.fail(key, `invalid duration ${JSON.stringify(String(value))}: ${parsed.reason}`);
      return fallback;
    }
    if (parsed.value < minMs) {
      this.fail(key, `must be at least ${formatDuration(minMs)}, got ${value}`);
      return fallback;
    }
    return parsed.value;
  }

  choice<T extends string>(key: string, values: readonly T[], fallback: T): T {
    const node = this.#values.get(key);
    if (node === undefined) return fallback;
    const value = isScalar(node) ? node.value : undefined;
    if (typeof value === "string" && (values as readonly string[]).includes(value)) {
      return value as T;
    }
    const shown = typeof value === "string" ? `"${value}"` : describe(node);
    const guess = typeof value === "string" ? suggest(value, values) : undefined;
    const hint = guess === undefined ? "" : `; did you mean "${guess}"?`;
    this.fail(key, `invalid value ${shown} (expected ${quoteList(values)})${hint}`);
    return fallback;
  }

  /** A path setting, resolved against the base directory. */
  path(key: string, fallback: string, mustExist: boolean): string {
    const value = this.string(key) ?? fallback;
    const absolute = resolvePath(this.#ctx.baseDir, value);
    if (mustExist && this.#ctx.checkFiles) {
      const problem = fileStatus(absolute);
      const shown = this.has(key) ? `"${value}"` : `"${value}" (the default)`;
      if (problem !== null) this.fail(key, `cannot read ${shown} at ${absolute}: ${problem}`);
    }
    return absolute;
  }
}

function asNode(value: unknown): Node | null {
  return value === null || value === undefined ? null : (value as Node);
}

function resolvePath(baseDir: string, path: string): string {
  return isAbsolute(path) ? path : resolve(baseDir, path);
}

function fileProblem(error: unknown): string {
  if (error instanceof Deno.errors.NotFound) return "no such file";
  if (error instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (error instanceof Deno.errors.IsADirectory) return "is a directory";
  return error instanceof Error ? error.message : "cannot be read";
}

function fileStatus(path: string): string | null {
  try {
    const info = Deno.statSync(path);
    if (!info.isFile) return "not a regular file";
    return null;
  } catch (error) {
    return fileProblem(error);
  }
}

function readText(path: string): string | null {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return null;
  }
}

function readListeners(ctx: Context, root: Section): ListenerConfig[] {
  const node = root.raw("listen");
  if (node === undefined) {
    return DEFAULTS.listen.map(({ address, tls }) => {
      const parsed = parseAddress(address);
      if (!parsed.ok) throw new Error("Default listen address is invalid");
      return { address, ...parsed.value, tls };
    });
  }
  if (!isSeq(node)) {
    root.fail("listen", `expected a list of {address, tls} entries, got ${describe(node)}`);
    return [];
  }
  if (node.items.length === 0) root.fail("listen", "at least one listener is required");
  const listeners: ListenerConfig[] = [];
  const seen = new Set<string>();
  node.items.forEach((item, index) => {
    const path = `listen[${index}]`;
    const entry = Section.open(ctx, item, null, path, KEYS.listen, path);
    const address = entry.requiredString("address");
    const tls = entry.choice("tls", TLS_MODES, "implicit");
    if (!entry.has("tls") && entry.node !== null && isMap(entry.node)) entry.missing("tls");
    if (address === "") return;
    const parsed = parseAddress(address);
    if (!parsed.ok) {
      entry.fail("address", `invalid address "${address}": ${parsed.reason}`);
      return;
    }
    const key = `${parsed.value.hostname}:${parsed.value.port}`;
    if (parsed.value.port !== 0 && seen.has(key)) {
      entry.fail("address", `address "${address}" is already used by another listener`);
    }
    seen.add(key);
    listeners.push({ address, ...parsed.value, tls });
  });
  return listeners;
}

function readTls(ctx: Context, root: Section): TlsConfig {
  const tls = Section.open(ctx, root.raw("tls"), root.keyNode("tls"), "tls", KEYS.tls, "tls");
  const list = tls.has("certificates") ? readServerCertificates(ctx, tls) : null;
  const certificate = list?.[0]?.certificate ??
    tls.path("certificate", DEFAULTS.certificate, list === null);
  const privateKey = list?.[0]?.privateKey ??
    tls.path("private_key", DEFAULTS.privateKey, list === null);
  const certificates = list ?? [{ certificate, privateKey, names: [] }];
  const clientAuth = tls.choice("client_auth", CLIENT_AUTH_MODES, DEFAULTS.clientAuth);
  // Without client certificates the CA bundle is read only when it is named explicitly.
  const clientCaDefault = clientAuth === "none" ? [] : DEFAULTS.clientCa;
  const clientCa = readPathList(ctx, tls, "client_ca", clientCaDefault);
  const handshakeTimeoutMs = tls.duration("handshake_timeout", DEFAULTS.handshakeTimeoutMs, 100);
  const maxChainDepth = tls.int("max_chain_depth", DEFAULTS.maxChainDepth, 1, 16);
  const certificateUsername = tls.choice(
    "certificate_username",
    CERTIFICATE_USERNAMES,
    DEFAULTS.certificateUsername,
  );
  if (clientAuth !== "none" && clientCa.length === 0) {
    tls.fail("client_ca", `at least one CA file is required when client_auth is ${clientAuth}`);
  }
  if (ctx.checkFiles && list === null) checkServerKeyPair(ctx, tls, certificate, privateKey);
  const minVersion = readMinVersion(tls);
  const requireExtendedMasterSecret = tls.bool(
    "require_extended_master_secret",
    DEFAULTS.requireExtendedMasterSecret,
  );
  const tickets = Section.open(
    ctx,
    tls.raw("tickets"),
    tls.keyNode("tickets"),
    "tls.tickets",
    KEYS.tickets,
    "tls.tickets",
  );
  return {
    certificate,
    privateKey,
    certificates,
    clientAuth,
    clientCa,
    handshakeTimeoutMs,
    maxChainDepth,
    certificateUsername,
    minVersion,
    requireExtendedMasterSecret,
    tickets: {
      count: tickets.int("count", DEFAULTS.tickets.count, 1, 16),
      keyLifetimeMs: tickets.duration("key_lifetime", DEFAULTS.tickets.keyLifetimeMs, 60_000),
      perConnection: tickets.int("per_connection", DEFAULTS.tickets.perConnection, 0, 10),
      maxUses: tickets.int("max_uses", DEFAULTS.tickets.maxUses, 1, 1000),
      pskKe: tickets.bool("psk_ke", DEFAULTS.tickets.pskKe),
    },
    ...readCrlSettings(ctx, tls, clientAuth, clientCa),
  };
}

/** A host name or a one-label wildcard, as `tls.certificates[].names` takes them. */
const SERVER_NAME =
  /^(\*\.)?[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

/**
 * `tls.certificates`: a non-empty list of {certificate, private_key, names}, each key pair
 * checked like the single one. It replaces `certificate` and `private_key`.
 */
function readServerCertificates(ctx: Context, tls: Section): ServerCertificateConfig[] | null {
  const node = tls.raw("certificates");
  if (tls.has("certificate") || tls.has("private_key")) {
    tls.fail("certificates", "replaces certificate and private_key; give one or the other");
  }
  if (!isSeq(node) || node.items.length === 0) {
    const got = isSeq(node) ? "an empty list" : describeMaybe(asNode(node));
    tls.fail("certificates", `expected a non-empty list of entries, got ${got}`);
    return null;
  }
  const out: ServerCertificateConfig[] = [];
  node.items.forEach((item, index) => {
    const path = `tls.certificates[${index}]`;
    const entry = Section.open(ctx, item, null, path, KEYS.certificates, path);
    if (!entry.has("certificate")) entry.missing("certificate");
    if (!entry.has("private_key")) entry.missing("private_key");
    if (!entry.has("certificate") || !entry.has("private_key")) return;
    const certificate = entry.path("certificate", "", true);
    const privateKey = entry.path("private_key", "", true);
    const namesNode = entry.raw("names");
    const names: string[] = [];
    if (namesNode !== undefined) {
      const items: unknown[] = isSeq(namesNode) ? namesNode.items : [namesNode];
      for (const n of items) {
        const nameNode = asNode(n);
        const value = isScalar(nameNode) && typeof nameNode.value === "string"
          ? nameNode.value.toLowerCase()
          : null;
        if (value === null || !SERVER_NAME.test(value) || value.length > 253) {
          report(
            ctx,
            nameNode ?? namesNode,
            `${path}.names: expected host names, got ${describeMaybe(nameNode)}`,
          );
          continue;
        }
        names.push(value);
      }
    }
    if (ctx.checkFiles) checkServerKeyPair(ctx, entry, certificate, privateKey);
    out.push({ certificate, privateKey, names });
  });
  return out.length > 0 ? out : null;
}

const MIN_VERSIONS = ["1.2", "1.3"] as const;

/** tls.min_version; YAML reads an unquoted 1.2 as a number, which means the same. */
function readMinVersion(tls: Section): "1.2" | "1.3" {
  const node = tls.raw("min_version");
  if (isScalar(node) && (node.value === 1.2 || node.value === 1.3)) {
    return node.value === 1.2 ? "1.2" : "1.3";
  }
  return tls.choice("min_version", MIN_VERSIONS, DEFAULTS.minVersion);
}

function checkServerKeyPair(ctx: Context, tls: Section, certFile: string, keyFile: string): void {
  const before = ctx.issues.length;
  const certPem = readText(certFile);
  const keyPem = readText(keyFile);
  if (certPem === null || keyPem === null || ctx.issues.length !== before) return;
  const problem = checkKeyPair(certPem, keyPem);
  if (problem === null) return;
  switch (problem.kind) {
    case "certificate":
      tls.fail("certificate", `${problem.reason} in ${certFile}`);
      return;
    case "key":
      tls.fail("private_key", `${problem.reason} in ${keyFile}`);
      return;
    case "mismatch":
      tls.fail("private_key", `the private key does not match the certificate in ${certFile}`);
      return;
    default: {
      const unreachable: never = problem;
      throw new Error(`Unknown key pair problem ${JSON.stringify(unreachable)}`);
    }
  }
}

function readPathList(
  ctx: Context,
  section: Section,
  key: string,
  fallback: readonly string[],
  contentProblem: (path: string) => string | null = caProblem,
): string[] {
  const node = section.raw(key);
  if (node === undefined) {
    return fallback.map((p) => {
      const absolute = resolvePath(ctx.baseDir, p);
      if (ctx.checkFiles) {
        const problem = fileStatus(absolute);
        if (problem !== null) {
          section.fail(key, `cannot read "${p}" (the default) at ${absolute}: ${problem}`);
        }
      }
      return absolute;
    });
  }
  const items: unknown[] = isSeq(node) ? node.items : [node];
  const paths: string[] = [];
  items.forEach((item, index) => {
    const itemNode = asNode(item);
    const name = isSeq(node) ? `${section.name(key)}[${index}]` : section.name(key);
    if (!isScalar(itemNode) || typeof itemNode.value !== "string" || itemNode.value === "") {
      report(
        ctx,
        itemNode ?? node,
        `${name}: expected a file path, got ${describeMaybe(itemNode)}`,
      );
      return;
    }
    const absolute = resolvePath(ctx.baseDir, itemNode.value);
    if (ctx.checkFiles) {
      const problem = fileStatus(absolute) ?? contentProblem(absolute);
      if (problem !== null) {
        report(
          ctx,
          itemNode,
          `${name}: cannot read "${itemNode.value}" at ${absolute}: ${problem}`,
        );
      }
    }
    paths.push(absolute);
  });
  return paths;
}

function caProblem(path: string): string | null {
  const pem = readText(path);
  return pem === null ? "cannot be read" : checkCertificates(pem);
}

function describeMaybe(node: Node | null): string {
  return node === null ? "nothing" : describe(node);
}

function readDirectory(ctx: Context, root: Section): DirectoryConfig | null {
  if (!root.has("directory")) return null;
  const dir = Section.open(
    ctx,
    root.raw("directory"),
    root.keyNode("directory"),
    "directory",
    KEYS.directory,
    "directory",
  );
  const url = dir.requiredString("url");
  if (url !== "" && !/^ldaps?:\/\/[^\s/?#]+\/?$/.test(url)) {
    dir.fail("url", `invalid URL "${url}" (expected ldap://host:port or ldaps://host:port)`);
  }
  const starttls = dir.bool("starttls", false);
  if (starttls && url.startsWith("ldaps://")) {
    dir.fail("starttls", "cannot be used with an ldaps:// URL, which is already encrypted");
  }
  const ca = dir.has("ca") ? dir.path("ca", "", true) : null;
  if (
    ca !== null && ctx.checkFiles && !ctx.issues.some((i) => i.message.startsWith("directory.ca:"))
  ) {
    const problem = caProblem(ca);
    if (problem !== null) dir.fail("ca", problem);
  }
  const bindDn = dir.requiredString("bind_dn");
  if (!dir.has("bind_password_file")) dir.missing("bind_password_file");
  const bindPasswordFile = dir.path("bind_password_file", "", dir.has("bind_password_file"));
  if (dir.has("bind_password_file") && ctx.checkFiles) {
    const text = readText(bindPasswordFile);
    if (text !== null && firstLine(text) === "") {
      dir.fail("bind_password_file", `${bindPasswordFile} holds an empty password`);
    }
  }
  const baseDn = dir.requiredString("base_dn");

  const lookup = dir.string("certificate_lookup") ?? null;
  const explicit = dir.has("certificate_mapping");
  let mapping = dir.choice("certificate_mapping", MAPPINGS, "filter");
  let certificateLookup: string | null = null;
  let subjectDnAttribute = dir.string("subject_dn_attribute") ?? null;
  // certificate_lookup may also name the mapping itself, as the directory module reads it:
  // `subject_dn`, `attribute:<name>`, or a filter template.
  if (lookup === "subject_dn" || lookup?.startsWith("attribute:")) {
    const named: CertificateMapping = lookup === "subject_dn" ? "subject_dn" : "attribute";
    if (explicit && mapping !== named) {
      dir.fail("certificate_lookup", `"${lookup}" contradicts certificate_mapping ${mapping}`);
    }
    mapping = named;
    if (named === "attribute") subjectDnAttribute = lookup.slice("attribute:".length).trim();
  } else if (lookup !== null) {
    if (explicit && mapping !== "filter") {
      dir.fail("certificate_lookup", `a filter is only used with certificate_mapping filter`);
    }
    try {
      parseFilterTemplate(lookup);
      certificateLookup = lookup;
    } catch (error) {
      const reason = error instanceof Error ? lowerFirst(error.message) : "invalid filter";
      dir.fail("certificate_lookup", reason);
    }
  } else if (mapping === "filter") {
    certificateLookup = DEFAULTS.certificateLookup;
  }
  if (mapping === "attribute") {
    if (subjectDnAttribute === null) {
      dir.fail("certificate_mapping", 'the "attribute" mapping needs subject_dn_attribute');
    } else if (!isAttributeDescription(subjectDnAttribute)) {
      const key = dir.has("subject_dn_attribute") ? "subject_dn_attribute" : "certificate_lookup";
      dir.fail(key, `invalid attribute name "${subjectDnAttribute}"`);
    }
  }
  const usernameAttribute = dir.string("username_attribute") ?? DEFAULTS.usernameAttribute;
  if (!isAttributeDescription(usernameAttribute)) {
    dir.fail("username_attribute", `invalid attribute name "${usernameAttribute}"`);
  }
  const onError = dir.choice("on_error", ON_ERROR, "deny");
  const cacheTtlMs = dir.duration("cache_ttl", DEFAULTS.cacheTtlMs, 0);
  if (onError === "cached" && cacheTtlMs === 0) {
    dir.fail("on_error", "cached needs a cache_ttl above zero");
  }
  return {
    url,
    starttls,
    ca,
    bindDn,
    bindPasswordFile,
    baseDn,
    certificateMapping: mapping,
    certificateLookup,
    subjectDnAttribute: mapping === "attribute" ? subjectDnAttribute : null,
    usernameAttribute,
    recheckIntervalMs: dir.duration("recheck_interval", DEFAULTS.recheckIntervalMs, 0),
    cacheTtlMs,
    onError,
    timeoutMs: dir.duration("timeout", DEFAULTS.directoryTimeoutMs, 100),
    maxConcurrency: dir.int("max_concurrency", DEFAULTS.maxConcurrency, 1, 256),
    sync: readSyncSetting(dir),
  };
}

/**
 * What server/directory needs to connect: the directory settings with the bind password read
 * from `bind_password_file` (its first line) and the CA file's PEM text.
 */
export async function directoryConfigInput(dir: DirectoryConfig): Promise<DirectoryConfigInput> {
  const password = firstLine(await Deno.readTextFile(dir.bindPasswordFile));
  const mapping: DirectoryMapping = dir.certificateMapping === "subject_dn"
    ? { kind: "subject_dn" }
    : dir.certificateMapping === "attribute"
    ? { kind: "attribute", attribute: dir.subjectDnAttribute ?? "" }
    : { kind: "filter", template: dir.certificateLookup ?? DEFAULTS.certificateLookup };
  return {
    url: dir.url,
    starttls: dir.starttls,
    ...(dir.ca === null ? {} : { ca: await Deno.readTextFile(dir.ca) }),
    bindDn: dir.bindDn,
    bindPassword: password,
    baseDn: dir.baseDn,
    mapping,
    usernameAttribute: dir.usernameAttribute,
    cacheTtlMs: dir.cacheTtlMs,
    onError: dir.onError,
    timeoutMs: dir.timeoutMs,
    maxConcurrency: dir.maxConcurrency,
    recheckIntervalMs: dir.recheckIntervalMs,
    sync: dir.sync,
  };
}

function firstLine(text: string): string {
  const end = text.search(/\r?\n/);
  return end === -1 ? text : text.slice(0, end);
}

function lowerFirst(text: string): string {
  return text.charAt(0).toLowerCase() + text.slice(1);
}

function readLimits(ctx: Context, root: Section): LimitsConfig {
  const limits = Section.open(
    ctx,
    root.raw("limits"),
    root.keyNode("limits"),
    "limits",
    KEYS.limits,
    "limits",
  );
  const maxLiteralSize = limits.size("max_literal_size", DEFAULTS.maxLiteralSize, 1024);
  return {
    maxConnectionsPerUser: limits.int(
      "max_connections_per_user",
      DEFAULTS.maxConnectionsPerUser,
      1,
    ),
    maxConnectionsPerAddress: limits.int(
      "max_connections_per_address",
      DEFAULTS.maxConnectionsPerAddress,
      1,
    ),
    idleTimeoutMs: limits.duration("idle_timeout", DEFAULTS.idleTimeoutMs, 30 * 60_000),
    maxLineLength: limits.size("max_line_length", DEFAULTS.maxLineLength, 8192),
    maxLiteralSize,
    maxMessageSize: limits.size("max_message_size", DEFAULTS.maxMessageSize, 1024),
  };
}

function readImap(ctx: Context, root: Section): ImapConfig {
  const imap = Section.open(ctx, root.raw("imap"), root.keyNode("imap"), "imap", KEYS.imap, "imap");
  return { preauthWithCertificate: imap.bool("preauth_with_certificate", false) };
}

function readLog(ctx: Context, root: Section): LogConfig {
  const log = Section.open(ctx, root.raw("log"), root.keyNode("log"), "log", KEYS.log, "log");
  return {
    level: log.choice("level", LOG_LEVELS, "info"),
    format: log.choice("format", LOG_FORMATS, "text"),
  };
}

// ---- auth: password checks, the authentication cache and the scrypt cost ----

/** The `auth:` section: local password verification (see server/auth/local.ts). */
export interface AuthConfig {
  /** How long a successful password check is reused; 0 turns the cache off. Default 1h. */
  readonly cacheTtlMs: number;
  /** How long a failed password check is reused; 0 turns it off. Default 1m. */
  readonly cacheNegativeTtlMs: number;
  /** Cost of new scrypt hashes; logins re-hash to it. Default ln=15, r=8, p=1. */
  readonly scryptCost: ScryptCost;
}

const AUTH_KEYS = ["cache_ttl", "cache_negative_ttl", "scrypt_cost"] as const;
const SCRYPT_COST_KEYS = ["ln", "r", "p"] as const;

function readAuth(ctx: Context, root: Section): AuthConfig {
  const auth = Section.open(ctx, root.raw("auth"), root.keyNode("auth"), "auth", AUTH_KEYS, "auth");
  const cost = Section.open(
    ctx,
    auth.raw("scrypt_cost"),
    auth.keyNode("scrypt_cost"),
    "auth.scrypt_cost",
    SCRYPT_COST_KEYS,
    "auth.scrypt_cost",
  );
  const scryptCost = {
    ln: cost.int("ln", DEFAULT_SCRYPT_COST.ln, 10, 20),
    r: cost.int("r", DEFAULT_SCRYPT_COST.r, 1, 32),
    p: cost.int("p", DEFAULT_SCRYPT_COST.p, 1, 16),
  };
  let checked: ScryptCost = scryptCost;
  try {
    checkCost(scryptCost);
  } catch {
    auth.fail("scrypt_cost", "needs more than 128 MiB per check (128 * 2^ln * r bytes)");
    checked = DEFAULT_SCRYPT_COST;
  }
  return {
    cacheTtlMs: auth.duration("cache_ttl", 3_600_000, 0),
    cacheNegativeTtlMs: auth.duration("cache_negative_ttl", 60_000, 0),
    scryptCost: checked,
  };
}

// LMTP delivery and quota (`lmtp:` and `quota:` sections).

/** Where the LMTP listener binds: a Unix socket, or a loopback TCP address. */
export type LmtpListenAddress =
  | { readonly transport: "unix"; readonly path: string }
  | { readonly transport: "tcp"; readonly hostname: string; readonly port: number };

export interface LmtpConfig {
  readonly listen: readonly LmtpListenAddress[];
  /** Permissions of the Unix sockets, set after creation. Default 0o660. */
  readonly socketMode: number;
  /** `user[:group]` (names or numeric ids) that will own the Unix sockets, or null. */
  readonly socketOwner: string | null;
  /** The name in the greeting and the Received line. Default: the machine's host name. */
  readonly hostname: string | null;
  /** Largest message; null (the default) means `limits.max_message_size`. */
  readonly maxMessageSize: number | null;
  /** RCPT commands per transaction (at least 100 per RFC 5321, 4.5.3.1.8). Default 100. */
  readonly maxRecipients: number;
  /** Longest line of message text, CRLF excluded (at least 998). Default 64KiB. */
  readonly maxLineLength: number;
  /** Longest time from MAIL to the end of the message. Default 10m. */
  readonly transactionTimeoutMs: number;
  /** A connection without any command for this long is closed. Default 5m. */
  readonly idleTimeoutMs: number;
  /** How long a delivery is remembered to drop an MTA's resend. Default 24h. */
  readonly dedupWindowMs: number;
  /** Separator of `user+detail@domain`. Default `+`; empty turns details off. */
  readonly recipientDelimiter: string;
  /** Deliver `user+detail@…` to the folder `detail` when it exists. Default true. */
  readonly saveToDetailMailbox: boolean;
  /** Directory filter that finds a recipient's entry, with `{address}`. Default `(mail={address})`. */
  readonly directoryFilter: string;
  /** Simultaneous LMTP connections. Default 100. */
  readonly maxConnections: number;
}

export interface QuotaConfig {
  /** Limits of every account; null fields are unlimited. Default: none. */
  readonly default: { readonly storage: number | null; readonly messages: number | null };
  /**
   * Limits of named accounts instead of the default (`quota.accounts.<name>`); a field left
   * out there is unlimited.
   */
  readonly accounts?: ReadonlyMap<
    string,
    { readonly storage: number | null; readonly messages: number | null }
  >;
}

const LMTP_KEYS = [
  "listen",
  "socket_mode",
  "socket_owner",
  "hostname",
  "max_message_size",
  "max_recipients",
  "max_line_length",
  "transaction_timeout",
  "idle_timeout",
  "dedup_window",
  "recipient_delimiter",
  "save_to_detail_mailbox",
  "directory_filter",
  "max_connections",
  "allow_remote",
] as const;
const QUOTA_KEYS = ["default", "accounts"] as const;
const QUOTA_LIMIT_KEYS = ["storage", "messages"] as const;

function readLmtp(ctx: Context, root: Section): LmtpConfig | null {
  if (!root.has("lmtp")) return null;
  const lmtp = Section.open(ctx, root.raw("lmtp"), root.keyNode("lmtp"), "lmtp", LMTP_KEYS, "lmtp");
  const listen: LmtpListenAddress[] = [];
  const node = lmtp.raw("listen");
  if (node === undefined) lmtp.missing("listen");
  const items: unknown[] = node === undefined ? [] : isSeq(node) ? node.items : [node];
  if (node !== undefined && items.length === 0) {
    lmtp.fail("listen", "at least one address is needed");
  }
  // LMTP has no authentication (RFC 2033, Section 6): anyone who reaches the socket can
  // deliver to any mailbox, so it binds only where the operating system restricts access.
  const allowRemote = lmtp.bool("allow_remote", false);
  if (allowRemote) {
    lmtp.fail("allow_remote", "LMTP over TLS is not implemented, so remote LMTP cannot be allowed");
  }
  items.forEach((item, index) => {
    const itemNode = asNode(item);
    const name = `lmtp.listen[${index}]`;
    if (!isScalar(itemNode) || typeof itemNode.value !== "string" || itemNode.value === "") {
      report(ctx, itemNode ?? node, `${name}: expected unix:PATH or HOST:PORT`);
      return;
    }
    const text = itemNode.value;
    if (text.startsWith("unix:")) {
      const path = text.slice(5);
      if (path === "") {
        report(ctx, itemNode, `${name}: the Unix socket path is empty`);
        return;
      }
      listen.push({ transport: "unix", path: resolvePath(ctx.baseDir, path) });
      return;
    }
    const parsed = parseAddress(text);
    if (!parsed.ok) {
      report(ctx, itemNode, `${name}: invalid address "${text}": ${parsed.reason}`);
      return;
    }
    if (!isLoopback(parsed.value.hostname)) {
      report(
        ctx,
        itemNode,
        `${name}: "${text}" is not a loopback address; LMTP is unauthenticated and Postern ` +
          "does not offer it over TLS, so use a Unix socket or 127.0.0.1",
      );
      return;
    }
    listen.push({ transport: "tcp", ...parsed.value });
  });
  let socketMode = 0o660;
  const modeNode = lmtp.raw("socket_mode");
  if (modeNode !== undefined) {
    // YAML 1.2 reads 0660 as the decimal 660: take the digits as written, always octal.
    const scalar = isScalar(modeNode) ? modeNode : undefined;
    const written = typeof scalar?.value === "number"
      ? (scalar.source ?? String(scalar.value))
      : scalar?.value;
    const text = typeof written === "string" ? written.replace(/^0o/, "") : undefined;
    if (text === undefined || !/^0?[0-7]{3}$/.test(text)) {
      lmtp.fail("socket_mode", `expected an octal mode such as "0660", got ${describe(modeNode)}`);
    } else {
      socketMode = parseInt(text, 8);
    }
  }
  const socketOwner = lmtp.string("socket_owner") ?? null;
  if (
    socketOwner !== null &&
    !/^[A-Za-z0-9_.][A-Za-z0-9_.-]*(:[A-Za-z0-9_.][A-Za-z0-9_.-]*)?$/.test(socketOwner)
  ) {
    lmtp.fail("socket_owner", `expected user or user:group, got "${socketOwner}"`);
  }
  const hostname = lmtp.string("hostname") ?? null;
  if (hostname !== null && !/^[A-Za-z0-9.-]+$/.test(hostname)) {
    lmtp.fail("hostname", `"${hostname}" is not a host name`);
  }
  const delimiter = lmtp.raw("recipient_delimiter") === undefined
    ? "+"
    : (lmtp.raw("recipient_delimiter") as Scalar).value;
  let recipientDelimiter = "+";
  if (typeof delimiter !== "string" || delimiter.length > 1 || /[@\s"<>]/.test(delimiter)) {
    lmtp.fail("recipient_delimiter", "expected one character such as + or -, or an empty string");
  } else {
    recipientDelimiter = delimiter;
  }
  const directoryFilter = lmtp.string("directory_filter") ?? "(mail={address})";
  if (!directoryFilter.includes("{address}") || !/^\(.*\)$/.test(directoryFilter)) {
    lmtp.fail(
      "directory_filter",
      'expected an LDAP filter with {address}, e.g. "(mail={address})"',
    );
  }
  return {
    listen,
    socketMode,
    socketOwner,
    hostname,
    maxMessageSize: lmtp.has("max_message_size") ? lmtp.size("max_message_size", 0, 1024) : null,
    maxRecipients: lmtp.int("max_recipients", 100, 1, 10_000),
    maxLineLength: lmtp.size("max_line_length", 64 * 1024, 998),
    transactionTimeoutMs: lmtp.duration("transaction_timeout", 10 * 60_000, 1000),
    idleTimeoutMs: lmtp.duration("idle_timeout", 5 * 60_000, 1000),
    dedupWindowMs: lmtp.duration("dedup_window", 24 * 3_600_000, 0),
    recipientDelimiter,
    saveToDetailMailbox: lmtp.bool("save_to_detail_mailbox", true),
    directoryFilter,
    maxConnections: lmtp.int("max_connections", 100, 1, 100_000),
  };
}

function isLoopback(hostname: string): boolean {
  return hostname === "localhost" || hostname === "::1" || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

function readQuota(ctx: Context, root: Section): QuotaConfig {
  const quota = Section.open(
    ctx,
    root.raw("quota"),
    root.keyNode("quota"),
    "quota",
    QUOTA_KEYS,
    "quota",
  );
  const d = Section.open(
    ctx,
    quota.raw("default"),
    quota.keyNode("default"),
    "quota.default",
    QUOTA_LIMIT_KEYS,
    "quota.default",
  );
  const limits = (section: Section) => ({
    storage: section.has("storage") ? section.size("storage", 0, 1) : null,
    messages: section.has("messages") ? section.int("messages", 0, 1) : null,
  });
  const accounts = new Map<string, QuotaConfig["default"]>();
  const node = quota.raw("accounts");
  if (node !== undefined) {
    if (!isMap(node)) report(ctx, node, `quota.accounts must be a mapping of account names`);
    else {
      for (const pair of (node as YAMLMap<unknown, unknown>).items) {
        const key = asNode(pair.key);
        if (!isScalar(key) || typeof key.value !== "string") {
          report(ctx, key, "keys in quota.accounts must be account names");
          continue;
        }
        const path = `quota.accounts.${key.value}`;
        accounts.set(
          key.value,
          limits(Section.open(ctx, pair.value, key, path, QUOTA_LIMIT_KEYS, path)),
        );
      }
    }
  }
  return { default: limits(d), accounts };
}

// Revocation settings (issue 20): tls.crl, tls.crl_policy and directory.sync.

const CRL_POLICIES = ["soft", "hard"] as const;

function readCrlSettings(
  ctx: Context,
  tls: Section,
  clientAuth: ClientAuthMode,
  clientCa: readonly string[],
): Pick<TlsConfig, "crl" | "crlPolicy"> {
  // Each CRL must be signed by one of the client CAs: read them once for all CRL files.
  let cas: Certificate[] | null = null;
  const issuers = (): Certificate[] => {
    if (cas !== null) return cas;
    cas = [];
    for (const path of clientCa) {
      const pem = readText(path);
      if (pem === null || checkCertificates(pem) !== null) continue;
      cas.push(...pemCertificates(pem).map((der) => parseCertificate(der)));
    }
    return cas;
  };
  const crl = tls.has("crl")
    ? readPathList(ctx, tls, "crl", [], (path) => crlProblem(path, issuers()))
    : [];
  if (crl.length > 0 && clientAuth === "none") {
    tls.fail("crl", "CRLs need client certificates: set client_auth to optional or required");
  }
  const crlPolicy = tls.choice("crl_policy", CRL_POLICIES, "soft");
  if (crlPolicy === "hard" && crl.length === 0) {
    tls.fail("crl_policy", "hard needs at least one file in tls.crl");
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

function readSyncSetting(dir: Section): SyncSetting {
  return dir.choice("sync", SYNC_SETTINGS, "auto");
}

// ---- metrics: and admin: (issue 21) ----

/**
 * The metrics, /healthz and /readyz listener: plain HTTP, or HTTPS with required client
 * certificates when `clientCa` names CAs (the server certificate of `tls:` is presented).
 */
export interface MetricsConfig {
  readonly address: string;
  readonly hostname: string;
  readonly port: number;
  /** Absolute paths of PEM CA files for scraper certificates; empty for plain HTTP. */
  readonly clientCa: readonly string[];
}

/**
 * The admin socket. `auto` (the default) opens it only when `data_dir` is private (no group
 * or other permissions, owned by the server's user): then the socket, bound there with mode
 * 0600, can be reached by nobody else, even in the moment between bind and chmod.
 */
export interface AdminConfig {
  readonly enabled: boolean | "auto";
  /** Absolute path of the Unix socket. Default `<data_dir>/admin.sock`. */
  readonly socket: string;
}

/** The longest Unix socket path the kernel takes (sun_path is 108 bytes with its NUL). */
export const MAX_SOCKET_PATH = 107;

const OBSERVABILITY_KEYS = {
  metrics: ["listen", "client_ca"],
  admin: ["enabled", "socket"],
} as const;

function readObservability(
  ctx: Context,
  root: Section,
  dataDir: string,
): { metrics: MetricsConfig | null; admin: AdminConfig } {
  let metrics: MetricsConfig | null = null;
  if (root.has("metrics")) {
    const section = Section.open(
      ctx,
      root.raw("metrics"),
      root.keyNode("metrics"),
      "metrics",
      OBSERVABILITY_KEYS.metrics,
      "metrics",
    );
    const address = section.requiredString("listen");
    const parsed = address === "" ? null : parseAddress(address);
    if (parsed !== null && !parsed.ok) {
      section.fail("listen", `invalid address "${address}": ${parsed.reason}`);
    } else if (parsed !== null) {
      metrics = { address, ...parsed.value, clientCa: readPathList(ctx, section, "client_ca", []) };
    }
  }
  const section = Section.open(
    ctx,
    root.raw("admin"),
    root.keyNode("admin"),
    "admin",
    OBSERVABILITY_KEYS.admin,
    "admin",
  );
  let enabled: boolean | "auto" = "auto";
  const node = section.raw("enabled");
  if (node !== undefined) {
    const value = isScalar(node) ? node.value : undefined;
    if (typeof value === "boolean" || value === "auto") enabled = value;
    else section.fail("enabled", `expected true, false or auto, got ${describe(node)}`);
  }
  const socket = section.has("socket")
    ? section.path("socket", "", false)
    : join(dataDir, "admin.sock");
  // A default path that is too long only turns `auto` off (serve says so); asked for, it is
  // an error.
  const asked = enabled === true || section.has("socket");
  if (asked && new TextEncoder().encode(socket).length > MAX_SOCKET_PATH) {
    section.fail(
      "socket",
      `the socket path ${socket} is longer than ${MAX_SOCKET_PATH} bytes; set admin.socket`,
    );
  }
  return { metrics, admin: { enabled, socket } };
}

// Mail store (`store:` section).

/** The mail store: embedded SQLite (the default) or a PostgreSQL shared by several nodes. */
export type StoreConfig = SqliteStoreConfig | PostgresStoreConfig;

export interface SqliteStoreConfig {
  readonly kind: "sqlite";
  /** Absolute path of the database file, or null for `<data_dir>/postern.db`. */
  readonly path: string | null;
}

export interface PostgresStoreConfig {
  readonly kind: "postgres";
  /** `postgres://user@host:port/database`, without a password. */
  readonly url: string;
  /** Absolute path of a file holding the password (first line), or null for none. */
  readonly passwordFile: string | null;
  /** Connections per node. Default 10. */
  readonly poolSize: number;
  /**
   * TLS to the server. Default "disable" for a loopback host and "verify-full" otherwise, so
   * that mail never crosses a network in clear unless the file says so.
   */
  readonly tls: "disable" | "require" | "verify-full";
  /** Absolute path of the CA (PEM) that issued the server's certificate, or null for the system's. */
  readonly ca: string | null;
  readonly connectTimeoutMs: number;
}

const STORE_KINDS = ["sqlite", "postgres"] as const;
const STORE_TLS = ["disable", "require", "verify-full"] as const;
const SQLITE_STORE_KEYS = ["kind", "path"] as const;
const POSTGRES_STORE_KEYS = [
  "kind",
  "url",
  "password_file",
  "pool_size",
  "tls",
  "ca",
  "connect_timeout",
] as const;

function readStore(ctx: Context, root: Section): StoreConfig {
  const keys = [...new Set([...SQLITE_STORE_KEYS, ...POSTGRES_STORE_KEYS])];
  const store = Section.open(ctx, root.raw("store"), root.keyNode("store"), "store", keys, "store");
  const kind = store.choice("kind", STORE_KINDS, "sqlite");
  const own: readonly string[] = kind === "sqlite" ? SQLITE_STORE_KEYS : POSTGRES_STORE_KEYS;
  for (const key of keys) {
    if (store.has(key) && !own.includes(key)) store.fail(key, `does not apply to kind ${kind}`);
  }
  if (kind === "sqlite") {
    return { kind, path: store.has("path") ? store.path("path", "", false) : null };
  }
  const url = store.requiredString("url");
  let host = "";
  if (url !== "") {
    let parsed: URL | null = null;
    try {
      parsed = new URL(url);
    } catch {
      store.fail("url", `"${url}" is not a URL such as postgres://postern@db.example.org/postern`);
    }
    if (parsed !== null) {
      host = parsed.hostname.replace(/^\[|\]$/g, "");
      if (parsed.protocol !== "postgres:" && parsed.protocol !== "postgresql:") {
        store.fail("url", `expected a postgres:// URL, got ${parsed.protocol}//`);
      } else if (parsed.password !== "") {
        // Config files get copied and shown; the secret lives in its own file.
        store.fail("url", "must not hold a password: put it in password_file");
      } else if (host === "") {
        store.fail("url", "names no host");
      }
    }
  }
  const passwordFile = store.has("password_file") ? store.path("password_file", "", true) : null;
  const loopback = host === "" || isLoopback(host);
  return {
    kind,
    url,
    passwordFile,
    poolSize: store.int("pool_size", 10, 1, 1000),
    tls: store.choice("tls", STORE_TLS, loopback ? "disable" : "verify-full"),
    ca: store.has("ca") ? store.path("ca", "", true) : null,
    connectTimeoutMs: store.duration("connect_timeout", 10_000, 1000),
  };
}

// ---- server: (issue 15) ----

/** How the server uses the machine's cores. */
export interface ServerSettings {
  /**
   * Accept loops, each a Worker with its own listeners (SO_REUSEPORT) and store connection;
   * `auto` (the default) is one per core. 1 runs everything on the main thread.
   */
  readonly workers: number | "auto";
}

/** More accept loops than this buy nothing and cost a store connection each. */
export const MAX_WORKERS = 256;

function readServer(ctx: Context, root: Section): ServerSettings {
  const section = Section.open(
    ctx,
    root.raw("server"),
    root.keyNode("server"),
    "server",
    ["workers"],
    "server",
  );
  const node = section.raw("workers");
  if (node === undefined || (isScalar(node) && node.value === "auto")) return { workers: "auto" };
  if (!isScalar(node) || typeof node.value !== "number") {
    section.fail("workers", `expected auto or a whole number, got ${describe(node)}`);
    return { workers: "auto" };
  }
  return { workers: section.int("workers", 1, 1, MAX_WORKERS) };
}

/** The number of accept loops `server.workers` asks for on this machine. */
export function workerCount(config: Pick<Config, "server">): number {
  const workers = config.server.workers;
  if (workers !== "auto") return workers;
  return Math.max(1, Math.min(MAX_WORKERS, navigator.hardwareConcurrency || 1));
}
