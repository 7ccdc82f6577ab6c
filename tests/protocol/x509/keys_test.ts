import assert from "node:assert/strict";
import { nobleProvider } from "../../../protocol/crypto/mod.ts";
import {
  encodePrivateKeyPem,
  encodePrivateKeyPkcs8,
  encodeSpki,
  KeyError,
  parsePrivateKey,
} from "../../../protocol/x509/keys.ts";
import { decodePemOne, encodePem } from "../../../protocol/x509/pem.ts";
import { opensslSync } from "../../_support/openssl_pki.ts";

const dir = Deno.makeTempDirSync({ prefix: "x509-keys-" });

function spkiOf(file: string, inform = "PEM"): Uint8Array {
  opensslSync(
    ["pkey", "-inform", inform, "-in", file, "-pubout", "-outform", "DER", "-out", "pub.der"],
    dir,
  );
  return Deno.readFileSync(`${dir}/pub.der`);
}

const cases: [string, string[], string[]?][] = [
  ["PKCS#8 P-256", ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]],
  ["PKCS#8 P-384", ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"]],
  ["PKCS#8 Ed25519", ["genpkey", "-algorithm", "ED25519"]],
  ["PKCS#8 RSA", ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"]],
  ["SEC1 P-256 (ecparam -genkey)", ["ecparam", "-name", "prime256v1", "-genkey"]],
  ["PKCS#1 RSA (genrsa -traditional)", ["genrsa", "-traditional"], ["1024"]],
];

for (const [label, args, tail] of cases) {
  Deno.test(`parsePrivateKey() reads ${label} and re-encodes it as PKCS#8 openssl accepts`, () => {
    const file = `k${cases.findIndex((c) => c[0] === label)}.pem`;
    opensslSync([...args, "-out", file, ...(tail ?? [])], dir);
    const pem = Deno.readTextFileSync(`${dir}/${file}`);
    const key = parsePrivateKey(pem);
    const expected = spkiOf(file);
    assert.deepEqual(encodeSpki(nobleProvider.publicKeyOf(key)), expected);
    // DER input is accepted too.
    const der = decodePemOne(pem, ["PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY"]).der;
    assert.deepEqual(parsePrivateKey(der), key);
    Deno.writeFileSync(`${dir}/re.der`, encodePrivateKeyPkcs8(key));
    assert.deepEqual(spkiOf("re.der", "DER"), expected);
    assert.deepEqual(parsePrivateKey(encodePrivateKeyPem(key)), key);
  });
}

Deno.test("parsePrivateKey() refuses encrypted keys, mismatched halves and garbage", () => {
  opensslSync(
    ["genpkey", "-algorithm", "ED25519", "-out", "enc.pem", "-aes256", "-pass", "pass:x"],
    dir,
  );
  assert.throws(() => parsePrivateKey(Deno.readTextFileSync(`${dir}/enc.pem`)), /Encrypted/);
  assert.throws(() => parsePrivateKey("nothing here"), KeyError);
  assert.throws(() => parsePrivateKey(Uint8Array.of(0x30, 0x00)), KeyError);
  const a = nobleProvider.generatePrivateKey("P-256");
  const b = nobleProvider.generatePrivateKey("P-256");
  if (a.kind !== "ec" || b.kind !== "ec") throw new Error("unexpected");
  const mixed = encodePem("PRIVATE KEY", encodePrivateKeyPkcs8({ ...a, publicKey: b.publicKey }));
  assert.throws(() => parsePrivateKey(mixed), /mismatch/);
  const der = encodePrivateKeyPkcs8(a);
  for (let n = 0; n < der.length; n++) {
    assert.throws(() => parsePrivateKey(der.subarray(0, n)), KeyError);
  }
});
