/**
 * Directory check throughput against a local slapd: warm cache, cold cache (a connection, bind
 * and search per check), cold with StartTLS, and password logins. The reference, measured in
 * the same run, is a bare ldapts search on one connection that stays bound: the floor of what
 * a lookup costs on the wire.
 *
 *   deno run -A bench/directory_bench.ts
 */
import { Client, EqualityFilter } from "ldapts";
import { Directory, resolveDirectoryConfig } from "../server/directory/mod.ts";
import type { DirectoryConfigInput } from "../server/directory/mod.ts";
import { startSlapd } from "../tests/_support/slapd.ts";
import { TestCa } from "../tests/server/directory/_certs.ts";

const ca = await TestCa.create();
const cert = await ca.issue({ cn: "alice", uid: "alice", email: "alice@example.org" });
const ldap = await startSlapd({
  users: [{
    uid: "alice",
    mail: "alice@example.org",
    password: "alice-secret",
    certificates: [cert.der],
  }],
  tls: true,
});

interface Row {
  readonly name: string;
  readonly perSecond: number;
  readonly n: number;
}

async function measure(name: string, n: number, parallel: number, op: () => Promise<unknown>) {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (next < n) {
      next++;
      await op();
    }
  }));
  const seconds = (performance.now() - t0) / 1000;
  return { name, n, perSecond: n / seconds };
}

function directory(over: Partial<DirectoryConfigInput> = {}, poolSize?: number): Directory {
  return new Directory(
    resolveDirectoryConfig({
      url: ldap.url,
      bindDn: ldap.serviceDn,
      bindPassword: ldap.servicePassword,
      baseDn: ldap.baseDn,
      recheckIntervalMs: 0,
      ...over,
    }),
    poolSize === undefined ? {} : { poolSize },
  );
}

async function mustAccept(d: Directory): Promise<void> {
  const v = await d.checkCertificate(cert.identity);
  if (!v.ok) throw new Error(`Check refused: ${v.reason} ${v.detail}`);
}

const rows: Row[] = [];
try {
  const reference = new Client({ url: ldap.url });
  await reference.bind(ldap.serviceDn, ldap.servicePassword);
  try {
    rows.push(
      await measure(
        "reference: ldapts search on one bound connection",
        1000,
        1,
        () =>
          reference.search(ldap.baseDn, {
            filter: new EqualityFilter({ attribute: "mail", value: "alice@example.org" }),
            attributes: ["uid", "userCertificate;binary"],
            explicitBufferAttributes: ["userCertificate;binary"],
          }),
      ),
    );
  } finally {
    await reference.unbind();
  }

  const warm = directory();
  await mustAccept(warm);
  rows.push(await measure("warm cache", 100_000, 1, () => mustAccept(warm)));

  const cold = directory({ cacheTtlMs: 0 });
  rows.push(await measure("cold cache, pooled connection", 1000, 1, () => mustAccept(cold)));
  const cold4 = directory({ cacheTtlMs: 0, maxConcurrency: 4 });
  rows.push(
    await measure("cold cache, pooled, 8 callers, 4 in flight", 2000, 8, () => mustAccept(cold4)),
  );
  const fresh = directory({ cacheTtlMs: 0 }, 0);
  rows.push(await measure("cold cache, connection per lookup", 300, 1, () => mustAccept(fresh)));

  const tlsConfig = { cacheTtlMs: 0, starttls: true, ca: ldap.caPem ?? "" };
  const tls = directory(tlsConfig);
  rows.push(await measure("cold cache, StartTLS, pooled", 1000, 1, () => mustAccept(tls)));
  const tlsFresh = directory(tlsConfig, 0);
  rows.push(
    await measure("cold cache, StartTLS, connection per lookup", 50, 1, () => mustAccept(tlsFresh)),
  );
  const ldaps = directory({ cacheTtlMs: 0, url: ldap.ldapsUrl ?? "", ca: ldap.caPem ?? "" });
  rows.push(await measure("cold cache, ldaps://, pooled", 1000, 1, () => mustAccept(ldaps)));
  const dirs = [warm, cold, cold4, fresh, tls, tlsFresh, ldaps];

  rows.push(
    await measure("verifyPassword, sequential", 300, 1, async () => {
      const v = await cold.verifyPassword("alice", "alice-secret");
      if (!v.ok) throw new Error(`Password refused: ${v.reason}`);
    }),
  );
  await Promise.all(dirs.map((d) => d.close()));
} finally {
  await ldap.stop();
  await ca.remove();
}

const ref = rows[0]?.perSecond ?? 1;
console.log(`Directory check throughput (slapd on 127.0.0.1, ${Deno.build.os})`);
for (const r of rows) {
  const rate = r.perSecond >= 1000
    ? `${(r.perSecond / 1000).toFixed(1)}k/s`
    : `${r.perSecond.toFixed(0)}/s`;
  console.log(
    `${r.name.padEnd(52)} ${rate.padStart(10)}  ${(r.perSecond / ref).toFixed(2)}x reference` +
      `  (n=${r.n})`,
  );
}
