/**
 * What the young generation copies per TLS 1.3 full handshake on a real server: `postern serve`
 * (1 Worker, `--trace-gc-nvp`) under `openssl s_time -new` clients, and per scavenge the bytes
 * that survived and were promoted, the handshakes between two scavenges and the scavenge pause
 * per handshake. A connection in flight survives every scavenge meanwhile, so its JavaScript
 * footprint is what each scavenge copies; unlike CPU time, these byte counts barely move with
 * the load of other jobs on a shared machine. With `--base DIR` the other checkout's server runs
 * in turn (base, new, base, new, ...). Figures are printed, never asserted.
 *
 * Usage: `deno run -A bench/handshake_gc_bench.ts [--base DIR] [--runs N] [--seconds S]
 * [--clients C]`.
 */
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { handshakesOpenssl } from "./tls_bench.ts";

/** The nvp fields read here (`--trace-gc-nvp` prints one JSON object per collection). */
interface GcLine {
  readonly gc: string;
  readonly pause: number;
  readonly new_space_survived: number;
  readonly promoted: number;
}

interface GcFigures {
  readonly handshakes: number;
  readonly scavenges: number;
  readonly survivedKb: number;
  readonly promotedKb: number;
  readonly pauseUsPerHandshake: number;
  readonly fullGcs: number;
}

async function measure(dir: string, seconds: number, clients: number): Promise<GcFigures> {
  const { startPosternProcess } = await import(
    pathToFileURL(join(dir, "tests/_support/postern.ts")).href
  );
  const log = await Deno.makeTempFile({ prefix: "postern-gc-" });
  Deno.env.set("POSTERN_V8_FLAGS", "--trace-gc-nvp");
  Deno.env.set("POSTERN_STDOUT_FILE", log);
  const spawned = performance.now();
  const server = await startPosternProcess({ clientAuth: "none", workers: 1 });
  Deno.env.delete("POSTERN_V8_FLAGS");
  Deno.env.delete("POSTERN_STDOUT_FILE");
  try {
    const ca = join(server.dir, "gc-ca.pem");
    await Deno.writeTextFile(ca, server.caPem);
    await handshakesOpenssl(server.implicitPort, ca, 1);
    const from = performance.now() - spawned;
    const rates = await Promise.all(
      Array.from({ length: clients }, () => handshakesOpenssl(server.implicitPort, ca, seconds)),
    );
    const to = performance.now() - spawned;
    const handshakes = rates.reduce((a, b) => a + b, 0) * seconds;
    // The server's stdout reaches the file only when the process exits (block-buffered pipe),
    // so the lines are read after the stop and picked by their time stamp (ms since the
    // isolate started, which is a little after the spawn: the window errs towards the run).
    await server.stop();
    const lines: GcLine[] = [
      ...(await Deno.readTextFile(log)).matchAll(/ (\d+) ms: GC: (\{.*\})/g),
    ]
      .filter((m) => Number(m[1]) >= from && Number(m[1]) <= to)
      .map((m) => JSON.parse(m[2]!));
    const scavenges = lines.filter((l) => l.gc === "s");
    const mean = (f: (l: GcLine) => number) =>
      scavenges.reduce((a, l) => a + f(l), 0) / Math.max(1, scavenges.length);
    return {
      handshakes,
      scavenges: scavenges.length,
      survivedKb: mean((l) => l.new_space_survived) / 1024,
      promotedKb: mean((l) => l.promoted) / 1024,
      pauseUsPerHandshake: scavenges.reduce((a, l) => a + l.pause, 0) * 1000 / handshakes,
      fullGcs: lines.length - scavenges.length,
    };
  } finally {
    await server.stop();
    await Deno.remove(log).catch(() => {});
  }
}

function line(name: string, f: GcFigures): string {
  return `${name.padEnd(5)} ${f.handshakes.toFixed(0).padStart(6)} handshakes, ${
    String(f.scavenges).padStart(3)
  } scavenges (${(f.handshakes / Math.max(1, f.scavenges)).toFixed(0)} hs each), survived ${
    f.survivedKb.toFixed(0)
  } KB, promoted ${f.promotedKb.toFixed(0)} KB per scavenge, pause ${
    f.pauseUsPerHandshake.toFixed(0)
  } µs/hs, ${f.fullGcs} full GCs`;
}

function flag(name: string): string | undefined {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Deno.args[i + 1] : undefined;
}

if (import.meta.main) {
  const here = resolve(new URL("..", import.meta.url).pathname);
  const base = flag("--base");
  const runs = Number(flag("--runs") ?? 2);
  const seconds = Number(flag("--seconds") ?? 5);
  const clients = Number(flag("--clients") ?? 4);
  console.log(
    `Young-generation survivors per scavenge, openssl s_time -new x${clients}, ${seconds} s per run:`,
  );
  for (let r = 0; r < runs; r++) {
    if (base !== undefined) {
      console.log(line("base", await measure(resolve(base), seconds, clients)));
    }
    console.log(line("new", await measure(here, seconds, clients)));
  }
}
