/**
 * The session revoker against a real slapd with syncprov: a removed certificate ends its
 * sessions and its cached answer at once while other sessions stay; a burst of changes to
 * every other entry is re-checked (one lookup at a time) and revokes nothing; polling does not
 * run while the push is live.
 */
import assert from "node:assert/strict";
import { defaultProvider } from "../../../protocol/crypto/mod.ts";
import { parseCertificate } from "../../../protocol/x509/certificate.ts";
import { certificateIdentity } from "../../../protocol/x509/client_verifier.ts";
import type { CertificateIdentity } from "../../../protocol/x509/identity.ts";
import { issueCertificate } from "../../../protocol/x509/writer.ts";
import {
  Directory,
  type DirectoryDenial,
  type RecheckSession,
} from "../../../server/directory/mod.ts";
import { normalizeDn } from "../../../server/directory/directory.ts";
import { SessionRevoker } from "../../../server/directory/revoker.ts";
import { certificateChange } from "../../_support/directory_e2e.ts";
import { startSlapd } from "../../_support/slapd.ts";
import { configFor } from "./_config.ts";

const USERS = 150;
const provider = defaultProvider;
const caKey = provider.generatePrivateKey("P-256");
const now = Date.now();
const validity = { notBefore: new Date(now - 3_600_000), notAfter: new Date(now + 86_400_000) };
const ca = issueCertificate(
  { subject: "CN=Revoker test CA", key: caKey, isCa: true, ...validity },
  provider,
);
const users: { uid: string; der: Uint8Array; identity: CertificateIdentity }[] = [];
for (let i = 0; i < USERS; i++) {
  const uid = `user${i}`;
  const der = issueCertificate({
    subject: `CN=${uid}`,
    issuer: { certificate: ca, key: caKey },
    key: provider.generatePrivateKey("P-256"),
    extKeyUsage: ["clientAuth"],
    sanEmail: [`${uid}@example.org`],
    ...validity,
  }, provider);
  users.push({ uid, der, identity: certificateIdentity(parseCertificate(der), provider) });
}

async function until(what: string, test: () => boolean, withinMs = 5000): Promise<void> {
  const deadline = performance.now() + withinMs;
  while (!test()) {
    if (performance.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

Deno.test("pushed changes revoke the right sessions at once, and a burst of changes revokes nothing", async () => {
  const ldap = await startSlapd({
    users: users.map((u) => ({ uid: u.uid, mail: `${u.uid}@example.org`, certificates: [u.der] })),
  });
  const directory = new Directory(configFor(ldap, {
    // One lookup at a time: its queue holds 64, fewer than the burst below.
    maxConcurrency: 1,
    // Polling every 50 ms would show in the lookup count if it ran while the push is live.
    recheckIntervalMs: 50,
    cacheTtlMs: 3_600_000,
  }));
  const revoked = new Map<string, DirectoryDenial>();
  const sessions: RecheckSession[] = users.map((u) => ({
    identity: u.identity,
    revoke: (denial) => revoked.set(u.uid, denial),
  }));
  const fingerprints: string[] = [];
  const revoker = new SessionRevoker(directory, () => sessions, {
    onRevoked: (fp) => fingerprints.push(fp),
  });
  try {
    for (const u of users) assert.ok((await directory.checkCertificate(u.identity)).ok);
    revoker.start();
    await until("content sync", () => revoker.status.mode === "content_sync");
    // The re-check of every session after connecting.
    await until("the first resync", () => directory.stats.lookups === 2 * USERS, 10_000);
    const quiet = directory.stats.lookups;
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(directory.stats.lookups, quiet, "polling ran while the push was live");

    // user0's certificate goes: revoked without a lookup, and its cached answer with it.
    await ldap.modify(certificateChange(ldap.userDn("user0"), "delete", users[0]!.der));
    await until("user0 revoked", () => revoked.has("user0"));
    assert.equal(revoked.get("user0")?.reason, "not_in_entry");
    assert.deepEqual(fingerprints, [users[0]!.identity.fingerprintSha256]);
    const again = await directory.checkCertificate(users[0]!.identity);
    assert.equal(again.ok, false, "the cached acceptance outlived the removal");
    assert.equal(revoked.size, 1);

    // Every other entry changes at once (one ldapmodify): each is re-checked, none revoked.
    const before = directory.stats.lookups;
    const burst = users.slice(1).map((u) =>
      `dn: ${ldap.userDn(u.uid)}\nchangetype: modify\nreplace: description\ndescription: burst\n`
    ).join("\n");
    await ldap.modify(burst);
    await until("the burst's re-checks", () => directory.stats.lookups - before >= USERS - 1);
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual([...revoked.keys()], ["user0"], JSON.stringify([...revoked.values()]));
    assert.equal(directory.stats.peakInFlight, 1);
  } finally {
    await revoker.stop();
    await directory.close();
    await ldap.stop();
  }
});

Deno.test("normalizeDn() matches the spellings of one entry that directories send", () => {
  const dn = "uid=alice,ou=people,dc=example,dc=org";
  for (
    const other of [
      "UID=Alice,OU=People,DC=Example,DC=Org",
      "uid=alice, ou=people , dc=example,dc=org",
    ]
  ) {
    assert.equal(normalizeDn(other), dn);
  }
  assert.notEqual(normalizeDn("uid=alice2,ou=people,dc=example,dc=org"), dn);
});
