/**
 * RSA key generation for both providers. Prime search in BigInt would take seconds per key, so
 * this uses `node:crypto` (OpenSSL) and exports the components as JWK (RFC 7518, Section 6.3).
 */
import { generateKeyPairSync } from "node:crypto";
import { CryptoError, type PrivateKey } from "./provider.ts";
import { bytesToBigInt } from "./_bigint.ts";

/** Generates an RSA key with public exponent 65537. */
export function generateRsaKey(bits: 2048 | 3072 | 4096): Extract<PrivateKey, { kind: "rsa" }> {
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: bits, publicExponent: 65537 });
  const jwk = privateKey.export({ format: "jwk" });
  const field = (value: string | undefined, name: string): bigint => {
    if (value === undefined) throw new CryptoError(`Generated RSA key lacks ${name}`);
    return base64UrlToBigInt(value);
  };
  return {
    kind: "rsa",
    n: field(jwk.n, "n"),
    e: field(jwk.e, "e"),
    d: field(jwk.d, "d"),
    p: field(jwk.p, "p"),
    q: field(jwk.q, "q"),
    dp: field(jwk.dp, "dp"),
    dq: field(jwk.dq, "dq"),
    qi: field(jwk.qi, "qi"),
  };
}

function base64UrlToBigInt(value: string): bigint {
  const b64 = value.replaceAll("-", "+").replaceAll("_", "/");
  const binary = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytesToBigInt(bytes);
}
