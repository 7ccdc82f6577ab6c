/**
 * Certificate lookup filters: an RFC 4515 search filter with `{cert.…}` placeholders, checked
 * once at configuration time and filled per certificate.
 *
 * Placeholders:
 * - `{cert.san.email}`: the first rfc822Name of subjectAltName (or subject emailAddress);
 * - `{cert.subject.<attr>}`: the first subject attribute of that type (`cn`, `uid`, `o`, an OID);
 * - `{cert.subject}`, `{cert.issuer}`: the RFC 4514 DN strings;
 * - `{cert.serial}`: the serial number in lower-case hex;
 * - `{cert.fingerprint}`: the SHA-256 fingerprint in lower-case hex.
 *
 * Every value is escaped with ldapts' `Filter.escape` (RFC 4515, Section 3), so a certificate
 * field such as `*)(uid=*` stays an assertion value and cannot widen the search. A field the
 * certificate lacks leaves the filter unfilled: the lookup finds nothing and access is denied.
 */
import { Filter, FilterParser } from "ldapts";
import type { CertificateIdentity } from "../../protocol/x509/identity.ts";

/** A certificate field a placeholder refers to. */
export type CertificateField =
  | { readonly kind: "san_email" }
  | { readonly kind: "subject_attribute"; readonly attribute: string }
  | { readonly kind: "subject" }
  | { readonly kind: "issuer" }
  | { readonly kind: "serial" }
  | { readonly kind: "fingerprint" };

export type TemplatePart =
  | { readonly kind: "literal"; readonly text: string }
  | { readonly kind: "placeholder"; readonly field: CertificateField };

/** A parsed, validated filter template. */
export interface FilterTemplate {
  readonly source: string;
  readonly parts: readonly TemplatePart[];
}

/** A filter template that cannot be used. */
export class FilterTemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FilterTemplateError";
  }
}

const MAX_TEMPLATE_LENGTH = 1024;

/** Short names and OIDs of subject attributes as `NameAttribute.type` spells them (RFC 4519). */
const SUBJECT_ATTRIBUTE_ALIASES: Readonly<Record<string, string>> = {
  "2.5.4.3": "cn",
  "commonname": "cn",
  "0.9.2342.19200300.100.1.1": "uid",
  "userid": "uid",
  "1.2.840.113549.1.9.1": "emailaddress",
  "email": "emailaddress",
  "2.5.4.10": "o",
  "organizationname": "o",
  "2.5.4.11": "ou",
  "organizationalunitname": "ou",
  "2.5.4.6": "c",
  "countryname": "c",
  "2.5.4.7": "l",
  "localityname": "l",
  "2.5.4.8": "st",
  "stateorprovincename": "st",
  "2.5.4.5": "serialnumber",
  "0.9.2342.19200300.100.1.25": "dc",
  "domaincomponent": "dc",
};

const SUBJECT_ATTRIBUTE = /^(?:[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)+)$/;

/** Parses and validates `source`. Throws `FilterTemplateError`. */
export function parseFilterTemplate(source: string): FilterTemplate {
  if (source.length > MAX_TEMPLATE_LENGTH) {
    throw new FilterTemplateError(
      `Filter template is longer than ${MAX_TEMPLATE_LENGTH} characters`,
    );
  }
  if (!source.startsWith("(") || !source.endsWith(")")) {
    throw new FilterTemplateError("Filter template must be a parenthesised filter (RFC 4515)");
  }
  const parts: TemplatePart[] = [];
  let i = 0;
  while (i < source.length) {
    const open = source.indexOf("{", i);
    const close = source.indexOf("}", i);
    if (close !== -1 && (open === -1 || close < open)) {
      throw new FilterTemplateError(`Unbalanced "}" at offset ${close} of filter template`);
    }
    if (open === -1) {
      parts.push(literal(source.slice(i), i));
      break;
    }
    if (open > i) parts.push(literal(source.slice(i, open), i));
    if (close === -1) {
      throw new FilterTemplateError(`Unclosed "{" at offset ${open} of filter template`);
    }
    const name = source.slice(open + 1, close);
    if (name.includes("{")) {
      throw new FilterTemplateError(`Nested "{" at offset ${open} of filter template`);
    }
    parts.push({ kind: "placeholder", field: parsePlaceholder(name) });
    i = close + 1;
  }
  if (!parts.some((p) => p.kind === "placeholder")) {
    throw new FilterTemplateError(
      "Filter template has no {cert.…} placeholder, so every certificate would map to one entry",
    );
  }
  const template: FilterTemplate = { source, parts };
  // The filled filter must parse whatever the values are; a sample value shows the syntax.
  const sample = render(template, () => "x");
  // ldapts' parser forgives unbalanced parentheses; a filter is one balanced parenthesised item.
  let depth = 0;
  for (let k = 0; k < sample.length; k++) {
    const c = sample[k];
    if (c === "(") depth++;
    else if (c === ")") depth--;
    if (depth < 0 || (depth === 0 && k !== sample.length - 1)) {
      throw new FilterTemplateError(`Unbalanced parentheses at offset ${k} of filter template`);
    }
  }
  if (depth !== 0) throw new FilterTemplateError("Unbalanced parentheses in filter template");
  try {
    FilterParser.parseString(sample);
  } catch (e) {
    throw new FilterTemplateError(
      `Filter template is not a valid LDAP filter: ${e instanceof Error ? e.message : String(e)}`,
    );
  }
  return template;
}

function literal(text: string, offset: number): TemplatePart {
  // ldapts' filter parser turns each `\xx` escape into one character, which garbles the
  // bytes of a multi-byte UTF-8 sequence; such characters must be written as they are.
  const m = /\\[89a-f][0-9a-f]/i.exec(text);
  if (m !== null) {
    throw new FilterTemplateError(
      `Escape ${m[0]} at offset ${offset + m.index} of filter template: write non-ASCII ` +
        "characters as they are",
    );
  }
  return { kind: "literal", text };
}

function parsePlaceholder(name: string): CertificateField {
  switch (name) {
    case "cert.san.email":
      return { kind: "san_email" };
    case "cert.subject":
      return { kind: "subject" };
    case "cert.issuer":
      return { kind: "issuer" };
    case "cert.serial":
      return { kind: "serial" };
    case "cert.fingerprint":
      return { kind: "fingerprint" };
  }
  if (name.startsWith("cert.subject.")) {
    const attribute = name.slice("cert.subject.".length);
    if (SUBJECT_ATTRIBUTE.test(attribute)) return { kind: "subject_attribute", attribute };
  }
  throw new FilterTemplateError(`Unknown placeholder {${name}} in filter template`);
}

/** The raw (unescaped) value of a certificate field, or undefined when the certificate lacks it. */
export function certificateField(
  identity: CertificateIdentity,
  field: CertificateField,
): string | undefined {
  let value: string | undefined;
  switch (field.kind) {
    case "san_email":
      value = identity.emails[0];
      break;
    case "subject":
      value = identity.subject;
      break;
    case "issuer":
      value = identity.issuer;
      break;
    case "serial":
      value = identity.serial;
      break;
    case "fingerprint":
      value = identity.fingerprintSha256;
      break;
    case "subject_attribute": {
      const want = canonicalAttribute(field.attribute);
      value = identity.subjectAttributes.find((a) =>
        canonicalAttribute(a.type) === want || canonicalAttribute(a.oid) === want
      )?.value;
      break;
    }
    default: {
      const never: never = field;
      throw new Error(`Unknown certificate field ${JSON.stringify(never)}`);
    }
  }
  return value === undefined || value === "" ? undefined : value;
}

/**
 * The filter string for `identity`, every value escaped (RFC 4515, Section 3), or undefined
 * when the certificate lacks a field the template uses.
 */
export function fillFilterTemplate(
  template: FilterTemplate,
  identity: CertificateIdentity,
): string | undefined {
  let missing = false;
  const out = render(template, (field) => {
    const v = certificateField(identity, field);
    if (v === undefined) missing = true;
    return v ?? "";
  });
  return missing ? undefined : out;
}

function render(template: FilterTemplate, value: (f: CertificateField) => string): string {
  let out = "";
  for (const p of template.parts) {
    out += p.kind === "literal" ? p.text : Filter.escape(value(p.field));
  }
  return out;
}

function canonicalAttribute(name: string): string {
  const n = name.toLowerCase();
  return SUBJECT_ATTRIBUTE_ALIASES[n] ?? n;
}
