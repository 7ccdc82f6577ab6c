import assert from "node:assert/strict";
import { join } from "node:path";
import { MemoryMailStore } from "../../../mailstore/memory/mod.ts";
import { verifyPasswordAsync } from "../../../mailstore/password.ts";
import { openDataStore } from "../../../server/serve/data_dir.ts";
import { importUsers, parsePasswdLine } from "../../../server/cli/user_import.ts";
import { main } from "../../../server/main.ts";

const LOW = { ln: 4, r: 8, p: 1 };

/** Hashes of "secret" written by Dovecot 2.3's `doveadm pw`. */
const SHA512 =
  "$6$MlK7ruuPnwVMEeIp$c/fuqa3O5cPzaity6FJsZq9xS6GbGi8NR24ke2wxVO7oaiXz0p6A3TVg1TROS53PLItUwOYNK1FhKrzLCesz31";
const BLF = "$2y$05$HtugKVkYHTb4dnkR9WS6xedT6QaLL00YIU2R8jF.k8TLZuIRBL5Ne";
/** From the SHA-crypt specification: "Hello world!". */
const SHA256 = "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5";

const PASSWD_FILE = [
  "# Dovecot passwd-file",
  `alice:{SHA512-CRYPT}${SHA512}:1000:1000::/home/alice::userdb_quota_rule=*:storage=1G`,
  `bob:{BLF-CRYPT}${BLF}::::::`,
  `carol:${SHA256}`,
  "dave:{PLAIN}plain pass::",
  "",
  "erin:{SSHA}b2xkIHNjaGVtZQ==",
  "frank:",
  "bad name:{PLAIN}x",
  `alice:{SHA512-CRYPT}${SHA512}`,
  "no colon here",
].join("\r\n");

Deno.test("parsePasswdLine() reads Dovecot passwd-file lines and bare user:hash lines", () => {
  assert.deepEqual(parsePasswdLine("# comment", LOW), { kind: "skip" });
  assert.deepEqual(parsePasswdLine("   ", LOW), { kind: "skip" });
  assert.deepEqual(parsePasswdLine(`u@example.org:{SHA512-CRYPT}${SHA512}:1:1::/h::`, LOW), {
    kind: "user",
    name: "u@example.org",
    hash: SHA512,
  });
  assert.deepEqual(parsePasswdLine(`u:${BLF}`, LOW), { kind: "user", name: "u", hash: BLF });
  assert.deepEqual(parsePasswdLine("u:{CRYPT}abcdefghijklm", LOW), {
    kind: "problem",
    message: '"u": unsupported scheme {CRYPT}',
  });
  assert.deepEqual(parsePasswdLine("x".repeat(5000) + ":{PLAIN}a", LOW), {
    kind: "problem",
    message: "line too long",
  });
  const plain = parsePasswdLine("u:{PLAIN}pw", LOW);
  assert.ok(plain.kind === "user" && plain.hash.startsWith("$scrypt$ln=4,"), "hashed at once");
});

Deno.test("importUsers() adds and updates accounts and reports each bad line", async () => {
  const store = new MemoryMailStore();
  await store.createAccount("carol", null);
  const result = await importUsers(store, PASSWD_FILE, LOW);
  assert.deepEqual(result, {
    added: 3,
    updated: 1,
    problems: [
      { line: 7, message: '"erin": unsupported scheme {SSHA}' },
      { line: 8, message: 'no password for "frank"' },
      { line: 9, message: "invalid user name" },
      { line: 10, message: '"alice" appears twice' },
      { line: 11, message: 'expected "user:hash"' },
    ],
  });
  assert.equal((await store.getAccount("alice"))?.passwordHash, SHA512);
  assert.equal((await store.getAccount("bob"))?.passwordHash, BLF);
  assert.equal((await store.getAccount("carol"))?.passwordHash, SHA256);
  assert.ok(await verifyPasswordAsync("secret", SHA512));
  assert.ok(
    await verifyPasswordAsync("plain pass", (await store.getAccount("dave"))!.passwordHash!),
  );
});

Deno.test("postern user import reads a file into the store and names bad lines", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "postern-cli-" });
  try {
    Deno.writeTextFileSync(join(dir, "users"), PASSWD_FILE);
    let stdout = "";
    let stderr = "";
    const io = {
      cwd: dir,
      out: (t: string) => stdout += t,
      err: (t: string) => stderr += t,
      stdin: new Blob([""]).stream(),
    };
    const code = await main(["user", "import", "users"], io);
    assert.equal(code, 1, "skipped lines make the exit code 1");
    assert.equal(stdout, "4 added, 0 updated, 5 skipped\n");
    assert.match(stderr, /^users:7: "erin": unsupported scheme \{SSHA\}$/m);
    assert.equal(stderr.trim().split("\n").length, 5);
    const missing = await main(["user", "import", "nope"], io);
    assert.equal(missing, 1);
    const store = await openDataStore(join(dir, "data"));
    try {
      assert.equal((await store.getAccount("bob"))?.passwordHash, BLF);
    } finally {
      await store.close();
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
