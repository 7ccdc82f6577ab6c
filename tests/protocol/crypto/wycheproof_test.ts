/**
 * Every Wycheproof vector file in tests/fixtures/wycheproof, run against every provider.
 *
 * Result rules: "valid" must pass and "invalid" must fail. For "acceptable" we decide per flag:
 * - ECDH CompressedPoint/CompressedPublic: refused. TLS 1.3 key shares must be uncompressed
 *   (RFC 8446, Section 4.2.8.2), so computeSecret throws.
 * - X25519 (LowOrderPublic, ZeroSharedSecret, Twist, NonCanonicalPublic, ...): accepted, and the
 *   secret must match, unless the expected secret is all zero; then computeSecret must throw
 *   (RFC 8446, Section 7.4.2).
 * - RSA PKCS#1 MissingNull (DigestInfo without the NULL parameter): refused, since RFC 8017,
 *   Section 9.2 encodes the NULL and we compare whole encodings.
 * AEAD vectors outside TLS 1.3 (AES-192, nonces other than 96 bits) must be refused by our API:
 * createAead throws for the key, seal throws and open returns null for the nonce.
 *
 * `defaultProvider` mostly dispatches to these two (provider_test.ts checks the dispatch), and
 * running all of it would double the slowest vectors; only its own ChaCha20-Poly1305 (small
 * records in WebAssembly) runs the vectors here.
 */
import assert from "node:assert/strict";
import {
  CryptoError,
  type CryptoProvider,
  type HashAlgorithm,
} from "../../../protocol/crypto/provider.ts";
import { nobleProvider } from "../../../protocol/crypto/noble.ts";
import { nativeProvider } from "../../../protocol/crypto/native.ts";
import { defaultProvider } from "../../../protocol/crypto/mod.ts";
import { composedGcmOpen, composedGcmSealInto } from "../../../protocol/crypto/_gcm_composed.ts";

const DIR = new URL("../../fixtures/wycheproof/", import.meta.url);

const PROVIDERS: readonly CryptoProvider[] = [nobleProvider, nativeProvider];

interface TestCase {
  tcId: number;
  comment: string;
  flags: string[];
  result: "valid" | "invalid" | "acceptable";
  [field: string]: unknown;
}
interface TestGroup {
  tests: TestCase[];
  [field: string]: unknown;
}
interface TestFile {
  algorithm: string;
  testGroups: TestGroup[];
}

function load(name: string): TestFile {
  return JSON.parse(Deno.readTextFileSync(new URL(name, DIR))) as TestFile;
}

function hex(value: unknown): Uint8Array {
  if (typeof value !== "string") throw new TypeError("Expected a hex string");
  const out = new Uint8Array(value.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(value.substring(2 * i, 2 * i + 2), 16);
  return out;
}

function str(value: unknown): string {
  if (typeof value !== "string") throw new TypeError("Expected a string");
  return value;
}

function num(value: unknown): number {
  if (typeof value !== "number") throw new TypeError("Expected a number");
  return value;
}

function big(value: unknown): bigint {
  const s = str(value);
  return s.length === 0 ? 0n : BigInt("0x" + s);
}

function field(obj: unknown, key: string): unknown {
  if (typeof obj !== "object" || obj === null) throw new TypeError("Expected an object");
  return (obj as Record<string, unknown>)[key];
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Runs `check` for each test and collects failures into one assertion with their ids. */
function runAll(
  file: TestFile,
  check: (group: TestGroup, t: TestCase) => boolean,
): { count: number } {
  const failures: string[] = [];
  let count = 0;
  for (const group of file.testGroups) {
    for (const t of group.tests) {
      count++;
      let ok: boolean;
      try {
        ok = check(group, t);
      } catch (e) {
        ok = false;
        failures.push(`tc ${t.tcId} (${t.result}, ${t.comment}): threw ${String(e)}`);
        continue;
      }
      if (!ok) failures.push(`tc ${t.tcId} (${t.result}, ${t.comment}) [${t.flags.join(",")}]`);
    }
  }
  assert.deepEqual(failures, [], `${failures.length} of ${count} vectors failed`);
  assert.ok(count > 0);
  return { count };
}

function throwsCryptoError(fn: () => unknown): boolean {
  try {
    fn();
    return false;
  } catch (e) {
    if (e instanceof CryptoError) return true;
    throw e;
  }
}

function aeadCheck(p: CryptoProvider, algorithm: "AES" | "CHACHA20-POLY1305") {
  return (group: TestGroup, t: TestCase): boolean => {
    const key = hex(t.key), iv = hex(t.iv), aad = hex(t.aad);
    const msg = hex(t.msg), ct = hex(t.ct), tag = hex(t.tag);
    const keySize = num(group.keySize);
    const name = algorithm === "CHACHA20-POLY1305"
      ? "CHACHA20-POLY1305"
      : keySize === 128
      ? "AES-128-GCM"
      : keySize === 256
      ? "AES-256-GCM"
      : null;
    if (name === null) {
      // AES-192-GCM is not a TLS 1.3 cipher suite.
      return throwsCryptoError(() => p.createAead("AES-128-GCM", key)) &&
        throwsCryptoError(() => p.createAead("AES-256-GCM", key));
    }
    const aead = p.createAead(name, key);
    const sealed = new Uint8Array(ct.length + tag.length);
    sealed.set(ct);
    sealed.set(tag, ct.length);
    if (iv.length !== 12 || tag.length !== 16) {
      return throwsCryptoError(() => aead.seal(iv, aad, msg)) &&
        aead.open(iv, aad, sealed) === null;
    }
    const opened = aead.open(iv, aad, sealed);
    if (t.result === "valid") {
      return opened !== null && sameBytes(opened, msg) &&
        sameBytes(aead.seal(iv, aad, msg), sealed);
    }
    return opened === null;
  };
}

function ecdhCheck(p: CryptoProvider, group: "secp256r1" | "secp384r1") {
  return (_g: TestGroup, t: TestCase): boolean => {
    const run = (): Uint8Array =>
      p.keyShareFromPrivate(group, hex(t.private)).computeSecret(hex(t.public));
    if (t.result === "valid") return sameBytes(run(), hex(t.shared));
    // "invalid" and the "acceptable" compressed points: both refused.
    return throwsCryptoError(run);
  };
}

/** Converts an IEEE P1363 signature (r || s) to DER, or null when its length is wrong. */
function p1363ToDer(sig: Uint8Array, size: number): Uint8Array | null {
  if (sig.length !== 2 * size) return null;
  const integer = (bytes: Uint8Array): number[] => {
    let i = 0;
    while (i < bytes.length - 1 && bytes[i] === 0) i++;
    const body = Array.from(bytes.subarray(i));
    if (body[0]! & 0x80) body.unshift(0);
    return [0x02, body.length, ...body];
  };
  const content = [...integer(sig.subarray(0, size)), ...integer(sig.subarray(size))];
  const len = content.length < 128 ? [content.length] : [0x81, content.length];
  return new Uint8Array([0x30, ...len, ...content]);
}

function ecdsaCheck(p: CryptoProvider, p1363: boolean) {
  return (group: TestGroup, t: TestCase): boolean => {
    const pub = field(group, "publicKey");
    const curve = str(field(pub, "curve")) === "secp256r1" ? "P-256" : "P-384";
    const hash = str(group.sha) as HashAlgorithm;
    let sig: Uint8Array | null = hex(t.sig);
    if (p1363) sig = p1363ToDer(sig, curve === "P-256" ? 32 : 48);
    const ok = sig !== null &&
      p.verify(
        { kind: "ec", curve, point: hex(field(pub, "uncompressed")) },
        { kind: "ecdsa", hash },
        hex(t.msg),
        sig,
      );
    return ok === (t.result === "valid");
  };
}

function rsaCheck(p: CryptoProvider, kind: "rsa-pss" | "rsa-pkcs1") {
  return (group: TestGroup, t: TestCase): boolean => {
    const pub = field(group, "publicKey");
    const n = big(field(pub, "modulus"));
    const e = big(field(pub, "publicExponent"));
    const bits = n.toString(2).length;
    const ok = p.verify(
      { kind: "rsa", n, e, bits },
      { kind, hash: str(group.sha) as HashAlgorithm },
      hex(t.msg),
      hex(t.sig),
    );
    return ok === (t.result === "valid");
  };
}

Deno.test("default: ChaCha20-Poly1305 passes Wycheproof chacha20_poly1305_test.json", () => {
  runAll(load("chacha20_poly1305_test.json"), aeadCheck(defaultProvider, "CHACHA20-POLY1305"));
});

Deno.test("native: AES-GCM composed of ECB and GMAC passes Wycheproof aes_gcm_test.json", () => {
  // The native provider takes this path only for records of 4 KiB and more; here it runs every
  // vector of the sizes it serves (96-bit nonces, 16-byte tags, AES-128 and AES-256).
  const file = load("aes_gcm_test.json");
  const groups = file.testGroups.filter((g) =>
    num(g.ivSize) === 96 && num(g.tagSize) === 128 && [128, 256].includes(num(g.keySize))
  );
  runAll({ ...file, testGroups: groups }, (_group, t) => {
    const key = hex(t.key);
    const iv = hex(t.iv), aad = hex(t.aad), msg = hex(t.msg);
    const sealed = new Uint8Array([...hex(t.ct), ...hex(t.tag)]);
    const opened = composedGcmOpen(key, key, iv, aad, sealed);
    if (t.result !== "valid") return opened === null;
    const out = new Uint8Array(msg.length + 16);
    composedGcmSealInto({}, key, iv, aad, msg, new Uint8Array(0), out, 0);
    return opened !== null && sameBytes(opened, msg) && sameBytes(out, sealed);
  });
});

for (const p of PROVIDERS) {
  Deno.test(`${p.name}: AES-GCM passes Wycheproof aes_gcm_test.json`, () => {
    runAll(load("aes_gcm_test.json"), aeadCheck(p, "AES"));
  });

  Deno.test(`${p.name}: ChaCha20-Poly1305 passes Wycheproof chacha20_poly1305_test.json`, () => {
    runAll(load("chacha20_poly1305_test.json"), aeadCheck(p, "CHACHA20-POLY1305"));
  });

  for (const group of ["secp256r1", "secp384r1"] as const) {
    Deno.test(`${p.name}: ECDH passes Wycheproof ecdh_${group}_ecpoint_test.json`, () => {
      runAll(load(`ecdh_${group}_ecpoint_test.json`), ecdhCheck(p, group));
    });
  }

  for (const file of ["ecdsa_secp256r1_sha256_test.json", "ecdsa_secp384r1_sha384_test.json"]) {
    Deno.test(`${p.name}: ECDSA verify passes Wycheproof ${file}`, () => {
      runAll(load(file), ecdsaCheck(p, false));
    });
  }

  Deno.test(
    `${p.name}: ECDSA verify passes Wycheproof ecdsa_secp256r1_sha256_p1363_test.json via DER`,
    () => {
      runAll(load("ecdsa_secp256r1_sha256_p1363_test.json"), ecdsaCheck(p, true));
    },
  );

  Deno.test(`${p.name}: Ed25519 verify passes Wycheproof ed25519_test.json`, () => {
    runAll(load("ed25519_test.json"), (group, t) => {
      const key = hex(field(field(group, "publicKey"), "pk"));
      const ok = p.verify({ kind: "ed25519", key }, { kind: "ed25519" }, hex(t.msg), hex(t.sig));
      return ok === (t.result === "valid");
    });
  });

  for (const hash of ["SHA-256", "SHA-384"] as const) {
    const suffix = hash === "SHA-256" ? "sha256" : "sha384";
    Deno.test(`${p.name}: HKDF passes Wycheproof hkdf_${suffix}_test.json`, () => {
      runAll(load(`hkdf_${suffix}_test.json`), (_g, t) => {
        const run = () => {
          const prk = p.hkdfExtract(hash, hex(t.salt), hex(t.ikm));
          return p.hkdfExpand(hash, prk, hex(t.info), num(t.size));
        };
        if (t.result === "valid") return sameBytes(run(), hex(t.okm));
        return throwsCryptoError(run);
      });
    });

    Deno.test(`${p.name}: HMAC passes Wycheproof hmac_${suffix}_test.json`, () => {
      runAll(load(`hmac_${suffix}_test.json`), (group, t) => {
        const tag = hex(t.tag);
        const full = p.hmac(hash, hex(t.key), hex(t.msg));
        const truncated = full.subarray(0, num(group.tagSize) / 8);
        return sameBytes(truncated, tag) === (t.result === "valid");
      });
    });
  }

  Deno.test(`${p.name}: RSA-PSS verify passes Wycheproof rsa_pss_2048_sha256_mgf1_32_test.json`, () => {
    runAll(load("rsa_pss_2048_sha256_mgf1_32_test.json"), rsaCheck(p, "rsa-pss"));
  });

  Deno.test(
    `${p.name}: RSA PKCS#1 v1.5 verify passes Wycheproof rsa_signature_2048_sha256_test.json`,
    () => {
      runAll(load("rsa_signature_2048_sha256_test.json"), rsaCheck(p, "rsa-pkcs1"));
    },
  );

  Deno.test(`${p.name}: X25519 passes Wycheproof x25519_test.json`, () => {
    runAll(load("x25519_test.json"), (_g, t) => {
      const run = () =>
        p.keyShareFromPrivate("x25519", hex(t.private)).computeSecret(hex(t.public));
      const shared = hex(t.shared);
      if (t.result === "invalid") return throwsCryptoError(run);
      if (shared.every((b) => b === 0)) return throwsCryptoError(run);
      return sameBytes(run(), shared);
    });
  });
}
