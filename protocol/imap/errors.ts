/**
 * Errors of the IMAP engine. An `ImapError` carries the tagged status it is answered with, an
 * optional response code (RFC 9051, Section 7.1) and a text safe to show to the peer.
 */

/** Tagged status of a failed command (RFC 9051, Section 7.1). */
export type FailureStatus = "NO" | "BAD";

/** A command failure that is answered with a tagged NO or BAD. */
export class ImapError extends Error {
  readonly status: FailureStatus;
  /** Response code without brackets, e.g. `TRYCREATE` or `TOOBIG`, or null. */
  readonly code: string | null;
  constructor(status: FailureStatus, text: string, code: string | null = null) {
    super(text);
    this.name = "ImapError";
    this.status = status;
    this.code = code;
  }
}

/** A syntax error: answered with a tagged BAD, and the session goes on. */
export function badSyntax(text: string): ImapError {
  return new ImapError("BAD", text);
}
