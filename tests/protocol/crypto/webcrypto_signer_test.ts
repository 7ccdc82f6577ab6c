import assert from "node:assert/strict";
import {
  defaultProvider,
  type PrivateKeyKind,
  type SignatureAlgorithm,
  webCryptoSigner,
} from "../../../protocol/crypto/mod.ts";
import { ecdsaRawToDer } from "../../../protocol/crypto/webcrypto_signer.ts";

const provider = defaultProvider;
const signer = webCryptoSigner(provider);

const cases: [PrivateKeyKind, SignatureAlgorithm][] = [
  ["P-256", { kind: "ecdsa", hash: "SHA-256" }],
  ["P-384", { kind: "ecdsa", hash: "SHA-384" }],
  ["P-256", { kind: "ecdsa", hash: "SHA-384" }],
  ["rsa2048", { kind: "rsa-pss", hash: "SHA-256" }],
  ["rsa2048", { kind: "rsa-pss", hash: "SHA-512" }],
  ["rsa2048", { kind: "rsa-pkcs1", hash: "SHA-256" }],
  ["ed25519", { kind: "ed25519" }],
];

for (const [kind, algorithm] of cases) {
  Deno.test(`webCryptoSigner() signs ${kind} ${JSON.stringify(algorithm)} so that the provider verifies it`, async () => {
    const key = provider.generatePrivateKey(kind);
    const publicKey = provider.publicKeyOf(key);
    const message = provider.randomBytes(130);
    for (let i = 0; i < 3; i++) {
      const signature = await signer.sign(key, algorithm, message);
      assert.ok(provider.verify(publicKey, algorithm, message, signature));
      const other = message.slice();
      other[0]! ^= 1;
      assert.ok(!provider.verify(publicKey, algorithm, other, signature));
    }
  });
}

Deno.test("webCryptoSigner() signs many messages concurrently, each under its own content", async () => {
  const key = provider.generatePrivateKey("P-256");
  const publicKey = provider.publicKeyOf(key);
  const algorithm: SignatureAlgorithm = { kind: "ecdsa", hash: "SHA-256" };
  const messages = Array.from({ length: 64 }, () => provider.randomBytes(64));
  const signatures = await Promise.all(messages.map((m) => signer.sign(key, algorithm, m)));
  signatures.forEach((s, i) => assert.ok(provider.verify(publicKey, algorithm, messages[i]!, s)));
});

Deno.test("ecdsaRawToDer() strips leading zeros and pads high bits", () => {
  const raw = new Uint8Array(64);
  raw[31] = 1;
  raw[32] = 0x80;
  const der = ecdsaRawToDer(raw, 32);
  assert.deepEqual(Array.from(der.subarray(0, 7)), [0x30, 3 + 35, 0x02, 1, 1, 0x02, 33]);
  assert.equal(der[7], 0);
  assert.equal(der[8], 0x80);
  assert.equal(der.length, 2 + 3 + 35);
});
