/**
 * IMAP string encoding for FETCH data items (RFC 9051, Section 4.3): NIL, quoted strings and
 * literals.
 */

const encoder = new TextEncoder();

/** Strings longer than this (in octets) are sent as literals rather than quoted. */
export const MAX_QUOTED = 1000;

/**
 * Encodes an nstring: `NIL` for null; a quoted string for short printable 7-bit text without control characters,
 * double quotes or backslashes; a literal `{n}\r\n…` (n in UTF-8 octets) otherwise.
 */
export function nstring(s: string | null): string {
  if (s === null) return "NIL";
  return imapString(s);
}

/** Encodes a string as quoted or literal (RFC 9051, Section 4.3). */
export function imapString(s: string): string {
  if (s.length <= MAX_QUOTED && /^[\t\x20\x21\x23-\x5b\x5d-\x7e]*$/.test(s)) {
    return '"' + s + '"';
  }
  return "{" + encoder.encode(s).length + "}\r\n" + s;
}
