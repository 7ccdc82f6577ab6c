/**
 * A throwaway Dovecot for benchmarks and differential tests: its own base directory, a static passdb, a mailbox (maildir
 * by default, or sdbox/mdbox) under a temporary directory, implicit TLS on a free 127.0.0.1 port with the certificate we give it,
 * and process limits raised so hundreds of idle connections fit. Durability is Dovecot's
 * default (`mail_fsync = optimized`, written out explicitly). As root, the mail processes run as
 * `nobody`; as any other user, every Dovecot process runs as that user (its login, internal and
 * mail user), which Dovecot supports for unprivileged instances on ports above 1023.
 */

import { freePort } from "./ports.ts";

export { freePort };

export const DOVECOT = "/usr/sbin/dovecot";

/** What the benchmark needs to know about the running Dovecot. */
export interface RunningDovecot {
  readonly port: number;
  /** The LMTP port on 127.0.0.1 when `lmtp` was asked for, else null. */
  readonly lmtpPort: number | null;
  readonly dir: string;
  /** The master process id. */
  readonly pid: number;
  /** The settings that matter for a fair comparison, for the report. */
  readonly settings: readonly string[];
  /** Sum of RSS and PSS in bytes over the master and all its descendants. */
  memory(): TreeMemory;
  /**
   * CPU seconds (user and system) the master and its descendants have used, those that ended
   * and were reaped included.
   */
  cpuSeconds(): number;
  /** Stops the master and starts it again on the same configuration and mail (a restart). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** Options of `startDovecot`. */
export interface DovecotOptions {
  readonly user: string;
  readonly password: string;
  /** PEM chain (leaf first) and key for TLS. */
  readonly certificatePath: string;
  readonly keyPath: string;
  /** Connections the benchmark will hold at once. */
  readonly maxConnections: number;
  /** Mailbox format (default maildir, one file per message; mdbox packs many per file). */
  readonly format?: DovecotFormat;
  /**
   * How the password is stored: `static` (no hashing, the default) or a passwd-file entry
   * hashed with SHA512-CRYPT (5,000 rounds, Dovecot's default scheme).
   */
  readonly passdb?: "static" | "sha512-crypt";
  /**
   * `per-connection` (default, Dovecot's high-security mode: one login process per connection)
   * or `long-lived` (`service_count = 0`: a few login processes serve many connections, the
   * high-performance mode).
   */
  readonly loginProcesses?: "per-connection" | "long-lived";
  /**
   * Also run Dovecot's LMTP service (Debian package dovecot-lmtpd) on a free 127.0.0.1 port;
   * every recipient is accepted as a user of its own (`allow_all_users`).
   */
  readonly lmtp?: boolean;
  /** Extra dovecot.conf text, appended as is (e.g. a `namespace inbox { separator = / }`). */
  readonly extraConfig?: string;
}

/** Whether Dovecot's LMTP service is installed. */
export function dovecotLmtpAvailable(): boolean {
  try {
    Deno.statSync("/usr/lib/dovecot/lmtp");
    return dovecotAvailable();
  } catch {
    return false;
  }
}

/** Dovecot mailbox formats the benchmark can use. */
export const DOVECOT_FORMATS = ["maildir", "sdbox", "mdbox"] as const;
export type DovecotFormat = typeof DOVECOT_FORMATS[number];

const FORMAT_NOTES: Record<DovecotFormat, string> = {
  maildir: "maildir (one file per message, the common default)",
  sdbox: "sdbox (one file per message, Dovecot's own format)",
  mdbox: "mdbox (many messages per file, Dovecot's high-performance format)",
};

/** Whether Dovecot is installed (it runs as root or, unprivileged, as the current user). */
export function dovecotAvailable(): boolean {
  try {
    Deno.statSync(DOVECOT);
    return true;
  } catch {
    return false;
  }
}

/**
 * The users Dovecot's processes run as: its defaults and `nobody` under root; otherwise the
 * current user and group for everything, since an unprivileged master cannot switch users.
 */
function processUsers(): { settings: string; userdb: string } {
  const uid = Deno.uid();
  const gid = Deno.gid();
  if (uid === 0 || uid === null || gid === null) {
    return { settings: "", userdb: "uid=nobody gid=nogroup" };
  }
  const nameOf = (file: string, id: number): string => {
    for (const line of Deno.readTextFileSync(file).split("\n")) {
      const fields = line.split(":");
      if (Number(fields[2]) === id && fields[0]) return fields[0];
    }
    throw new Error(`Dovecot: no entry for id ${id} in ${file}`);
  };
  const user = nameOf("/etc/passwd", uid);
  const group = nameOf("/etc/group", gid);
  return {
    settings: `default_login_user = ${user}\ndefault_internal_user = ${user}\n` +
      `default_internal_group = ${group}\n`,
    userdb: `uid=${uid} gid=${gid}`,
  };
}

/** Starts Dovecot in the foreground and waits until its TLS port accepts connections. */
export async function startDovecot(options: DovecotOptions): Promise<RunningDovecot> {
  const dir = await Deno.makeTempDir({ prefix: "postern-bench-dovecot-" });
  const port = freePort();
  const lmtpPort = options.lmtp ? freePort() : null;
  for (const sub of ["run", "state", "mail", "home"]) await Deno.mkdir(`${dir}/${sub}`);
  await Deno.chmod(dir, 0o755);
  await Deno.chmod(`${dir}/mail`, 0o777);
  await Deno.chmod(`${dir}/home`, 0o777);
  const limit = Math.max(100, options.maxConnections + 50);
  const format = options.format ?? "maildir";
  const settings = [
    `mail_location = ${FORMAT_NOTES[format]}`,
    "mail_fsync = optimized (the default)",
    "ssl = required, implicit TLS (imaps), OpenSSL",
    options.loginProcesses === "long-lived"
      ? "service imap-login: high-performance mode (service_count = 0, long-lived processes)"
      : "service imap-login: high-security mode (one login/TLS proxy process per connection)",
    options.passdb === "sha512-crypt"
      ? "passdb passwd-file with {SHA512-CRYPT} entries (5000 rounds), no auth cache"
      : "passdb static (no password hashing)",
  ];
  const passdb = options.passdb === "sha512-crypt"
    ? await writePasswdFile(`${dir}/passwd`, options.user, options.password)
    : `driver = static\n  args = password=${options.password}`;
  const loginService = options.loginProcesses === "long-lived"
    ? `  service_count = 0\n  process_min_avail = 2\n`
    : "";
  const users = processUsers();
  const conf = `base_dir = ${dir}/run
state_dir = ${dir}/state
log_path = ${dir}/log
instance_name = postern-bench-${port}
protocols = imap${lmtpPort === null ? "" : " lmtp"}
listen = 127.0.0.1
ssl = required
ssl_cert = <${options.certificatePath}
ssl_key = <${options.keyPath}
disable_plaintext_auth = yes
auth_mechanisms = plain
first_valid_uid = 1
${users.settings}mail_fsync = optimized
default_process_limit = ${limit}
default_client_limit = ${limit * 2}
passdb {
  ${passdb}
}
userdb {
  driver = static
  args = ${users.userdb} home=${dir}/home/%u${lmtpPort === null ? "" : " allow_all_users=yes"}
}
mail_location = ${format}:${dir}/mail/%u
protocol imap {
  mail_max_userip_connections = ${limit}
}
service imap-login {
${loginService}  chroot =
  process_limit = ${limit}
  inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = ${port}
    ssl = yes
  }
}
service imap {
  process_limit = ${limit}
}
service anvil {
  chroot =
}
${
    lmtpPort === null ? "" : `postmaster_address = postmaster@example.org
service lmtp {
  process_limit = ${limit}
  inet_listener lmtp {
    address = 127.0.0.1
    port = ${lmtpPort}
  }
}
`
  }${options.extraConfig ?? ""}
`;
  await Deno.writeTextFile(`${dir}/dovecot.conf`, conf);
  const spawn = async () => {
    const child = new Deno.Command(DOVECOT, {
      args: ["-F", "-c", `${dir}/dovecot.conf`],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const stderr = new Response(child.stderr).text();
    let up = false;
    for (let i = 0; i < 100 && !up; i++) {
      try {
        const c = await Deno.connect({ hostname: "127.0.0.1", port });
        c.close();
        up = true;
      } catch {
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    const end = async (): Promise<void> => {
      try {
        child.kill("SIGTERM");
      } catch {
        // Already gone.
      }
      await child.status;
      await stderr.catch(() => "");
    };
    return { child, up, end };
  };
  let master = await spawn();
  const up = master.up;
  const stop = async (): Promise<void> => {
    await master.end();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  const restart = async (): Promise<void> => {
    await master.end();
    master = await spawn();
    if (!master.up) throw new Error("Dovecot did not start again");
  };
  for (let i = 0; i < 100 && up && lmtpPort !== null; i++) {
    try {
      const c = await Deno.connect({ hostname: "127.0.0.1", port: lmtpPort });
      c.close();
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  if (!up) {
    const log = await Deno.readTextFile(`${dir}/log`).catch(() => "");
    await stop();
    throw new Error(`Dovecot did not start: ${log.slice(-500)}`);
  }
  if (lmtpPort !== null) settings.push("lmtp: inet listener on 127.0.0.1, fsync as above");
  return {
    port,
    lmtpPort,
    dir,
    get pid() {
      return master.child.pid;
    },
    settings,
    memory: () => treeMemory(master.child.pid),
    cpuSeconds: () => treeCpuSeconds(master.child.pid),
    restart,
    stop,
  };
}

/** Writes a passwd-file with one SHA512-CRYPT entry; returns the passdb settings for it. */
async function writePasswdFile(path: string, user: string, password: string): Promise<string> {
  const { encrypt } = await import("unixcrypt");
  const alphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  const salt = Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => alphabet[b & 63])
    .join("");
  await Deno.writeTextFile(path, `${user}:{SHA512-CRYPT}${encrypt(password, `$6$${salt}`)}\n`);
  await Deno.chmod(path, 0o644);
  return `driver = passwd-file\n  args = scheme=SHA512-CRYPT ${path}`;
}

/** Reads `Name`, `PPid` and `VmRSS` of every process in /proc. */
function processTable(): { pid: number; ppid: number; name: string; rss: number }[] {
  const out: { pid: number; ppid: number; name: string; rss: number }[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    let status: string;
    try {
      status = Deno.readTextFileSync(`/proc/${e.name}/status`);
    } catch {
      continue;
    }
    const name = /^Name:\s+(.*)$/m.exec(status)?.[1] ?? "";
    const ppid = Number(/^PPid:\s+(\d+)$/m.exec(status)?.[1] ?? "0");
    const rssKb = Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1] ?? "0");
    out.push({ pid: Number(e.name), ppid, name, rss: rssKb * 1024 });
  }
  return out;
}

/** Memory of a process tree, in bytes. */
export interface TreeMemory {
  /** Sum of VmRSS (shared pages counted once per process). */
  readonly rss: number;
  /** Sum of proportional set sizes (shared pages divided among their users). */
  readonly pss: number;
  readonly processes: number;
}

/** A process and all its descendants, from one reading of the process table. */
function treePids(root: number): { pid: number; rss: number }[] {
  const table = processTable();
  const children = new Map<number, number[]>();
  for (const p of table) {
    const list = children.get(p.ppid) ?? [];
    list.push(p.pid);
    children.set(p.ppid, list);
  }
  const byPid = new Map(table.map((p) => [p.pid, p]));
  const out: { pid: number; rss: number }[] = [];
  const stack = [root];
  while (stack.length > 0) {
    const pid = stack.pop()!;
    const p = byPid.get(pid);
    if (p !== undefined) out.push(p);
    stack.push(...(children.get(pid) ?? []));
  }
  return out;
}

/** RSS and PSS of a process and all its descendants. */
function treeMemory(root: number): TreeMemory {
  const tree = treePids(root);
  let rss = 0;
  let pss = 0;
  for (const p of tree) {
    rss += p.rss;
    pss += processPss(p.pid);
  }
  return { rss, pss, processes: tree.length };
}

/**
 * CPU seconds of a process tree: each live member's own time and that of its reaped children
 * (`/proc/PID/stat` utime, stime, cutime, cstime, in clock ticks of 10 ms).
 */
export function treeCpuSeconds(root: number): number {
  let ticks = 0;
  for (const { pid } of treePids(root)) {
    try {
      const f = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1]!.split(" ");
      ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
    } catch {
      // Ended in between.
    }
  }
  return ticks / 100;
}

/** PSS in bytes of one process (`/proc/PID/smaps_rollup`), or 0 when unreadable. */
export function processPss(pid: number): number {
  try {
    const rollup = Deno.readTextFileSync(`/proc/${pid}/smaps_rollup`);
    return Number(/^Pss:\s+(\d+) kB$/m.exec(rollup)?.[1] ?? "0") * 1024;
  } catch {
    return 0;
  }
}
