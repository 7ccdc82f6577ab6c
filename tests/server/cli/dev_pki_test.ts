import assert from "node:assert/strict";
import { join } from "node:path";
import { parseCertificate } from "../../../protocol/x509/certificate.ts";
import { decodePem } from "../../../protocol/x509/pem.ts";
import { Oid } from "../../../protocol/x509/oid.ts";
import { parseConfig } from "../../../server/config/mod.ts";
import { checkKeyPair } from "../../../server/config/key_match.ts";
import { CliError } from "../../../server/cli/args.ts";
import { ensureDevPki, issueClientCertificate } from "../../../server/cli/dev_pki.ts";

Deno.test("ensureDevPki() creates a CA and server chain once, then reuses them", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "postern-pki-" });
  try {
    const certs = join(dir, "certs");
    const first = await ensureDevPki(certs);
    assert.equal(first.createdCa, true);
    assert.equal(first.createdServer, true);
    const before = Deno.readTextFileSync(first.serverCertificate);
    const second = await ensureDevPki(certs);
    assert.equal(second.createdCa, false);
    assert.equal(second.createdServer, false);
    assert.equal(Deno.readTextFileSync(second.serverCertificate), before);
    for (const key of [first.caKey, first.serverKey]) {
      assert.equal(Deno.statSync(key).mode! & 0o777, 0o600);
    }

    const chain = decodePem(before).map((b) => parseCertificate(b.der));
    assert.equal(chain.length, 2);
    const [leaf, ca] = chain;
    assert.equal(ca!.extensions.basicConstraints?.ca, true);
    assert.deepEqual(leaf!.extensions.extKeyUsage, [Oid.serverAuth]);
    assert.deepEqual(
      leaf!.extensions.subjectAltName?.map((n) => n.kind === "dNSName" ? n.value : n.kind),
      ["localhost", "iPAddress", "iPAddress"],
    );
    assert.equal(
      checkKeyPair(before, Deno.readTextFileSync(first.serverKey)),
      null,
    );
    // The defaults point at exactly these files, so a fresh directory validates afterwards.
    const config = parseConfig("", join(dir, "config.yaml"));
    assert.equal(config.tls.certificate, first.serverCertificate);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("issueClientCertificate() writes an email SAN and the clientAuth EKU", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "postern-pki-" });
  try {
    await ensureDevPki(dir);
    const issued = await issueClientCertificate(dir, "alice");
    const cert = parseCertificate(issued.der);
    assert.deepEqual(cert.extensions.extKeyUsage, [Oid.clientAuth]);
    assert.deepEqual(cert.extensions.subjectAltName, [
      { kind: "rfc822Name", value: "alice@localhost" },
    ]);
    assert.equal(Deno.statSync(issued.key).mode! & 0o777, 0o600);
    await assert.rejects(issueClientCertificate(dir, "alice"), CliError);
    await assert.rejects(issueClientCertificate(dir, "../x"), CliError);
    await assert.rejects(issueClientCertificate(join(dir, "empty"), "bob"), /no CA in/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
