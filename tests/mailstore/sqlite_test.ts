import assert from "node:assert/strict";
import { openSqliteMailStore } from "../../mailstore/sqlite/mod.ts";
import { runMailStoreContract } from "./contract.ts";

const dir = await Deno.makeTempDir({ prefix: "postern-sqlite-" });
let n = 0;

runMailStoreContract("SqliteMailStore", () => openSqliteMailStore(`${dir}/store-${n++}.db`));

// Registered last, so it runs after every case above in this file.
Deno.test("SqliteMailStore: every contract store is closed cleanly, with no -wal, -shm or other files", async () => {
  try {
    const names = [];
    for await (const entry of Deno.readDir(dir)) names.push(entry.name);
    const expected = Array.from({ length: n }, (_, i) => `store-${i}.db`);
    assert.ok(n > 0);
    assert.deepEqual(names.sort(), expected.sort());
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
