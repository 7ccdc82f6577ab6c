/**
 * The multi-client state checker (tests/_support/state_checker.ts) as a benchmark entry: N
 * clients (default 20) share one INBOX for S seconds (default 20) and run the random command
 * mix, each checking every announcement against its model of the mailbox. Reported per server:
 * commands run, commands per second, untagged responses checked, NO answers and state errors
 * (with the first few). Servers: Postern over implicit TLS with its SQLite store (in this
 * process, startPostern), Postern's in-memory store through in-process sessions (no sockets),
 * and Dovecot over implicit TLS (tests/_support/dovecot.ts) as the reference. Nothing is
 * asserted.
 *
 * Usage: `deno run -A bench/imap_state_bench.ts [--clients N] [--seconds S] [--seed K]`.
 */
import { MemoryMailStore } from "../mailstore/memory/mod.ts";
import { ensureDevPki } from "../server/cli/dev_pki.ts";
import { dovecotAvailable, startDovecot } from "../tests/_support/dovecot.ts";
import { RawImap } from "../tests/_support/imap_clients.ts";
import { startPostern } from "../tests/_support/postern.ts";
import {
  type CheckerConnection,
  rawConnection,
  runStateChecker,
  sessionConnection,
  type StateCheckResult,
} from "../tests/_support/state_checker.ts";

/** Options of `benchImapState`. */
export interface BenchImapStateOptions {
  readonly clients: number;
  readonly seconds: number;
  readonly seed?: number;
  readonly skipDovecot?: boolean;
}

/** One server's run. */
export interface StateFigures {
  readonly server: string;
  readonly result: StateCheckResult;
  readonly seconds: number;
  /** Why the run stopped early (a connection closed or silent), when it did. */
  readonly failure?: string;
}

async function tlsConnect(port: number, caPem: string): Promise<CheckerConnection> {
  const imap = await RawImap.tls(port, caPem);
  await imap.greeting();
  const login = await imap.command("LOGIN alice pw");
  if (login.status !== "OK") throw new Error(`Login failed: ${login.tagged}`);
  return rawConnection(imap);
}

async function timedRun(
  server: string,
  connect: () => Promise<CheckerConnection>,
  options: BenchImapStateOptions,
): Promise<StateFigures> {
  const start = performance.now();
  try {
    const result = await runStateChecker(connect, {
      clients: options.clients,
      durationMs: options.seconds * 1000,
      seed: options.seed ?? 1,
    });
    return { server, result, seconds: (performance.now() - start) / 1000 };
  } catch (error) {
    // One server failing (Dovecot has closed a connection in mid-APPEND in about one run in
    // four here) is reported in its row; the other servers' figures still count.
    const seconds = (performance.now() - start) / 1000;
    const failure = `failed after ${seconds.toFixed(1)} s: ${(error as Error).message}`;
    const result = {
      errors: [],
      commands: 0,
      responses: 0,
      no: 0,
      noSamples: [],
      finalMessages: 0,
    };
    return { server, result, seconds, failure };
  }
}

/** Runs the checker against each server in turn. */
export async function benchImapState(options: BenchImapStateOptions): Promise<StateFigures[]> {
  const out: StateFigures[] = [];
  const postern = await startPostern({ users: [{ name: "alice", password: "pw" }] });
  try {
    out.push(
      await timedRun(
        "Postern, SQLite, TLS",
        () => tlsConnect(postern.implicitPort, postern.caPem),
        options,
      ),
    );
    const memory = new MemoryMailStore();
    await memory.createAccount("alice", null);
    out.push(
      await timedRun(
        "Postern, memory, in-process",
        () => sessionConnection(memory, "alice"),
        options,
      ),
    );
    await memory.close();
    if (!options.skipDovecot && dovecotAvailable()) {
      const pki = await ensureDevPki(postern.certsDir);
      const dovecot = await startDovecot({
        user: "alice",
        password: "pw",
        certificatePath: pki.serverCertificate,
        keyPath: pki.serverKey,
        maxConnections: options.clients + 5,
      });
      try {
        out.push(
          await timedRun(
            "Dovecot, maildir, TLS",
            () => tlsConnect(dovecot.port, postern.caPem),
            options,
          ),
        );
      } finally {
        await dovecot.stop();
      }
    }
  } finally {
    await postern.stop();
  }
  return out;
}

/** Formats the figures as a table, with the first state errors of each server. */
export function formatState(figures: readonly StateFigures[]): string {
  const rows = [
    `${"server".padEnd(30)} ${"commands".padStart(9)} ${"cmd/s".padStart(8)} ${
      "responses".padStart(10)
    } ${"NO".padStart(6)} ${"state errors".padStart(13)}`,
  ];
  for (const f of figures) {
    const r = f.result;
    if (f.failure !== undefined) {
      rows.push(`${f.server.padEnd(30)} ${f.failure}`);
      continue;
    }
    rows.push(
      `${f.server.padEnd(30)} ${String(r.commands).padStart(9)} ${
        (r.commands / f.seconds).toFixed(0).padStart(8)
      } ${String(r.responses).padStart(10)} ${String(r.no).padStart(6)} ${
        String(r.errors.length).padStart(13)
      }`,
    );
  }
  for (const f of figures) {
    for (const e of f.result.errors.slice(0, 5)) rows.push(`  ${f.server}: ${e}`);
    for (const n of f.result.noSamples.slice(0, 3)) rows.push(`  ${f.server}, NO: ${n}`);
  }
  return rows.join("\n");
}

function flag(args: readonly string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

if (import.meta.main) {
  const clients = Number(flag(Deno.args, "--clients") ?? 20);
  const seconds = Number(flag(Deno.args, "--seconds") ?? 20);
  const seed = Number(flag(Deno.args, "--seed") ?? 1);
  console.log(`IMAP state checker: ${clients} clients x ${seconds} s on one INBOX, seed ${seed}`);
  console.log(formatState(await benchImapState({ clients, seconds, seed })));
}
