/**
 * The stall probes the benches read: a folder for Postern's own probe file (set through
 * `POSTERN_STALL_PROBE` when it starts) and a probe in a process of its own that does nothing
 * else, whose stalls are the machine's noise to compare against.
 */
import { join } from "node:path";

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
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
