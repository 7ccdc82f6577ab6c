/**
 * TLS 1.3 full handshakes per second with C concurrent `openssl s_time -new` clients (default
 * 4, each its own process), against Postern (`postern serve` in a child process, implicit TLS
 * IMAP listener), Dovecot (imap-login long-lived processes) and Deno.listenTls (rustls, an echo
 * service in this process), all with the same P-256 certificate, in the same run. Also measures
 * P-256 ECDSA signing in this runtime: noble (synchronous, on the JavaScript thread) against
 * WebCrypto with many signatures in flight (its work runs on other threads). Figures are
 * printed, never asserted.
 *
 * Postern runs with each `tls.signing` mode (auto, the default, first): besides handshakes per
 * second it reports the server main thread's CPU time per handshake
 * (`/proc/PID/task/PID/schedstat`), the figure that bounds one thread's handshake rate and does
 * not depend on how busy the rest of the machine is, and the event loop's stalls.
 *
 * The three servers are then compared in one sitting: all started, each measured in two
 * windows in the order A B C C B A, each window after a warm-up of its server (see `mirrored`);
 * each figure sums its server's windows. Measured once each, one after the other, a slow spell
 * of this shared machine took one server's figure down by a quarter and moved the ratios with
 * it.
 *
 * For each server it also splits the whole machine's time per handshake (`/proc/stat`): the
 * server's CPU (Postern's process, Dovecot's process tree, this process for Deno.listenTls),
 * everything else's (the s_time clients, mostly), and the share of the two cores left idle. On
 * this 2-core machine the clients take most of the CPU, so a server that leaves a core idle
 * while the clients wait for it loses handshakes even with less CPU per handshake.
 *
 * Usage: `deno run -A bench/handshake_bench.ts [--clients C] [--seconds S]`.
 */
import { join } from "node:path";
import { p256 } from "@noble/curves/nist.js";
import { ensureDevPki } from "../server/cli/dev_pki.ts";
import process from "node:process";
import { dovecotAvailable, startDovecot } from "../tests/_support/dovecot.ts";
import { startPosternProcess } from "../tests/_support/postern.ts";
import { handshakesOpenssl, startNativeEcho } from "./tls_bench.ts";
import {
  formatStall,
  settleProbes,
  type StallFigures,
  stallFigures,
  type StallProbes,
  startStallProbes,
} from "./_stall_probes.ts";

/**
 * Where the machine's time went per handshake while one server was measured: the server's CPU
 * µs, the CPU µs of everything else (the clients, mostly), and the idle share of all cores.
 */
export interface MachineSplit {
  readonly serverUs: number;
  readonly othersUs: number;
  readonly idleShare: number;
}

/** Handshakes per second per server. */
export interface HandshakeFigures {
  readonly clients: number;
  /** Postern's accept loops (`server.workers`). */
  readonly workers: number;
  readonly postern: number;
  /** Per `tls.signing` mode: handshakes/s and server main-thread CPU µs per handshake. */
  readonly modes: {
    mode: string;
    rate: number;
    mainThreadUs: number;
    stall: StallFigures;
    split: MachineSplit;
  }[];
  /** Postern's event-loop stalls during its timed handshakes (with several Workers: theirs). */
  readonly stall: StallFigures;
  readonly dovecot: number | null;
  readonly rustls: number;
  /** How the three servers were compared: two windows of `slot` s each, after warm-ups. */
  readonly windows: {
    readonly slot: number;
    readonly warmUp: number;
    readonly rewarm: number;
    /** P Postern, R Deno.listenTls, D Dovecot (when installed). */
    readonly order: string;
  };
  /** The machine's time per handshake with each server, over its two windows. */
  readonly splits: {
    readonly postern: MachineSplit;
    readonly dovecot: MachineSplit | null;
    readonly rustls: MachineSplit;
  };
  /** µs per P-256 signature: noble one at a time, WebCrypto 1 and 256 in flight. */
  readonly signing: { noble: number; webcrypto1: number; webcrypto256: number };
}

async function parallelSTime(
  port: number,
  caPath: string,
  clients: number,
  seconds: number,
): Promise<number> {
  const rates = await Promise.all(
    Array.from({ length: clients }, () => handshakesOpenssl(port, caPath, seconds)),
  );
  return rates.reduce((a, b) => a + b, 0);
}

async function signing(): Promise<HandshakeFigures["signing"]> {
  const digest = new Uint8Array(32).fill(7);
  const secret = p256.utils.randomSecretKey();
  const n = 300;
  let t = performance.now();
  for (let i = 0; i < n; i++) p256.sign(digest, secret);
  const noble = (performance.now() - t) * 1000 / n;
  const key = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, [
    "sign",
  ]);
  const sign = () => crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, key.privateKey, digest);
  t = performance.now();
  for (let i = 0; i < n; i++) await sign();
  const webcrypto1 = (performance.now() - t) * 1000 / n;
  t = performance.now();
  for (let i = 0; i < 4; i++) await Promise.all(Array.from({ length: 256 }, sign));
  const webcrypto256 = (performance.now() - t) * 1000 / (4 * 256);
  return { noble, webcrypto1, webcrypto256 };
}

/** CPU seconds of a thread (`task`) or a whole process (`stat`), precise to the nanosecond. */
function cpuSeconds(pid: number, mainThreadOnly: boolean): number {
  if (mainThreadOnly) {
    const [ns] = Deno.readTextFileSync(`/proc/${pid}/task/${pid}/schedstat`).split(" ");
    return Number(ns) / 1e9;
  }
  const f = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1]!.split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** The whole machine's busy and idle seconds so far (`/proc/stat`, ticks of 10 ms). */
function machineSeconds(): { busy: number; idle: number } {
  const f = Deno.readTextFileSync("/proc/stat").split("\n")[0]!.trim().split(/\s+/).slice(1, 9)
    .map(Number);
  const idle = f[3]! + f[4]!;
  return { busy: (f.reduce((a, b) => a + b, 0) - idle) / 100, idle: idle / 100 };
}

/**
 * `clients` s_time runs of `seconds` against `port`: handshakes per second, how many there
 * were, and the machine's time per handshake with `serverSeconds` (CPU seconds so far) as the
 * server's share.
 */
async function timedRun(
  port: number,
  caPath: string,
  clients: number,
  seconds: number,
  serverSeconds: () => number,
): Promise<{ rate: number; count: number; split: MachineSplit }> {
  const window = await timedWindow(port, caPath, clients, seconds, serverSeconds);
  return { rate: window.count / window.wall, count: window.count, split: splitOf(window) };
}

/** What one timed window of s_time runs measured, in sums that add up across windows. */
interface Measured {
  /** Handshakes, and wall-clock seconds of the window. */
  count: number;
  wall: number;
  /** CPU seconds of the server, of the whole machine, and idle seconds of its cores. */
  server: number;
  busy: number;
  idle: number;
}

async function timedWindow(
  port: number,
  caPath: string,
  clients: number,
  seconds: number,
  serverSeconds: () => number,
): Promise<Measured> {
  const machine0 = machineSeconds();
  const server0 = serverSeconds();
  const started = performance.now();
  const rate = await parallelSTime(port, caPath, clients, seconds);
  const wall = (performance.now() - started) / 1000;
  const server = serverSeconds() - server0;
  const machine1 = machineSeconds();
  return {
    count: rate * wall,
    wall,
    server,
    busy: machine1.busy - machine0.busy,
    idle: machine1.idle - machine0.idle,
  };
}

function addMeasured(a: Measured, b: Measured): Measured {
  return {
    count: a.count + b.count,
    wall: a.wall + b.wall,
    server: a.server + b.server,
    busy: a.busy + b.busy,
    idle: a.idle + b.idle,
  };
}

function splitOf(w: Measured): MachineSplit {
  return {
    serverUs: 1e6 * w.server / w.count,
    othersUs: 1e6 * Math.max(0, w.busy - w.server) / w.count,
    idleShare: w.idle / Math.max(1e-9, w.busy + w.idle),
  };
}

/**
 * Seconds of handshakes each server gets before it is measured. V8 compiles Postern's
 * handshake path during its first seconds: server CPU per handshake in successive 3 s windows
 * of a fresh server, 4 clients, was 503, 455, 427, 412, 417, 415 µs. A server runs for days;
 * its throughput is the steady state's. Dovecot and Deno.listenTls get the same warm-up.
 */
export function warmUpSeconds(seconds: number): number {
  return seconds >= 10 ? 6 : 2;
}

/**
 * Seconds of handshakes before each later window of a server (its first gets `warmUpSeconds`;
 * never more than that).
 * A server left idle while the others are measured gives memory back: V8 shrinks Postern's
 * young generation after a few seconds without load (scavenges then came every 15 ms instead
 * of every 100 ms, and major GCs twice as often, until it had grown again), which a loaded
 * server never does.
 */
const REWARM_SECONDS = 3;

/**
 * The servers to compare, each measured in two windows of `slot` seconds in the order A B C C
 * B A, so that a load on this shared machine that rises or falls during the run (it swings by
 * 2-3x within minutes) weighs on all of them alike; each window follows a warm-up of the same
 * server. Returns each server's sums. (Taking turns in short windows without warm-ups
 * measured Postern's first seconds after each idle spell, at 10-20 % more CPU per handshake.)
 */
async function mirrored(
  servers: readonly { port: number; cpuSeconds: () => number }[],
  caPath: string,
  clients: number,
  slot: number,
  warm: { readonly first: number; readonly later: number },
  onWindow: (server: number, from: number, to: number) => void,
): Promise<Measured[]> {
  const sums: (Measured | null)[] = servers.map(() => null);
  const order = [...servers.keys(), ...[...servers.keys()].reverse()];
  for (const index of order) {
    const server = servers[index]!;
    const sum = sums[index] ?? null;
    await parallelSTime(server.port, caPath, clients, sum === null ? warm.first : warm.later);
    const from = Date.now();
    const window = await timedWindow(server.port, caPath, clients, slot, server.cpuSeconds);
    onWindow(index, from, Date.now());
    sums[index] = sum === null ? window : addMeasured(sum, window);
  }
  return sums.map((w) => w!);
}

/** The worst of several windows' stall figures (each field its own worst). */
function worstStall(figures: readonly StallFigures[]): StallFigures {
  const worst = figures.reduce((a, b) => (b.worstMs > a.worstMs ? b : a));
  return {
    ...worst,
    ownMs: Math.max(...figures.map((f) => f.ownMs)),
    busyMs: Math.max(...figures.map((f) => f.busyMs)),
    idleMs: Math.max(...figures.map((f) => f.idleMs)),
  };
}

/** This process's CPU seconds, every thread (Deno.listenTls runs here). */
function ownCpuSeconds(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
}

/** Postern with one `tls.signing` mode: rate, and CPU per handshake. */
async function measureMode(
  mode: string,
  clients: number,
  seconds: number,
  probes: StallProbes,
): Promise<HandshakeFigures["modes"][number]> {
  const stallFile = join(probes.dir, `stalls-${mode}.jsonl`);
  Deno.env.set("POSTERN_STALL_PROBE", stallFile);
  const postern = await startPosternProcess({ clientAuth: "none", tlsYaml: `  signing: ${mode}` })
    .finally(() => Deno.env.delete("POSTERN_STALL_PROBE"));
  try {
    const caPath = join(postern.dir, "bench-ca.pem");
    await Deno.writeTextFile(caPath, postern.caPem);
    await parallelSTime(postern.implicitPort, caPath, clients, warmUpSeconds(seconds));
    const main0 = cpuSeconds(postern.pid, true);
    const from = Date.now();
    const { rate, count, split } = await timedRun(
      postern.implicitPort,
      caPath,
      clients,
      seconds,
      () => cpuSeconds(postern.pid, false),
    );
    const to = Date.now();
    const mainThreadUs = 1e6 * (cpuSeconds(postern.pid, true) - main0) / count;
    await settleProbes();
    const stall = stallFigures(stallFile, probes.idleFile, from, to);
    return { mode, rate, mainThreadUs, stall, split };
  } finally {
    await postern.stop();
  }
}

/**
 * Measures Postern's signing modes one after the other (with one accept loop), then the three
 * servers in mirrored windows (`mirrored`) with the same clients.
 */
export async function benchHandshakes(
  clients: number,
  seconds: number,
  workers = 1,
): Promise<HandshakeFigures> {
  const probes = await startStallProbes("postern-hs-");
  // The signing modes are compared on one accept loop, where the main thread does the work.
  const modes = [];
  try {
    for (const mode of workers === 1 ? ["auto", "sync", "async"] : []) {
      modes.push(await measureMode(mode, clients, seconds, probes));
    }
  } catch (error) {
    await probes.stop();
    throw error;
  }
  const stallFile = join(probes.dir, `stalls-${workers}w.jsonl`);
  Deno.env.set("POSTERN_STALL_PROBE", stallFile);
  const postern = await startPosternProcess({ clientAuth: "none", workers })
    .catch(async (error) => {
      await probes.stop();
      throw error;
    })
    .finally(() => Deno.env.delete("POSTERN_STALL_PROBE"));
  let native: ReturnType<typeof startNativeEcho> | null = null;
  let dovecot: Awaited<ReturnType<typeof startDovecot>> | null = null;
  try {
    const certs = join(postern.dir, "certs");
    const pki = await ensureDevPki(certs);
    const caPath = join(certs, "bench-ca.pem");
    await Deno.writeTextFile(caPath, postern.caPem);
    native = startNativeEcho(
      await Deno.readTextFile(pki.serverCertificate),
      await Deno.readTextFile(pki.serverKey),
    );
    if (dovecotAvailable()) {
      dovecot = await startDovecot({
        user: "hs",
        password: "hs",
        certificatePath: pki.serverCertificate,
        keyPath: pki.serverKey,
        maxConnections: 100,
        loginProcesses: "long-lived",
      });
    }
    const servers = [
      { port: postern.implicitPort, cpuSeconds: () => cpuSeconds(postern.pid, false) },
      { port: native.port, cpuSeconds: ownCpuSeconds },
      ...(dovecot === null ? [] : [{ port: dovecot.port, cpuSeconds: dovecot.cpuSeconds }]),
    ];
    const slot = Math.max(1, Math.round(seconds / 2));
    const warmUp = warmUpSeconds(seconds);
    const rewarm = Math.min(warmUp, REWARM_SECONDS);
    const posternWindows: { from: number; to: number }[] = [];
    const sums = await mirrored(
      servers,
      caPath,
      clients,
      slot,
      { first: warmUp, later: rewarm },
      (index, from, to) => {
        if (index === 0) posternWindows.push({ from, to });
      },
    );
    // With one loop the stall figures are the default mode's own run's; with several, the
    // worst of this server's windows.
    let stall = modes[0]?.stall;
    if (stall === undefined) {
      await settleProbes();
      stall = worstStall(
        posternWindows.map((w) => stallFigures(stallFile, probes.idleFile, w.from, w.to)),
      );
    }
    const [ours, rustls, dovecotSum] = sums as [Measured, Measured, Measured | undefined];
    return {
      clients,
      workers,
      postern: ours.count / ours.wall,
      modes,
      stall,
      dovecot: dovecotSum === undefined ? null : dovecotSum.count / dovecotSum.wall,
      rustls: rustls.count / rustls.wall,
      splits: {
        postern: splitOf(ours),
        dovecot: dovecotSum === undefined ? null : splitOf(dovecotSum),
        rustls: splitOf(rustls),
      },
      windows: { slot, warmUp, rewarm, order: dovecot === null ? "P R R P" : "P R D D R P" },
      signing: await signing(),
    };
  } finally {
    native?.close();
    await dovecot?.stop();
    await postern.stop();
    await probes.stop();
  }
}

/** Formats the figures with ratios. */
export function formatHandshakes(f: HandshakeFigures): string {
  const ratio = (x: number | null) => (x === null ? "-" : `${(f.postern / x).toFixed(2)}x`);
  return [
    `openssl s_time -new x${f.clients}: Postern (${f.workers} worker${
      f.workers === 1 ? "" : "s"
    }) ${f.postern.toFixed(0)} hs/s, Dovecot ${f.dovecot?.toFixed(0) ?? "-"} (${
      ratio(f.dovecot)
    }), Deno.listenTls ${f.rustls.toFixed(0)} (${
      ratio(f.rustls)
    }); two windows of ${f.windows.slot} s each, in the order ${f.windows.order}, after ${f.windows.warmUp} s (then ${f.windows.rewarm} s) of warm-up`,
    ...f.modes.map((m) =>
      `  Postern tls.signing ${m.mode.padEnd(5)}: ${
        m.rate.toFixed(0).padStart(5)
      } hs/s; server CPU ` +
      `per handshake ${m.split.serverUs.toFixed(0)} µs, of it on the main thread ${
        m.mainThreadUs.toFixed(0)
      } µs; ${formatStall(m.stall)}`
    ),
    ...(f.modes.length === 0
      ? [
        `  Postern: server CPU per handshake ${f.splits.postern.serverUs.toFixed(0)} µs; ${
          formatStall(f.stall)
        }`,
      ]
      : []),
    `  machine per handshake (server CPU + clients' and the rest's CPU, idle share of the cores): ${
      [["Postern", f.splits.postern], ["Dovecot", f.splits.dovecot], [
        "Deno.listenTls",
        f.splits.rustls,
      ]].filter((e): e is [string, MachineSplit] => e[1] !== null).map(([name, s]) =>
        `${name} ${s.serverUs.toFixed(0)} + ${s.othersUs.toFixed(0)} µs, ${
          (100 * s.idleShare).toFixed(0)
        } % idle`
      ).join("; ")
    }`,
    `P-256 sign: noble ${f.signing.noble.toFixed(0)} µs; WebCrypto ${
      f.signing.webcrypto1.toFixed(0)
    } µs one at a time, ${f.signing.webcrypto256.toFixed(0)} µs each with 256 in flight`,
  ].join("\n");
}

function flag(args: readonly string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

if (import.meta.main) {
  const clients = Number(flag(Deno.args, "--clients") ?? 4);
  const seconds = Number(flag(Deno.args, "--seconds") ?? 5);
  const workers = Number(flag(Deno.args, "--workers") ?? 1);
  console.log(formatHandshakes(await benchHandshakes(clients, seconds, workers)));
}
