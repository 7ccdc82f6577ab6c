/**
 * What the directory check costs a TLS handshake: full handshakes per second with a client
 * certificate against a whole in-process Postern, without a directory (the reference, measured
 * in the same run), with the check answered from a warm cache, and with a cold cache (cache_ttl
 * 0s and on_error deny, so every handshake binds and searches slapd on a pooled connection).
 *
 * One handshake is a TLS client (node:tls by default, or Deno.connectTls) presenting the
 * certificate, then reading the IMAP greeting: the server sends it only after the directory
 * check has passed, so the check is inside the measured time. `parallel` clients connect at once (default one at a time).
 *
 *   deno run -A bench/directory_handshake_bench.ts [--quick]
 */
import type { Buffer } from "node:buffer";
import tls from "node:tls";
import {
  certificateChange,
  directoryYaml,
  reloadDirectory,
} from "../tests/_support/directory_e2e.ts";
import { startPostern } from "../tests/_support/postern.ts";
import { startSlapd } from "../tests/_support/slapd.ts";

export interface DirectoryHandshakeOptions {
  /** Handshakes per measurement. Default 200. */
  readonly handshakes?: number;
  /** Clients connecting at once. Default 1. */
  readonly parallel?: number;
  /**
   * The TLS client: Deno's node:tls (default) or Deno.connectTls. The latter waits about 40 ms
   * between its last handshake flight and the server's first answer on loopback (a stall on
   * the client side: Python and node:tls see the greeting within a few ms), which hides the
   * cost being measured.
   */
  readonly client?: HandshakeClient;
}

export type HandshakeClient = "node" | "deno";

export interface DirectoryHandshakeFigures {
  /** No directory configured: the reference, the mean of a run before and one after. */
  readonly withoutDirectory: number;
  /** Directory check on, answered from the cache. */
  readonly warmCache: number;
  /** Directory check on, every handshake asks slapd. */
  readonly coldCache: number;
  readonly handshakes: number;
  readonly parallel: number;
  readonly client: HandshakeClient;
}

/** Measures full handshakes per second with and without the directory check. */
export async function benchDirectoryHandshakes(
  options: DirectoryHandshakeOptions = {},
): Promise<DirectoryHandshakeFigures> {
  const handshakes = options.handshakes ?? 200;
  const parallel = options.parallel ?? 1;
  const kind = options.client ?? "node";
  const ldap = await startSlapd({ users: [{ uid: "alice", mail: "alice@localhost" }] });
  const work = await Deno.makeTempDir({ prefix: "postern-dirbench-" });
  try {
    const postern = await startPostern({});
    try {
      const alice = await postern.clientCertificate("alice");
      await ldap.modify(certificateChange(ldap.userDn("alice"), "add", alice.der));
      const client = {
        cert: await Deno.readTextFile(alice.certPath),
        key: await Deno.readTextFile(alice.keyPath),
      };
      const run = (n: number) =>
        handshakesPerSecond(postern.implicitPort, postern.caPem, client, n, parallel, kind);
      const warmup = Math.max(5, Math.floor(handshakes / 10));

      // A longer first warm-up lets the JIT settle before anything is measured.
      await run(Math.max(warmup, Math.floor(handshakes / 2)));
      const referenceFirst = await run(handshakes);

      const common = { recheckInterval: "0s", timeout: "5s" } as const;
      await reloadDirectory(
        postern,
        await directoryYaml(ldap, work, { ...common, cacheTtl: "1h" }),
      );
      await run(warmup);
      const warmCache = await run(handshakes);

      await reloadDirectory(
        postern,
        await directoryYaml(ldap, work, { ...common, cacheTtl: "0s", onError: "deny" }),
      );
      await run(warmup);
      const coldCache = await run(handshakes);

      // The reference again, so that drift over the run does not favour either side.
      await reloadDirectory(postern, "");
      await run(warmup);
      const withoutDirectory = (referenceFirst + await run(handshakes)) / 2;
      return { withoutDirectory, warmCache, coldCache, handshakes, parallel, client: kind };
    } finally {
      await postern.stop();
    }
  } finally {
    await ldap.stop();
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}

/** `count` handshakes over `parallel` clients, each waiting for the greeting; throws on a refusal. */
async function handshakesPerSecond(
  port: number,
  caPem: string,
  client: { readonly cert: string; readonly key: string },
  count: number,
  parallel: number,
  kind: HandshakeClient,
): Promise<number> {
  let started = 0;
  const worker = async () => {
    while (started < count) {
      started++;
      await (kind === "deno" ? denoHandshake : nodeHandshake)(port, caPem, client);
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: parallel }, worker));
  return count / ((performance.now() - t0) / 1000);
}

async function denoHandshake(
  port: number,
  caPem: string,
  client: { readonly cert: string; readonly key: string },
): Promise<void> {
  const conn = await Deno.connectTls({
    hostname: "127.0.0.1",
    port,
    caCerts: [caPem],
    cert: client.cert,
    key: client.key,
  });
  try {
    await conn.handshake();
    const buf = new Uint8Array(4096);
    const n = await conn.read(buf);
    if (n === null || buf[0] !== 0x2a) throw new Error("No IMAP greeting after the handshake");
  } finally {
    conn.close();
  }
}

function nodeHandshake(
  port: number,
  caPem: string,
  client: { readonly cert: string; readonly key: string },
): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: "127.0.0.1",
      port,
      servername: "localhost",
      ca: caPem,
      cert: client.cert,
      key: client.key,
    });
    socket.setNoDelay(true);
    socket.once("data", (data: Buffer) => {
      socket.destroy();
      if (data[0] === 0x2a) resolve();
      else reject(new Error("No IMAP greeting after the handshake"));
    });
    socket.once("error", (e: Error) => {
      socket.destroy();
      reject(e);
    });
    socket.once("end", () => reject(new Error("Closed before the greeting")));
  });
}

if (import.meta.main) {
  const quick = Deno.args.includes("--quick");
  const handshakes = quick ? 50 : 200;
  const runs: DirectoryHandshakeOptions[] = [
    { handshakes, parallel: 1, client: "node" },
    { handshakes, parallel: 4, client: "node" },
    { handshakes: handshakes / 2, parallel: 1, client: "deno" },
  ];
  for (const options of runs) {
    const f = await benchDirectoryHandshakes(options);
    const line = (name: string, value: number) =>
      console.log(
        `${name.padEnd(44)} ${value.toFixed(1).padStart(8)} hs/s ${
          (1000 / value).toFixed(1).padStart(7)
        } ms ${(value / f.withoutDirectory).toFixed(2).padStart(6)}x`,
      );
    console.log(
      `Full handshakes with a client certificate, then the greeting (${f.handshakes}, ` +
        `${f.parallel} at a time, ${f.client === "node" ? "node:tls" : "Deno.connectTls"})`,
    );
    line("reference: no directory", f.withoutDirectory);
    line("directory check, warm cache", f.warmCache);
    line("directory check, cold cache (cache_ttl 0s)", f.coldCache);
  }
}
