/**
 * `deno task bench`: every benchmark that compares Postern with a reference measured in the same
 * run. Figures are printed, never asserted. `--quick` shortens every section; `--only NAME`
 * runs one section, named by its `wants(NAME)` below; `--workers 1,2` runs the handshakes, mix,
 * hostile, bulk and reads sections once per count of Postern's accept loops (`server.workers`, default
 * 1).
 * `--attackers-nice N` sets the hostile section's attackers' nice value (default 10; 0: the
 * server's priority); `--no-resume` has its honest client make a full handshake every round.
 *
 * The per-primitive crypto comparison (noble vs node:crypto) is a `deno bench` file:
 * `deno bench -A bench/crypto_bench.ts`.
 */
import { dbSizeFigures } from "./db_size_bench.ts";
import { makeOpensslPki } from "../tests/_support/openssl_pki.ts";
import { benchDirectoryHandshakes } from "./directory_handshake_bench.ts";
import { attackersNiceArg, benchHostile, formatHostile } from "./hostile_bench.ts";
import { benchImap, formatResult } from "./imap_bench.ts";
import { benchLogins, formatLogins } from "./login_bench.ts";
import { benchMix, formatMix } from "./mix_bench.ts";
import { benchBulk, formatBulk } from "./bulk_bench.ts";
import { benchHandshakes, formatHandshakes } from "./handshake_bench.ts";
import { benchHandshakeCpu } from "./handshake_cpu_bench.ts";
import { benchConnect, formatConnect } from "./connect_bench.ts";
import { benchIdleMemory, formatIdleMemory } from "./idle_memory_bench.ts";
import { benchGroupCommit, formatGroupCommit } from "./group_commit_bench.ts";
import { benchScrypt, formatScrypt } from "./scrypt_bench.ts";
import { benchSort, formatSort } from "./sort_bench.ts";
import { benchLmtp, formatLmtp } from "./lmtp_bench.ts";
import { benchImapState, formatState } from "./imap_state_bench.ts";
import { benchReads, formatReads } from "./reads_bench.ts";
import { benchMetrics, type Paired } from "./metrics_bench.ts";
import { benchMtls, formatMtls } from "./mtls_bench.ts";
import { benchParse } from "./parse_bench.ts";
import { benchRevocation, formatRevocation } from "./revocation_bench.ts";
import { benchPostgres, formatPostgres } from "./postgres_bench.ts";
import { benchNodes, formatNodes } from "./nodes_bench.ts";
import { benchLargeMessages, formatLargeMessages } from "./large_message_bench.ts";
import { benchTls } from "./tls_bench.ts";
import { benchTls12 } from "./tls12_bench.ts";
import { benchTls13Resumption } from "./tls13_resumption_bench.ts";

const quick = Deno.args.includes("--quick");
const onlyIndex = Deno.args.indexOf("--only");
const only = onlyIndex >= 0 ? Deno.args[onlyIndex + 1] : undefined;
const wants = (name: string) => only === undefined || only === name;
const workersIndex = Deno.args.indexOf("--workers");
/** Postern's accept loops for the sections that take them: `--workers 1,2` runs both. */
const workerCounts = workersIndex >= 0
  ? (Deno.args[workersIndex + 1] ?? "1").split(",").map(Number).filter((n) => n >= 1)
  : [1];

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
  if (wants("tls12")) {
    console.log(
      "\n## TLS 1.2: Postern vs Deno.listenTls (rustls), 16 openssl s_time -tls1_2 at once",
    );
    console.log(
      `${"".padEnd(36)} ${"Postern".padStart(15)} ${"rustls".padStart(15)} ${"ratio".padStart(7)}`,
    );
    for (const key of ["ec256", "rsa2048"] as const) {
      const f = await benchTls12(pki, quick ? 3 : 10, key);
      const name = key === "ec256" ? "P-256" : "RSA-2048";
      console.log(row(`1.2 full, ${name}, s_time -new`, f.full.ours, f.full.native, "hs/s"));
      console.log(
        row(`1.2 resumed, ${name}, s_time -reuse`, f.resumed.ours, f.resumed.native, "hs/s"),
      );
    }
  }
  if (wants("tls13")) {
    console.log(
      "\n## TLS 1.3 full vs resumed: Postern vs Deno.listenTls (rustls), 8 engine clients at once",
    );
    console.log(
      `${"".padEnd(36)} ${"Postern".padStart(15)} ${"rustls".padStart(15)} ${"ratio".padStart(7)}`,
    );
    const f = await benchTls13Resumption(pki, quick ? 3 : 10);
    console.log(row("1.3 full, P-256", f.full.ours.rate, f.full.native.rate, "hs/s"));
    console.log(
      row("1.3 resumed (psk_dhe_ke)", f.resumed.ours.rate, f.resumed.native.rate, "hs/s"),
    );
    const share = (r: { resumedShare: number }) => `${Math.round(r.resumedShare * 100)}%`;
    console.log(
      `resumed share: Postern ${share(f.resumed.ours)}, rustls ${share(f.resumed.native)}`,
    );
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
  if (wants("revocation")) {
    console.log("\n## Revocation of open certificate sessions: LDAP cost per mode");
    const r = await benchRevocation(
      quick
        ? { sessions: 200, windowMs: 3000, idleWindowMs: 3000, pollIntervalMs: 1000, removals: 5 }
        : {
          sessions: 1000,
          windowMs: 10_000,
          idleWindowMs: 60_000,
          pollIntervalMs: 2000,
          removals: 20,
        },
    );
    console.log(formatRevocation(r));
  }
  if (wants("imap")) {
    console.log("\n## IMAP: Postern vs Dovecot");
    console.log(formatResult(await benchImap({ messages: quick ? 10_000 : 100_000 })));
  }
  if (wants("sort")) {
    console.log("\n## SORT and THREAD: Postern vs Dovecot (mdbox), same corpus");
    console.log(formatSort(await benchSort(quick ? 10_000 : 100_000)));
  }
  if (wants("lmtp")) {
    console.log("\n## LMTP delivery: Postern vs Dovecot LMTP, 10 concurrent clients, durable");
    const clients = 10;
    const lmtp = await benchLmtp({ seconds: quick ? 3 : 10, clients, sizes: [1024, 100 * 1024] });
    console.log(formatLmtp(lmtp, clients));
  }
  if (wants("metrics")) {
    console.log(
      "\n## Metrics: Postern with metrics and admin counters vs metrics off",
    );
    console.log(
      `${"".padEnd(36)} ${"on".padStart(15)} ${"off".padStart(15)} ${"ratio".padStart(7)}`,
    );
    const m = await benchMetrics({
      sliceMs: quick ? 1000 : 1500,
      pairs: quick ? 5 : 15,
      clients: 20,
    });
    const paired = (name: string, f: Paired, unit: string) => {
      console.log(
        `${row(name, f.on, f.off, unit).slice(0, -8)} ${f.ratio.toFixed(2).padStart(6)}x`,
      );
      console.log(row(`  server CPU per item`, f.cpuUsOn, f.cpuUsOff, "µs"));
    };
    paired("handshakes, Deno.connectTls x8", m.handshakes, "hs/s");
    paired("IMAP mix, 20 clients", m.mix, "cmd/s");
    console.log(
      `rates: medians of ${quick ? 5 : 15} alternating slice pairs, ratio the median of paired ` +
        `ratios; CPU: the server process's user+system time over all slices (10 ms ticks)`,
    );
    const share = (us: number, of: number) =>
      `${us.toFixed(2)} µs (${(100 * us / of).toFixed(2)} % of ${of.toFixed(0)} µs)`;
    console.log(
      `metric hooks alone: per handshake ${share(m.hooks.handshakeUs, m.handshakes.cpuUsOff)}, ` +
        `per IMAP command ${share(m.hooks.commandUs, m.mix.cpuUsOff)} of server CPU`,
    );
    console.log(
      `one scrape of /metrics (${(m.scrapeBytes / 1024).toFixed(1)} KiB): ` +
        `${m.scrapeCpuMs.toFixed(2)} ms of server CPU, i.e. ` +
        `${(m.scrapeCpuMs / 15 / 10).toFixed(3)} % of a core at a 15 s scrape interval`,
    );
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
  if (wants("nodes")) {
    console.log(
      "\n## IMAP mix, 20 clients: one node vs two nodes on one PostgreSQL (SQLite = 1.00x)",
    );
    console.log(formatNodes(await benchNodes({ clients: 20, seconds: quick ? 5 : 15 })));
  }
  if (wants("large")) {
    console.log("\n## Large messages: append and getRaw, PostgreSQL bytea vs SQLite");
    console.log(formatLargeMessages(await benchLargeMessages()));
  }
  if (wants("logins")) {
    console.log("\n## Login storm: Postern vs Dovecot (SHA512-CRYPT, long-lived login processes)");
    console.log(formatLogins(await benchLogins({ seconds: quick ? 5 : 20, clients: 20 })));
  }
  if (wants("hostile")) {
    console.log("\n## Hostile load: honest client's worst latency, with and without the attack");
    for (const workers of workerCounts) {
      if (workerCounts.length > 1) console.log(`Postern with ${workers} accept loop(s):`);
      const size = quick ? { connections: 300, seconds: 8 } : { connections: 1000, seconds: 20 };
      console.log(
        formatHostile(
          await benchHostile({
            ...size,
            workers,
            attackersNice: attackersNiceArg(),
            resume: !Deno.args.includes("--no-resume"),
          }),
        ),
      );
    }
  }
  if (wants("handshakes")) {
    console.log("\n## TLS 1.3 handshakes, 4 s_time clients: Postern vs Dovecot vs Deno.listenTls");
    for (const workers of workerCounts) {
      console.log(formatHandshakes(await benchHandshakes(4, quick ? 3 : 10, workers)));
    }
  }
  if (wants("connect")) {
    console.log(
      "\n## Connection latency, TLS 1.3, one client at a time: connect to greeting, to a NOOP reply",
    );
    console.log(formatConnect(await benchConnect(quick ? 50 : 200)));
  }
  if (wants("hscpu")) {
    console.log("\n## Server CPU per TLS 1.3 handshake, in memory, and per primitive");
    console.log(await benchHandshakeCpu(quick ? 100 : 300));
  }
  if (wants("idle")) {
    console.log("\n## Memory of SELECTed IDLE sessions, Postern");
    console.log(formatIdleMemory(await benchIdleMemory(quick ? 500 : 2000)));
    console.log(formatIdleMemory(await benchIdleMemory(quick ? 500 : 2000, true)));
  }
  if (wants("bulk")) {
    console.log("\n## Bulk FETCH of a 51.6 MB message with curl, Postern vs Dovecot");
    for (const workers of workerCounts) {
      console.log(
        formatBulk(await benchBulk({ megabytes: 51.6, repeat: quick ? 2 : 5, workers })),
      );
    }
  }
  if (wants("commit")) {
    console.log("\n## Durable commits: SQLite syncing inside COMMIT vs group commit, 20 writers");
    console.log(formatGroupCommit(await benchGroupCommit(20, quick ? 2 : 5)));
  }
  if (wants("mix")) {
    const seconds = quick ? 5 : 15;
    console.log(`\n## Mixed load: 20 clients x ${seconds} s, Postern vs Dovecot, durable writes`);
    console.log(formatMix(await benchMix({ clients: 20, seconds, workers: workerCounts })));
  }
  if (wants("reads")) {
    const messages = quick ? 10_000 : 100_000;
    console.log(`\n## Single reads on ${messages} messages: Postern vs Dovecot (mdbox)`);
    for (const workers of workerCounts) {
      console.log(
        formatReads(await benchReads({ messages, rounds: quick ? 15 : 11, restarts: 5, workers })),
      );
    }
  }
  if (wants("dbsize")) {
    const messages = quick ? 2_000 : 10_000;
    console.log(`\n## SQLite store size against the raw mail, ${messages} messages`);
    await dbSizeFigures(messages);
  }
  if (wants("state")) {
    const seconds = quick ? 5 : 20;
    console.log(`\n## IMAP state checker: 20 clients x ${seconds} s, Postern vs Dovecot`);
    console.log(formatState(await benchImapState({ clients: 20, seconds })));
  }
} finally {
  await pki.remove();
}
