/**
 * What metrics cost on the hot path: the same Postern with metrics off, and with the
 * Prometheus registry and the admin socket's counters, side by side in one run. The cost of a
 * scrape is measured apart: it is per scrape interval, not per connection or command. Each server runs in its own process; this process is the client: TLS handshakes
 * (Deno.connectTls, 8 at a time) and an IMAP mix of 20 logged-in sessions, each looping
 * SELECT, FETCH, UID SEARCH, STORE and NOOP. The two servers are measured in short alternating
 * slices, so load from elsewhere on a shared machine falls on both alike, and the ratio is
 * the median of the ratios of adjacent slices.
 *
 * Child mode (`deno run -A bench/metrics_bench.ts --serve on|off`) starts one server.
 */
import { join } from "node:path";
import { appendBytes, ImapClient, type ImapConnectOptions } from "./_imap_client.ts";
import { PrometheusMetrics } from "../server/metrics/prometheus.ts";
import { KeyCounters, teeMetrics } from "../server/metrics/counters.ts";

export interface MetricsBenchOptions {
  /** Length of each measured slice. */
  readonly sliceMs: number;
  /** Off/on slice pairs per figure. */
  readonly pairs: number;
  readonly clients: number;
}

const USER = "bench";
const PASSWORD = "bench-password";
const MESSAGES = 200;
const HANDSHAKES_PER_SLICE = 250;

interface Child {
  readonly port: number;
  readonly caPem: string;
  readonly caPath: string;
  readonly metricsPort: number | null;
  readonly pid: number;
  stop(): Promise<void>;
}

async function startChild(mode: "on" | "off", clients: number): Promise<Child> {
  const process = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(import.meta.url).pathname, "--serve", mode, String(clients)],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = process.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`metrics bench child (${mode}) ended early`);
    text += value;
  }
  const info = JSON.parse(text.slice(0, text.indexOf("\n"))) as Omit<Child, "stop" | "pid">;
  return {
    ...info,
    pid: process.pid,
    async stop() {
      await process.stdin.close().catch(() => {});
      await reader.cancel().catch(() => {});
      await process.status;
    },
  };
}

/** Child mode: one Postern, metrics on or off; prints how to reach it; stops at stdin EOF. */
async function serveChild(mode: "on" | "off", clients: number): Promise<void> {
  const { startPostern } = await import("../tests/_support/postern.ts");
  const adminDir = await Deno.makeTempDir({ prefix: "postern-bench-admin-" });
  const postern = await startPostern({
    users: [{ name: USER, password: PASSWORD }],
    clientAuth: "none",
    limitsYaml: `  max_connections_per_user: ${clients + 10}\n` +
      "  max_connections_per_address: 10000",
    extraYaml: mode === "on"
      ? `metrics: { listen: 127.0.0.1:0 }\nadmin: { enabled: true, socket: ${
        join(adminDir, "admin.sock")
      } }\n`
      : "admin: { enabled: false }\n",
  });
  console.log(JSON.stringify({
    port: postern.implicitPort,
    caPem: postern.caPem,
    caPath: postern.caPath,
    metricsPort: postern.handle.metricsAddress?.port ?? null,
  }));
  try {
    for await (const _ of Deno.stdin.readable) {
      // Runs until the parent closes stdin.
    }
  } finally {
    await postern.stop();
    await Deno.remove(adminDir, { recursive: true }).catch(() => {});
  }
}

function message(i: number): Uint8Array {
  return new TextEncoder().encode(
    `From: a${i}@example.org\r\nTo: bench@example.org\r\nSubject: message ${i}\r\n` +
      `Date: Tue, 7 Mar 2023 10:00:00 +0000\r\nMessage-ID: <m${i}@bench>\r\n\r\n` +
      `${"Some body text. ".repeat(20)}\r\n`,
  );
}

async function fill(target: Child): Promise<void> {
  const c = await ImapClient.login(target, USER, PASSWORD);
  try {
    await c.pipeline(Array.from({ length: MESSAGES }, (_, i) => appendBytes("INBOX", message(i))));
  } finally {
    await c.logout();
  }
}

/**
 * Completes TLS handshakes, 8 at a time, until `ms` have passed or `HANDSHAKES_PER_SLICE` are
 * done. The cap is there because Deno's TLS client here keeps a descriptor per closed
 * connection until the process ends: a full run would otherwise exhaust 20,000 descriptors.
 */
async function handshakeSlice(target: Child, ms: number): Promise<Slice> {
  let count = 0;
  let started = 0;
  const begin = performance.now();
  const deadline = begin + ms;
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (performance.now() < deadline && started < HANDSHAKES_PER_SLICE) {
      started++;
      const conn = await Deno.connectTls({
        hostname: "127.0.0.1",
        port: target.port,
        caCerts: [target.caPem],
      });
      try {
        await conn.handshake();
        count++;
      } finally {
        conn.close();
      }
    }
  }));
  return { items: count, seconds: (performance.now() - begin) / 1000 };
}

/** Logged-in sessions that loop SELECT, FETCH, UID SEARCH, STORE and NOOP. */
async function openSessions(target: ImapConnectOptions, clients: number): Promise<ImapClient[]> {
  // One at a time: the per-address login limits would refuse 20 at once.
  const sessions: ImapClient[] = [];
  for (let i = 0; i < clients; i++) sessions.push(await ImapClient.login(target, USER, PASSWORD));
  await Promise.all(sessions.map((c) => c.ok("SELECT INBOX", false)));
  return sessions;
}

/** Every session loops the mix for `ms`; returns commands per second in total. */
async function mixSlice(sessions: readonly ImapClient[], ms: number): Promise<Slice> {
  let commands = 0;
  const started = performance.now();
  const deadline = started + ms;
  await Promise.all(sessions.map(async (c, i) => {
    let n = i;
    while (performance.now() < deadline) {
      const first = 1 + (n * 20) % (MESSAGES - 20);
      await c.ok("SELECT INBOX", false);
      await c.ok(`FETCH ${first}:${first + 19} (UID FLAGS RFC822.SIZE ENVELOPE)`, false);
      await c.ok("UID SEARCH UNSEEN", false);
      await c.ok(`STORE ${first} ${n % 2 === 0 ? "+" : "-"}FLAGS.SILENT (\\Seen)`, false);
      await c.ok("NOOP", false);
      commands += 5;
      n++;
    }
  }));
  return { items: commands, seconds: (performance.now() - started) / 1000 };
}

/** Server CPU time per scrape of /metrics, over `count` scrapes in a row (no other traffic). */
async function scrapeCost(child: Child, count: number): Promise<{ cpuMs: number; bytes: number }> {
  let bytes = 0;
  const before = cpuMicros(child.pid);
  for (let i = 0; i < count; i++) {
    bytes = (await (await fetch(`http://127.0.0.1:${child.metricsPort}/metrics`)).text()).length;
  }
  return { cpuMs: (cpuMicros(child.pid) - before) / 1000 / count, bytes };
}

/**
 * Times the hooks a handshake (accept, handshake, a few reads and writes, close_notify both
 * ways, close) and an IMAP command (the command, two store calls, one read and one write)
 * fire, on Prometheus and the admin counters together, as the "on" server has them.
 */
function hookCosts(): { handshakeUs: number; commandUs: number } {
  const prometheus = new PrometheusMetrics();
  const m = teeMetrics(prometheus, new KeyCounters());
  const listener = "127.0.0.1:9993/implicit";
  const handshake = {
    version: "TLSv1.3",
    suite: "TLS_CHACHA20_POLY1305_SHA256",
    group: "x25519",
    result: "ok",
    seconds: 0.002,
  } as const;
  const time = (n: number, body: () => void) => {
    for (let i = 0; i < 1000; i++) body();
    const started = performance.now();
    for (let i = 0; i < n; i++) body();
    return (performance.now() - started) * 1000 / n;
  };
  try {
    const handshakeUs = time(50_000, () => {
      m.connectionOpened(listener);
      m.bytesReceived(517);
      m.bytesSent(1200);
      m.bytesReceived(80);
      m.handshake(handshake);
      m.tlsAlert("received", "close_notify");
      m.tlsAlert("sent", "close_notify");
      m.connectionClosed(listener);
    });
    const commandUs = time(50_000, () => {
      m.bytesReceived(40);
      m.storeOperation("getMailbox", true, 0.0001);
      m.storeOperation("getMessages", true, 0.0003);
      m.imapCommand("UID FETCH", "ok", 0.0005);
      m.bytesSent(2000);
    });
    return { handshakeUs, commandUs };
  } finally {
    prometheus.close();
  }
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Items completed in one slice and its length. */
interface Slice {
  readonly items: number;
  readonly seconds: number;
}

/**
 * Medians of per-slice rates and the median of the on/off ratio of adjacent slices; and the
 * server process's CPU time per item over all slices, which a busy machine disturbs far less
 * than wall-clock rates.
 */
export interface Paired {
  readonly on: number;
  readonly off: number;
  readonly ratio: number;
  readonly cpuUsOn: number;
  readonly cpuUsOff: number;
}

/** CPU time (user + system) a process has used so far, in µs (Linux /proc). */
function cpuMicros(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // utime and stime are fields 14 and 15 of stat(5), in clock ticks (100 per second here).
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

/**
 * Runs `slice` on both servers in short alternating slices (off, on, on, off, …), so that
 * load from elsewhere on the machine falls on both alike; pairs adjacent slices.
 */
async function paired(
  pairs: number,
  pids: { readonly off: number; readonly on: number },
  slice: (mode: "off" | "on") => Promise<Slice>,
): Promise<Paired> {
  const on: number[] = [];
  const off: number[] = [];
  const ratios: number[] = [];
  const cpu = { off: 0, on: 0 };
  const items = { off: 0, on: 0 };
  for (let i = 0; i < pairs; i++) {
    const order: ("off" | "on")[] = i % 2 === 0 ? ["off", "on"] : ["on", "off"];
    const got: Record<string, number> = {};
    for (const mode of order) {
      const before = cpuMicros(pids[mode]);
      const s = await slice(mode);
      cpu[mode] += cpuMicros(pids[mode]) - before;
      items[mode] += s.items;
      got[mode] = s.items / s.seconds;
    }
    on.push(got.on!);
    off.push(got.off!);
    ratios.push(got.on! / got.off!);
  }
  return {
    on: median(on),
    off: median(off),
    ratio: median(ratios),
    cpuUsOn: cpu.on / items.on,
    cpuUsOff: cpu.off / items.off,
  };
}

export interface MetricsFigures {
  /** The hooks one handshake and one IMAP command fire, timed in a loop (µs, metrics on). */
  readonly hooks: { readonly handshakeUs: number; readonly commandUs: number };
  readonly handshakes: Paired;
  /** IMAP commands per second over all clients. */
  readonly mix: Paired;
  /** Server CPU per scrape of /metrics, measured apart from the paired runs. */
  readonly scrapeCpuMs: number;
  readonly scrapeBytes: number;
}

export async function benchMetrics(options: MetricsBenchOptions): Promise<MetricsFigures> {
  const off = await startChild("off", options.clients);
  const on = await startChild("on", options.clients);
  const sessions: ImapClient[] = [];
  try {
    const children = { off, on };
    await Promise.all([fill(off), fill(on)]);
    const pids = { off: off.pid, on: on.pid };
    const handshakes = await paired(
      options.pairs,
      pids,
      (mode) => handshakeSlice(children[mode], options.sliceMs),
    );
    const open = {
      off: await openSessions(off, options.clients),
      on: await openSessions(on, options.clients),
    };
    sessions.push(...open.off, ...open.on);
    const mix = await paired(
      options.pairs,
      pids,
      (mode) => mixSlice(open[mode], options.sliceMs),
    );
    const scrape = await scrapeCost(on, 50);
    return {
      hooks: hookCosts(),
      handshakes,
      mix,
      scrapeCpuMs: scrape.cpuMs,
      scrapeBytes: scrape.bytes,
    };
  } finally {
    await Promise.all(sessions.map((c) => c.logout()));
    await Promise.all([off.stop(), on.stop()]);
  }
}

if (import.meta.main && Deno.args[0] === "--serve") {
  await serveChild(Deno.args[1] === "on" ? "on" : "off", Number(Deno.args[2] ?? 20));
}
