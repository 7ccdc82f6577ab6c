/**
 * The 20-client mixed load of mix_bench.ts (FETCH 50%, APPEND 20%, STORE 20%, EXPUNGE 5%,
 * SELECT 5% on one shared INBOX) against Postern on SQLite (one node, the reference), on
 * PostgreSQL with one node, and on PostgreSQL with two nodes sharing the database (client i on
 * node i mod 2, so that every STORE and EXPUNGE of one node reaches the other's sessions by
 * LISTEN/NOTIFY), and the same two nodes behind HAProxy (round-robin, `send-proxy-v2` to
 * PROXY protocol listeners) when Debian's haproxy is installed. Each node is a `postern serve`
 * subprocess; PostgreSQL is a throwaway cluster per setup with `fsync=on`, so every store
 * acknowledges only what is on disk. Worst event-loop stall is the worst of the nodes' timer-drift probes
 * (server/serve/stall_probe.ts).
 *
 * On a 2-core machine, two nodes and PostgreSQL share the same cores as one node does: the
 * figure shows the cost of the cross-node machinery, not the scaling of separate machines.
 * Figures are printed, never asserted.
 *
 * Usage: `deno run -A bench/nodes_bench.ts [--clients N] [--seconds S]`.
 */
import { join } from "node:path";
import { ensureDevPki } from "../server/cli/dev_pki.ts";
import { worstStall } from "../server/serve/stall_probe.ts";
import { freePort } from "../tests/_support/imap_clients.ts";
import {
  postgresAvailable,
  type RunningPostgres,
  startPostgres,
} from "../tests/_support/postgres.ts";
import {
  killServer,
  posternCommand,
  type ServerProcess,
  spawnServer,
} from "../tests/_support/server_process.ts";
import { haproxyPath, type RunningHaproxy, startHaproxy } from "../tests/_support/haproxy.ts";
import { type MixFigures, runMix } from "./mix_bench.ts";
import { waitReady } from "./postgres_bench.ts";

const USER = "nodes";
const PASSWORD = "nodes-password";

export interface NodesBenchOptions {
  readonly clients: number;
  readonly seconds: number;
  /** Messages in INBOX before the load (default 500, as in the mix). */
  readonly seed?: number;
}

interface Setup {
  readonly name: string;
  readonly nodes: number;
  /** The `store:` section, or "" for SQLite under each node's data folder. */
  readonly storeYaml: (database: string) => Promise<string>;
  /** Clients reach the nodes through HAProxy (round-robin, send-proxy-v2). */
  readonly haproxy?: boolean;
}

/** Starts `nodes` servers on one store, runs the mix across them, stops them. */
async function measure(
  dir: string,
  setup: Setup,
  options: NodesBenchOptions,
): Promise<NodesFigures> {
  const pki = await ensureDevPki(join(dir, "certs"));
  const caPem = await Deno.readTextFile(pki.caCertificate);
  const tag = setup.name.toLowerCase().replace(/[^a-z0-9]+/g, "_");
  const storeYaml = await setup.storeYaml(`mix_${tag}`);
  const limit = options.clients + 5;
  const nodes: {
    port: number;
    metricsPort: number;
    config: string;
    stalls: string;
    server?: ServerProcess;
  }[] = [];
  for (let i = 0; i < setup.nodes; i++) {
    const port = freePort();
    const metricsPort = freePort();
    const config = join(dir, `${tag}-${i}.yaml`);
    await Deno.writeTextFile(
      config,
      [
        `data_dir: ${join(dir, `data-${tag}`)}`,
        "listen:",
        `  - address: 127.0.0.1:${port}`,
        "    tls: implicit",
        ...(setup.haproxy
          ? ["    proxy_protocol: true", "    trusted_proxies: [127.0.0.1/32]"]
          : []),
        "tls:",
        `  certificate: ${pki.serverCertificate}`,
        `  private_key: ${pki.serverKey}`,
        "  client_auth: none",
        "limits:",
        `  max_connections_per_user: ${limit}`,
        `  max_connections_per_address: ${limit}`,
        "log:",
        "  level: warning",
        // Metrics on: every store call is counted (and timed), equally in every setup.
        "metrics:",
        `  listen: 127.0.0.1:${metricsPort}`,
        storeYaml,
        "",
      ].join("\n"),
    );
    nodes.push({ port, metricsPort, config, stalls: join(dir, `${tag}-${i}.stalls.jsonl`) });
  }
  await posternCommand(["user", "add", USER, "--config", nodes[0]!.config], `${PASSWORD}\n`);
  let haproxy: RunningHaproxy | null = null;
  try {
    for (const node of nodes) {
      Deno.env.set("POSTERN_STALL_PROBE", node.stalls);
      node.server = spawnServer(node.config);
      Deno.env.delete("POSTERN_STALL_PROBE");
    }
    if (setup.haproxy) {
      haproxy = await startHaproxy([{ backendPort: nodes.map((n) => n.port) }]);
    }
    const entry = haproxy === null
      ? nodes.map((n) => ({ port: n.port, caPem }))
      : [{ port: haproxy.ports[0]!, caPem }];
    for (const { port } of entry) await waitReady(port, caPem, nodes[0]!.server!);
    let before = new Map<string, number>();
    const startEpoch = Date.now();
    const figures = await runMix(
      setup.name,
      entry,
      {
        clients: options.clients,
        seconds: options.seconds,
        seed: options.seed ?? 500,
        onLoadStart: async () => {
          before = await storeCalls(nodes.map((n) => n.metricsPort));
        },
      },
      null,
      null,
      { user: USER, password: PASSWORD },
    );
    const endEpoch = Date.now();
    const after = await storeCalls(nodes.map((n) => n.metricsPort));
    const stalls = nodes.map((n) => worstStall(n.stalls, startEpoch, endEpoch));
    const calls = new Map<string, number>();
    for (const [operation, n] of after) calls.set(operation, n - (before.get(operation) ?? 0));
    return { ...figures, worstStallMs: Math.max(...stalls), storeCalls: calls };
  } finally {
    await haproxy?.stop();
    for (const node of nodes) {
      if (!node.server) continue;
      killServer(node.server, "SIGTERM");
      const timer = setTimeout(() => killServer(node.server!, "SIGKILL"), 10_000);
      await node.server.exited;
      clearTimeout(timer);
    }
  }
}

/** Store calls by operation, summed over the nodes' /metrics. */
async function storeCalls(ports: readonly number[]): Promise<Map<string, number>> {
  const sum = new Map<string, number>();
  const line = /^postern_store_operation_duration_seconds_count\{operation="([^"]+)"\} (\d+)/gm;
  for (const port of ports) {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    for (const [, operation, n] of text.matchAll(line)) {
      sum.set(operation!, (sum.get(operation!) ?? 0) + Number(n));
    }
  }
  return sum;
}

/** The mix's figures and the store calls the nodes made during it. */
export interface NodesFigures extends MixFigures {
  readonly storeCalls: ReadonlyMap<string, number>;
}

/** SQLite with one node, PostgreSQL with one and with two nodes; null without PostgreSQL. */
export async function benchNodes(options: NodesBenchOptions): Promise<NodesFigures[] | null> {
  if (!postgresAvailable()) return null;
  const dir = await Deno.makeTempDir({ prefix: "postern-nodes-bench-" });
  const clusters: RunningPostgres[] = [];
  try {
    // A fresh cluster per setup: one setup's checkpoint and WAL must not land in the next one's
    // window (with one shared cluster, whichever setup ran second was the slowest).
    const postgres = async (database: string) => {
      const cluster = await startPostgres({ fsync: true });
      clusters.push(cluster);
      const url = (await cluster.createDatabase(database)).replace(`:${cluster.password}@`, "@");
      return [
        "store:",
        "  kind: postgres",
        `  url: ${url}`,
        `  password_file: ${cluster.passwordFile}`,
      ].join("\n");
    };
    const setups: Setup[] = [
      { name: "PostgreSQL, 1 node", nodes: 1, storeYaml: postgres },
      { name: "PostgreSQL, 2 nodes", nodes: 2, storeYaml: postgres },
      ...(haproxyPath() === null ? [] : [
        { name: "2 nodes via HAProxy", nodes: 2, storeYaml: postgres, haproxy: true },
      ]),
      { name: "SQLite, 1 node", nodes: 1, storeYaml: () => Promise.resolve("") },
    ];
    const out: NodesFigures[] = [];
    for (const setup of setups) {
      out.push(await measure(dir, setup, options));
      await clusters.pop()?.stop();
    }
    return out;
  } finally {
    for (const cluster of clusters) await cluster.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** The figures as the mix prints them, with ratios against SQLite on one node. */
export function formatNodes(figures: readonly NodesFigures[] | null): string {
  if (figures === null) return "PostgreSQL is not installed (Debian package postgresql): skipped";
  const rate = (f: MixFigures, op: keyof MixFigures["counts"]) => f.counts[op] / f.seconds;
  const all = (f: MixFigures) => Object.values(f.counts).reduce((a, b) => a + b, 0) / f.seconds;
  const rows = [
    `${"setup".padEnd(20)} ${"FETCH/s".padStart(8)} ${"APPEND/s".padStart(9)} ${
      "STORE/s".padStart(8)
    } ${"all/s".padStart(7)} ${"NO".padStart(4)} ${"worst stall".padStart(12)} ${
      "vs SQLite".padStart(10)
    }`,
  ];
  const reference = figures[figures.length - 1]!;
  for (const f of figures) {
    rows.push(
      `${f.server.padEnd(20)} ${rate(f, "fetch").toFixed(0).padStart(8)} ${
        rate(f, "append").toFixed(0).padStart(9)
      } ${rate(f, "store").toFixed(0).padStart(8)} ${all(f).toFixed(0).padStart(7)} ${
        String(f.no).padStart(4)
      } ${(Number.isNaN(f.worstStallMs) ? "-" : `${f.worstStallMs} ms`).padStart(12)} ${
        `${(all(f) / all(reference)).toFixed(2)}x`.padStart(10)
      }`,
    );
  }
  rows.push("store calls per IMAP command during the load (top 4 operations):");
  for (const f of figures) {
    const commands = Object.values(f.counts).reduce((a, b) => a + b, 0) + f.no;
    const total = [...f.storeCalls.values()].reduce((a, b) => a + b, 0);
    const top = [...f.storeCalls].sort((a, b) => b[1] - a[1]).slice(0, 4)
      .map(([operation, n]) => `${operation} ${(n / commands).toFixed(2)}`).join(", ");
    rows.push(`  ${f.server.padEnd(20)} ${(total / commands).toFixed(2).padStart(6)} (${top})`);
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
  console.log(`Mixed load: ${clients} clients x ${seconds} s on one INBOX, one or two nodes`);
  console.log(formatNodes(await benchNodes({ clients, seconds })));
}
