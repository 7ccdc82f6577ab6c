/**
 * Handshake work done ahead on a thread (protocol/crypto/ahead.ts): P-256 nonces whose
 * signatures verify and never repeat, X25519 key pairs that agree, rings that refill, and the
 * default provider using what a registered thread makes, and signing as before without it;
 * the thread at the lowest priority, the event loop's thread at its own.
 */
import assert from "node:assert/strict";
import { p256 } from "@noble/curves/nist.js";
import { x25519 } from "@noble/curves/ed25519.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { AHEAD_BATCH, AHEAD_NICE, HandshakeAhead } from "../../../protocol/crypto/ahead.ts";
import {
  defaultProvider,
  nobleProvider,
  p256Scalar,
  stopUsing,
  useHandshakeAhead,
} from "../../../protocol/crypto/mod.ts";
import { p256WasmSigner } from "../../../protocol/crypto/p256_wasm/mod.ts";
import type { PrivateKey } from "../../../protocol/crypto/provider.ts";

const signer = p256WasmSigner()!;

/** Waits until `ready()` reaches `count` (the thread fills the rings). */
async function until(ready: () => number, count: number): Promise<void> {
  for (let i = 0; i < 200 && ready() < count; i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(ready() >= count, `only ${ready()} ready`);
}

Deno.test("nonces made ahead sign verifiable signatures, each nonce once, and the rings refill", async () => {
  const keys = [p256.utils.randomSecretKey(), p256.utils.randomSecretKey()];
  const work = new HandshakeAhead({ p256: keys, x25519: false }, 64);
  try {
    await until(() => work.ready(0) + work.ready(1), 128);
    assert.equal(work.ready("x25519"), 0);
    const seen = new Set<string>();
    // More than the ring holds: the thread refills it after each batch taken.
    for (let i = 0; i < 200; i++) {
      const index = i % 2;
      const digest = sha256(new TextEncoder().encode(`transcript ${i}`));
      let sig = work.signP256(index, signer, keys[index]!, digest);
      for (let wait = 0; sig === null && wait < 100; wait++) {
        await new Promise((r) => setTimeout(r, 5));
        sig = work.signP256(index, signer, keys[index]!, digest);
      }
      assert.ok(sig !== null, `signature ${i}`);
      const pub = p256.getPublicKey(keys[index]!, false);
      assert.ok(p256.verify(sig, digest, pub, { prehash: false, format: "der", lowS: true }));
      const r = p256.Signature.fromBytes(sig, "der").r.toString(16);
      assert.ok(!seen.has(r), "a nonce served twice");
      seen.add(r);
    }
    assert.equal(work.used(0) + work.used(1), 200);
    assert.ok(AHEAD_BATCH <= 64);
    assert.equal(work.signP256(2, signer, keys[0]!, new Uint8Array(32)), null, "no such key");
  } finally {
    await work.stop();
  }
  assert.equal(work.signP256(0, signer, keys[0]!, new Uint8Array(32)), null, "stopped");
});

Deno.test("X25519 key pairs made ahead are consistent and agree with a peer", async () => {
  const work = new HandshakeAhead({ p256: [], x25519: true }, 16);
  try {
    await until(() => work.ready("x25519"), 16);
    const publics = new Set<string>();
    for (let i = 0; i < 16; i++) {
      const pair = work.takeX25519((p) => p.slice())!;
      assert.deepEqual(pair.subarray(32), x25519.getPublicKey(pair.subarray(0, 32)));
      publics.add(Array.from(pair.subarray(32)).join());
    }
    assert.equal(publics.size, 16);
  } finally {
    await work.stop();
  }
});

Deno.test("the default provider uses a registered thread's nonces and key pairs, and not once stopped", async () => {
  const key = nobleProvider.generatePrivateKey("P-256") as Extract<PrivateKey, { kind: "ec" }>;
  const work = new HandshakeAhead({ p256: [p256Scalar(key)], x25519: true }, 32);
  const message = new TextEncoder().encode("CertificateVerify content");
  const algorithm = { kind: "ecdsa", hash: "SHA-256" } as const;
  const rfc6979 = nobleProvider.sign(key, algorithm, message);
  try {
    await until(() => Math.min(work.ready(0), work.ready("x25519")), 32);
    useHandshakeAhead(work, [key]);
    const sig = defaultProvider.sign(key, algorithm, message);
    assert.notDeepEqual(sig, rfc6979, "a nonce made ahead, not RFC 6979's");
    assert.ok(nobleProvider.verify(nobleProvider.publicKeyOf(key), algorithm, message, sig));
    assert.equal(work.used(0), 1);
    // Another key of the same kind signs as before.
    const other = nobleProvider.generatePrivateKey("P-256");
    assert.deepEqual(
      defaultProvider.sign(other, algorithm, message),
      nobleProvider.sign(other, algorithm, message),
    );
    const ours = defaultProvider.generateKeyShare("x25519");
    assert.equal(work.used("x25519"), 1);
    const peer = nobleProvider.generateKeyShare("x25519");
    assert.deepEqual(ours.computeSecret(peer.publicKey), peer.computeSecret(ours.publicKey));
    stopUsing(work, [key]);
    assert.deepEqual(defaultProvider.sign(key, algorithm, message), rfc6979);
    defaultProvider.generateKeyShare("x25519");
    assert.equal(work.used("x25519"), 1);
  } finally {
    stopUsing(work, [key]);
    await work.stop();
  }
});

/** The nice value of each thread of this process (field 19 of each task's `stat` in /proc). */
function niceValues(): Map<string, number> {
  const values = new Map<string, number>();
  for (const task of Deno.readDirSync("/proc/self/task")) {
    try {
      const stat = Deno.readTextFileSync(`/proc/self/task/${task.name}/stat`);
      values.set(task.name, Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16]));
    } catch { /* the thread ended meanwhile */ }
  }
  return values;
}

/** The nice values of the threads started since `before` was taken. */
function newNiceValues(before: Map<string, number>): number[] {
  return [...niceValues()].filter(([task]) => !before.has(task)).map(([, nice]) => nice);
}

Deno.test({
  name: "the thread runs at the lowest priority, and the event loop's thread keeps its own",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    const own = () => niceValues().get(String(Deno.pid));
    const ownBefore = own();
    let before = niceValues();
    const work = new HandshakeAhead({ p256: [], x25519: true }, 8);
    try {
      assert.deepEqual(await work.started, { kind: "started", nice: AHEAD_NICE });
      assert.ok(newNiceValues(before).includes(AHEAD_NICE), "a new thread at nice 19");
      assert.equal(own(), ownBefore);
      await until(() => work.ready("x25519"), 8);
    } finally {
      await work.stop();
    }
    // nice: null leaves the thread at the owner's priority.
    before = niceValues();
    const plain = new HandshakeAhead({ p256: [], x25519: true, nice: null }, 8);
    try {
      assert.deepEqual(await plain.started, { kind: "started", nice: null });
      assert.ok(!newNiceValues(before).includes(AHEAD_NICE));
    } finally {
      await plain.stop();
    }
  },
});

Deno.test({
  name: "without the setPriority permission the thread says so, and works at the owner's priority",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    const repo = new URL("../../../", import.meta.url).pathname;
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        `--allow-read=${repo}`,
        "--config",
        `${repo}deno.json`,
        new URL("./_ahead_priority_child.ts", import.meta.url).pathname,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    const report = JSON.parse(new TextDecoder().decode(out.stdout));
    assert.equal(report.kind, "started");
    assert.equal(report.nice, null);
    assert.match(report.error, /setPriority/);
  },
});

Deno.test("a thread that fails ends with its error, and its rings stay empty", async () => {
  // A zero scalar is no P-256 key: the core refuses to draw a nonce for it.
  const work = new HandshakeAhead({ p256: [new Uint8Array(32)], x25519: false }, 8);
  try {
    const report = await work.ended;
    assert.match(report.error ?? "", /Invalid P-256 private key/);
    assert.equal(work.ready(0), 0);
    assert.equal(work.signP256(0, signer, new Uint8Array(32), new Uint8Array(32)), null);
  } finally {
    await work.stop();
  }
});

Deno.test("the thread ends and wipes its rings once its owner stops beating (a terminated Worker)", async () => {
  const owner = new Worker(new URL("./_ahead_owner_worker.ts", import.meta.url), {
    type: "module",
  });
  const rings = await new Promise<SharedArrayBuffer[]>((resolve) => {
    owner.onmessage = (event) => resolve(event.data);
  });
  // A ring of 8 slots: 8 state cells, then 8 slots of 64 bytes.
  const states = (ring: SharedArrayBuffer) => [...new Int32Array(ring, 0, 8)];
  const data = (ring: SharedArrayBuffer) => new Uint8Array(ring, 32, 8 * 64);
  const filled = () => rings.every((ring) => data(ring).some((b) => b !== 0));
  assert.ok(filled(), "the rings were filled");
  assert.ok(rings.every((ring) => states(ring).every((s) => s === 1)));
  // Deno leaves the Workers a terminated Worker started running; this one ends by itself.
  owner.terminate();
  await new Promise((r) => setTimeout(r, 100));
  assert.ok(filled(), "within the orphan time it waits");
  for (let i = 0; i < 250 && filled(); i++) await new Promise((r) => setTimeout(r, 20));
  for (const ring of rings) {
    assert.ok(data(ring).every((b) => b === 0), "wiped");
    assert.ok(states(ring).every((s) => s === 0), "withdrawn");
  }
});
