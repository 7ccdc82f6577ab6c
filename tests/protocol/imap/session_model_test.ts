import assert from "node:assert/strict";
import { message, newStore, TestClient } from "./_harness.ts";
import type { MailStore } from "../../../mailstore/mail_store.ts";
import { SqliteMailStore } from "../../../mailstore/sqlite/mod.ts";
import { xorshift32 } from "../../_support/rng.ts";

/** xorshift32, for reproducible schedules: a whole number below `n`. */
function rng(seed: number): (n: number) => number {
  const next = xorshift32(seed);
  return (n) => Math.floor(next() * n);
}

/** What a client believes: UIDs by sequence number (0 until a FETCH told it). */
class Model {
  uids: number[] = [];

  /** Applies untagged responses; checks FETCH UIDs against what the client knows. */
  apply(lines: readonly string[], command: string): void {
    for (const line of lines) {
      let m = /^\* (\d+) EXPUNGE$/.exec(line);
      if (m) {
        assert.ok(!/^(FETCH|STORE|SEARCH)/.test(command), `EXPUNGE during ${command}`);
        const seq = Number(m[1]);
        assert.ok(seq >= 1 && seq <= this.uids.length, `EXPUNGE ${seq} of ${this.uids.length}`);
        this.uids.splice(seq - 1, 1);
        continue;
      }
      m = /^\* (\d+) EXISTS$/.exec(line);
      if (m) {
        const n = Number(m[1]);
        assert.ok(n >= this.uids.length, `EXISTS went down: ${n} < ${this.uids.length}`);
        while (this.uids.length < n) this.uids.push(0);
        continue;
      }
      m = /^\* (\d+) FETCH \(.*UID (\d+)/.exec(line);
      if (m) {
        const seq = Number(m[1]);
        const uid = Number(m[2]);
        assert.ok(seq >= 1 && seq <= this.uids.length, `FETCH ${seq} of ${this.uids.length}`);
        const known = this.uids[seq - 1]!;
        assert.ok(known === 0 || known === uid, `seq ${seq} was UID ${known}, now ${uid}`);
        this.uids[seq - 1] = uid;
        // UIDs ascend with sequence numbers.
        const prev = this.uids.slice(0, seq - 1).filter((u) => u !== 0).at(-1) ?? 0;
        assert.ok(prev < uid, `UID ${uid} at seq ${seq} after ${prev}`);
      }
    }
  }
}

async function sqliteStore(): Promise<MailStore> {
  const store = new SqliteMailStore(":memory:", { synchronous: "off" });
  await store.createAccount("alice", null);
  return store;
}

for (
  const [label, makeStore] of [["MemoryMailStore", newStore], [
    "SqliteMailStore",
    sqliteStore,
  ]] as const
) {
  Deno.test(`Three sessions on ${label} keep consistent sequence numbers under random changes`, async () => {
    for (const seed of [1, 7, 99]) {
      const store = await makeStore();
      const next = rng(seed);
      const clients: { c: TestClient; model: Model }[] = [];
      for (let i = 0; i < 3; i++) {
        const c = new TestClient(store);
        await c.login();
        clients.push({ c, model: new Model() });
      }
      for (const { c, model } of clients) model.apply(await c.cmd("s SELECT INBOX"), "SELECT");
      let appended = 0;
      for (let step = 0; step < 150; step++) {
        const { c, model } = clients[next(3)]!;
        const count = model.uids.length;
        const seq = count > 0 ? 1 + next(count) : 0;
        let command: string;
        switch (next(9)) {
          case 0:
          case 1: {
            const out = await c.cmd(
              `t APPEND INBOX {${message(`m${appended}`).length}+}\r\n${message(`m${appended++}`)}`,
            );
            model.apply(out, "APPEND");
            continue;
          }
          case 2:
            command = seq ? `STORE ${seq} +FLAGS (\\Deleted)` : "NOOP";
            break;
          case 3:
            command = "EXPUNGE";
            break;
          case 4:
            command = "FETCH 1:* (UID FLAGS)";
            if (count === 0) command = "NOOP";
            break;
          case 5:
            command = "SEARCH DELETED";
            break;
          case 6:
            command = seq ? `MOVE ${seq} Archive` : "NOOP";
            break;
          case 7:
            command = "UID FETCH 1:* (UID)";
            break;
          default:
            command = "NOOP";
        }
        const out = await c.cmd(`t ${command}`);
        assert.match(out.at(-1)!, /^t OK/, `${command}: ${out.join(" | ")}`);
        model.apply(out, command);
      }
      const inbox = (await store.getMailbox((await store.getAccount("alice"))!.id, "INBOX"))!;
      const truth = (await store.listMessages(inbox.id)).map((m) => m.uid);
      for (const { c, model } of clients) {
        model.apply(await c.cmd("t NOOP"), "NOOP");
        model.apply(await c.cmd("t UID FETCH 1:* (UID)"), "UID FETCH");
        assert.deepEqual(model.uids, truth, `seed ${seed}`);
      }
      await store.close();
    }
  });
}
