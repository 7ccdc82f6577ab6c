/** `directory:` — the LDAP directory that client certificates and logins are checked against. */
import * as v from "valibot";
import type { Positions, SettingPath } from "./_positions.ts";
import {
  bool,
  choice,
  describeValue,
  duration,
  int,
  optional,
  path,
  section,
  text,
} from "./_schema.ts";
import { caProblem, firstLine, lowerFirst, readPath, readText } from "./_files.ts";
import {
  DIRECTORY_DEFAULTS,
  type DirectoryConfigInput,
  type DirectoryMapping,
  type DirectoryProblem,
  directoryProblems,
  isAttributeDescription,
  parseCertificateLookup,
  SYNC_SETTINGS,
  type SyncSetting,
} from "../directory/config.ts";
import { type FilterTemplate, parseFilterTemplate } from "../directory/filter_template.ts";
import { formatDuration } from "./values.ts";

/** How a client certificate is tied to a directory entry. */
export const CERTIFICATE_MAPPINGS = ["subject_dn", "filter", "attribute"] as const;
export type CertificateMapping = (typeof CERTIFICATE_MAPPINGS)[number];
/** What to do when the directory cannot be reached: refuse, or trust a recent positive answer. */
export const DIRECTORY_ERROR_POLICIES = ["deny", "cached"] as const;
export type DirectoryErrorPolicy = (typeof DIRECTORY_ERROR_POLICIES)[number];

const DEFAULT_LOOKUP = DIRECTORY_DEFAULTS.mapping.template;

export const directorySchema = section({
  url: v.pipe(
    v.string((i) => `expected text, got ${describeValue(i.input)}`),
    v.regex(
      /^ldaps?:\/\/[^\s/?#]+\/?$/,
      (i) => `invalid URL "${i.input}" (expected ldap://host:port or ldaps://host:port)`,
    ),
  ),
  starttls: optional(bool(), DIRECTORY_DEFAULTS.starttls),
  ca: v.optional(path()),
  bind_dn: text(),
  bind_password_file: path(),
  base_dn: text(),
  certificate_lookup: v.optional(text()),
  certificate_mapping: v.optional(choice(CERTIFICATE_MAPPINGS)),
  subject_dn_attribute: v.optional(text()),
  username_attribute: optional(text(), DIRECTORY_DEFAULTS.usernameAttribute),
  recheck_interval: optional(duration(0), formatDuration(DIRECTORY_DEFAULTS.recheckIntervalMs)),
  cache_ttl: optional(duration(0), formatDuration(DIRECTORY_DEFAULTS.cacheTtlMs)),
  on_error: optional(choice(DIRECTORY_ERROR_POLICIES), DIRECTORY_DEFAULTS.onError),
  timeout: optional(duration(100), formatDuration(DIRECTORY_DEFAULTS.timeoutMs)),
  max_concurrency: optional(int(1, 256), DIRECTORY_DEFAULTS.maxConcurrency),
  sync: optional(choice(SYNC_SETTINGS), DIRECTORY_DEFAULTS.sync),
}, "The LDAP directory that client certificates and password logins are checked against");

/**
 * The `directory:` section as read from the file (paths, not secrets). `directoryConfigInput`
 * turns it into what the directory client (server/directory) runs with.
 */
export interface DirectorySettings {
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
  /** `certificateLookup` parsed (once, here), or null. */
  readonly certificateFilter: FilterTemplate | null;
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

const DIR: SettingPath = ["directory"];
/** Where each rule of `directoryProblems` is reported in the file. */
const RULE_KEYS: { readonly [K in DirectoryProblem["setting"]]: string } = {
  starttls: "starttls",
  ca: "ca",
  usernameAttribute: "username_attribute",
  onError: "on_error",
  recheckIntervalMs: "recheck_interval",
};
const key = (name: string): SettingPath => [...DIR, name];

export function readDirectory(
  file: v.InferOutput<typeof directorySchema>,
  at: Positions,
): DirectorySettings {
  const { url, starttls } = file;
  const rules = directoryProblems({
    url,
    starttls,
    hasCa: file.ca !== undefined,
    usernameAttribute: file.username_attribute,
    onError: file.on_error,
    cacheTtlMs: file.cache_ttl,
    recheckIntervalMs: file.recheck_interval,
  });
  for (const problem of rules) at.fail(key(RULE_KEYS[problem.setting]), problem.message);
  const before = at.issues.length;
  const ca = file.ca === undefined ? null : readPath(at, key("ca"), file.ca, "", true);
  if (ca !== null && at.checkFiles && at.issues.length === before) {
    const problem = caProblem(ca);
    if (problem !== null) at.fail(key("ca"), problem);
  }
  const bindPasswordFile = readPath(
    at,
    key("bind_password_file"),
    file.bind_password_file,
    "",
    true,
  );
  if (at.checkFiles) {
    const text = readText(bindPasswordFile);
    if (text !== null && firstLine(text) === "") {
      at.fail(key("bind_password_file"), `${bindPasswordFile} holds an empty password`);
    }
  }

  const lookup = file.certificate_lookup ?? null;
  const explicit = file.certificate_mapping !== undefined;
  let mapping: CertificateMapping = file.certificate_mapping ?? "filter";
  let certificateLookup: string | null = null;
  let certificateFilter: FilterTemplate | null = null;
  let subjectDnAttribute = file.subject_dn_attribute ?? null;
  // certificate_lookup may also name the mapping itself, as the directory module reads it:
  // `subject_dn`, `attribute:<name>`, or a filter template.
  const named = lookup === null ? null : parseCertificateLookup(lookup);
  if (named !== null && named.kind !== "filter") {
    if (explicit && mapping !== named.kind) {
      at.fail(key("certificate_lookup"), `"${lookup}" contradicts certificate_mapping ${mapping}`);
    }
    mapping = named.kind;
    if (named.kind === "attribute") subjectDnAttribute = named.attribute;
  } else if (named !== null) {
    if (explicit && mapping !== "filter") {
      at.fail(key("certificate_lookup"), `a filter is only used with certificate_mapping filter`);
    }
    try {
      certificateFilter = parseFilterTemplate(named.template);
      certificateLookup = named.template;
    } catch (error) {
      const reason = error instanceof Error ? lowerFirst(error.message) : "invalid filter";
      at.fail(key("certificate_lookup"), reason);
    }
  } else if (mapping === "filter") {
    certificateLookup = DEFAULT_LOOKUP;
    certificateFilter = parseFilterTemplate(DEFAULT_LOOKUP);
  }
  if (mapping === "attribute") {
    if (subjectDnAttribute === null) {
      at.fail(key("certificate_mapping"), 'the "attribute" mapping needs subject_dn_attribute');
    } else if (!isAttributeDescription(subjectDnAttribute)) {
      const where = file.subject_dn_attribute !== undefined
        ? "subject_dn_attribute"
        : "certificate_lookup";
      at.fail(key(where), `invalid attribute name "${subjectDnAttribute}"`);
    }
  }
  const usernameAttribute = file.username_attribute;
  return {
    url,
    starttls,
    ca,
    bindDn: file.bind_dn,
    bindPasswordFile,
    baseDn: file.base_dn,
    certificateMapping: mapping,
    certificateLookup,
    certificateFilter,
    subjectDnAttribute: mapping === "attribute" ? subjectDnAttribute : null,
    usernameAttribute,
    recheckIntervalMs: file.recheck_interval,
    cacheTtlMs: file.cache_ttl,
    onError: file.on_error,
    timeoutMs: file.timeout,
    maxConcurrency: file.max_concurrency,
    sync: file.sync,
  };
}

/**
 * What server/directory needs to connect: the directory settings with the bind password read
 * from `bind_password_file` (its first line) and the CA file's PEM text.
 */
export async function directoryConfigInput(dir: DirectorySettings): Promise<DirectoryConfigInput> {
  const password = firstLine(await Deno.readTextFile(dir.bindPasswordFile));
  const mapping: DirectoryMapping = dir.certificateMapping === "subject_dn"
    ? { kind: "subject_dn" }
    : dir.certificateMapping === "attribute"
    ? { kind: "attribute", attribute: dir.subjectDnAttribute ?? "" }
    : {
      kind: "filter",
      template: dir.certificateLookup ?? DEFAULT_LOOKUP,
      ...(dir.certificateFilter === null ? {} : { parsed: dir.certificateFilter }),
    };
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
