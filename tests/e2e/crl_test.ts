/**
 * CRLs end to end (`tls.crl`, `tls.crl_policy`): a whole Postern with certificate logins to
 * local accounts, CRLs issued by its CA with `openssl ca -gencrl`, and real clients (OpenSSL
 * s_client, Python imaplib, Deno.connectTls for held sessions). A listed serial gets
 * certificate_revoked in the handshake and ends open sessions when the CRL is loaded (reload or
 * a change of the file on disk); a CRL without it lets the certificate in again; the hard
 * policy refuses certificates whose issuer's CRL is out of date.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ImapLines, pythonImap, runTool } from "../_support/directory_e2e.ts";
import { opensslCrl } from "../_support/openssl_pki.ts";
import { startPostern } from "../_support/postern.ts";
import { parseConfig } from "../../server/config/mod.ts";

const steps = { sanitizeOps: false, sanitizeResources: false } as const;

function assertRevoked(r: { sslError?: string }): void {
  assert.match(r.sslError ?? "", /CERTIFICATE_REVOKED/, JSON.stringify(r));
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

Deno.test("CRLs from openssl ca revoke certificates in the handshake and in open sessions", async (t) => {
  const postern = await startPostern({ users: [{ name: "alice" }, { name: "bob" }] });
  try {
    const port = postern.implicitPort;
    const ca = { certPath: postern.caPath, keyPath: join(postern.certsDir, "ca.key") };
    const issuer = { ...ca, certPem: postern.caPem, keyPem: "" };
    const [alice, bob] = await Promise.all([
      postern.clientCertificate("alice"),
      postern.clientCertificate("bob"),
    ]);
    const crlPath = join(postern.dir, "crl.pem");
    const configPath = join(postern.dir, "config.yaml");
    const baseConfig = await Deno.readTextFile(configPath);
    /** Reloads (as SIGHUP does) with these lines added to `tls:`. */
    const reloadTls = async (lines: string) => {
      const text = baseConfig.replace(
        "  handshake_timeout: 5s\n",
        `  handshake_timeout: 5s\n${lines}\n`,
      );
      await Deno.writeTextFile(configPath, text);
      await postern.handle.reload(parseConfig(text, configPath));
    };
    const external = (c: { certPath: string; keyPath: string }) =>
      pythonImap({
        port,
        ca: postern.caPath,
        cert: c.certPath,
        key: c.keyPath,
        action: "external",
      });
    const openSession = async (c: { certPath: string; keyPath: string }) => {
      const session = await ImapLines.connect(port, postern.caPem, {
        certPem: await Deno.readTextFile(c.certPath),
        keyPem: await Deno.readTextFile(c.keyPath),
      });
      assert.match((await session.readLine()) ?? "", /^\* OK /);
      const auth = await session.command("a1", "AUTHENTICATE EXTERNAL =");
      assert.match(auth.at(-1) ?? "", /^a1 OK/, auth.join(" | "));
      return session;
    };
    const sClient = (c: { certPath: string; keyPath: string }) =>
      runTool("openssl", [
        "s_client",
        "-connect",
        `127.0.0.1:${port}`,
        "-cert",
        c.certPath,
        "-key",
        c.keyPath,
        "-CAfile",
        postern.caPath,
        "-quiet",
      ]);

    await t.step({
      name: "a listed serial gets certificate_revoked and its open session BYE on reload; " +
        "others are accepted; a reload with a CRL without the serial accepts it again",
      ...steps,
      fn: async () => {
        const [aliceSession, bobSession] = [await openSession(alice), await openSession(bob)];
        try {
          await Deno.writeTextFile(crlPath, await opensslCrl(issuer, [alice.certPath]));
          await reloadTls(`  crl: [${crlPath}]`);
          const bye = await aliceSession.readLine(3000);
          assert.match(bye ?? "", /^\* BYE .*revoked/i);
          const noop = await bobSession.command("b2", "NOOP");
          assert.match(noop.at(-1) ?? "", /^b2 OK/);
        } finally {
          aliceSession.close();
          bobSession.close();
        }
        const [refused, python, accepted] = await Promise.all([
          sClient(alice),
          external(alice),
          external(bob),
        ]);
        assert.notEqual(refused.code, 0);
        assert.match(refused.stderr, /alert certificate revoked/);
        assert.match(python.sslError ?? "", /CERTIFICATE_REVOKED/, JSON.stringify(python));
        assert.equal(accepted.auth, "OK", JSON.stringify(accepted));

        // A reload with a newer CRL that no longer lists alice lets her in again.
        const cleared = join(postern.dir, "cleared.pem");
        await Deno.writeTextFile(cleared, await opensslCrl(issuer, []));
        await reloadTls(`  crl: [${cleared}]`);
        assert.equal((await external(alice)).auth, "OK");
        await reloadTls(`  crl: [${crlPath}]`);
        assertRevoked(await external(alice));
      },
    });

    await t.step({
      name: "a CRL changed on disk is picked up without a reload: without the serial the " +
        "certificate gets in again, with another serial that session ends",
      ...steps,
      fn: async () => {
        const next = await opensslCrl(issuer, []);
        // Write beside and rename into place, as a CRL updater does.
        await Deno.writeTextFile(`${crlPath}.new`, next);
        await Deno.rename(`${crlPath}.new`, crlPath);
        let result = await external(alice);
        for (let i = 0; i < 20 && result.auth !== "OK"; i++) {
          await sleep(250);
          result = await external(alice);
        }
        assert.equal(result.auth, "OK", JSON.stringify(result));

        // And a CRL that lists bob, dropped in place, ends his open session the same way.
        const bobSession = await openSession(bob);
        try {
          await Deno.writeTextFile(`${crlPath}.new`, await opensslCrl(issuer, [bob.certPath]));
          await Deno.rename(`${crlPath}.new`, crlPath);
          assert.match((await bobSession.readLine(5000)) ?? "", /^\* BYE .*revoked/i);
        } finally {
          bobSession.close();
        }
        await Deno.writeTextFile(crlPath, next);
      },
    });

    await t.step({
      name: "the hard policy refuses certificates whose issuer's CRL has expired; soft accepts",
      ...steps,
      fn: async () => {
        await Deno.writeTextFile(crlPath, await opensslCrl(issuer, [], { seconds: 1 }));
        await reloadTls(`  crl: [${crlPath}]\n  crl_policy: hard`);
        // The CRL's nextUpdate is a second after its thisUpdate.
        await sleep(1500);
        const [hard, s] = await Promise.all([external(bob), sClient(bob)]);
        assert.match(hard.sslError ?? "", /CERTIFICATE_UNKNOWN/, JSON.stringify(hard));
        assert.match(s.stderr, /alert certificate unknown/);
        await reloadTls(`  crl: [${crlPath}]\n  crl_policy: soft`);
        assert.equal((await external(bob)).auth, "OK");
      },
    });
  } finally {
    await postern.stop();
  }
});
