/**
 * Logins under load, over real TLS sockets: a crowd of right logins from one address all
 * succeed (they queue for the hashing slots instead of being refused), a logged-in session
 * keeps being served meanwhile, and a throttled right password is answered UNAVAILABLE, never
 * AUTHENTICATIONFAILED (RFC 5530); and a password changed or an account removed by the CLI,
 * in its own process, takes effect at the next login although the old password is cached; and
 * the per-user connection limit is not reported as a wrong password either.
 * Nothing here is timed; the bench measures the latencies.
 */
import assert from "node:assert/strict";
import { RawImap } from "../../_support/imap_clients.ts";
import { startPostern } from "../../_support/postern.ts";
import { runPostern } from "../../_support/server_process.ts";
import { openSqliteMailStore } from "../../../mailstore/sqlite/mod.ts";
import { parseConfig } from "../../../server/config/mod.ts";

const CROWD = 100;

async function login(port: number, ca: string, user: string, password: string) {
  const client = await RawImap.tls(port, ca);
  await client.greeting(20_000);
  const result = await client.command(`LOGIN ${user} "${password}"`, undefined, 60_000);
  return { client, result };
}

Deno.test("100 concurrent right logins from one address all succeed while NOOP is served", async () => {
  const server = await startPostern({
    users: [{ name: "office", password: "right" }, { name: "bystander", password: "pw" }],
    limitsYaml: "  max_connections_per_user: 500\n  max_connections_per_address: 500",
    // No cache, and a higher cost than the stored hashes: every login verifies and the first
    // ones re-hash, so the hashing slots stay busy while the crowd logs in.
    authYaml: "  cache_ttl: 0s\n  scrypt_cost: { ln: 12, r: 8, p: 1 }",
  });
  const clients: RawImap[] = [];
  try {
    const bystander = await login(server.implicitPort, server.caPem, "bystander", "pw");
    clients.push(bystander.client);
    assert.equal(bystander.result.status, "OK", bystander.result.tagged);
    const crowd = Array.from(
      { length: CROWD },
      () => login(server.implicitPort, server.caPem, "office", "right"),
    );
    const noops: string[] = [];
    for (let i = 0; i < 5; i++) {
      const noop = await bystander.client.command("NOOP", undefined, 30_000);
      noops.push(noop.status);
    }
    const results = await Promise.all(crowd);
    for (const r of results) clients.push(r.client);
    assert.deepEqual(noops, ["OK", "OK", "OK", "OK", "OK"]);
    const refused = results.filter((r) => r.result.status !== "OK").map((r) => r.result.tagged);
    assert.deepEqual(refused, [], "every right password is accepted");
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await server.stop();
  }
});

Deno.test("a right password during back-off gets NO [UNAVAILABLE], a wrong one AUTHENTICATIONFAILED", async () => {
  const server = await startPostern({ users: [{ name: "alice", password: "right" }] });
  const clients: RawImap[] = [];
  try {
    const wrong = await Promise.all(
      [1, 2, 3, 4].map((i) => login(server.implicitPort, server.caPem, "alice", `wrong${i}`)),
    );
    for (const w of wrong) {
      clients.push(w.client);
      assert.match(w.result.tagged, /^\S+ NO \[AUTHENTICATIONFAILED\] /);
    }
    const right = await login(server.implicitPort, server.caPem, "alice", "right");
    clients.push(right.client);
    assert.match(right.result.tagged, /^\S+ NO \[UNAVAILABLE\] .*try again in \d+ s$/);
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await server.stop();
  }
});

Deno.test("user passwd and user remove in another process take effect despite the cache", async () => {
  const server = await startPostern({ users: [{ name: "alice", password: "old" }] });
  const clients: RawImap[] = [];
  const attempt = async (password: string) => {
    const r = await login(server.implicitPort, server.caPem, "alice", password);
    clients.push(r.client);
    return r.result.tagged.replace(/^\S+ /, "").split(" ").slice(0, 2).join(" ");
  };
  try {
    assert.equal(await attempt("old"), "OK [CAPABILITY");
    assert.equal(await attempt("old"), "OK [CAPABILITY", "now answered from the cache");
    const config = `${server.dir}/config.yaml`;
    const passwd = await runPostern(["user", "passwd", "alice", "--config", config], "new\n");
    assert.equal(passwd.code, 0, passwd.stderr);
    assert.equal(await attempt("old"), "NO [AUTHENTICATIONFAILED]");
    assert.equal(await attempt("new"), "OK [CAPABILITY");
    const remove = await runPostern(["user", "remove", "alice", "--config", config], "");
    assert.equal(remove.code, 0, remove.stderr);
    assert.equal(await attempt("new"), "NO [AUTHENTICATIONFAILED]");
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await server.stop();
  }
});

Deno.test("a reload (SIGHUP) empties the cache: the next login is checked and re-hashed", async () => {
  const server = await startPostern({ users: [{ name: "alice", password: "pw" }] });
  const clients: RawImap[] = [];
  const storedHash = async () => {
    const store = await openSqliteMailStore(`${server.dir}/data/postern.db`);
    try {
      return (await store.getAccount("alice"))?.passwordHash ?? "";
    } finally {
      await store.close();
    }
  };
  const attempt = async () => {
    const r = await login(server.implicitPort, server.caPem, "alice", "pw");
    clients.push(r.client);
    return r.result.status;
  };
  try {
    assert.equal(await attempt(), "OK");
    assert.match(await storedHash(), /^\$scrypt\$ln=10,/);
    const path = `${server.dir}/config.yaml`;
    const text = (await Deno.readTextFile(path)).replace("ln: 10,", "ln: 11,");
    await server.handle.reload(parseConfig(text, path));
    // A cache hit would skip the check, and with it the re-hash to the new cost.
    assert.equal(await attempt(), "OK");
    assert.match(await storedHash(), /^\$scrypt\$ln=11,/);
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await server.stop();
  }
});

Deno.test("the per-user connection limit answers NO [LIMIT], not AUTHENTICATIONFAILED", async () => {
  const server = await startPostern({
    users: [{ name: "alice", password: "pw" }],
    limitsYaml: "  max_connections_per_user: 1",
  });
  const clients: RawImap[] = [];
  try {
    for (const expected of [/^\S+ OK /, /^\S+ NO \[LIMIT\] /]) {
      const r = await login(server.implicitPort, server.caPem, "alice", "pw");
      clients.push(r.client);
      assert.match(r.result.tagged, expected);
    }
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await server.stop();
  }
});

Deno.test("imported Dovecot hashes log in as they are and become scrypt", async () => {
  const server = await startPostern();
  const clients: RawImap[] = [];
  try {
    // `doveadm pw` hashes of "secret".
    const file = `${server.dir}/users`;
    await Deno.writeTextFile(
      file,
      [
        "sha:{SHA512-CRYPT}$6$MlK7ruuPnwVMEeIp$c/fuqa3O5cPzaity6FJsZq9xS6GbGi8NR24ke2wxVO7oaiXz0p6A3TVg1TROS53PLItUwOYNK1FhKrzLCesz31:1000:1000::/home/sha::",
        "blf:{BLF-CRYPT}$2y$05$HtugKVkYHTb4dnkR9WS6xedT6QaLL00YIU2R8jF.k8TLZuIRBL5Ne",
        "",
      ].join("\n"),
    );
    const imported = await runPostern(
      ["user", "import", file, "--config", `${server.dir}/config.yaml`],
      "",
    );
    assert.equal(imported.stdout, "2 added, 0 updated, 0 skipped\n");
    for (const user of ["sha", "blf"]) {
      const wrong = await login(server.implicitPort, server.caPem, user, "Secret");
      const right = await login(server.implicitPort, server.caPem, user, "secret");
      clients.push(wrong.client, right.client);
      assert.match(wrong.result.tagged, /^\S+ NO \[AUTHENTICATIONFAILED\] /);
      assert.match(right.result.tagged, /^\S+ OK /);
    }
    const store = await openSqliteMailStore(`${server.dir}/data/postern.db`);
    try {
      for (const user of ["sha", "blf"]) {
        assert.match((await store.getAccount(user))!.passwordHash!, /^\$scrypt\$ln=10,/);
      }
    } finally {
      await store.close();
    }
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await server.stop();
  }
});
