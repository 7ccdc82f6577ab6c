/**
 * A throwaway PostgreSQL cluster for tests, from Debian's `postgresql` package: `initdb` in a
 * temporary folder, then `postgres` in the foreground on a free 127.0.0.1 port with its socket
 * in that folder. PostgreSQL refuses to run as root, so when the tests run as root (CI does)
 * both run as `nobody` through `setpriv`, with the folder handed to that user.
 *
 * ```ts
 * const pg = await startPostgres();
 * try { ... pg.url ... } finally { await pg.stop(); }
 * ```
 */
import { freePort } from "./dovecot.ts";
import { run } from "./command.ts";

/** The newest installed server's bin directory (`/usr/lib/postgresql/<version>/bin`), or null. */
export function postgresBinDir(): string | null {
  let best: { version: number; dir: string } | null = null;
  try {
    for (const entry of Deno.readDirSync("/usr/lib/postgresql")) {
      const version = Number(entry.name);
      const dir = `/usr/lib/postgresql/${entry.name}/bin`;
      if (!Number.isFinite(version)) continue;
      try {
        Deno.statSync(`${dir}/initdb`);
      } catch {
        continue;
      }
      if (!best || version > best.version) best = { version, dir };
    }
  } catch {
    return null;
  }
  return best?.dir ?? null;
}

/** True when a PostgreSQL server is installed (tests skip themselves otherwise). */
export function postgresAvailable(): boolean {
  return postgresBinDir() !== null;
}

export interface PostgresOptions {
  /**
   * `fsync` of the cluster. Off (the default) makes throwaway clusters fast; benchmarks that
   * compare durable commits turn it on.
   */
  readonly fsync?: boolean;
  readonly maxConnections?: number;
  /**
   * Turns on TLS (`ssl=on`) with this server certificate and key (PEM). With `only`, TCP
   * clients must use TLS (`hostssl` in pg_hba.conf): a plaintext connection is refused.
   */
  readonly tls?: {
    readonly certificatePem: string;
    readonly keyPem: string;
    readonly only?: boolean;
  };
}

export interface RunningPostgres {
  /** `postgres://postern:PASSWORD@127.0.0.1:PORT/postern` */
  readonly url: string;
  /** The same URL without the password (for configs with `password_file`). */
  readonly urlWithoutPassword: string;
  readonly password: string;
  /** A file holding the password (a config's `password_file`). */
  readonly passwordFile: string;
  readonly port: number;
  /** Creates a fresh empty database and returns its URL (one per test case). */
  createDatabase(name: string): Promise<string>;
  /** The server's TLS certificate and key files (with `tls`); rewrite them, then restart. */
  readonly tlsFiles: { readonly certificate: string; readonly key: string } | null;
  /** Stops the server (fast shutdown), keeping its data. */
  stopServer(): Promise<void>;
  /** Starts the server again on the same port with the same data. */
  startServer(): Promise<void>;
  /** Stops the server and removes its files. */
  stop(): Promise<void>;
}

const NOBODY = 65534;

/** Starts a fresh cluster with a `postern` role owning a `postern` database. */
export async function startPostgres(options: PostgresOptions = {}): Promise<RunningPostgres> {
  const bin = postgresBinDir();
  if (!bin) throw new Error("PostgreSQL is not installed (Debian package postgresql)");
  const asRoot = Deno.uid() === 0;
  const dir = await Deno.makeTempDir({ prefix: "postern-pg-" });
  const data = `${dir}/data`;
  const password = crypto.randomUUID();
  const passwordFile = `${dir}/password`;
  await Deno.writeTextFile(passwordFile, `${password}\n`);
  const superPw = `${dir}/superpw`;
  await Deno.writeTextFile(superPw, `${password}\n`);
  if (asRoot) {
    await Deno.chown(dir, NOBODY, NOBODY);
    await Deno.chown(superPw, NOBODY, NOBODY);
  }
  const asUser = (cmd: string, args: string[]): [string, string[]] =>
    asRoot
      ? ["setpriv", [
        `--reuid=${NOBODY}`,
        `--regid=${NOBODY}`,
        "--clear-groups",
        "--",
        cmd,
        ...args,
      ]]
      : [cmd, args];
  const env = { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", LC_ALL: "C", HOME: dir };
  const init = await run(
    ...asUser(`${bin}/initdb`, [
      "-D",
      data,
      "-U",
      "postgres",
      "--auth-local=trust",
      "--auth-host=scram-sha-256",
      `--pwfile=${superPw}`,
      "--no-sync",
      "-E",
      "UTF8",
      "--no-locale",
    ]),
    { env, cwd: dir, timeoutMs: 60_000 },
  );
  if (init.code !== 0) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw new Error(`initdb failed: ${init.stderr || init.stdout}`);
  }
  let tlsFiles: { certificate: string; key: string } | null = null;
  if (options.tls) {
    tlsFiles = { certificate: `${dir}/server.crt`, key: `${dir}/server.key` };
    await Deno.writeTextFile(tlsFiles.certificate, options.tls.certificatePem);
    // PostgreSQL refuses a key that the group or others may read.
    await Deno.writeTextFile(tlsFiles.key, options.tls.keyPem, { mode: 0o600 });
    await Deno.chmod(tlsFiles.key, 0o600);
    if (asRoot) {
      await Deno.chown(tlsFiles.certificate, NOBODY, NOBODY);
      await Deno.chown(tlsFiles.key, NOBODY, NOBODY);
    }
    if (options.tls.only) {
      const hba = `${data}/pg_hba.conf`;
      const text = await Deno.readTextFile(hba);
      await Deno.writeTextFile(hba, text.replace(/^host(\s)/gm, "hostssl$1"));
    }
  }
  const port = freePort();
  let child: Deno.ChildProcess | null = null;
  let logTail = "";

  async function startServer(): Promise<void> {
    const [cmd, args] = asUser(`${bin}/postgres`, [
      "-D",
      data,
      "-p",
      String(port),
      "-h",
      "127.0.0.1",
      "-k",
      dir,
      "-c",
      `fsync=${options.fsync ? "on" : "off"}`,
      "-c",
      `max_connections=${options.maxConnections ?? 100}`,
      "-c",
      "shared_buffers=64MB",
      ...(tlsFiles === null ? [] : [
        "-c",
        "ssl=on",
        "-c",
        `ssl_cert_file=${tlsFiles.certificate}`,
        "-c",
        `ssl_key_file=${tlsFiles.key}`,
      ]),
    ]);
    const proc = new Deno.Command(cmd, {
      args,
      env,
      cwd: dir,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    child = proc;
    // Keep the last lines of the log for error messages, and keep the pipe drained.
    (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of proc.stderr) {
        logTail = (logTail + decoder.decode(chunk)).slice(-4000);
      }
    })().catch(() => {});
    const deadline = Date.now() + 30_000;
    for (;;) {
      const ready = await run(`${bin}/pg_isready`, ["-h", "127.0.0.1", "-p", String(port)], {
        env,
        timeoutMs: 5_000,
      });
      if (ready.code === 0) return;
      if (Date.now() > deadline) {
        throw new Error(`PostgreSQL did not start: ${logTail}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async function stopServer(): Promise<void> {
    const proc = child;
    if (!proc) return;
    child = null;
    try {
      proc.kill("SIGINT");
    } catch {
      // Already gone.
    }
    const timer = setTimeout(() => {
      try {
        proc.kill("SIGKILL");
      } catch {
        // Already gone.
      }
    }, 20_000);
    await proc.status;
    clearTimeout(timer);
  }

  async function psql(database: string, sql: string): Promise<void> {
    const r = await run(
      `${bin}/psql`,
      ["-h", dir, "-p", String(port), "-U", "postgres", "-d", database, "-v", "ON_ERROR_STOP=1"],
      { env, stdin: sql, timeoutMs: 30_000, ...(asRoot ? {} : {}) },
    );
    if (r.code !== 0) throw new Error(`psql failed: ${r.stderr}`);
  }

  try {
    await startServer();
    await psql(
      "postgres",
      `CREATE ROLE postern LOGIN PASSWORD '${password}';
       CREATE DATABASE postern OWNER postern;`,
    );
  } catch (e) {
    await stopServer();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw e;
  }
  // A run that filters out the test calling stop() (deno test --filter) still leaves nothing
  // behind: the server and its folder go when the test process exits.
  const onUnload = () => {
    try {
      child?.kill("SIGKILL");
    } catch {
      // Already gone.
    }
    try {
      Deno.removeSync(dir, { recursive: true });
    } catch {
      // Already removed.
    }
  };
  globalThis.addEventListener("unload", onUnload);
  const base = `127.0.0.1:${port}`;
  return {
    url: `postgres://postern:${password}@${base}/postern`,
    urlWithoutPassword: `postgres://postern@${base}/postern`,
    password,
    passwordFile,
    port,
    tlsFiles,
    async createDatabase(name: string): Promise<string> {
      if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`Bad database name ${name}`);
      await psql("postgres", `CREATE DATABASE ${name} OWNER postern;`);
      return `postgres://postern:${password}@${base}/${name}`;
    },
    stopServer,
    startServer,
    async stop(): Promise<void> {
      globalThis.removeEventListener("unload", onUnload);
      await stopServer();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
