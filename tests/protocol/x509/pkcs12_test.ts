import assert from "node:assert/strict";
import { encodePkcs12 } from "../../../protocol/x509/pkcs12.ts";
import { decodePemOne } from "../../../protocol/x509/pem.ts";
import { parsePrivateKey } from "../../../protocol/x509/keys.ts";
import { issue, key, provider, root, tmp } from "./_fixtures.ts";
import { opensslSync, opensslTry } from "../../_support/openssl_pki.ts";

for (const kind of ["P-256", "ed25519", "rsa2048"] as const) {
  Deno.test(`encodePkcs12() writes a ${kind} file that openssl pkcs12 reads`, () => {
    const ca = root("CN=P12 Root");
    const leaf = issue("CN=carol", ca, { key: key(kind), sanEmail: ["carol@example.org"] });
    const p12 = encodePkcs12({
      certificates: [leaf.der, ca.der],
      key: leaf.key,
      password: "s3cret pass",
      friendlyName: "carol",
      iterations: 2048,
    }, provider);
    const file = `carol-${kind}.p12`;
    Deno.writeFileSync(`${tmp}/${file}`, p12);
    const out = opensslSync(
      ["pkcs12", "-info", "-nodes", "-passin", "pass:s3cret pass", "-in", file],
      tmp,
    );
    assert.match(out, /friendlyName: carol/);
    assert.deepEqual(parsePrivateKey(out), leaf.key);
    const certs = out.split("-----BEGIN CERTIFICATE-----").length - 1;
    assert.equal(certs, 2);
    const first = decodePemOne(
      out.slice(out.indexOf("-----BEGIN CERTIFICATE-----")).split("-----END CERTIFICATE-----")[0] +
        "-----END CERTIFICATE-----\n",
      "CERTIFICATE",
    );
    assert.deepEqual(first.der, leaf.der);
    const wrong = opensslTry(
      ["pkcs12", "-info", "-nodes", "-passin", "pass:wrong", "-in", file],
      tmp,
    );
    assert.ok(!wrong.ok);
    assert.match(wrong.output, /mac verify/i);
  });
}
