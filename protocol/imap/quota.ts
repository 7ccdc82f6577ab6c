/**
 * QUOTA (RFC 9208): what the session is told about an account's limits and usage. The server
 * injects a `QuotaSource` (the same figures LMTP delivery enforces); without one, QUOTA is not
 * advertised. Every account has one quota root, named like Dovecot's, holding all its
 * mailboxes, with the STORAGE (in units of 1024 octets) and MESSAGE resources.
 */
import type { QuotaLimits } from "../../mailstore/mail_store.ts";
import { ImapError } from "./errors.ts";

/** What an account uses now: octets and messages in all its mailboxes. */
export interface QuotaUsage {
  readonly storage: number;
  readonly messages: number;
}

/** Where the session reads quota figures from. */
export interface QuotaSource {
  /** The limits of an account, by its name; null fields are unlimited. */
  limits(accountName: string): QuotaLimits;
  usage(accountId: number): Promise<QuotaUsage>;
}

/** The name of every account's single quota root. */
export const QUOTA_ROOT = "User quota";

/** The `quota-list` of a QUOTA response (RFC 9208, Section 5.1): `(STORAGE u l MESSAGE u l)`. */
export function quotaList(limits: QuotaLimits, usage: QuotaUsage): string {
  const parts: string[] = [];
  if (limits.storage !== null) {
    parts.push(
      `STORAGE ${Math.ceil(usage.storage / 1024)} ${Math.floor(limits.storage / 1024)}`,
    );
  }
  if (limits.messages !== null) parts.push(`MESSAGE ${usage.messages} ${limits.messages}`);
  return `(${parts.join(" ")})`;
}

/** True when the account has at least one limit, so that it has a quota root. */
export function hasQuotaRoot(limits: QuotaLimits): boolean {
  return limits.storage !== null || limits.messages !== null;
}

/**
 * Refuses a change that adds `octets` and `messages` to the account's usage beyond a limit,
 * with `NO [OVERQUOTA]` (RFC 9208, Section 4.3).
 */
export async function checkQuota(
  source: QuotaSource,
  account: { readonly id: number; readonly name: string },
  octets: number,
  messages: number,
): Promise<void> {
  const limits = source.limits(account.name);
  if (!hasQuotaRoot(limits)) return;
  const usage = await source.usage(account.id);
  if (limits.storage !== null && usage.storage + octets > limits.storage) {
    throw new ImapError("NO", "Storage quota exceeded", "OVERQUOTA");
  }
  if (limits.messages !== null && usage.messages + messages > limits.messages) {
    throw new ImapError("NO", "Message quota exceeded", "OVERQUOTA");
  }
}
