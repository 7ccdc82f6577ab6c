/**
 * Hostile load (issue 10): 1,000 hostile connections at once (half-open TCP, slowloris TLS,
 * garbage, oversized RSA client chains, KeyUpdate floods, pre-login literal floods, clients that
 * never read) against a server in its own process, while an honest client logs in, SELECTs,
 * FETCHes and APPENDs again and again. The reference is the same honest client against the
 * same server with no attack, measured in the same run. Prints the worst latency of each step
 * and the server's RSS; asserts nothing.
 *
 *     deno task bench --only hostile          (or: deno run -A bench/hostile_bench.ts)
 *     deno run -A bench/hostile_bench.ts --per-kind     (each kind alone: server CPU it costs)
 *
 * The attackers' Worker thread runs at nice `ATTACKERS_NICE` (10); `--attackers-nice 0` runs it
 * at the server's and the honest client's priority, as before. The honest client resumes each
 * round with the ticket sent after its LOGIN; `--no-resume`: a full handshake every round.
 */
import { startStallProbes } from "./_stall_probes.ts";
import { worstStallDetail } from "../server/serve/stall_probe.ts";
import { FLUSH_MS, type StepFigure, worstSteps } from "../server/serve/step_probe.ts";
import { startPosternProcess } from "../tests/_support/postern.ts";
import {
  HONEST_STEPS,
  HOSTILE_KINDS,
  type HostileKind,
  type HostileResult,
  prepareAttackersInWorker,
  runHonestClient,
  seedMessages,
} from "../tests/_support/hostile_load.ts";

export interface HostileBenchOptions {
  readonly connections: number;
  readonly seconds: number;
  /** Postern's accept loops (`server.workers`); default 1. */
  readonly workers?: number;
  /**
   * The nice value of the attackers' Worker thread (Linux; the honest client and the server
   * stay at their own). Default `ATTACKERS_NICE`; 0 runs the attackers at normal priority.
   */
  readonly attackersNice?: number;
  /**
   * The honest client resumes each round with the ticket the server sent after its LOGIN (our
   * own TLS client; default true); false: Deno's TLS client, a full handshake every round.
   */
  readonly resume?: boolean;
}

/**
 * The attackers' default nice value. Remote attackers would not share the server's cores; on a
 * 2-core machine at equal priority they take more CPU than the server (15-23 s against 14-17 s
 * of 40 in a 20 s run), and the honest client's steps become the server's wait for a core.
 * Nice 10 gives a runnable attacker thread about a tenth of a contended core's time (CFS
 * weights 110 against 1024) and leaves it every idle cycle.
 */
export const ATTACKERS_NICE = 10;

export interface HostileBenchResult {
  readonly connections: number;
  readonly seconds: number;
  /** Worst latency per step, ms: honest client alone, then under attack. */
  readonly quietWorstMs: Record<string, number>;
  readonly loadedWorstMs: Record<string, number>;
  /** In each worst step under attack, the honest client's own wait for a core. */
  readonly loadedClientWaitMs: Record<string, number>;
  /**
   * The same steps as the server saw them under attack (`POSTERN_STEP_PROBE`): the handshake
   * from accept to its end, a command from the read that completed it to its reply handed to the
   * socket; each worst with the server's main thread's wait for a core in it. Keyed by
   * `HONEST_STEPS`.
   */
  readonly serverWorst: Record<string, StepFigure>;
  /**
   * During the attack, on the whole machine (other work included; NaN without `nstat`):
   * connections dropped at a full listen queue, retransmission timeouts and segments resent.
   */
  readonly tcp: TcpTrouble;
  readonly quietRounds: number;
  readonly loadedRounds: number;
  /** Honest rounds under attack that resumed a ticket (`resume`), and whether it was on. */
  readonly loadedResumed: number;
  readonly resume: boolean;
  readonly honestFailures: readonly string[];
  readonly idleRss: number;
  readonly quietPeakRss: number;
  readonly loadedPeakRss: number;
  readonly leftoverConnections: number;
  /** Server CPU seconds used during the attack, and the attack's wall-clock seconds. */
  readonly serverCpuSeconds: number;
  /**
   * CPU seconds during the attack of this bench process (the attackers' Worker, the honest
   * client) and of the whole machine (both cores, every process: other work shares them).
   */
  readonly benchCpuSeconds: number;
  readonly machineCpuSeconds: number;
  /** The attackers' Worker thread: its nice value as /proc showed it, and its CPU seconds. */
  readonly attackers: { readonly nice: number; readonly tid: number; readonly cpuSeconds: number };
  readonly hostile: HostileResult;
  /** Where the honest client's connect+greeting time went, client and server lined up. */
  readonly connectSplit: ConnectSplit | null;
  /**
   * The server's worst event-loop stall during the attack, with the main thread's time on a
   * core and waiting for one in it; and the worst stall of an idle probe process meanwhile
   * (the machine's own load).
   */
  readonly stall: {
    worstMs: number;
    cpuMs: number;
    waitMs: number;
    busyMs: number;
    idleMs: number;
  };
}

/**
 * The parts of a connect+greeting, in ms, by timestamps of the client (c) and the server's step
 * probe (s) lined up by the client's port: TCP connect (c), established to accepted (the listen
 * queue and the accept loop's turn: c->s), accepted to the ClientHello read (s), the ClientHello
 * read to the first flight written (gate, CPU: s), the flight written to the client's first read
 * done (s->c), the client's first read to its handshake end (c), its end to the greeting (c).
 */
const CONNECT_PARTS = [
  ["tcp", "start", "tcpAt", "c", "c"],
  ["to accept", "tcpAt", "acceptAt", "c", "s"],
  ["to hello read", "acceptAt", "helloAt", "s", "s"],
  ["to flight", "helloAt", "flightAt", "s", "s"],
  ["flight to client", "flightAt", "firstReadAt", "s", "c"],
  ["client to done", "firstReadAt", "doneAt", "c", "c"],
  ["done to greeting", "doneAt", "greetingAt", "c", "c"],
] as const;

export interface ConnectSplit {
  /** Rounds lined up with a server line. */
  readonly matched: number;
  /** Each part in the worst connect; and each part's worst and 90th percentile over rounds. */
  readonly worst: Record<string, number>;
  /** The parts of the round that waited longest for its accept. */
  readonly worstAccept: Record<string, number>;
  readonly partWorst: Record<string, number>;
  readonly partP90: Record<string, number>;
}

function splitConnects(
  stepFile: string,
  connects: readonly Record<string, number>[],
  worstConnect: Record<string, number>,
): ConnectSplit | null {
  if (connects.length === 0) return null;
  const servers = new Map<number, Record<string, number>[]>();
  try {
    for (const line of Deno.readTextFileSync(stepFile).split("\n")) {
      if (line === "") continue;
      const r = JSON.parse(line) as Record<string, number | string>;
      if (r.step !== "handshake" || typeof r.port !== "number") continue;
      const list = servers.get(r.port) ?? [];
      list.push(r as Record<string, number>);
      servers.set(r.port, list);
    }
  } catch {
    return null;
  }
  const parts = (c: Record<string, number>): Record<string, number> | null => {
    // The server line of this port whose accept is nearest after the client's start.
    const s = (servers.get(c.port!) ?? [])
      .filter((x) => x.acceptAt! >= c.start! - 5 && x.acceptAt! <= c.greetingAt! + 5)[0];
    if (s === undefined) return null;
    const out: Record<string, number> = {};
    for (const [name, from, to, fromSide, toSide] of CONNECT_PARTS) {
      out[name] = (toSide === "c" ? c : s)[to]! - (fromSide === "c" ? c : s)[from]!;
    }
    out.total = c.greetingAt! - c.start!;
    // The accept loop's gap before this accept, and its thread's wait for a core in it.
    if (s.gapMs !== undefined) out["accept gap"] = s.gapMs;
    if (s.gapWaitMs !== undefined) out["(waiting for a core)"] = s.gapWaitMs;
    for (const w of ["in50", "in100", "in200", "in400"]) {
      if (s[w] !== undefined) out[`accepts ${w}`] = s[w]!;
    }
    return out;
  };
  const all = connects.map(parts).filter((p): p is Record<string, number> => p !== null);
  const names = [...CONNECT_PARTS.map((p) => p[0]), "total", "accept gap"];
  const pick = (q: number) =>
    Object.fromEntries(names.map((n) => {
      const sorted = all.map((p) => p[n]!).sort((a, b) => a - b);
      return [n, sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0];
    }));
  const worstAccept = all.reduce<Record<string, number>>(
    (w, p) => (p["to accept"]! > (w["to accept"] ?? -Infinity) ? p : w),
    {},
  );
  return {
    matched: all.length,
    worst: parts(worstConnect) ?? {},
    worstAccept,
    partWorst: pick(1),
    partP90: pick(0.9),
  };
}

export async function benchHostile(options: HostileBenchOptions): Promise<HostileBenchResult> {
  const account = { user: "honest", password: "honest-password" };
  const probes = await startStallProbes("postern-hostile-");
  const { stallFile, idleFile } = probes;
  const stepFile = `${probes.dir}/steps.jsonl`;
  Deno.env.set("POSTERN_STALL_PROBE", stallFile);
  Deno.env.set("POSTERN_STEP_PROBE", stepFile);
  const server = await startPosternProcess({
    users: [{ name: account.user, password: account.password }],
    handshakeTimeout: "4s",
    limitsYaml: "  max_connections_per_address: 5000",
    workers: options.workers ?? 1,
  }).finally(() => {
    Deno.env.delete("POSTERN_STALL_PROBE");
    Deno.env.delete("POSTERN_STEP_PROBE");
  });
  let peak = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      peak = Math.max(peak, server.rss());
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  try {
    const expected = await seedMessages(server, account, 20);
    const idleRss = server.rss();
    const resume = { resume: options.resume ?? true };
    const quiet = await runHonestClient(server, account, expected, Date.now() + 3000, resume);
    const quietPeakRss = peak;
    peak = 0;
    const cpuBefore = server.cpuSeconds();
    const benchBefore = ownCpuSeconds();
    const machineBefore = machineCpuSeconds();
    const tcpBefore = await tcpTrouble();
    const nice = options.attackersNice ?? ATTACKERS_NICE;
    const attack = await prepareAttackersInWorker(server, options.connections, undefined, {
      nice,
    });
    if (nice > 0 && attack.thread?.nice !== nice) {
      throw new Error(`Attackers' thread runs at nice ${attack.thread?.nice}, not ${nice}`);
    }
    const attackStart = Date.now();
    const deadline = Date.now() + options.seconds * 1000;
    const [hostile, loaded] = await Promise.all([
      attack.run(deadline),
      // A returning client: the first round under attack resumes too, with the quiet
      // rounds' last ticket.
      runHonestClient(server, account, expected, deadline, {
        ...resume,
        ...(quiet.ticket ? { ticket: quiet.ticket } : {}),
      }),
    ]);
    const loadedPeakRss = peak;
    const stall = {
      ...worstStallDetail(stallFile, attackStart, deadline),
      idleMs: worstStallDetail(idleFile, attackStart, deadline).worstMs,
    };
    const serverCpuSeconds = server.cpuSeconds() - cpuBefore;
    const benchCpuSeconds = ownCpuSeconds() - benchBefore;
    const machineSeconds = machineCpuSeconds() - machineBefore;
    const tcpAfter = await tcpTrouble();
    const tcp: TcpTrouble = {
      listenOverflows: tcpAfter.listenOverflows - tcpBefore.listenOverflows,
      timeouts: tcpAfter.timeouts - tcpBefore.timeouts,
      retransmitted: tcpAfter.retransmitted - tcpBefore.retransmitted,
    };
    // The probe writes its lines at most FLUSH_MS after each step.
    await new Promise((r) => setTimeout(r, 2 * FLUSH_MS));
    const connectSplit = splitConnects(stepFile, loaded.connects, loaded.worstConnect);
    const serverWorst: Record<string, StepFigure> = {};
    for (const [name, figure] of Object.entries(worstSteps(stepFile, attackStart, deadline))) {
      const step = SERVER_STEP[name];
      if (step !== undefined) serverWorst[step] = figure;
    }
    let leftover = await server.openConnections();
    for (let i = 0; i < 100 && leftover > 0; i++) {
      await new Promise((r) => setTimeout(r, 200));
      leftover = await server.openConnections();
    }
    // Nothing stored was lost: one more pass, untimed, FETCHes and checks every message.
    const final = await runHonestClient(server, account, expected, Date.now() + 1, {
      fetch: "all",
    });
    return {
      connections: options.connections,
      seconds: options.seconds,
      quietWorstMs: quiet.worstMs,
      loadedWorstMs: loaded.worstMs,
      loadedClientWaitMs: loaded.worstWaitMs,
      serverWorst,
      tcp,
      quietRounds: quiet.rounds,
      loadedRounds: loaded.rounds,
      loadedResumed: loaded.resumed,
      resume: resume.resume,
      honestFailures: [...quiet.failures, ...loaded.failures, ...final.failures],
      idleRss,
      quietPeakRss,
      loadedPeakRss,
      leftoverConnections: leftover,
      serverCpuSeconds,
      benchCpuSeconds,
      machineCpuSeconds: machineSeconds,
      attackers: {
        nice: attack.thread?.nice ?? 0,
        tid: attack.thread?.tid ?? 0,
        cpuSeconds: hostile.cpuSeconds,
      },
      hostile,
      connectSplit,
      stall,
    };
  } finally {
    sampling = false;
    await sampler;
    await server.stop();
    await probes.stop();
  }
}

/** The honest steps by the names the step probe gives them. */
const SERVER_STEP: Record<string, string> = {
  handshake: "connect+greeting",
  LOGIN: "login",
  SELECT: "select",
  "UID FETCH": "fetch",
  APPEND: "append",
  LOGOUT: "logout",
};

/** TCP counters of the machine (`nstat`) that cost a client hundreds of milliseconds. */
interface TcpTrouble {
  /** Connections dropped at a full listen queue: a SYN retransmission each, 1 s or more. */
  readonly listenOverflows: number;
  /** Retransmission timeouts (at least 200 ms each, on loopback too). */
  readonly timeouts: number;
  /** Segments retransmitted. */
  readonly retransmitted: number;
}

const TCP_COUNTERS = {
  listenOverflows: "TcpExtListenOverflows",
  timeouts: "TcpExtTCPTimeouts",
  retransmitted: "TcpRetransSegs",
} as const;

/** The machine's TCP trouble counters so far (NaN: unknown, e.g. without `nstat`). */
async function tcpTrouble(): Promise<TcpTrouble> {
  let text = "";
  try {
    const out = await new Deno.Command("nstat", {
      args: ["-az", ...Object.values(TCP_COUNTERS)],
      stdout: "piped",
      stderr: "null",
    }).output();
    text = new TextDecoder().decode(out.stdout);
  } catch {
    // No nstat: every figure NaN.
  }
  const read = (name: string) =>
    Number(new RegExp(`^${name}\\s+(\\d+)`, "m").exec(text)?.[1] ?? NaN);
  return {
    listenOverflows: read(TCP_COUNTERS.listenOverflows),
    timeouts: read(TCP_COUNTERS.timeouts),
    retransmitted: read(TCP_COUNTERS.retransmitted),
  };
}

/** This process's CPU time (user + system) so far, in seconds. */
function ownCpuSeconds(): number {
  const fields = Deno.readTextFileSync("/proc/self/stat").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** CPU time every core of the machine has spent busy so far, in seconds (/proc/stat). */
function machineCpuSeconds(): number {
  const [, ...ticks] = Deno.readTextFileSync("/proc/stat").split("\n")[0]!.trim().split(/\s+/);
  const [user, nice, system, , , irq, softirq, steal] = ticks.map(Number);
  return (user! + nice! + system! + irq! + softirq! + steal!) / 100;
}

const MiB = (n: number) => `${(n / 2 ** 20).toFixed(0)} MiB`;

export function formatHostile(r: HostileBenchResult): string {
  const lines = [
    `${r.connections} hostile connections for ${r.seconds} s; honest rounds: ${r.loadedRounds} ` +
    `under attack, ${r.quietRounds} in 3 s without; ${
      r.resume
        ? `the honest client resumes with the ticket sent after its LOGIN (our TLS client): ` +
          `${r.loadedResumed} of the rounds under attack resumed`
        : "the honest client makes a full handshake every round (Deno's TLS client)"
    }`,
    `${"worst latency".padEnd(20)} ${"no attack".padStart(10)} ${"attack".padStart(10)} ${
      "ratio".padStart(7)
    }  client waits for a core   server side (of it, waiting for a core)`,
  ];
  for (const step of HONEST_STEPS) {
    const quiet = r.quietWorstMs[step] ?? 0;
    const loaded = r.loadedWorstMs[step] ?? 0;
    const server = r.serverWorst[step];
    lines.push(
      `${step.padEnd(20)} ${quiet.toFixed(1).padStart(7)} ms ${loaded.toFixed(1).padStart(7)} ms ${
        (loaded / Math.max(quiet, 0.001)).toFixed(1).padStart(6)
      }x ${(r.loadedClientWaitMs[step] ?? 0).toFixed(1).padStart(12)} ms ${
        server === undefined
          ? "-"
          : `${server.ms.toFixed(1).padStart(7)} ms (${server.waitMs.toFixed(1)} ms)${
            step === HONEST_STEPS[0] || step === HONEST_STEPS[1]
              ? `, at the gate ${server.gateMs.toFixed(1)} ms`
              : ""
          }; p90 ${server.p90Ms.toFixed(1)} ms${
            step === HONEST_STEPS[0] || step === HONEST_STEPS[1]
              ? `, at the gate ${server.p90GateMs.toFixed(1)} ms`
              : ""
          }`
      }`,
    );
  }
  lines.push(
    "  (under attack: the client's wait for a core in its worst step; the server side's worst: " +
      "connect+greeting is the handshake from accept to its end; a command runs " +
      "from the read that completed it (its wait at the handshake gate before login included) " +
      "to its reply handed to the socket)",
  );
  if (r.connectSplit !== null) {
    const fmt = (x: Record<string, number>) =>
      Object.entries(x).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(", ");
    lines.push(
      `connect+greeting by timestamps (client and server lined up by port, ` +
        `${r.connectSplit.matched} rounds), ms:`,
      `  the worst: ${fmt(r.connectSplit.worst)}`,
      `  the longest wait for the accept: ${fmt(r.connectSplit.worstAccept)}`,
      `  each part's worst: ${fmt(r.connectSplit.partWorst)}`,
      `  each part's p90: ${fmt(r.connectSplit.partP90)}`,
    );
  }
  lines.push(
    `server RSS: idle ${MiB(r.idleRss)}, peak without attack ${MiB(r.quietPeakRss)}, ` +
      `peak under attack ${MiB(r.loadedPeakRss)}`,
    `server CPU during the attack: ${r.serverCpuSeconds.toFixed(1)} s in ${r.seconds} s ` +
      `(load average ${Deno.loadavg().map((x) => x.toFixed(1)).join(" ")})`,
    `attackers' Worker thread: ${
      r.attackers.nice > 0
        ? `nice ${r.attackers.nice} (thread ${r.attackers.tid}, as its /proc stat shows)`
        : "normal priority (--attackers-nice 0)"
    }, ${r.attackers.cpuSeconds.toFixed(1)} s of CPU during the attack`,
    `CPU of the bench process meanwhile (attackers' Worker, honest client): ` +
      `${r.benchCpuSeconds.toFixed(1)} s; the machine's cores busy: ` +
      `${r.machineCpuSeconds.toFixed(1)} of ${
        (navigator.hardwareConcurrency * r.seconds).toFixed(0)
      } s, ` +
      `other processes ` +
      `${(r.machineCpuSeconds - r.serverCpuSeconds - r.benchCpuSeconds).toFixed(1)} s`,
    `server event loop, worst stall under attack: ${r.stall.worstMs.toFixed(0)} ms ` +
      `(main thread on a core ${r.stall.cpuMs.toFixed(0)} ms, waiting for a core ` +
      `${r.stall.waitMs.toFixed(0)} ms); an idle probe process meanwhile: ` +
      `${r.stall.idleMs.toFixed(0)} ms`,
    `server main thread, longest busy stretch (CPU time within one 5 ms tick): ` +
      `${r.stall.busyMs.toFixed(0)} ms`,
    `TCP meanwhile (whole machine): ${r.tcp.listenOverflows} connections dropped at a full ` +
      `listen queue (a SYN resent after 1 s or more each), ${r.tcp.timeouts} retransmission ` +
      `timeouts (200 ms or more each), ${r.tcp.retransmitted} segments resent`,
    `leftover server connections afterwards: ${r.leftoverConnections}`,
    `honest failures: ${r.honestFailures.length === 0 ? "none" : r.honestFailures.join("; ")}`,
    "hostile connections opened (ended by the server):",
    ...HOSTILE_KINDS.map((k) =>
      `  ${k.padEnd(26)} ${String(r.hostile.opened[k]).padStart(6)} (${r.hostile.endedByServer[k]})`
    ),
    `  connection failures: ${r.hostile.connectFailures}`,
  );
  return lines.join("\n");
}

/** What one kind of attacker costs, alone against a server of its own. */
export interface KindCost {
  readonly kind: HostileKind;
  /** Connections it opened (reconnections included). */
  readonly opened: number;
  /** Server CPU per second of attack, and per connection, in ms. */
  readonly serverMsPerSecond: number;
  readonly serverMsPerConnection: number;
  /** CPU of the attacker's process per second of attack, in ms. */
  readonly attackerMsPerSecond: number;
}

/**
 * Each kind alone: `connections` attackers of one kind for `seconds` against a fresh server
 * (one accept loop), measuring the server's CPU time and the attackers'. The attackers open a
 * new connection whenever the server ends one, so a kind the server ends faster comes back
 * more often: compare CPU per second for the load, CPU per connection for the server's cost.
 */
export async function benchHostileKinds(
  connections = 143,
  seconds = 6,
): Promise<KindCost[]> {
  const out: KindCost[] = [];
  for (const kind of HOSTILE_KINDS) {
    const server = await startPosternProcess({
      users: [{ name: "honest", password: "honest-password" }],
      handshakeTimeout: "4s",
      limitsYaml: "  max_connections_per_address: 5000",
    });
    try {
      const attack = await prepareAttackersInWorker(server, connections, [kind]);
      const serverBefore = server.cpuSeconds();
      const benchBefore = ownCpuSeconds();
      const result = await attack.run(Date.now() + seconds * 1000);
      const serverMs = (server.cpuSeconds() - serverBefore) * 1000;
      out.push({
        kind,
        opened: result.opened[kind],
        serverMsPerSecond: serverMs / seconds,
        serverMsPerConnection: serverMs / Math.max(1, result.opened[kind]),
        attackerMsPerSecond: (ownCpuSeconds() - benchBefore) * 1000 / seconds,
      });
    } finally {
      await server.stop();
    }
  }
  return out;
}

export function formatKindCosts(costs: readonly KindCost[]): string {
  return [
    `${"attack, alone".padEnd(26)} ${"opened".padStart(7)} ${"server ms/s".padStart(12)} ${
      "server ms/conn".padStart(15)
    } ${"attacker ms/s".padStart(14)}`,
    ...costs.map((c) =>
      `${c.kind.padEnd(26)} ${String(c.opened).padStart(7)} ${
        c.serverMsPerSecond.toFixed(0).padStart(12)
      } ${c.serverMsPerConnection.toFixed(2).padStart(15)} ${
        c.attackerMsPerSecond.toFixed(0).padStart(14)
      }`
    ),
  ].join("\n");
}

if (import.meta.main && Deno.args.includes("--per-kind")) {
  // deno run -A bench/hostile_bench.ts --per-kind: what each kind of attacker costs, alone.
  console.log(formatKindCosts(await benchHostileKinds()));
} else if (import.meta.main) {
  const quick = Deno.args.includes("--quick");
  const size = quick ? { connections: 300, seconds: 8 } : { connections: 1000, seconds: 20 };
  console.log(
    formatHostile(
      await benchHostile({
        ...size,
        attackersNice: attackersNiceArg(),
        resume: !Deno.args.includes("--no-resume"),
      }),
    ),
  );
}

/** `--attackers-nice N` from the command line; `ATTACKERS_NICE` without it. */
export function attackersNiceArg(args: readonly string[] = Deno.args): number {
  const at = args.indexOf("--attackers-nice");
  if (at < 0) return ATTACKERS_NICE;
  const nice = Number(args[at + 1]);
  if (!Number.isInteger(nice) || nice < 0 || nice > 19) {
    throw new Error(`--attackers-nice: an integer from 0 to 19, not ${args[at + 1]}`);
  }
  return nice;
}
