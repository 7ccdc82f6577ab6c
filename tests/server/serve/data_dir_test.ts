import assert from "node:assert/strict";
import { join } from "node:path";
import { DATABASE_FILE, openDataStore, warnIfExposed } from "../../../server/serve/data_dir.ts";
import { openSqliteMailStore } from "../../../mailstore/sqlite/mod.ts";

const modeOf = (path: string) => (Deno.statSync(path).mode ?? 0) & 0o777;

Deno.test("openDataStore() tightens an existing 0755 folder and 0644 database to 0700 and 0600", async () => {
  const dir = await Deno.makeTempDir({ prefix: "postern-modes-" });
  try {
    const data = join(dir, "data");
    Deno.mkdirSync(data);
    Deno.chmodSync(data, 0o755);
    const db = join(data, DATABASE_FILE);
    // A database another tool made world-readable, WAL files included.
    const before = await openSqliteMailStore(db);
    await before.createAccount("alice", null);
    for (const f of [db, `${db}-wal`, `${db}-shm`]) {
      try {
        Deno.chmodSync(f, 0o644);
      } catch {
        // Not every run leaves a -wal or -shm file behind.
      }
    }
    await before.close();
    const store = await openDataStore(data);
    await store.createAccount("bob", null);
    assert.equal(modeOf(data), 0o700);
    for (const f of [db, `${db}-wal`, `${db}-shm`]) {
      try {
        assert.equal(modeOf(f), 0o600, f);
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      }
    }
    assert.equal(modeOf(`${db}-wal`), 0o600, "WAL mode keeps a -wal file while open");
    await store.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openDataStore() creates a new folder 0700 and a new database 0600", async () => {
  const dir = await Deno.makeTempDir({ prefix: "postern-modes-" });
  try {
    const data = join(dir, "a", "data");
    const store = await openDataStore(data);
    await store.createAccount("alice", null);
    assert.equal(modeOf(data), 0o700);
    assert.equal(modeOf(join(data, DATABASE_FILE)), 0o600);
    assert.equal(modeOf(join(data, `${DATABASE_FILE}-wal`)), 0o600);
    await store.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("warnIfExposed() warns about a group- or world-readable key and not a 0600 one", async () => {
  const dir = await Deno.makeTempDir({ prefix: "postern-modes-" });
  try {
    const key = join(dir, "server.key");
    Deno.writeTextFileSync(key, "secret");
    const warnings: string[] = [];
    const warn = (m: string, p: Record<string, unknown>) =>
      warnings.push(m.replace(/\{(\w+)\}/g, (_, k) => String(p[k])));
    Deno.chmodSync(key, 0o640);
    assert.equal(await warnIfExposed("Private key file", key, warn), true);
    assert.match(warnings[0]!, /server\.key is readable by group or others \(mode 0640\)/);
    Deno.chmodSync(key, 0o600);
    assert.equal(await warnIfExposed("Private key file", key, warn), false);
    assert.equal(await warnIfExposed("Private key file", join(dir, "missing"), warn), false);
    assert.equal(warnings.length, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
