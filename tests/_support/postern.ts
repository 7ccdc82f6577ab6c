/**
 * Starts a whole Postern server in-process on free loopback ports, from a YAML config written to
 * a temporary directory, with the development PKI and local users made for the test.
 */
import { join } from "node:path";
import { hashPassword } from "../../mailstore/password.ts";
import { openDataStore } from "../../server/serve/data_dir.ts";
import { parseConfig } from "../../server/config/mod.ts";
import { ensureDevPki, issueClientCertificate } from "../../server/cli/dev_pki.ts";
import type { ServeHandle } from "../../server/serve/mod.ts";
import { serveOnCores } from "../../server/workers/mod.ts";
import type { PrivateKeyKind } from "../../protocol/crypto/provider.ts";
import { freePort } from "./dovecot.ts";

export interface PosternOptions {
  readonly users?: readonly {
    readonly name: string;
    readonly password?: string;
    /** Delivery addresses (LMTP recipients). */
    readonly addresses?: readonly string[];
  }[];
  readonly clientAuth?: "none" | "optional" | "required";
  /** Extra top-level YAML (e.g. a `directory:` section), appended verbatim. */
  readonly extraYaml?: string;
  /** YAML lines inside `imap:`. */
  readonly imapYaml?: string;
  /** YAML lines inside `tls:` beyond the defaults (e.g. `  crl: [...]`). */
  readonly tlsYaml?: string;
  readonly limitsYaml?: string;
  /** YAML lines inside `auth:` (default: the test scrypt cost, so logins do not re-hash). */
  readonly authYaml?: string;
  /**
   * More server certificates: the config then lists `tls.certificates`, the development
   * certificate first (names [localhost]) and these after it.
   */
  readonly extraCertificates?: readonly {
    readonly certificate: string;
    readonly privateKey: string;
    readonly names: readonly string[];
  }[];
  /** `tls.handshake_timeout`; default 5s. */
  readonly handshakeTimeout?: string;
  /** Makes both listeners PROXY protocol listeners that trust these addresses or CIDRs. */
  readonly trustedProxies?: readonly string[];
  /**
   * Accept loops (`server.workers`). Default 1: tests run on the main thread, as `serve`
   * does, unless they are about the Workers.
   */
  readonly workers?: number;
  /** With several Workers: how long a Worker's heartbeat may stand still (default 15 s). */
  readonly workerSilenceMs?: number;
}

export interface RunningPostern {
  readonly dir: string;
  readonly certsDir: string;
  readonly caPath: string;
  readonly caPem: string;
  readonly implicitPort: number;
  readonly starttlsPort: number;
  readonly handle: ServeHandle;
  /** Issues a client certificate `NAME.pem`/`NAME.key` (CN=NAME, email NAME@localhost). */
  clientCertificate(
    name: string,
    options?: { keyType?: PrivateKeyKind; email?: string },
  ): Promise<{ certPath: string; keyPath: string; der: Uint8Array }>;
  stop(): Promise<void>;
}

/** Low scrypt cost keeps tests fast; the verifier reads the cost from the hash itself. */
const TEST_COST = { ln: 10, r: 8, p: 1 } as const;

interface Prepared {
  readonly dir: string;
  readonly certsDir: string;
  readonly caCertificate: string;
  readonly yaml: string;
  readonly configPath: string;
}

/** Writes the PKI, the store with its users and the config file (ports 0 unless given). */
async function preparePostern(
  options: PosternOptions,
  ports: readonly [number, number] = [0, 0],
): Promise<Prepared> {
  const dir = await Deno.makeTempDir({ prefix: "postern-e2e-" });
  const certsDir = join(dir, "certs");
  await Deno.mkdir(certsDir);
  const pki = await ensureDevPki(certsDir);
  const dataDir = join(dir, "data");
  await Deno.mkdir(dataDir);
  const store = await openDataStore(dataDir);
  for (const user of options.users ?? []) {
    const account = await store.createAccount(
      user.name,
      user.password === undefined ? null : hashPassword(user.password, TEST_COST),
    );
    for (const address of user.addresses ?? []) await store.addAddress(account.id, address);
  }
  await store.close();
  const proxyLines = options.trustedProxies === undefined ? [] : [
    "    proxy_protocol: true",
    `    trusted_proxies: ${JSON.stringify(options.trustedProxies)}`,
  ];
  const yaml = [
    `data_dir: ${dataDir}`,
    "listen:",
    `  - address: 127.0.0.1:${ports[0]}`,
    "    tls: implicit",
    ...proxyLines,
    `  - address: 127.0.0.1:${ports[1]}`,
    "    tls: starttls",
    ...proxyLines,
    "tls:",
    ...(options.extraCertificates === undefined
      ? [`  certificate: ${pki.serverCertificate}`, `  private_key: ${pki.serverKey}`]
      : [
        "  certificates:",
        ...[
          { certificate: pki.serverCertificate, privateKey: pki.serverKey, names: ["localhost"] },
          ...options.extraCertificates,
        ].map((c) =>
          `    - {certificate: ${c.certificate}, private_key: ${c.privateKey}, names: ${
            JSON.stringify(c.names)
          }}`
        ),
      ]),
    `  client_auth: ${options.clientAuth ?? "optional"}`,
    `  client_ca: [${pki.caCertificate}]`,
    `  handshake_timeout: ${options.handshakeTimeout ?? "5s"}`,
    ...(options.tlsYaml ? [options.tlsYaml] : []),
    ...(options.imapYaml ? ["imap:", options.imapYaml] : []),
    ...(options.limitsYaml ? ["limits:", options.limitsYaml] : []),
    "auth:",
    options.authYaml ??
      `  scrypt_cost: { ln: ${TEST_COST.ln}, r: ${TEST_COST.r}, p: ${TEST_COST.p} }`,
    "log:",
    "  level: error",
    "server:",
    `  workers: ${options.workers ?? 1}`,
    options.extraYaml ?? "",
  ].join("\n");
  const configPath = join(dir, "config.yaml");
  await Deno.writeTextFile(configPath, yaml);
  return { dir, certsDir, caCertificate: pki.caCertificate, yaml, configPath };
}

export async function startPostern(options: PosternOptions = {}): Promise<RunningPostern> {
  const { dir, certsDir, caCertificate, yaml, configPath } = await preparePostern(options);
  const pki = { caCertificate };
  const config = parseConfig(yaml, configPath);
  const handle = await serveOnCores(config, {
    shutdownGraceMs: 1000,
    ...(options.workerSilenceMs === undefined
      ? {}
      : { heartbeatSilenceMs: options.workerSilenceMs }),
  });
  const [implicit, starttls] = handle.addresses;
  return {
    dir,
    certsDir,
    caPath: pki.caCertificate,
    caPem: await Deno.readTextFile(pki.caCertificate),
    implicitPort: implicit!.port,
    starttlsPort: starttls!.port,
    handle,
    async clientCertificate(name, certOptions = {}) {
      const files = await issueClientCertificate(certsDir, name, {
        ...(certOptions.keyType ? { keyType: certOptions.keyType } : {}),
        ...(certOptions.email ? { email: certOptions.email } : {}),
        force: true,
      });
      return { certPath: files.certificate, keyPath: files.key, der: files.der };
    },
    async stop() {
      await handle.shutdown();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/** A Postern server in a process of its own, as `postern serve` runs it. */
export interface PosternProcess {
  readonly dir: string;
  readonly pid: number;
  readonly caPem: string;
  readonly implicitPort: number;
  readonly starttlsPort: number;
  /** Resident set size of the server process now, in bytes (0 once it has exited). */
  rss(): number;
  /** CPU time (user + system) the server process has used so far, in seconds. */
  cpuSeconds(): number;
  /** Server-side TCP connections on its ports that are open (established or half-closed). */
  openConnections(): Promise<number>;
  /**
   * SIGTERM, wait for exit, then start the server again on the same configuration, data and
   * ports (a restart: caches in memory are gone, the database stays); `between` runs while it is
   * stopped (e.g. writes to its database by another process).
   */
  restart(between?: () => Promise<void>): Promise<void>;
  /** SIGTERM, wait for exit; returns the exit code. */
  stop(): Promise<number>;
}

const REPO = new URL("../../", import.meta.url).pathname;

/**
 * Starts `server/main.ts serve` as a child process on two free ports, with the same setup as
 * `startPostern`, and waits until it accepts connections.
 */
export async function startPosternProcess(options: PosternOptions = {}): Promise<PosternProcess> {
  const ports = [freePort(), freePort()] as const;
  const prepared = await preparePostern(options, ports);
  let server: ServerChild;
  try {
    server = await spawnServer(prepared.configPath, ports[0]);
  } catch (e) {
    await Deno.remove(prepared.dir, { recursive: true }).catch(() => {});
    throw e;
  }
  return {
    dir: prepared.dir,
    get pid() {
      return server.child.pid;
    },
    caPem: await Deno.readTextFile(prepared.caCertificate),
    implicitPort: ports[0],
    starttlsPort: ports[1],
    rss() {
      try {
        const text = Deno.readTextFileSync(`/proc/${server.child.pid}/status`);
        return Number(/^VmRSS:\s+(\d+) kB$/m.exec(text)?.[1] ?? "0") * 1024;
      } catch {
        return 0;
      }
    },
    cpuSeconds() {
      try {
        const fields = Deno.readTextFileSync(`/proc/${server.child.pid}/stat`).split(") ")[1]!
          .split(" ");
        return (Number(fields[11]) + Number(fields[12])) / 100;
      } catch {
        return 0;
      }
    },
    async openConnections() {
      const filter = `( sport = :${ports[0]} or sport = :${ports[1]} )`;
      const out = await new Deno.Command("ss", {
        args: ["-Htn", "state", "established", "state", "close-wait", filter],
        stdout: "piped",
        stderr: "null",
      }).output();
      return new TextDecoder().decode(out.stdout).split("\n").filter((l) => l.trim()).length;
    },
    async restart(between) {
      await server.stop();
      await between?.();
      server = await spawnServer(prepared.configPath, ports[0]);
    },
    async stop() {
      const code = await server.stop();
      await Deno.remove(prepared.dir, { recursive: true }).catch(() => {});
      return code;
    },
  };
}

/** A running `postern serve` child. */
interface ServerChild {
  readonly child: Deno.ChildProcess;
  /** SIGTERM, wait for exit; returns the exit code. */
  stop(): Promise<number>;
}

/** Spawns `server/main.ts serve` with `configPath` and waits until `port` accepts connections. */
async function spawnServer(configPath: string, port: number): Promise<ServerChild> {
  const stdoutFile = Deno.env.get("POSTERN_STDOUT_FILE");
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      ...(Deno.env.get("POSTERN_CPU_PROF")
        ? [
          `--cpu-prof-dir=${Deno.env.get("POSTERN_CPU_PROF")}`,
          // The sampling interval in µs (Deno's default is 1,000).
          ...(Deno.env.get("POSTERN_CPU_PROF_INTERVAL")
            ? [`--cpu-prof-interval=${Deno.env.get("POSTERN_CPU_PROF_INTERVAL")}`]
            : []),
        ]
        : []),
      // For measurements: e.g. POSTERN_V8_FLAGS=--trace-gc with POSTERN_STDOUT_FILE=gc.txt.
      ...(Deno.env.get("POSTERN_INSPECT") ? [`--inspect=${Deno.env.get("POSTERN_INSPECT")}`] : []),
      ...(Deno.env.get("POSTERN_V8_FLAGS")
        ? [`--v8-flags=${Deno.env.get("POSTERN_V8_FLAGS")}`]
        : []),
      // A module run before the server (`deno run --preload`), e.g. counters of allocations.
      ...(Deno.env.get("POSTERN_PRELOAD") ? [`--preload=${Deno.env.get("POSTERN_PRELOAD")}`] : []),
      "--config",
      join(REPO, "deno.json"),
      join(REPO, "server/main.ts"),
      "serve",
      "--config",
      configPath,
    ],
    // The server stops when this end of its stdin closes: if this process is killed, its
    // server does not run on (server/cli/serve.ts, stopWhenStdinEnds).
    env: { POSTERN_STOP_ON_STDIN_EOF: "1" },
    stdin: "piped",
    stdout: stdoutFile ? "piped" : "null",
    stderr: "piped",
  }).spawn();
  const lifeline = child.stdin.getWriter();
  if (stdoutFile) {
    const file = await Deno.open(stdoutFile, { write: true, create: true, append: true });
    child.stdout.pipeTo(file.writable).catch(() => {});
  }
  let stderr = "";
  const draining = child.stderr.pipeThrough(new TextDecoderStream()).pipeTo(
    new WritableStream({ write: (t) => void (stderr = (stderr + t).slice(-8192)) }),
  ).catch(() => {});
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      break;
    } catch {
      if (exited || Date.now() > deadline) {
        if (!exited) child.kill("SIGTERM");
        await status;
        await lifeline.close().catch(() => {});
        throw new Error(`postern serve did not start: ${stderr}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    child,
    async stop() {
      if (!exited) child.kill("SIGTERM");
      const s = await status;
      await lifeline.close().catch(() => {});
      await draining;
      return s.code;
    },
  };
}
