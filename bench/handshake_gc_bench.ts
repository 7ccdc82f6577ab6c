/**
 * What the young generation copies per TLS 1.3 full handshake on a real server: `postern serve`
 * (1 Worker, `--trace-gc-nvp`) under `openssl s_time -new` clients, and per scavenge the bytes
 * that survived and were promoted, the handshakes between two scavenges and the scavenge pause
 * per handshake. A connection in flight survives every scavenge meanwhile, so its JavaScript
 * footprint is what each scavenge copies; unlike CPU time, these byte counts barely move with
 * the load of other jobs on a shared machine. With `--base DIR` the other checkout's server runs
 * in turn (base, new, base, new, ...). Figures are printed, never asserted.
 *
 * With `--plain` the clients churn plaintext connections on the STARTTLS port instead (connect,
 * read the greeting, close), and a bare `Deno.listen` server that writes a greeting and closes
 * runs the same churn first as the reference: what Deno itself leaves to the scavenger. A
 * connection lives about a millisecond and a scavenge comes every few hundred, so nearly every
 * byte a scavenge copies or promotes belongs to connections already gone.
 *
 * Usage: `deno run -A bench/handshake_gc_bench.ts [--base DIR] [--runs N] [--seconds S]
 * [--clients C] [--plain]`.
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
  /** Handshakes, or with `--plain` connections. */
  readonly handshakes: number;
  readonly scavenges: number;
  readonly survivedKb: number;
  readonly promotedKb: number;
  readonly pauseUsPerHandshake: number;
  /** The longest scavenge pause, ms. */
  readonly maxPauseMs: number;
  readonly fullGcs: number;
}

/** Plaintext churn: `clients` loops of connect, read the greeting, close; returns the count. */
async function churnPlain(port: number, seconds: number, clients: number): Promise<number> {
  const end = performance.now() + seconds * 1000;
  let count = 0;
  await Promise.all(Array.from({ length: clients }, async () => {
    const buffer = new Uint8Array(4096);
    while (performance.now() < end) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      try {
        await conn.read(buffer);
      } finally {
        conn.close();
      }
      count++;
    }
  }));
  return count;
}

/** The `--plain` reference: a bare Deno server that greets each connection and closes it. */
const BARE_SERVER = `
const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
console.log("port " + listener.addr.port);
const greeting = new TextEncoder().encode("* OK ready\\r\\n");
for await (const conn of listener) {
  conn.write(greeting).catch(() => {}).finally(() => conn.close());
}
`;

/** Parses the `--trace-gc-nvp` lines stamped between `from` and `to` (ms since start). */
function figures(text: string, from: number, to: number, count: number): GcFigures {
  const lines: GcLine[] = [...text.matchAll(/ (\d+) ms: GC: (\{.*\})/g)]
    .filter((m) => Number(m[1]) >= from && Number(m[1]) <= to)
    .map((m) => JSON.parse(m[2]!));
  const scavenges = lines.filter((l) => l.gc === "s");
  const mean = (f: (l: GcLine) => number) =>
    scavenges.reduce((a, l) => a + f(l), 0) / Math.max(1, scavenges.length);
  return {
    handshakes: count,
    scavenges: scavenges.length,
    survivedKb: mean((l) => l.new_space_survived) / 1024,
    promotedKb: mean((l) => l.promoted) / 1024,
    pauseUsPerHandshake: scavenges.reduce((a, l) => a + l.pause, 0) * 1000 / Math.max(1, count),
    maxPauseMs: Math.max(0, ...scavenges.map((l) => l.pause)),
    fullGcs: lines.length - scavenges.length,
  };
}

async function measureBare(seconds: number, clients: number): Promise<GcFigures> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", "--v8-flags=--trace-gc-nvp", "-"],
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const spawned = performance.now();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(BARE_SERVER));
  await writer.close();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!/port \d+/.test(text)) {
    const { value, done } = await reader.read();
    if (done) throw new Error("The bare server exited before listening");
    text += value;
  }
  const port = Number(text.match(/port (\d+)/)![1]);
  const collecting = (async () => {
    while (true) {
      const { value, done } = await reader.read();
      if (done) return;
      text += value;
    }
  })();
  try {
    await churnPlain(port, 1, clients);
    const from = performance.now() - spawned;
    const count = await churnPlain(port, seconds, clients);
    const to = performance.now() - spawned;
    child.kill("SIGTERM");
    await child.status;
    await collecting;
    return figures(text, from, to, count);
  } finally {
    try {
      child.kill("SIGKILL");
    } catch {
      // Exited.
    }
  }
}

async function measure(
  dir: string,
  seconds: number,
  clients: number,
  plain: boolean,
): Promise<GcFigures> {
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
    let from: number;
    let count: number;
    if (plain) {
      await churnPlain(server.starttlsPort, 1, clients);
      from = performance.now() - spawned;
      count = await churnPlain(server.starttlsPort, seconds, clients);
    } else {
      const ca = join(server.dir, "gc-ca.pem");
      await Deno.writeTextFile(ca, server.caPem);
      await handshakesOpenssl(server.implicitPort, ca, 1);
      from = performance.now() - spawned;
      const rates = await Promise.all(
        Array.from({ length: clients }, () => handshakesOpenssl(server.implicitPort, ca, seconds)),
      );
      count = rates.reduce((a, b) => a + b, 0) * seconds;
    }
    const to = performance.now() - spawned;
    // The server's stdout reaches the file only when the process exits (block-buffered pipe),
    // so the lines are read after the stop and picked by their time stamp (ms since the
    // isolate started, which is a little after the spawn: the window errs towards the run).
    await server.stop();
    return figures(await Deno.readTextFile(log), from, to, count);
  } finally {
    await server.stop();
    await Deno.remove(log).catch(() => {});
  }
}

function line(name: string, f: GcFigures, unit: string): string {
  return `${name.padEnd(5)} ${f.handshakes.toFixed(0).padStart(6)} ${unit}s, ${
    String(f.scavenges).padStart(3)
  } scavenges (${(f.handshakes / Math.max(1, f.scavenges)).toFixed(0)} each), survived ${
    f.survivedKb.toFixed(0)
  } KB, promoted ${f.promotedKb.toFixed(0)} KB per scavenge, pause ${
    f.pauseUsPerHandshake.toFixed(0)
  } µs/${unit} (longest ${f.maxPauseMs.toFixed(1)} ms), ${f.fullGcs} full GCs`;
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
  const plain = Deno.args.includes("--plain");
  const unit = plain ? "connection" : "handshake";
  const load = plain
    ? `${clients} clients churning plaintext connections`
    : `openssl s_time -new x${clients}`;
  console.log(`Young-generation survivors per scavenge, ${load}, ${seconds} s per run:`);
  for (let r = 0; r < runs; r++) {
    if (plain) console.log(line("deno", await measureBare(seconds, clients), unit));
    if (base !== undefined) {
      console.log(line("base", await measure(resolve(base), seconds, clients, plain), unit));
    }
    console.log(line("new", await measure(here, seconds, clients, plain), unit));
  }
}
