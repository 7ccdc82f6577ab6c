import assert from "node:assert/strict";
import {
  DirectoryConfigError,
  type DirectoryConfigInput,
  loadCaPem,
  parseCertificateLookup,
  resolveDirectoryConfig,
} from "../../../server/directory/config.ts";
import { parseFilterTemplate } from "../../../server/directory/filter_template.ts";

const BASE: DirectoryConfigInput = {
  url: "ldap://127.0.0.1:389",
  bindDn: "cn=postern,dc=example,dc=org",
  bindPassword: "secret",
  baseDn: "ou=people,dc=example,dc=org",
};

Deno.test("resolveDirectoryConfig() fills in the defaults", () => {
  const c = resolveDirectoryConfig(BASE);
  assert.deepEqual(c, {
    url: "ldap://127.0.0.1:389",
    starttls: false,
    bindDn: BASE.bindDn,
    bindPassword: "secret",
    baseDn: BASE.baseDn,
    mapping: {
      kind: "filter",
      template: "(mail={cert.san.email})",
      parsed: parseFilterTemplate("(mail={cert.san.email})"),
    },
    usernameAttribute: "uid",
    cacheTtlMs: 60_000,
    onError: "deny",
    timeoutMs: 5_000,
    maxConcurrency: 4,
    recheckIntervalMs: 60_000,
    sync: "auto",
  });
});

Deno.test("resolveDirectoryConfig() rejects configurations that cannot work", () => {
  const bad: Array<Partial<DirectoryConfigInput>> = [
    { url: "http://127.0.0.1" },
    { url: "not a url" },
    { url: "ldap://127.0.0.1/dc=example" },
    { url: "ldaps://127.0.0.1", starttls: true },
    { bindDn: " " },
    { ca: "certs/ldap-ca.pem" },
    { bindPassword: "" },
    { baseDn: "" },
    { mapping: { kind: "filter", template: "(mail={cert.nope})" } },
    { mapping: { kind: "filter", template: "(mail=fixed)" } },
    { mapping: { kind: "attribute", attribute: "see also" } },
    { usernameAttribute: "u(id" },
    { cacheTtlMs: -1 },
    { onError: "cached", cacheTtlMs: 0 },
    { timeoutMs: 0 },
    { maxConcurrency: 0 },
    { maxConcurrency: 1.5 },
    { recheckIntervalMs: 5 },
  ];
  for (const over of bad) {
    assert.throws(
      () => resolveDirectoryConfig({ ...BASE, ...over }),
      DirectoryConfigError,
      JSON.stringify(over),
    );
  }
});

Deno.test("parseCertificateLookup() reads subject_dn, attribute:<name> and filter templates", () => {
  assert.deepEqual(parseCertificateLookup("subject_dn"), { kind: "subject_dn" });
  assert.deepEqual(parseCertificateLookup("attribute: seeAlso"), {
    kind: "attribute",
    attribute: "seeAlso",
  });
  assert.deepEqual(parseCertificateLookup("(mail={cert.san.email})"), {
    kind: "filter",
    template: "(mail={cert.san.email})",
  });
});

Deno.test("loadCaPem() takes PEM contents as they are and reads a path otherwise", async () => {
  const pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
  assert.equal(loadCaPem(pem), pem);
  const file = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(file, pem);
    assert.equal(loadCaPem(file), pem);
    await Deno.writeTextFile(file, "not a certificate");
    assert.throws(() => loadCaPem(file), DirectoryConfigError);
  } finally {
    await Deno.remove(file);
  }
  assert.throws(() => loadCaPem("/nonexistent/ca.pem"), DirectoryConfigError);
});
