/**
 * Connection latency, Postern against Dovecot (long-lived login processes) in the same run: one
 * client at a time connects over TLS 1.3, reads the greeting, sends `a NOOP` and reads its reply.
 * Two TLS stacks as clients: Deno.connectTls (rustls; Nagle's algorithm on, as it is by
 * default) and Deno.startTls over a connection with Nagle's algorithm off and Python's ssl (OpenSSL). Printed per server and client: the medians and
 * 90th percentiles of the time to the greeting and to the NOOP's reply. Figures are printed,
 * never asserted.
 *
 * A rustls client writes its change_cipher_spec and its Finished apart; with Nagle's algorithm
 * on, the Finished waits until the first is acknowledged. A server that sends nothing
 * meanwhile leaves it to its delayed ACK, 40 ms on Linux (`protocol/tls/server.ts`, `halfRtt`).
 *
 *     deno task bench --only connect        (or: deno run -A bench/connect_bench.ts [--rounds N])
 */
import { join } from "node:path";
import { dovecotAvailable } from "../tests/_support/dovecot.ts";
import { startReferenceDovecot } from "./_dovecot.ts";
import { connectTlsNoDelay } from "../tests/_support/imap_clients.ts";
import { startPosternProcess } from "../tests/_support/postern.ts";

/** Milliseconds from the connect to the greeting and to the NOOP's reply, per round. */
interface Times {
  readonly greeting: number[];
  readonly reply: number[];
}

/** One row: a server and a client's figures. */
export interface ConnectFigures {
  readonly server: string;
  readonly client: string;
  readonly times: Times;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

async function readUntil(conn: Deno.Conn, buf: Uint8Array, text: string, end: string) {
  while (!text.includes(end)) {
    const n = await conn.read(buf);
    if (n === null) throw new Error(`Connection closed before "${end.trim()}"`);
    text += decoder.decode(buf.subarray(0, n));
  }
  return text;
}

/** `rounds` sequential Deno.connectTls connections (after a few unmeasured ones). */
async function denoClient(port: number, caPem: string, rounds: number, noDelay: boolean) {
  const times: Times = { greeting: [], reply: [] };
  const buf = new Uint8Array(4096);
  for (let i = -5; i < rounds; i++) {
    const t0 = performance.now();
    const conn = noDelay
      ? await connectTlsNoDelay(port, caPem)
      : await Deno.connectTls({ hostname: "127.0.0.1", port, caCerts: [caPem] });
    try {
      await readUntil(conn, buf, "", "\r\n");
      const t1 = performance.now();
      await conn.write(encoder.encode("a NOOP\r\n"));
      await readUntil(conn, buf, "", "a OK");
      const t2 = performance.now();
      if (i >= 0) {
        times.greeting.push(t1 - t0);
        times.reply.push(t2 - t0);
      }
    } finally {
      conn.close();
    }
  }
  return times;
}

const PYTHON = `
import socket, ssl, sys, time
port, cafile, rounds = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
ctx = ssl.create_default_context(cafile=cafile)
ctx.minimum_version = ssl.TLSVersion.TLSv1_3
def until(s, buf, end):
    while end not in buf:
        data = s.recv(4096)
        if not data:
            raise SystemExit("closed")
        buf += data
    return buf
for i in range(-5, rounds):
    t0 = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port)) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            until(s, b"", b"\\r\\n")
            t1 = time.perf_counter()
            s.sendall(b"a NOOP\\r\\n")
            until(s, b"", b"a OK")
            t2 = time.perf_counter()
    if i >= 0:
        print((t1 - t0) * 1000, (t2 - t0) * 1000)
`;

/** `rounds` sequential connections made by Python's ssl (OpenSSL). */
async function pythonClient(port: number, caPath: string, rounds: number): Promise<Times> {
  const out = await new Deno.Command("python3", {
    args: ["-c", PYTHON, String(port), caPath, String(rounds)],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`python3: ${decoder.decode(out.stderr).slice(-300)}`);
  const times: Times = { greeting: [], reply: [] };
  for (const line of decoder.decode(out.stdout).trim().split("\n")) {
    const [g, r] = line.split(" ").map(Number);
    times.greeting.push(g!);
    times.reply.push(r!);
  }
  return times;
}

/** Every client against `port`. */
async function clients(
  server: string,
  port: number,
  caPem: string,
  caPath: string,
  rounds: number,
) {
  return [
    {
      server,
      client: "Deno.connectTls (rustls)",
      times: await denoClient(port, caPem, rounds, false),
    },
    {
      server,
      client: "Deno.startTls, no Nagle",
      times: await denoClient(port, caPem, rounds, true),
    },
    { server, client: "Python ssl (OpenSSL)", times: await pythonClient(port, caPath, rounds) },
  ];
}

/** Postern (one accept loop), then Dovecot when installed, with the same clients. */
export async function benchConnect(rounds: number): Promise<ConnectFigures[]> {
  const postern = await startPosternProcess({ clientAuth: "none" });
  try {
    const caPath = join(postern.dir, "connect-ca.pem");
    await Deno.writeTextFile(caPath, postern.caPem);
    const figures = await clients("Postern", postern.implicitPort, postern.caPem, caPath, rounds);
    if (dovecotAvailable()) {
      const dovecot = await startReferenceDovecot(postern.dir, "bench", "bench");
      try {
        figures.push(...await clients("Dovecot", dovecot.port, postern.caPem, caPath, rounds));
      } finally {
        await dovecot.stop();
      }
    }
    return figures;
  } finally {
    await postern.stop();
  }
}

function quantile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

export function formatConnect(figures: readonly ConnectFigures[]): string {
  const rows = [
    `${"server".padEnd(9)}${"client".padEnd(28)}${"greeting median/p90".padStart(22)}${
      "NOOP reply median/p90".padStart(24)
    }`,
  ];
  for (const f of figures) {
    const cell = (xs: number[]) =>
      `${quantile(xs, 0.5).toFixed(2)} / ${quantile(xs, 0.9).toFixed(2)} ms`;
    rows.push(
      `${f.server.padEnd(9)}${f.client.padEnd(28)}${cell(f.times.greeting).padStart(22)}${
        cell(f.times.reply).padStart(24)
      }`,
    );
  }
  return rows.join("\n");
}

if (import.meta.main) {
  const i = Deno.args.indexOf("--rounds");
  const rounds = i >= 0 ? Number(Deno.args[i + 1]) : 200;
  console.log(formatConnect(await benchConnect(rounds)));
}
