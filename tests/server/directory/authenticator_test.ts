import assert from "node:assert/strict";
import { Directory } from "../../../server/directory/mod.ts";
import { DirectoryAuthenticator } from "../../../server/directory/authenticator.ts";
import { ImapError } from "../../../protocol/imap/errors.ts";
import { startSlapd } from "../../_support/slapd.ts";
import { TestCa } from "./_certs.ts";
import { configFor } from "./_config.ts";

Deno.test("DirectoryAuthenticator logs in by password and by certificate, honouring authzid", async () => {
  const ca = await TestCa.create();
  const alice = await ca.issue({ cn: "alice", email: "alice@example.org" });
  const carol = await ca.issue({ cn: "carol", email: "carol@example.org" });
  const ldap = await startSlapd({
    users: [
      { uid: "alice", mail: "alice@example.org", password: "alice-pw", certificates: [alice.der] },
      { uid: "bob", mail: "bob@example.org", password: "bob-pw" },
    ],
  });
  try {
    await using dir = new Directory(configFor(ldap));
    const auth = new DirectoryAuthenticator(dir);
    const ctx = { peer: "127.0.0.1:50000", tls: true };
    assert.deepEqual(await auth.login("Alice", "alice-pw", ctx), { accountName: "alice" });
    assert.equal(await auth.login("alice", "bob-pw", ctx), null);
    assert.equal(await auth.login("alice", "", ctx), null);
    assert.deepEqual(await auth.external(alice.identity, "", ctx), { accountName: "alice" });
    assert.deepEqual(await auth.external(alice.identity, "alice", ctx), { accountName: "alice" });
    assert.equal(await auth.external(alice.identity, "bob", ctx), null);
    assert.equal(await auth.external(carol.identity, "", ctx), null);
    // A directory that does not answer may have been given the right password: UNAVAILABLE.
    const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const deadPort = (closed.addr as Deno.NetAddr).port;
    closed.close();
    await using down = new Directory(configFor(ldap, { url: `ldap://127.0.0.1:${deadPort}` }));
    await assert.rejects(
      new DirectoryAuthenticator(down).login("alice", "alice-pw", ctx),
      (e: unknown) => e instanceof ImapError && e.status === "NO" && e.code === "UNAVAILABLE",
    );
  } finally {
    await ldap.stop();
    await ca.remove();
  }
});
