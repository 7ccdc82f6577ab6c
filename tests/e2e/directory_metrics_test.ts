/**
 * Directory metrics against a real slapd: lookups by result, cache hits, authentications by
 * mechanism and result, and revocations noticed live (the re-check) and at the handshake
 * (the certificate_revoked alert), as the /metrics exposition shows them; /readyz turns 503
 * when slapd goes away.
 */
import assert from "node:assert/strict";
import {
  certificateChange,
  directoryYaml,
  ImapLines,
  pythonImap,
} from "../_support/directory_e2e.ts";
import { startPostern } from "../_support/postern.ts";
import { startSlapd } from "../_support/slapd.ts";

/** The value of one sample line of the exposition, 0 when the series is absent. */
function sample(text: string, series: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

Deno.test("directory lookups, cache hits, authentications and revocations are counted", async () => {
  const ldap = await startSlapd({
    users: [{ uid: "alice", mail: "alice@localhost", password: "alice-secret" }],
  });
  const work = await Deno.makeTempDir({ prefix: "postern-dirmetrics-" });
  const postern = await startPostern({
    extraYaml: (await directoryYaml(ldap, work, { cacheTtl: "60s", recheckInterval: "1s" })) +
      "metrics: { listen: 127.0.0.1:0 }\n",
  });
  let session: ImapLines | null = null;
  try {
    const base = `http://127.0.0.1:${postern.handle.metricsAddress!.port}`;
    const scrape = async () => await (await fetch(`${base}/metrics`)).text();
    const port = postern.implicitPort;
    const ca = postern.caPath;
    const alice = await postern.clientCertificate("alice");
    await ldap.modify(certificateChange(ldap.userDn("alice"), "add", alice.der));

    const external = await pythonImap({
      port,
      ca,
      cert: alice.certPath,
      key: alice.keyPath,
      action: "external",
    });
    assert.equal(external.auth, "OK", JSON.stringify(external));
    const login = await pythonImap({
      port,
      ca,
      action: "login",
      user: "alice",
      password: "alice-secret",
    });
    assert.equal(login.auth, "OK", JSON.stringify(login));
    let text = await scrape();
    // The handshake asked the directory; AUTHENTICATE EXTERNAL was answered from the cache.
    assert.equal(
      sample(text, 'postern_directory_lookups_total{kind="certificate",result="ok"}'),
      1,
    );
    assert.ok(sample(text, "postern_directory_cache_hits_total") >= 1, text);
    assert.equal(sample(text, 'postern_directory_lookups_total{kind="password",result="ok"}'), 1);
    assert.equal(
      sample(text, 'postern_authentications_total{mechanism="external",result="ok"}'),
      1,
    );
    assert.equal(
      sample(text, 'postern_authentications_total{mechanism="password",result="ok"}'),
      1,
    );
    assert.equal(
      await fetch(`${base}/readyz`).then((r) => r.text()),
      "ready\n",
    );

    // A held session loses its certificate in the directory: the re-check ends it.
    session = await ImapLines.connect(port, postern.caPem, {
      certPem: await Deno.readTextFile(alice.certPath),
      keyPem: await Deno.readTextFile(alice.keyPath),
    });
    assert.match((await session.readLine()) ?? "", /^\* OK /);
    assert.match((await session.command("a1", "AUTHENTICATE EXTERNAL =")).at(-1) ?? "", /^a1 OK/);
    await ldap.modify(certificateChange(ldap.userDn("alice"), "delete", alice.der));
    let bye = false;
    for (let i = 0; i < 10 && !bye; i++) {
      const line = await session.readLine(3000);
      if (line === null) break;
      bye = line.startsWith("* BYE");
    }
    assert.ok(bye, "the revoked session got no BYE");
    text = await scrape();
    assert.equal(sample(text, 'postern_directory_revocations_total{point="live"}'), 1);

    // A new connection with the removed certificate is refused at the handshake.
    const refused = await pythonImap({
      port,
      ca,
      cert: alice.certPath,
      key: alice.keyPath,
      action: "external",
    });
    assert.match(refused.sslError ?? "", /CERTIFICATE_REVOKED/, JSON.stringify(refused));
    text = await scrape();
    assert.equal(sample(text, 'postern_directory_revocations_total{point="handshake"}'), 1);
    assert.equal(
      sample(text, 'postern_tls_alerts_sent_total{description="certificate_revoked"}'),
      1,
    );
    // The handshake's lookup found the certificate gone; the live revocation before it came
    // from the directory's push (content sync), which needs no lookup.
    assert.ok(
      sample(text, 'postern_directory_lookups_total{kind="certificate",result="not_in_entry"}') >=
        1,
      text,
    );
    assert.match(text, /^postern_tls_handshakes_total\{.*result="alert"\} 1$/m);

    // With slapd gone, a password login is counted as unavailable and /readyz says why.
    await ldap.kill();
    const down = await pythonImap({
      port,
      ca,
      action: "login",
      user: "alice",
      password: "alice-secret",
      source: "127.0.0.9",
    });
    assert.equal(down.auth, "NO", JSON.stringify(down));
    text = await scrape();
    assert.equal(
      sample(text, 'postern_authentications_total{mechanism="password",result="unavailable"}'),
      1,
    );
    const ready = await fetch(`${base}/readyz`);
    assert.equal(ready.status, 503);
    assert.match(await ready.text(), /^not ready: directory: /);
  } finally {
    session?.close();
    await postern.stop();
    await ldap.stop();
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
});
