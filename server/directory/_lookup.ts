/**
 * The directory's LDAP searches on a bound service connection: the entry of a client
 * certificate (found by filter template, by subject attribute or at the subject's own DN) and
 * whether it still holds that certificate, the entry of a password login and the bind as it,
 * and the recipient of an LMTP address. OpenLDAP cannot match a whole DER certificate in a
 * filter, so the stored values are fetched and compared here (RFC 4523, Section 2.1).
 */
import { timingSafeEqual } from "node:crypto";
import { Buffer } from "node:buffer";
import {
  type Client,
  EqualityFilter,
  escapeFilter,
  ExtensibleFilter,
  type Filter,
  InvalidCredentialsError,
  InvalidDNSyntaxError,
  NoSuchObjectError,
  ResultCodeError,
  SizeLimitExceededError,
} from "ldapts";
import { getLogger } from "@logtape/logtape";
import type { CertificateIdentity } from "../../protocol/x509/identity.ts";
import type { DirectoryConfig } from "./config.ts";
import { parseSize } from "../config/values.ts";
import { fillFilterTemplate, type FilterTemplate } from "./filter_template.ts";
import {
  denial,
  type DirectoryDenial,
  type DirectoryVerdict,
  type EntryQuota,
  type PasswordVerdict,
  type RecipientLookup,
} from "./verdict.ts";

const CERTIFICATE_ATTRIBUTE = "userCertificate;binary";
/** Some servers answer a `;binary` request under the bare name (RFC 4522, Section 2). */
const CERTIFICATE_ATTRIBUTE_BARE = "userCertificate";

const log = getLogger(["postern", "directory"]);

type LookupOutcome =
  | { readonly kind: "entries"; readonly entries: readonly LdapEntry[] }
  | { readonly kind: "denied"; readonly denial: DirectoryDenial };

type LdapEntry = { dn: string; [attribute: string]: Buffer | Buffer[] | string[] | string };

/**
 * Finds the one entry that maps to `identity` and checks that it still holds this very
 * certificate (byte for byte, in constant time) and names a user.
 */
export async function lookupCertificate(
  client: Client,
  config: DirectoryConfig,
  template: FilterTemplate | undefined,
  identity: CertificateIdentity,
): Promise<DirectoryVerdict> {
  const { usernameAttribute } = config;
  const found = await findEntries(client, config, template, identity);
  if (found.kind === "denied") return found.denial;
  const [entry, extra] = found.entries;
  if (entry === undefined) return denial("no_entry", "No entry matched the certificate");
  if (extra !== undefined) {
    return denial("several_entries", `${found.entries.length} entries matched the certificate`);
  }
  const stored = [
    ...buffers(attribute(entry, CERTIFICATE_ATTRIBUTE)),
    ...buffers(attribute(entry, CERTIFICATE_ATTRIBUTE_BARE)),
  ];
  if (!stored.some((der) => sameBytes(der, identity.der))) {
    return denial(
      "not_in_entry",
      `The entry's ${stored.length} certificate value(s) do not include this certificate`,
    );
  }
  const username = firstString(attribute(entry, usernameAttribute));
  if (username === undefined) {
    return denial("no_username", `The entry has no ${usernameAttribute} value`);
  }
  return { ok: true, username, entryDn: entry.dn, cached: false, ...entryQuota(config, entry) };
}

/** The attributes a user lookup reads: the username, and the quota attributes if configured. */
function userAttributes(config: DirectoryConfig): string[] {
  return [config.usernameAttribute, config.quotaAttribute, config.messageQuotaAttribute]
    .filter((a) => a !== undefined);
}

/** Longest quota value read; a longer one is not a figure anyone meant. */
const MAX_QUOTA_TEXT = 32;

/**
 * The entry's quotas: STORAGE in octets (a whole number, or a size with a unit as the
 * configuration takes: 64KiB, 5M, 1G) and MESSAGE (a whole number). Each is null when the
 * entry has no usable value, and absent when its attribute is not configured.
 */
function entryQuota(
  config: DirectoryConfig,
  entry: LdapEntry,
): { quota?: EntryQuota; messageQuota?: EntryQuota } {
  const read = (name: string, what: string, parse: (text: string) => number | null) => {
    const value = firstString(attribute(entry, name))?.trim();
    if (value === undefined) return null;
    const n = value.length <= MAX_QUOTA_TEXT ? parse(value) : null;
    if (n === null) {
      log.warn("Ignored the {attribute} value of {dn}: not {what}", {
        attribute: name,
        dn: entry.dn,
        what,
      });
    }
    return n;
  };
  const storage = config.quotaAttribute;
  const messages = config.messageQuotaAttribute;
  return {
    ...(storage === undefined ? {} : {
      quota: read(storage, "a number of octets", (text) => {
        const parsed = parseSize(text);
        return parsed.ok ? parsed.value : null;
      }),
    }),
    ...(messages === undefined ? {} : {
      messageQuota: read(messages, "a number of messages", (text) => {
        const n = /^\d{1,15}$/.test(text) ? Number(text) : NaN;
        return Number.isSafeInteger(n) ? n : null;
      }),
    }),
  };
}

/** Searches the entries that map to `identity`, per the configured mapping. */
async function findEntries(
  client: Client,
  config: DirectoryConfig,
  template: FilterTemplate | undefined,
  identity: CertificateIdentity,
): Promise<LookupOutcome> {
  const { mapping, baseDn } = config;
  const attributes = [...userAttributes(config), CERTIFICATE_ATTRIBUTE];
  const common = {
    attributes,
    explicitBufferAttributes: [CERTIFICATE_ATTRIBUTE, CERTIFICATE_ATTRIBUTE_BARE],
    // Two are enough to tell "exactly one" from "several".
    sizeLimit: 2,
    timeLimit: Math.max(1, Math.ceil(config.timeoutMs / 1000)),
  };
  let base = baseDn;
  let scope: "base" | "sub" = "sub";
  let filter: Filter | string;
  switch (mapping.kind) {
    case "filter": {
      const f = template === undefined ? undefined : fillFilterTemplate(template, identity);
      if (f === undefined) {
        return {
          kind: "denied",
          denial: denial("no_lookup_value", "The certificate lacks a field the filter needs"),
        };
      }
      filter = f;
      break;
    }
    case "attribute":
      if (identity.subject === "") {
        return {
          kind: "denied",
          denial: denial("no_lookup_value", "The certificate has an empty subject"),
        };
      }
      filter = new EqualityFilter({ attribute: mapping.attribute, value: identity.subject });
      break;
    case "subject_dn":
      if (identity.subject === "") {
        return {
          kind: "denied",
          denial: denial("no_lookup_value", "The certificate has an empty subject"),
        };
      }
      base = identity.subject;
      scope = "base";
      // A base-scope read of the subject's own DN, filtered with OpenLDAP's dnSubtreeMatch
      // on entryDN (RFC 5020): the server compares normalised DNs, so an entry outside
      // baseDn never matches, however the subject spells its RDNs.
      filter = new ExtensibleFilter({
        matchType: "entryDN",
        rule: "dnSubtreeMatch",
        value: baseDn,
      });
      break;
    default: {
      const never: never = mapping;
      throw new Error(`Unknown mapping ${JSON.stringify(never)}`);
    }
  }
  try {
    const result = await client.search(base, { ...common, scope, filter });
    return { kind: "entries", entries: result.searchEntries };
  } catch (e) {
    if (e instanceof NoSuchObjectError || e instanceof InvalidDNSyntaxError) {
      return { kind: "entries", entries: [] };
    }
    if (e instanceof SizeLimitExceededError) {
      return {
        kind: "denied",
        denial: denial("several_entries", "More entries matched than the size limit"),
      };
    }
    throw e;
  }
}

/**
 * Finds the one entry whose username attribute equals `username`, then binds as that entry
 * (RFC 4513, Section 5.1.3) on `client`, which must not be reused as a service connection.
 */
export async function lookupPassword(
  client: Client,
  config: DirectoryConfig,
  username: string,
  password: string,
): Promise<PasswordVerdict> {
  const { usernameAttribute, baseDn } = config;
  const result = await client.search(baseDn, {
    scope: "sub",
    filter: new EqualityFilter({ attribute: usernameAttribute, value: username }),
    attributes: userAttributes(config),
    sizeLimit: 2,
    timeLimit: Math.max(1, Math.ceil(config.timeoutMs / 1000)),
  }).catch((e) => {
    if (e instanceof SizeLimitExceededError) return undefined;
    throw e;
  });
  const entries = result?.searchEntries;
  if (entries === undefined || entries.length > 1) {
    return { ok: false, reason: "several_entries", detail: "Several entries have that name" };
  }
  const entry = entries[0];
  if (entry === undefined) {
    return { ok: false, reason: "no_entry", detail: "No entry has that name" };
  }
  try {
    await client.bind(entry.dn, password);
  } catch (e) {
    if (e instanceof ResultCodeError) {
      const detail = e instanceof InvalidCredentialsError
        ? "Wrong password"
        : `User bind refused with LDAP result ${e.code}`;
      return { ok: false, reason: "invalid_credentials", detail };
    }
    throw e;
  }
  const canonical = firstString(attribute(entry, usernameAttribute)) ?? username;
  return { ok: true, username: canonical, ...entryQuota(config, entry) };
}

/**
 * Finds the one entry matching the recipient filter template `filter` for `address` and the
 * user it names; several entries count as none.
 */
export async function searchRecipient(
  client: Client,
  config: DirectoryConfig,
  address: string,
  filter: string,
): Promise<RecipientLookup> {
  const { baseDn, usernameAttribute } = config;
  const result = await client.search(baseDn, {
    scope: "sub",
    filter: recipientFilter(filter, address),
    attributes: userAttributes(config),
    sizeLimit: 2,
    timeLimit: Math.max(1, Math.ceil(config.timeoutMs / 1000)),
  }).catch((e) => {
    if (e instanceof SizeLimitExceededError) return undefined;
    if (e instanceof NoSuchObjectError) return { searchEntries: [] };
    throw e;
  });
  const entries = result?.searchEntries;
  if (entries === undefined || entries.length !== 1) {
    if (entries === undefined || entries.length > 1) {
      log.warn("Several directory entries match the recipient {address}", { address });
    }
    return { kind: "none" };
  }
  const username = firstString(attribute(entries[0]!, usernameAttribute));
  return username === undefined
    ? { kind: "none" }
    : { kind: "found", username, ...entryQuota(config, entries[0]!) };
}

/**
 * The search filter of a recipient lookup. The common `(attr={address})` form becomes an
 * equality filter built directly, which keeps UTF-8 addresses intact (ldapts' string parser
 * mangles escaped bytes of 0x80 and above); any other template gets the address escaped with
 * ldapts' `escapeFilter` (RFC 4515, Section 3).
 */
export function recipientFilter(template: string, address: string): Filter | string {
  const simple = /^\(([A-Za-z][A-Za-z0-9-]*)=\{address\}\)$/.exec(template);
  if (simple !== null) return new EqualityFilter({ attribute: simple[1]!, value: address });
  const parts = template.split("{address}");
  const strings = Object.assign([...parts], { raw: [...parts] }) as TemplateStringsArray;
  return escapeFilter(strings, ...parts.slice(1).map(() => address));
}

/** An attribute of an entry, its description matched case-insensitively (RFC 4512, 2.5). */
function attribute(entry: LdapEntry, name: string): LdapEntry[string] | undefined {
  const want = name.toLowerCase();
  for (const [k, v] of Object.entries(entry)) {
    if (k !== "dn" && k.toLowerCase() === want) return v;
  }
  return undefined;
}

/** ldapts gives a single value as a scalar and several as an array; this always gives a list. */
function buffers(value: LdapEntry[string] | undefined): Buffer[] {
  if (value === undefined) return [];
  const list = Array.isArray(value) ? value : [value];
  const out: Buffer[] = [];
  for (const v of list) if (Buffer.isBuffer(v)) out.push(v);
  return out;
}

function firstString(value: LdapEntry[string] | undefined): string | undefined {
  if (value === undefined) return undefined;
  const first = Array.isArray(value) ? value[0] : value;
  if (first === undefined) return undefined;
  const s = typeof first === "string" ? first : first.toString("utf8");
  return s === "" ? undefined : s;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
