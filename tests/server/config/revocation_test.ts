/** The revocation settings of the config file: `tls.crl`, `tls.crl_policy`, `directory.sync`. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ConfigError, parseConfig } from "../../../server/config/mod.ts";
import { makeOpensslPki, opensslCrl } from "../../_support/openssl_pki.ts";

const DIRECTORY = "directory:\n  url: ldap://127.0.0.1:389\n  bind_dn: cn=p\n" +
  "  bind_password_file: pw\n  base_dn: dc=x\n";

function errorsOf(text: string, file = "config.yaml", checkFiles = false): string[] {
  try {
    parseConfig(text, file, { checkFiles });
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${error}`);
    return error.message.split("\n");
  }
  assert.fail("expected a ConfigError");
}

Deno.test("parseConfig() reads directory.sync, default auto, and points at a bad value", () => {
  const auto = parseConfig(DIRECTORY, "config.yaml", { checkFiles: false });
  assert.equal(auto.directory?.sync, "auto");
  const poll = parseConfig(DIRECTORY + "  sync: poll\n", "config.yaml", { checkFiles: false });
  assert.equal(poll.directory?.sync, "poll");
  assert.deepEqual(errorsOf(DIRECTORY + "  sync: content-sync\n"), [
    'config.yaml:6:9: directory.sync: invalid value "content-sync" (expected auto, ' +
    'content_sync, persistent_search or poll); did you mean "content_sync"?',
  ]);
});

Deno.test("parseConfig() reads tls.crl and crl_policy, and hard needs a CRL", () => {
  const none = parseConfig("", "/srv/config.yaml", { checkFiles: false });
  assert.deepEqual([none.tls.crl, none.tls.crlPolicy], [[], "soft"]);
  const some = parseConfig(
    "tls:\n  crl: [crl/a.pem, /etc/b.crl]\n  crl_policy: hard\n",
    "/srv/config.yaml",
    { checkFiles: false },
  );
  assert.deepEqual(some.tls.crl, ["/srv/crl/a.pem", "/etc/b.crl"]);
  assert.equal(some.tls.crlPolicy, "hard");
  assert.deepEqual(errorsOf("tls:\n  crl_policy: hard\n"), [
    "config.yaml:2:15: tls.crl_policy: hard needs at least one file in tls.crl",
  ]);
  assert.deepEqual(errorsOf("tls:\n  crl_policy: strict\n"), [
    'config.yaml:2:15: tls.crl_policy: invalid value "strict" (expected soft or hard)',
  ]);
});

Deno.test("parseConfig() checks that each CRL file holds a CRL signed by a client CA", async () => {
  const pki = await makeOpensslPki();
  const stranger = await makeOpensslPki();
  try {
    const dir = pki.dir;
    const alice = await pki.client("ec256", "alice");
    Deno.writeTextFileSync(join(dir, "good.crl"), await opensslCrl(pki.ca, [alice.certPath]));
    Deno.writeTextFileSync(join(dir, "foreign.crl"), await opensslCrl(stranger.ca, []));
    Deno.writeTextFileSync(join(dir, "junk.pem"), "not a CRL\n");
    const file = join(dir, "config.yaml");
    const tls = (crl: string) =>
      `tls:\n  client_auth: optional\n  client_ca: [ca.pem]\n  crl:\n${crl}`;
    const good = parseConfig(tls("    - good.crl\n"), file, { checkFiles: false });
    assert.deepEqual(good.tls.crl, [join(dir, "good.crl")]);
    const issues = errorsOf(
      tls("    - good.crl\n    - junk.pem\n    - missing.crl\n    - foreign.crl\n"),
      file,
      true,
    ).filter((l) => l.includes("tls.crl"));
    assert.deepEqual(issues, [
      `${file}:6:7: tls.crl[1]: cannot read "junk.pem" at ${dir}/junk.pem: no X509 CRL block ` +
      "in the file",
      `${file}:7:7: tls.crl[2]: cannot read "missing.crl" at ${dir}/missing.crl: no such file`,
      `${file}:8:7: tls.crl[3]: cannot read "foreign.crl" at ${dir}/foreign.crl: the CRL ` +
      "signature does not verify",
    ]);
    assert.deepEqual(
      errorsOf("tls:\n  client_auth: none\n  crl: [good.crl]\n", file, false),
      [
        `${file}:3:8: tls.crl: CRLs need client certificates: set client_auth to optional or ` +
        "required",
      ],
    );
  } finally {
    await pki.remove();
    await stranger.remove();
  }
});
