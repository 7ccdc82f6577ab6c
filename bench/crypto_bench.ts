/**
 * noble vs node:crypto, per primitive the TLS engine uses. Run with
 * `deno bench -A bench/crypto_bench.ts`; each group prints the native/noble ratio, and the
 * choice of `defaultProvider` in protocol/crypto/mod.ts follows these figures.
 */
import { createCipheriv } from "node:crypto";
import type { CryptoProvider, PrivateKey } from "../protocol/crypto/provider.ts";
import { nobleProvider } from "../protocol/crypto/noble.ts";
import { nativeProvider } from "../protocol/crypto/native.ts";
import { defaultProvider } from "../protocol/crypto/mod.ts";

const PROVIDERS: readonly CryptoProvider[] = [nobleProvider, nativeProvider, defaultProvider];

const RECORD = nobleProvider.randomBytes(16384);
const AAD = nobleProvider.randomBytes(5);
const NONCE = nobleProvider.randomBytes(12);
const MESSAGE = nobleProvider.randomBytes(130);
const PRK = nobleProvider.randomBytes(32);
const INFO = new TextEncoder().encode("\x00\x10\x0ftls13 c hs traffic\x20" + "x".repeat(32));

const p256Key = nobleProvider.generatePrivateKey("P-256");
const p384Key = nobleProvider.generatePrivateKey("P-384");
const ed25519Key = nobleProvider.generatePrivateKey("ed25519");
const rsaKey = nativeProvider.generatePrivateKey("rsa2048");

function signatures(key: PrivateKey, algorithm: Parameters<CryptoProvider["sign"]>[1]) {
  const sig = nobleProvider.sign(key, algorithm, MESSAGE);
  const pub = nobleProvider.publicKeyOf(key);
  return { sig, pub };
}

const p256Sig = signatures(p256Key, { kind: "ecdsa", hash: "SHA-256" });
const p384Sig = signatures(p384Key, { kind: "ecdsa", hash: "SHA-384" });
const rsaPkcs1Sig = signatures(rsaKey, { kind: "rsa-pkcs1", hash: "SHA-256" });
const ed25519Sig = signatures(ed25519Key, { kind: "ed25519" });
const rsaSig = signatures(rsaKey, { kind: "rsa-pss", hash: "SHA-256" });
const rsa4096Sig = signatures(nativeProvider.generatePrivateKey("rsa4096"), {
  kind: "rsa-pkcs1",
  hash: "SHA-256",
});

for (const p of PROVIDERS) {
  const baseline = p === nobleProvider;
  const peerX25519 = p.generateKeyShare("x25519").publicKey;
  const peerP256 = p.generateKeyShare("secp256r1").publicKey;
  const peerP384 = p.generateKeyShare("secp384r1").publicKey;

  Deno.bench(`X25519 keygen + derive (${p.name})`, { group: "x25519", baseline }, () => {
    p.generateKeyShare("x25519").computeSecret(peerX25519);
  });
  Deno.bench(`P-256 keygen + derive (${p.name})`, { group: "p256-ecdh", baseline }, () => {
    p.generateKeyShare("secp256r1").computeSecret(peerP256);
  });
  Deno.bench(`P-384 keygen + derive (${p.name})`, { group: "p384-ecdh", baseline }, () => {
    p.generateKeyShare("secp384r1").computeSecret(peerP384);
  });
  Deno.bench(`P-256 ECDSA sign (${p.name})`, { group: "p256-sign", baseline }, () => {
    p.sign(p256Key, { kind: "ecdsa", hash: "SHA-256" }, MESSAGE);
  });
  Deno.bench(`P-256 ECDSA verify (${p.name})`, { group: "p256-verify", baseline }, () => {
    p.verify(p256Sig.pub, { kind: "ecdsa", hash: "SHA-256" }, MESSAGE, p256Sig.sig);
  });
  Deno.bench(`P-384 ECDSA sign (${p.name})`, { group: "p384-sign", baseline }, () => {
    p.sign(p384Key, { kind: "ecdsa", hash: "SHA-384" }, MESSAGE);
  });
  Deno.bench(`P-384 ECDSA verify (${p.name})`, { group: "p384-verify", baseline }, () => {
    p.verify(p384Sig.pub, { kind: "ecdsa", hash: "SHA-384" }, MESSAGE, p384Sig.sig);
  });
  Deno.bench(`Ed25519 sign (${p.name})`, { group: "ed25519-sign", baseline }, () => {
    p.sign(ed25519Key, { kind: "ed25519" }, MESSAGE);
  });
  Deno.bench(`Ed25519 verify (${p.name})`, { group: "ed25519-verify", baseline }, () => {
    p.verify(ed25519Sig.pub, { kind: "ed25519" }, MESSAGE, ed25519Sig.sig);
  });
  Deno.bench(`RSA-2048 PSS sign (${p.name})`, { group: "rsa-sign", baseline }, () => {
    p.sign(rsaKey, { kind: "rsa-pss", hash: "SHA-256" }, MESSAGE);
  });
  Deno.bench(`RSA-2048 PSS verify (${p.name})`, { group: "rsa-verify", baseline }, () => {
    p.verify(rsaSig.pub, { kind: "rsa-pss", hash: "SHA-256" }, MESSAGE, rsaSig.sig);
  });

  Deno.bench(`RSA-2048 PKCS#1 verify (${p.name})`, { group: "rsa-pkcs1-verify", baseline }, () => {
    p.verify(rsaPkcs1Sig.pub, { kind: "rsa-pkcs1", hash: "SHA-256" }, MESSAGE, rsaPkcs1Sig.sig);
  });
  // As in path validation: every certificate brings a key object seen for the first time, so
  // native pays its key import each time (node:crypto in Deno also refuses moduli over 4096).
  Deno.bench(
    `RSA-4096 PKCS#1 verify, fresh key object (${p.name})`,
    { group: "rsa4096-verify", baseline },
    () => {
      p.verify(
        { ...rsa4096Sig.pub },
        { kind: "rsa-pkcs1", hash: "SHA-256" },
        MESSAGE,
        rsa4096Sig.sig,
      );
    },
  );

  for (const algorithm of ["AES-128-GCM", "AES-256-GCM", "CHACHA20-POLY1305"] as const) {
    const aead = p.createAead(algorithm, p.randomBytes(algorithm === "AES-128-GCM" ? 16 : 32));
    const sealed = aead.seal(NONCE, AAD, RECORD);
    Deno.bench(
      `${algorithm} seal 16 KiB (${p.name})`,
      { group: `${algorithm}-seal`, baseline },
      () => {
        aead.seal(NONCE, AAD, RECORD);
      },
    );
    Deno.bench(
      `${algorithm} open 16 KiB (${p.name})`,
      { group: `${algorithm}-open`, baseline },
      () => {
        aead.open(NONCE, AAD, sealed);
      },
    );
  }

  Deno.bench(`SHA-256 of 16 KiB (${p.name})`, { group: "sha256", baseline }, () => {
    p.hash("SHA-256", RECORD);
  });
  Deno.bench(`transcript update + digest (${p.name})`, { group: "transcript", baseline }, () => {
    const h = p.createHash("SHA-256");
    h.update(MESSAGE);
    h.digest();
    h.update(MESSAGE);
    h.digest();
  });
  Deno.bench(`HKDF-Expand SHA-256, 32 bytes (${p.name})`, { group: "hkdf", baseline }, () => {
    p.hkdfExpand("SHA-256", PRK, INFO, 32);
  });
  Deno.bench(`HMAC-SHA-256, 32 bytes (${p.name})`, { group: "hmac", baseline }, () => {
    p.hmac("SHA-256", PRK, PRK);
  });
}

/**
 * The native provider's AES-GCM against node:crypto's own `aes-128-gcm` cipher per record size:
 * from 4 KiB the provider composes an ECB keystream and a GMAC (protocol/crypto/_gcm_composed.ts),
 * below it uses that cipher.
 */
{
  const key = nobleProvider.randomBytes(16);
  const composed = nativeProvider.createAead("AES-128-GCM", key);
  for (const size of [300, 1300, 2048, 3072, 4096, 16384]) {
    const record = RECORD.subarray(0, size);
    Deno.bench(`aes-128-gcm cipher, ${size} B`, { group: `gcm-${size}`, baseline: true }, () => {
      const cipher = createCipheriv("aes-128-gcm", key, NONCE);
      cipher.setAAD(AAD);
      cipher.update(record);
      cipher.final();
      cipher.getAuthTag();
    });
    Deno.bench(`native provider, ${size} B`, { group: `gcm-${size}` }, () => {
      composed.seal(NONCE, AAD, record);
    });
  }
}
