/**
 * Configuration of the LDAP directory check: where the directory is, how to reach it safely,
 * how a client certificate maps to an entry, and how failures and caching behave.
 *
 * The YAML loader (server/config/mod.ts) reads `bind_password_file` and hands over a
 * `DirectoryConfigInput`; `resolveDirectoryConfig()` validates it and fills in the defaults.
 */
import {
  type FilterTemplate,
  FilterTemplateError,
  parseFilterTemplate,
} from "./filter_template.ts";

/** `directory.sync`: how changes reach open sessions (RFC 4533, psearch, or polling). */
export type SyncSetting = "auto" | "content_sync" | "persistent_search" | "poll";
export const SYNC_SETTINGS: readonly SyncSetting[] = [
  "auto",
  "content_sync",
  "persistent_search",
  "poll",
];

/** How a certificate finds its directory entry. */
export type DirectoryMapping =
  /** The certificate's subject DN is the entry's DN (base-scope read, must lie under baseDn). */
  | { readonly kind: "subject_dn" }
  /**
   * An RFC 4515 filter with `{cert.…}` placeholders, searched under baseDn; `parsed` when the
   * caller has parsed it already (the config reader), so that it is parsed once.
   */
  | { readonly kind: "filter"; readonly template: string; readonly parsed?: FilterTemplate }
  /** An entry attribute (e.g. `seeAlso`) holds the certificate's subject DN. */
  | { readonly kind: "attribute"; readonly attribute: string };

/** A validated mapping: a filter carries its parsed template. */
export type ResolvedMapping =
  | Exclude<DirectoryMapping, { kind: "filter" }>
  | { readonly kind: "filter"; readonly template: string; readonly parsed: FilterTemplate };

/** What to do when the directory cannot answer. */
export type DirectoryOnError = "deny" | "cached";

/** A validated directory configuration, defaults applied. */
export interface DirectoryConfig {
  /** `ldap://host[:port]` or `ldaps://host[:port]`. */
  readonly url: string;
  /** Upgrade an `ldap://` connection with StartTLS (RFC 4511, Section 4.14) before binding. */
  readonly starttls: boolean;
  /** Trusted CA for the directory's certificate: PEM contents or a path to a PEM file. */
  readonly ca?: string;
  /** Service account that searches the directory. */
  readonly bindDn: string;
  readonly bindPassword: string;
  /** Where entries are searched. */
  readonly baseDn: string;
  readonly mapping: ResolvedMapping;
  /** Attribute of the entry that names the IMAP user, and that password logins search by. */
  readonly usernameAttribute: string;
  /** How long a positive answer is reused, keyed by certificate fingerprint. 0 disables. */
  readonly cacheTtlMs: number;
  readonly onError: DirectoryOnError;
  /** Budget of one lookup: connect, TLS, bind, search. */
  readonly timeoutMs: number;
  /** Lookups in flight at once; further ones queue. */
  readonly maxConcurrency: number;
  /** Period of the re-check of live certificate sessions. 0 disables. */
  readonly recheckIntervalMs: number;
  /** How the directory tells us of changes (see watcher.ts); polling covers any gap. */
  readonly sync: SyncSetting;
  /**
   * Attribute holding an account's STORAGE quota in octets (`quota.directory_attribute`),
   * read with every user lookup; absent when quotas come from the configuration only.
   */
  readonly quotaAttribute?: string;
  /**
   * Attribute holding an account's MESSAGE quota (`quota.directory_message_attribute`), read
   * with every user lookup like `quotaAttribute`.
   */
  readonly messageQuotaAttribute?: string;
}

/** The configuration as the loader supplies it; omitted fields take their defaults. */
export interface DirectoryConfigInput {
  readonly url: string;
  readonly starttls?: boolean;
  readonly ca?: string;
  readonly bindDn: string;
  readonly bindPassword: string;
  readonly baseDn: string;
  readonly mapping?: DirectoryMapping;
  readonly usernameAttribute?: string;
  readonly cacheTtlMs?: number;
  readonly onError?: DirectoryOnError;
  readonly timeoutMs?: number;
  readonly maxConcurrency?: number;
  readonly recheckIntervalMs?: number;
  readonly sync?: SyncSetting;
  readonly quotaAttribute?: string;
  readonly messageQuotaAttribute?: string;
}

export const DIRECTORY_DEFAULTS = {
  starttls: false,
  mapping: { kind: "filter", template: "(mail={cert.san.email})" },
  usernameAttribute: "uid",
  cacheTtlMs: 60_000,
  onError: "deny",
  timeoutMs: 5_000,
  maxConcurrency: 4,
  recheckIntervalMs: 60_000,
  sync: "auto",
} as const satisfies Partial<Omit<DirectoryConfig, "mapping">> & { mapping: DirectoryMapping };

/** A directory configuration that cannot work. */
export class DirectoryConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DirectoryConfigError";
  }
}

/** Attribute description: a descr or numeric OID, with options (RFC 4512, Section 2.5). */
const ATTRIBUTE_DESCRIPTION = /^(?:[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)*)(?:;[A-Za-z0-9-]+)*$/;

/** Whether `name` is a syntactically valid LDAP attribute description. */
export function isAttributeDescription(name: string): boolean {
  return name.length <= 128 && ATTRIBUTE_DESCRIPTION.test(name);
}

/**
 * Reads the YAML `certificate_lookup` value: `subject_dn`, `attribute:<name>`, or a filter
 * template such as `(mail={cert.san.email})`.
 */
export function parseCertificateLookup(value: string): DirectoryMapping {
  const v = value.trim();
  if (v === "subject_dn") return { kind: "subject_dn" };
  if (v.startsWith("attribute:")) return { kind: "attribute", attribute: v.slice(10).trim() };
  return { kind: "filter", template: v };
}

/** The settings that the rules between directory settings look at. */
export interface DirectoryRuleInput {
  readonly url: string;
  readonly starttls: boolean;
  readonly hasCa: boolean;
  readonly usernameAttribute: string;
  readonly onError: DirectoryOnError;
  readonly cacheTtlMs: number;
  readonly recheckIntervalMs: number;
}

/** A broken rule: the setting it is reported at (a `DirectoryConfig` field) and why. */
export interface DirectoryProblem {
  readonly setting: "starttls" | "ca" | "usernameAttribute" | "onError" | "recheckIntervalMs";
  readonly message: string;
}

/**
 * The rules that tie directory settings together, in one place: the config reader reports
 * them at their line and column, `resolveDirectoryConfig` throws the first.
 */
export function directoryProblems(c: DirectoryRuleInput): DirectoryProblem[] {
  const problems: DirectoryProblem[] = [];
  const ldaps = c.url.startsWith("ldaps://");
  if (c.starttls && ldaps) {
    problems.push({
      setting: "starttls",
      message: "cannot be used with an ldaps:// URL, which is already encrypted",
    });
  }
  if (c.hasCa && !c.starttls && !ldaps) {
    problems.push({
      setting: "ca",
      message: "is only used over TLS: use an ldaps:// URL or starttls",
    });
  }
  if (!isAttributeDescription(c.usernameAttribute)) {
    problems.push({
      setting: "usernameAttribute",
      message: `invalid attribute name "${c.usernameAttribute}"`,
    });
  }
  if (c.onError === "cached" && c.cacheTtlMs === 0) {
    problems.push({ setting: "onError", message: "cached needs a cache_ttl above zero" });
  }
  if (c.recheckIntervalMs !== 0 && c.recheckIntervalMs < 10) {
    problems.push({
      setting: "recheckIntervalMs",
      message: "must be 0s (off) or at least 10ms",
    });
  }
  return problems;
}

/** Validates `input` and applies the defaults. Throws `DirectoryConfigError`. */
export function resolveDirectoryConfig(input: DirectoryConfigInput): DirectoryConfig {
  let url: URL;
  try {
    url = new URL(input.url);
  } catch {
    throw new DirectoryConfigError(`Invalid directory url: ${input.url}`);
  }
  if (url.protocol !== "ldap:" && url.protocol !== "ldaps:") {
    throw new DirectoryConfigError(
      `Directory url must use ldap:// or ldaps://, not ${url.protocol}`,
    );
  }
  if (url.hostname === "") throw new DirectoryConfigError("Directory url has no host");
  if ((url.pathname !== "" && url.pathname !== "/") || url.search !== "" || url.hash !== "") {
    throw new DirectoryConfigError("Directory url must hold only scheme, host and port");
  }
  const starttls = input.starttls ?? DIRECTORY_DEFAULTS.starttls;
  if (input.bindDn.trim() === "") throw new DirectoryConfigError("Directory bind DN is empty");
  // An empty simple-bind password is an unauthenticated bind (RFC 4513, Section 5.1.2).
  if (input.bindPassword === "") {
    throw new DirectoryConfigError("Directory bind password is empty");
  }
  if (input.baseDn.trim() === "") throw new DirectoryConfigError("Directory base DN is empty");

  const mapping = resolveMapping(input.mapping ?? DIRECTORY_DEFAULTS.mapping);
  const usernameAttribute = input.usernameAttribute ?? DIRECTORY_DEFAULTS.usernameAttribute;
  const onError = input.onError ?? DIRECTORY_DEFAULTS.onError;
  if (onError !== "deny" && onError !== "cached") {
    throw new DirectoryConfigError(`on_error must be deny or cached, not ${String(onError)}`);
  }
  const cacheTtlMs = integer("cache TTL", input.cacheTtlMs, DIRECTORY_DEFAULTS.cacheTtlMs, 0);
  const recheckIntervalMs = integer(
    "recheck interval",
    input.recheckIntervalMs,
    DIRECTORY_DEFAULTS.recheckIntervalMs,
    0,
  );
  const [problem] = directoryProblems({
    url: input.url,
    starttls,
    hasCa: input.ca !== undefined,
    usernameAttribute,
    onError,
    cacheTtlMs,
    recheckIntervalMs,
  });
  if (problem !== undefined) {
    throw new DirectoryConfigError(`Directory ${problem.setting}: ${problem.message}`);
  }
  const sync = input.sync ?? DIRECTORY_DEFAULTS.sync;
  if (!SYNC_SETTINGS.includes(sync)) {
    throw new DirectoryConfigError(`sync must be ${SYNC_SETTINGS.join(", ")}, not ${String(sync)}`);
  }
  for (const name of [input.quotaAttribute, input.messageQuotaAttribute]) {
    if (name !== undefined && !isAttributeDescription(name)) {
      throw new DirectoryConfigError(`Invalid quota attribute: ${name}`);
    }
  }
  return {
    url: `${url.protocol}//${url.host}`,
    starttls,
    ...(input.ca !== undefined ? { ca: input.ca } : {}),
    bindDn: input.bindDn,
    bindPassword: input.bindPassword,
    baseDn: input.baseDn,
    mapping,
    usernameAttribute,
    cacheTtlMs,
    onError,
    timeoutMs: integer("timeout", input.timeoutMs, DIRECTORY_DEFAULTS.timeoutMs, 1),
    maxConcurrency: integer(
      "max concurrency",
      input.maxConcurrency,
      DIRECTORY_DEFAULTS.maxConcurrency,
      1,
      256,
    ),
    recheckIntervalMs,
    sync,
    ...(input.quotaAttribute !== undefined ? { quotaAttribute: input.quotaAttribute } : {}),
    ...(input.messageQuotaAttribute !== undefined
      ? { messageQuotaAttribute: input.messageQuotaAttribute }
      : {}),
  };
}

/** The CA PEM: `ca` itself when it holds a PEM block, else the contents of the file it names. */
export function loadCaPem(ca: string): string {
  if (ca.includes("-----BEGIN")) return ca;
  let pem: string;
  try {
    pem = Deno.readTextFileSync(ca);
  } catch (e) {
    throw new DirectoryConfigError(
      `Cannot read directory CA file ${ca}: ${e instanceof Error ? e.message : String(e)}`,
    );
  }
  if (!pem.includes("-----BEGIN CERTIFICATE-----")) {
    throw new DirectoryConfigError(`Directory CA file ${ca} holds no PEM certificate`);
  }
  return pem;
}

function integer(
  what: string,
  value: number | undefined,
  fallback: number,
  min: number,
  max = 86_400_000,
): number {
  const v = value ?? fallback;
  if (!Number.isSafeInteger(v) || v < min || v > max) {
    throw new DirectoryConfigError(`Directory ${what} must be an integer from ${min} to ${max}`);
  }
  return v;
}

function resolveMapping(mapping: DirectoryMapping): ResolvedMapping {
  switch (mapping.kind) {
    case "subject_dn":
      return mapping;
    case "filter":
      try {
        return {
          kind: "filter",
          template: mapping.template,
          parsed: mapping.parsed ?? parseFilterTemplate(mapping.template),
        };
      } catch (e) {
        if (e instanceof FilterTemplateError) throw new DirectoryConfigError(e.message);
        throw e;
      }
    case "attribute":
      if (!isAttributeDescription(mapping.attribute)) {
        throw new DirectoryConfigError(`Invalid mapping attribute: ${mapping.attribute}`);
      }
      return mapping;
    default: {
      const never: never = mapping;
      throw new DirectoryConfigError(`Unknown mapping: ${JSON.stringify(never)}`);
    }
  }
}
