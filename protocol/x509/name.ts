/**
 * Distinguished names (RFC 5280, Section 4.1.2.4): parsing, the RFC 4514 string form, DER
 * encoding, and comparison per RFC 5280, Section 7.1.
 */
import type { NameAttribute } from "./identity.ts";
import {
  bytesEqual,
  decodeString,
  DerError,
  DerReader,
  DerWriter,
  isPrintableString,
  isStringTag,
  Tag,
  toHex,
} from "./der.ts";
import { attributeShortName, NameAttributeOid } from "./oid.ts";

/** One attribute as parsed: its string type, or raw value when it is not a string. */
export interface ParsedNameAttribute extends NameAttribute {
  /** The ASN.1 tag of the value. */
  readonly tag: number;
  /** The value's full DER encoding. */
  readonly valueDer: Uint8Array;
}

/** A parsed Name: RDNs in DER order (most general first). */
export interface Name {
  readonly rdns: readonly (readonly ParsedNameAttribute[])[];
  /** The Name's full DER encoding (a SEQUENCE). */
  readonly der: Uint8Array;
}

const MAX_RDNS = 64;
const MAX_ATTRIBUTES_PER_RDN = 16;

/** Reads a Name from `r` (RFC 5280, Section 4.1.2.4). */
export function readName(r: DerReader): Name {
  const el = r.expect(Tag.SEQUENCE, "Name");
  const seq = new DerReader(el.value);
  const rdns: ParsedNameAttribute[][] = [];
  while (!seq.done) {
    if (rdns.length >= MAX_RDNS) throw new DerError("Too many RDNs in Name");
    const set = seq.set("RelativeDistinguishedName");
    const rdn: ParsedNameAttribute[] = [];
    while (!set.done) {
      if (rdn.length >= MAX_ATTRIBUTES_PER_RDN) throw new DerError("Too many attributes in RDN");
      const atv = set.sequence("AttributeTypeAndValue");
      const oid = atv.oid();
      const value = atv.read();
      atv.end();
      const text = isStringTag(value.tag)
        ? decodeString(value.tag, value.value)
        : "#" + toHex(value.raw);
      rdn.push({
        type: attributeShortName(oid) ?? oid,
        oid,
        value: text,
        tag: value.tag,
        valueDer: value.raw,
      });
    }
    if (rdn.length === 0) throw new DerError("Empty RDN in Name");
    rdns.push(rdn);
  }
  return { rdns, der: el.raw };
}

/** Parses a DER-encoded Name. */
export function parseName(der: Uint8Array): Name {
  const r = new DerReader(der);
  const name = readName(r);
  r.end("Name");
  return name;
}

/** The attributes of a name, flattened in DER order. */
export function nameAttributes(name: Name): NameAttribute[] {
  return name.rdns.flat().map(({ type, oid, value }) => ({ type, oid, value }));
}

/** The RFC 4514 string form: most specific RDN first, `+` inside multi-valued RDNs. */
export function nameToString(name: Name): string {
  return [...name.rdns].reverse().map((rdn) =>
    rdn.map((a) =>
      `${a.type}=${a.value.startsWith("#") && !isStringTag(a.tag) ? a.value : escapeValue(a.value)}`
    )
      .join("+")
  ).join(",");
}

/** Escapes an attribute value per RFC 4514, Section 2.4. */
export function escapeValue(v: string): string {
  let out = "";
  for (let i = 0; i < v.length; i++) {
    const c = v[i]!;
    const code = c.charCodeAt(0);
    if (`,+"\\<>;=`.includes(c)) out += "\\" + c;
    else if (code === 0) out += "\\00";
    else if (code < 0x20 || code === 0x7f) out += "\\" + code.toString(16).padStart(2, "0");
    else if ((i === 0 && (c === " " || c === "#")) || (i === v.length - 1 && c === " ")) {
      out += "\\" + c;
    } else out += c;
  }
  return out;
}

/**
 * Prepares a string value for comparison (RFC 5280, Section 7.1, a simplification of the LDAP
 * StringPrep profile of RFC 4518): NFKC, case folded, outer whitespace removed, inner runs of
 * whitespace collapsed to one space.
 */
export function foldValue(v: string): string {
  return v.normalize("NFKC").toLowerCase().replace(/\s+/g, " ").trim();
}

function attributesMatch(a: ParsedNameAttribute, b: ParsedNameAttribute): boolean {
  if (a.oid !== b.oid) return false;
  if (isStringTag(a.tag) && isStringTag(b.tag)) return foldValue(a.value) === foldValue(b.value);
  return bytesEqual(a.valueDer, b.valueDer);
}

/** Compares two RDNs as sets of attributes. */
export function rdnsEqual(
  a: readonly ParsedNameAttribute[],
  b: readonly ParsedNameAttribute[],
): boolean {
  if (a.length !== b.length) return false;
  const used = new Array<boolean>(b.length).fill(false);
  for (const x of a) {
    const i = b.findIndex((y, j) => !used[j] && attributesMatch(x, y));
    if (i < 0) return false;
    used[i] = true;
  }
  return true;
}

/** Name equality per RFC 5280, Section 7.1. */
export function namesEqual(a: Name, b: Name): boolean {
  if (bytesEqual(a.der, b.der)) return true;
  if (a.rdns.length !== b.rdns.length) return false;
  return a.rdns.every((rdn, i) => rdnsEqual(rdn, b.rdns[i]!));
}

/** True when `name` lies in the subtree rooted at `base` (RFC 5280, Section 4.2.1.10). */
export function nameWithinSubtree(name: Name, base: Name): boolean {
  if (base.rdns.length > name.rdns.length) return false;
  return base.rdns.every((rdn, i) => rdnsEqual(rdn, name.rdns[i]!));
}

/** True for an empty Name (no RDNs). */
export function isEmptyName(name: Name): boolean {
  return name.rdns.length === 0;
}

/** An attribute to encode: a short name (`CN`) or dotted OID, and its text. */
export interface NameInput {
  readonly type: string;
  readonly value: string;
}

function oidOf(type: string): string {
  const known = (NameAttributeOid as Record<string, string>)[type];
  if (known !== undefined) return known;
  const byLower = Object.entries(NameAttributeOid).find(([k]) =>
    k.toLowerCase() === type.toLowerCase()
  );
  if (byLower !== undefined) return byLower[1];
  if (/^\d+(\.\d+)+$/.test(type)) return type;
  throw new DerError(`Unknown name attribute type ${type}`);
}

/**
 * Encodes a Name. `rdns` is in DER order (most general first); each inner array is one RDN.
 * Country, serialNumber and dnQualifier use PrintableString, emailAddress and DC use
 * IA5String, everything else UTF8String (RFC 5280, Section 4.1.2.4).
 */
export function encodeName(rdns: readonly (readonly NameInput[])[]): Uint8Array {
  return new DerWriter().sequence((w) => {
    for (const rdn of rdns) {
      w.setOf((s) => {
        for (const a of rdn) {
          const oid = oidOf(a.type);
          s.sequence((atv) => {
            atv.oid(oid);
            if (
              oid === NameAttributeOid.C || oid === NameAttributeOid.serialNumber ||
              oid === NameAttributeOid.dnQualifier
            ) {
              if (!isPrintableString(a.value)) throw new DerError(`Invalid ${a.type} value`);
              atv.printable(a.value);
            } else if (oid === NameAttributeOid.emailAddress || oid === NameAttributeOid.DC) {
              atv.ia5(a.value);
            } else {
              atv.utf8(a.value);
            }
          });
        }
      });
    }
  }).bytes();
}

/**
 * Parses an RFC 4514 string (`CN=alice,O=Example`, most specific first) into RDNs in DER
 * order, ready for `encodeName`. Supports `\`-escapes and `+` multi-valued RDNs; not the
 * `#hex` form.
 */
export function parseDnString(s: string): NameInput[][] {
  if (s.length > 4096) throw new DerError("Distinguished name too long");
  const rdns: NameInput[][] = [];
  let rdn: NameInput[] = [];
  let type = "";
  let value = "";
  let inValue = false;
  let trailingSpaces = 0;
  const flush = () => {
    const t = type.trim();
    if (!inValue || t === "") throw new DerError(`Invalid distinguished name ${s}`);
    oidOf(t);
    rdn.push({ type: t, value: value.slice(0, value.length - trailingSpaces) });
    type = "";
    value = "";
    inValue = false;
    trailingSpaces = 0;
  };
  if (s.trim() === "") return [];
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (!inValue) {
      if (c === "=") inValue = true;
      else type += c;
      continue;
    }
    if (c === "\\") {
      const next = s[i + 1];
      if (next === undefined) throw new DerError("Dangling escape in distinguished name");
      if (/^[0-9a-fA-F]{2}$/.test(s.slice(i + 1, i + 3))) {
        // A run of \xx escapes is UTF-8 (RFC 4514, Section 3).
        const bytes: number[] = [];
        while (/^\\[0-9a-fA-F]{2}$/.test(s.slice(i, i + 3))) {
          bytes.push(parseInt(s.slice(i + 1, i + 3), 16));
          i += 3;
        }
        i -= 1;
        try {
          value += new TextDecoder("utf-8", { fatal: true }).decode(Uint8Array.from(bytes));
        } catch {
          throw new DerError("Invalid UTF-8 escape in distinguished name");
        }
      } else {
        value += next;
        i += 1;
      }
      trailingSpaces = 0;
    } else if (c === "," || c === "+") {
      flush();
      if (c === ",") {
        rdns.push(rdn);
        rdn = [];
      }
    } else if (c === " " && value === "") {
      continue;
    } else {
      value += c;
      trailingSpaces = c === " " ? trailingSpaces + 1 : 0;
    }
  }
  flush();
  rdns.push(rdn);
  return rdns.reverse();
}

/** A string that is equal for two names exactly when `namesEqual` holds; for lookup tables. */
export function nameKey(name: Name): string {
  return JSON.stringify(
    name.rdns.map((rdn) =>
      rdn.map((a) =>
        a.oid + "=" + (isStringTag(a.tag) ? "s:" + foldValue(a.value) : "b:" + toHex(a.valueDer))
      ).sort()
    ),
  );
}
