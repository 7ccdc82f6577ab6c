/**
 * TLS 1.2 handshakes per second through our listener and through Deno.listenTls (rustls) in the
 * same run, both forced to TLS 1.2 by the client (`openssl s_time -tls1_2`, in its own process):
 * full ECDHE handshakes (`-new`) and resumed sessions (`-reuse`), for a P-256 and an RSA-2048
 * server key. Deno.listenTls has no version setting; rustls speaks 1.2 to a 1.2-only client.
 *
 * A lone s_time client waits on delayed ACKs between its writes in a full 1.2 handshake (about
 * 20 hs/s against rustls, which is a timer, not work), so `clients` s_time processes run at once
 * and their rates are added: that measures the servers' CPU work.
 */
import { SessionCache, TicketKeys } from "../protocol/tls/mod.ts";
import { defaultProvider } from "../protocol/crypto/mod.ts";
import type { KeyType, OpensslPki } from "../tests/_support/openssl_pki.ts";
import { startTestServer } from "../tests/_support/test_server.ts";
import { handshakesOpenssl, startNativeEcho } from "./tls_bench.ts";

export interface Tls12Figures {
  readonly full: { readonly ours: number; readonly native: number };
  readonly resumed: { readonly ours: number; readonly native: number };
}

/** The summed rate of `clients` concurrent `openssl s_time` runs. */
async function sTime(
  port: number,
  ca: string,
  seconds: number,
  args: string[],
  clients: number,
): Promise<number> {
  const rates = await Promise.all(
    Array.from({ length: clients }, () => handshakesOpenssl(port, ca, seconds, args)),
  );
  return rates.reduce((a, b) => a + b, 0);
}

export async function benchTls12(
  pki: OpensslPki,
  seconds: number,
  keyType: KeyType = "ec256",
  clients = 16,
): Promise<Tls12Figures> {
  const leaf = await pki.server(keyType);
  const ours = await startTestServer({
    certPem: leaf.certPem,
    keyPem: leaf.keyPem,
    minVersion: "1.2",
    ticketKeys: new TicketKeys({ provider: defaultProvider }),
    sessionCache: new SessionCache(),
  });
  const native = startNativeEcho(leaf.certPem, leaf.keyPem);
  const ca = pki.ca.certPath;
  try {
    await handshakesOpenssl(ours.port, ca, 1, ["-new", "-tls1_2"]);
    await handshakesOpenssl(native.port, ca, 1, ["-new", "-tls1_2"]);
    const full = {
      ours: await sTime(ours.port, ca, seconds, ["-new", "-tls1_2"], clients),
      native: await sTime(native.port, ca, seconds, ["-new", "-tls1_2"], clients),
    };
    const resumed = {
      ours: await sTime(ours.port, ca, seconds, ["-reuse", "-tls1_2"], clients),
      native: await sTime(native.port, ca, seconds, ["-reuse", "-tls1_2"], clients),
    };
    return { full, resumed };
  } finally {
    native.close();
    await ours.close();
  }
}
