/**
 * LMTP delivery rate against Dovecot's LMTP on the same machine: deliveries per second with
 * 10 concurrent clients, for 1 KB and 100 KB messages, one recipient each, every message
 * unique. Both servers listen on 127.0.0.1 TCP and commit durably (Postern: SQLite WAL, a 250
 * only after its COMMIT is synced by the group commit; Dovecot: mail_fsync = optimized). The
 * client is `tests/_support/lmtp.ts` in this process; Postern runs as `postern serve` in a
 * child process so that it shares neither the client's event loop nor its heap.
 *
 * With `--large [MB]` it measures instead Postern's event-loop stalls (the timer-drift probe of
 * server/serve/stall_probe.ts, next to the same probe alone in an idle process) while one
 * message of MB megabytes (default 50) is delivered to two recipients.
 *
 * Usage: `deno run -A bench/lmtp_bench.ts [--quick] [--large [MB]]`, or
 * `deno task bench --only lmtp`.
 */
import { join } from "node:path";
import { ensureDevPki } from "../server/cli/dev_pki.ts";
import { LmtpClient, lmtpMessage, type LmtpTarget } from "../tests/_support/lmtp.ts";
import { bulkMessage } from "./bulk_bench.ts";
import {
  formatStall,
  settleProbes,
  type StallFigures,
  stallFigures,
  startStallProbes,
} from "./_stall_probes.ts";
import {
  type DovecotFormat,
  dovecotLmtpAvailable,
  freePort,
  startDovecot,
} from "../tests/_support/dovecot.ts";
import {
  killServer,
  posternCommand,
  type ServerProcess,
  spawnServer,
} from "../tests/_support/server_process.ts";

export interface BenchLmtpOptions {
  /** Seconds each measurement runs (after a one-second warm-up). */
  readonly seconds: number;
  readonly clients: number;
  /** Message sizes in octets. */
  readonly sizes: readonly number[];
  readonly log?: (line: string) => void;
}

/** Deliveries per second of one server, per message size. */
export interface LmtpFigures {
  readonly name: string;
  readonly perSecond: ReadonlyMap<number, number>;
}

export interface LmtpBenchResult {
  readonly postern: LmtpFigures;
  readonly dovecot: readonly LmtpFigures[];
  readonly notes: readonly string[];
}

/** Delivers from `clients` connections for `seconds`; returns deliveries per second. */
async function measure(
  target: LmtpTarget,
  clients: number,
  size: number,
  seconds: number,
  tag: string,
): Promise<number> {
  const connections = await Promise.all(
    Array.from({ length: clients }, () => LmtpClient.open(target)),
  );
  try {
    const run = async (ms: number, phase: string): Promise<number> => {
      const end = performance.now() + ms;
      let count = 0;
      await Promise.all(connections.map(async (client, c) => {
        for (let n = 0; performance.now() < end; n++) {
          const message = lmtpMessage(`${tag}-${phase}-${c}-${n}`, size, "bench@example.org");
          const sent = await client.send("sender@example.org", ["bench@example.org"], message);
          if (sent.data[0]?.code !== 250) {
            throw new Error(`Delivery refused: ${JSON.stringify(sent)}`);
          }
          count++;
        }
      }));
      return count;
    };
    await run(1000, "warm");
    const started = performance.now();
    const count = await run(seconds * 1000, "run");
    return count / ((performance.now() - started) / 1000);
  } finally {
    await Promise.all(connections.map((c) => c.command("QUIT").catch(() => null)));
    await Promise.all(connections.map((c) => c.close()));
  }
}

/** Starts `postern serve` with an LMTP listener on a free loopback port. */
async function startPosternProcess(
  dir: string,
  extra: { users?: readonly string[]; yaml?: string } = {},
): Promise<{ server: ServerProcess; port: number }> {
  const pki = await ensureDevPki(join(dir, "certs"));
  const port = freePort();
  const configPath = join(dir, "config.yaml");
  await Deno.writeTextFile(
    configPath,
    [
      `data_dir: ${join(dir, "data")}`,
      "listen:",
      `  - address: 127.0.0.1:${freePort()}`,
      "    tls: implicit",
      "tls:",
      `  certificate: ${pki.serverCertificate}`,
      `  private_key: ${pki.serverKey}`,
      "  client_auth: none",
      "lmtp:",
      `  listen: [127.0.0.1:${port}]`,
      "  hostname: bench.postern.test",
      "log:",
      "  level: warning",
      extra.yaml ?? "",
    ].join("\n"),
  );
  for (const user of extra.users ?? ["bench"]) {
    await posternCommand([
      "user",
      "add",
      user,
      "--no-password",
      "--address",
      `${user}@example.org`,
      "--config",
      configPath,
    ]);
  }
  const server = spawnServer(configPath);
  for (let i = 0; i < 300; i++) {
    try {
      const probe = await LmtpClient.connect({ hostname: "127.0.0.1", port });
      await probe.close();
      return { server, port };
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  killServer(server, "SIGKILL");
  throw new Error(`Postern did not start:\n${server.log()}`);
}

export async function benchLmtp(options: BenchLmtpOptions): Promise<LmtpBenchResult> {
  const log = options.log ?? (() => {});
  const notes: string[] = [];
  const dir = await Deno.makeTempDir({ prefix: "postern-bench-lmtp-" });
  const postern = new Map<number, number>();
  const dovecot: LmtpFigures[] = [];
  try {
    const { server, port } = await startPosternProcess(dir);
    try {
      for (const size of options.sizes) {
        log(`Postern, ${size} octets`);
        postern.set(
          size,
          await measure(
            { hostname: "127.0.0.1", port },
            options.clients,
            size,
            options.seconds,
            `p${size}`,
          ),
        );
      }
    } finally {
      killServer(server, "SIGTERM");
      await server.exited;
    }
    if (!dovecotLmtpAvailable()) {
      notes.push("Dovecot LMTP not measured: needs root and dovecot-lmtpd (/usr/lib/dovecot/lmtp)");
    } else {
      const pki = await ensureDevPki(join(dir, "certs"));
      for (const format of ["maildir", "mdbox"] as DovecotFormat[]) {
        const running = await startDovecot({
          user: "bench",
          password: "unused",
          certificatePath: pki.serverCertificate,
          keyPath: pki.serverKey,
          maxConnections: options.clients * 2,
          format,
          lmtp: true,
        });
        try {
          const perSecond = new Map<number, number>();
          for (const size of options.sizes) {
            log(`Dovecot ${format}, ${size} octets`);
            perSecond.set(
              size,
              await measure(
                { hostname: "127.0.0.1", port: running.lmtpPort! },
                options.clients,
                size,
                options.seconds,
                `d${format}${size}`,
              ),
            );
          }
          dovecot.push({ name: `Dovecot ${format}`, perSecond });
          if (notes.length === 0) notes.push(...running.settings);
        } finally {
          await running.stop();
        }
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  return { postern: { name: "Postern", perSecond: postern }, dovecot, notes };
}

/** The result as table rows: Postern, each Dovecot format, and the ratio. */
export function formatLmtp(result: LmtpBenchResult, clients: number): string {
  const lines: string[] = [];
  for (const [size, ours] of result.postern.perSecond) {
    const label = `deliveries/s, ${size >= 1024 ? `${Math.round(size / 1024)} KB` : `${size} B`}` +
      `, ${clients} clients`;
    if (result.dovecot.length === 0) {
      lines.push(`${label.padEnd(36)} ${ours.toFixed(1).padStart(9)} msg/s`);
    }
    for (const d of result.dovecot) {
      const ref = d.perSecond.get(size) ?? NaN;
      lines.push(
        `${label.padEnd(36)} ${ours.toFixed(1).padStart(9)} msg/s ${ref.toFixed(1).padStart(9)} ` +
          `msg/s ${(ours / ref).toFixed(2).padStart(6)}x  (${d.name})`,
      );
    }
  }
  lines.push(...result.notes.map((n) => `  ${n}`));
  return lines.join("\n");
}

/**
 * Postern's event-loop stalls while one message of `megabytes` MB is delivered over LMTP to two
 * recipients, from after LHLO to the replies. The message is sent `runs` times (each unique).
 */
export async function benchLargeLmtp(megabytes: number, runs = 1): Promise<StallFigures[]> {
  const dir = await Deno.makeTempDir({ prefix: "postern-bench-lmtp-large-" });
  const probes = await startStallProbes("postern-lmtp-large-");
  const out: StallFigures[] = [];
  try {
    Deno.env.set("POSTERN_STALL_PROBE", probes.stallFile);
    const { server, port } = await startPosternProcess(dir, {
      users: ["one", "two"],
      yaml: "limits:\n  max_message_size: 128MiB\n",
    }).finally(() => Deno.env.delete("POSTERN_STALL_PROBE"));
    try {
      const bytes = Math.round(megabytes * 1e6);
      for (let run = 0; run < runs; run++) {
        const message = bulkMessage(bytes);
        message.set(new TextEncoder().encode(`Subject: ${String(run).padStart(4, "0")}`), 43);
        const client = await LmtpClient.open({ hostname: "127.0.0.1", port });
        try {
          await settleProbes();
          const from = Date.now();
          const sent = await client.send(
            "sender@example.org",
            ["one@example.org", "two@example.org"],
            message,
          );
          if (sent.data.length !== 2 || sent.data.some((r) => r.code !== 250)) {
            throw new Error(`Delivery refused: ${JSON.stringify(sent)}`);
          }
          await settleProbes();
          out.push(stallFigures(probes.stallFile, probes.idleFile, from, Date.now()));
        } finally {
          await client.close();
        }
      }
    } finally {
      killServer(server, "SIGTERM");
      await server.exited;
    }
  } finally {
    await probes.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  return out;
}

if (import.meta.main && Deno.args.includes("--large")) {
  const i = Deno.args.indexOf("--large");
  const megabytes = Number(Deno.args[i + 1] ?? "") || 50;
  for (const figures of await benchLargeLmtp(megabytes, 1)) {
    console.log(
      `Postern during a ${megabytes} MB LMTP delivery to 2 recipients: ${formatStall(figures)}`,
    );
  }
} else if (import.meta.main) {
  const quick = Deno.args.includes("--quick");
  const options = { seconds: quick ? 3 : 10, clients: 10, sizes: [1024, 100 * 1024] };
  const result = await benchLmtp({ ...options, log: (l) => console.error(l) });
  console.log(formatLmtp(result, options.clients));
}
