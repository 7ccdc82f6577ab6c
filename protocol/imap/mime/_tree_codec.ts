/**
 * A compact JSON form of a MIME part tree for the stored summary: positional arrays instead of
 * objects, and header fields reduced to name and offsets (their values are not needed once the
 * envelope and the search headers are computed, and they would double the summary's size).
 */

import type { MimeParam } from "./header.ts";
import type { Disposition, HeaderField, MimePart } from "./parse.ts";

type Json = string | number | boolean | null | Json[];

function params(list: readonly MimeParam[]): Json[] {
  return list.map((p) => [p.rawName, p.rawValue, p.name, p.value]);
}

function disposition(d: Disposition | null): Json {
  return d === null ? null : [d.value, params(d.params)];
}

/** Encodes a tree as nested arrays (see `decodeTree`). */
export function encodeTree(p: MimePart): Json {
  return [
    p.headerStart,
    p.bodyStart,
    p.bodyEnd,
    p.headers.map((f) => [f.name, f.start, f.end]),
    p.headerTruncated,
    p.typeRaw,
    p.subtypeRaw,
    params(p.params),
    p.explicitType,
    p.id,
    p.description,
    p.encoding,
    disposition(p.disposition),
    p.language === null ? null : [...p.language],
    p.location,
    p.md5,
    p.lines,
    p.children.map(encodeTree),
    p.message === null ? null : encodeTree(p.message),
  ];
}

class Invalid extends Error {
  constructor() {
    super("Invalid summary tree");
    this.name = "Invalid";
  }
}

function arr(v: unknown): unknown[] {
  if (!Array.isArray(v)) throw new Invalid();
  return v;
}
function num(v: unknown): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) throw new Invalid();
  return v;
}
function str(v: unknown): string {
  if (typeof v !== "string") throw new Invalid();
  return v;
}
function nstr(v: unknown): string | null {
  return v === null ? null : str(v);
}
function bool(v: unknown): boolean {
  if (typeof v !== "boolean") throw new Invalid();
  return v;
}
function decodeParams(v: unknown): MimeParam[] {
  return arr(v).map((x) => {
    const a = arr(x);
    return { rawName: str(a[0]), rawValue: str(a[1]), name: str(a[2]), value: str(a[3]) };
  });
}

/** Decodes `encodeTree` output; header field values come back empty. Null when malformed. */
export function decodeTree(v: unknown): MimePart | null {
  try {
    return decodePart(v, 0);
  } catch (e) {
    if (e instanceof Invalid) return null;
    throw e;
  }
}

function decodePart(v: unknown, depth: number): MimePart {
  if (depth > 200) throw new Invalid();
  const a = arr(v);
  const headerStart = num(a[0]);
  const bodyStart = num(a[1]);
  const bodyEnd = num(a[2]);
  if (headerStart > bodyStart || bodyStart > bodyEnd) throw new Invalid();
  const headers: HeaderField[] = arr(a[3]).map((x) => {
    const f = arr(x);
    const name = str(f[0]);
    return { name, key: name.toLowerCase(), start: num(f[1]), end: num(f[2]), value: "" };
  });
  const typeRaw = str(a[5]);
  const subtypeRaw = str(a[6]);
  const disp = a[12] === null ? null : arr(a[12]);
  const lang = a[13] === null ? null : arr(a[13]).map(str);
  return {
    headerStart,
    headerEnd: bodyStart,
    bodyStart,
    bodyEnd,
    headers,
    headerTruncated: bool(a[4]),
    type: typeRaw.toLowerCase(),
    subtype: subtypeRaw.toLowerCase(),
    typeRaw,
    subtypeRaw,
    params: decodeParams(a[7]),
    explicitType: bool(a[8]),
    id: nstr(a[9]),
    description: nstr(a[10]),
    encoding: nstr(a[11]),
    disposition: disp === null ? null : { value: str(disp[0]), params: decodeParams(disp[1]) },
    language: lang,
    location: nstr(a[14]),
    md5: nstr(a[15]),
    size: bodyEnd - bodyStart,
    lines: num(a[16]),
    children: arr(a[17]).map((c) => decodePart(c, depth + 1)),
    message: a[18] === null ? null : decodePart(a[18], depth + 1),
  };
}
