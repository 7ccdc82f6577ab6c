/**
 * The IMAP BODY and BODYSTRUCTURE structures (RFC 9051, Sections 7.5.2 and 9 `body`).
 */

import type { MimeParam } from "./header.ts";
import { envelope } from "./envelope.ts";
import { imapString, nstring } from "./imap_string.ts";
import type { Disposition, MimePart } from "./parse.ts";

/**
 * Returns BODYSTRUCTURE (`extensible` true: with MD5, disposition, language and location for
 * single parts; parameters, disposition, language and location for multiparts) or BODY
 * (`extensible` false) for a part tree.
 */
export function bodyStructure(part: MimePart, extensible: boolean): string {
  if (part.type === "multipart") return multipart(part, extensible);
  return single(part, extensible);
}

/** A multipart that has no parsed children (it cannot happen with `parseMessage`). */
const EMPTY_PART = '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0)';

function multipart(part: MimePart, ext: boolean): string {
  let out = "(";
  if (part.children.length === 0) out += EMPTY_PART;
  for (const c of part.children) out += bodyStructure(c, ext);
  out += " " + imapString(part.subtypeRaw);
  if (ext) {
    out += " " + params(part.params) + " " + disposition(part.disposition) + " " +
      language(part.language) + " " + nstring(part.location);
  }
  return out + ")";
}

const US_ASCII: MimeParam = {
  name: "charset",
  value: "us-ascii",
  rawName: "charset",
  rawValue: "us-ascii",
};

function single(part: MimePart, ext: boolean): string {
  const isText = part.type === "text";
  let typeParams = part.params;
  if (isText && !typeParams.some((p) => p.name === "charset")) {
    // The RFC 2045 (Section 5.2) default charset, made explicit as Dovecot does.
    typeParams = [...typeParams, US_ASCII];
  }
  const fields = [
    imapString(part.typeRaw),
    imapString(part.subtypeRaw),
    params(typeParams),
    nstring(part.id),
    nstring(part.description),
    imapString(part.encoding === null || part.encoding === "" ? "7bit" : part.encoding),
    String(part.size),
  ];
  if (part.message !== null) {
    fields.push(envelope(part.message), bodyStructure(part.message, ext), String(part.lines));
  } else if (isText) {
    fields.push(String(part.lines));
  }
  if (ext) {
    fields.push(
      nstring(part.md5),
      disposition(part.disposition),
      language(part.language),
      nstring(part.location),
    );
  }
  return "(" + fields.join(" ") + ")";
}

/** A parameter list as written (RFC 2231 continuations merged), or NIL. */
function params(list: readonly MimeParam[]): string {
  if (list.length === 0) return "NIL";
  return "(" + list.map((p) => imapString(p.rawName) + " " + imapString(p.rawValue)).join(" ") +
    ")";
}

function disposition(d: Disposition | null): string {
  if (d === null || d.value === "") return "NIL";
  return "(" + imapString(d.value) + " " + params(d.params) + ")";
}

function language(list: readonly string[] | null): string {
  if (list === null || list.length === 0) return "NIL";
  return "(" + list.map(imapString).join(" ") + ")";
}
