/**
 * Flag rules shared by every MailStore implementation: system flags are normalised to their
 * RFC 9051 spelling (Section 2.3.2), keywords keep the spelling first stored, and comparisons
 * are case-insensitive.
 */
import type { FlagOperation } from "./mail_store.ts";
import { MailStoreError } from "./mail_store.ts";

/** Most flags one message may carry. */
export const MAX_FLAGS_PER_MESSAGE = 128;

/** Longest accepted flag or keyword. */
export const MAX_FLAG_LENGTH = 255;

const SYSTEM_FLAGS: ReadonlyMap<string, string> = new Map(
  ["\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft", "\\Recent"].map((f) => [
    f.toLowerCase(),
    f,
  ]),
);

/** The \Seen flag, used for the unseen counter. */
export const SEEN = "\\Seen";

/** The \Deleted flag, used by EXPUNGE. */
export const DELETED = "\\Deleted";

/**
 * Returns the canonical spelling of one flag (system flags normalised, keywords as given).
 * Throws `MailStoreError("cannot")` for empty flags, spaces or control characters.
 */
export function normalizeFlag(flag: string): string {
  if (flag.length === 0 || flag.length > MAX_FLAG_LENGTH) {
    throw new MailStoreError("cannot", "Flag must have 1 to 255 characters");
  }
  // deno-lint-ignore no-control-regex
  if (/[\u0000-\u0020\u007f()\{%*"\]]/.test(flag)) {
    throw new MailStoreError("cannot", "Flag contains a forbidden character");
  }
  return SYSTEM_FLAGS.get(flag.toLowerCase()) ?? flag;
}

/** Normalises a flag list and removes case-insensitive duplicates, keeping the first spelling. */
export function normalizeFlags(flags: readonly string[]): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const f of flags) {
    const n = normalizeFlag(f);
    const key = n.toLowerCase();
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(n);
  }
  if (out.length > MAX_FLAGS_PER_MESSAGE) {
    throw new MailStoreError("limit", "Too many flags on one message");
  }
  return out;
}

/** True when `flags` contains `flag`, compared case-insensitively. */
export function hasFlag(flags: readonly string[], flag: string): boolean {
  const key = flag.toLowerCase();
  return flags.some((f) => f.toLowerCase() === key);
}

/**
 * Applies a STORE operation (RFC 9051, Section 6.4.6) to a message's current flags and
 * returns the new list, or null when nothing changed. `change` must already be normalised.
 */
export function applyFlagOperation(
  current: readonly string[],
  op: FlagOperation,
  change: readonly string[],
): string[] | null {
  let next: string[];
  switch (op) {
    case "add": {
      next = [...current];
      for (const f of change) if (!hasFlag(next, f)) next.push(f);
      break;
    }
    case "remove": {
      const drop = new Set(change.map((f) => f.toLowerCase()));
      next = current.filter((f) => !drop.has(f.toLowerCase()));
      break;
    }
    case "replace":
      next = [...change];
      break;
    default: {
      const never: never = op;
      throw new MailStoreError("cannot", `Unknown flag operation ${String(never)}`);
    }
  }
  if (next.length > MAX_FLAGS_PER_MESSAGE) {
    throw new MailStoreError("limit", "Too many flags on one message");
  }
  return sameFlags(current, next) ? null : next;
}

/** True when both lists hold the same flags, ignoring order and case. */
export function sameFlags(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const keys = new Set(a.map((f) => f.toLowerCase()));
  return b.every((f) => keys.has(f.toLowerCase()));
}
