/**
 * The login storm (issue 12): N clients (20 by default) on one address each loop connect,
 * implicit TLS, LOGIN, SELECT INBOX, LOGOUT for a fixed time, against Postern and against the
 * throwaway Dovecot of tests/_support in the same run. Meanwhile a bystander session, logged in
 * before the storm, sends NOOP every 20 ms; its worst round trip shows whether logins stall
 * other sessions.
 *
 * - Dovecot: long-lived login processes (`service_count = 0`) and a passwd-file with a
 *   SHA512-CRYPT entry, auth cache off (its default).
 * - Postern, warm cache: scrypt ln=15 (the default cost), `auth.cache_ttl: 1h`; after the first
 *   login of the storm every login is a cache hit.
 * - Postern, cold cache: `auth.cache_ttl: 0s`, so every login runs scrypt.
 *
 * Postern runs in a child process (this file with `--serve-postern TTL`), so that the clients
 * do not share its event loop. Every password sent is right, so any NO to LOGIN is a refused
 * right password. Figures are printed, never asserted.
 *
 *     deno run -A bench/login_bench.ts [--seconds 20] [--clients 20] [--no-dovecot] [--ln 15]
 */
import { dovecotAvailable, startDovecot } from "../tests/_support/dovecot.ts";
import { ImapClient, quote } from "./_imap_client.ts";

const USER = "storm";
const PASSWORD = "storm-password-1";
const SELF = new URL(import.meta.url).pathname;

/** The figures of one storm. */
export interface StormResult {
  readonly logins: number;
  readonly seconds: number;
  readonly loginsPerSecond: number;
  /** LOGIN answered NO although the password was right. */
  readonly refused: number;
  /** Of those, how many said AUTHENTICATIONFAILED (claiming the password was wrong). */
  readonly refusedAsWrong: number;
  /** Connections that failed otherwise (TLS, greeting, SELECT, dropped). */
  readonly errors: number;
  readonly bystanderNoops: number;
  readonly bystanderWorstMs: number;
  readonly bystanderMedianMs: number;
  readonly bystanderP99Ms: number;
}

/** Options of `loginStorm`. */
export interface StormOptions {
  readonly port: number;
  readonly caPem: string;
  readonly clients: number;
  readonly seconds: number;
}

/** Runs the storm against a server where USER/PASSWORD is valid. */
export async function loginStorm(options: StormOptions): Promise<StormResult> {
  const target = { port: options.port, caPem: options.caPem };
  const bystander = await ImapClient.login(target, USER, PASSWORD);
  await bystander.ok("SELECT INBOX");
  let logins = 0;
  let refused = 0;
  let refusedAsWrong = 0;
  let errors = 0;
  const noopMs: number[] = [];
  const start = performance.now();
  const end = start + options.seconds * 1000;
  let running = true;
  const noops = (async () => {
    while (running) {
      const t = performance.now();
      const reply = await bystander.command("NOOP", false);
      if (reply.status === "OK") noopMs.push(performance.now() - t);
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  const loop = async () => {
    while (performance.now() < end) {
      let client: ImapClient | null = null;
      try {
        client = await ImapClient.connect(target);
        const login = await client.command(`LOGIN ${quote(USER)} ${quote(PASSWORD)}`, false);
        if (login.status !== "OK") {
          refused++;
          if (login.text.includes("[AUTHENTICATIONFAILED]")) refusedAsWrong++;
          continue;
        }
        logins++;
        await client.ok("SELECT INBOX", false);
        await client.command("LOGOUT", false);
      } catch {
        errors++;
      } finally {
        client?.close();
      }
    }
  };
  await Promise.all(Array.from({ length: options.clients }, loop));
  const seconds = (performance.now() - start) / 1000;
  running = false;
  await noops;
  bystander.close();
  noopMs.sort((a, b) => a - b);
  return {
    logins,
    seconds,
    loginsPerSecond: logins / seconds,
    refused,
    refusedAsWrong,
    errors,
    bystanderNoops: noopMs.length,
    bystanderWorstMs: noopMs[noopMs.length - 1] ?? NaN,
    bystanderMedianMs: noopMs[Math.floor(noopMs.length / 2)] ?? NaN,
    bystanderP99Ms: noopMs[Math.floor(noopMs.length * 0.99)] ?? NaN,
  };
}

/** The three storms of the report. */
export interface LoginBenchResult {
  readonly dovecot: StormResult | null;
  readonly warm: StormResult;
  readonly cold: StormResult;
  readonly clients: number;
  readonly dovecotSettings: readonly string[];
  readonly ln: number;
}

/** Runs the storm against Dovecot, Postern with a warm cache and Postern with no cache. */
export async function benchLogins(options: {
  readonly seconds: number;
  readonly clients: number;
  readonly skipDovecot?: boolean;
  /** scrypt cost exponent of Postern's hashes (default 15, the default cost). */
  readonly ln?: number;
  readonly log?: (line: string) => void;
}): Promise<LoginBenchResult> {
  const log = options.log ?? (() => {});
  const ln = options.ln ?? 15;
  const storm = (port: number, caPem: string) =>
    loginStorm({ port, caPem, clients: options.clients, seconds: options.seconds });
  const startChild = async (cacheTtl: string) => {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        SELF,
        "--serve-postern",
        cacheTtl,
        String(options.clients + 10),
        String(ln),
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    while (!buf.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error("Postern child ended early");
      buf += value;
    }
    const info = JSON.parse(buf.slice(0, buf.indexOf("\n"))) as ChildInfo;
    const stop = async () => {
      await child.stdin.close().catch(() => {});
      await reader.cancel().catch(() => {});
      await child.status;
    };
    return { info, pid: child.pid, stop };
  };
  const posternStorm = async (
    server: Awaited<ReturnType<typeof startChild>>,
    cacheTtl: string,
  ) => {
    try {
      log(`Postern (cache_ttl ${cacheTtl}, pid ${server.pid}): storm of ${options.seconds} s`);
      return await storm(server.info.port, server.info.caPem);
    } finally {
      await server.stop();
    }
  };
  const warmServer = await startChild("1h");
  let dovecot: StormResult | null = null;
  let dovecotSettings: readonly string[] = [];
  if (!options.skipDovecot && dovecotAvailable()) {
    // Dovecot gets Postern's certificate and key, so both do the same TLS work.
    const server = await startDovecot({
      user: USER,
      password: PASSWORD,
      certificatePath: warmServer.info.certificate,
      keyPath: warmServer.info.key,
      maxConnections: options.clients + 10,
      passdb: "sha512-crypt",
      loginProcesses: "long-lived",
    });
    dovecotSettings = server.settings;
    try {
      log(`Dovecot (pid ${server.pid}): storm of ${options.seconds} s`);
      dovecot = await storm(server.port, warmServer.info.caPem);
    } finally {
      await server.stop();
    }
  }
  const warm = await posternStorm(warmServer, "1h");
  const cold = await posternStorm(await startChild("0s"), "0s");
  return { dovecot, warm, cold, clients: options.clients, dovecotSettings, ln };
}

/** The report printed by `deno task bench`. */
export function formatLogins(r: LoginBenchResult): string {
  const d = r.dovecot;
  const out = [
    `${"".padEnd(30)} ${"logins/s".padStart(9)} ${"vs Dovecot".padStart(10)} ${
      "refused".padStart(8)
    } ${"as wrong".padStart(8)} ${"errors".padStart(7)} ${"NOOP worst".padStart(11)} ${
      "median".padStart(7)
    }`,
  ];
  const line = (name: string, s: StormResult) =>
    out.push(
      `${name.padEnd(30)} ${s.loginsPerSecond.toFixed(1).padStart(9)} ${
        (d ? `${(s.loginsPerSecond / d.loginsPerSecond).toFixed(2)}x` : "-").padStart(10)
      } ${String(s.refused).padStart(8)} ${String(s.refusedAsWrong).padStart(8)} ${
        String(s.errors).padStart(7)
      } ${`${s.bystanderWorstMs.toFixed(1)} ms`.padStart(11)} ${
        s.bystanderP99Ms.toFixed(1).padStart(6)
      } ${s.bystanderMedianMs.toFixed(1).padStart(7)}`,
    );
  if (d) line("Dovecot, SHA512-CRYPT", d);
  line("Postern, warm cache (1h)", r.warm);
  line(`Postern, cold (no cache, ln=${r.ln})`, r.cold);
  out.push(
    `${r.clients} clients on 127.0.0.1, each looping connect + TLS + LOGIN + SELECT INBOX + ` +
      "LOGOUT; a bystander session sends NOOP every 20 ms. Every password is right: " +
      '"refused" must be 0.',
  );
  if (d) out.push(`Dovecot settings: ${r.dovecotSettings.join("; ")}`);
  else out.push("Dovecot: not run (not installed, or not root)");
  return out.join("\n");
}

interface ChildInfo {
  readonly port: number;
  readonly caPem: string;
  readonly certificate: string;
  readonly key: string;
}

/** Child mode: a Postern with the storm user, the given cache TTL and scrypt cost. */
async function servePostern(cacheTtl: string, maxConnections: number, ln: number): Promise<void> {
  const { startPostern } = await import("../tests/_support/postern.ts");
  const postern = await startPostern({
    users: [{ name: USER, password: PASSWORD }],
    clientAuth: "none",
    limitsYaml: `  max_connections_per_user: ${maxConnections}\n` +
      `  max_connections_per_address: ${maxConnections}`,
    // The stored hash is made at the tests' low cost; the first login re-hashes it to `ln`.
    authYaml: `  cache_ttl: ${cacheTtl}\n  scrypt_cost: { ln: ${ln}, r: 8, p: 1 }`,
  });
  const info: ChildInfo = {
    port: postern.implicitPort,
    caPem: postern.caPem,
    certificate: `${postern.certsDir}/server.pem`,
    key: `${postern.certsDir}/server.key`,
  };
  console.log(JSON.stringify(info));
  try {
    for await (const _ of Deno.stdin.readable) {
      // Runs until the parent closes stdin.
    }
  } finally {
    await postern.stop();
  }
}

function flag(args: readonly string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

if (import.meta.main) {
  const args = Deno.args;
  const serve = flag(args, "--serve-postern");
  if (serve !== undefined) {
    const at = args.indexOf("--serve-postern");
    await servePostern(serve, Number(args[at + 2] ?? 50), Number(args[at + 3] ?? 15));
  } else {
    const result = await benchLogins({
      seconds: Number(flag(args, "--seconds") ?? (args.includes("--quick") ? 5 : 20)),
      clients: Number(flag(args, "--clients") ?? 20),
      skipDovecot: args.includes("--no-dovecot"),
      ln: Number(flag(args, "--ln") ?? 15),
      log: (s) => console.error(s),
    });
    console.log(formatLogins(result));
  }
}
