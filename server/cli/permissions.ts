/**
 * The Deno permissions a configuration needs, derived from it: the files and folders it names
 * (read, and write for the data folder only), the hosts and ports it listens on or connects
 * to, and nothing else. `deno task start` (server/launch.ts) runs the server with exactly these
 * flags, and `postern permissions` prints them for a systemd unit.
 */
import { dirname, isAbsolute, join, relative, resolve } from "node:path";
import type { Config } from "../config/mod.ts";
import { workerCount } from "../config/server.ts";
import { wakeupPath } from "../connection/wakeup.ts";

/** The environment variables the logger reads. */
export const ENV_VARIABLES = ["LOG_TOKENS", "LOG_STREAM", "NO_COLOR", "TERM"] as const;

/** The CA key that signs certificates; the serving process never reads it. */
const CA_KEY_FILE = "ca.key";

/** The checkout's source folders: a Worker (password hashes) loads its modules from them. */
const SOURCE_ROOT = resolve(new URL("../..", import.meta.url).pathname);
const SOURCE_FOLDERS = ["server", "protocol", "mailstore"] as const;

/** What `serve` may touch, as absolute paths and `host:port` pairs. */
export interface ServePermissions {
  readonly read: readonly string[];
  readonly write: readonly string[];
  /** Paths inside a readable folder that stay unreadable (the CA key). */
  readonly denyRead: readonly string[];
  /** `host:port` (a host alone for port 0) and `unix:/abs/path` entries. */
  readonly net: readonly string[];
  readonly env: readonly string[];
  /**
   * `hostname` when LMTP names itself after the machine, `uid` for the admin socket's check,
   * `setPriority` for the handshake thread of `tls.signing: auto`.
   */
  readonly sys: readonly string[];
}

/**
 * The permissions `serve` needs for `config`. Without a configuration file (the first run) it
 * also writes the certificate folder, where it creates the development CA and certificates,
 * and reads `config.yaml` in `config.baseDir` to see that there is none.
 */
export function servePermissions(config: Config): ServePermissions {
  const read = new Set<string>(SOURCE_FOLDERS.map((f) => join(SOURCE_ROOT, f)));
  const write = new Set<string>([config.dataDir]);
  const net = new Set<string>();
  const sys = new Set<string>();
  const certsDir = dirname(config.tls.certificate);

  read.add(config.source ?? join(config.baseDir, "config.yaml"));
  read.add(config.dataDir);
  if (config.source === null) {
    read.add(certsDir);
    write.add(certsDir);
  }
  // Every certificate chosen by server name (`tls.certificates`), the default one first.
  for (const c of config.tls.certificates) {
    read.add(c.certificate);
    read.add(c.privateKey);
  }
  if (config.tls.clientAuth !== "none") { for (const ca of config.tls.clientCa) read.add(ca); }
  for (const crl of config.tls.crl) read.add(crl);

  for (const listener of config.listen) net.add(hostPort(listener.hostname, listener.port));

  const directory = config.directory;
  if (directory !== null) {
    read.add(directory.bindPasswordFile);
    if (directory.ca !== null) read.add(directory.ca);
    const url = new URL(directory.url);
    const port = url.port === "" ? (url.protocol === "ldaps:" ? 636 : 389) : Number(url.port);
    net.add(hostPort(url.hostname, port));
  }

  const lmtp = config.lmtp;
  if (lmtp !== null) {
    for (const address of lmtp.listen) {
      if (address.transport === "tcp") net.add(hostPort(address.hostname, address.port));
      else {
        net.add(`unix:${address.path}`);
        // The listener creates the socket's folder if needed and replaces a stale socket.
        const folder = dirname(address.path);
        read.add(folder);
        write.add(folder);
      }
    }
    if (lmtp.socketOwner !== null) {
      read.add("/etc/passwd");
      read.add("/etc/group");
    }
    if (lmtp.hostname === null) sys.add("hostname");
  }

  if (config.metrics !== null) {
    net.add(hostPort(config.metrics.hostname, config.metrics.port));
    for (const ca of config.metrics.clientCa) read.add(ca);
  }
  if (config.admin.enabled !== false) {
    net.add(`unix:${config.admin.socket}`);
    // `auto` opens the socket only in a private folder: that check needs the process's uid.
    sys.add("uid");
  }
  // The handshake thread of `tls.signing: auto` lowers its own priority
  // (protocol/crypto/_ahead_thread.ts).
  if (config.tls.signing === "auto") sys.add("setPriority");
  // Each server thread's quick yield to its event loop (server/connection/wakeup.ts).
  for (let thread = 0; thread <= workerCount(config); thread++) {
    net.add(`unix:${wakeupPath(config.dataDir, thread)}`);
  }

  // The CA key beside any certificate folder the server may read, unless it is named on purpose.
  const named = new Set([
    ...config.tls.certificates.map((c) => c.privateKey),
    ...(directory ? [directory.bindPasswordFile] : []),
  ]);
  const folders = new Set([
    certsDir,
    ...config.tls.certificates.map((c) => dirname(c.certificate)),
    ...config.tls.clientCa.map((p) => dirname(p)),
  ]);
  const denyRead = [...folders]
    .map((folder) => join(folder, CA_KEY_FILE))
    .filter((key) => !named.has(key) && [...read].some((path) => within(key, path)));

  return {
    read: minimal(read),
    write: minimal(write),
    denyRead: [...new Set(denyRead)].sort(),
    net: [...net],
    env: [...ENV_VARIABLES],
    sys: [...sys],
  };
}

/** The `deno run` flags for `permissions`, one per kind, in a stable order. */
export function permissionFlags(permissions: ServePermissions): string[] {
  const flags = [
    `--allow-read=${permissions.read.join(",")}`,
    `--allow-write=${permissions.write.join(",")}`,
  ];
  if (permissions.denyRead.length > 0) flags.push(`--deny-read=${permissions.denyRead.join(",")}`);
  if (permissions.net.length > 0) flags.push(`--allow-net=${permissions.net.join(",")}`);
  flags.push(`--allow-env=${permissions.env.join(",")}`);
  if (permissions.sys.length > 0) flags.push(`--allow-sys=${permissions.sys.join(",")}`);
  return flags;
}

/** The `deno run` arguments that start `serve` with `flags` (config file given explicitly). */
export function serveCommand(config: Config, flags: readonly string[]): string[] {
  return [
    "run",
    "--no-prompt",
    `--config=${join(SOURCE_ROOT, "deno.json")}`,
    ...flags,
    join(SOURCE_ROOT, "server/main.ts"),
    "serve",
    ...(config.source === null ? [] : ["--config", config.source]),
  ];
}

/** `host:port` for --allow-net, with brackets around an IPv6 address; the host alone for port 0. */
function hostPort(hostname: string, port: number): string {
  const host = hostname.includes(":") && !hostname.startsWith("[") ? `[${hostname}]` : hostname;
  return port === 0 ? host : `${host}:${port}`;
}

/** True when `path` is `folder` or lies under it. */
function within(path: string, folder: string): boolean {
  const rel = relative(folder, path);
  return rel === "" || (!rel.startsWith("..") && !isAbsolute(rel));
}

/** Sorted paths without those already covered by another entry's folder. */
function minimal(paths: Set<string>): string[] {
  const all = [...paths].sort();
  return all.filter((path) => !all.some((other) => other !== path && within(path, other)));
}
