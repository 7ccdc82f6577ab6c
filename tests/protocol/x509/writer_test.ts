import assert from "node:assert/strict";
import { parseCertificate } from "../../../protocol/x509/certificate.ts";
import { encodePrivateKeyPem } from "../../../protocol/x509/keys.ts";
import { nameToString } from "../../../protocol/x509/name.ts";
import { toPem } from "../../../protocol/x509/writer.ts";
import { DerReader, DerWriter } from "../../../protocol/x509/der.ts";
import { opensslSync, opensslTry } from "../../_support/openssl_pki.ts";
import { issue, key, provider, root, tmp } from "./_fixtures.ts";

const now = new Date();
const DAY = 86400_000;
const live = { notBefore: new Date(now.getTime() - DAY), notAfter: new Date(now.getTime() + DAY) };

Deno.test("issueCertificate() output passes openssl x509 and openssl verify", () => {
  const ca = root("CN=Postern Dev CA,O=Postern", key("P-256", 1), { ...live, pathLen: 1 });
  const inter = issue("CN=Postern Intermediate,O=Postern", ca, {
    ...live,
    key: key("rsa2048"),
    isCa: true,
    pathLen: 0,
    nameConstraints: {
      permitted: [{ dns: "localhost" }, { email: "example.org" }, { ip: "127.0.0.0/8" }],
    },
  });
  const server = issue("CN=localhost", inter, {
    ...live,
    key: key("P-384"),
    rsaPadding: "pss",
    sanDns: ["localhost"],
    sanIp: ["127.0.0.1"],
    extKeyUsage: ["serverAuth"],
  });
  const client = issue("CN=alice,O=Postern", inter, {
    ...live,
    key: key("ed25519"),
    sanEmail: ["alice@example.org"],
    extKeyUsage: ["clientAuth"],
    serial: 0x1234n,
  });
  Deno.writeTextFileSync(`${tmp}/w-ca.pem`, toPem(ca.der));
  Deno.writeTextFileSync(`${tmp}/w-int.pem`, toPem(inter.der));
  Deno.writeTextFileSync(`${tmp}/w-server.pem`, toPem(server.der));
  Deno.writeTextFileSync(`${tmp}/w-client.pem`, toPem(client.der));
  Deno.writeTextFileSync(`${tmp}/w-client.key`, encodePrivateKeyPem(client.key));
  const text = opensslSync(["x509", "-noout", "-text", "-in", "w-client.pem"], tmp);
  assert.match(text, /email:alice@example.org/);
  assert.match(text, /TLS Web Client Authentication/);
  assert.match(text, /Serial Number: 4660 \(0x1234\)/);
  const stext = opensslSync(["x509", "-noout", "-text", "-in", "w-server.pem"], tmp);
  assert.match(stext, /DNS:localhost, IP Address:127.0.0.1/);
  assert.match(stext, /rsassaPss/);
  const itext = opensslSync(["x509", "-noout", "-text", "-in", "w-int.pem"], tmp);
  assert.match(itext, /CA:TRUE, pathlen:0/);
  assert.match(itext, /Permitted:\s+DNS:localhost\s+email:example.org\s+IP:127.0.0.0\/255.0.0.0/);
  for (const [leaf, purpose] of [["w-server.pem", "sslserver"], ["w-client.pem", "sslclient"]]) {
    const out = opensslTry([
      "verify",
      "-CAfile",
      "w-ca.pem",
      "-untrusted",
      "w-int.pem",
      "-purpose",
      purpose!,
      "-x509_strict",
      leaf!,
    ], tmp);
    assert.ok(out.ok, out.output);
  }
  // The key file matches the certificate.
  const pub1 = opensslSync(["pkey", "-in", "w-client.key", "-pubout"], tmp);
  const pub2 = opensslSync(["x509", "-in", "w-client.pem", "-noout", "-pubkey"], tmp);
  assert.equal(pub1, pub2);
});

Deno.test("issueCertificate() round-trips through parseCertificate()", () => {
  const ca = root("CN=Root,O=Example,C=DE");
  const leaf = issue("CN=bob", ca, {
    sanEmail: ["bob@example.org"],
    sanIp: ["::1"],
    extKeyUsage: ["clientAuth", "1.2.3.4"],
    keyUsage: ["digitalSignature", "keyEncipherment"],
    extraExtensions: [{ oid: "1.2.3.4.5", critical: true, value: Uint8Array.of(5, 0) }],
  });
  const c = parseCertificate(leaf.der);
  assert.equal(nameToString(c.issuer), "CN=Root,O=Example,C=DE");
  assert.deepEqual(c.extensions.extKeyUsage, ["1.3.6.1.5.5.7.3.2", "1.2.3.4"]);
  assert.equal(c.extensions.keyUsage, 0b101);
  assert.deepEqual(c.extensions.unknownCritical, ["1.2.3.4.5"]);
  assert.deepEqual(c.extensions.basicConstraints, {
    ca: false,
    pathLen: undefined,
    critical: true,
  });
  const ip = c.extensions.subjectAltName?.[1];
  assert.equal(ip?.kind === "iPAddress" && ip.value.length, 16);
  assert.deepEqual(
    c.extensions.authorityKeyIdentifier?.keyIdentifier,
    parseCertificate(ca.der).extensions.subjectKeyIdentifier,
  );
  const pk = c.publicKeyInfo.key!;
  assert.ok(
    provider.verify(
      parseCertificate(ca.der).publicKeyInfo.key!,
      { kind: "ecdsa", hash: "SHA-256" },
      c.tbs,
      c.signature,
    ),
  );
  assert.deepEqual(pk, provider.publicKeyOf(leaf.key));
});

Deno.test("issueCertificate() can sign with SHA-1 for negative tests", () => {
  const ca = root("CN=Old Root", key("rsa2048"), { signatureHash: "SHA-1" });
  assert.deepEqual(parseCertificate(ca.der).signatureAlgorithm, {
    kind: "weak",
    name: "sha1WithRSAEncryption",
  });
});

Deno.test("parseCertificate() rejects duplicate extensions and encoded DEFAULT FALSE", () => {
  const ca = root("CN=Dup Root");
  const dup = issue("CN=dup", ca, {
    extraExtensions: [{ oid: "2.5.29.15", critical: true, value: Uint8Array.of(3, 2, 7, 0x80) }],
  });
  assert.throws(() => parseCertificate(dup.der), /Duplicate extension 2\.5\.29\.15/);
  // An extension whose critical flag is an explicit FALSE is BER, not DER.
  const ber = withExtraExtension(
    issue("CN=ok", ca).der,
    new DerWriter().sequence((e) =>
      e.oid("1.2.3.4").boolean(false).octetString(Uint8Array.of(5, 0))
    )
      .bytes(),
  );
  assert.throws(() => parseCertificate(ber), /critical FALSE/);
  const der = withExtraExtension(
    issue("CN=ok", ca).der,
    new DerWriter().sequence((e) => e.oid("1.2.3.4").octetString(Uint8Array.of(5, 0))).bytes(),
  );
  assert.doesNotThrow(() => parseCertificate(der));
});

/** Re-encodes a certificate with one more raw Extension (the signature no longer matches). */
function withExtraExtension(cert: Uint8Array, extension: Uint8Array): Uint8Array {
  const outer = new DerReader(cert).sequence();
  const tbs = outer.sequence();
  const alg = outer.read().raw;
  const sig = outer.read().raw;
  const parts: Uint8Array[] = [];
  while (!tbs.done) {
    const el = tbs.read();
    if (el.tag !== 0xa3) {
      parts.push(el.raw);
      continue;
    }
    const exts = new DerReader(el.value).sequence();
    const items: Uint8Array[] = [];
    while (!exts.done) items.push(exts.read().raw);
    items.push(extension);
    parts.push(
      new DerWriter().explicit(3, (x) => x.sequence((s) => items.forEach((i) => s.raw(i)))).bytes(),
    );
  }
  return new DerWriter().sequence((c) => {
    c.sequence((t) => parts.forEach((p) => t.raw(p)));
    c.raw(alg).raw(sig);
  }).bytes();
}
