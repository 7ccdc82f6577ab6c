/** `quota:` — storage and message limits, for every account and per account (RFC 9208). */
import * as v from "valibot";
import { int, optional, section, size, text } from "./_schema.ts";
import type { Positions } from "./_positions.ts";
import type { QuotaLimits } from "../../mailstore/mail_store.ts";
import { isAttributeDescription } from "../directory/config.ts";

const limits = section({
  storage: v.optional(size(1)),
  messages: v.optional(int(1)),
});

export const quotaSchema = section({
  default: optional(limits, {}),
  accounts: optional(
    v.record(
      v.string(),
      limits,
      "@mappingaccount names",
    ),
    {},
  ),
  directory_attribute: v.optional(
    v.pipe(text(), v.check(isAttributeDescription, "must be an LDAP attribute name")),
  ),
  directory_message_attribute: v.optional(
    v.pipe(text(), v.check(isAttributeDescription, "must be an LDAP attribute name")),
  ),
}, "Storage and message limits of every account, and of named accounts");

export interface QuotaConfig {
  /**
   * LDAP attribute holding an account's STORAGE limit in octets (`quota.directory_attribute`;
   * a unit is allowed: 64KiB, 5M), read with the user lookup; where a directory user's entry
   * has one, it replaces the configured storage figure. Needs `directory:`.
   */
  readonly directoryAttribute?: string;
  /**
   * LDAP attribute holding an account's MESSAGE limit (`quota.directory_message_attribute`),
   * read in the same lookup; it replaces the configured message figure. Needs `directory:`.
   */
  readonly directoryMessageAttribute?: string;
  /** Limits of every account; null fields are unlimited. Default: none. */
  readonly default: QuotaLimits;
  /**
   * Limits of named accounts instead of the default (`quota.accounts.<name>`); a field left
   * out there is unlimited.
   */
  readonly accounts?: ReadonlyMap<string, QuotaLimits>;
}

export function readQuota(
  file: v.InferOutput<typeof quotaSchema>,
  at: Positions,
  hasDirectory: boolean,
): QuotaConfig {
  const read = (l: v.InferOutput<typeof limits>): QuotaLimits => ({
    storage: l.storage ?? null,
    messages: l.messages ?? null,
  });
  const attribute = file.directory_attribute;
  const messageAttribute = file.directory_message_attribute;
  for (
    const [key, value] of [["directory_attribute", attribute], [
      "directory_message_attribute",
      messageAttribute,
    ]] as const
  ) {
    if (value !== undefined && !hasDirectory) at.fail(["quota", key], "needs a directory: section");
  }
  return {
    default: read(file.default),
    accounts: new Map(Object.entries(file.accounts).map(([name, l]) => [name, read(l)])),
    ...(attribute !== undefined ? { directoryAttribute: attribute } : {}),
    ...(messageAttribute !== undefined ? { directoryMessageAttribute: messageAttribute } : {}),
  };
}

/**
 * The limits of one account: its `quota.accounts` entry, else `quota.default`; a STORAGE
 * figure from its directory entry (`quota.directory_attribute`, octets) replaces the storage
 * limit of either, and a MESSAGE figure (`quota.directory_message_attribute`) the message
 * limit.
 */
export function quotaLimits(
  config: { readonly quota: QuotaConfig },
  accountName: string,
  directoryStorage?: number | null,
  directoryMessages?: number | null,
): QuotaLimits {
  const configured = config.quota.accounts?.get(accountName) ?? config.quota.default;
  return {
    storage: directoryStorage ?? configured.storage,
    messages: directoryMessages ?? configured.messages,
  };
}
