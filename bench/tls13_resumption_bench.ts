/**
 * TLS 1.3 handshakes per second, full and resumed (RFC 8446 PSK tickets, psk_dhe_ke), through
 * our listener and through Deno.listenTls (rustls) in the same run. The client is our own
 * engine in a separate process (bench/_tls13_resume_client.ts), `concurrency` connections at
 * a time, because `openssl s_time -reuse` never resumes a TLS 1.3 session (it reads nothing,
 * so it never sees a NewSessionTicket). A resumption skips the certificate and the signature
 * but still does an x25519 exchange. The same client serves both servers, so its cost is in
 * both figures.
 */
import { TicketKeys, TicketUses } from "../protocol/tls/mod.ts";
import { defaultProvider } from "../protocol/crypto/mod.ts";
import type { OpensslPki } from "../tests/_support/openssl_pki.ts";
import { startTestServer } from "../tests/_support/test_server.ts";
import { startNativeEcho } from "./tls_bench.ts";

export interface Rate {
  /** Handshakes per second. */
  readonly rate: number;
  /** The share of connections that were resumed (1 in resumed mode if all went well). */
  readonly resumedShare: number;
}

export interface Tls13ResumptionFigures {
  readonly full: { readonly ours: Rate; readonly native: Rate };
  readonly resumed: { readonly ours: Rate; readonly native: Rate };
}

async function clientRun(
  port: number,
  mode: "full" | "resumed",
  seconds: number,
  concurrency: number,
): Promise<Rate> {
  const script = new URL("./_tls13_resume_client.ts", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script, String(port), mode, String(seconds), String(concurrency)],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  if (out.code !== 0) throw new Error(new TextDecoder().decode(out.stderr).slice(-800));
  return JSON.parse(text) as Rate;
}

export async function benchTls13Resumption(
  pki: OpensslPki,
  seconds: number,
  concurrency = 8,
): Promise<Tls13ResumptionFigures> {
  const leaf = await pki.server("ec256");
  const ours = await startTestServer({
    certPem: leaf.certPem + pki.ca.certPem,
    keyPem: leaf.keyPem,
    ticketKeys: new TicketKeys({ provider: defaultProvider }),
    ticketUses: new TicketUses(),
  });
  const native = startNativeEcho(leaf.certPem + pki.ca.certPem, leaf.keyPem);
  try {
    await clientRun(ours.port, "full", 1, 2);
    await clientRun(native.port, "full", 1, 2);
    const full = {
      ours: await clientRun(ours.port, "full", seconds, concurrency),
      native: await clientRun(native.port, "full", seconds, concurrency),
    };
    const resumed = {
      ours: await clientRun(ours.port, "resumed", seconds, concurrency),
      native: await clientRun(native.port, "resumed", seconds, concurrency),
    };
    return { full, resumed };
  } finally {
    native.close();
    await ours.close();
  }
}
