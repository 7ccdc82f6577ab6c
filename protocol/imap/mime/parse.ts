/**
 * MIME structure parser (RFC 5322; RFC 2045, RFC 2046, RFC 2231). It turns raw message bytes
 * into a tree of parts that carry byte offsets into the original message, so FETCH can answer
 * BODY[section] with a subarray instead of a copy.
 *
 * The parser is total: any input, including random bytes, gives a tree. Limits on nesting depth,
 * part count, header field count and header value size keep hostile messages cheap.
 */

import {
  bytesToText,
  MAX_HEADER_VALUE,
  type MimeParam,
  parseParamValue,
  unfold,
} from "./header.ts";

/** Nesting depth at which multiparts and encapsulated messages stop being opened. */
export const MAX_DEPTH = 64;
/** Total number of parts in one message; later parts are not split out. */
export const MAX_PARTS = 10_000;
/** Header fields kept per header section; further fields are skipped (the bytes stay). */
export const MAX_HEADER_FIELDS = 1_000;

/** One header field with its position in the raw message (RFC 5322, Section 2.2). */
export interface HeaderField {
  /** Field name as written. */
  readonly name: string;
  /** Field name lower-cased, for lookups. */
  readonly key: string;
  /** Offset of the first byte of the field name. */
  readonly start: number;
  /** Offset just past the field's final line break. */
  readonly end: number;
  /** Unfolded value with leading whitespace removed, as text (UTF-8 or byte-per-char). */
  readonly value: string;
}

/** Content-Disposition (RFC 2183). */
export interface Disposition {
  readonly value: string;
  readonly params: readonly MimeParam[];
}

/** A node of the MIME tree. Offsets index the raw message passed to `parseMessage()`. */
export interface MimePart {
  /** Start of the header section (equals `bodyStart` for a part without headers). */
  readonly headerStart: number;
  /** End of the header section, including the blank separator line when present. */
  readonly headerEnd: number;
  readonly bodyStart: number;
  readonly bodyEnd: number;
  readonly headers: readonly HeaderField[];
  /** True when header fields were dropped because of the caps. */
  readonly headerTruncated: boolean;
  /** Media type and subtype, lower-cased (RFC 2045, Section 5.1). */
  readonly type: string;
  readonly subtype: string;
  /** Type and subtype as written in the header, or the defaults. */
  readonly typeRaw: string;
  readonly subtypeRaw: string;
  /** Content-Type parameters (RFC 2231 continuations merged and decoded). */
  readonly params: readonly MimeParam[];
  /** Whether the part had an explicit Content-Type header. */
  readonly explicitType: boolean;
  readonly id: string | null;
  readonly description: string | null;
  /** Content-Transfer-Encoding as written, or null when absent (meaning 7bit). */
  readonly encoding: string | null;
  readonly disposition: Disposition | null;
  readonly language: readonly string[] | null;
  readonly location: string | null;
  readonly md5: string | null;
  /** Body size in octets. */
  readonly size: number;
  /** Number of lines in the body: its line feeds (a final partial line is not counted). */
  readonly lines: number;
  /** Sub-parts of a multipart (RFC 2046, Section 5.1). */
  readonly children: readonly MimePart[];
  /** The encapsulated message of message/rfc822 or message/global (RFC 2046, 5.2.1). */
  readonly message: MimePart | null;
}

interface Ctx {
  raw: Uint8Array;
  parts: number;
}

/** Parses a whole message (RFC 5322) into its MIME tree. Never throws. */
export function parseMessage(raw: Uint8Array): MimePart {
  const ctx: Ctx = { raw, parts: 0 };
  return parsePart(ctx, 0, raw.length, raw.length, 0, false, true);
}

/** Returns the first value of a header field, or null. */
export function headerValue(part: MimePart, key: string): string | null {
  const k = key.toLowerCase();
  for (const f of part.headers) if (f.key === k) return f.value;
  return null;
}

/** Returns every value of a header field, in order. */
export function headerValues(part: MimePart, key: string): string[] {
  const k = key.toLowerCase();
  return part.headers.filter((f) => f.key === k).map((f) => f.value);
}

/** Whether a part is an encapsulated message whose body is parsed as a message. */
export function isMessagePart(type: string, subtype: string): boolean {
  return type === "message" && (subtype === "rfc822" || subtype === "global");
}

/**
 * Parses the part in [start, end). `outerEnd` is where the enclosing delimiter line starts: a
 * multipart (directly, or as the body of a message/rfc822 part) whose close delimiter ends
 * exactly at `end` takes the line break up to `outerEnd` as its own (the close delimiter line's
 * line break), as Dovecot does.
 */
function parsePart(
  ctx: Ctx,
  start: number,
  end: number,
  outerEnd: number,
  depth: number,
  digestChild: boolean,
  hasHeader: boolean,
): MimePart {
  ctx.parts++;
  const raw = ctx.raw;
  const head = hasHeader ? readHeader(raw, start, end) : {
    fields: [],
    bodyStart: start,
    truncated: false,
  };
  const fields = head.fields;
  const get = (k: string): string | null => {
    for (const f of fields) if (f.key === k) return f.value;
    return null;
  };
  const ctHeader = get("content-type");
  let typeRaw = digestChild ? "message" : "text";
  let subtypeRaw = digestChild ? "rfc822" : "plain";
  let params: readonly MimeParam[] = [];
  let explicitType = false;
  if (ctHeader !== null) {
    const pv = parseParamValue(ctHeader);
    const m = /^([^\s/;]+)\s*\/\s*([^\s/;]+)$/.exec(pv.value);
    if (m !== null) {
      typeRaw = m[1]!;
      subtypeRaw = m[2]!;
      params = pv.params;
      explicitType = true;
    } else if (!digestChild) {
      // An unparsable Content-Type means text/plain; charset=us-ascii (RFC 2045, 5.2).
      params = [];
    }
  }
  let type = typeRaw.toLowerCase();
  let subtype = subtypeRaw.toLowerCase();
  const bodyStart = head.bodyStart;
  let bodyEnd = end;
  const encoding = get("content-transfer-encoding");
  const dispHeader = get("content-disposition");
  const disposition = dispHeader === null ? null : parseParamValue(dispHeader);
  const langHeader = get("content-language");
  const language = langHeader === null
    ? null
    : stripComments(langHeader).split(/[\s,]+/).filter((s) => s !== "");
  const location = get("content-location");

  let children: MimePart[] = [];
  let message: MimePart | null = null;
  const overLimit = depth >= MAX_DEPTH || ctx.parts >= MAX_PARTS;
  if (type === "multipart") {
    if (overLimit) {
      typeRaw = "application";
      subtypeRaw = "octet-stream";
      type = "application";
      subtype = "octet-stream";
    } else {
      const boundary = params.find((p) => p.name === "boundary")?.value ?? "";
      const split = splitMultipart(ctx, bodyStart, end, boundary, depth, subtype === "digest");
      children = split.children;
      if (split.closeAtEnd) bodyEnd = outerEnd;
    }
  } else if (isMessagePart(type, subtype)) {
    const enc = (encoding ?? "").trim().toLowerCase();
    if (overLimit || (enc !== "" && enc !== "7bit" && enc !== "8bit" && enc !== "binary")) {
      // An encoded or too deeply nested message is opaque: no envelope can be read from it.
      typeRaw = "application";
      subtypeRaw = "octet-stream";
      type = "application";
      subtype = "octet-stream";
    } else {
      message = parsePart(ctx, bodyStart, end, outerEnd, depth + 1, false, true);
      // A multipart message whose close delimiter ends the part claims the line break too.
      bodyEnd = message.bodyEnd;
    }
  }
  return {
    headerStart: start,
    headerEnd: bodyStart,
    bodyStart,
    bodyEnd,
    headers: fields,
    headerTruncated: head.truncated,
    type,
    subtype,
    typeRaw,
    subtypeRaw,
    params,
    explicitType,
    id: get("content-id"),
    description: get("content-description"),
    encoding: encoding === null ? null : stripComments(encoding).trim(),
    disposition,
    language: language === null || language.length === 0 ? null : language,
    location: location === null ? null : location.replace(/\s+/g, ""),
    md5: get("content-md5"),
    size: bodyEnd - bodyStart,
    lines: countLines(raw, bodyStart, bodyEnd),
    children,
    message,
  };
}

function stripComments(s: string): string {
  return s.replace(/\([^()]*\)/g, " ");
}

/** Counts body lines as line feeds, as Dovecot and Cyrus do (RFC 9051, `body-fld-lines`). */
export function countLines(raw: Uint8Array, start: number, end: number): number {
  let n = 0;
  let i = start;
  for (;;) {
    const lf = raw.indexOf(0x0a, i);
    if (lf < 0 || lf >= end) break;
    n++;
    i = lf + 1;
  }
  return n;
}

interface RawHeader {
  fields: HeaderField[];
  bodyStart: number;
  truncated: boolean;
}

/**
 * Reads a header section (RFC 5322, Section 2.2) from `start`. The section ends at the first
 * empty line (CRLF or bare LF); without one, everything up to `end` is header.
 */
function readHeader(raw: Uint8Array, start: number, end: number): RawHeader {
  const fields: HeaderField[] = [];
  let truncated = false;
  let p = start;
  let cur: { name: string; start: number; valueStart: number } | null = null;
  const finish = (fieldEnd: number, valueEnd: number): void => {
    if (cur === null) return;
    if (fields.length >= MAX_HEADER_FIELDS) {
      truncated = true;
    } else {
      let vEnd = valueEnd;
      if (vEnd - cur.valueStart > MAX_HEADER_VALUE) {
        vEnd = cur.valueStart + MAX_HEADER_VALUE;
        truncated = true;
      }
      const value = unfold(bytesToText(raw.subarray(cur.valueStart, vEnd)))
        .replace(/^[ \t]+/, "").replace(/[ \t]+$/, "");
      fields.push({
        name: cur.name,
        key: cur.name.toLowerCase(),
        start: cur.start,
        end: fieldEnd,
        value,
      });
    }
    cur = null;
  };
  let lastValueEnd = start;
  while (p < end) {
    const c = raw[p]!;
    if (c === 0x0a || (c === 0x0d && p + 1 < end && raw[p + 1] === 0x0a)) {
      finish(p, lastValueEnd);
      return { fields, bodyStart: c === 0x0a ? p + 1 : p + 2, truncated };
    }
    let lf = raw.indexOf(0x0a, p);
    if (lf < 0 || lf >= end) lf = end;
    const lineEnd = lf < end ? lf + 1 : end;
    const contentEnd = lf > p && raw[lf - 1] === 0x0d ? lf - 1 : lf;
    if (c === 0x20 || c === 0x09) {
      if (cur !== null) lastValueEnd = contentEnd;
    } else {
      finish(p, lastValueEnd);
      const colon = raw.subarray(p, contentEnd).indexOf(0x3a);
      if (colon > 0 && colon <= 200) {
        const nameBytes = raw.subarray(p, p + colon);
        let name = "";
        for (const b of nameBytes) name += String.fromCharCode(b);
        name = name.replace(/[ \t]+$/, "");
        if (/^[\x21-\x39\x3b-\x7e]+$/.test(name)) {
          cur = { name, start: p, valueStart: p + colon + 1 };
          lastValueEnd = contentEnd;
        }
      }
    }
    p = lineEnd;
  }
  finish(end, lastValueEnd);
  return { fields, bodyStart: end, truncated };
}

/** Bytes of a boundary string (boundaries are ASCII per RFC 2046; others pass through). */
function boundaryBytes(boundary: string): Uint8Array {
  return new TextEncoder().encode("--" + boundary);
}

interface BoundaryLine {
  /** Offset where the delimiter's preceding line break starts (end of the previous part). */
  before: number;
  /** Offset just past the boundary line's own line break (start of the next part). */
  after: number;
  close: boolean;
  /** Whether the line ran to the end of the region without a line break. */
  unterminated: boolean;
}

/**
 * Finds the delimiter lines of a multipart body (RFC 2046, Section 5.1.1). A delimiter is a line
 * that starts with `--boundary` followed by `--`, whitespace or the line end; the line break before
 * it belongs to the delimiter. Bare LF is accepted wherever CRLF is expected.
 */
function findBoundaries(
  raw: Uint8Array,
  start: number,
  end: number,
  boundary: Uint8Array,
  limit: number,
): BoundaryLine[] {
  const out: BoundaryLine[] = [];
  let p = start;
  while (p < end && out.length < limit) {
    let lf = raw.indexOf(0x0a, p);
    if (lf < 0 || lf >= end) lf = end;
    if (raw[p] === 0x2d && p + boundary.length <= end && matchAt(raw, p, boundary)) {
      const q = p + boundary.length;
      const next = q < end ? raw[q]! : -1;
      if (
        next === -1 || next === 0x2d || next === 0x20 || next === 0x09 || next === 0x0d ||
        next === 0x0a
      ) {
        const close = next === 0x2d && q + 1 < end && raw[q + 1] === 0x2d;
        let before = p;
        if (p > start && raw[p - 1] === 0x0a) {
          before = p - 1;
          if (before > start && raw[before - 1] === 0x0d) before--;
        }
        out.push({ before, after: lf < end ? lf + 1 : end, close, unterminated: lf >= end });
        if (close) break;
      }
    }
    p = lf + 1;
  }
  return out;
}

function matchAt(raw: Uint8Array, p: number, needle: Uint8Array): boolean {
  for (let i = 0; i < needle.length; i++) if (raw[p + i] !== needle[i]) return false;
  return true;
}

function splitMultipart(
  ctx: Ctx,
  start: number,
  end: number,
  boundary: string,
  depth: number,
  digest: boolean,
): { children: MimePart[]; closeAtEnd: boolean } {
  const lines = boundary === ""
    ? []
    : findBoundaries(ctx.raw, start, end, boundaryBytes(boundary), MAX_PARTS - ctx.parts + 1);
  if (lines.length === 0) {
    // No delimiter at all: the whole body is read as one text part (RFC 2046, 5.1.1 gives no
    // rule; this keeps the content reachable as BODY[1]).
    return {
      children: [parsePart(ctx, start, end, end, depth + 1, false, false)],
      closeAtEnd: false,
    };
  }
  if (lines[0]!.close) {
    // Only a close delimiter: one empty text part, as Dovecot reports it.
    const at = lines[0]!.before;
    return {
      children: [parsePart(ctx, at, at, at, depth + 1, false, false)],
      closeAtEnd: lines[0]!.unterminated,
    };
  }
  const children: MimePart[] = [];
  let closeAtEnd = false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.close) {
      closeAtEnd = line.unterminated;
      break;
    }
    const next = lines[i + 1];
    const partEnd = Math.max(line.after, next === undefined ? end : next.before);
    const outer = next === undefined
      ? partEnd
      : Math.max(partEnd, next.before + lineBreakLength(ctx.raw, next.before));
    children.push(parsePart(ctx, line.after, partEnd, outer, depth + 1, digest, true));
    if (ctx.parts >= MAX_PARTS) break;
  }
  return { children, closeAtEnd };
}

function lineBreakLength(raw: Uint8Array, at: number): number {
  if (raw[at] === 0x0d && raw[at + 1] === 0x0a) return 2;
  return raw[at] === 0x0a ? 1 : 0;
}
