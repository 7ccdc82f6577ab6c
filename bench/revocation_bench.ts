/**
 * What keeping open certificate sessions revocable costs the directory, per mode: LDAP
 * operations per minute for N open sessions (1,000 by default) with polling (the reference:
 * what every server that re-checks does) and with content sync (RFC 4533, slapd's syncprov),
 * plus the operations one pushed change costs and how long a removed certificate takes to
 * reach its session.
 *
 * Operations are counted by Postern's LDAP clients (binds, StartTLS, searches); slapd's own
 * access log (`-d 256`), read once slapd has exited and flushed it, cross-checks the total on
 * the connections bound as Postern's service account. The sessions are the revocation machinery's
 * view of open sessions (certificate identity plus a revoke callback); their TLS and IMAP
 * connections cost the directory nothing and are left out.
 *
 *   deno run -A bench/revocation_bench.ts [--quick]
 */
import { defaultProvider } from "../protocol/crypto/mod.ts";
import { parseCertificate } from "../protocol/x509/certificate.ts";
import { certificateIdentity } from "../protocol/x509/client_verifier.ts";
import type { CertificateIdentity } from "../protocol/x509/identity.ts";
import { issueCertificate } from "../protocol/x509/writer.ts";
import { Directory, type RecheckSession, resolveDirectoryConfig } from "../server/directory/mod.ts";
import type { DirectoryConfigInput } from "../server/directory/config.ts";
import { SessionRevoker } from "../server/directory/revoker.ts";
import { certificateChange } from "../tests/_support/directory_e2e.ts";
import { type Slapd, startSlapd } from "../tests/_support/slapd.ts";

export interface RevocationBenchOptions {
  readonly sessions: number;
  /** How long polling is watched. */
  readonly windowMs: number;
  /** How long an idle content-sync connection is watched (its liveness probe runs every 30 s). */
  readonly idleWindowMs: number;
  /** Re-check interval used while measuring polling (rounds are counted, then scaled). */
  readonly pollIntervalMs: number;
  /** Certificates removed one after another to time the push. */
  readonly removals: number;
}

export interface RevocationBenchResult {
  readonly sessions: number;
  /** LDAP operations of one polling round (one search per distinct certificate, plus binds). */
  readonly opsPerPollRound: number;
  /** Operations per minute with content sync live and no changes. */
  readonly pushIdleOpsPerMinute: number;
  /** Operations that one pushed change to an entry with a session costs. */
  readonly opsPerPushedChange: number;
  /** Operations to set the push up (connect, bind, root DSE, search), once per (re)connect. */
  readonly pushSetupOps: number;
  /** ldapmodify done → session revoked, per removal (ms). */
  readonly pushLatenciesMs: readonly number[];
  readonly pollWindowRounds: number;
  /** How long one polling round takes (ms); a round starts an interval after the last ended. */
  readonly pollRoundMs: number;
  /** Every operation Postern's clients counted, and what slapd logged for the service account. */
  readonly countedOps: number;
  readonly slapdLoggedOps: number;
}

const SERVICE_BIND = /conn=(\d+) op=\d+ BIND dn="cn=postern,/;
/** slapd logs some requests on two lines (`SRCH base=…`, `SRCH attr=…`): count (conn, op). */
const REQUEST = /conn=(\d+) op=(\d+) (?:BIND|SRCH|EXT|UNBIND|ABANDON|MOD|ADD|DEL|MODRDN|CMP) /;

/** Counts requests made on connections that bound as the service account. */
async function countServiceOps(ldap: Slapd): Promise<number> {
  const text = await Deno.readTextFile(ldap.logPath!);
  const service = new Set<string>();
  const ops = new Set<string>();
  for (const line of text.split("\n")) {
    const bind = SERVICE_BIND.exec(line);
    if (bind) service.add(bind[1]!);
    const m = REQUEST.exec(line);
    if (m && service.has(m[1]!)) ops.add(`${m[1]}:${m[2]}`);
  }
  return ops.size;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export async function benchRevocation(
  options: RevocationBenchOptions,
): Promise<RevocationBenchResult> {
  const provider = defaultProvider;
  const caKey = provider.generatePrivateKey("P-256");
  const now = Date.now();
  const ca = issueCertificate({
    subject: "CN=Revocation bench CA",
    key: caKey,
    notBefore: new Date(now - 3_600_000),
    notAfter: new Date(now + 86_400_000),
    isCa: true,
  }, provider);
  const users: { uid: string; der: Uint8Array; identity: CertificateIdentity }[] = [];
  for (let i = 0; i < options.sessions; i++) {
    const uid = `user${i}`;
    const der = issueCertificate({
      subject: `CN=${uid}`,
      issuer: { certificate: ca, key: caKey },
      key: provider.generatePrivateKey("P-256"),
      notBefore: new Date(now - 3_600_000),
      notAfter: new Date(now + 86_400_000),
      extKeyUsage: ["clientAuth"],
      sanEmail: [`${uid}@example.org`],
    }, provider);
    users.push({ uid, der, identity: certificateIdentity(parseCertificate(der), provider) });
  }
  const ldap = await startSlapd({
    users: users.map((u) => ({ uid: u.uid, mail: `${u.uid}@example.org`, certificates: [u.der] })),
    accessLog: true,
  });
  const input = (over: Partial<DirectoryConfigInput>) =>
    resolveDirectoryConfig({
      url: ldap.url,
      bindDn: ldap.serviceDn,
      bindPassword: ldap.servicePassword,
      baseDn: ldap.baseDn,
      ...over,
    });
  /** Sessions as the revoker sees them; `revoked` records when each was ended. */
  const revokedAt = new Map<string, number>();
  const sessions: RecheckSession[] = users.map((u) => ({
    identity: u.identity,
    revoke: () => {
      if (!revokedAt.has(u.uid)) revokedAt.set(u.uid, performance.now());
    },
  }));
  let live = [...sessions];
  let listed = 0;
  const open = () => {
    listed++;
    return live;
  };
  try {
    // Polling: the re-check as it runs today, every pollIntervalMs.
    const poll = new Directory(input({ sync: "poll", recheckIntervalMs: options.pollIntervalMs }));
    for (const u of users) await poll.checkCertificate(u.identity);
    const pollRevoker = new SessionRevoker(poll, open);
    const roundStart = performance.now();
    await poll.recheckNow(open());
    const pollRoundMs = performance.now() - roundStart;
    const before = poll.stats.operations;
    listed = 0;
    pollRevoker.start();
    await sleep(options.windowMs);
    // Stopping waits for a round in progress, so every round counted is complete.
    await pollRevoker.stop();
    const rounds = listed;
    const pollOps = poll.stats.operations - before;
    let counted = poll.stats.operations;
    await poll.close();

    // Content sync: idle cost, cost per pushed change, time to revoke.
    const push = new Directory(input({ sync: "auto" }));
    for (const u of users) await push.checkCertificate(u.identity);
    const pushRevoker = new SessionRevoker(push, open);
    const pushOps = () => push.stats.operations + pushRevoker.status.watcher.operations;
    const beforeSetup = pushOps();
    pushRevoker.start();
    for (let i = 0; i < 200 && !pushRevoker.status.watcher.live; i++) await sleep(25);
    if (!pushRevoker.status.watcher.live) throw new Error("Content sync did not become live");
    await sleep(500);
    const beforeIdle = pushOps();
    const setupOps = beforeIdle - beforeSetup;
    await sleep(options.idleWindowMs);
    const idleOps = pushOps() - beforeIdle;

    // Changes that keep the certificate (a description edit): each costs a re-check.
    const changes = 10;
    const beforeChanges = pushOps();
    for (let i = 0; i < changes; i++) {
      await ldap.modify(
        `dn: ${
          ldap.userDn(`user${i}`)
        }\nchangetype: modify\nreplace: description\ndescription: ${i}\n`,
      );
    }
    await sleep(500);
    const changeOps = pushOps() - beforeChanges;

    const latencies: number[] = [];
    for (let i = 0; i < options.removals; i++) {
      const u = users[users.length - 1 - i]!;
      // From before ldapmodify starts: the figure includes its own process start-up.
      const done = performance.now();
      await ldap.modify(certificateChange(ldap.userDn(u.uid), "delete", u.der));
      for (let w = 0; w < 200 && !revokedAt.has(u.uid); w++) await sleep(5);
      const at = revokedAt.get(u.uid);
      latencies.push(at === undefined ? NaN : Math.max(0, at - done));
      live = live.filter((s) => s.identity !== u.identity);
    }
    await pushRevoker.stop();
    counted += pushOps();
    await push.close();
    // slapd writes its log through stdio buffers: read it once slapd has exited.
    await ldap.kill();
    await sleep(200);
    const logged = await countServiceOps(ldap);
    return {
      countedOps: counted,
      pollRoundMs,
      slapdLoggedOps: logged,
      sessions: options.sessions,
      opsPerPollRound: rounds === 0 ? NaN : pollOps / rounds,
      pollWindowRounds: rounds,
      pushIdleOpsPerMinute: idleOps * 60_000 / options.idleWindowMs,
      opsPerPushedChange: changeOps / changes,
      pushSetupOps: setupOps,
      pushLatenciesMs: latencies,
    };
  } finally {
    await ldap.stop();
  }
}

/** The result as a table: operations per minute per mode, polling as the reference. */
export function formatRevocation(r: RevocationBenchResult): string {
  const perMinute = (intervalS: number) =>
    r.opsPerPollRound * 60_000 / (intervalS * 1000 + r.pollRoundMs);
  const lat = [...r.pushLatenciesMs].sort((a, b) => a - b);
  const median = lat[Math.floor(lat.length / 2)] ?? NaN;
  const lines = [
    `${r.sessions} open certificate sessions, slapd on 127.0.0.1 (ops counted by our LDAP clients)`,
    `${"mode".padEnd(44)} ${"LDAP ops/min".padStart(14)}`,
    `${"poll, recheck_interval 60s (reference)".padEnd(44)} ${
      perMinute(60).toFixed(0).padStart(14)
    }`,
    `${"poll, recheck_interval 1s".padEnd(44)} ${perMinute(1).toFixed(0).padStart(14)}`,
    `${"content_sync, no changes".padEnd(44)} ${
      r.pushIdleOpsPerMinute.toFixed(0).padStart(14)
    }  (a liveness probe every 30 s)`,
    `${"persistent_search".padEnd(44)} ${"n/a".padStart(14)}  (slapd has no psearch)`,
    `one poll round: ${r.opsPerPollRound.toFixed(0)} ops in ${r.pollRoundMs.toFixed(0)} ms ` +
    `(${r.pollWindowRounds} rounds counted); the next round starts an interval after it ends`,
    `content_sync: ${r.pushSetupOps} ops per (re)connect, ` +
    `${r.opsPerPushedChange.toFixed(1)} ops per pushed change to an entry with a session`,
    `removed certificate → session revoked (content_sync): median ${median.toFixed(1)} ms, ` +
    `max ${(lat.at(-1) ?? NaN).toFixed(1)} ms over ${lat.length} (from ldapmodify's start, ` +
    `its own run included); polling: up to the interval`,
    `cross-check: Postern counted ${r.countedOps} ops in all, slapd logged ${r.slapdLoggedOps} ` +
    `on the service account's connections`,
  ];
  return lines.join("\n");
}

if (import.meta.main) {
  const quick = Deno.args.includes("--quick");
  console.log(
    formatRevocation(
      await benchRevocation(
        quick
          ? { sessions: 200, windowMs: 3000, idleWindowMs: 3000, pollIntervalMs: 1000, removals: 5 }
          : {
            sessions: 1000,
            windowMs: 10_000,
            idleWindowMs: 60_000,
            pollIntervalMs: 2000,
            removals: 20,
          },
      ),
    ),
  );
}
