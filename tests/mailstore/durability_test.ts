import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { openSqliteMailStore } from "../../mailstore/sqlite/mod.ts";
import { durabilityMessage } from "./durability_message.ts";

const child = new URL("./durability_child.ts", import.meta.url).pathname;

Deno.test("SqliteMailStore keeps every acknowledged append and flag change across kill -9", async () => {
  const dir = await Deno.makeTempDir({ prefix: "postern-durability-" });
  try {
    const path = `${dir}/mail.db`;
    const proc = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", child, path],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const acked = new Map<number, number>();
    const flagged = new Set<number>();
    const decoder = new TextDecoder();
    let buffered = "";
    let killed = false;
    let readyAt = 0;
    const reader = proc.stdout.getReader();
    // If the child hangs without output, this ends the read loop below.
    const guard = setTimeout(() => {
      try {
        proc.kill("SIGKILL");
      } catch { /* already gone */ }
    }, 20_000);
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      buffered += decoder.decode(value, { stream: true });
      let nl: number;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (line === "ready") {
          readyAt = Date.now();
          continue;
        }
        const [first, second] = line.split(" ");
        if (first === "f") flagged.add(Number(second));
        else acked.set(Number(first), Number(second));
      }
      if (!killed && readyAt > 0 && Date.now() - readyAt >= 1000) {
        proc.kill("SIGKILL");
        killed = true;
      }
    }
    clearTimeout(guard);
    reader.releaseLock();
    await proc.stdout.cancel();
    const status = await proc.status;
    const stderr = new TextDecoder().decode(
      await new Response(proc.stderr).arrayBuffer(),
    );
    assert.ok(killed, `child ended on its own: ${stderr}`);
    assert.equal(status.signal, "SIGKILL");
    assert.ok(acked.size > 0, `no acknowledged appends: ${stderr}`);

    const check = new DatabaseSync(path);
    try {
      const integrity = check.prepare("PRAGMA integrity_check").all();
      assert.deepEqual(integrity.map((r) => r.integrity_check), ["ok"]);
    } finally {
      check.close();
    }
    // An hour later, so that a blob left pending by the kill is swept at this open.
    const store = await openSqliteMailStore(path, { now: () => Date.now() + 3_600_000 });
    try {
      const account = await store.getAccount("crash");
      assert.ok(account);
      const inbox = await store.getMailbox(account.id, "INBOX");
      assert.ok(inbox);
      assert.ok(inbox.messages >= acked.size);
      const metas = new Map((await store.listMessages(inbox.id)).map((m) => [m.uid, m]));
      for (const [n, uid] of acked) {
        const raw = await store.getRaw(inbox.id, uid);
        assert.ok(raw, `acknowledged message ${n} (UID ${uid}) is present`);
        assert.deepEqual(raw, durabilityMessage(n), `message ${n} is byte-identical`);
        const flags = flagged.has(uid) ? ["$N" + n, "\\Flagged"] : ["$N" + n];
        if (flagged.has(uid) || n % 3 !== 0) assert.deepEqual(metas.get(uid)?.flags, flags);
      }
      assert.ok(flagged.size > 0, "some flag changes were acknowledged");
      assert.ok(
        [...acked.keys()].some((n) => n % 10 === 5),
        "some large appends were acknowledged",
      );
      console.log(
        `durability: ${acked.size} appends and ${flagged.size} flag changes survived kill -9`,
      );
    } finally {
      await store.close();
    }
    const after = new DatabaseSync(path);
    try {
      const pending = after.prepare("SELECT count(*) AS n FROM pending_blobs").get();
      const orphans = after.prepare(
        "SELECT count(*) AS n FROM blobs b WHERE NOT EXISTS (SELECT 1 FROM messages WHERE blob_id = b.id)",
      ).get();
      assert.deepEqual([pending?.n, orphans?.n], [0, 0]);
    } finally {
      after.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
