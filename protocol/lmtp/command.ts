/**
 * Parsing of LMTP command lines (RFC 2033 on RFC 5321, Section 4.1): the verb, the
 * reverse-path and forward-path of MAIL and RCPT, and their ESMTP parameters.
 */

/** A mailbox as RFC 5321, Section 4.1.2 writes it; `domain` is empty for `<Postmaster>`. */
export interface Mailbox {
  readonly localPart: string;
  readonly domain: string;
}

/** A parsed command line; `error` says why a line of a known verb is malformed. */
export type Command =
  | { readonly verb: "LHLO"; readonly domain: string }
  | { readonly verb: "HELO" | "EHLO" }
  | {
    readonly verb: "MAIL";
    /** Null for the null reverse-path `<>`. */
    readonly from: Mailbox | null;
    readonly params: ReadonlyMap<string, string | null>;
  }
  | {
    readonly verb: "RCPT";
    readonly to: Mailbox;
    readonly params: ReadonlyMap<string, string | null>;
  }
  | { readonly verb: "DATA" | "RSET" | "NOOP" | "QUIT" | "HELP" | "VRFY" | "EXPN" | "STARTTLS" }
  | { readonly verb: "BDAT"; readonly size: number; readonly last: boolean }
  | { readonly verb: "unknown"; readonly name: string }
  | { readonly verb: "error"; readonly status: string; readonly text: string };

/** Longest reverse- or forward-path in octets, brackets included (RFC 5321, 4.5.3.1.3). */
export const MAX_PATH_OCTETS = 256;
/** Longest local part (RFC 5321, Section 4.5.3.1.1). */
export const MAX_LOCAL_PART_OCTETS = 64;
/** Longest domain (RFC 5321, Section 4.5.3.1.2). */
export const MAX_DOMAIN_OCTETS = 255;
/** Largest BDAT chunk size that parses; the message size limit applies on top. */
const MAX_CHUNK_DIGITS = 15;

const ATEXT = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\u{80}-\u{10ffff}]+$/u;
const LABEL =
  /^(?:[A-Za-z0-9\u{80}-\u{10ffff}](?:[A-Za-z0-9\-\u{80}-\u{10ffff}]*[A-Za-z0-9\u{80}-\u{10ffff}])?)$/u;
const ESMTP_KEYWORD = /^[A-Za-z0-9][A-Za-z0-9-]*$/;
const ESMTP_VALUE = /^[\x21-\x3c\x3e-\x7e\u{80}-\u{10ffff}]+$/u;

const encoder = new TextEncoder();

function error(status: string, text: string): Command {
  return { verb: "error", status, text };
}

/** Parses one command line (without its CRLF). */
export function parseCommand(line: string): Command {
  const space = line.indexOf(" ");
  const name = (space === -1 ? line : line.slice(0, space)).toUpperCase();
  const rest = space === -1 ? "" : line.slice(space + 1);
  switch (name) {
    case "LHLO": {
      const domain = rest.trim();
      if (domain === "" || /\s/.test(domain)) return error("5.5.4", "LHLO needs a domain");
      return { verb: "LHLO", domain };
    }
    case "HELO":
    case "EHLO":
      return { verb: name };
    case "MAIL":
      return parseMail(rest);
    case "RCPT":
      return parseRcpt(rest);
    case "BDAT":
      return parseBdat(rest);
    case "DATA":
    case "RSET":
    case "QUIT":
    case "STARTTLS":
      if (rest.trim() !== "") return error("5.5.4", `${name} takes no arguments`);
      return { verb: name };
    case "NOOP":
    case "HELP":
    case "VRFY":
    case "EXPN":
      return { verb: name };
    default:
      return { verb: "unknown", name: name.slice(0, 32) };
  }
}

function parseMail(rest: string): Command {
  if (!/^FROM:/i.test(rest)) return error("5.5.4", "Syntax: MAIL FROM:<address>");
  const parsed = parsePath(rest.slice(5).trimStart(), true);
  if ("error" in parsed) return error(parsed.status, parsed.error);
  const params = parseParams(parsed.rest);
  if (params === null) return error("5.5.4", "Malformed MAIL parameters");
  return { verb: "MAIL", from: parsed.mailbox, params };
}

function parseRcpt(rest: string): Command {
  if (!/^TO:/i.test(rest)) return error("5.5.4", "Syntax: RCPT TO:<address>");
  const parsed = parsePath(rest.slice(3).trimStart(), false);
  if ("error" in parsed) return error(parsed.status, parsed.error);
  if (parsed.mailbox === null) return error("5.1.3", "The null path is not a recipient");
  const params = parseParams(parsed.rest);
  if (params === null) return error("5.5.4", "Malformed RCPT parameters");
  return { verb: "RCPT", to: parsed.mailbox, params };
}

function parseBdat(rest: string): Command {
  const m = /^([0-9]{1,15})(?: +(LAST))? *$/i.exec(rest);
  if (m === null || m[1]!.length > MAX_CHUNK_DIGITS) {
    return error("5.5.4", "Syntax: BDAT size [LAST]");
  }
  return { verb: "BDAT", size: Number(m[1]), last: m[2] !== undefined };
}

type PathResult =
  | { readonly mailbox: Mailbox | null; readonly rest: string }
  | { readonly error: string; readonly status: string };

/**
 * Parses `<[@route,...:]local@domain>` at the start of `text`; `<>` is allowed when
 * `nullAllowed`. The source route is dropped (RFC 5321, Appendix C). `<Postmaster>` without a
 * domain is a valid forward-path (RFC 5321, Section 4.1.1.3).
 */
export function parsePath(text: string, nullAllowed: boolean): PathResult {
  if (!text.startsWith("<")) return { error: "Address must be in angle brackets", status: "5.5.4" };
  let i = 1;
  let inQuote = false;
  for (; i < text.length; i++) {
    const c = text[i];
    if (inQuote) {
      if (c === "\\") i++;
      else if (c === '"') inQuote = false;
    } else if (c === '"') inQuote = true;
    else if (c === ">") break;
  }
  if (i >= text.length) return { error: "Missing closing angle bracket", status: "5.5.4" };
  const inner = text.slice(1, i);
  const after = text.slice(i + 1);
  if (after !== "" && !after.startsWith(" ")) {
    return { error: "Unexpected text after the address", status: "5.5.4" };
  }
  if (encoder.encode(inner).length + 2 > MAX_PATH_OCTETS) {
    return { error: "Address too long", status: "5.1.3" };
  }
  if (inner === "") {
    if (!nullAllowed) return { error: "The null path is not a recipient", status: "5.1.3" };
    return { mailbox: null, rest: after.trim() };
  }
  let address = inner;
  if (address.startsWith("@")) {
    const colon = address.indexOf(":");
    if (colon === -1) return { error: "Malformed source route", status: "5.1.3" };
    address = address.slice(colon + 1);
  }
  const mailbox = parseMailbox(address);
  if (mailbox === null) return { error: "Malformed address", status: "5.1.3" };
  if (mailbox.domain === "" && (nullAllowed || mailbox.localPart.toLowerCase() !== "postmaster")) {
    return { error: "Address needs a domain", status: "5.1.3" };
  }
  return { mailbox, rest: after.trim() };
}

/** Parses `local@domain` (or a bare `Postmaster`), checking RFC 5321 syntax and lengths. */
export function parseMailbox(address: string): Mailbox | null {
  let localPart: string;
  let rest: string;
  if (address.startsWith('"')) {
    let i = 1;
    for (; i < address.length; i++) {
      const c = address[i]!;
      if (c === "\\") {
        i++;
        continue;
      }
      if (c === '"') break;
      if (c < " " || c === "\x7f") return null;
    }
    if (i >= address.length) return null;
    localPart = address.slice(0, i + 1);
    rest = address.slice(i + 1);
  } else {
    const at = address.lastIndexOf("@");
    localPart = at === -1 ? address : address.slice(0, at);
    rest = at === -1 ? "" : address.slice(at);
    if (localPart === "" || !localPart.split(".").every((atom) => ATEXT.test(atom))) return null;
  }
  if (encoder.encode(localPart).length > MAX_LOCAL_PART_OCTETS) return null;
  if (rest === "") return { localPart, domain: "" };
  if (!rest.startsWith("@")) return null;
  const domain = rest.slice(1);
  if (encoder.encode(domain).length > MAX_DOMAIN_OCTETS || !isDomain(domain)) return null;
  return { localPart, domain };
}

function isDomain(domain: string): boolean {
  if (domain.startsWith("[") && domain.endsWith("]")) {
    return /^\[[\x21-\x5a\x5e-\x7e]+\]$/.test(domain);
  }
  return domain !== "" && domain.split(".").every((label) => LABEL.test(label));
}

/** Parses `KEY[=value] ...`; keys are upper-cased; null when malformed or repeated. */
function parseParams(text: string): Map<string, string | null> | null {
  const params = new Map<string, string | null>();
  if (text === "") return params;
  for (const item of text.split(/ +/)) {
    if (item === "") continue;
    const eq = item.indexOf("=");
    const key = (eq === -1 ? item : item.slice(0, eq)).toUpperCase();
    const value = eq === -1 ? null : item.slice(eq + 1);
    if (!ESMTP_KEYWORD.test(key) || (value !== null && !ESMTP_VALUE.test(value))) return null;
    if (params.has(key)) return null;
    params.set(key, value);
  }
  return params;
}

/** The address as one string, `local@domain` (or the bare local part). */
export function formatMailbox(m: Mailbox): string {
  return m.domain === "" ? m.localPart : `${m.localPart}@${m.domain}`;
}
