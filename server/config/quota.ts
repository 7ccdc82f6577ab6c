/** `quota:` — storage and message limits, for every account and per account (RFC 9208). */
import * as v from "valibot";
import { int, optional, section, size } from "./_schema.ts";
import type { QuotaLimits } from "../../mailstore/mail_store.ts";

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
}, "Storage and message limits of every account, and of named accounts");

export interface QuotaConfig {
  /** Limits of every account; null fields are unlimited. Default: none. */
  readonly default: QuotaLimits;
  /**
   * Limits of named accounts instead of the default (`quota.accounts.<name>`); a field left
   * out there is unlimited.
   */
  readonly accounts?: ReadonlyMap<string, QuotaLimits>;
}

export function readQuota(file: v.InferOutput<typeof quotaSchema>): QuotaConfig {
  const read = (l: v.InferOutput<typeof limits>): QuotaLimits => ({
    storage: l.storage ?? null,
    messages: l.messages ?? null,
  });
  return {
    default: read(file.default),
    accounts: new Map(Object.entries(file.accounts).map(([name, l]) => [name, read(l)])),
  };
}

/** The limits of one account: its `quota.accounts` entry, else `quota.default`. */
export function quotaLimits(
  config: { readonly quota: QuotaConfig },
  accountName: string,
): QuotaLimits {
  return config.quota.accounts?.get(accountName) ?? config.quota.default;
}
