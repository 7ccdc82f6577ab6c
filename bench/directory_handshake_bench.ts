/**
 * What the directory check costs a TLS handshake: full handshakes per second with a client
 * certificate against a whole in-process Postern, without a directory (the reference, measured
 * in the same run), with the check answered from a warm cache, and with a cold cache (cache_ttl
 * 0s and on_error deny, so every handshake binds and searches slapd on a pooled connection).
 *
 * One handshake is Deno.connectTls (rustls) presenting the certificate, then reading the IMAP
 * greeting: the server sends it only after the directory check has passed, so the check is
 * inside the measured time. Connections run one after another.
 *
 *   deno run -A bench/directory_handshake_bench.ts [--quick]
 */
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
}

export interface DirectoryHandshakeFigures {
  /** No directory configured: the reference. */
  readonly withoutDirectory: number;
  /** Directory check on, answered from the cache. */
  readonly warmCache: number;
  /** Directory check on, every handshake asks slapd. */
  readonly coldCache: number;
  readonly handshakes: number;
}

/** Measures full handshakes per second with and without the directory check. */
export async function benchDirectoryHandshakes(
  options: DirectoryHandshakeOptions = {},
): Promise<DirectoryHandshakeFigures> {
  const handshakes = options.handshakes ?? 200;
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
        handshakesPerSecond(postern.implicitPort, postern.caPem, client, n);
      const warmup = Math.max(5, Math.floor(handshakes / 10));

      await run(warmup);
      const withoutDirectory = await run(handshakes);

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
      return { withoutDirectory, warmCache, coldCache, handshakes };
    } finally {
      await postern.stop();
    }
  } finally {
    await ldap.stop();
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}

/** `count` sequential handshakes, each waiting for the greeting; throws on a refusal. */
async function handshakesPerSecond(
  port: number,
  caPem: string,
  client: { readonly cert: string; readonly key: string },
  count: number,
): Promise<number> {
  const buf = new Uint8Array(4096);
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    const conn = await Deno.connectTls({
      hostname: "127.0.0.1",
      port,
      caCerts: [caPem],
      cert: client.cert,
      key: client.key,
    });
    try {
      await conn.handshake();
      const n = await conn.read(buf);
      if (n === null || buf[0] !== 0x2a) throw new Error("No IMAP greeting after the handshake");
    } finally {
      conn.close();
    }
  }
  return count / ((performance.now() - started) / 1000);
}

if (import.meta.main) {
  const quick = Deno.args.includes("--quick");
  const f = await benchDirectoryHandshakes({ handshakes: quick ? 50 : 200 });
  const line = (name: string, value: number) =>
    console.log(
      `${name.padEnd(40)} ${value.toFixed(1).padStart(8)} hs/s ${
        (value / f.withoutDirectory).toFixed(2).padStart(6)
      }x`,
    );
  console.log(`Full handshakes with a client certificate (${f.handshakes} each, sequential)`);
  line("reference: no directory", f.withoutDirectory);
  line("directory check, warm cache", f.warmCache);
  line("directory check, cold cache (cache_ttl 0s)", f.coldCache);
}
