import assert from "node:assert/strict";
import postgres from "postgres";
import type { MailboxEvent } from "../../mailstore/mail_store.ts";
import { openPostgresMailStore, type PostgresMailStore } from "../../mailstore/postgres/mod.ts";
import { MIGRATIONS } from "../../mailstore/postgres/schema.ts";
import { postgresAvailable, startPostgres } from "../_support/postgres.ts";
import { runMailStoreContract } from "./contract.ts";

const available = postgresAvailable();
const server = available ? await startPostgres() : null;
let n = 0;

async function freshDatabase(): Promise<string> {
  return await server!.createDatabase(`db_${n++}`);
}

const enc = new TextEncoder();
const message = (i: number) => enc.encode(`Subject: ${i}\r\n\r\nBody ${i}\r\n`);

/** Two store instances on one database: two nodes, as far as the store can tell. */
async function twoNodes(): Promise<[PostgresMailStore, PostgresMailStore, string]> {
  const url = await freshDatabase();
  const [a, b] = await Promise.all([
    openPostgresMailStore({ url, poolSize: 4 }),
    openPostgresMailStore({ url, poolSize: 4 }),
  ]);
  return [a, b, url];
}

/** Waits (at most `ms`) until `ready()` holds; a generous behaviour bound, not a timing check. */
async function until(ready: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ready()) {
    if (Date.now() > deadline) throw new Error("Timed out waiting for a condition");
    await new Promise((r) => setTimeout(r, 20));
  }
}

if (server) {
  runMailStoreContract("PostgresMailStore", async () => {
    return await openPostgresMailStore({ url: await freshDatabase(), poolSize: 4 });
  });
}

function pgTest(name: string, fn: () => Promise<void>): void {
  Deno.test({ name: `PostgresMailStore: ${name}`, ignore: !available, fn });
}

pgTest(
  "two nodes migrating one fresh database at once both end at the latest version",
  async () => {
    const url = await freshDatabase();
    const stores = await Promise.all(
      Array.from({ length: 3 }, () => openPostgresMailStore({ url, poolSize: 2 })),
    );
    try {
      for (const s of stores) assert.equal(await s.schemaVersion(), MIGRATIONS.length);
    } finally {
      for (const s of stores) await s.close();
    }
  },
);

pgTest(
  "a version 2 database gets MAILBOXIDs, and one EMAILID per blob for its messages",
  async () => {
    const url = await freshDatabase();
    const sql = postgres(url, { onnotice: () => {} });
    try {
      await sql.unsafe("CREATE TABLE postern_schema (version integer PRIMARY KEY)");
      for (const [i, m] of MIGRATIONS.slice(0, 2).entries()) {
        await sql.unsafe(m);
        await sql.unsafe("INSERT INTO postern_schema (version) VALUES ($1)", [i + 1]);
      }
      await sql.unsafe(`
      INSERT INTO accounts (id, name) VALUES (1, 'old');
      INSERT INTO mailboxes (id, account_id, name, uidvalidity, uidnext, highestmodseq)
        VALUES (1, 1, 'INBOX', 1, 3, 3), (2, 1, 'Box', 2, 2, 2);
      INSERT INTO blobs (id, raw) VALUES (1, 'a'), (2, 'b');
      INSERT INTO messages (mailbox_id, uid, modseq, flags, seen, deleted, internal_date, size,
        blob_id) VALUES (1, 1, 2, '', false, false, 5, 1, 1), (1, 2, 3, '', false, false, 5, 1, 2),
        (2, 1, 2, '', false, false, 5, 1, 1);
    `);
    } finally {
      await sql.end();
    }
    const store = await openPostgresMailStore({ url, poolSize: 2 });
    try {
      assert.equal(await store.schemaVersion(), MIGRATIONS.length);
      const boxes = await store.listMailboxes(1);
      assert.equal(boxes.length, 2);
      assert.equal(new Set(boxes.map((b) => b.objectId)).size, 2);
      for (const b of boxes) assert.match(b.objectId, /^F[0-9a-f]{24}$/);
      const inbox = await store.getObjectInfo(1, [1, 2]);
      const box = await store.getObjectInfo(2, [1]);
      assert.equal(inbox.get(1)!.emailId, box.get(1)!.emailId);
      assert.notEqual(inbox.get(1)!.emailId, inbox.get(2)!.emailId);
      assert.match(inbox.get(2)!.threadId, /^T[0-9a-f]{24}$/);
      assert.equal(inbox.get(1)!.saveDate, null);
    } finally {
      await store.close();
    }
  },
);

pgTest("concurrent appends from two nodes get distinct, increasing UIDs and MODSEQs", async () => {
  const [a, b] = await twoNodes();
  try {
    const account = await a.createAccount("alice", null);
    const inbox = (await b.getMailbox(account.id, "INBOX"))!;
    const perNode = 40;
    const run = async (store: PostgresMailStore, tag: number) => {
      const got: { uid: number; modseq: number }[] = [];
      // Several in flight per node, each awaited in order, so a node's own UIDs must grow.
      const lanes = Array.from({ length: 4 }, async (_, lane) => {
        for (let i = lane; i < perNode; i += 4) {
          got.push(await store.append(inbox.id, { raw: message(tag * 1000 + i) }));
        }
      });
      await Promise.all(lanes);
      return got;
    };
    const [fromA, fromB] = await Promise.all([run(a, 1), run(b, 2)]);
    const all = [...fromA, ...fromB];
    const uids = all.map((r) => r.uid).sort((x, y) => x - y);
    assert.deepEqual(uids, Array.from({ length: 2 * perNode }, (_, i) => i + 1));
    assert.equal(new Set(all.map((r) => r.modseq)).size, all.length);
    // Within one transaction order, the UID and the MODSEQ grow together.
    const byUid = [...all].sort((x, y) => x.uid - y.uid);
    for (let i = 1; i < byUid.length; i++) assert.ok(byUid[i]!.modseq > byUid[i - 1]!.modseq);
    const box = (await a.getMailbox(account.id, "INBOX"))!;
    assert.equal(box.messages, 2 * perNode);
    assert.equal(box.uidNext, 2 * perNode + 1);
    // An expunge of the highest UID on one node does not let the other reuse it.
    await a.storeFlags(inbox.id, [2 * perNode], "add", ["\\Deleted"]);
    await a.expunge(inbox.id);
    const next = await b.append(inbox.id, { raw: message(9999) });
    assert.equal(next.uid, 2 * perNode + 1);
  } finally {
    await a.close();
    await b.close();
  }
});

pgTest("opposite copies on two nodes at once neither deadlock nor lose messages", async () => {
  const [a, b] = await twoNodes();
  try {
    const account = await a.createAccount("alice", null);
    const one = await a.createMailbox(account.id, "One");
    const two = await a.createMailbox(account.id, "Two");
    for (let i = 0; i < 20; i++) {
      await a.append(one.id, { raw: message(i) });
      await a.append(two.id, { raw: message(100 + i) });
    }
    // Opposite directions on two nodes: the mailbox rows are locked in id order.
    await Promise.all([
      ...Array.from({ length: 10 }, (_, i) => a.copy(one.id, [i + 1], two.id)),
      ...Array.from({ length: 10 }, (_, i) => b.copy(two.id, [i + 1], one.id)),
    ]);
    const [l1, l2] = [await a.listMessages(one.id), await b.listMessages(two.id)];
    assert.equal(l1.length, 30);
    assert.equal(l2.length, 30);
    assert.equal(new Set(l1.map((m) => m.uid)).size, 30);
  } finally {
    await a.close();
    await b.close();
  }
});

pgTest("a copy shares the stored body, and the body goes with its last message", async () => {
  const url = await freshDatabase();
  const store = await openPostgresMailStore({ url, poolSize: 2 });
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const account = await store.createAccount("alice", null);
    const inbox = (await store.getMailbox(account.id, "INBOX"))!;
    const other = await store.createMailbox(account.id, "Other");
    await store.append(inbox.id, { raw: message(1), searchText: "one" });
    await store.copy(inbox.id, [1], other.id);
    await store.copy(inbox.id, [1], inbox.id);
    const blobs = async () => Number((await sql`SELECT count(*) AS n FROM blobs`)[0]!.n);
    assert.equal(await blobs(), 1);
    await store.storeFlags(inbox.id, [1, 2], "add", ["\\Deleted"]);
    await store.expunge(inbox.id);
    assert.equal(await blobs(), 1);
    assert.deepEqual(await store.getRaw(other.id, 1), message(1));
    await store.deleteMailbox(account.id, "Other");
    assert.equal(await blobs(), 0);
  } finally {
    await sql.end();
    await store.close();
  }
});

pgTest(
  "watch() on one node hears appends, flags, expunges and renames made on another",
  async () => {
    const [a, b] = await twoNodes();
    try {
      const account = await a.createAccount("alice", null);
      const inbox = (await b.getMailbox(account.id, "INBOX"))!;
      const other = await a.createMailbox(account.id, "Other");
      const heard: MailboxEvent[] = [];
      b.watch(inbox.id, (e) => heard.push(e));
      b.watch(other.id, (e) => heard.push(e));
      const mine: MailboxEvent[] = [];
      a.watch(inbox.id, (e) => mine.push(e));
      await a.append(inbox.id, { raw: message(1) });
      await a.append(inbox.id, { raw: message(2) });
      await a.copy(inbox.id, [1, 2], inbox.id);
      await a.storeFlags(inbox.id, [1, 3], "add", ["\\Deleted"]);
      // B reads a flag notice's messages when it hears it: were they expunged first (a loaded
      // machine), it would rightly tell no flag change for them. Let B hear it before that.
      await b.settle();
      await a.expunge(inbox.id);
      await a.renameMailbox(account.id, "Other", "Renamed");
      const expected: MailboxEvent[] = [
        { kind: "append", mailboxId: inbox.id, uids: [1] },
        { kind: "append", mailboxId: inbox.id, uids: [2] },
        { kind: "append", mailboxId: inbox.id, uids: [3, 4] },
        { kind: "flags", mailboxId: inbox.id, uids: [1, 3] },
        { kind: "expunge", mailboxId: inbox.id, uids: [1, 3] },
        { kind: "renamed", mailboxId: other.id, name: "Renamed" },
      ];
      await until(() => heard.length >= expected.length);
      assert.deepEqual(heard, expected);
      // The writing node was told once, directly, not a second time through NOTIFY.
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(mine.length, 5);
      // The state a listener re-reads on hearing is the committed one (QRESYNC consistent).
      const changes = await b.changesSince(inbox.id, 0);
      assert.deepEqual(changes.vanished, [1, 3]);
      assert.deepEqual(changes.changed.map((m) => m.uid), [2, 4]);
      await a.deleteMailbox(account.id, "Renamed");
      await until(() => heard.length > expected.length);
      assert.deepEqual(heard.at(-1), { kind: "deleted", mailboxId: other.id });
    } finally {
      await a.close();
      await b.close();
    }
  },
);

pgTest("concurrent deliveries of one key on two nodes store the message once", async () => {
  const [a, b] = await twoNodes();
  try {
    const account = await a.createAccount("alice", null);
    const inbox = (await a.getMailbox(account.id, "INBOX"))!;
    const options = { deliveryKey: "same", windowMs: 60_000 };
    const results = await Promise.all([
      a.deliver(inbox.id, { raw: message(1) }, options),
      b.deliver(inbox.id, { raw: message(1) }, options),
    ]);
    assert.deepEqual(results.map((r) => r.kind).sort(), ["duplicate", "stored"]);
    assert.equal((await b.listMessages(inbox.id)).length, 1);
  } finally {
    await a.close();
    await b.close();
  }
});

pgTest(
  "the per-user session limit counts sessions on every node, and a dead node's expire",
  async () => {
    const url = await freshDatabase();
    const [a, b] = await Promise.all([
      openPostgresMailStore({ url, poolSize: 2, sessionTtlMs: 2500 }),
      openPostgresMailStore({ url, poolSize: 2, sessionTtlMs: 2500 }),
    ]);
    const sql = postgres(url, { max: 1, onnotice: () => {} });
    try {
      const k1 = await a.claimSession("alice", 2);
      const k2 = await b.claimSession("alice", 2);
      assert.ok(k1 && k2 && k1 !== k2);
      assert.equal(await b.claimSession("alice", 2), null);
      assert.equal(await a.claimSession("alice", 2), null);
      assert.ok(await a.claimSession("bob", 2), "another account has its own count");
      await a.releaseSession(k1);
      await a.releaseSession(k1);
      const k3 = await b.claimSession("alice", 2);
      assert.ok(k3);
      // Concurrent claims from both nodes never exceed the limit.
      const claims = await Promise.all(
        Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).claimSession("carol", 3)),
      );
      assert.equal(claims.filter((k) => k !== null).length, 3);
      // A live node renews its sessions beyond their first expiry.
      await new Promise((r) => setTimeout(r, 3500));
      assert.equal(await a.claimSession("carol", 3), null);
      // A node that stopped renewing (it died): its sessions expire and stop counting.
      await sql`UPDATE sessions SET expires_at = 0 WHERE account = 'carol'`;
      assert.ok(await a.claimSession("carol", 3));
      // A node that closes ends its sessions.
      await b.close();
      assert.ok(await a.claimSession("alice", 2));
    } finally {
      await sql.end();
      await a.close();
      await b.close();
    }
  },
);

pgTest("opening a store on an unreachable server rejects with a connection error", async () => {
  await assert.rejects(
    openPostgresMailStore({
      url: `postgres://postern@127.0.0.1:1/postern`,
      connectTimeoutSeconds: 2,
    }),
  );
});

pgTest(
  "settle() on one node returns once its watchers heard what another node committed",
  async () => {
    const [a, b] = await twoNodes();
    try {
      const account = await a.createAccount("alice", null);
      const inbox = (await a.getMailbox(account.id, "INBOX"))!;
      for (let i = 1; i <= 3; i++) await a.append(inbox.id, { raw: message(i) });
      const heard: MailboxEvent[] = [];
      b.watch(inbox.id, (e) => heard.push(e));
      await b.settle();
      heard.length = 0;
      for (let round = 0; round < 5; round++) {
        const uid = round + 4;
        await a.append(inbox.id, { raw: message(uid) });
        await a.storeFlags(inbox.id, [uid], "add", ["\\Deleted"]);
        await a.expunge(inbox.id);
        // A NOOP on node B after these were acknowledged on node A must report them.
        await b.settle();
        // The flags change may go unheard: node B reads it after the message is gone.
        const told = heard.map((e) => `${e.kind} ${"uids" in e ? e.uids.join(",") : ""}`);
        assert.ok(told.includes(`append ${uid}`), `round ${round}: ${told.join("; ")}`);
        assert.equal(told.at(-1), `expunge ${uid}`, `round ${round}: ${told.join("; ")}`);
        heard.length = 0;
      }
    } finally {
      await a.close();
      await b.close();
    }
  },
);

/**
 * Runs `fn` with two nodes, alice's INBOX created on node A, and an administrator's connection
 * that can hide the mailboxes table (`hideMailboxes(true)`: every read of a mailbox fails, as
 * while the database comes back) and end both nodes' LISTEN connections.
 */
async function withOutage(
  fn: (
    a: PostgresMailStore,
    b: PostgresMailStore,
    inboxId: number,
    outage: { hideMailboxes(hidden: boolean): Promise<void>; endListeners(): Promise<void> },
  ) => Promise<void>,
): Promise<void> {
  const [a, b, url] = await twoNodes();
  const admin = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const account = await a.createAccount("alice", null);
    const inbox = (await a.getMailbox(account.id, "INBOX"))!;
    await fn(a, b, inbox.id, {
      hideMailboxes: async (hidden) => {
        const [from, to] = hidden
          ? ["mailboxes", "mailboxes_away"]
          : ["mailboxes_away", "mailboxes"];
        await admin.unsafe(`ALTER TABLE ${from} RENAME TO ${to}`);
      },
      endListeners: async () => {
        await admin.unsafe(
          `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
           WHERE datname = current_database() AND pid <> pg_backend_pid() AND query ILIKE 'listen%'`,
        );
      },
    });
  } finally {
    await admin.end();
    await a.close();
    await b.close();
  }
}

pgTest(
  "a resync that cannot read after a lost LISTEN tells no deletion and keeps later notices",
  () =>
    withOutage(async (a, b, inboxId, outage) => {
      const heard: MailboxEvent[] = [];
      b.watch(inboxId, (e) => heard.push(e));
      await a.append(inboxId, { raw: message(1) });
      await b.settle();
      await until(() => heard.some((e) => e.kind === "append"));
      heard.length = 0;
      // The resync after the lost LISTEN connections cannot read the mailbox.
      await outage.hideMailboxes(true);
      await outage.endListeners();
      await new Promise((r) => setTimeout(r, 1500));
      await outage.hideMailboxes(false);
      assert.deepEqual(heard.filter((e) => e.kind === "deleted"), []);
      // The chain of reads goes on: a later append on node A is heard on node B.
      const uid = (await a.append(inboxId, { raw: message(2) })).uid;
      await until(() => heard.some((e) => e.kind === "append" && e.uids.includes(uid)));
      assert.deepEqual(heard.filter((e) => e.kind === "deleted"), []);
    }),
);

pgTest(
  "a mailbox watched while it cannot be read is still covered by the next resync",
  () =>
    withOutage(async (a, b, inboxId, outage) => {
      const uid = (await a.append(inboxId, { raw: message(1) })).uid;
      const heard: MailboxEvent[] = [];
      await outage.hideMailboxes(true);
      b.watch(inboxId, (e) => heard.push(e));
      await b.settle();
      await outage.hideMailboxes(false);
      // The resync after the lost LISTEN connections starts this mailbox from the beginning,
      // so its watcher hears of the message appended before it watched.
      await outage.endListeners();
      await until(() => heard.some((e) => e.kind === "append" && e.uids.includes(uid)));
      assert.deepEqual(heard.filter((e) => e.kind === "deleted"), []);
    }),
);

// Registered last, so it runs after every case above in this file.

/** Reads a NUL-terminated string at `at`; returns it and where the next field starts. */
function cstring(bytes: Uint8Array, at: number): [string, number] {
  const end = bytes.indexOf(0, at);
  return [new TextDecoder().decode(bytes.subarray(at, end)), end + 1];
}

/**
 * True when `chunk` (whole frontend messages, as postgres.js writes them) runs COMMIT: a simple
 * query, or a Bind of a statement whose Parse (remembered in `prepared`) was COMMIT.
 */
function sendsCommit(chunk: Uint8Array, prepared: Map<string, string>): boolean {
  const view = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  let commit = false;
  for (let at = 0; at + 5 <= chunk.length;) {
    const type = String.fromCharCode(chunk[at]!);
    const end = at + 1 + view.getUint32(at + 1);
    if (type === "P") {
      const [name, next] = cstring(chunk, at + 5);
      prepared.set(name, cstring(chunk, next)[0]);
    }
    const text = type === "Q"
      ? cstring(chunk, at + 5)[0]
      : type === "B"
      ? prepared.get(cstring(chunk, cstring(chunk, at + 5)[1])[0]) ?? ""
      : "";
    if (text.trim().toLowerCase() === "commit") commit = true;
    at = end;
  }
  return commit;
}

/**
 * A TCP proxy in front of PostgreSQL. Armed, it acts on the next COMMIT a client sends:
 * "lose-answer" forwards it and drops the server's answer, "lose-commit" drops the COMMIT
 * itself; either way both sides are then closed, as when a network or a restart cuts a
 * connection at that moment.
 */
function commitCutter(url: string) {
  const target = new URL(url);
  const pgPort = Number(target.port);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const state = { armed: null as "lose-answer" | "lose-commit" | null, cuts: 0 };
  const open = new Set<Deno.Conn>();
  const close = (c: Deno.Conn) => {
    try {
      c.close();
    } catch { /* closed already */ }
    open.delete(c);
  };
  const pipe = async (client: Deno.Conn) => {
    const server = await Deno.connect({ hostname: "127.0.0.1", port: pgPort });
    open.add(client);
    open.add(server);
    let answersLost = false;
    const prepared = new Map<string, string>();
    (async () => {
      const buf = new Uint8Array(65536);
      for (let n; (n = await server.read(buf).catch(() => null)) !== null;) {
        if (!answersLost) await client.write(buf.subarray(0, n)).catch(() => {});
      }
      close(client);
    })();
    const buf = new Uint8Array(65536);
    for (let n; (n = await client.read(buf).catch(() => null)) !== null;) {
      const chunk = buf.subarray(0, n);
      const mode = state.armed;
      const commit = sendsCommit(chunk, prepared) && mode !== null;
      if (!commit || mode === "lose-answer") await server.write(chunk).catch(() => {});
      if (!commit) continue;
      state.armed = null;
      state.cuts++;
      answersLost = true;
      // Time for the server to act on what it got, then the cut.
      await new Promise((r) => setTimeout(r, 200));
      break;
    }
    close(client);
    close(server);
  };
  const accepting = (async () => {
    for await (const c of listener) pipe(c).catch(() => close(c));
  })();
  target.port = String((listener.addr as Deno.NetAddr).port);
  return {
    url: target.toString(),
    state,
    async stop() {
      listener.close();
      for (const c of [...open]) close(c);
      await accepting.catch(() => {});
    },
  };
}

pgTest(
  "a COMMIT whose answer is lost counts as made when it was made, and runs again when not",
  async () => {
    const cutter = commitCutter(await freshDatabase());
    const store = await openPostgresMailStore({ url: cutter.url, poolSize: 2 });
    try {
      const account = await store.createAccount("alice", null);
      const inbox = (await store.getMailbox(account.id, "INBOX"))!;
      const heard: MailboxEvent[] = [];
      const unwatch = store.watch(inbox.id, (e) => heard.push(e));
      // The COMMIT reached the server and committed; its answer did not come back.
      cutter.state.armed = "lose-answer";
      const first = await store.append(inbox.id, { raw: message(1) });
      // The COMMIT never reached the server: the transaction was rolled back, and runs again.
      cutter.state.armed = "lose-commit";
      const second = await store.append(inbox.id, { raw: message(2) });
      assert.equal(cutter.state.cuts, 2);
      const stored = await store.listMessages(inbox.id);
      assert.deepEqual(stored.map((m) => m.uid), [first.uid, second.uid], "each stored once");
      assert.deepEqual(
        await Promise.all(
          stored.map(async (m) => new TextDecoder().decode((await store.getRaw(inbox.id, m.uid))!)),
        ),
        [message(1), message(2)].map((b) => new TextDecoder().decode(b)),
      );
      assert.deepEqual(
        heard.flatMap((e) => e.kind === "append" ? e.uids : []),
        [first.uid, second.uid],
      );
      unwatch();
    } finally {
      await store.close();
      await cutter.stop();
    }
  },
);

Deno.test({
  name: "PostgresMailStore: the throwaway cluster stops",
  ignore: !available,
  fn: async () => {
    await server?.stop();
  },
});
