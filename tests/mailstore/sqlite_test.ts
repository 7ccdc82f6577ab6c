import { openSqliteMailStore } from "../../mailstore/sqlite/mod.ts";
import { runMailStoreContract } from "./contract.ts";

const dir = await Deno.makeTempDir({ prefix: "postern-sqlite-" });
let n = 0;

runMailStoreContract("SqliteMailStore", () => openSqliteMailStore(`${dir}/store-${n++}.db`));

// Registered last, so it runs after every case above in this file.
Deno.test("SqliteMailStore: the contract run leaves no temporary files", async () => {
  await Deno.remove(dir, { recursive: true });
});
