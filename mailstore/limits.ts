/** Size limits every MailStore enforces, so one request cannot exhaust memory or disk. */
import { MailStoreError } from "./mail_store.ts";

/** Default largest message `append` accepts: 64 MiB (RFC 7889 APPENDLIMIT can advertise it). */
export const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

/** Throws `MailStoreError("limit")` when `raw` is larger than `max` bytes. */
export function checkMessageSize(raw: Uint8Array, max: number): void {
  if (raw.byteLength > max) throw new MailStoreError("limit", "Message is too large");
}
