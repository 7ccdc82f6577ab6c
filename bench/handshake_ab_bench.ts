/**
 * Paired A/B of TLS 1.3 full handshakes between this checkout and another one (`--base DIR`,
 * e.g. a `git worktree add --detach DIR <commit>`), for a machine shared with other jobs,
 * where two benches run one after the other differ by more than most changes do (load swings
 * of 2-3x within a minute). Both variants run at the same time and take turns in short rounds,
 * and the figure is the median of each round's new/base ratio. Figures are printed, never
 * asserted.
 *
 * - `--mode engine` (default): the server engine in memory (`acceptTls`, the P-256 development
 *   certificate, tickets on, ALPN imap) answering our client engine; process CPU per handshake
 *   (`getrusage`), rounds of 10 handshakes, in total and by phase. The checkout loaded second
 *   tends to read a few per cent faster even when both are the same code (0.94-0.96 measured
 *   with identical checkouts): for a small change, run it both ways round (`--base` each
 *   checkout from the other) and take the geometric mean of new/base and 1/(the other ratio).
 * - `--mode sockets`: `postern serve` of each checkout (workers as `--workers`), both started,
 *   and bursts of 1 s of C `openssl s_time -new` clients against each in turn; handshakes per
 *   second, server process CPU and main-thread CPU per handshake.
 *
 * Usage: `deno run -A bench/handshake_ab_bench.ts --base DIR [--mode engine|sockets]
 * [--rounds N] [--clients C] [--workers W]`.
 */
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { handshakesOpenssl } from "./tls_bench.ts";
import { timeHandshake } from "./handshake_cpu_bench.ts";

/** One checkout's modules, loaded from its own files. */
async function load(dir: string, path: string): Promise<Module> {
  return await import(pathToFileURL(join(dir, path)).href);
}

function median(values: readonly number[]): number {
  return [...values].sort((a, b) => a - b)[values.length >> 1]!;
}

function quantile(values: readonly number[], q: number): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length * q)]!;
}

/** `name: base median, new median, paired ratio (interquartile range)`. */
function pairedLine(name: string, base: readonly number[], next: readonly number[]): string {
  const ratios = next.map((v, i) => v / base[i]!);
  return `${name.padEnd(31)} base ${median(base).toFixed(0).padStart(6)}  new ${
    median(next).toFixed(0).padStart(6)
  }  paired new/base ${median(ratios).toFixed(3)} (IQR ${quantile(ratios, 0.25).toFixed(3)}..${
    quantile(ratios, 0.75).toFixed(3)
  })`;
}

// deno-lint-ignore no-explicit-any
type Module = any;

async function engineVariant(dir: string, pki: { serverCertificate: string; serverKey: string }) {
  const tls: Module = await load(dir, "protocol/tls/mod.ts");
  const crypto: Module = await load(dir, "protocol/crypto/mod.ts");
  const config: Module = await load(dir, "server/connection/tls_config.ts");
  return {
    accept: tls.acceptTls,
    options: config.buildServerConfig({
      certificatePem: await Deno.readTextFile(pki.serverCertificate),
      privateKeyPem: await Deno.readTextFile(pki.serverKey),
      ticketKeys: new tls.TicketKeys({ provider: crypto.defaultProvider }),
    }),
  };
}

async function engineAb(base: string, rounds: number): Promise<string> {
  const here = resolve(new URL("..", import.meta.url).pathname);
  const { ensureDevPki } = await import("../server/cli/dev_pki.ts");
  const { defaultProvider } = await import("../protocol/crypto/mod.ts");
  const dir = await Deno.makeTempDir({ prefix: "postern-hsab-" });
  try {
    const pki = await ensureDevPki(dir);
    const variants = [await engineVariant(base, pki), await engineVariant(here, pki)];
    const serverKey = defaultProvider.publicKeyOf(variants[1]!.options.privateKey);
    const round = (v: (typeof variants)[number], n: number): number[] => {
      const phases = [0, 0, 0];
      for (let i = 0; i < n; i++) timeHandshake(() => v.accept(v.options), serverKey, phases);
      return phases.map((p) => p / n);
    };
    for (const v of variants) round(v, 100);
    const results: [number[][], number[][]] = [[], []];
    for (let r = 0; r < rounds; r++) {
      for (const i of r % 2 ? [1, 0] : [0, 1]) results[i]!.push(round(variants[i]!, 10));
    }
    const column = (i: 0 | 1, f: (p: number[]) => number) => results[i].map(f);
    const line = (name: string, f: (p: number[]) => number) =>
      pairedLine(name, column(0, f), column(1, f));
    return [
      `Server engine CPU per TLS 1.3 handshake in memory, µs (${rounds} paired rounds of 10):`,
      line("  process CPU", (p) => p[0]! + p[1]! + p[2]!),
      line("    ClientHello to flight", (p) => p[0]!),
      line("    Finished to greeting", (p) => p[1]!),
      line("    close", (p) => p[2]!),
    ].join("\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** CPU µs of a process (`stat`, clock ticks) or of its main thread (`schedstat`, ns). */
function processCpuUs(pid: number): number {
  const f = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1]!.split(" ");
  return (Number(f[11]) + Number(f[12])) * 1e4;
}

function mainThreadCpuUs(pid: number): number {
  return Number(Deno.readTextFileSync(`/proc/${pid}/task/${pid}/schedstat`).split(" ")[0]) / 1e3;
}

async function socketsAb(
  base: string,
  rounds: number,
  clients: number,
  workers: number,
): Promise<string> {
  const here = resolve(new URL("..", import.meta.url).pathname);
  const starts = [
    (await load(base, "tests/_support/postern.ts")).startPosternProcess,
    (await load(here, "tests/_support/postern.ts")).startPosternProcess,
  ];
  const servers: Module[] = [];
  try {
    for (const start of starts) servers.push(await start({ clientAuth: "none", workers }));
    const cas: string[] = [];
    for (const s of servers) {
      const ca = join(s.dir, "ab-ca.pem");
      await Deno.writeTextFile(ca, s.caPem);
      cas.push(ca);
    }
    const burst = async (i: number, seconds: number) => {
      const rates = await Promise.all(
        Array.from(
          { length: clients },
          () => handshakesOpenssl(servers[i].implicitPort, cas[i]!, seconds),
        ),
      );
      return rates.reduce((a, b) => a + b, 0);
    };
    for (let i = 0; i < servers.length; i++) await burst(i, 1);
    const rate: [number[], number[]] = [[], []];
    const proc: [number[], number[]] = [[], []];
    const main: [number[], number[]] = [[], []];
    for (let r = 0; r < rounds; r++) {
      for (const i of r % 2 ? [1, 0] : [0, 1]) {
        const pid = servers[i].pid;
        const p0 = processCpuUs(pid);
        const m0 = workers === 1 ? mainThreadCpuUs(pid) : 0;
        const started = performance.now();
        const hs = await burst(i, 1);
        const count = hs * (performance.now() - started) / 1000;
        rate[i]!.push(hs);
        proc[i]!.push((processCpuUs(pid) - p0) / count);
        if (workers === 1) main[i]!.push((mainThreadCpuUs(pid) - m0) / count);
      }
    }
    return [
      `openssl s_time -new x${clients} against both servers in turn (${rounds} paired rounds of 1 s, ` +
      `${workers} worker${workers === 1 ? "" : "s"}):`,
      pairedLine("  handshakes/s", ...rate),
      pairedLine("  server CPU µs per handshake", ...proc),
      ...(workers === 1 ? [pairedLine("  main thread µs per handshake", ...main)] : []),
    ].join("\n");
  } finally {
    for (const s of servers) await s.stop();
  }
}

function flag(name: string): string | undefined {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Deno.args[i + 1] : undefined;
}

if (import.meta.main) {
  const base = flag("--base");
  if (base === undefined) {
    console.error(
      "usage: deno run -A bench/handshake_ab_bench.ts --base DIR [--mode engine|sockets]",
    );
    Deno.exit(2);
  }
  const dir = resolve(base);
  const mode = flag("--mode") ?? "engine";
  console.log(
    mode === "sockets"
      ? await socketsAb(
        dir,
        Number(flag("--rounds") ?? 16),
        Number(flag("--clients") ?? 4),
        Number(flag("--workers") ?? 1),
      )
      : await engineAb(dir, Number(flag("--rounds") ?? 150)),
  );
}
