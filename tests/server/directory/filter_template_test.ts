import assert from "node:assert/strict";
import { FilterParser } from "ldapts";
import {
  certificateField,
  fillFilterTemplate,
  FilterTemplateError,
  parseFilterTemplate,
} from "../../../server/directory/filter_template.ts";
import type { CertificateIdentity } from "../../../protocol/x509/identity.ts";

function identity(over: Partial<CertificateIdentity> = {}): CertificateIdentity {
  return {
    subject: "CN=alice,UID=alice,O=Example",
    subjectAttributes: [
      { type: "CN", oid: "2.5.4.3", value: "alice" },
      { type: "UID", oid: "0.9.2342.19200300.100.1.1", value: "alice" },
      { type: "O", oid: "2.5.4.10", value: "Example" },
    ],
    issuer: "CN=Client CA",
    emails: ["alice@example.org", "a@example.org"],
    dnsNames: [],
    serial: "3e8",
    fingerprintSha256: "ab".repeat(32),
    notBefore: new Date(0),
    notAfter: new Date(0),
    der: new Uint8Array([0x30, 0x00]),
    ...over,
  };
}

function fill(template: string, id: CertificateIdentity = identity()): string | undefined {
  return fillFilterTemplate(parseFilterTemplate(template), id);
}

Deno.test("fillFilterTemplate() fills every supported placeholder", () => {
  assert.equal(fill("(mail={cert.san.email})"), "(mail=alice@example.org)");
  assert.equal(fill("(uid={cert.subject.uid})"), "(uid=alice)");
  assert.equal(fill("(cn={cert.subject.cn})"), "(cn=alice)");
  assert.equal(fill("(cn={cert.subject.commonName})"), "(cn=alice)");
  assert.equal(fill("(o={cert.subject.2.5.4.10})"), "(o=Example)");
  assert.equal(fill("(x={cert.serial})"), "(x=3e8)");
  assert.equal(fill("(x={cert.fingerprint})"), `(x=${"ab".repeat(32)})`);
  assert.equal(
    fill("(&(seeAlso={cert.issuer})(description={cert.subject}))"),
    "(&(seeAlso=CN=Client CA)(description=CN=alice,UID=alice,O=Example))",
  );
});

Deno.test("fillFilterTemplate() escapes filter syntax in every value (RFC 4515)", () => {
  const cases: Array<[string, string]> = [
    ["*)(uid=*", "\\2a\\29\\28uid=\\2a"],
    ["*", "\\2a"],
    ["a\\b", "a\\5cb"],
    ["nul\0byte", "nul\\00byte"],
    ["(x)", "\\28x\\29"],
    ["é", "é"],
  ];
  for (const [raw, escaped] of cases) {
    const id = identity({
      emails: [raw],
      subjectAttributes: [{ type: "CN", oid: "2.5.4.3", value: raw }],
    });
    assert.equal(fill("(mail={cert.san.email})", id), `(mail=${escaped})`, raw);
    const filled = fill("(&(objectClass=inetOrgPerson)(cn={cert.subject.cn}))", id);
    assert.equal(filled, `(&(objectClass=inetOrgPerson)(cn=${escaped}))`, raw);
    // The escaped filter parses to one equality assertion whose value is the raw string.
    const parsed = FilterParser.parseString(`(cn=${escaped})`);
    assert.equal(parsed.constructor.name, "EqualityFilter", raw);
    assert.equal((parsed as unknown as { value: string }).value, raw);
  }
});

Deno.test("fillFilterTemplate() yields no filter when the certificate lacks a field", () => {
  assert.equal(fill("(mail={cert.san.email})", identity({ emails: [] })), undefined);
  assert.equal(fill("(mail={cert.san.email})", identity({ emails: [""] })), undefined);
  assert.equal(fill("(uid={cert.subject.uid})", identity({ subjectAttributes: [] })), undefined);
  assert.equal(fill("(l={cert.subject.l})"), undefined);
});

Deno.test("certificateField() matches subject attributes by short name, long name or OID", () => {
  const id = identity();
  assert.equal(certificateField(id, { kind: "subject_attribute", attribute: "UID" }), "alice");
  assert.equal(certificateField(id, { kind: "subject_attribute", attribute: "userid" }), "alice");
  assert.equal(
    certificateField(id, { kind: "subject_attribute", attribute: "0.9.2342.19200300.100.1.1" }),
    "alice",
  );
  assert.equal(certificateField(id, { kind: "san_email" }), "alice@example.org");
});

Deno.test("parseFilterTemplate() rejects unknown placeholders and broken templates", () => {
  const bad = [
    "(mail={cert.san.dns})",
    "(mail={cert.email})",
    "(mail={user})",
    "(mail={})",
    "(mail={cert.subject.})",
    "(mail={cert.subject.c n})",
    "(mail={cert.san.email)",
    "(mail=cert.san.email})",
    "(mail={{cert.san.email}})",
    "(mail=alice@example.org)",
    "mail={cert.san.email}",
    "(mail={cert.san.email}",
    "(&(mail={cert.san.email})",
    "(userCertificate;binary={cert.fingerprint})",
    "(mail={cert.san.email})(uid=x)",
    "(&(cn=caf\\c3\\a9)(mail={cert.san.email}))",
    "(mail={cert.san.email}))",
    `(mail={cert.san.email})${" ".repeat(1100)}`,
  ];
  for (const t of bad) {
    assert.throws(() => parseFilterTemplate(t), FilterTemplateError, t);
  }
});

Deno.test("parseFilterTemplate() accepts compound filters around placeholders", () => {
  parseFilterTemplate("(&(cn=caf\u00e9 \\2a)(mail={cert.san.email}))");
  const t = parseFilterTemplate(
    "(&(objectClass=inetOrgPerson)(|(mail={cert.san.email})(uid={cert.subject.uid})))",
  );
  assert.equal(t.parts.filter((p) => p.kind === "placeholder").length, 2);
});
