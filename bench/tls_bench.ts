/**
 * TLS benchmark: full handshakes per second and bulk throughput through our listener and through
 * Deno.listenTls (rustls) in the same run, with the same client (Deno.connectTls) and the same
 * ECDSA P-256 certificate. Prints the figures and the ratios.
 */
import { runEcho } from "../server/connection/echo.ts";
import type { ByteChannel } from "../server/connection/channel.ts";
import { startTestServer, type TestServer } from "../tests/_support/test_server.ts";
import type { KeyType, OpensslPki } from "../tests/_support/openssl_pki.ts";
import type { CipherSuiteName } from "../protocol/tls/mod.ts";

export interface TlsFigures {
  /** Deno.connectTls, 16 at a time, in this process. */
  readonly handshakesPerSecond: number;
  /** openssl s_time in its own process. */
  readonly opensslHandshakesPerSecond: number;
  readonly bulkMBps: number;
}

/** Echo server on Deno's native TLS (rustls), the reference. */
export function startNativeEcho(certPem: string, keyPem: string): { port: number; close(): void } {
  const listener = Deno.listenTls({ hostname: "127.0.0.1", port: 0, cert: certPem, key: keyPem });
  (async () => {
    for await (const conn of listener) {
      const channel: ByteChannel = {
        bytesIn: 0,
        bytesOut: 0,
        async read() {
          const buf = new Uint8Array(17 * 1024);
          try {
            const n = await conn.read(buf);
            return n === null ? null : buf.subarray(0, n);
          } catch {
            return null;
          }
        },
        async write(data) {
          let off = 0;
          while (off < data.length) off += await conn.write(data.subarray(off));
        },
        close() {
          try {
            conn.close();
          } catch {
            // Closed.
          }
          return Promise.resolve();
        },
      };
      runEcho(channel).catch(() => {});
    }
  })().catch(() => {});
  return { port: (listener.addr as Deno.NetAddr).port, close: () => listener.close() };
}

/**
 * Completes `count` full handshakes, `concurrency` at a time, and returns handshakes per
 * second. Deno.connectTls cannot turn off Nagle, so a lone client waits on delayed ACKs; running
 * several at once measures the servers' CPU work rather than that timer, for both servers alike.
 */
export async function handshakes(
  port: number,
  caPem: string,
  count: number,
  client?: { cert: string; key: string },
  concurrency = 16,
): Promise<number> {
  let left = count;
  const worker = async () => {
    while (left-- > 0) {
      const conn = await Deno.connectTls({
        hostname: "127.0.0.1",
        port,
        caCerts: [caPem],
        ...(client ? { cert: client.cert, key: client.key } : {}),
      });
      await conn.handshake();
      conn.close();
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  return count / ((performance.now() - started) / 1000);
}

/**
 * Full handshakes per second measured by `openssl s_time -new` in its own process, so that the
 * client does not share the server's thread: connections counted over wall-clock time.
 */
export async function handshakesOpenssl(
  port: number,
  caPath: string,
  seconds: number,
  extraArgs: readonly string[] = ["-new"],
): Promise<number> {
  // s_time writes a byte per connection to its standard output: into a pipe read by this
  // process, each woke this process up, which cost the 2-core machine 10-25 % of its
  // handshakes, whatever the server. A file costs nothing to wake.
  const outFile = await Deno.makeTempFile({ prefix: "postern-s_time-" });
  try {
    const started = performance.now();
    await new Deno.Command("sh", {
      args: [
        "-c",
        'out="$1"; shift; exec openssl "$@" > "$out"',
        "s_time",
        outFile,
        "s_time",
        "-connect",
        `127.0.0.1:${port}`,
        ...extraArgs,
        "-time",
        String(seconds),
        "-CAfile",
        caPath,
      ],
      stdout: "null",
      stderr: "null",
    }).output();
    const wall = (performance.now() - started) / 1000;
    const match = /(\d+) connections in [\d.]+s/.exec(await Deno.readTextFile(outFile));
    if (!match) throw new Error("openssl s_time printed no connection count");
    return Number(match[1]) / wall;
  } finally {
    await Deno.remove(outFile).catch(() => {});
  }
}

/** Sends `megabytes` MiB through the echo service and reads them back; returns MB/s one way. */
export async function bulk(port: number, caPem: string, megabytes: number): Promise<number> {
  const conn = await Deno.connectTls({ hostname: "127.0.0.1", port, caCerts: [caPem] });
  await conn.handshake();
  const chunk = new Uint8Array(64 * 1024).fill(0x61);
  const total = megabytes * 1024 * 1024;
  const started = performance.now();
  const writer = (async () => {
    for (let sent = 0; sent < total; sent += chunk.length) {
      let off = 0;
      while (off < chunk.length) off += await conn.write(chunk.subarray(off));
    }
  })();
  const buf = new Uint8Array(64 * 1024);
  let received = 0;
  while (received < total) {
    const n = await conn.read(buf);
    if (n === null) throw new Error("Echo closed early");
    received += n;
  }
  await writer;
  const seconds = (performance.now() - started) / 1000;
  conn.close();
  return megabytes / seconds;
}

export async function benchTls(
  pki: OpensslPki,
  rounds: { handshakes: number; megabytes: number; seconds: number },
  keyType: KeyType = "ec256",
  cipherSuites?: readonly CipherSuiteName[],
): Promise<{ ours: TlsFigures; native: TlsFigures }> {
  const server = await pki.server(keyType);
  const ours: TestServer = await startTestServer({
    certPem: server.certPem,
    keyPem: server.keyPem,
    ...(cipherSuites ? { cipherSuites } : {}),
  });
  const native = startNativeEcho(server.certPem, server.keyPem);
  try {
    // Warm both paths (JIT, caches) before measuring.
    await handshakes(ours.port, pki.ca.certPem, 20);
    await handshakes(native.port, pki.ca.certPem, 20);
    const oursHs = await handshakes(ours.port, pki.ca.certPem, rounds.handshakes);
    const nativeHs = await handshakes(native.port, pki.ca.certPem, rounds.handshakes);
    const oursSTime = await handshakesOpenssl(ours.port, pki.ca.certPath, rounds.seconds);
    const nativeSTime = await handshakesOpenssl(native.port, pki.ca.certPath, rounds.seconds);
    await bulk(ours.port, pki.ca.certPem, 4);
    await bulk(native.port, pki.ca.certPem, 4);
    const oursBulk = await bulk(ours.port, pki.ca.certPem, rounds.megabytes);
    const nativeBulk = await bulk(native.port, pki.ca.certPem, rounds.megabytes);
    return {
      ours: {
        handshakesPerSecond: oursHs,
        opensslHandshakesPerSecond: oursSTime,
        bulkMBps: oursBulk,
      },
      native: {
        handshakesPerSecond: nativeHs,
        opensslHandshakesPerSecond: nativeSTime,
        bulkMBps: nativeBulk,
      },
    };
  } finally {
    native.close();
    await ours.close();
  }
}
