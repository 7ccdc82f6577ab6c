/**
 * `deno task bench`: every benchmark that compares Postern with a reference measured in the same
 * run. Figures are printed, never asserted. `--quick` shortens every section; `--only NAME`
 * runs one section, named by its `wants(NAME)` below.
 *
 * The per-primitive crypto comparison (noble vs node:crypto) is a `deno bench` file:
 * `deno bench -A bench/crypto_bench.ts`.
 */
import { makeOpensslPki } from "../tests/_support/openssl_pki.ts";
import { benchDirectoryHandshakes } from "./directory_handshake_bench.ts";
import { benchImap, formatResult } from "./imap_bench.ts";
import { benchLogins, formatLogins } from "./login_bench.ts";
import { benchScrypt, formatScrypt } from "./scrypt_bench.ts";
import { benchLmtp, formatLmtp } from "./lmtp_bench.ts";
import { benchMtls, formatMtls } from "./mtls_bench.ts";
import { benchParse } from "./parse_bench.ts";
import { benchPostgres, formatPostgres } from "./postgres_bench.ts";
import { benchTls } from "./tls_bench.ts";

const quick = Deno.args.includes("--quick");
const onlyIndex = Deno.args.indexOf("--only");
const only = onlyIndex >= 0 ? Deno.args[onlyIndex + 1] : undefined;
const wants = (name: string) => only === undefined || only === name;

function row(name: string, ours: number, reference: number, unit: string): string {
  return `${name.padEnd(36)} ${ours.toFixed(1).padStart(9)} ${unit.padEnd(5)} ${
    reference.toFixed(1).padStart(9)
  } ${unit.padEnd(5)} ${(ours / reference).toFixed(2).padStart(6)}x`;
}

console.log(`Postern benchmarks (${quick ? "quick" : "full"}), ${new Date().toISOString()}`);
const pki = await makeOpensslPki();
try {
  if (wants("tls")) {
    console.log("\n## TLS: Postern vs Deno.listenTls (rustls), same P-256 certificate and client");
    console.log(
      `${"".padEnd(36)} ${"Postern".padStart(15)} ${"rustls".padStart(15)} ${"ratio".padStart(7)}`,
    );
    const tls = await benchTls(
      pki,
      quick
        ? { handshakes: 100, megabytes: 16, seconds: 3 }
        : { handshakes: 500, megabytes: 64, seconds: 10 },
    );
    const hs = (name: string, pick: (f: typeof tls.ours) => number) =>
      console.log(row(name, pick(tls.ours), pick(tls.native), "hs/s"));
    hs("handshakes, openssl s_time", (f) => f.opensslHandshakesPerSecond);
    hs("handshakes, Deno.connectTls x16", (f) => f.handshakesPerSecond);
    // ECDSA signing in JavaScript dominates the P-256 figure; with Ed25519 the signature is native.
    const ed = await benchTls(pki, {
      handshakes: quick ? 100 : 500,
      megabytes: 1,
      seconds: quick ? 3 : 10,
    }, "ed25519");
    console.log(
      row(
        "handshakes, Ed25519 cert, s_time",
        ed.ours.opensslHandshakesPerSecond,
        ed.native.opensslHandshakesPerSecond,
        "hs/s",
      ),
    );
    console.log(
      row(
        "handshakes, Ed25519 cert, Deno x16",
        ed.ours.handshakesPerSecond,
        ed.native.handshakesPerSecond,
        "hs/s",
      ),
    );
    console.log(row("bulk echo, one way", tls.ours.bulkMBps, tls.native.bulkMBps, "MB/s"));
    const aes = await benchTls(
      pki,
      { handshakes: 20, megabytes: quick ? 16 : 64, seconds: 1 },
      "ec256",
      [
        "TLS_AES_128_GCM_SHA256",
      ],
    );
    console.log(
      row("bulk echo, Postern forced to AES-128", aes.ours.bulkMBps, aes.native.bulkMBps, "MB/s"),
    );
    console.log("Postern prefers ChaCha20-Poly1305 (fastest here); rustls picks AES-GCM.");
  }
  if (wants("mtls")) {
    console.log("\n## Client certificates (P-256), Postern");
    console.log(formatMtls(await benchMtls(pki, quick ? 100 : 300)));
  }
  if (wants("directory")) {
    console.log("\n## Directory check (slapd) during the handshake, Postern");
    const d = await benchDirectoryHandshakes({ handshakes: quick ? 50 : 200 });
    console.log(row("directory check, warm cache", d.warmCache, d.withoutDirectory, "hs/s"));
    console.log(row("directory check, cold cache", d.coldCache, d.withoutDirectory, "hs/s"));
    console.log("reference: the same handshakes with no directory configured");
  }
  if (wants("imap")) {
    console.log("\n## IMAP: Postern vs Dovecot");
    console.log(formatResult(await benchImap({ messages: quick ? 10_000 : 100_000 })));
  }
  if (wants("lmtp")) {
    console.log("\n## LMTP delivery: Postern vs Dovecot LMTP, 10 concurrent clients, durable");
    const clients = 10;
    const lmtp = await benchLmtp({ seconds: quick ? 3 : 10, clients, sizes: [1024, 100 * 1024] });
    console.log(formatLmtp(lmtp, clients));
  }
  if (wants("parse")) {
    console.log("\n## Parsers on hostile input, against a benign input of the same size");
    benchParse(quick);
  }
  if (wants("scrypt")) {
    console.log("\n## Password hashing: where scrypt runs (one check per core at a time)");
    console.log(formatScrypt(15, await benchScrypt(15, quick ? 8 : 16)));
  }
  if (wants("postgres")) {
    console.log("\n## Mail store: Postern on PostgreSQL vs Postern on SQLite, same IMAP workload");
    console.log(formatPostgres(await benchPostgres({ messages: quick ? 10_000 : 100_000 })));
  }
  if (wants("logins")) {
    console.log("\n## Login storm: Postern vs Dovecot (SHA512-CRYPT, long-lived login processes)");
    console.log(formatLogins(await benchLogins({ seconds: quick ? 5 : 20, clients: 20 })));
  }
} finally {
  await pki.remove();
}
