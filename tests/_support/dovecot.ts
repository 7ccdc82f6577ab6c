/**
 * A throwaway Dovecot for benchmarks and differential tests: its own base directory, a static passdb, a mailbox (maildir
 * by default, or sdbox/mdbox) under a temporary directory, implicit TLS on a free 127.0.0.1 port with the certificate we give it,
 * and process limits raised so hundreds of idle connections fit. Durability is Dovecot's
 * default (`mail_fsync = optimized`, written out explicitly). Adapted from the throwaway
 * Dovecot of tests/protocol/imap/mime/dovecot_diff_test.ts.
 */

export const DOVECOT = "/usr/sbin/dovecot";

/** What the benchmark needs to know about the running Dovecot. */
export interface RunningDovecot {
  readonly port: number;
  readonly dir: string;
  /** The master process id. */
  readonly pid: number;
  /** The settings that matter for a fair comparison, for the report. */
  readonly settings: readonly string[];
  /** Sum of RSS and PSS in bytes over the master and all its descendants. */
  memory(): TreeMemory;
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
  /** Extra dovecot.conf text, appended as is (e.g. a `namespace inbox { separator = / }`). */
  readonly extraConfig?: string;
}

/** Dovecot mailbox formats the benchmark can use. */
export const DOVECOT_FORMATS = ["maildir", "sdbox", "mdbox"] as const;
export type DovecotFormat = typeof DOVECOT_FORMATS[number];

const FORMAT_NOTES: Record<DovecotFormat, string> = {
  maildir: "maildir (one file per message, the common default)",
  sdbox: "sdbox (one file per message, Dovecot's own format)",
  mdbox: "mdbox (many messages per file, Dovecot's high-performance format)",
};

/** Whether Dovecot is installed and we may start it (it needs root to switch users). */
export function dovecotAvailable(): boolean {
  try {
    Deno.statSync(DOVECOT);
  } catch {
    return false;
  }
  return Deno.uid() === 0;
}

/** A port that was free a moment ago. */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Starts Dovecot in the foreground and waits until its TLS port accepts connections. */
export async function startDovecot(options: DovecotOptions): Promise<RunningDovecot> {
  const dir = await Deno.makeTempDir({ prefix: "postern-bench-dovecot-" });
  const port = freePort();
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
    "service imap-login: high-security mode (one login/TLS proxy process per connection)",
    "passdb static (no password hashing)",
  ];
  const conf = `base_dir = ${dir}/run
state_dir = ${dir}/state
log_path = ${dir}/log
instance_name = postern-bench-${port}
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <${options.certificatePath}
ssl_key = <${options.keyPath}
disable_plaintext_auth = yes
auth_mechanisms = plain
first_valid_uid = 1
mail_fsync = optimized
default_process_limit = ${limit}
default_client_limit = ${limit * 2}
passdb {
  driver = static
  args = password=${options.password}
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=${dir}/home/%u
}
mail_location = ${format}:${dir}/mail/%u
protocol imap {
  mail_max_userip_connections = ${limit}
}
service imap-login {
  chroot =
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
${options.extraConfig ?? ""}
`;
  await Deno.writeTextFile(`${dir}/dovecot.conf`, conf);
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
  const stop = async (): Promise<void> => {
    try {
      child.kill("SIGTERM");
    } catch {
      // Already gone.
    }
    await child.status;
    await stderr.catch(() => "");
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  if (!up) {
    const log = await Deno.readTextFile(`${dir}/log`).catch(() => "");
    await stop();
    throw new Error(`Dovecot did not start: ${log.slice(-500)}`);
  }
  return {
    port,
    dir,
    pid: child.pid,
    settings,
    memory: () => treeMemory(child.pid),
    stop,
  };
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

/** RSS and PSS of a process and all its descendants. */
function treeMemory(root: number): TreeMemory {
  const table = processTable();
  const children = new Map<number, number[]>();
  for (const p of table) {
    const list = children.get(p.ppid) ?? [];
    list.push(p.pid);
    children.set(p.ppid, list);
  }
  const byPid = new Map(table.map((p) => [p.pid, p]));
  let rss = 0;
  let pss = 0;
  let processes = 0;
  const stack = [root];
  while (stack.length > 0) {
    const pid = stack.pop()!;
    const p = byPid.get(pid);
    if (p !== undefined) {
      rss += p.rss;
      pss += processPss(pid);
      processes++;
    }
    stack.push(...(children.get(pid) ?? []));
  }
  return { rss, pss, processes };
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
