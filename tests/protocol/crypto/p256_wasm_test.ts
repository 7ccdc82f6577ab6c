/**
 * The WebAssembly P-256 signer (protocol/crypto/p256_wasm): its field and scalar arithmetic
 * against BigInt, k * G against @noble/curves, signatures byte for byte against noble's
 * RFC 6979 ones and verified by noble, node:crypto and the `openssl` command, and the embedded
 * module against a rebuild from the C source (only where clang is installed).
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createPublicKey, verify as nodeVerify } from "node:crypto";
import { p256 } from "@noble/curves/nist.js";
import { sha256, sha384, sha512 } from "@noble/hashes/sha2.js";
import {
  P256_NONCE_BATCH,
  p256WasmFieldOp,
  p256WasmNoncesFrom,
  p256WasmSigner,
  p256WasmSignWithNonce,
  p256WasmWarm,
} from "../../../protocol/crypto/p256_wasm/mod.ts";
import {
  P256_WASM_BASE64,
  P256_WASM_CLANG,
  P256_WASM_SHA256,
} from "../../../protocol/crypto/p256_wasm/_module.ts";
import { defaultProvider, nobleProvider } from "../../../protocol/crypto/mod.ts";
import { run } from "../../_support/command.ts";

const P = 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn;
const N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
const TOP = (1n << 256n) - 1n;

function toBytes(x: bigint): Uint8Array {
  const out = new Uint8Array(32);
  for (let i = 31; i >= 0; i--) {
    out[i] = Number(x & 0xffn);
    x >>= 8n;
  }
  return out;
}

function toBig(bytes: Uint8Array): bigint {
  let x = 0n;
  for (const b of bytes) x = (x << 8n) | BigInt(b);
  return x;
}

function randomBig(): bigint {
  return toBig(crypto.getRandomValues(new Uint8Array(32)));
}

function modPow(base: bigint, e: bigint, m: bigint): bigint {
  let r = 1n;
  base %= m;
  while (e > 0n) {
    if (e & 1n) r = r * base % m;
    base = base * base % m;
    e >>= 1n;
  }
  return r;
}

const signer = p256WasmSigner();

Deno.test("the P-256 WebAssembly core instantiates and builds its table", () => {
  assert.ok(signer !== null);
  assert.ok(p256WasmWarm());
});

/** Edge values: 0, 1, m - 1, m, m + 1, p - 1, n - 1, 2^256 - 1 (every limb 0xffffffff). */
function edges(m: bigint): bigint[] {
  return [0n, 1n, 2n, m - 1n, m, m + 1n, P - 1n, N - 1n, TOP, 1n << 255n, 0xffffffffn, 1n << 32n];
}

for (const [name, m, base] of [["p", P, 0], ["n", N, 8]] as const) {
  Deno.test(`the core's arithmetic mod ${name} matches BigInt on random and edge values`, () => {
    const values = [...edges(m)];
    for (let i = 0; i < 60; i++) values.push(randomBig());
    let cases = 0;
    for (const a of values) {
      for (const b of values) {
        const ar = a % m;
        const br = b % m;
        const ab = [toBytes(a), toBytes(b)] as const;
        const hex = `a=${a.toString(16)} b=${b.toString(16)}`;
        assert.equal(toBig(p256WasmFieldOp(base, ...ab)), (ar + br) % m, `add ${hex}`);
        assert.equal(toBig(p256WasmFieldOp(base + 1, ...ab)), (ar - br + m) % m, `sub ${hex}`);
        assert.equal(toBig(p256WasmFieldOp(base + 2, ...ab)), ar * br % m, `mul ${hex}`);
        cases++;
      }
      const ab = [toBytes(a), new Uint8Array(32)] as const;
      assert.equal(toBig(p256WasmFieldOp(base + 3, ...ab)), modPow(a % m, m - 2n, m), "inverse");
      if (name === "p") {
        assert.equal(toBig(p256WasmFieldOp(4, ...ab)), (a % m) ** 2n % m, "square");
        assert.equal(toBig(p256WasmFieldOp(5, ...ab)), modPow(a % m, m - 2n, m), "inverse");
      }
    }
    assert.ok(cases > 5000);
  });
}

Deno.test("k * G in the core matches @noble/curves, from k = 1 to n - 1", () => {
  const scalars = [1n, 2n, 3n, 15n, 16n, 17n, N - 1n, N - 2n, (N - 1n) / 2n, 1n << 255n];
  for (let i = 0; i < 256; i += 4) scalars.push(15n << BigInt(i) < N ? 15n << BigInt(i) : 1n);
  for (let i = 0; i < 200; i++) scalars.push(randomBig() % (N - 1n) + 1n);
  for (const k of scalars) {
    const expected = p256.Point.BASE.multiply(k).toBytes(false);
    assert.deepEqual(signer!.baseMul(toBytes(k)), expected, `k=${k.toString(16)}`);
  }
  assert.throws(() => signer!.baseMul(toBytes(0n)));
  assert.throws(() => signer!.baseMul(toBytes(N)));
  assert.throws(() => signer!.baseMul(toBytes(TOP)));
});

/** Parses a DER ECDSA-Sig-Value strictly: minimal lengths and minimal positive INTEGERs. */
function parseDer(sig: Uint8Array): { r: bigint; s: bigint } {
  assert.equal(sig[0], 0x30);
  assert.equal(sig[1], sig.length - 2);
  const ints: bigint[] = [];
  let at = 2;
  for (let i = 0; i < 2; i++) {
    assert.equal(sig[at], 0x02);
    const len = sig[at + 1]!;
    const body = sig.subarray(at + 2, at + 2 + len);
    assert.ok(len >= 1 && len <= 33);
    assert.ok(body[0]! < 0x80, "a positive INTEGER");
    if (len > 1) assert.ok(body[0] !== 0 || body[1]! >= 0x80, "a minimal INTEGER");
    ints.push(toBig(body));
    at += 2 + len;
  }
  assert.equal(at, sig.length);
  return { r: ints[0]!, s: ints[1]! };
}

function spki(point: Uint8Array): Uint8Array {
  const prefix = Uint8Array.from(
    "3059301306072a8648ce3d020106082a8648ce3d030107034200".match(/../g)!,
    (h) => parseInt(h, 16),
  );
  const out = new Uint8Array(prefix.length + point.length);
  out.set(prefix);
  out.set(point, prefix.length);
  return out;
}

const HASHES = [["SHA-256", sha256], ["SHA-384", sha384], ["SHA-512", sha512]] as const;

Deno.test("2000 random keys and messages: the same bytes as noble's RFC 6979 signatures, all verified by node:crypto, 500 by noble", () => {
  const seenR = new Set<bigint>();
  let highR = 0;
  let shortInt = 0;
  for (let i = 0; i < 2000; i++) {
    const d = i === 0 ? toBytes(1n) : i === 1 ? toBytes(N - 1n) : p256.utils.randomSecretKey();
    const [hashName, hash] = HASHES[i % 3]!;
    const message = crypto.getRandomValues(new Uint8Array(1 + (i % 200)));
    const digest = hash(message);
    const sig = signer!.sign(d, digest);
    assert.deepEqual(sig, p256.sign(digest, d, { prehash: false, format: "der" }), `key ${i}`);
    const { r, s } = parseDer(sig);
    assert.ok(r > 0n && r < N && s > 0n && s <= (N - 1n) / 2n, "low S");
    assert.ok(!seenR.has(r), "a nonce repeated");
    seenR.add(r);
    if (r >> 255n) highR++;
    if (r < 1n << 248n || s < 1n << 248n) shortInt++;
    const pub = signer!.baseMul(d); // checked against noble by the k * G test
    const key = createPublicKey({ key: Buffer.from(spki(pub)), format: "der", type: "spki" });
    assert.ok(nodeVerify(hashName.replace("-", "").toLowerCase(), message, key, sig));
    if (i < 500) {
      assert.ok(p256.verify(sig, digest, pub, { prehash: false, format: "der", lowS: true }));
    }
  }
  assert.ok(highR > 500, "r with its high bit set is DER-padded with a zero byte");
  assert.ok(shortInt >= 0);
});

Deno.test("signing is deterministic per message and the signer refuses bad input", () => {
  const d = p256.utils.randomSecretKey();
  const digest = sha256(new TextEncoder().encode("same message"));
  assert.deepEqual(signer!.sign(d, digest), signer!.sign(d, digest));
  assert.throws(() => signer!.sign(d, digest.subarray(0, 31)));
  assert.throws(() => signer!.sign(d.subarray(1), digest));
  assert.throws(() => signer!.sign(toBytes(0n), digest));
  assert.throws(() => signer!.sign(toBytes(N), digest));
});

Deno.test("a chosen nonce, edge values included, gives r = x(kG) mod n and s = k^-1 (z + r d) mod n", () => {
  const nonces = [1n, 2n, N - 1n, N - 2n, (N - 1n) / 2n, 1n << 255n];
  for (let i = 0; i < 50; i++) nonces.push(randomBig() % (N - 1n) + 1n);
  for (const [i, k] of nonces.entries()) {
    const d = i % 3 === 0 ? 1n : i % 3 === 1 ? N - 1n : randomBig() % (N - 1n) + 1n;
    const z = randomBig();
    const rs = p256WasmSignWithNonce(toBytes(d), toBytes(z), toBytes(k));
    assert.ok(rs !== null);
    const r = toBig(rs.subarray(0, 32));
    const s = toBig(rs.subarray(32));
    assert.equal(r, p256.Point.BASE.multiply(k).toAffine().x % N);
    let expected = modPow(k, N - 2n, N) * ((z % N) + r * d) % N;
    if (expected > (N - 1n) / 2n) expected = N - expected;
    assert.equal(s, expected, `k=${k.toString(16)}`);
  }
  for (const k of [0n, N, N + 1n, TOP]) {
    assert.equal(p256WasmSignWithNonce(toBytes(5n), toBytes(7n), toBytes(k)), null);
  }
  assert.equal(p256WasmSignWithNonce(toBytes(0n), toBytes(7n), toBytes(5n)), null);
  assert.equal(p256WasmSignWithNonce(toBytes(N), toBytes(7n), toBytes(5n)), null);
});

Deno.test("a nonce drawn ahead signs once: the signature verifies with low S, and the nonce is wiped", () => {
  const seenR = new Set<bigint>();
  const nonce = new Uint8Array(64 + 10);
  for (let i = 0; i < 300; i++) {
    const d = i === 0 ? toBytes(1n) : i === 1 ? toBytes(N - 1n) : p256.utils.randomSecretKey();
    const message = crypto.getRandomValues(new Uint8Array(1 + (i % 100)));
    const digest = sha256(message);
    signer!.nonce(d, nonce, 5);
    const r = toBig(nonce.subarray(5, 37));
    const sig = signer!.signWithNonce(d, digest, nonce, 5);
    assert.ok(sig !== null);
    assert.ok(nonce.every((b) => b === 0), "the nonce is wiped by its signature");
    const parsed = parseDer(sig);
    assert.equal(parsed.r, r, "the signature carries the nonce's r");
    assert.ok(parsed.s > 0n && parsed.s <= (N - 1n) / 2n, "low S");
    assert.ok(!seenR.has(r), "a nonce repeated");
    seenR.add(r);
    const pub = signer!.baseMul(d);
    const key = createPublicKey({ key: Buffer.from(spki(pub)), format: "der", type: "spki" });
    assert.ok(nodeVerify("sha256", message, key, sig));
    assert.ok(p256.verify(sig, digest, pub, { prehash: false, format: "der", lowS: true }));
    // Not RFC 6979: the nonce does not come from the message.
    assert.notDeepEqual(sig, signer!.sign(d, digest));
  }
  const d = p256.utils.randomSecretKey();
  assert.throws(() => signer!.nonce(toBytes(0n), nonce, 0));
  assert.throws(() => signer!.nonce(toBytes(N), nonce, 0));
  signer!.nonce(d, nonce, 0);
  assert.throws(() => signer!.signWithNonce(toBytes(N), new Uint8Array(32), nonce, 0));
  assert.throws(() => signer!.signWithNonce(d, new Uint8Array(31), nonce, 0));
});

Deno.test("a batch of nonces is the nonces drawn one by one, also where a nonce is made alone", () => {
  for (const count of [1, 2, 7, P256_NONCE_BATCH]) {
    const d = count === 2 ? toBytes(N - 1n) : p256.utils.randomSecretKey();
    const inputs = Array.from({ length: count }, (_, i) =>
      // Random, and also n and above (reduced first) and zero.
      i === 1
        ? toBytes(N + 5n)
        : i === 2
        ? toBytes(0n)
        : crypto.getRandomValues(new Uint8Array(32)));
    for (const force of [0, 0b101, (1 << count) - 1]) {
      const result = p256WasmNoncesFrom(d, inputs, force);
      assert.ok(result !== null);
      assert.deepEqual(result.batch, result.single, `count ${count}, force ${force}`);
    }
  }
});

Deno.test("nonces drawn in a batch each sign once and verify; a bad count or key throws", () => {
  const d = p256.utils.randomSecretKey();
  const pub = signer!.baseMul(d);
  const seenR = new Set<bigint>();
  for (const count of [1, 3, P256_NONCE_BATCH]) {
    const out = new Uint8Array(7 + 64 * count);
    signer!.nonces(d, count, out, 7);
    for (let i = 0; i < count; i++) {
      const at = 7 + 64 * i;
      const r = toBig(out.subarray(at, at + 32));
      assert.ok(!seenR.has(r), "a nonce repeated");
      seenR.add(r);
      const digest = sha256(crypto.getRandomValues(new Uint8Array(20)));
      const sig = signer!.signWithNonce(d, digest, out, at);
      assert.ok(sig !== null);
      assert.equal(parseDer(sig).r, r);
      assert.ok(p256.verify(sig, digest, pub, { prehash: false, format: "der", lowS: true }));
    }
    assert.ok(out.every((b) => b === 0), "each signature wiped its nonce");
  }
  const out = new Uint8Array(64 * (P256_NONCE_BATCH + 1));
  for (const count of [0, P256_NONCE_BATCH + 1, 1.5]) {
    assert.throws(() => signer!.nonces(d, count, out, 0), RangeError);
  }
  assert.throws(() => signer!.nonces(toBytes(0n), 2, out, 0), /Invalid P-256 private key/);
  assert.throws(() => signer!.nonces(toBytes(N), 2, out, 0), /Invalid P-256 private key/);
  assert.throws(() => signer!.nonces(new Uint8Array(31), 2, out, 0), /length/);
  assert.ok(out.every((b) => b === 0), "nothing written on failure");
});

Deno.test("a digest of n or more (z >= n) signs as noble does", () => {
  const d = p256.utils.randomSecretKey();
  for (const z of [N, N + 1n, TOP, N - 1n, 0n]) {
    const digest = toBytes(z);
    assert.deepEqual(
      signer!.sign(d, digest),
      p256.sign(digest, d, { prehash: false, format: "der" }),
    );
  }
});

Deno.test("defaultProvider signs P-256 through the core; the noble provider verifies", () => {
  const key = nobleProvider.generatePrivateKey("P-256");
  const message = new TextEncoder().encode("CertificateVerify content");
  for (const hash of ["SHA-256", "SHA-384"] as const) {
    const sig = defaultProvider.sign(key, { kind: "ecdsa", hash }, message);
    assert.deepEqual(sig, nobleProvider.sign(key, { kind: "ecdsa", hash }, message));
    assert.ok(
      nobleProvider.verify(nobleProvider.publicKeyOf(key), { kind: "ecdsa", hash }, message, sig),
    );
  }
});

Deno.test("openssl dgst verifies the core's signatures, edge keys included", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const keys = [toBytes(1n), toBytes(N - 1n), p256.utils.randomSecretKey()];
    let script = "set -e\n";
    let count = 0;
    for (const [k, d] of keys.entries()) {
      const pem = `-----BEGIN PUBLIC KEY-----\n${
        btoa(String.fromCharCode(...spki(p256.getPublicKey(d, false))))
      }\n-----END PUBLIC KEY-----\n`;
      await Deno.writeTextFile(`${dir}/pub${k}.pem`, pem);
      for (let i = 0; i < 12; i++) {
        const message = crypto.getRandomValues(new Uint8Array(64 + i));
        const [hashName, hash] = HASHES[i % 3]!;
        await Deno.writeFile(`${dir}/m${count}`, message);
        await Deno.writeFile(`${dir}/s${count}`, signer!.sign(d, hash(message)));
        const flag = `-${hashName.replace("-", "").toLowerCase()}`;
        script += `openssl dgst ${flag} -verify pub${k}.pem -signature s${count} m${count}\n`;
        count++;
      }
    }
    const result = await run("sh", ["-c", script], { cwd: dir });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.match(/Verified OK/g)?.length, count, result.stdout);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("each Worker instantiates its own core and signs", async () => {
  const worker = new Worker(new URL("./_p256_wasm_worker.ts", import.meta.url), {
    type: "module",
  });
  try {
    const d = p256.utils.randomSecretKey();
    const digest = sha256(new TextEncoder().encode("from a worker"));
    const answer = new Promise<Uint8Array>((resolve, reject) => {
      worker.onmessage = (event: MessageEvent<Uint8Array>) => resolve(event.data);
      worker.onerror = (event) => reject(new Error(event.message));
    });
    worker.postMessage({ d, digest });
    assert.deepEqual(await answer, p256.sign(digest, d, { prehash: false, format: "der" }));
  } finally {
    worker.terminate();
  }
});

const clangVersion = await (async () => {
  try {
    const out = await new Deno.Command("clang", { args: ["--version"], stdout: "piped" }).output();
    return new TextDecoder().decode(out.stdout).split("\n")[0]!.trim();
  } catch {
    return null;
  }
})();
const rebuildSkip = clangVersion === null
  ? "skipped: clang is not installed"
  : clangVersion !== P256_WASM_CLANG
  ? `skipped: clang is "${clangVersion}", the module was built with "${P256_WASM_CLANG}"`
  : null;

Deno.test({
  name: `the embedded module is the build of p256.c, chacha20poly1305.c and hmac_sha384.c${
    rebuildSkip ? ` (${rebuildSkip})` : ""
  }`,
  ignore: rebuildSkip !== null,
  async fn() {
    const out = await Deno.makeTempFile({ suffix: ".wasm" });
    try {
      const { compileP256 } = await import("../../../protocol/crypto/p256_wasm/build.ts");
      const { wasm } = await compileP256(out);
      const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", wasm));
      const hex = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
      assert.equal(hex, P256_WASM_SHA256, "run `deno task p256-wasm` and commit _module.ts");
      const embedded = Uint8Array.from(atob(P256_WASM_BASE64), (c) => c.charCodeAt(0));
      assert.deepEqual(embedded, wasm);
    } finally {
      await Deno.remove(out);
    }
  },
});
