/**
 * The stall probes the benches read: a folder for Postern's own probe file (set through
 * `POSTERN_STALL_PROBE` when it starts) and a probe in a process of its own that does nothing
 * else, whose stalls are the machine's noise to compare against.
 */
import { join } from "node:path";
import { worstStallDetail } from "../server/serve/stall_probe.ts";

export interface StallProbes {
  /** A temporary folder for probe files, removed by `stop()`. */
  readonly dir: string;
  /** Where Postern's probe writes (pass it as `POSTERN_STALL_PROBE`). */
  readonly stallFile: string;
  /** Where the idle process's probe writes. */
  readonly idleFile: string;
  stop(): Promise<void>;
}

export async function startStallProbes(prefix: string): Promise<StallProbes> {
  const dir = await Deno.makeTempDir({ prefix });
  const idleFile = join(dir, "idle.jsonl");
  const idle = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("../server/serve/stall_probe.ts", import.meta.url).pathname,
      idleFile,
    ],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  return {
    dir,
    stallFile: join(dir, "stalls.jsonl"),
    idleFile,
    async stop() {
      try {
        idle.kill("SIGTERM");
      } catch {
        // It has ended already.
      }
      await idle.status;
      // POSTERN_KEEP_PROBES=DIR keeps the probe files there, e.g. to match `busyAt` to GC times.
      const keep = Deno.env.get("POSTERN_KEEP_PROBES");
      if (keep) await Deno.rename(dir, keep).catch(() => {});
      else await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/** How the server's worst stall of a window was spent, and the idle probe's worst meanwhile. */
export interface StallFigures {
  /** The worst timer lateness, ms. */
  readonly worstMs: number;
  /** Of it, the thread's time on a core and waiting for one (NaN off Linux). */
  readonly cpuMs: number;
  readonly waitMs: number;
  /** The most CPU time the thread spent within any one probe tick: the figure to cut. */
  readonly busyMs: number;
  /**
   * The worst lateness less its tick's wait for a core: how late the server's own work made the
   * probe's timer (the stall figure to hold under 10 ms).
   */
  readonly ownMs: number;
  /** The idle probe process's worst stall in the same window: the machine's noise. */
  readonly idleMs: number;
}

/** The stall figures of the window `fromMs`..`toMs` (epoch ms); NaN when a file is missing. */
export function stallFigures(
  stallFile: string,
  idleFile: string,
  fromMs: number,
  toMs: number,
): StallFigures {
  return {
    ...worstStallDetail(stallFile, fromMs, toMs),
    idleMs: worstStallDetail(idleFile, fromMs, toMs).worstMs,
  };
}

/**
 * One line: "worst stall W ms (on-CPU C, waiting for a core Q), own stall O ms, longest
 * on-CPU tick B ms ...".
 */
export function formatStall(s: StallFigures): string {
  const ms = (x: number) => (Number.isNaN(x) ? "-" : `${x.toFixed(1)} ms`);
  return `worst stall ${ms(s.worstMs)} (on-CPU ${ms(s.cpuMs)}, waiting for a core ${
    ms(s.waitMs)
  }), own stall ${ms(s.ownMs)}, longest on-CPU tick ${ms(s.busyMs)}; idle probe ${ms(s.idleMs)}`;
}

/** The probes report every 500 ms: wait for the window's last report before reading it. */
export function settleProbes(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 700));
}
