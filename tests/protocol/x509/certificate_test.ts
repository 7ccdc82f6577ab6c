import assert from "node:assert/strict";
import { allowsKeyUsage, parseCertificate } from "../../../protocol/x509/certificate.ts";
import { CertificateError } from "../../../protocol/x509/identity.ts";
import { nameToString } from "../../../protocol/x509/name.ts";
import { Oid } from "../../../protocol/x509/oid.ts";
import { decodePemOne } from "../../../protocol/x509/pem.ts";
import { opensslSync } from "../../_support/openssl_pki.ts";

const dir = Deno.makeTempDirSync({ prefix: "x509-cert-" });
const conf = `
[req]
distinguished_name = dn
prompt = no
[dn]
C = DE
O = Example Org
CN = alice
emailAddress = alice@example.org
[ext]
basicConstraints = critical,CA:TRUE,pathlen:1
keyUsage = critical,digitalSignature,keyCertSign
extendedKeyUsage = clientAuth,serverAuth
subjectAltName = email:alice@example.org,DNS:localhost,IP:127.0.0.1,IP:::1,dirName:alt
nameConstraints = critical,permitted;DNS:.example.org,excluded;email:bad@example.org
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[alt]
CN = Alt Name
`;
Deno.writeTextFileSync(`${dir}/req.cnf`, conf);

function makeCert(keyArgs: string[], digest: string[]): Uint8Array {
  opensslSync(["genpkey", ...keyArgs, "-out", "k.pem"], dir);
  opensslSync([
    "req",
    "-x509",
    "-new",
    "-key",
    "k.pem",
    "-config",
    "req.cnf",
    "-extensions",
    "ext",
    "-days",
    "30",
    "-set_serial",
    "0x00ff0102",
    ...digest,
    "-out",
    "c.pem",
  ], dir);
  return decodePemOne(Deno.readTextFileSync(`${dir}/c.pem`), "CERTIFICATE").der;
}

const p256 = makeCert(["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"], ["-sha256"]);

Deno.test("parseCertificate() reads an openssl P-256 certificate with every extension", () => {
  const c = parseCertificate(p256);
  assert.equal(c.version, 3);
  assert.equal(c.serialHex, "ff0102");
  assert.deepEqual(c.signatureAlgorithm, {
    kind: "supported",
    name: "ecdsa-with-SHA256",
    algorithm: { kind: "ecdsa", hash: "SHA-256" },
  });
  assert.equal(
    nameToString(c.subject),
    "emailAddress=alice@example.org,CN=alice,O=Example Org,C=DE",
  );
  assert.equal(c.publicKeyInfo.key?.kind, "ec");
  const e = c.extensions;
  assert.deepEqual(e.basicConstraints, { ca: true, pathLen: 1, critical: true });
  assert.ok(allowsKeyUsage(c, "keyCertSign"));
  assert.ok(allowsKeyUsage(c, "digitalSignature"));
  assert.ok(!allowsKeyUsage(c, "cRLSign"));
  assert.deepEqual(e.extKeyUsage, [Oid.clientAuth, Oid.serverAuth]);
  const san = e.subjectAltName!;
  assert.deepEqual(san.slice(0, 2), [
    { kind: "rfc822Name", value: "alice@example.org" },
    { kind: "dNSName", value: "localhost" },
  ]);
  assert.deepEqual(san[2], { kind: "iPAddress", value: Uint8Array.of(127, 0, 0, 1) });
  assert.equal(san[3]?.kind === "iPAddress" && san[3].value.length, 16);
  assert.equal(san[4]?.kind === "directoryName" && nameToString(san[4].value), "CN=Alt Name");
  assert.deepEqual(e.nameConstraints?.permitted, [{ kind: "dNSName", value: ".example.org" }]);
  assert.deepEqual(e.nameConstraints?.excluded, [
    { kind: "rfc822Name", value: "bad@example.org" },
  ]);
  assert.equal(e.subjectKeyIdentifier?.length, 20);
  assert.deepEqual(e.authorityKeyIdentifier?.keyIdentifier, e.subjectKeyIdentifier);
  assert.deepEqual(e.unknownCritical, []);
  assert.ok(c.notAfter.getTime() - c.notBefore.getTime() >= 29 * 86400_000);
});

Deno.test("parseCertificate() decodes RSA, RSA-PSS, P-384 and Ed25519 keys and algorithms", () => {
  const rsa = parseCertificate(
    makeCert(["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"], ["-sha384"]),
  );
  assert.equal(rsa.signatureAlgorithm.name, "sha384WithRSAEncryption");
  assert.equal(rsa.publicKeyInfo.key?.kind === "rsa" && rsa.publicKeyInfo.key.bits, 1024);
  const pss = parseCertificate(makeCert(["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"], [
    "-sha256",
    "-sigopt",
    "rsa_padding_mode:pss",
    "-sigopt",
    "rsa_pss_saltlen:32",
  ]));
  assert.deepEqual(pss.signatureAlgorithm, {
    kind: "supported",
    name: "RSASSA-PSS with SHA-256",
    algorithm: { kind: "rsa-pss", hash: "SHA-256" },
  });
  const p384 = parseCertificate(
    makeCert(["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"], ["-sha384"]),
  );
  assert.equal(p384.publicKeyInfo.key?.kind === "ec" && p384.publicKeyInfo.key.curve, "P-384");
  assert.equal(p384.signatureAlgorithm.name, "ecdsa-with-SHA384");
  const ed = parseCertificate(makeCert(["-algorithm", "ED25519"], []));
  assert.equal(ed.publicKeyInfo.key?.kind, "ed25519");
  assert.equal(ed.signatureAlgorithm.kind, "supported");
  const sha1 = parseCertificate(
    makeCert(["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"], ["-sha1"]),
  );
  assert.deepEqual(sha1.signatureAlgorithm, { kind: "weak", name: "ecdsa-with-SHA1" });
});

Deno.test("parseCertificate() rejects every truncated prefix", () => {
  for (let n = 0; n < p256.length; n++) {
    assert.throws(() => parseCertificate(p256.subarray(0, n)), CertificateError, `prefix ${n}`);
  }
});

Deno.test("parseCertificate() rejects trailing bytes and BER long-form lengths", () => {
  const trailing = new Uint8Array(p256.length + 1);
  trailing.set(p256);
  assert.throws(() => parseCertificate(trailing), /Trailing/);
  // Re-encode the outer length with one byte more than needed (0x83 00 xx xx).
  assert.equal(p256[1], 0x82);
  const ber = new Uint8Array(p256.length + 1);
  ber.set([0x30, 0x83, 0x00], 0);
  ber.set(p256.subarray(2), 3);
  assert.throws(() => parseCertificate(ber), /Non-minimal DER length/);
});

Deno.test("parseCertificate() only throws CertificateError on random mutations", () => {
  let seed = 99;
  const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 16;
  for (let i = 0; i < 1500; i++) {
    const m = p256.slice();
    for (let k = 0; k < 1 + (i % 4); k++) m[rnd() % m.length] = rnd() & 0xff;
    try {
      parseCertificate(m);
    } catch (e) {
      assert.ok(e instanceof CertificateError, String(e));
    }
  }
  for (let i = 0; i < 500; i++) {
    const b = Uint8Array.from({ length: rnd() % 200 }, () => rnd() & 0xff);
    try {
      parseCertificate(b);
    } catch (e) {
      assert.ok(e instanceof CertificateError, String(e));
    }
  }
});

Deno.test("parseCertificate() leaves an id-RSASSA-PSS public key unsupported", () => {
  const pss = parseCertificate(makeCert([
    "-algorithm",
    "RSA-PSS",
    "-pkeyopt",
    "rsa_keygen_bits:2048",
    "-pkeyopt",
    "rsa_pss_keygen_md:sha256",
    "-pkeyopt",
    "rsa_pss_keygen_saltlen:32",
  ], ["-sha256"]));
  assert.equal(pss.publicKeyInfo.algorithm, Oid.rsassaPss);
  assert.equal(pss.publicKeyInfo.key, undefined);
});
