/**
 * The directory check end to end: a whole Postern in-process, a real OpenLDAP slapd, and real
 * clients (Python imaplib, curl, OpenSSL s_client, Deno.connectTls for held sessions). A client
 * certificate is accepted only while the user's entry holds it (`userCertificate;binary`);
 * removing it there revokes it for new connections (certificate_revoked alert) and, at the next
 * re-check, for open sessions (`* BYE`); with slapd's syncprov overlay the change is pushed
 * (RFC 4533) and ends the sessions at once even with a 1 h re-check, also across a slapd
 * restart, and without syncprov polling takes over. Also: AUTHENTICATE EXTERNAL over implicit
 * TLS and STARTTLS, LDAP binds for LOGIN and PLAIN with their per-address back-off, ldaps:// and
 * StartTLS to slapd with CA verification, filter injection through certificate fields and user
 * names, fail-closed behaviour when slapd is down or silent, on_error cached, and PREAUTH.
 *
 * One slapd and one server are shared by the steps, which run in order; the server is reloaded
 * with other `directory:` sections where a step needs one. cache_ttl is 1s and recheck_interval
 * 1s unless a step says otherwise, so a change in the directory shows within about a second: a
 * longer cache would keep accepting a removed certificate on new connections until it expires
 * (that is what the cache is for). Password failures come from source addresses of their own
 * (127.0.x.y) so that the back-off they cause does not spill into other steps.
 */
import assert from "node:assert/strict";
import {
  certificateChange,
  directoryYaml,
  ImapLines,
  issueRawClientCertificate,
  pythonImap,
  pythonImapAll,
  pythonImapGroups,
  type PythonImapResult,
  reloadDirectory,
  runTool,
} from "../_support/directory_e2e.ts";
import { startPostern } from "../_support/postern.ts";
import { startSlapd } from "../_support/slapd.ts";
import { setupLogging } from "../../server/log.ts";

const RECHECK_MS = 1000;
const CACHE_TTL_MS = 1000;

/** The TLS alert names as Python's ssl module prints them. */
const PY_ALERT = {
  certificate_revoked: "SSLV3_ALERT_CERTIFICATE_REVOKED",
  access_denied: "TLSV1_ALERT_ACCESS_DENIED",
  internal_error: "TLSV1_ALERT_INTERNAL_ERROR",
} as const;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Reads until `* BYE` and then the end of the stream; false if either does not come. */
async function awaitBye(session: ImapLines, withinMs = RECHECK_MS * 3): Promise<boolean> {
  for (let i = 0; i < 10; i++) {
    const line = await session.readLine(withinMs);
    if (line === null) return false;
    if (line.startsWith("* BYE")) return (await session.readLine(2000)) === null;
  }
  return false;
}

function assertAccepted(r: PythonImapResult): void {
  assert.equal(r.sslError, undefined, `refused: ${JSON.stringify(r)}`);
  assert.equal(r.error, undefined, `failed: ${JSON.stringify(r)}`);
  assert.equal(r.auth ?? "OK", "OK", JSON.stringify(r));
  assert.ok(r.list?.some((l) => l.endsWith(" INBOX")), `no INBOX in ${JSON.stringify(r.list)}`);
}

function assertRefused(r: PythonImapResult, alert: keyof typeof PY_ALERT): void {
  assert.equal(r.auth, undefined, `got as far as authentication: ${JSON.stringify(r)}`);
  assert.match(r.sslError ?? "", new RegExp(PY_ALERT[alert]), JSON.stringify(r));
}

const steps = { sanitizeOps: false, sanitizeResources: false } as const;

Deno.test("the directory check works end to end with a real slapd and real clients", async (t) => {
  const ldap = await startSlapd({
    users: [
      { uid: "alice", mail: "alice@localhost", password: "alice-secret" },
      { uid: "bob", mail: "bob@localhost" },
      // Two entries share one address: a certificate with it is ambiguous.
      { uid: "twin1", mail: "twins@localhost" },
      { uid: "twin2", mail: "twins@localhost" },
    ],
    tls: true,
  });
  const work = await Deno.makeTempDir({ prefix: "postern-dire2e-" });
  const plain = await directoryYaml(ldap, work);
  const postern = await startPostern({ extraYaml: plain });
  const preauthServer: { stop(): Promise<void> }[] = [];
  try {
    const port = postern.implicitPort;
    const ca = postern.caPath;
    const alice = await postern.clientCertificate("alice");
    await ldap.modify(certificateChange(ldap.userDn("alice"), "add", alice.der));
    const aliceKeys = { cert: alice.certPath, key: alice.keyPath };
    const external = () => pythonImap({ port, ca, ...aliceKeys, action: "external" });
    const aliceLogin = {
      port,
      ca,
      action: "login",
      user: "alice",
      password: "alice-secret",
    } as const;
    const alicePems = {
      certPem: await Deno.readTextFile(alice.certPath),
      keyPem: await Deno.readTextFile(alice.keyPath),
    };
    /** A session logged in with alice's certificate, held open by the test. */
    const openSession = async (): Promise<ImapLines> => {
      const session = await ImapLines.connect(port, postern.caPem, alicePems);
      try {
        assert.match((await session.readLine()) ?? "", /^\* OK /);
        const auth = await session.command("a1", "AUTHENTICATE EXTERNAL =");
        assert.match(auth.at(-1) ?? "", /^a1 OK/, auth.join(" | "));
        return session;
      } catch (e) {
        session.close();
        throw e;
      }
    };

    await t.step({
      name: "imaplib logs in with AUTHENTICATE EXTERNAL over implicit TLS and STARTTLS, " +
        "offered only with a verified certificate",
      ...steps,
      fn: async () => {
        const [anonymous, implicit, starttls] = await pythonImapAll([
          { port, ca, action: "greet" },
          { port, ca, ...aliceKeys, action: "external" },
          { port: postern.starttlsPort, ca, ...aliceKeys, starttls: true, action: "external" },
        ]);
        assert.ok(anonymous!.capabilities?.includes("AUTH=PLAIN"), JSON.stringify(anonymous));
        assert.ok(!anonymous!.capabilities?.includes("AUTH=EXTERNAL"), JSON.stringify(anonymous));
        for (const r of [implicit!, starttls!]) {
          assert.ok(r.capabilities?.includes("AUTH=EXTERNAL"), JSON.stringify(r));
          assertAccepted(r);
          assert.equal(r.state, "AUTH");
        }
        assert.ok(starttls!.plainCapabilities?.includes("LOGINDISABLED"), JSON.stringify(starttls));
        assert.ok(
          !starttls!.plainCapabilities?.includes("AUTH=EXTERNAL"),
          JSON.stringify(starttls),
        );
      },
    });

    await t.step({
      name: "curl logs in with AUTH=EXTERNAL and lists the mailboxes",
      ...steps,
      fn: async () => {
        const tls = ["-sS", "--cert", alice.certPath, "--key", alice.keyPath, "--cacert", ca];
        // curl reads the mechanism from the URL's user part or --login-options; a
        // `/;AUTH=EXTERNAL` path is ignored and curl falls back to PLAIN.
        const forms = [
          [`imaps://alice;AUTH=EXTERNAL@127.0.0.1:${port}/`],
          ["--login-options", "AUTH=EXTERNAL", "-u", "alice:", `imaps://127.0.0.1:${port}/`],
          ["--login-options", "AUTH=EXTERNAL", `imaps://127.0.0.1:${port}/`],
        ];
        for (const form of forms) {
          const r = await runTool("curl", [...tls, ...form]);
          assert.equal(r.code, 0, `${form.join(" ")}: ${r.stderr}`);
          assert.match(r.stdout, /^\* LIST \(.*\) "\/" INBOX\r?$/m, form.join(" "));
        }
        // A certificate never authorises acting as another user (authzid bob).
        const other = await runTool("curl", [
          ...tls,
          `imaps://bob;AUTH=EXTERNAL@127.0.0.1:${port}/`,
        ]);
        assert.equal(other.code, 67, other.stderr);
        assert.match(other.stderr, /Login denied/);
      },
    });

    for (const transport of ["ldaps", "starttls"] as const) {
      await t.step({
        name: `${transport} to slapd verifies its certificate against the configured CA`,
        ...steps,
        fn: async () => {
          try {
            await reloadDirectory(postern, await directoryYaml(ldap, work, { transport }));
            const results = await pythonImapAll([
              { port, ca, ...aliceKeys, action: "external" },
              aliceLogin,
            ]);
            for (const r of results) assertAccepted(r);
            // Postern's own dev CA did not issue slapd's certificate.
            await reloadDirectory(
              postern,
              await directoryYaml(ldap, work, { transport, caPath: postern.caPath }),
            );
            assertRefused(await external(), "internal_error");
          } finally {
            await reloadDirectory(postern, plain);
          }
        },
      });
    }

    await t.step({
      name: "LOGIN and PLAIN bind to the directory: the right password is OK, a wrong one NO",
      ...steps,
      fn: async () => {
        // Each failure comes from an address of its own, so that it reaches the directory
        // rather than the server's per-address back-off.
        let nextSource = 0;
        const login = (user: string, password: string) =>
          ({
            port,
            ca,
            action: "login",
            user,
            password,
            source: `127.0.1.${++nextSource}`,
          }) as const;
        const curl = (user: string, source: string) =>
          runTool("curl", [
            "-sS",
            "--interface",
            source,
            "--cacert",
            ca,
            "-u",
            user,
            `imaps://127.0.0.1:${port}/`,
          ]);
        const [[right], curlRight] = await Promise.all([
          pythonImapAll([aliceLogin]),
          // curl logs in with AUTHENTICATE PLAIN.
          curl("alice:alice-secret", "127.0.0.1"),
        ]);
        const [failures, curlWrong] = await Promise.all([
          pythonImapAll([
            login("alice", "wrong-secret"),
            login("bob", "anything"),
            // Unescaped, (uid=al*) would find alice's entry and the bind would succeed.
            // imaplib sends the user name as given: quote it, as `*` is no atom character.
            login(`"al*"`, "alice-secret"),
            login(`"alice)(uid=*"`, "alice-secret"),
            // An empty password would be an unauthenticated bind that slapd accepts for any DN.
            login("alice", ""),
          ]),
          curl("alice:wrong-secret", "127.0.2.1"),
        ]);
        assertAccepted(right!);
        assert.equal(curlRight.code, 0, curlRight.stderr);
        assert.match(curlRight.stdout, /^\* LIST \(.*\) "\/" INBOX\r?$/m);
        assert.equal(curlWrong.code, 67, curlWrong.stderr);
        for (const r of failures) {
          assert.equal(r.auth, "NO", JSON.stringify(r));
          assert.match(r.authError ?? "", /AUTHENTICATIONFAILED/);
          assert.equal(r.state, "NONAUTH");
        }
      },
    });

    await t.step({
      name: "certificates that map to no entry, or to several, are refused with " +
        "access_denied, filter metacharacters in the email or CN included",
      ...steps,
      fn: async () => {
        // Unescaped, `(mail=*)(uid=*@x)` or `(cn=*)(uid=*)` would reach alice's or bob's entry,
        // and the byte comparison would then answer certificate_revoked (or several entries
        // would match). access_denied means no entry matched the escaped value at all.
        const greet = (c: { certPath: string; keyPath: string }) =>
          ({ port, ca, cert: c.certPath, key: c.keyPath, action: "greet" }) as const;
        const [carol, byEmail, twin] = await Promise.all([
          postern.clientCertificate("carol"),
          postern.clientCertificate("inject-mail", { email: "*)(uid=*@x" }),
          postern.clientCertificate("twin1", { email: "twins@localhost" }),
        ]);
        await ldap.modify(certificateChange(ldap.userDn("twin1"), "add", twin.der));
        for (const r of await pythonImapAll([greet(carol), greet(byEmail), greet(twin)])) {
          assertRefused(r, "access_denied");
        }
        await reloadDirectory(
          postern,
          await directoryYaml(ldap, work, { certificateLookup: "(cn={cert.subject.cn})" }),
        );
        try {
          const [byCn, star] = await Promise.all([
            issueRawClientCertificate(postern.certsDir, "inject-cn", "*)(uid=*", "no@localhost"),
            issueRawClientCertificate(postern.certsDir, "star", "*", "x@localhost"),
          ]);
          const [cnResult, starResult, control] = await pythonImapAll([
            greet(byCn),
            greet(star),
            { port, ca, ...aliceKeys, action: "external" },
          ]);
          assertRefused(cnResult!, "access_denied");
          assertRefused(starResult!, "access_denied");
          // The CN lookup itself works: alice's certificate (CN=alice) finds her entry.
          assertAccepted(control!);
        } finally {
          await reloadDirectory(postern, plain);
        }
      },
    });

    await t.step({
      name: "a certificate removed from the entry ends the open session with BYE and " +
        "new connections get certificate_revoked",
      ...steps,
      fn: async () => {
        const session = await openSession();
        try {
          // Re-checks of a certificate still in the entry leave the session alone.
          await sleep(RECHECK_MS * 1.5);
          const noop = await session.command("a2", "NOOP");
          assert.match(noop.at(-1) ?? "", /^a2 OK/);

          await ldap.modify(certificateChange(ldap.userDn("alice"), "delete", alice.der));
          const removed = performance.now();
          const bye = await awaitBye(session);
          const elapsed = performance.now() - removed;
          assert.ok(bye, "no BYE (and close) after the certificate was removed");
          assert.ok(
            elapsed < RECHECK_MS + 1500,
            `BYE came ${elapsed.toFixed(0)} ms after the removal`,
          );
        } finally {
          session.close();
        }

        // The re-check's refusal evicted the cached acceptance: no need to wait out the TTL.
        const [python, openssl] = await Promise.all([
          external(),
          runTool("openssl", [
            "s_client",
            "-connect",
            `127.0.0.1:${port}`,
            "-cert",
            alice.certPath,
            "-key",
            alice.keyPath,
            "-CAfile",
            ca,
            "-quiet",
          ]),
        ]);
        assertRefused(python, "certificate_revoked");
        assert.notEqual(openssl.code, 0);
        assert.match(openssl.stderr, /alert certificate revoked/);

        // Stored again, it is accepted again.
        await ldap.modify(certificateChange(ldap.userDn("alice"), "add", alice.der));
        assertAccepted(await external());
      },
    });

    /** Waits until the server reports `mode` as the revocation mode; false if it never does. */
    const awaitMode = async (mode: string, withinMs = 10_000): Promise<boolean> => {
      const deadline = performance.now() + withinMs;
      while (performance.now() < deadline) {
        if (postern.handle.revocation().revocation === mode) return true;
        await sleep(50);
      }
      return false;
    };

    await t.step({
      name: "with recheck_interval 1h a certificate removed from the entry closes its sessions " +
        "at once (content sync pushes the change), other users' sessions stay",
      ...steps,
      fn: async () => {
        const bob = await postern.clientCertificate("bob");
        await ldap.modify(certificateChange(ldap.userDn("bob"), "add", bob.der));
        const bobPems = {
          certPem: await Deno.readTextFile(bob.certPath),
          keyPem: await Deno.readTextFile(bob.keyPath),
        };
        // A long cache too: the pushed change must drop alice's cached acceptance.
        await reloadDirectory(
          postern,
          await directoryYaml(ldap, work, { recheckInterval: "1h", cacheTtl: "1h" }),
        );
        try {
          assert.ok(await awaitMode("content_sync"), "content sync never became live");
          const { synced } = postern.handle.revocation();
          assert.ok(synced !== null && Date.now() - Date.parse(synced) < 5000, String(synced));
          /** Bob's session, held open by the test. */
          const openBobSession = async (): Promise<ImapLines> => {
            const session = await ImapLines.connect(port, postern.caPem, bobPems);
            try {
              assert.match((await session.readLine()) ?? "", /^\* OK /);
              const auth = await session.command("b1", "AUTHENTICATE EXTERNAL =");
              assert.match(auth.at(-1) ?? "", /^b1 OK/, auth.join(" | "));
              return session;
            } catch (e) {
              session.close();
              throw e;
            }
          };
          // Twenty clients at once: ten sessions of alice's certificate, ten of bob's.
          const removeAndWatch = async (label: string, between: () => Promise<void>) => {
            const opened = await Promise.allSettled([
              ...Array.from({ length: 10 }, openSession),
              ...Array.from({ length: 10 }, openBobSession),
            ]);
            const all = opened.flatMap((r) => r.status === "fulfilled" ? [r.value] : []);
            const [aliceSessions, bobSessions] = [all.slice(0, 10), all.slice(10)];
            try {
              assert.equal(all.length, 20, `${label}: ${JSON.stringify(opened)}`);
              await between();
              await ldap.modify(certificateChange(ldap.userDn("alice"), "delete", alice.der));
              const removed = performance.now();
              const byes = await Promise.all(aliceSessions.map((s) => awaitBye(s, 5000)));
              const elapsed = performance.now() - removed;
              assert.ok(byes.every((b) => b), `${label}: no BYE after the removal: ${byes}`);
              // A behaviour bound, far below the 1 h re-check: the change was pushed.
              assert.ok(elapsed < 5000, `${label}: BYE came ${elapsed.toFixed(0)} ms after`);
              const noops = await Promise.all(bobSessions.map((s) => s.command("b2", "NOOP")));
              for (const noop of noops) {
                assert.match(noop.at(-1) ?? "", /^b2 OK/, `${label}: a session of bob ended`);
              }
              // The cached acceptance (TTL 1h) went with the change.
              assertRefused(await external(), "certificate_revoked");
            } finally {
              for (const s of all) s.close();
              await ldap.modify(certificateChange(ldap.userDn("alice"), "add", alice.der));
            }
          };
          await removeAndWatch("live", () => Promise.resolve());

          // Restart slapd while the sessions are open, then remove the certificate: the
          // watcher reconnects, and the change reaches the sessions by push or by the
          // re-check of every session that follows the reconnect.
          await removeAndWatch("after a slapd restart", () => ldap.restart());
          assert.ok(await awaitMode("content_sync"), "content sync did not come back");
          assertAccepted(await external());
        } finally {
          await reloadDirectory(postern, plain);
        }
      },
    });

    await t.step({
      name: "the log names the revocation mode at start, and each access line the mode and " +
        "when the directory was last in sync",
      ...steps,
      fn: async () => {
        const lines: string[] = [];
        setupLogging({ level: "info", format: "json", write: (line) => lines.push(line) });
        try {
          await reloadDirectory(postern, await directoryYaml(ldap, work));
          assert.ok(await awaitMode("content_sync"), "content sync never became live");
          assertAccepted(await external());
          for (let i = 0; i < 50 && !lines.some((l) => l.includes("postern.access")); i++) {
            await sleep(20);
          }
        } finally {
          setupLogging({ level: "error", format: "text", write: () => {} });
        }
        const records = lines.map((l) => JSON.parse(l));
        assert.ok(
          records.some((r) => /Directory revocation mode: .*content_sync/.test(r.message)),
          lines.join("\n"),
        );
        const access = lines.filter((l) =>
          l.includes("postern.access")
        ).map((l) => JSON.parse(l))[0];
        assert.ok(access, lines.join("\n"));
        assert.equal(access.properties.revocation, "content_sync");
        assert.ok(
          Date.now() - Date.parse(access.properties.synced) < 5000,
          access.properties.synced,
        );
      },
    });

    await t.step({
      name: "without syncprov the server falls back to polling, which still revokes at the " +
        "interval",
      ...steps,
      fn: async () => {
        const bare = await startSlapd({
          users: [{ uid: "alice", mail: "alice@localhost", certificates: [alice.der] }],
          syncprov: false,
        });
        // A folder of its own: directoryYaml writes the service password file there.
        const bareWork = await Deno.makeTempDir({ dir: work });
        try {
          await reloadDirectory(postern, await directoryYaml(bare, bareWork));
          const session = await openSession();
          try {
            assert.equal(postern.handle.revocation().revocation, "poll");
            await bare.modify(certificateChange(bare.userDn("alice"), "delete", alice.der));
            const removed = performance.now();
            assert.ok(await awaitBye(session), "no BYE from the polling re-check");
            const elapsed = performance.now() - removed;
            assert.ok(elapsed < RECHECK_MS + 1500, `BYE came ${elapsed.toFixed(0)} ms after`);
          } finally {
            session.close();
          }
          // An explicit content_sync setting keeps polling while the server cannot push.
          await reloadDirectory(
            postern,
            await directoryYaml(bare, bareWork, { sync: "content_sync" }),
          );
          await sleep(300);
          assert.equal(postern.handle.revocation().revocation, "poll");
        } finally {
          await reloadDirectory(postern, plain);
          await bare.stop();
        }
      },
    });

    await t.step({
      name: "with slapd down certificates and passwords are refused, and accepted after a restart",
      ...steps,
      fn: async () => {
        const session = await openSession();
        try {
          await ldap.kill();
          const killed = performance.now();
          // Fail closed: the re-check cannot reach slapd and ends the session.
          assert.ok(await awaitBye(session), "no BYE after slapd went down");
          const elapsed = performance.now() - killed;
          assert.ok(elapsed < RECHECK_MS + 1500, `BYE came ${elapsed.toFixed(0)} ms after kill`);
          await sleep(Math.max(0, CACHE_TTL_MS + 100 - elapsed));
          const [cert, login] = await pythonImapAll([
            { port, ca, ...aliceKeys, action: "external" },
            { ...aliceLogin, source: "127.0.3.1" },
          ]);
          assertRefused(cert!, "internal_error");
          assert.equal(login!.auth, "NO", JSON.stringify(login));
        } finally {
          session.close();
          await ldap.restart();
        }
        assertAccepted(await external());
      },
    });

    await t.step({
      name: "a directory that accepts connections but never answers is refused within timeout",
      ...steps,
      fn: async () => {
        const silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
        const held: Deno.Conn[] = [];
        const accepting = (async () => {
          for await (const conn of silent) held.push(conn);
        })();
        try {
          const section = (await directoryYaml(ldap, work, { timeout: "500ms" })).replace(
            ldap.url,
            `ldap://127.0.0.1:${silent.addr.port}`,
          );
          await reloadDirectory(postern, section);
          const started = performance.now();
          const [cert, login] = await pythonImapAll([
            { port, ca, ...aliceKeys, action: "external" },
            { ...aliceLogin, source: "127.0.3.2" },
          ]);
          const elapsed = performance.now() - started;
          assertRefused(cert!, "internal_error");
          assert.equal(login!.auth, "NO", JSON.stringify(login));
          // 500 ms budget per lookup, 1 s failure delay for the password, Python's start-up.
          assert.ok(elapsed < 5000, `refusals took ${elapsed.toFixed(0)} ms`);
        } finally {
          await reloadDirectory(postern, plain);
          silent.close();
          await accepting.catch(() => {});
          for (const c of held) c.close();
        }
      },
    });

    await t.step({
      name: "with on_error cached a recent acceptance outlives a directory outage, " +
        "and only for its TTL",
      ...steps,
      fn: async () => {
        const ttlMs = 4000;
        await reloadDirectory(
          postern,
          await directoryYaml(ldap, work, { onError: "cached", cacheTtl: `${ttlMs}ms` }),
        );
        try {
          // The cached answer is at least as young as this moment.
          const accepted = performance.now();
          assertAccepted(await external());
          const session = await openSession();
          try {
            await ldap.kill();
            const [during] = await pythonImapAll([{ port, ca, ...aliceKeys, action: "external" }]);
            assertAccepted(during!);
            // The re-check keeps the session while the cached answer is young, then ends it.
            const bye = await awaitBye(session, ttlMs + RECHECK_MS * 2);
            const at = performance.now() - accepted;
            assert.ok(bye, "no BYE once the cached answer expired");
            assert.ok(at >= ttlMs - 50, `BYE after ${at.toFixed(0)} ms, before the TTL ran out`);
            assertRefused(await external(), "internal_error");
          } finally {
            session.close();
            await ldap.restart();
          }
        } finally {
          await reloadDirectory(postern, plain);
        }
      },
    });

    await t.step({
      name: "a verified certificate is greeted with PREAUTH when preauth_with_certificate is on",
      ...steps,
      fn: async () => {
        const preauth = await startPostern({
          extraYaml: await directoryYaml(ldap, work),
          imapYaml: "  preauth_with_certificate: true",
        });
        preauthServer.push(preauth);
        const [bob, dave] = await Promise.all([
          preauth.clientCertificate("bob"),
          preauth.clientCertificate("dave"),
        ]);
        await ldap.modify(certificateChange(ldap.userDn("bob"), "add", bob.der));
        const p = { port: preauth.implicitPort, ca: preauth.caPath, action: "greet" } as const;
        const [withCert, anonymous, stranger] = await pythonImapAll([
          { ...p, cert: bob.certPath, key: bob.keyPath },
          p,
          { ...p, cert: dave.certPath, key: dave.keyPath },
        ]);
        assert.match(withCert!.welcome ?? "", /^\* PREAUTH /, JSON.stringify(withCert));
        assertAccepted(withCert!);
        assert.equal(withCert!.state, "AUTH");
        assert.match(anonymous!.welcome ?? "", /^\* OK /);
        assert.equal(anonymous!.state, "NONAUTH");
        assertRefused(stranger!, "access_denied");
      },
    });

    await t.step({
      name: "wrong directory passwords from one address are throttled like local ones",
      ...steps,
      fn: async () => {
        const from = { ...aliceLogin, source: "127.0.3.3" };
        const wrong = { ...from, password: "guess" };
        // Two at a time: further parallel attempts from one address are turned away before
        // they reach the directory, and those do not count as failures.
        const [, , last] = await pythonImapGroups([
          [wrong, wrong],
          [wrong, wrong],
          [from, { ...aliceLogin, source: "127.0.3.4" }],
        ]);
        const [after, elsewhere] = last!;
        assert.equal(after!.auth, "NO", "a login right after 4 failures was not throttled");
        // The back-off is per address: another one logs in at the same moment.
        assertAccepted(elsewhere!);
      },
    });
  } finally {
    for (const s of preauthServer) await s.stop();
    await postern.stop();
    await ldap.stop();
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
});
