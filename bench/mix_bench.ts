/**
 * The 20-client mixed-command load of issue 15, against Postern and Dovecot in the same run:
 * every client logs in, SELECTs the shared INBOX (seeded with `seed` messages) and then, one
 * command at a time, picks at random FETCH (a whole message by UID, 50%), APPEND (a 2–4 KB
 * corpus message, 20%), STORE (+FLAGS \Seen or \Deleted, 20%), EXPUNGE (5%) and SELECT (5%).
 * Reported per server: FETCH/s, APPEND/s, STORE/s, all commands/s, and for Postern the worst
 * event-loop stall inside the server process during the load (the timer-drift probe of
 * server/serve/stall_probe.ts, switched on by `POSTERN_STALL_PROBE`), next to the worst stall of the
 * same probe alone in an idle process (the machine's scheduling noise, since the cores are
 * shared).
 *
 * Durability: Postern answers APPEND/STORE/EXPUNGE only after its commit is synced
 * (SQLite `synchronous=FULL` semantics); Dovecot runs with `mail_fsync = optimized` (its
 * default, which fsyncs a saved message before OK). Dovecot stores mdbox with long-lived login
 * processes. Postern runs as `postern serve` in a child process. Figures are printed, never
 * asserted.
 *
 * Usage: `deno run -A bench/mix_bench.ts [--clients N] [--seconds S] [--no-dovecot]`.
 */
import { startStallProbes } from "./_stall_probes.ts";
import { join } from "node:path";
import { worstStall, worstStallDetail } from "../server/serve/stall_probe.ts";
import { dovecotAvailable } from "../tests/_support/dovecot.ts";
import { startReferenceDovecot } from "./_dovecot.ts";
import { type PosternProcess, startPosternProcess } from "../tests/_support/postern.ts";
import {
  appendBytes,
  ImapClient,
  type ImapConnectOptions,
  type ImapReply,
} from "./_imap_client.ts";
import { corpusMessage } from "./imap_bench.ts";
import { xorshift32 } from "../tests/_support/rng.ts";

const USER = "mix";
/** How long the server's idle CPU is measured before the load. */
const IDLE_MS = 3000;
const PASSWORD = "mix-password";

/** Options of `benchMix`. */
export interface BenchMixOptions {
  readonly clients: number;
  readonly seconds: number;
  /** Messages in INBOX before the load starts (default 500). */
  readonly seed?: number;
  readonly skipDovecot?: boolean;
  /** Called once the mailbox is seeded and the clients are logged in, before the load. */
  readonly onLoadStart?: () => Promise<void>;
  /** Postern's accept loops (`server.workers`), one run each (default [1]). */
  readonly workers?: readonly number[];
}

/** One server's figures. */
export interface MixFigures {
  readonly server: string;
  readonly seconds: number;
  readonly counts: Readonly<Record<Op, number>>;
  readonly no: number;
  /** Worst event-loop stall in the server during the load, ms (NaN when not measured). */
  readonly worstStallMs: number;
  /** Worst stall of an idle probe process in the same window: the machine's own noise. */
  readonly idleStallMs: number;
  /**
   * How the server's main thread spent its worst stall: on a CPU (`cpuMs`) or runnable but
   * waiting for one (`waitMs`), and the most CPU time it spent in any one probe tick
   * (`busyMs`), and the worst lateness less its wait for a core (`ownMs`); NaN when not
   * measured (see server/serve/stall_probe.ts).
   */
  readonly stallDetail: {
    readonly cpuMs: number;
    readonly waitMs: number;
    readonly busyMs: number;
    readonly ownMs: number;
  };
  /** Server CPU time (user + system, all threads) per command during the load, µs (NaN: unknown). */
  readonly cpuUsPerCommand: number;
  /**
   * The same less what the server burns idle over as long (its stall probes, timers), measured
   * before the load; NaN when not measured.
   */
  readonly netCpuUsPerCommand: number;
  /** Server CPU while idle, ms per second (the stall probes mostly). */
  readonly idleCpuMsPerSecond: number;
  /** The same by thread name (Workers, the main thread, Tokio's blocking pool...), µs per command. */
  readonly cpuByThread: Readonly<Record<string, number>>;
}

type Op = "fetch" | "append" | "store" | "expunge" | "select";

const WEIGHTS: readonly [Op, number][] = [
  ["fetch", 50],
  ["append", 20],
  ["store", 20],
  ["expunge", 5],
  ["select", 5],
];

function pick(r: () => number): Op {
  let x = r() * 100;
  for (const [op, w] of WEIGHTS) {
    if (x < w) return op;
    x -= w;
  }
  return "fetch";
}

async function seedMailbox(
  target: ImapConnectOptions,
  count: number,
  credentials: { readonly user: string; readonly password: string },
): Promise<void> {
  const c = await ImapClient.login(target, credentials.user, credentials.password);
  for (let i = 0; i < count; i += 100) {
    const batch = [];
    for (let k = i; k < Math.min(count, i + 100); k++) {
      batch.push(appendBytes("INBOX", corpusMessage(k)));
    }
    for (const r of await c.pipeline(batch, false)) {
      if (r.status !== "OK") throw new Error(`Seeding failed: ${r.text}`);
    }
  }
  await c.logout();
}

/**
 * Runs the mix for `seconds`. With several targets (nodes serving one store), client i talks
 * to target i mod n; the first target seeds the mailbox.
 */
export async function runMix(
  server: string,
  target: ImapConnectOptions | readonly ImapConnectOptions[],
  options: BenchMixOptions,
  stallFile: string | null,
  idleFile: string | null,
  credentials: { readonly user: string; readonly password: string } = {
    user: USER,
    password: PASSWORD,
  },
  serverCpuSeconds?: () => number,
  serverPid?: number,
  idleCpuPerSecond = NaN,
): Promise<MixFigures> {
  const seed = options.seed ?? 500;
  const targets = Array.isArray(target) ? target : [target as ImapConnectOptions];
  await seedMailbox(targets[0]!, seed, credentials);
  const clients = await Promise.all(
    Array.from(
      { length: options.clients },
      (_, i) =>
        ImapClient.login(targets[i % targets.length]!, credentials.user, credentials.password),
    ),
  );
  await options.onLoadStart?.();
  const counts: Record<Op, number> = { fetch: 0, append: 0, store: 0, expunge: 0, select: 0 };
  let no = 0;
  let uidHigh = seed;
  const cpuStart = serverCpuSeconds?.() ?? NaN;
  const threadsStart = serverPid === undefined ? new Map() : threadCpu(serverPid);
  const startEpoch = Date.now();
  const start = performance.now();
  const stopAt = start + options.seconds * 1000;
  await Promise.all(clients.map(async (c, index) => {
    const r = xorshift32(index * 104_729 + 7);
    await c.ok("SELECT INBOX", false);
    let n = 0;
    while (performance.now() < stopAt) {
      const op = pick(r);
      const uid = 1 + Math.floor(r() * uidHigh);
      let reply: ImapReply | undefined;
      switch (op) {
        case "fetch":
          reply = await c.command(`UID FETCH ${uid} (UID FLAGS BODY.PEEK[])`, false);
          break;
        case "append": {
          const message = corpusMessage(seed + index * 1_000_000 + n++);
          [reply] = await c.pipeline([appendBytes("INBOX", message)], false);
          const m = /APPENDUID \d+ (\d+)/.exec(reply?.text ?? "");
          if (m) uidHigh = Math.max(uidHigh, Number(m[1]));
          break;
        }
        case "store":
          reply = await c.command(
            `UID STORE ${uid} +FLAGS.SILENT (${r() < 0.3 ? "\\Deleted" : "\\Seen"})`,
            false,
          );
          break;
        case "expunge":
          reply = await c.command("EXPUNGE", false);
          break;
        case "select":
          reply = await c.command("SELECT INBOX", false);
          break;
      }
      if (reply?.status !== "OK") no++;
      else counts[op]++;
    }
  }));
  const seconds = (performance.now() - start) / 1000;
  const endEpoch = Date.now();
  const cpuEnd = serverCpuSeconds?.() ?? NaN;
  const threadsEnd = serverPid === undefined ? new Map() : threadCpu(serverPid);
  await Promise.all(clients.map((c) => c.logout()));
  const commands = Object.values(counts).reduce((a, b) => a + b, 0) + no;
  const detail = stallFile === null
    ? { cpuMs: NaN, waitMs: NaN, busyMs: NaN, ownMs: NaN }
    : worstStallDetail(stallFile, startEpoch, endEpoch);
  return {
    server,
    seconds,
    counts,
    no,
    worstStallMs: stallFile === null ? NaN : worstStall(stallFile, startEpoch, endEpoch),
    idleStallMs: idleFile === null ? NaN : worstStall(idleFile, startEpoch, endEpoch),
    stallDetail: {
      cpuMs: detail.cpuMs,
      waitMs: detail.waitMs,
      busyMs: detail.busyMs,
      ownMs: detail.ownMs,
    },
    cpuUsPerCommand: commands > 0 ? (cpuEnd - cpuStart) * 1e6 / commands : NaN,
    netCpuUsPerCommand: commands > 0
      ? (cpuEnd - cpuStart - idleCpuPerSecond * seconds) * 1e6 / commands
      : NaN,
    idleCpuMsPerSecond: idleCpuPerSecond * 1000,
    cpuByThread: byThread(threadsStart, threadsEnd, commands),
  };
}

/** CPU seconds of each live thread of process `pid`, by `tid name` (Linux /proc). */
function threadCpu(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  try {
    for (const entry of Deno.readDirSync(`/proc/${pid}/task`)) {
      try {
        const stat = Deno.readTextFileSync(`/proc/${pid}/task/${entry.name}/stat`);
        const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
        const fields = stat.slice(stat.lastIndexOf(") ") + 2).split(" ");
        out.set(`${entry.name} ${name}`, (Number(fields[11]) + Number(fields[12])) / 100);
      } catch {
        // The thread ended meanwhile.
      }
    }
  } catch {
    // Not Linux, or the process is gone.
  }
  return out;
}

/** CPU µs per command of each thread name between two `threadCpu` readings. */
function byThread(
  start: Map<string, number>,
  end: Map<string, number>,
  commands: number,
): Record<string, number> {
  const out: Record<string, number> = {};
  if (commands === 0) return out;
  for (const [key, seconds] of end) {
    const used = seconds - (start.get(key) ?? 0);
    if (used <= 0) continue;
    const name = key.slice(key.indexOf(" ") + 1);
    // Tids of the main thread and Workers are kept apart: they are the ones compared.
    const label = /^(deno|main)$/.test(name) || name.startsWith("worker")
      ? key
      : name.replace(/[-_ ]?\d+$/, "");
    out[label] = (out[label] ?? 0) + used * 1e6 / commands;
  }
  return out;
}

/** Runs the mix against Postern and then Dovecot. */
export async function benchMix(options: BenchMixOptions): Promise<MixFigures[]> {
  const out: MixFigures[] = [];
  const probes = await startStallProbes("postern-mix-");
  const { idleFile } = probes;
  const limit = options.clients + 5;
  let last: PosternProcess | null = null;
  try {
    for (const workers of options.workers ?? [1]) {
      await last?.stop();
      last = null;
      const stalls = join(probes.dir, `stalls-${workers}.jsonl`);
      Deno.env.set("POSTERN_STALL_PROBE", stalls);
      const postern: PosternProcess = last = await startPosternProcess({
        users: [{ name: USER, password: PASSWORD }],
        clientAuth: "none",
        limitsYaml: `  max_connections_per_user: ${limit}\n  max_connections_per_address: ${limit}`,
        workers,
      });
      Deno.env.delete("POSTERN_STALL_PROBE");
      // What the server burns idle (its stall probes: one per event loop), to tell apart, once
      // its Workers have settled (V8 compiles their modules for a while after they listen).
      await new Promise((r) => setTimeout(r, IDLE_MS));
      const idleFrom = postern.cpuSeconds();
      await new Promise((r) => setTimeout(r, IDLE_MS));
      const idleCpuPerSecond = (postern.cpuSeconds() - idleFrom) * 1000 / IDLE_MS;
      out.push(
        await runMix(
          `Postern (SQLite, ${workers}w)`,
          { port: postern.implicitPort, caPem: postern.caPem },
          options,
          stalls,
          idleFile,
          undefined,
          () => postern.cpuSeconds(),
          postern.pid,
          idleCpuPerSecond,
        ),
      );
    }
    const postern = last!;
    if (!options.skipDovecot && dovecotAvailable()) {
      const dovecot = await startReferenceDovecot(postern.dir, USER, PASSWORD, limit);
      try {
        out.push(
          await runMix(
            "Dovecot (mdbox)",
            { port: dovecot.port, caPem: postern.caPem },
            options,
            null,
            idleFile,
          ),
        );
      } finally {
        await dovecot.stop();
      }
    }
  } finally {
    await last?.stop();
    await probes.stop();
  }
  return out;
}

/** Formats the figures, with ratios against the last server (the reference). */
export function formatMix(figures: readonly MixFigures[]): string {
  const rate = (f: MixFigures, op: Op) => f.counts[op] / f.seconds;
  const rows = [
    `${"server".padEnd(18)} ${"FETCH/s".padStart(8)} ${"APPEND/s".padStart(9)} ${
      "STORE/s".padStart(8)
    } ${"all/s".padStart(7)} ${"NO".padStart(4)} ${"worst stall".padStart(12)} ${
      "idle probe".padStart(11)
    }`,
  ];
  for (const f of figures) {
    const all = Object.values(f.counts).reduce((a, b) => a + b, 0) / f.seconds;
    rows.push(
      `${f.server.padEnd(18)} ${rate(f, "fetch").toFixed(0).padStart(8)} ${
        rate(f, "append").toFixed(0).padStart(9)
      } ${rate(f, "store").toFixed(0).padStart(8)} ${all.toFixed(0).padStart(7)} ${
        String(f.no).padStart(4)
      } ${(Number.isNaN(f.worstStallMs) ? "-" : `${f.worstStallMs} ms`).padStart(12)} ${
        (Number.isNaN(f.idleStallMs) ? "-" : `${f.idleStallMs} ms`).padStart(11)
      }`,
    );
  }
  for (const f of figures) {
    if (Number.isNaN(f.worstStallMs) && Number.isNaN(f.cpuUsPerCommand)) continue;
    const d = f.stallDetail;
    rows.push(
      `${f.server}: worst stall ${f.worstStallMs} ms (on-CPU ${d.cpuMs} ms, waiting for a core ` +
        `${d.waitMs} ms), own stall ${d.ownMs} ms, longest on-CPU tick ${d.busyMs} ms; ` +
        `server CPU ${f.cpuUsPerCommand.toFixed(0)} µs per command (${
          f.netCpuUsPerCommand.toFixed(0)
        } net of ${f.idleCpuMsPerSecond.toFixed(0)} ms/s burnt idle)`,
    );
    const threads = Object.entries(f.cpuByThread ?? {}).sort((a, b) => b[1] - a[1])
      .filter(([, us]) => us >= 1);
    if (threads.length > 0) {
      rows.push(`  by thread: ${threads.map(([n, us]) => `${n} ${us.toFixed(0)}`).join(", ")}`);
    }
  }
  const ref = figures[figures.length - 1];
  for (const ours of figures.slice(0, -1)) {
    if (!ref || !ref.server.startsWith("Dovecot")) break;
    rows.push(
      `ratio ${ours.server}/Dovecot: FETCH ${
        (rate(ours, "fetch") / rate(ref, "fetch")).toFixed(2)
      }x, APPEND ${(rate(ours, "append") / rate(ref, "append")).toFixed(2)}x, ` +
        `STORE ${(rate(ours, "store") / rate(ref, "store")).toFixed(2)}x`,
    );
  }
  return rows.join("\n");
}

function flag(args: readonly string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

if (import.meta.main) {
  const clients = Number(flag(Deno.args, "--clients") ?? 20);
  const seconds = Number(flag(Deno.args, "--seconds") ?? 10);
  console.log(`Mixed load: ${clients} clients x ${seconds} s on one INBOX`);
  console.log(
    formatMix(
      await benchMix({
        clients,
        seconds,
        skipDovecot: Deno.args.includes("--no-dovecot"),
        workers: (flag(Deno.args, "--workers") ?? "1").split(",").map(Number),
      }),
    ),
  );
}
