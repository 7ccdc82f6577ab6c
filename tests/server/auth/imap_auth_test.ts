import assert from "node:assert/strict";
import { localAccountOf } from "../../../server/auth/imap_auth.ts";
import type { CertificateIdentity } from "../../../protocol/x509/identity.ts";
import type { CertificateUsername } from "../../../server/config/mod.ts";

/** An identity with the given subject CNs (DER order) and email addresses. */
function identity(cns: readonly string[], emails: readonly string[] = []): CertificateIdentity {
  return {
    subject: cns.map((cn) => `CN=${cn}`).reverse().join(","),
    subjectAttributes: cns.map((value) => ({ type: "CN", oid: "2.5.4.3", value })),
    issuer: "CN=CA",
    emails,
    dnsNames: [],
    serial: "01",
    fingerprintSha256: "00",
    notBefore: new Date(0),
    notAfter: new Date(0),
    der: new Uint8Array(0),
  };
}

const CASES: [string, CertificateIdentity, CertificateUsername, string | null][] = [
  ["one CN", identity(["alice"]), "cn", "alice"],
  ["CN=alice,CN=Users (several CNs)", identity(["Users", "alice"]), "cn", null],
  ["no CN", identity([], ["alice@example.org"]), "cn", null],
  ["an empty CN", identity([""]), "cn", null],
  ["one email", identity(["Users", "alice"], ["alice@example.org"]), "email", "alice@example.org"],
  ["one email, local part", identity(["x"], ["alice@example.org"]), "email-localpart", "alice"],
  [
    "the same email twice",
    identity([], ["a@example.org", "A@EXAMPLE.ORG"]),
    "email",
    "a@example.org",
  ],
  ["two emails", identity([], ["a@example.org", "b@example.org"]), "email-localpart", null],
  ["no email", identity(["alice"]), "email", null],
  ["an email without a local part", identity([], ["@example.org"]), "email-localpart", null],
  ["a quoted local part with @", identity([], ['"a@b"@example.org']), "email-localpart", '"a@b"'],
];

for (const [what, id, mode, expected] of CASES) {
  Deno.test(`localAccountOf() with ${mode}: ${what} gives ${expected}`, () => {
    assert.equal(localAccountOf(id, mode), expected);
  });
}
