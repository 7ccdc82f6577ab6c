/**
 * Bulk FETCH of one large message with curl, Postern against Dovecot in the same run: the
 * message (default 51.6 MB of 76-column text) is APPENDed once to each server, then curl
 * fetches it (`imaps://…/INBOX;UID=1`) R times per TLS 1.3 cipher order: AES-GCM offered first,
 * ChaCha20-Poly1305 first, and AES-128-GCM only (Postern picks ChaCha20 whenever it is offered).
 * Reported: the worst and best MB/s of the R fetches per server and order, the ratio of the
 * bests, Postern's CPU time (user + system) per fetch, which shared cores disturb less, and
 * the worst event-loop stall inside Postern during the fetches (the timer-drift probe of
 * server/serve/stall_probe.ts) next to that of the same probe alone in an idle process (the
 * machine's own noise). Figures are printed, never asserted.
 *
 * Usage: `deno run -A bench/bulk_bench.ts [--megabytes N] [--repeat R] [--no-dovecot]`.
 */
import {
  formatStall,
  settleProbes,
  type StallFigures,
  stallFigures,
  startStallProbes,
} from "./_stall_probes.ts";
import { join } from "node:path";
import { dovecotAvailable } from "../tests/_support/dovecot.ts";
import { startReferenceDovecot } from "./_dovecot.ts";
import { startPosternProcess } from "../tests/_support/postern.ts";
import { appendBytes, ImapClient, type ImapConnectOptions } from "./_imap_client.ts";

const USER = "bulk";
const PASSWORD = "bulk-password";

/** TLS 1.3 cipher orders the client offers. */
export const ORDERS = {
  "AES-GCM first": "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256",
  "ChaCha20 first": "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384",
  "AES-128-GCM only": "TLS_AES_128_GCM_SHA256",
} as const;
type Order = keyof typeof ORDERS;

/** One server's MB/s per cipher order: [best, worst]. */
export interface BulkFigures {
  readonly server: string;
  readonly rates: Readonly<Record<Order, readonly [number, number]>>;
  /** Server CPU seconds (user + system) per fetch, per order; NaN when not measured. */
  readonly cpuPerFetch: Readonly<Record<Order, number>>;
  /** The server's event-loop stalls during each order's fetches; null when not measured. */
  readonly stall: Readonly<Record<Order, StallFigures | null>>;
  /** The server's stalls while the message was APPENDed; null when not measured. */
  readonly upload: StallFigures | null;
}

/** A message of `bytes` octets: a few headers and 76-column text lines. */
export function bulkMessage(bytes: number): Uint8Array {
  const head = "From: a@example.org\r\nTo: bulk@example.org\r\nSubject: bulk\r\n\r\n";
  const out = new Uint8Array(bytes);
  const h = new TextEncoder().encode(head);
  out.set(h);
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  let col = 0;
  for (let i = h.length; i < bytes - 2; i++) {
    if (col === 76) {
      out[i++] = 0x0d;
      out[i] = 0x0a;
      col = 0;
      continue;
    }
    out[i] = alphabet.charCodeAt((i * 7 + (i >> 9)) & 63);
    col++;
  }
  out[bytes - 2] = 0x0d;
  out[bytes - 1] = 0x0a;
  return out;
}

/** APPENDs `message` in a session of its own; `beforeAppend` runs once it is logged in. */
async function load(
  target: ImapConnectOptions,
  message: Uint8Array,
  beforeAppend: () => Promise<void> = () => Promise.resolve(),
): Promise<void> {
  const c = await ImapClient.login(target, USER, PASSWORD);
  await beforeAppend();
  const [r] = await c.pipeline([appendBytes("INBOX", message)], false);
  if (r?.status !== "OK") throw new Error(`APPEND failed: ${r?.text}`);
  await c.logout();
}

async function curlFetch(port: number, caPath: string, ciphers: string): Promise<number> {
  const out = await new Deno.Command("curl", {
    args: [
      "-sS",
      "-o",
      "/dev/null",
      "-w",
      "%{size_download} %{time_total}",
      "--cacert",
      caPath,
      "--resolve",
      `localhost:${port}:127.0.0.1`,
      "--tlsv1.3",
      "--tls13-ciphers",
      ciphers,
      "-u",
      `${USER}:${PASSWORD}`,
      `imaps://localhost:${port}/INBOX;UID=1`,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`curl failed: ${new TextDecoder().decode(out.stderr)}`);
  const [size, seconds] = new TextDecoder().decode(out.stdout).split(" ").map(Number);
  return size! / 1e6 / seconds!;
}

async function measure(
  server: string,
  port: number,
  caPath: string,
  repeat: number,
  probes: { stallFile: string | null; idleFile: string },
  cpuSeconds: () => number = () => NaN,
  upload: StallFigures | null = null,
): Promise<BulkFigures> {
  const rates = {} as Record<Order, readonly [number, number]>;
  const cpuPerFetch = {} as Record<Order, number>;
  const stall = {} as Record<Order, StallFigures | null>;
  for (const order of Object.keys(ORDERS) as Order[]) {
    const r: number[] = [];
    const cpu = cpuSeconds();
    const from = Date.now();
    for (let i = 0; i < repeat; i++) r.push(await curlFetch(port, caPath, ORDERS[order]));
    const to = Date.now();
    cpuPerFetch[order] = (cpuSeconds() - cpu) / repeat;
    rates[order] = [Math.max(...r), Math.min(...r)];
    await settleProbes();
    const { stallFile, idleFile } = probes;
    stall[order] = stallFile === null ? null : stallFigures(stallFile, idleFile, from, to);
  }
  return { server, rates, cpuPerFetch, stall, upload };
}

/** Loads the message into each server and measures curl's fetches. */
export async function benchBulk(
  options: {
    megabytes: number;
    repeat: number;
    skipDovecot?: boolean;
    /** Postern's accept loops (`server.workers`, default 1). */
    workers?: number;
  },
): Promise<BulkFigures[]> {
  const workers = options.workers ?? 1;
  const message = bulkMessage(Math.round(options.megabytes * 1e6));
  const probes = await startStallProbes("postern-bulk-");
  const { stallFile, idleFile } = probes;
  Deno.env.set("POSTERN_STALL_PROBE", stallFile);
  const postern = await startPosternProcess({
    users: [{ name: USER, password: PASSWORD }],
    clientAuth: "none",
    limitsYaml: "  max_literal_size: 64MiB\n  max_message_size: 64MiB",
    workers,
  }).finally(() => Deno.env.delete("POSTERN_STALL_PROBE"));
  const out: BulkFigures[] = [];
  try {
    const caPath = join(postern.dir, "certs", "ca.pem");
    await Deno.writeTextFile(caPath, postern.caPem);
    // The upload's own stalls, apart: the probe's late tick must not land in the first fetches,
    // nor the server's start (its store's threads start then, 35-140 ms each on a busy machine)
    // or the connection's handshake and LOGIN in the upload's.
    let loadFrom = 0;
    await load({ port: postern.implicitPort, caPem: postern.caPem }, message, async () => {
      await settleProbes();
      loadFrom = Date.now();
    });
    await settleProbes();
    const upload = stallFigures(stallFile, idleFile, loadFrom, Date.now());
    out.push(
      await measure(
        workers === 1 ? "Postern" : `Postern (${workers}w)`,
        postern.implicitPort,
        caPath,
        options.repeat,
        { stallFile, idleFile },
        () => postern.cpuSeconds(),
        upload,
      ),
    );
    if (!options.skipDovecot && dovecotAvailable()) {
      const dovecot = await startReferenceDovecot(postern.dir, USER, PASSWORD);
      try {
        await load({ port: dovecot.port, caPem: postern.caPem }, message);
        out.push(
          await measure("Dovecot", dovecot.port, caPath, options.repeat, {
            stallFile: null,
            idleFile,
          }),
        );
      } finally {
        await dovecot.stop();
      }
    }
  } finally {
    await postern.stop();
    await probes.stop();
  }
  return out;
}

/** Formats the figures, with the ratio of Postern's best to Dovecot's best per order. */
export function formatBulk(figures: readonly BulkFigures[]): string {
  const rows = [
    `${"client order".padEnd(18)} ${figures.map((f) => f.server.padStart(22)).join("")}`,
  ];
  for (const order of Object.keys(ORDERS) as Order[]) {
    const cells = figures.map((f) => {
      const [best, worst] = f.rates[order];
      return `${worst.toFixed(0)}-${best.toFixed(0)} MB/s`.padStart(22);
    });
    const ratio = figures.length > 1
      ? `  ${(figures[0]!.rates[order][0] / figures[1]!.rates[order][0]).toFixed(2)}x`
      : "";
    const cpu = figures[0]!.cpuPerFetch[order];
    const cpuNote = Number.isNaN(cpu) ? "" : `  (Postern CPU ${(cpu * 1000).toFixed(0)} ms/fetch`;
    rows.push(`${order.padEnd(18)} ${cells.join("")}${ratio}${cpuNote}${cpuNote ? ")" : ""}`);
    const stall = figures[0]!.stall[order];
    if (stall) rows.push(`  ${figures[0]!.server}: ${formatStall(stall)}`);
  }
  const upload = figures[0]?.upload;
  if (upload) rows.push(`${figures[0]!.server} during the APPEND: ${formatStall(upload)}`);
  return rows.join("\n");
}

function flag(args: readonly string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

if (import.meta.main) {
  const megabytes = Number(flag(Deno.args, "--megabytes") ?? 51.6);
  const repeat = Number(flag(Deno.args, "--repeat") ?? 3);
  console.log(`Bulk FETCH of one ${megabytes} MB message with curl, ${repeat} fetches per order`);
  console.log(
    formatBulk(
      await benchBulk({ megabytes, repeat, skipDovecot: Deno.args.includes("--no-dovecot") }),
    ),
  );
}
