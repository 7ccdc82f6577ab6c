/**
 * Mailbox name rules shared by every MailStore implementation: "/" is the hierarchy separator,
 * names are UTF-8, and INBOX is case-insensitive (RFC 9051, Section 5.1).
 */
import type { SpecialUse } from "./mail_store.ts";
import { MailStoreError } from "./mail_store.ts";

/** The hierarchy delimiter every store uses (RFC 9051, Section 5.1.1). */
export const MAILBOX_SEPARATOR = "/";

/** Longest accepted mailbox name, in UTF-16 code units (keeps LIST responses bounded). */
export const MAX_MAILBOX_NAME_LENGTH = 512;

/** Most mailboxes one account may own. */
export const MAX_MAILBOXES_PER_ACCOUNT = 10_000;

/** Longest accepted account name. */
export const MAX_ACCOUNT_NAME_LENGTH = 256;

/** Mailboxes every new account gets, with their SPECIAL-USE attributes (RFC 6154). */
export const DEFAULT_MAILBOXES: readonly (readonly [string, SpecialUse | null])[] = [
  ["INBOX", null],
  ["Sent", "\\Sent"],
  ["Drafts", "\\Drafts"],
  ["Trash", "\\Trash"],
  ["Junk", "\\Junk"],
  ["Archive", "\\Archive"],
];

const SPECIAL_USES: ReadonlySet<string> = new Set([
  "\\Sent",
  "\\Drafts",
  "\\Trash",
  "\\Junk",
  "\\Archive",
  "\\All",
  "\\Flagged",
]);

/**
 * Validates a mailbox name and returns its canonical form: a first component equal to "INBOX"
 * in any case is spelt "INBOX" (RFC 9051, Section 5.1). Throws `MailStoreError("cannot")` for
 * empty components, control characters or a leading/trailing separator, and "limit" when the
 * name is too long.
 */
export function normalizeMailboxName(name: string): string {
  if (name.length > MAX_MAILBOX_NAME_LENGTH) {
    throw new MailStoreError("limit", "Mailbox name is too long");
  }
  if (name.length === 0) throw new MailStoreError("cannot", "Mailbox name is empty");
  // deno-lint-ignore no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) {
    throw new MailStoreError("cannot", "Mailbox name contains control characters");
  }
  const parts = name.split(MAILBOX_SEPARATOR);
  if (parts.some((p) => p.length === 0)) {
    throw new MailStoreError("cannot", "Mailbox name has an empty hierarchy level");
  }
  if (parts[0]!.toUpperCase() === "INBOX") parts[0] = "INBOX";
  return parts.join(MAILBOX_SEPARATOR);
}

/** True when `name` is INBOX itself (already normalised). */
export function isInbox(name: string): boolean {
  return name === "INBOX";
}

/** True when `child` lies strictly below `parent` in the hierarchy. */
export function isDescendant(child: string, parent: string): boolean {
  return child.startsWith(parent + MAILBOX_SEPARATOR);
}

/** Checks an account name: non-empty, bounded, no control characters or whitespace. */
export function validateAccountName(name: string): void {
  if (name.length === 0 || name.length > MAX_ACCOUNT_NAME_LENGTH) {
    throw new MailStoreError("cannot", "Account name must have 1 to 256 characters");
  }
  // deno-lint-ignore no-control-regex
  if (/[\u0000-\u0020\u007f]/.test(name)) {
    throw new MailStoreError("cannot", "Account name contains spaces or control characters");
  }
}

/** Checks a SPECIAL-USE attribute against the RFC 6154 set. */
export function validateSpecialUse(use: string | null | undefined): SpecialUse | null {
  if (use === null || use === undefined) return null;
  if (!SPECIAL_USES.has(use)) throw new MailStoreError("cannot", "Unknown special-use attribute");
  return use as SpecialUse;
}

/** Longest delivery address accepted (RFC 5321, Section 4.5.3.1.3, without the brackets). */
export const MAX_ADDRESS_LENGTH = 254;

/**
 * The stored form of a delivery address: trimmed and lower-cased. Throws
 * `MailStoreError("cannot")` when it is not `local@domain` or too long.
 */
export function normalizeAddress(address: string): string {
  const a = address.trim().toLowerCase();
  const at = a.lastIndexOf("@");
  if (
    at <= 0 || at === a.length - 1 || a.length > MAX_ADDRESS_LENGTH || /[\s<>]/.test(a)
  ) {
    throw new MailStoreError("cannot", "Not a valid address");
  }
  return a;
}
