/**
 * The mail store underneath: the same IMAP workload against Postern on SQLite (the default)
 * and on PostgreSQL, each a `postern serve` subprocess with its `store:` section. APPEND
 * (pipelined, durable), SELECT, `FETCH 1:* (UID FLAGS)` and UID SEARCH on an N-message
 * mailbox, measured by `measureServer` of imap_bench.ts; SQLite is the reference.
 *
 * PostgreSQL is a throwaway cluster (Debian `postgresql`) with `fsync=on`, so both stores
 * acknowledge an APPEND only once it is on disk. Figures are printed, never asserted.
 *
 * Usage: `deno run -A bench/postgres_bench.ts [--messages N]` (default 10,000).
 */
import { join } from "node:path";
import { ensureDevPki } from "../server/cli/dev_pki.ts";
import { measureServer, type ServerFigures } from "./imap_bench.ts";
import { freePort, RawImap } from "../tests/_support/imap_clients.ts";
import { postgresAvailable, startPostgres } from "../tests/_support/postgres.ts";
import {
  killServer,
  posternCommand,
  type ServerProcess,
  spawnServer,
} from "../tests/_support/server_process.ts";

const USER = "bench";
const PASSWORD = "bench-password";

type Figures = Omit<
  ServerFigures,
  "idleRssPerConnection" | "idlePssPerConnection" | "rssMethod" | "diskBytes"
>;

/** SQLite and PostgreSQL figures for the same workload, or null without PostgreSQL. */
export interface PostgresBenchResult {
  readonly messages: number;
  readonly sqlite: Figures;
  readonly postgres: Figures;
}

/** Waits until a `postern serve` subprocess answers an IMAP greeting over TLS. */
export async function waitReady(port: number, caPem: string, server: ServerProcess): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    try {
      const imap = await RawImap.tls(port, caPem);
      try {
        if ((await imap.greeting(3000)).startsWith("* OK")) return;
      } finally {
        await imap.close();
      }
    } catch {
      // Not listening yet.
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`Postern did not start:\n${server.log()}`);
}

/** Runs `measureServer` against a Postern whose config ends with `storeYaml`. */
async function measureStore(
  dir: string,
  name: string,
  storeYaml: string,
  messages: number,
  log: (s: string) => void,
): Promise<Figures> {
  const pki = await ensureDevPki(join(dir, "certs"));
  const caPem = await Deno.readTextFile(pki.caCertificate);
  const port = freePort();
  const config = join(dir, `${name}.yaml`);
  await Deno.writeTextFile(
    config,
    [
      `data_dir: ${join(dir, `data-${name}`)}`,
      "listen:",
      `  - address: 127.0.0.1:${port}`,
      "    tls: implicit",
      "tls:",
      `  certificate: ${pki.serverCertificate}`,
      `  private_key: ${pki.serverKey}`,
      "  client_auth: none",
      "log:",
      "  level: warning",
      storeYaml,
      "",
    ].join("\n"),
  );
  await posternCommand(["user", "add", USER, "--config", config], `${PASSWORD}\n`);
  const server = spawnServer(config);
  try {
    await waitReady(port, caPem, server);
    log(`${name}: ${messages} messages`);
    return await measureServer(
      { port, caPem },
      messages,
      log,
    );
  } finally {
    killServer(server, "SIGTERM");
    const timer = setTimeout(() => killServer(server, "SIGKILL"), 10_000);
    await server.exited;
    clearTimeout(timer);
  }
}

/** Measures both stores; null when PostgreSQL is not installed. */
export async function benchPostgres(
  options: { readonly messages: number; readonly log?: (s: string) => void },
): Promise<PostgresBenchResult | null> {
  if (!postgresAvailable()) return null;
  const log = options.log ?? (() => {});
  const dir = await Deno.makeTempDir({ prefix: "postern-pg-bench-" });
  const pg = await startPostgres({ fsync: true });
  try {
    const sqlite = await measureStore(dir, "sqlite", "", options.messages, log);
    const url = pg.urlWithoutPassword;
    const postgres = await measureStore(
      dir,
      "postgres",
      `store:\n  kind: postgres\n  url: ${url}\n  password_file: ${pg.passwordFile}`,
      options.messages,
      log,
    );
    return { messages: options.messages, sqlite, postgres };
  } finally {
    await pg.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** The figures as a table, PostgreSQL against SQLite. */
export function formatPostgres(r: PostgresBenchResult | null): string {
  if (r === null) return "PostgreSQL is not installed (Debian package postgresql): skipped";
  const rows: [string, (f: Figures) => number, string][] = [
    ["APPEND (pipelined, durable)", (f) => f.appendPerSecond, "msg/s"],
    ["SELECT INBOX", (f) => f.selectMs, "ms"],
    ["FETCH 1:* (UID FLAGS)", (f) => f.fetchMs, "ms"],
    ["UID SEARCH ALL", (f) => f.search.allMs, "ms"],
    ["UID SEARCH UNSEEN", (f) => f.search.unseenMs, "ms"],
    ['UID SEARCH SUBJECT "needle"', (f) => f.search.subjectSecondMs, "ms"],
    ['UID SEARCH BODY "needle"', (f) => f.search.bodySecondMs, "ms"],
  ];
  const out = [
    `${r.messages} messages in INBOX; ratio = PostgreSQL / SQLite`,
    `${"".padEnd(32)} ${"PostgreSQL".padStart(16)} ${"SQLite".padStart(16)} ${"ratio".padStart(7)}`,
  ];
  for (const [name, pick, unit] of rows) {
    const p = pick(r.postgres);
    const s = pick(r.sqlite);
    out.push(
      `${name.padEnd(32)} ${p.toFixed(1).padStart(10)} ${unit.padEnd(5)} ${
        s.toFixed(1).padStart(10)
      } ${unit.padEnd(5)} ${(p / s).toFixed(2).padStart(6)}x`,
    );
  }
  return out.join("\n");
}

if (import.meta.main) {
  const i = Deno.args.indexOf("--messages");
  const messages = i >= 0 ? Number(Deno.args[i + 1]) : 10_000;
  console.log(formatPostgres(await benchPostgres({ messages, log: (s) => console.log(s) })));
}
