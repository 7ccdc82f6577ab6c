/**
 * LMTP replies: a three-digit code, an enhanced status code (RFC 3463, advertised as
 * ENHANCEDSTATUSCODES per RFC 2034) and one or more lines of text (RFC 5321, Section 4.2).
 */

/** One reply; `lines` has at least one entry and none contains CR or LF. */
export interface LmtpReply {
  readonly code: number;
  /** `class.subject.detail`, e.g. `2.1.5`; null only for the greeting and LHLO lines. */
  readonly status: string | null;
  readonly lines: readonly string[];
}

/** Builds a one-line reply. */
export function reply(code: number, status: string | null, text: string): LmtpReply {
  return { code, status, lines: [text] };
}

/** True for a positive completion (2yz). */
export function isPositive(r: LmtpReply): boolean {
  return r.code >= 200 && r.code < 300;
}

const encoder = new TextEncoder();
// deno-lint-ignore no-control-regex -- a CR or LF in reply text would forge a second reply
const CONTROL = /[\x00-\x1f\x7f]/g;

/**
 * Encodes a reply: `code-text` for all lines but the last, `code text` for the last
 * (RFC 5321, Section 4.2.1). Every line carries the enhanced status code when there is one
 * (RFC 2034, Section 4). Control characters in the text are replaced so that a reply can never
 * split into two.
 */
export function encodeReply(r: LmtpReply): Uint8Array {
  return encoder.encode(formatReply(r));
}

/** The reply as wire text with CRLF line ends. */
export function formatReply(r: LmtpReply): string {
  const code = String(Math.trunc(r.code)).padStart(3, "0").slice(0, 3);
  const prefix = r.status === null ? "" : `${r.status} `;
  const lines = r.lines.length === 0 ? [""] : r.lines;
  let out = "";
  lines.forEach((line, i) => {
    const sep = i === lines.length - 1 ? " " : "-";
    out += `${code}${sep}${prefix}${line.replace(CONTROL, " ")}\r\n`;
  });
  return out;
}
