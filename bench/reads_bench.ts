/**
 * Single reads on a large mailbox, Postern against Dovecot (mdbox) in the same run: the corpus
 * of `imap_bench.ts` (every third message unseen) is APPENDed once to each server, then a fresh
 * session times SELECT INBOX, `FETCH 1:* (UID FLAGS)`, `UID SEARCH ALL` and `UID SEARCH UNSEEN`,
 * R rounds, the two servers' rounds in turn (so that both meet the same load of a shared
 * machine). Reported per command: the best and the median of the rounds and the ratio of the
 * medians (below 1.00x means Postern is faster), and the worst event-loop stall inside Postern
 * during the reads (the timer-drift probe of server/serve/stall_probe.ts) next to that of the same
 * probe alone in an idle process (the machine's own noise). Then, with restarts, each server is
 * restarted (its data kept, its caches in memory gone), sessions send the same reads to another
 * mailbox of `WARM_MESSAGES` (so that the server's code has run, as on a server that others use
 * all day), and a fresh session times the reads of INBOX once: the first SELECT of a large
 * mailbox after a restart (Postern lists it from its stored snapshot, Dovecot from its index
 * files), best and median over the restarts. Figures are printed, never asserted.
 *
 * Usage: `deno run -A bench/reads_bench.ts [--messages N] [--rounds R] [--restarts K]
 * [--no-dovecot]` (default 10,000 messages, 5 rounds, 3 restarts).
 */
import {
  formatStall,
  settleProbes,
  type StallFigures,
  stallFigures,
  startStallProbes,
} from "./_stall_probes.ts";
import { dovecotAvailable, type RunningDovecot } from "../tests/_support/dovecot.ts";
import { startReferenceDovecot } from "./_dovecot.ts";
import { startPosternProcess } from "../tests/_support/postern.ts";
import { ImapClient, type ImapConnectOptions } from "./_imap_client.ts";
import { appendCorpus, PASSWORD, USER } from "./imap_bench.ts";

/** The commands timed, in the order a client opening a folder sends them. */
export const READS = [
  "SELECT INBOX",
  "FETCH 1:* (UID FLAGS)",
  "UID SEARCH ALL",
  "UID SEARCH UNSEEN",
] as const;
type Read = typeof READS[number];

/** One server's figures: milliseconds per command, [best, median]. */
export interface ReadFigures {
  readonly server: string;
  readonly ms: Readonly<Record<Read, readonly [number, number]>>;
  /** The same, of the first reads after a restart; null without restarts. */
  readonly restarted: Readonly<Record<Read, readonly [number, number]>> | null;
  /** The server's event-loop stalls during the reads (null when not measured). */
  readonly stall: StallFigures | null;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** A server loaded with the corpus, and the times of its rounds so far. */
interface Subject {
  readonly server: string;
  readonly target: ImapConnectOptions;
  readonly times: Record<Read, number[]>;
  /** Times of the first reads after each restart. */
  readonly restarted: Record<Read, number[]>;
  /** Stops and starts the server on the same data. */
  readonly restart: () => Promise<void>;
}

/** Messages of the mailbox whose reads start a restarted server's code. */
const WARM_MESSAGES = 2000;
/** Rounds of reads on that mailbox after each restart. */
const WARM_ROUNDS = 3;

/**
 * One round: a fresh session sends each read once (to `mailbox` instead of INBOX when given);
 * the times go to `into` unless null.
 */
async function round(
  s: Subject,
  n: number,
  into: Record<Read, number[]> | null,
  mailbox = "INBOX",
): Promise<void> {
  const c = await ImapClient.login(s.target, USER, PASSWORD);
  for (const read of READS) {
    const cmd = read.replace("INBOX", mailbox);
    const t0 = performance.now();
    const r = await c.ok(cmd);
    const ms = performance.now() - t0;
    if (read === "SELECT INBOX" && !r.untagged.includes(`* ${n} EXISTS`)) {
      throw new Error(`${s.server}: ${cmd} did not report ${n} messages`);
    }
    into?.[read].push(ms);
  }
  await c.logout();
}

/**
 * Fills the warm-up mailbox of every subject and reads it once, then restarts each server in
 * turn, runs its code with rounds of reads on the warm-up mailbox, and times one round of reads
 * on INBOX.
 */
async function timeRestarts(subjects: readonly Subject[], n: number, restarts: number) {
  if (restarts === 0) return;
  for (const s of subjects) {
    await appendCorpus(s.target, WARM_MESSAGES, () => {}, "Warm");
    await round(s, WARM_MESSAGES, null, "Warm");
  }
  for (let i = 0; i < restarts; i++) {
    const order = i % 2 === 0 ? subjects : [...subjects].reverse();
    for (const s of order) {
      await s.restart();
      for (let w = 0; w < WARM_ROUNDS; w++) await round(s, WARM_MESSAGES, null, "Warm");
      await new Promise((r) => setTimeout(r, 200));
      await round(s, n, s.restarted);
    }
  }
}

/**
 * Times the reads on every subject, the rounds of the servers interleaved (the order flipped
 * every round), so that both meet the same load of a shared machine.
 */
async function timeRounds(subjects: readonly Subject[], n: number, rounds: number) {
  // Settle: the first round after the load also warms caches on every server.
  await new Promise((r) => setTimeout(r, 1000));
  const from = Date.now();
  for (let i = 0; i < rounds + 1; i++) {
    const order = i % 2 === 0 ? subjects : [...subjects].reverse();
    for (const s of order) await round(s, n, i === 0 ? null : s.times);
  }
  const to = Date.now();
  await settleProbes();
  return { from, to };
}

function bestAndMedian(times: Record<Read, number[]>): Record<Read, readonly [number, number]> {
  const ms = {} as Record<Read, readonly [number, number]>;
  for (const cmd of READS) ms[cmd] = [Math.min(...times[cmd]), median(times[cmd])];
  return ms;
}

function figures(s: Subject, stall: StallFigures | null): ReadFigures {
  const restarted = s.restarted["SELECT INBOX"].length > 0 ? bestAndMedian(s.restarted) : null;
  return { server: s.server, ms: bestAndMedian(s.times), restarted, stall };
}

function noTimes(): Record<Read, number[]> {
  return {
    "SELECT INBOX": [],
    "FETCH 1:* (UID FLAGS)": [],
    "UID SEARCH ALL": [],
    "UID SEARCH UNSEEN": [],
  };
}

function subject(
  server: string,
  target: ImapConnectOptions,
  restart: () => Promise<void>,
): Subject {
  return { server, target, times: noTimes(), restarted: noTimes(), restart };
}

/** Loads the corpus into each server, then times the reads, round by round in turn. */
export async function benchReads(
  options: {
    messages: number;
    rounds: number;
    /** Restarts after the rounds, each followed by one timed round (default 0). */
    restarts?: number;
    skipDovecot?: boolean;
    /** Postern's accept loops (`server.workers`, default 1). */
    workers?: number;
  },
): Promise<ReadFigures[]> {
  const workers = options.workers ?? 1;
  const n = options.messages;
  const probes = await startStallProbes("postern-reads-");
  const { stallFile, idleFile } = probes;
  Deno.env.set("POSTERN_STALL_PROBE", stallFile);
  const postern = await startPosternProcess({
    users: [{ name: USER, password: PASSWORD }],
    workers,
  });
  Deno.env.delete("POSTERN_STALL_PROBE");
  let dovecot: RunningDovecot | null = null;
  try {
    const p = subject(workers === 1 ? "Postern" : `Postern (${workers}w)`, {
      port: postern.implicitPort,
      caPem: postern.caPem,
    }, () => postern.restart());
    await appendCorpus(p.target, n, () => {});
    const subjects = [p];
    if (!options.skipDovecot && dovecotAvailable()) {
      dovecot = await startReferenceDovecot(postern.dir, USER, PASSWORD);
      const running = dovecot;
      const d = subject(
        "Dovecot",
        { port: dovecot.port, caPem: postern.caPem },
        () => running.restart(),
      );
      await appendCorpus(d.target, n, () => {});
      subjects.push(d);
    }
    const { from, to } = await timeRounds(subjects, n, options.rounds);
    // The stall probe file is the first process's; the restarted ones are not probed.
    const stalls = stallFigures(stallFile, idleFile, from, to);
    await timeRestarts(subjects, n, options.restarts ?? 0);
    return subjects.map((s, i) => figures(s, i === 0 ? stalls : null));
  } finally {
    await dovecot?.stop();
    await postern.stop();
    await probes.stop();
  }
}

/** Formats the figures: best/median per server, and the ratio of the medians. */
export function formatReads(figures: readonly ReadFigures[]): string {
  const rows = [
    `${"command".padEnd(24)}${figures.map((f) => `${f.server} best/median`.padStart(26)).join("")}`,
  ];
  for (const cmd of READS) {
    const cells = figures.map((f) => {
      const [best, med] = f.ms[cmd];
      return `${best.toFixed(1)} / ${med.toFixed(1)} ms`.padStart(26);
    });
    const ratio = figures.length > 1
      ? `  ${(figures[0]!.ms[cmd][1] / figures[1]!.ms[cmd][1]).toFixed(2)}x`
      : "";
    rows.push(`${cmd.padEnd(24)}${cells.join("")}${ratio}`);
  }
  if (figures[0]!.restarted !== null) {
    rows.push("first reads after a restart (best / median over the restarts):");
    for (const cmd of READS) {
      const cells = figures.map((f) => {
        const [best, med] = f.restarted?.[cmd] ?? [NaN, NaN];
        return `${best.toFixed(1)} / ${med.toFixed(1)} ms`.padStart(26);
      });
      const ratio = figures.length > 1 && figures[1]!.restarted !== null
        ? `  ${(figures[0]!.restarted![cmd][1] / figures[1]!.restarted[cmd][1]).toFixed(2)}x`
        : "";
      rows.push(`${cmd.padEnd(24)}${cells.join("")}${ratio}`);
    }
  }
  const p = figures[0]!;
  if (p.stall) rows.push(`${p.server} during the reads: ${formatStall(p.stall)}`);
  return rows.join("\n");
}

function flag(args: readonly string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

if (import.meta.main) {
  const messages = Number(flag(Deno.args, "--messages") ?? 10_000);
  const rounds = Number(flag(Deno.args, "--rounds") ?? 5);
  const restarts = Number(flag(Deno.args, "--restarts") ?? 3);
  console.log(`Single reads on ${messages} messages, ${rounds} rounds, ${restarts} restarts`);
  console.log(
    formatReads(
      await benchReads({
        messages,
        rounds,
        restarts,
        skipDovecot: Deno.args.includes("--no-dovecot"),
      }),
    ),
  );
}
