import assert from "node:assert/strict";
import {
  Directory,
  type DirectoryConfigInput,
  type DirectoryDenial,
  type DirectoryVerdict,
  type PasswordVerdict,
  resolveDirectoryConfig,
} from "../../../server/directory/mod.ts";
import { type Slapd, type SlapdUser, startSlapd, userLdif } from "../../_support/slapd.ts";
import { identityFor, TestCa, type TestCertificate, withSubject } from "./_certs.ts";
import { configFor } from "./_config.ts";

const ca = await TestCa.create();
const alice = await ca.issue({ cn: "alice", uid: "alice", email: "alice@example.org" });
const aliceOld = await ca.issue({ cn: "alice", uid: "alice", email: "alice@example.org" });
const bob = await ca.issue({ cn: "bob", uid: "bob", email: "bob@example.org" });
const carol = await ca.issue({ cn: "carol", email: "carol@example.org" });
const dave = await ca.issue({ cn: "dave", email: "dave@example.org" });
const shared = await ca.issue({ cn: "shared", email: "shared@example.org" });
const erin = await ca.issue({ cn: "erin" });
const noEmail = await ca.issue({ cn: "alice" });
globalThis.addEventListener("unload", () => {
  try {
    Deno.removeSync(ca.dir, { recursive: true });
  } catch {
    // Already gone.
  }
});

const USERS: SlapdUser[] = [
  {
    uid: "alice",
    mail: "alice@example.org",
    password: "alice-secret",
    certificates: [aliceOld.der, alice.der],
    // A storage quota in octets, for quota.directory_attribute.
    attributes: { employeeNumber: ["5000000"] },
  },
  { uid: "bob", mail: "bob@example.org", password: "bob-secret", certificates: [bob.der] },
  { uid: "dave", mail: "dave@example.org", password: "dave-secret" },
  { uid: "shared1", mail: "shared@example.org", certificates: [shared.der] },
  { uid: "shared2", mail: "shared@example.org", certificates: [shared.der] },
  {
    uid: "erin",
    certificates: [erin.der],
    attributes: { seeAlso: [erin.identity.subject] },
  },
];

async function withSlapd(
  fn: (ldap: Slapd) => Promise<void>,
  options: { tls?: boolean } = {},
): Promise<void> {
  const ldap = await startSlapd({ users: USERS, ...options });
  try {
    await fn(ldap);
  } finally {
    await ldap.stop();
  }
}

function assertDenied(
  v: Awaited<ReturnType<Directory["checkCertificate"]>>,
  reason: DirectoryDenial["reason"],
  alert: DirectoryDenial["alert"],
): void {
  assert.equal(v.ok, false, `expected ${reason}, got ${JSON.stringify(v)}`);
  if (!v.ok) {
    assert.equal(v.reason, reason, v.detail);
    assert.equal(v.alert, alert);
  }
}

function removeCertificateLdif(ldap: Slapd, uid: string, cert: TestCertificate): string {
  return [
    `dn: ${ldap.userDn(uid)}`,
    "changetype: modify",
    "delete: userCertificate;binary",
    `userCertificate;binary:: ${btoa(String.fromCharCode(...cert.der))}`,
    "",
  ].join("\n");
}

Deno.test("checkCertificate() accepts a certificate stored in the user's entry, then from the cache", async () => {
  await withSlapd(async (ldap) => {
    await using dir = new Directory(configFor(ldap));
    const first = await dir.checkCertificate(alice.identity);
    assert.deepEqual(first, {
      ok: true,
      username: "alice",
      entryDn: ldap.userDn("alice"),
      cached: false,
    });
    const second = await dir.checkCertificate(alice.identity);
    assert.equal(second.ok && second.cached, true);
    assert.equal(dir.stats.lookups, 1);
    // A single userCertificate value comes back as a scalar; it must match too.
    const b = await dir.checkCertificate(bob.identity);
    assert.equal(b.ok && b.username, "bob");
  });
});

Deno.test("checkCertificate() answers certificate_revoked once ldapmodify removes the certificate", async () => {
  await withSlapd(async (ldap) => {
    await using dir = new Directory(configFor(ldap));
    assert.equal((await dir.checkCertificate(alice.identity)).ok, true);
    await ldap.modify(removeCertificateLdif(ldap, "alice", alice));
    const v = await dir.checkCertificate(alice.identity, { fresh: true });
    assertDenied(v, "not_in_entry", "certificate_revoked");
    // The refusal also evicts the cached acceptance.
    assertDenied(await dir.checkCertificate(alice.identity), "not_in_entry", "certificate_revoked");
    // Her other certificate is still stored and still accepted.
    assert.equal((await dir.checkCertificate(aliceOld.identity)).ok, true);
    // An entry with no certificate at all revokes too.
    assertDenied(await dir.checkCertificate(dave.identity), "not_in_entry", "certificate_revoked");
  });
});

Deno.test("checkCertificate() answers access_denied when no entry or two entries match", async () => {
  await withSlapd(async (ldap) => {
    await using dir = new Directory(configFor(ldap));
    assertDenied(await dir.checkCertificate(carol.identity), "no_entry", "access_denied");
    assertDenied(await dir.checkCertificate(shared.identity), "several_entries", "access_denied");
    assertDenied(await dir.checkCertificate(noEmail.identity), "no_lookup_value", "access_denied");
  });
});

Deno.test("checkCertificate() fails closed when slapd is stopped, and accepts again after a restart", async () => {
  await withSlapd(async (ldap) => {
    await using dir = new Directory(configFor(ldap, { cacheTtlMs: 0 }));
    assert.equal((await dir.checkCertificate(alice.identity)).ok, true);
    await ldap.kill();
    assertDenied(
      await dir.checkCertificate(alice.identity),
      "directory_unavailable",
      "internal_error",
    );
    await ldap.restart();
    const v = await dir.checkCertificate(alice.identity);
    assert.equal(v.ok && v.username, "alice");
  });
});

Deno.test("checkCertificate() with on_error=cached uses a warm cache within the TTL only", async () => {
  await withSlapd(async (ldap) => {
    let now = 1_000_000;
    await using cached = new Directory(configFor(ldap, { onError: "cached", cacheTtlMs: 60_000 }), {
      now: () => now,
    });
    await using deny = new Directory(configFor(ldap, { onError: "deny", cacheTtlMs: 60_000 }), {
      now: () => now,
    });
    assert.equal((await cached.checkCertificate(alice.identity)).ok, true);
    assert.equal((await deny.checkCertificate(alice.identity)).ok, true);
    await ldap.kill();
    now += 30_000;
    const within = await cached.checkCertificate(alice.identity, { fresh: true });
    assert.deepEqual(within, {
      ok: true,
      username: "alice",
      entryDn: ldap.userDn("alice"),
      cached: true,
    });
    assertDenied(
      await deny.checkCertificate(alice.identity, { fresh: true }),
      "directory_unavailable",
      "internal_error",
    );
    now += 30_001;
    assertDenied(
      await cached.checkCertificate(alice.identity),
      "directory_unavailable",
      "internal_error",
    );
    // A certificate never seen is refused at once.
    assertDenied(
      await cached.checkCertificate(bob.identity),
      "directory_unavailable",
      "internal_error",
    );
  });
});

Deno.test("checkCertificate() refuses a directory that accepts TCP but never answers, within the timeout", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const accepting = (async () => {
    try {
      for await (const c of listener) conns.push(c);
    } catch {
      // Listener closed.
    }
  })();
  try {
    await using dir = new Directory(resolveDirectoryConfig({
      url: `ldap://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
      bindDn: "cn=x",
      bindPassword: "x",
      baseDn: "dc=example,dc=org",
      timeoutMs: 300,
      cacheTtlMs: 0,
    }));
    const t0 = performance.now();
    const v = await dir.checkCertificate(alice.identity);
    const ms = performance.now() - t0;
    assertDenied(v, "directory_unavailable", "internal_error");
    assert.ok(ms < 2000, `took ${ms} ms`);
  } finally {
    listener.close();
    await accepting;
    for (const c of conns) {
      try {
        c.close();
      } catch {
        // Closed by the peer.
      }
    }
  }
});

Deno.test("checkCertificate() over ldaps:// and StartTLS accepts with the right CA and refuses a wrong one", async () => {
  const other = await TestCa.create();
  try {
    const wrongCa = await Deno.readTextFile(`${other.dir}/ca.pem`);
    await withSlapd(async (ldap) => {
      const { ldapsUrl, caPem } = ldap;
      if (ldapsUrl === undefined || caPem === undefined) throw new Error("slapd has no TLS");
      const cases: Array<[string, Partial<DirectoryConfigInput>]> = [
        ["ldaps", { url: ldapsUrl }],
        ["starttls", { url: ldap.url, starttls: true }],
      ];
      for (const [name, over] of cases) {
        await using good: Directory = new Directory(
          configFor(ldap, { ...over, ca: caPem, cacheTtlMs: 0 }),
        );
        const v: DirectoryVerdict = await good.checkCertificate(alice.identity);
        assert.equal(v.ok && v.username, "alice", `${name}: ${JSON.stringify(v)}`);
        const pw: PasswordVerdict = await good.verifyPassword("bob", "bob-secret");
        assert.equal(pw.ok, true, name);

        await using bad: Directory = new Directory(
          configFor(ldap, { ...over, ca: wrongCa, cacheTtlMs: 0 }),
        );
        assertDenied(
          await bad.checkCertificate(alice.identity),
          "directory_unavailable",
          "internal_error",
        );
        const badPw: PasswordVerdict = await bad.verifyPassword("bob", "bob-secret");
        assert.equal(badPw.ok, false, name);
      }
      // The CA may also be given as a path.
      const caPath = `${other.dir}/ldap-ca.pem`;
      await Deno.writeTextFile(caPath, caPem);
      await using byPath = new Directory(configFor(ldap, { url: ldapsUrl, ca: caPath }));
      assert.equal((await byPath.checkCertificate(alice.identity)).ok, true);
    }, { tls: true });
  } finally {
    await other.remove();
  }
});

Deno.test("checkCertificate() escapes certificate fields so `*)(uid=*` cannot widen the search", async () => {
  await withSlapd(async (ldap) => {
    const evil = "*)(uid=*";
    await using byCn = new Directory(configFor(ldap, {
      mapping: {
        kind: "filter",
        template: "(&(objectClass=inetOrgPerson)(cn={cert.subject.cn}))",
      },
    }));
    // Unescaped, the filter would be (&(objectClass=inetOrgPerson)(cn=*)(uid=*)): every entry.
    const cnIdentity = identityFor(alice.der, { cn: evil });
    assertDenied(await byCn.checkCertificate(cnIdentity), "no_entry", "access_denied");
    await using byMail = new Directory(configFor(ldap));
    const mailIdentity = identityFor(alice.der, { cn: "x", email: evil });
    assertDenied(await byMail.checkCertificate(mailIdentity), "no_entry", "access_denied");
    const star = identityFor(alice.der, { cn: "x", email: "*" });
    assertDenied(await byMail.checkCertificate(star), "no_entry", "access_denied");
    // The same template finds alice by her real CN.
    const v = await byCn.checkCertificate(alice.identity);
    assert.equal(v.ok && v.username, "alice");
  });
});

Deno.test("checkCertificate() maps by subject DN only to entries under the base DN", async () => {
  await withSlapd(async (ldap) => {
    await using dir = new Directory(
      configFor(ldap, { mapping: { kind: "subject_dn" }, cacheTtlMs: 0 }),
    );
    const exact = await dir.checkCertificate(withSubject(alice.identity, ldap.userDn("alice")));
    assert.equal(exact.ok && exact.username, "alice");
    const spelled = withSubject(alice.identity, "UID=alice, OU=People,DC=example,DC=org");
    assert.equal((await dir.checkCertificate(spelled)).ok, true);
    const outside = withSubject(alice.identity, ldap.serviceDn);
    assertDenied(await dir.checkCertificate(outside), "no_entry", "access_denied");
    const garbage = withSubject(alice.identity, "not a DN");
    assertDenied(await dir.checkCertificate(garbage), "no_entry", "access_denied");
    const missing = withSubject(alice.identity, ldap.userDn("nobody"));
    assertDenied(await dir.checkCertificate(missing), "no_entry", "access_denied");
  });
});

Deno.test("checkCertificate() maps by an entry attribute holding the subject DN", async () => {
  await withSlapd(async (ldap) => {
    await using dir = new Directory(
      configFor(ldap, { mapping: { kind: "attribute", attribute: "seeAlso" } }),
    );
    const v = await dir.checkCertificate(erin.identity);
    assert.equal(v.ok && v.username, "erin");
    assertDenied(await dir.checkCertificate(carol.identity), "no_entry", "access_denied");
  });
});

Deno.test("verifyPassword() binds as the user's entry and refuses wrong and empty passwords", async () => {
  await withSlapd(async (ldap) => {
    await using dir = new Directory(configFor(ldap));
    assert.deepEqual(await dir.verifyPassword("alice", "alice-secret"), {
      ok: true,
      username: "alice",
    });
    // uid matching is case-insensitive; the entry's own spelling is returned.
    assert.deepEqual(await dir.verifyPassword("ALICE", "alice-secret"), {
      ok: true,
      username: "alice",
    });
    const wrong = await dir.verifyPassword("alice", "bob-secret");
    assert.equal(!wrong.ok && wrong.reason, "invalid_credentials");
    const empty = await dir.verifyPassword("alice", "");
    assert.equal(!empty.ok && empty.reason, "empty_password");
    const nobody = await dir.verifyPassword("nobody", "x");
    assert.equal(!nobody.ok && nobody.reason, "no_entry");
    const star = await dir.verifyPassword("*", "alice-secret");
    assert.equal(!star.ok && star.reason, "no_entry");
    const noPassword = await dir.verifyPassword("shared1", "anything");
    assert.equal(!noPassword.ok && noPassword.reason, "invalid_credentials");
    await ldap.kill();
    const down = await dir.verifyPassword("alice", "alice-secret");
    assert.equal(!down.ok && down.reason, "directory_unavailable");
  });
});

Deno.test("startRecheck() revokes a session within the interval once its certificate is removed", async () => {
  await withSlapd(async (ldap) => {
    await using dir = new Directory(configFor(ldap, { recheckIntervalMs: 100 }));
    const revoked: string[] = [];
    let resolveRevoked: () => void = () => {};
    const gotRevocation = new Promise<void>((r) => resolveRevoked = r);
    const sessions = [
      {
        identity: alice.identity,
        revoke: (d: DirectoryDenial) => {
          revoked.push(`alice:${d.reason}`);
          resolveRevoked();
        },
      },
      { identity: bob.identity, revoke: (d: DirectoryDenial) => revoked.push(`bob:${d.reason}`) },
    ];
    assert.equal((await dir.checkCertificate(alice.identity)).ok, true);
    const stop = dir.startRecheck(() => sessions);
    try {
      await new Promise((r) => setTimeout(r, 250));
      assert.deepEqual(revoked, []);
      await ldap.modify(removeCertificateLdif(ldap, "alice", alice));
      const t0 = performance.now();
      const timeout = new Promise<void>((r) => setTimeout(r, 2000));
      await Promise.race([gotRevocation, timeout]);
      const ms = performance.now() - t0;
      assert.deepEqual(revoked, ["alice:not_in_entry"]);
      // One 100 ms interval plus a lookup; the slack is for a loaded test machine.
      assert.ok(ms < 1500, `revoked after ${ms} ms`);
    } finally {
      await stop();
    }
  });
});

Deno.test("startRecheck() keeps sessions while the directory is down with on_error=cached within the TTL", async () => {
  await withSlapd(async (ldap) => {
    await using dir = new Directory(
      configFor(ldap, { recheckIntervalMs: 50, onError: "cached", cacheTtlMs: 60_000 }),
    );
    const revoked: string[] = [];
    assert.equal((await dir.checkCertificate(alice.identity)).ok, true);
    const stop = dir.startRecheck(() => [
      { identity: alice.identity, revoke: (d) => revoked.push(d.reason) },
    ]);
    try {
      await ldap.kill();
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(revoked, []);
    } finally {
      await stop();
    }
  });
});

Deno.test("startRecheck() with on_error=deny revokes sessions once the directory is unreachable", async () => {
  await withSlapd(async (ldap) => {
    await using dir = new Directory(configFor(ldap, { recheckIntervalMs: 50, onError: "deny" }));
    const revoked: string[] = [];
    assert.equal((await dir.checkCertificate(alice.identity)).ok, true);
    const stop = dir.startRecheck(() => [
      { identity: alice.identity, revoke: (d) => revoked.push(`${d.reason}/${d.alert}`) },
    ]);
    try {
      await ldap.kill();
      for (let i = 0; i < 40 && revoked.length === 0; i++) {
        await new Promise((r) => setTimeout(r, 25));
      }
      assert.equal(revoked[0], "directory_unavailable/internal_error");
    } finally {
      await stop();
    }
  });
});

Deno.test("checkCertificate() keeps at most maxConcurrency lookups in flight", async () => {
  await withSlapd(async (ldap) => {
    await using dir = new Directory(configFor(ldap, { maxConcurrency: 2, cacheTtlMs: 0 }));
    const ids = Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? alice : bob).identity);
    const verdicts = await Promise.all(ids.map((id) => dir.checkCertificate(id)));
    assert.ok(verdicts.every((v) => v.ok));
    assert.equal(dir.stats.lookups, 20);
    assert.equal(dir.stats.peakInFlight, 2);
    assert.equal(dir.stats.inFlight, 0);
    assert.equal(dir.stats.queued, 0);
  });
});

Deno.test("Directory reuses a bound service connection and survives a slapd restart while it idles", async () => {
  await withSlapd(async (ldap) => {
    await using dir = new Directory(configFor(ldap, { cacheTtlMs: 0 }));
    const idle = (): number => dir.stats.idleConnections;
    assert.equal((await dir.checkCertificate(alice.identity)).ok, true);
    assert.equal(idle(), 1);
    assert.equal((await dir.checkCertificate(bob.identity)).ok, true);
    assert.equal(idle(), 1);
    await ldap.restart();
    const v = await dir.checkCertificate(alice.identity);
    assert.equal(v.ok && v.username, "alice", JSON.stringify(v));
    // A connection re-bound as a user is closed, never pooled for the next service lookup.
    assert.equal((await dir.verifyPassword("alice", "alice-secret")).ok, true);
    assert.equal((await dir.verifyPassword("alice", "wrong")).ok, false);
    assert.equal(idle(), 0);
    assert.equal((await dir.checkCertificate(bob.identity)).ok, true);
    await dir.close();
    assert.equal(idle(), 0);
    // After close() lookups still work, on connections of their own.
    assert.equal((await dir.checkCertificate(bob.identity)).ok, true);
    assert.equal(idle(), 0);
  });
});

Deno.test("userLdif() writes certificates as base64 userCertificate;binary values", () => {
  const ldif = userLdif({ uid: "x", certificates: [new Uint8Array([0x30, 0x00])] });
  assert.match(ldif, /^userCertificate;binary:: MAA=$/m);
});

Deno.test("with a quota attribute, certificate, password and recipient lookups keep the entry's storage quota", async () => {
  await withSlapd(async (ldap) => {
    await using dir = new Directory(configFor(ldap, { quotaAttribute: "employeeNumber" }));
    assert.equal(dir.storageQuota("alice"), undefined);
    const verdict = await dir.checkCertificate(alice.identity);
    assert.equal(verdict.ok && verdict.quota, 5_000_000);
    assert.equal(dir.storageQuota("alice"), 5_000_000);
    // An entry without the attribute: null (the configured figure applies).
    assert.equal((await dir.verifyPassword("bob", "bob-secret")).ok, true);
    assert.equal(dir.storageQuota("bob"), null);
    await ldap.modify(
      `dn: ${ldap.userDn("alice")}\nchangetype: modify\nreplace: employeeNumber\n` +
        "employeeNumber: 7000\n",
    );
    assert.equal((await dir.verifyPassword("alice", "alice-secret")).ok, true);
    assert.equal(dir.storageQuota("alice"), 7000);
    await ldap.modify(
      `dn: ${ldap.userDn("dave")}\nchangetype: modify\nadd: employeeNumber\n` +
        "employeeNumber: 12 GB\n",
    );
    // A size with a unit, as the configuration takes it.
    const found = await dir.findRecipient("dave@example.org", "(mail={address})");
    assert.deepEqual(found, { kind: "found", username: "dave", quota: 12_000_000_000 });
    await ldap.modify(
      `dn: ${ldap.userDn("dave")}\nchangetype: modify\nreplace: employeeNumber\n` +
        "employeeNumber: 12 parsecs\n",
    );
    const odd = await dir.findRecipient("dave@example.org", "(mail={address})");
    assert.deepEqual(odd, { kind: "found", username: "dave", quota: null });
    assert.equal(dir.storageQuota("dave"), null);
  });
});
