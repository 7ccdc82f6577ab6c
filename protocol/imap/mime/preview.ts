/**
 * The PREVIEW of a message (RFC 8970, Section 3): up to 256 characters of plain text from the
 * first text part of its body, transfer- and charset-decoded, with HTML tags stripped when the
 * message has only an HTML body, quoted lines (`>`) left out, control characters and whitespace
 * runs collapsed to one space. Computed once at APPEND into the stored summary. */
import { decodeTransfer } from "./decode.ts";
import { decodeCharset } from "./header.ts";
import type { MimePart } from "./parse.ts";
import { htmlToText } from "./search_text.ts";

/** Longest preview, in characters (RFC 8970, Section 3). */
export const MAX_PREVIEW = 256;

/** Octets of a part decoded for the preview: enough for 256 characters after HTML stripping. */
const MAX_SOURCE = 64 * 1024;

/** Depth of multiparts searched for the body. */
const MAX_DEPTH = 32;

function isAttachment(part: MimePart): boolean {
  return part.disposition?.value.toLowerCase() === "attachment";
}

/**
 * The part the preview comes from: the first inline text/plain part in depth-first order, the
 * text/plain alternative of a multipart/alternative, else the first inline text/html part;
 * attached messages are not the body.
 */
function bodyPart(part: MimePart, depth: number, subtype: "plain" | "html"): MimePart | null {
  if (depth > MAX_DEPTH) return null;
  if (part.type === "multipart") {
    for (const child of part.children) {
      const found = bodyPart(child, depth + 1, subtype);
      if (found !== null) return found;
    }
    return null;
  }
  return part.type === "text" && part.subtype === subtype && !isAttachment(part) ? part : null;
}

/** The preview text of a parsed message; "" when it has no text body. */
export function preview(raw: Uint8Array, root: MimePart): string {
  const part = bodyPart(root, 0, "plain") ?? bodyPart(root, 0, "html");
  if (part === null) return "";
  const end = Math.min(part.bodyEnd, part.bodyStart + MAX_SOURCE);
  const decoded = decodeTransfer(raw.subarray(part.bodyStart, end), part.encoding);
  if (!decoded.ok) return "";
  const charset = part.params.find((p) => p.name === "charset")?.value ?? null;
  let text = decodeCharset(decoded.bytes, charset);
  if (part.subtype === "html") text = htmlToText(text);
  else text = withoutQuotes(text);
  return truncate(text.replace(/[\s\p{Cc}]+/gu, " ").trim(), MAX_PREVIEW);
}

/** Drops quoted lines (`>`), which repeat an earlier message. */
function withoutQuotes(text: string): string {
  return text.split(/\r?\n/).filter((line) => !line.startsWith(">")).join("\n");
}

/** The first `max` characters (code points, so that no surrogate pair is split). */
function truncate(s: string, max: number): string {
  if (s.length <= max) return s;
  let out = "";
  let n = 0;
  for (const ch of s) {
    if (n++ === max) break;
    out += ch;
  }
  return out.trimEnd();
}
