import assert from "node:assert/strict";
import { createClientCertVerifier, loadPemBundle } from "../../../protocol/x509/client_verifier.ts";
import { parseCertificate } from "../../../protocol/x509/certificate.ts";
import { CertificateError } from "../../../protocol/x509/identity.ts";
import { encodePrivateKeyPem } from "../../../protocol/x509/keys.ts";
import { PemError } from "../../../protocol/x509/pem.ts";
import { toPem } from "../../../protocol/x509/writer.ts";
import { issue, key, NOW, provider, root } from "./_fixtures.ts";
import { opensslSync } from "../../_support/openssl_pki.ts";

const ca = root("CN=Client CA,O=Example");
const inter = issue("CN=Client Sub CA,O=Example", ca, { key: key("P-256", 2), isCa: true });
const alice = issue("emailAddress=Alice@Example.org,CN=alice,O=Example", inter, {
  key: key("ed25519"),
  sanEmail: ["alice@example.org", "a.l@example.org"],
  sanDns: ["alice.example.org"],
  extKeyUsage: ["clientAuth"],
  serial: 0xabcdefn,
});

Deno.test("createClientCertVerifier() verifies a chain and builds the identity", () => {
  const v = createClientCertVerifier({ anchors: [ca.der], provider, clock: () => NOW });
  assert.deepEqual(v.authorityNames, [parseCertificate(ca.der).subject.der]);
  const peer = v.verify([alice.der, inter.der]);
  const id = peer.identity;
  assert.equal(id.subject, "emailAddress=Alice@Example.org,CN=alice,O=Example");
  assert.equal(id.issuer, "CN=Client Sub CA,O=Example");
  assert.deepEqual(id.emails, ["alice@example.org", "a.l@example.org"]);
  assert.deepEqual(id.dnsNames, ["alice.example.org"]);
  assert.equal(id.serial, "abcdef");
  assert.equal(id.fingerprintSha256.length, 64);
  assert.equal(id.subjectAttributes[0]?.type, "O");
  assert.deepEqual(peer.publicKey, provider.publicKeyOf(alice.key));
  assert.deepEqual(peer.path, [alice.der, inter.der, ca.der]);
});

Deno.test("ClientCertVerifier.verify() throws CertificateError with the right alert", () => {
  const v = createClientCertVerifier({ anchors: [ca.der], provider, clock: () => NOW });
  assert.throws(
    () => v.verify([]),
    (e) => e instanceof CertificateError && e.alert === "bad_certificate",
  );
  assert.throws(
    () => v.verify([alice.der]),
    (e) => e instanceof CertificateError && e.alert === "unknown_ca",
  );
  assert.throws(
    () => v.verify([Uint8Array.of(0x30, 0x00)]),
    (e) => e instanceof CertificateError && e.alert === "bad_certificate",
  );
  const later = createClientCertVerifier({
    anchors: [ca.der],
    provider,
    clock: () => new Date(NOW.getTime() + 400 * 86400_000),
  });
  assert.throws(
    () => later.verify([alice.der, inter.der]),
    (e) => e instanceof CertificateError && e.alert === "certificate_expired",
  );
  const serverCert = issue("CN=srv", inter, { extKeyUsage: ["serverAuth"] });
  assert.throws(
    () => v.verify([serverCert.der, inter.der]),
    (e) =>
      e instanceof CertificateError && e.alert === "bad_certificate" &&
      /clientAuth/.test(e.message),
  );
  const shallow = createClientCertVerifier({
    anchors: [ca.der],
    provider,
    clock: () => NOW,
    maxDepth: 1,
  });
  assert.throws(() => shallow.verify([alice.der, inter.der]), /too long/);
});

Deno.test("loadPemBundle() returns the certificates of a bundle", () => {
  const text = "# bundle\n" + toPem(ca.der) + encodePrivateKeyPem(key("P-256", 9)) +
    toPem(inter.der);
  assert.deepEqual(loadPemBundle(text), [ca.der, inter.der]);
  assert.throws(() => loadPemBundle("nothing"), PemError);
});

// Interop: chains made entirely by the openssl CLI.
const dir = Deno.makeTempDirSync({ prefix: "x509-ossl-" });
const ext = `
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = email:user@example.org
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
`;
Deno.writeTextFileSync(`${dir}/ext.cnf`, ext);
opensslSync(
  ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-out", "ca.key"],
  dir,
);
opensslSync([
  "req",
  "-x509",
  "-new",
  "-key",
  "ca.key",
  "-subj",
  "/O=Interop/CN=OpenSSL CA",
  "-days",
  "5",
  "-config",
  "ext.cnf",
  "-extensions",
  "ca",
  "-sha384",
  "-out",
  "ca.pem",
], dir);
const osslCa = loadPemBundle(Deno.readTextFileSync(`${dir}/ca.pem`));

function osslLeaf(name: string, keyArgs: string[], digest = "-sha256"): Uint8Array[] {
  opensslSync(["genpkey", ...keyArgs, "-out", `${name}.key`], dir);
  opensslSync([
    "req",
    "-new",
    "-key",
    `${name}.key`,
    "-subj",
    `/O=Interop/CN=${name}`,
    "-out",
    `${name}.csr`,
  ], dir);
  opensslSync([
    "x509",
    "-req",
    "-in",
    `${name}.csr`,
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-days",
    "2",
    "-extfile",
    "ext.cnf",
    "-extensions",
    "client",
    digest,
    "-out",
    `${name}.pem`,
  ], dir);
  return loadPemBundle(Deno.readTextFileSync(`${dir}/${name}.pem`));
}

const osslCases: [string, string[], string][] = [
  ["rsa2048", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"], "rsa"],
  ["p256", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"], "ec"],
  ["p384", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"], "ec"],
  ["ed25519", ["-algorithm", "ED25519"], "ed25519"],
];
for (const [name, args, kind] of osslCases) {
  Deno.test(`ClientCertVerifier accepts an openssl-made ${name} client certificate`, () => {
    const v = createClientCertVerifier({ anchors: osslCa, provider });
    const peer = v.verify(osslLeaf(name, args));
    assert.equal(peer.publicKey.kind, kind);
    assert.deepEqual(peer.identity.emails, ["user@example.org"]);
    assert.equal(peer.identity.subject, `CN=${name},O=Interop`);
    assert.equal(peer.identity.issuer, "CN=OpenSSL CA,O=Interop");
    const fp = opensslSync(
      ["x509", "-in", `${name}.pem`, "-noout", "-fingerprint", "-sha256"],
      dir,
    );
    assert.equal(
      fp.trim().split("=")[1]!.replaceAll(":", "").toLowerCase(),
      peer.identity.fingerprintSha256,
    );
    const serial = opensslSync(["x509", "-in", `${name}.pem`, "-noout", "-serial"], dir);
    assert.equal(
      serial.trim().split("=")[1]!.toLowerCase().replace(/^(00)+/, ""),
      peer.identity.serial,
    );
  });
}

Deno.test("ClientCertVerifier refuses openssl-made SHA-1 and 1024-bit RSA client certificates", () => {
  const v = createClientCertVerifier({ anchors: osslCa, provider });
  const sha1 = osslLeaf(
    "sha1",
    ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    "-sha1",
  );
  assert.throws(
    () => v.verify(sha1),
    (e) => e instanceof CertificateError && e.alert === "unsupported_certificate",
  );
  const small = osslLeaf("rsa1024", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"]);
  assert.throws(
    () => v.verify(small),
    (e) => e instanceof CertificateError && e.alert === "unsupported_certificate",
  );
  const ed448 = osslLeaf("ed448", ["-algorithm", "ED448"]);
  assert.throws(
    () => v.verify(ed448),
    (e) => e instanceof CertificateError && e.alert === "unsupported_certificate",
  );
  // And an openssl certificate checked against our own unrelated CA.
  const other = createClientCertVerifier({ anchors: [ca.der], provider });
  assert.throws(
    () =>
      other.verify(osslLeaf("p256b", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"])),
    (e) => e instanceof CertificateError && e.alert === "unknown_ca",
  );
});
