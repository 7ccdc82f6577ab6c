/**
 * An asynchronous signer on WebCrypto. `crypto.subtle.sign` runs on Deno's thread pool, so a
 * server with many handshakes in flight signs them in parallel while the JavaScript thread
 * keeps moving records (`bench/handshake_bench.ts` measures both ways).
 *
 * ECDSA (P-256 with SHA-256, P-384 with SHA-384), RSA-PSS and RSASSA-PKCS1-v1_5 go to
 * WebCrypto; anything else (Ed25519, whose native signature takes about 25 µs, or an ECDSA
 * curve and hash that do not match) is signed synchronously by the fallback provider.
 * WebCrypto returns ECDSA signatures as r || s; TLS wants the DER ECDSA-Sig-Value (RFC 8422,
 * Section 5.4; RFC 8446, Section 4.2.3), so they are converted.
 */
import {
  type AsyncSigner,
  type CryptoProvider,
  type EcCurve,
  type HashAlgorithm,
  type PrivateKey,
} from "./provider.ts";

const CURVE_HASH: Readonly<Record<EcCurve, HashAlgorithm>> = {
  "P-256": "SHA-256",
  "P-384": "SHA-384",
};
const CURVE_BYTES: Readonly<Record<EcCurve, number>> = { "P-256": 32, "P-384": 48 };
const HASH_BYTES: Readonly<Record<HashAlgorithm, number>> = {
  "SHA-256": 32,
  "SHA-384": 48,
  "SHA-512": 64,
};

/** Creates a WebCrypto signer that falls back to `fallback` for what it does not cover. */
export function webCryptoSigner(fallback: CryptoProvider): AsyncSigner {
  /** Imported keys, per private key and algorithm: a server imports its key once. */
  const imported = new WeakMap<PrivateKey, Map<string, Promise<CryptoKey>>>();

  function importOnce(key: PrivateKey, id: string, make: () => Promise<CryptoKey>) {
    let byAlgorithm = imported.get(key);
    if (byAlgorithm === undefined) imported.set(key, byAlgorithm = new Map());
    let k = byAlgorithm.get(id);
    if (k === undefined) {
      k = make();
      byAlgorithm.set(id, k);
      k.catch(() => byAlgorithm.delete(id));
    }
    return k;
  }

  return {
    name: "webcrypto",
    async sign(key, algorithm, message): Promise<Uint8Array> {
      const data = message.slice();
      if (
        algorithm.kind === "ecdsa" && key.kind === "ec" &&
        CURVE_HASH[key.curve] === algorithm.hash
      ) {
        const k = await importOnce(key, "ecdsa", () => importEc(key));
        const raw = await crypto.subtle.sign({ name: "ECDSA", hash: algorithm.hash }, k, data);
        return ecdsaRawToDer(new Uint8Array(raw), CURVE_BYTES[key.curve]);
      }
      if ((algorithm.kind === "rsa-pss" || algorithm.kind === "rsa-pkcs1") && key.kind === "rsa") {
        const name = algorithm.kind === "rsa-pss" ? "RSA-PSS" : "RSASSA-PKCS1-v1_5";
        const k = await importOnce(
          key,
          `${name}/${algorithm.hash}`,
          () =>
            crypto.subtle.importKey("jwk", rsaJwk(key), { name, hash: algorithm.hash }, false, [
              "sign",
            ]),
        );
        const params = algorithm.kind === "rsa-pss"
          ? { name, saltLength: HASH_BYTES[algorithm.hash] }
          : { name };
        return new Uint8Array(await crypto.subtle.sign(params, k, data));
      }
      return fallback.sign(key, algorithm, message);
    },
  };
}

function importEc(key: Extract<PrivateKey, { kind: "ec" }>): Promise<CryptoKey> {
  const size = CURVE_BYTES[key.curve];
  const d = new Uint8Array(size);
  d.set(key.d.subarray(Math.max(0, key.d.length - size)), size - Math.min(size, key.d.length));
  return crypto.subtle.importKey(
    "jwk",
    {
      kty: "EC",
      crv: key.curve,
      d: b64u(d),
      x: b64u(key.publicKey.subarray(1, 1 + size)),
      y: b64u(key.publicKey.subarray(1 + size)),
    },
    { name: "ECDSA", namedCurve: key.curve },
    false,
    ["sign"],
  );
}

function rsaJwk(key: Extract<PrivateKey, { kind: "rsa" }>): JsonWebKey {
  const n = (v: bigint) => b64u(bigintBytes(v));
  return {
    kty: "RSA",
    n: n(key.n),
    e: n(key.e),
    d: n(key.d),
    p: n(key.p),
    q: n(key.q),
    dp: n(key.dp),
    dq: n(key.dq),
    qi: n(key.qi),
  };
}

function bigintBytes(v: bigint): Uint8Array {
  let hex = v.toString(16);
  if (hex.length % 2 === 1) hex = "0" + hex;
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function b64u(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** r || s (each `size` bytes) to a DER ECDSA-Sig-Value (RFC 3279, Section 2.2.3). */
export function ecdsaRawToDer(raw: Uint8Array, size: number): Uint8Array {
  if (raw.length !== 2 * size) throw new Error("ECDSA signature has the wrong length");
  const integer = (v: Uint8Array): Uint8Array => {
    let i = 0;
    while (i < v.length - 1 && v[i] === 0) i++;
    const body = v.subarray(i);
    const pad = body[0]! >= 0x80 ? 1 : 0;
    const out = new Uint8Array(2 + pad + body.length);
    out[0] = 0x02;
    out[1] = pad + body.length;
    out.set(body, 2 + pad);
    return out;
  };
  const r = integer(raw.subarray(0, size));
  const s = integer(raw.subarray(size));
  const len = r.length + s.length;
  const header = len < 0x80 ? [0x30, len] : [0x30, 0x81, len];
  const out = new Uint8Array(header.length + len);
  out.set(header);
  out.set(r, header.length);
  out.set(s, header.length + r.length);
  return out;
}
