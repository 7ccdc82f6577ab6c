/**
 * Where the server's CPU goes in a full TLS 1.3 handshake, without sockets: the server engine
 * (`acceptTls`, the P-256 development certificate, tickets on, ALPN imap) answers our client
 * engine in memory (X25519), and only the server's calls are timed, in CPU time of this process
 * (`getrusage`: precise to the microsecond, and V8's garbage-collection helper threads count
 * too), so that other jobs on a shared machine weigh less than in wall-clock figures. (The
 * thread's own `/proc/thread-self/schedstat` moves only at scheduler ticks while the thread
 * runs: a 200 µs loop read as 0 or about 1,000 µs.) The reference in the same run is the same handshake on the pure-noble
 * provider. Then each primitive of the handshake, per call, in every implementation this
 * runtime offers (noble, node:crypto, WebCrypto). Figures are printed, never asserted.
 *
 * Usage: `deno run -A bench/handshake_cpu_bench.ts [--handshakes N]`.
 */
import process from "node:process";
import { x25519 } from "@noble/curves/ed25519.js";
import { p256 } from "@noble/curves/nist.js";
import {
  defaultProvider,
  nativeProvider,
  nobleProvider,
  p256Scalar,
} from "../protocol/crypto/mod.ts";
import {
  P256_NONCE_BATCH,
  P256_NONCE_BYTES,
  p256WasmSigner,
} from "../protocol/crypto/p256_wasm/mod.ts";
import type { CryptoProvider } from "../protocol/crypto/provider.ts";
import { TlsClientConnection } from "../protocol/tls/client.ts";
import { acceptTls, type ServerOptions, TicketKeys } from "../protocol/tls/mod.ts";
import { recycleSealBuffer } from "../protocol/tls/seal_buffers.ts";
import { ensureDevPki } from "../server/cli/dev_pki.ts";
import { buildServerConfig } from "../server/connection/tls_config.ts";

/** CPU time of this process (user and system, every thread), in microseconds. */
export function cpuUs(): number {
  const { user, system } = process.cpuUsage();
  return user + system;
}

/** Server CPU per handshake, by phase, in µs. */
export interface EngineFigures {
  readonly provider: string;
  readonly flight: number;
  readonly established: number;
  readonly closing: number;
  readonly total: number;
  /** The median total of the timed rounds (the best one is `total`). */
  readonly median: number;
}

const GREETING = new TextEncoder().encode(
  "* OK [CAPABILITY IMAP4rev2 IMAP4rev1] Postern ready\r\n",
);

/** The server side of a TLS engine, as any checkout's `acceptTls` returns it. */
export interface ServerEngine {
  receive(bytes: Uint8Array): void;
  takeOutgoing(): Uint8Array;
  takeEvents(): unknown;
  send(bytes: Uint8Array): void;
  close(): void;
}

/**
 * One full TLS 1.3 handshake, greeting and close between an in-memory client and the engine
 * `accept()` makes; adds the server's CPU time (µs) of each phase to `phases`: ClientHello to
 * the server's flight, client Finished to the tickets and greeting, the close.
 */
export function timeHandshake(
  accept: () => ServerEngine,
  serverKey: ReturnType<typeof defaultProvider.publicKeyOf>,
  phases: number[],
): void {
  const client = new TlsClientConnection({
    provider: defaultProvider,
    verifyServer: () => serverKey,
    groups: ["x25519"],
    alpnProtocols: ["imap"],
  });
  const hello = client.takeOutgoing();
  let at = cpuUs();
  const engine = accept();
  engine.receive(hello);
  const flight = engine.takeOutgoing();
  engine.takeEvents();
  phases[0]! += cpuUs() - at;
  client.receive(flight);
  // Handed back once read, as TlsChannel does once the socket has taken them.
  recycleSealBuffer(flight);
  const finished = client.takeOutgoing();
  at = cpuUs();
  engine.receive(finished);
  engine.takeEvents();
  engine.send(GREETING);
  const tickets = engine.takeOutgoing();
  phases[1]! += cpuUs() - at;
  client.receive(tickets);
  recycleSealBuffer(tickets);
  client.close();
  const bye = client.takeOutgoing();
  at = cpuUs();
  engine.receive(bye);
  engine.takeEvents();
  engine.close();
  recycleSealBuffer(engine.takeOutgoing());
  phases[2]! += cpuUs() - at;
}

/** Best and median of `rounds` rounds of `handshakes` handshakes (the first round warms up). */
function engineCpu(
  config: ServerOptions,
  provider: CryptoProvider,
  handshakes: number,
  rounds = 4,
): EngineFigures {
  const serverKey = defaultProvider.publicKeyOf(config.privateKey);
  const server = { ...config, provider };
  let best: EngineFigures | null = null;
  const totals: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const t = [0, 0, 0];
    for (let i = 0; i < handshakes; i++) timeHandshake(() => acceptTls(server), serverKey, t);
    const [flight, established, closing] = t.map((x) => x / handshakes) as [number, number, number];
    const total = flight + established + closing;
    if (round > 0) totals.push(total);
    if (round > 0 && (best === null || total < best.total)) {
      best = { provider: provider.name, flight, established, closing, total, median: 0 };
    }
  }
  totals.sort((a, b) => a - b);
  return { ...best!, median: totals[totals.length >> 1]! };
}

/** µs per call, best of 5 timed loops of CPU time. */
function perCall(f: () => unknown, n: number): number {
  for (let i = 0; i < Math.min(n, 200); i++) f();
  let best = Infinity;
  for (let r = 0; r < 5; r++) {
    const at = cpuUs();
    for (let i = 0; i < n; i++) f();
    best = Math.min(best, (cpuUs() - at) / n);
  }
  return best;
}

/** µs per call of an asynchronous operation, one at a time (wall clock: its work runs elsewhere). */
async function perAsyncCall(f: () => Promise<unknown>, n: number): Promise<number> {
  for (let i = 0; i < 50; i++) await f();
  let best = Infinity;
  for (let r = 0; r < 3; r++) {
    const at = performance.now();
    for (let i = 0; i < n; i++) await f();
    best = Math.min(best, (performance.now() - at) * 1000 / n);
  }
  return best;
}

/** One primitive of the handshake and what it costs per call in each implementation. */
export interface PrimitiveRow {
  readonly name: string;
  readonly perHandshake: number;
  readonly noble: number | null;
  readonly native: number | null;
  readonly webcrypto: number | null;
  /** Our WebAssembly implementation, where there is one (protocol/crypto/p256_wasm). */
  readonly wasm?: number;
}

async function primitives(): Promise<PrimitiveRow[]> {
  const rows: PrimitiveRow[] = [];
  const x25519Peer = x25519.getPublicKey(x25519.utils.randomSecretKey());
  const p256Peer = p256.getPublicKey(p256.utils.randomSecretKey(), false);
  const kx = (p: CryptoProvider, group: "x25519" | "secp256r1", peer: Uint8Array) => () =>
    p.generateKeyShare(group).computeSecret(peer);
  const x25519Public = await crypto.subtle.importKey(
    "raw",
    new Uint8Array(x25519Peer),
    { name: "X25519" },
    false,
    [],
  );
  rows.push({
    name: "X25519 keygen + shared secret",
    perHandshake: 1,
    noble: perCall(kx(nobleProvider, "x25519", x25519Peer), 100),
    native: perCall(kx(nativeProvider, "x25519", x25519Peer), 500),
    webcrypto: await perAsyncCall(async () => {
      const pair = await crypto.subtle.generateKey({ name: "X25519" }, true, [
        "deriveBits",
      ]) as CryptoKeyPair;
      await crypto.subtle.exportKey("raw", pair.publicKey);
      await crypto.subtle.deriveBits(
        { name: "X25519", public: x25519Public },
        pair.privateKey,
        256,
      );
    }, 200),
  });
  rows.push({
    name: "P-256 ECDH keygen + shared secret",
    perHandshake: 0,
    noble: perCall(kx(nobleProvider, "secp256r1", p256Peer), 50),
    native: perCall(kx(nativeProvider, "secp256r1", p256Peer), 200),
    webcrypto: null,
  });
  const key = nobleProvider.generatePrivateKey("P-256");
  const content = new Uint8Array(130).fill(0x20);
  const ecdsa = { kind: "ecdsa", hash: "SHA-256" } as const;
  const webKey = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, [
    "sign",
  ]);
  rows.push({
    name: "P-256 ECDSA sign (CertificateVerify)",
    perHandshake: 1,
    noble: perCall(() => nobleProvider.sign(key, ecdsa, content), 200),
    native: perCall(() => nativeProvider.sign(key, ecdsa, content), 200),
    webcrypto: await perAsyncCall(
      () => crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, webKey.privateKey, content),
      200,
    ),
    wasm: perCall(() => defaultProvider.sign(key, ecdsa, content), 500),
  });
  // The nonce a signature made ahead needs (the handshake thread's work, off the event loop):
  // one at a time, and in the thread's batches, which share their inversions.
  const signer = p256WasmSigner();
  if (signer !== null) {
    const d = p256Scalar(key as Extract<typeof key, { kind: "ec" }>);
    const out = new Uint8Array(P256_NONCE_BATCH * P256_NONCE_BYTES);
    rows.push({
      name: "P-256 nonce made ahead, one",
      perHandshake: 0,
      noble: null,
      native: null,
      webcrypto: null,
      wasm: perCall(() => signer.nonce(d, out, 0), 500),
    });
    rows.push({
      name: `P-256 nonce made ahead, batch of ${P256_NONCE_BATCH}`,
      perHandshake: 0,
      noble: null,
      native: null,
      webcrypto: null,
      wasm: perCall(() => signer.nonces(d, P256_NONCE_BATCH, out, 0), 40) / P256_NONCE_BATCH,
    });
  }
  const prk = new Uint8Array(32).fill(1);
  const info = new Uint8Array(51).fill(2);
  rows.push({
    name: "HKDF-Expand-Label SHA-256, 32 bytes",
    perHandshake: 18,
    noble: perCall(() => nobleProvider.hkdfExpand("SHA-256", prk, info, 32), 5000),
    native: perCall(() => nativeProvider.hkdfExpand("SHA-256", prk, info, 32), 5000),
    webcrypto: null,
  });
  rows.push({
    name: "HKDF-Extract SHA-256",
    perHandshake: 2,
    noble: perCall(() => nobleProvider.hkdfExtract("SHA-256", prk, prk), 5000),
    native: perCall(() => nativeProvider.hkdfExtract("SHA-256", prk, prk), 5000),
    webcrypto: null,
  });
  rows.push({
    name: "HMAC-SHA-256 (Finished)",
    perHandshake: 2,
    noble: perCall(() => nobleProvider.hmac("SHA-256", prk, prk), 5000),
    native: perCall(() => nativeProvider.hmac("SHA-256", prk, prk), 5000),
    webcrypto: null,
  });
  const message = new Uint8Array(400).fill(3);
  const digestAfterUpdate = (p: CryptoProvider) => {
    const h = p.createHash("SHA-256");
    return () => {
      h.update(message);
      h.digest();
    };
  };
  rows.push({
    name: "transcript update 400 B + digest",
    perHandshake: 6,
    noble: perCall(digestAfterUpdate(nobleProvider), 5000),
    native: perCall(digestAfterUpdate(nativeProvider), 5000),
    webcrypto: null,
  });
  const nonce = new Uint8Array(12);
  const aad = new Uint8Array(5);
  for (
    const [name, size, perHandshake] of [["flight record", 1300, 1], [
      "small record",
      60,
      4,
    ]] as const
  ) {
    const plaintext = new Uint8Array(size);
    const seal = (p: CryptoProvider) => {
      const aead = p.createAead("CHACHA20-POLY1305", new Uint8Array(32));
      return () => aead.seal(nonce, aad, plaintext);
    };
    rows.push({
      name: `ChaCha20-Poly1305 seal, ${name} (${size} B)`,
      perHandshake,
      noble: perCall(seal(nobleProvider), 2000),
      native: perCall(seal(nativeProvider), 2000),
      webcrypto: null,
      // The default provider seals records up to 2 KiB in WebAssembly.
      wasm: perCall(seal(defaultProvider), 2000),
    });
  }
  const ticket = new Uint8Array(120);
  const ticketSeal = (p: CryptoProvider) => {
    const aead = p.createAead("CHACHA20-POLY1305", new Uint8Array(32));
    return () => aead.seal(nonce, aad, ticket);
  };
  rows.push({
    name: "ChaCha20-Poly1305 seal, ticket (120 B)",
    perHandshake: 2,
    noble: perCall(ticketSeal(nobleProvider), 2000),
    native: perCall(ticketSeal(nativeProvider), 2000),
    webcrypto: null,
    wasm: perCall(ticketSeal(defaultProvider), 2000),
  });
  return rows;
}

/** Runs both parts; `handshakes` per timed round of the engine figures. */
export async function benchHandshakeCpu(handshakes: number): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "postern-hscpu-" });
  try {
    const pki = await ensureDevPki(dir);
    const config = buildServerConfig({
      certificatePem: await Deno.readTextFile(pki.serverCertificate),
      privateKeyPem: await Deno.readTextFile(pki.serverKey),
      ticketKeys: new TicketKeys({ provider: defaultProvider }),
    });
    // Eight rounds of half the handshakes: the median of seven timed rounds is steadier on a
    // shared machine than the best of three.
    const ours = engineCpu(config, defaultProvider, Math.max(20, handshakes >> 1), 8);
    const noble = engineCpu(config, nobleProvider, Math.max(20, handshakes >> 3), 8);
    const fmt = (f: EngineFigures) =>
      `${f.provider.padEnd(8)} ${f.total.toFixed(0).padStart(5)} µs, median round ${
        f.median.toFixed(0)
      } µs (ClientHello to flight ${f.flight.toFixed(0)}, client Finished to tickets + greeting ${
        f.established.toFixed(0)
      }, close ${f.closing.toFixed(0)})`;
    const cell = (v: number | null) => (v === null ? "-" : v.toFixed(1)).padStart(9);
    const rows = await primitives();
    return [
      "Server engine CPU per full TLS 1.3 handshake (in memory, process CPU, best round):",
      `  ${fmt(ours)}`,
      `  ${fmt(noble)}  reference: pure noble, ${(ours.total / noble.total).toFixed(2)}x`,
      "",
      `${"primitive (µs per call)".padEnd(46)} ${"per hs".padStart(6)} ${"noble".padStart(9)} ${
        "native".padStart(9)
      } ${"WebCrypto".padStart(9)} ${"wasm".padStart(9)}`,
      ...rows.map((r) =>
        `${r.name.padEnd(46)} ${String(r.perHandshake).padStart(6)} ${cell(r.noble)} ${
          cell(r.native)
        } ${cell(r.webcrypto)} ${cell(r.wasm ?? null)}`
      ),
      "(WebCrypto is wall-clock per call, one at a time: its work runs on Deno's thread pool.)",
    ].join("\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  const i = Deno.args.indexOf("--handshakes");
  console.log(await benchHandshakeCpu(i >= 0 ? Number(Deno.args[i + 1]) : 300));
}
