/**
 * Memory of authenticated, SELECTed sessions in IDLE: Postern runs as `postern serve` in a
 * child process with the probe of server/serve/stall_probe.ts (which also reports its RSS and V8
 * heap); this process opens N TLS connections (default 2,000) that LOGIN, SELECT INBOX and
 * IDLE, and reports the growth of the server's RSS and heap divided by N. A few sessions that
 * log in, select and log out come first so that code loaded on first use is not counted.
 * The heap figure is taken without a forced GC, so it includes garbage not yet collected.
 * With `certificates`, every session presents a client certificate in the handshake and logs
 * in with AUTHENTICATE EXTERNAL, so the server also holds its verified peer. Figures are
 * printed, never asserted.
 *
 * Usage: `deno run -A bench/idle_memory_bench.ts [--sessions N] [--certificates]`.
 */
import { join } from "node:path";
import { issueClientCertificate } from "../server/cli/dev_pki.ts";
import { lastMemory } from "../server/serve/stall_probe.ts";
import { startPosternProcess } from "../tests/_support/postern.ts";
import { ImapClient } from "./_imap_client.ts";

const USER = "idle";
const PASSWORD = "idle-password";

/** Per-session growth in bytes. */
export interface IdleMemoryFigures {
  readonly sessions: number;
  /** Whether the sessions logged in with a client certificate. */
  readonly certificates: boolean;
  readonly rssPerSession: number;
  readonly heapPerSession: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function settledMemory(file: string): Promise<{ rss: number; heapUsed: number }> {
  await sleep(1500);
  const m = lastMemory(file);
  if (m === null) throw new Error("The server's probe reported nothing");
  return m;
}

/** Opens `sessions` IDLE sessions against a fresh Postern and measures its growth. */
export async function benchIdleMemory(
  sessions: number,
  certificates = false,
): Promise<IdleMemoryFigures> {
  const dir = await Deno.makeTempDir({ prefix: "postern-idle-" });
  const file = join(dir, "probe.jsonl");
  Deno.env.set("POSTERN_STALL_PROBE", file);
  const postern = await startPosternProcess({
    users: [{ name: USER, password: PASSWORD }],
    clientAuth: certificates ? "optional" : "none",
    limitsYaml: `  max_connections_per_user: ${sessions + 50}\n` +
      `  max_connections_per_address: ${sessions + 50}`,
  });
  Deno.env.delete("POSTERN_STALL_PROBE");
  const files = certificates
    ? await issueClientCertificate(join(postern.dir, "certs"), USER)
    : null;
  const target = {
    port: postern.implicitPort,
    caPem: postern.caPem,
    ...(files
      ? {
        clientCertificate: {
          cert: await Deno.readTextFile(files.certificate),
          key: await Deno.readTextFile(files.key),
        },
      }
      : {}),
  };
  const open = async () => {
    if (!certificates) return await ImapClient.login(target, USER, PASSWORD);
    const c = await ImapClient.connect(target);
    await c.ok("AUTHENTICATE EXTERNAL =");
    return c;
  };
  const clients: ImapClient[] = [];
  try {
    for (let i = 0; i < 20; i++) {
      const c = await open();
      await c.ok("SELECT INBOX", false);
      await c.logout();
    }
    const before = await settledMemory(file);
    for (let i = 0; i < sessions; i += 50) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(50, sessions - i) }, async () => {
          const c = await open();
          await c.ok("SELECT INBOX", false);
          c.command("IDLE", false).catch(() => {});
          return c;
        }),
      );
      clients.push(...batch);
    }
    const after = await settledMemory(file);
    return {
      sessions,
      certificates,
      rssPerSession: (after.rss - before.rss) / sessions,
      heapPerSession: (after.heapUsed - before.heapUsed) / sessions,
    };
  } finally {
    for (const c of clients) c.close();
    await postern.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** Formats the figures. */
export function formatIdleMemory(f: IdleMemoryFigures): string {
  const how = f.certificates ? "certificate-authenticated" : "password-authenticated";
  return `${f.sessions} ${how} SELECTed IDLE sessions: RSS ${
    (f.rssPerSession / 1024).toFixed(1)
  } KiB ` +
    `and V8 heap ${(f.heapPerSession / 1024).toFixed(1)} KiB per session (target 64 KiB)`;
}

function flag(args: readonly string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

if (import.meta.main) {
  const sessions = Number(flag(Deno.args, "--sessions") ?? 2000);
  const certificates = Deno.args.includes("--certificates");
  console.log(formatIdleMemory(await benchIdleMemory(sessions, certificates)));
}
