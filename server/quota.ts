/**
 * Per-account quota: the one place that says what an account may store. LMTP delivery
 * refuses mail over it (552 5.2.2), and IMAP QUOTA (RFC 9208) reads the same figures (the
 * `QuotaSource` that server/stack.ts gives the IMAP sessions).
 */
import type { Config } from "./config.ts";
import type { MailStore, QuotaLimits } from "../mailstore/mail_store.ts";

/** What an account uses now (RFC 9208 STORAGE in octets, MESSAGE). */
export interface QuotaUsage {
  readonly storage: number;
  readonly messages: number;
}

/**
 * The limits of one account: its `quota.accounts` entry, else `quota.default`; a STORAGE
 * figure from its directory entry (`quota.directory_attribute`, octets) replaces the storage
 * limit of either.
 */
export function quotaLimits(
  config: Pick<Config, "quota">,
  accountName: string,
  directoryStorage?: number | null,
): QuotaLimits {
  const configured = config.quota.accounts?.get(accountName) ?? config.quota.default;
  if (directoryStorage === undefined || directoryStorage === null) return configured;
  return { storage: directoryStorage, messages: configured.messages };
}

/** True when no limit applies, so that callers can skip counting. */
export function isUnlimited(limits: QuotaLimits): boolean {
  return limits.storage === null && limits.messages === null;
}

/** Sums the account's mailboxes. */
export async function quotaUsage(
  store: Pick<MailStore, "listMailboxes">,
  accountId: number,
): Promise<QuotaUsage> {
  let storage = 0;
  let messages = 0;
  for (const m of await store.listMailboxes(accountId)) {
    storage += m.size;
    messages += m.messages;
  }
  return { storage, messages };
}
