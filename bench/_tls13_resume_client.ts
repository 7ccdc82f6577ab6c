/**
 * The client side of bench/tls13_resumption_bench.ts, run in its own process so that its CPU
 * does not share the servers' event loop: `PORT MODE SECONDS CONCURRENCY`, MODE `full` or
 * `resumed`. Each connection completes a TLS 1.3 handshake with our client engine, echoes one
 * byte (which also brings the server's NewSessionTickets) and closes. In `resumed` mode each
 * connection offers a ticket from the previous ones, as a reconnecting client does; tickets are
 * used once, newest first (rustls keeps a bounded cache of single-use tickets). Prints JSON: connections/s and the share
 * that was resumed.
 */
import { defaultProvider } from "../protocol/crypto/mod.ts";
import { type ClientTicket, TlsClientConnection } from "../protocol/tls/client.ts";
import { parseCertificate } from "../protocol/x509/certificate.ts";

const [portArg, mode, secondsArg, concurrencyArg] = Deno.args;
const port = Number(portArg);
const seconds = Number(secondsArg ?? 5);
const concurrency = Number(concurrencyArg ?? 8);

async function connection(ticket: ClientTicket | undefined): Promise<TlsClientConnection> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const tls = new TlsClientConnection({
    provider: defaultProvider,
    verifyServer: (chain) => parseCertificate(chain[0]!).publicKeyInfo.key!,
    serverName: "localhost",
    ...(ticket ? { resumeWith: ticket } : {}),
  });
  const buf = new Uint8Array(32 * 1024);
  let sentProbe = false;
  try {
    for (let rounds = 0; rounds < 100; rounds++) {
      const out = tls.takeOutgoing();
      if (out.length > 0) await conn.write(out);
      if (tls.handshakeComplete && !sentProbe) {
        tls.send(new Uint8Array([120]));
        sentProbe = true;
        await conn.write(tls.takeOutgoing());
      }
      if (sentProbe && tls.takePlaintext().length > 0) break;
      if (tls.closed) throw new Error(JSON.stringify(tls.takeEvents()));
      const n = await conn.read(buf);
      if (n === null) throw new Error("Server closed");
      tls.receive(buf.subarray(0, n));
    }
    tls.close();
    await conn.write(tls.takeOutgoing()).catch(() => 0);
  } finally {
    conn.close();
  }
  return tls;
}

const pool: ClientTicket[] = [];
if (mode === "resumed") pool.push(...(await connection(undefined)).tickets);
let done = 0;
let resumed = 0;
const deadline = performance.now() + seconds * 1000;
const started = performance.now();
await Promise.all(Array.from({ length: concurrency }, async () => {
  while (performance.now() < deadline) {
    const ticket = mode === "resumed" ? pool.pop() : undefined;
    const tls = await connection(ticket);
    done++;
    if (tls.info().resumed) resumed++;
    if (mode === "resumed") pool.push(...tls.tickets);
  }
}));
const elapsed = (performance.now() - started) / 1000;
console.log(
  JSON.stringify({ rate: done / elapsed, resumedShare: done === 0 ? 0 : resumed / done }),
);
