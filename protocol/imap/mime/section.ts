/**
 * Section specifications of FETCH BODY[...] and BINARY[...] (RFC 9051, Section 6.4.5) and the
 * extraction of the addressed bytes from a parsed message.
 */

import { decodeTransfer, type TransferDecodeResult } from "./decode.ts";
import type { MimePart } from "./parse.ts";

/** The text part of a section specification. */
export const SectionText = {
  header: "HEADER",
  headerFields: "HEADER.FIELDS",
  headerFieldsNot: "HEADER.FIELDS.NOT",
  text: "TEXT",
  mime: "MIME",
} as const;
export type SectionText = typeof SectionText[keyof typeof SectionText];

/** A parsed section specification: a part path (1-based) and an optional text specifier. */
export interface SectionSpec {
  readonly path: readonly number[];
  readonly text: SectionText | null;
  /** Field names for HEADER.FIELDS and HEADER.FIELDS.NOT, as given. */
  readonly fields: readonly string[];
}

const MAX_PATH = 100;

/**
 * Parses the inside of `BODY[...]`, e.g. `1.2.MIME`, `HEADER.FIELDS (From To)`, `TEXT` or an
 * empty string. Returns null for a malformed specification (the caller answers BAD).
 */
export function parseSectionSpec(spec: string): SectionSpec | null {
  const path: number[] = [];
  let i = 0;
  let rest = spec;
  while (i < spec.length && spec[i]! >= "0" && spec[i]! <= "9") {
    let j = i;
    while (j < spec.length && spec[j]! >= "0" && spec[j]! <= "9") j++;
    const digits = spec.substring(i, j);
    if (digits[0] === "0" || digits.length > 9 || path.length >= MAX_PATH) return null;
    path.push(Number(digits));
    if (j === spec.length) {
      rest = "";
      i = j;
      break;
    }
    if (spec[j] !== ".") return null;
    i = j + 1;
    rest = spec.substring(i);
    if (rest === "") return null;
  }
  if (rest === "") return { path, text: null, fields: [] };
  const upper = rest.toUpperCase();
  if (upper === "HEADER") return { path, text: SectionText.header, fields: [] };
  if (upper === "TEXT") return { path, text: SectionText.text, fields: [] };
  if (upper === "MIME") {
    return path.length === 0 ? null : { path, text: SectionText.mime, fields: [] };
  }
  const f = /^HEADER\.FIELDS(\.NOT)?\s+\(([^()]*)\)$/i.exec(rest);
  if (f === null) return null;
  const fields = f[2]!.trim().split(/\s+/).filter((s) => s !== "").map((s) =>
    s.replace(/^"(.*)"$/, "$1")
  );
  if (fields.length === 0) return null;
  return {
    path,
    text: f[1] === undefined ? SectionText.headerFields : SectionText.headerFieldsNot,
    fields,
  };
}

/**
 * Resolves a part path. `part` is the addressed node; `isMessage` tells whether it denotes a
 * whole message (the root, addressed by the empty path). Part 1 of a non-multipart message is
 * that message's body; the parts of a message/rfc822 part are those of the message it holds.
 */
export function resolvePart(
  root: MimePart,
  path: readonly number[],
): { part: MimePart; isMessage: boolean } | null {
  let cur = root;
  let isMessage = true;
  for (const n of path) {
    let container = cur;
    if (!isMessage) {
      if (cur.message !== null) container = cur.message;
      else if (cur.type !== "multipart") return null;
    }
    if (container.type === "multipart") {
      const child = container.children[n - 1];
      if (child === undefined) return null;
      cur = child;
    } else if (n === 1) {
      cur = container;
    } else {
      return null;
    }
    isMessage = false;
  }
  return { part: cur, isMessage };
}

/**
 * Returns the bytes that `BODY[spec]` addresses, as a subarray of `raw` where possible (a new
 * array only for HEADER.FIELDS and HEADER.FIELDS.NOT), or null when the section does not exist.
 */
export function extractSection(
  raw: Uint8Array,
  root: MimePart,
  spec: SectionSpec,
): Uint8Array | null {
  const r = resolvePart(root, spec.path);
  if (r === null) return null;
  const { part, isMessage } = r;
  if (spec.text === null) {
    if (isMessage) return raw.subarray(0, raw.length);
    return raw.subarray(part.bodyStart, part.bodyEnd);
  }
  if (spec.text === SectionText.mime) return raw.subarray(part.headerStart, part.headerEnd);
  const msg = isMessage ? part : part.message;
  if (msg === null) return null;
  switch (spec.text) {
    case SectionText.header:
      return raw.subarray(msg.headerStart, msg.headerEnd);
    case SectionText.text:
      return raw.subarray(msg.bodyStart, msg.bodyEnd);
    case SectionText.headerFields:
    case SectionText.headerFieldsNot:
      return headerFields(raw, msg, spec.fields, spec.text === SectionText.headerFieldsNot);
    default: {
      const never: never = spec.text;
      return never;
    }
  }
}

/**
 * Copies the selected header fields in message order, followed by the blank line
 * (RFC 9051, Section 6.4.5).
 */
function headerFields(
  raw: Uint8Array,
  msg: MimePart,
  names: readonly string[],
  not: boolean,
): Uint8Array {
  const wanted = new Set(names.map((n) => n.toLowerCase()));
  const chosen = msg.headers.filter((f) => wanted.has(f.key) !== not);
  const unterminated = (f: { end: number }): boolean => f.end === 0 || raw[f.end - 1] !== 0x0a;
  let len = 2;
  for (const f of chosen) len += f.end - f.start + (unterminated(f) ? 2 : 0);
  const out = new Uint8Array(len);
  let o = 0;
  for (const f of chosen) {
    out.set(raw.subarray(f.start, f.end), o);
    o += f.end - f.start;
    if (unterminated(f)) {
      // The last field of a header without a final line break gets one.
      out[o++] = 0x0d;
      out[o++] = 0x0a;
    }
  }
  out[o++] = 0x0d;
  out[o++] = 0x0a;
  return out;
}

/**
 * Returns the decoded content that `BINARY[path]` addresses (RFC 3516; RFC 9051, 6.4.5): the
 * raw message for the empty path, the transfer-decoded body of a leaf part otherwise, the raw
 * body of a multipart or message part. Null when the part does not exist; `{ ok: false }` when
 * its encoding is unknown (answer `NO [UNKNOWN-CTE]`). Its length is BINARY.SIZE.
 */
export function extractBinary(
  raw: Uint8Array,
  root: MimePart,
  path: readonly number[],
): TransferDecodeResult | null {
  const r = resolvePart(root, path);
  if (r === null) return null;
  if (r.isMessage) return { ok: true, bytes: raw.subarray(0, raw.length) };
  const body = raw.subarray(r.part.bodyStart, r.part.bodyEnd);
  if (r.part.type === "multipart" || r.part.message !== null) {
    return decodeLeavesInPlace(raw, r.part);
  }
  return decodeTransfer(body, r.part.encoding);
}

/**
 * The body of a multipart or message part with every leaf body transfer-decoded in place (what
 * Dovecot returns for BINARY of a non-leaf part); headers and delimiters stay as they are.
 */
function decodeLeavesInPlace(raw: Uint8Array, part: MimePart): TransferDecodeResult {
  const leaves: MimePart[] = [];
  const walk = (p: MimePart): void => {
    if (p.type === "multipart") p.children.forEach(walk);
    else if (p.message !== null) walk(p.message);
    else leaves.push(p);
  };
  if (part.type === "multipart") part.children.forEach(walk);
  else if (part.message !== null) walk(part.message);
  const chunks: Uint8Array[] = [];
  let cursor = part.bodyStart;
  for (const leaf of leaves) {
    if (leaf.bodyStart < cursor || leaf.bodyEnd > part.bodyEnd) continue;
    const decoded = decodeTransfer(raw.subarray(leaf.bodyStart, leaf.bodyEnd), leaf.encoding);
    if (!decoded.ok) return decoded;
    chunks.push(raw.subarray(cursor, leaf.bodyStart), decoded.bytes);
    cursor = leaf.bodyEnd;
  }
  chunks.push(raw.subarray(cursor, part.bodyEnd));
  let len = 0;
  for (const c of chunks) len += c.length;
  const out = new Uint8Array(len);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return { ok: true, bytes: out };
}
