import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { allocateSharedSync, openSqliteMailStore } from "../../mailstore/sqlite/mod.ts";
import type { EventRelay } from "../../mailstore/event_hub.ts";
import { knownNulFree, type MailboxEvent, type MessageMeta } from "../../mailstore/mail_store.ts";
import { copyStore } from "../../mailstore/transfer.ts";
import { BLOB_CHUNK } from "../../mailstore/sqlite/_chunks.ts";
import { ChunkStream } from "../../mailstore/sqlite/_chunk_stream.ts";
import { MemoryMailStore } from "../../mailstore/memory/mod.ts";
import { concatBytes } from "../../protocol/bytes.ts";
import { MIGRATIONS } from "../../mailstore/sqlite/schema.ts";
import { derivedData, mimeSupport } from "../../protocol/imap/mime_support.ts";
import { append, TestClient } from "../protocol/imap/_harness.ts";

const enc = new TextEncoder();

async function withDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "postern-sqlite-" });
  try {
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A file store at `path` with account alice, and her INBOX (the store is closed on failure). */
async function aliceStore(path: string) {
  const store = await openSqliteMailStore(path);
  try {
    const account = await store.createAccount("alice", null);
    const inbox = (await store.getMailbox(account.id, "INBOX"))!;
    return { store, account, inbox };
  } catch (error) {
    await store.close();
    throw error;
  }
}

/**
 * The shared write lock's cell once nobody holds it, or after a second: the checkpoint worker
 * takes the lock for a moment whenever it restarts the WAL, so a free lock may be held right now.
 */
async function writeLockAfterAWhile(sync: SharedArrayBuffer): Promise<number> {
  const cells = new Int32Array(sync);
  for (let i = 0; i < 100 && Atomics.load(cells, 3) !== 0; i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  return Atomics.load(cells, 3);
}

function count(path: string, sql: string): number {
  const db = new DatabaseSync(path);
  try {
    return Number(db.prepare(sql).get()?.n);
  } finally {
    db.close();
  }
}

Deno.test("openSqliteMailStore() keeps accounts, mailboxes and messages across reopen", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/mail.db`;
    let store = await openSqliteMailStore(path);
    const account = await store.createAccount("alice", "hash");
    const work = await store.createMailbox(account.id, "Work");
    await store.setSubscribed(account.id, "Work", true);
    await store.append(work.id, { raw: enc.encode("one"), flags: ["\\Seen"], summary: "s1" });
    await store.append(work.id, { raw: enc.encode("two"), internalDate: 1234 });
    await store.deleteMailbox(account.id, "Work");
    const recreated = await store.createMailbox(account.id, "Work");
    await store.append(recreated.id, { raw: enc.encode("three"), summary: "s3" });
    const before = await store.getMailbox(account.id, "Work");
    await store.close();

    store = await openSqliteMailStore(path);
    try {
      assert.equal(store.schemaVersion, MIGRATIONS.length);
      assert.deepEqual(await store.getAccount("alice"), account);
      const after = await store.getMailbox(account.id, "Work");
      assert.deepEqual(after, before);
      assert.ok(after && after.uidValidity !== work.uidValidity);
      assert.deepEqual(await store.getRaw(recreated.id, 1), enc.encode("three"));
      assert.equal(await store.getSummary(recreated.id, 1), "s3");
      assert.ok((await store.listSubscriptions(account.id)).includes("Work"));
      const third = await store.createMailbox(account.id, "Other");
      assert.ok(third.uidValidity > recreated.uidValidity, "UIDVALIDITY stays monotonic");
    } finally {
      await store.close();
    }
    assert.equal(count(path, "SELECT count(*) AS n FROM blobs"), 1, "deleted mail is freed");
    const db = new DatabaseSync(path);
    try {
      assert.equal(db.prepare("PRAGMA journal_mode").get()?.journal_mode, "wal");
    } finally {
      db.close();
    }
  });
});

Deno.test("openSqliteMailStore() refuses a database from a newer schema", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/mail.db`;
    await (await openSqliteMailStore(path)).close();
    const db = new DatabaseSync(path);
    db.exec(`UPDATE schema_version SET version = ${MIGRATIONS.length + 1}`);
    db.close();
    await assert.rejects(openSqliteMailStore(path), /newer than this program/);
  });
});

Deno.test("SqliteMailStore shares blobs between copies and frees them with the last one", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/mail.db`;
    const { store, account, inbox } = await aliceStore(path);
    try {
      const archive = (await store.getMailbox(account.id, "Archive"))!;
      await store.append(inbox.id, { raw: enc.encode("shared"), flags: ["\\Deleted"] });
      await store.copy(inbox.id, [1], archive.id);
      assert.equal(count(path, "SELECT count(*) AS n FROM blobs"), 1);
      assert.deepEqual(await store.expunge(inbox.id), [1]);
      assert.deepEqual(await store.getRaw(archive.id, 1), enc.encode("shared"));
      assert.equal(count(path, "SELECT count(*) AS n FROM blobs"), 1);
      await store.expunge(archive.id);
      assert.equal(count(path, "SELECT count(*) AS n FROM blobs"), 0);
      await store.append(archive.id, { raw: enc.encode("x") });
      await store.copy(archive.id, [2], inbox.id);
      await store.deleteAccount("alice");
      assert.equal(count(path, "SELECT count(*) AS n FROM blobs"), 0);
      assert.equal(count(path, "SELECT count(*) AS n FROM messages"), 0);
      assert.equal(count(path, "SELECT count(*) AS n FROM subscriptions"), 0);
    } finally {
      await store.close();
    }
  });
});

Deno.test("pruneExpunged() drops old records but VANISHED still covers them", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/mail.db`;
    let now = 1_800_000_000_000;
    const options = { now: () => now, expungedKeep: 2 };
    let store = await openSqliteMailStore(path, options);
    const account = await store.createAccount("alice", null);
    const inbox = (await store.getMailbox(account.id, "INBOX"))!;
    for (let i = 0; i < 8; i++) await store.append(inbox.id, { raw: enc.encode(`m${i}`) });
    await store.storeFlags(inbox.id, [1, 2, 3, 4, 5, 7], "add", ["\\Deleted"]);
    const mark = (await store.getMailbox(account.id, "INBOX"))!.highestModseq;
    await store.expunge(inbox.id);
    await store.close();

    now += 29 * 86_400_000;
    store = await openSqliteMailStore(path, options);
    await store.close();
    assert.equal(count(path, "SELECT count(*) AS n FROM expunged"), 6, "young records stay");

    now += 2 * 86_400_000;
    store = await openSqliteMailStore(path, options);
    try {
      assert.equal(count(path, "SELECT count(*) AS n FROM expunged"), 2, "the last 2 stay");
      const all = await store.changesSince(inbox.id, 0);
      assert.deepEqual(all.vanished, [1, 2, 3, 4, 5, 7]);
      assert.deepEqual(all.changed.map((m) => m.uid), [6, 8]);
      const recent = await store.changesSince(inbox.id, mark + 4);
      assert.deepEqual(recent.vanished, [5, 7]);
      const high = (await store.getMailbox(account.id, "INBOX"))!.highestModseq;
      assert.deepEqual(await store.changesSince(inbox.id, high), { changed: [], vanished: [] });
    } finally {
      await store.close();
    }
  });
});

Deno.test("SqliteMailStore emits no event for a write that failed", async () => {
  const store = await openSqliteMailStore(":memory:");
  try {
    const account = await store.createAccount("alice", null);
    await store.createMailbox(account.id, "A");
    const child = await store.createMailbox(account.id, "A/B");
    await store.createMailbox(account.id, "C/B");
    const events: unknown[] = [];
    store.watch(child.id, (e) => events.push(e));
    await assert.rejects(store.renameMailbox(account.id, "A", "C"), { code: "alreadyexists" });
    assert.deepEqual(events, []);
    assert.ok(await store.getMailbox(account.id, "A/B"));
  } finally {
    await store.close();
  }
});

Deno.test("openSqliteMailStore() upgrades a version 2 database to delivery addresses", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/mail.db`;
    const db = new DatabaseSync(path);
    db.exec("CREATE TABLE schema_version (version INTEGER NOT NULL)");
    db.exec(MIGRATIONS[0]!);
    db.exec(MIGRATIONS[1]!);
    db.exec("INSERT INTO schema_version (version) VALUES (2)");
    db.exec("INSERT INTO accounts (name, password_hash) VALUES ('old', NULL)");
    db.close();
    const store = await openSqliteMailStore(path);
    try {
      assert.equal(store.schemaVersion, MIGRATIONS.length);
      const old = await store.getAccount("old");
      assert.ok(old);
      await store.addAddress(old.id, "old@example.org");
      assert.equal((await store.findAccountByAddress("OLD@example.org"))?.name, "old");
    } finally {
      await store.close();
    }
  });
});

Deno.test("openSqliteMailStore() gives a version 3 database's mailboxes and messages object ids", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/mail.db`;
    const db = new DatabaseSync(path);
    db.exec("CREATE TABLE schema_version (version INTEGER NOT NULL)");
    for (const m of MIGRATIONS.slice(0, 3)) db.exec(m);
    db.exec("INSERT INTO schema_version (version) VALUES (3)");
    db.exec(`
      INSERT INTO accounts (id, name) VALUES (1, 'old');
      INSERT INTO mailboxes (id, account_id, name, uidvalidity, uidnext, highestmodseq)
        VALUES (1, 1, 'INBOX', 1, 3, 3), (2, 1, 'Box', 2, 2, 2);
      INSERT INTO blobs (id, raw) VALUES (1, x'61'), (2, x'62');
      INSERT INTO messages (mailbox_id, uid, modseq, flags, seen, deleted, internal_date, size,
        blob_id) VALUES (1, 1, 2, '', 0, 0, 5, 1, 1), (1, 2, 3, '', 0, 0, 5, 1, 2),
        (2, 1, 2, '', 0, 0, 5, 1, 1);
    `);
    db.close();
    const store = await openSqliteMailStore(path);
    try {
      assert.equal(store.schemaVersion, MIGRATIONS.length);
      const boxes = await store.listMailboxes(1);
      assert.equal(new Set(boxes.map((b) => b.objectId)).size, 2);
      const inbox = await store.getObjectInfo(1, [1, 2]);
      const box = await store.getObjectInfo(2, [1]);
      // A copy (a shared blob) keeps one EMAILID; another message has its own.
      assert.equal(inbox.get(1)!.emailId, box.get(1)!.emailId);
      assert.notEqual(inbox.get(1)!.emailId, inbox.get(2)!.emailId);
      assert.match(inbox.get(2)!.threadId, /^T[0-9a-f]{24}$/);
      assert.equal(inbox.get(1)!.saveDate, null);
    } finally {
      await store.close();
    }
  });
});

Deno.test("group commit: concurrent appends all resolve, survive reopen, and close removes the WAL", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/mail.db`;
    const store = await openSqliteMailStore(path);
    const account = await store.createAccount("alice", null);
    const inbox = (await store.getMailbox(account.id, "INBOX"))!;
    const events: number[] = [];
    store.watch(inbox.id, (e) => {
      if (e.kind === "append") events.push(...e.uids);
    });
    // Enough commits that the checkpoint worker starts and runs.
    const writers = Array.from({ length: 20 }, async (_, w) => {
      const uids: number[] = [];
      for (let i = 0; i < 10; i++) {
        const { uid } = await store.append(inbox.id, {
          raw: enc.encode(`Subject: ${w}/${i}\r\n\r\nbody\r\n`),
          flags: [],
        });
        // Its event was delivered before the append's answer.
        assert.ok(events.includes(uid));
        uids.push(uid);
      }
      return uids;
    });
    const uids = (await Promise.all(writers)).flat();
    assert.equal(new Set(uids).size, 200);
    await new Promise((r) => setTimeout(r, 250));
    await store.close();
    assert.equal(count(path, "SELECT count(*) AS n FROM messages"), 200);
    await assert.rejects(Deno.stat(`${path}-wal`), Deno.errors.NotFound);
  });
});

/**
 * The WAL as the wal-index (`-shm`) and the log file describe it: frames in the log
 * (`mxFrame`), frames copied to the database (`nBackfill`), the header's salts (new at every
 * restart of the log) and the page the first frame holds. Offsets from SQLite's WAL format
 * (https://sqlite.org/walformat.html), little-endian index on this machine.
 */
function walState(path: string) {
  const shm = new DataView(Deno.readFileSync(`${path}-shm`).buffer);
  const wal = Deno.readFileSync(`${path}-wal`);
  const log = new DataView(wal.buffer);
  return {
    mxFrame: shm.getUint32(16, true),
    nBackfill: shm.getUint32(96, true),
    salts: `${log.getUint32(16)}/${log.getUint32(20)}`,
    firstPage: log.getUint32(32),
  };
}

Deno.test("group commit: the checkpoint worker, not the event loop, restarts the WAL", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/mail.db`;
    const store = await openSqliteMailStore(path);
    try {
      const account = await store.createAccount("alice", null);
      const inbox = (await store.getMailbox(account.id, "INBOX"))!;
      const appendSome = async (n: number) => {
        for (let i = 0; i < n; i++) {
          await store.append(inbox.id, { raw: enc.encode(`Subject: ${i}\r\n\r\nbody\r\n`) });
        }
      };
      /** Waits until the worker has restarted the log: only its own one-page write is left. */
      const restarted = async () => {
        for (let i = 0; i < 60; i++) {
          await new Promise((r) => setTimeout(r, 25));
          const state = walState(path);
          if (state.mxFrame === 1) return state;
        }
        assert.fail(`the WAL was not restarted: ${JSON.stringify(walState(path))}`);
      };
      // More commits than start the worker; then it checkpoints them and restarts the log.
      await appendSome(80);
      const first = await restarted();
      // Its write is page 1 (user_version set to itself), and stays uncopied while nobody else
      // commits, so that the next commit appends instead of restarting the log itself.
      assert.equal(first.firstPage, 1);
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(walState(path), first);
      await appendSome(1);
      const appended = walState(path);
      assert.ok(appended.mxFrame > 1, "the commit went after the worker's frame");
      assert.equal(appended.salts, first.salts, "the event loop did not restart the log");
      // Once that is copied too, the worker restarts the log again.
      const second = await restarted();
      assert.notEqual(second.salts, first.salts);
      assert.equal(second.firstPage, 1);
      assert.equal(count(path, "SELECT user_version AS n FROM pragma_user_version"), 0);
    } finally {
      await store.close();
    }
    assert.equal(count(path, "SELECT count(*) AS n FROM messages"), 81);
  });
});

/** Holds every WAL sync until released, to watch what the store answers meanwhile. */
function holdSyncs(): { release(error?: Error): void; pending(): number; restore(): void } {
  const original = Deno.FsFile.prototype.syncData;
  const waiting: { resolve(): void; reject(e: Error): void }[] = [];
  Deno.FsFile.prototype.syncData = function (this: Deno.FsFile) {
    const synced = original.call(this);
    return new Promise<void>((resolve, reject) => {
      waiting.push({ resolve: () => synced.then(resolve, reject), reject });
    });
  };
  return {
    release(error) {
      for (const w of waiting.splice(0)) error ? w.reject(error) : w.resolve();
    },
    pending: () => waiting.length,
    restore() {
      Deno.FsFile.prototype.syncData = original;
    },
  };
}

const tick = () => new Promise((r) => setTimeout(r, 20));

Deno.test("group commit: no answer, read or event leaves the store before its WAL sync", async () => {
  await withDir(async (dir) => {
    const store = await openSqliteMailStore(`${dir}/mail.db`);
    const account = await store.createAccount("alice", null);
    const inbox = (await store.getMailbox(account.id, "INBOX"))!;
    const syncs = holdSyncs();
    try {
      const events: string[] = [];
      store.watch(inbox.id, (e) => events.push(e.kind));
      let appended = false;
      let listed = false;
      const append = store.append(inbox.id, {
        raw: enc.encode("Subject: a\r\n\r\nx\r\n"),
        flags: [],
      })
        .then(() => (appended = true));
      // A read that may see the uncommitted-to-disk message waits too.
      const list = store.listMessages(inbox.id).then((m) => {
        listed = true;
        return m;
      });
      await tick();
      assert.equal(syncs.pending(), 1);
      assert.deepEqual([appended, listed, events], [false, false, []]);
      // A second commit during the sync waits for a sync of its own, started after the first.
      const second = store.append(inbox.id, {
        raw: enc.encode("Subject: b\r\n\r\ny\r\n"),
        flags: [],
      });
      syncs.release();
      await append;
      await tick();
      assert.equal(listed, true);
      assert.equal((await list).length, 1);
      assert.deepEqual(events, ["append"]);
      assert.equal(syncs.pending(), 1);
      syncs.release();
      await second;
      assert.deepEqual(events, ["append", "append"]);
    } finally {
      syncs.restore();
      await store.close();
    }
  });
});

Deno.test("group commit: a failed WAL sync fails the write and closes the store to later calls", async () => {
  await withDir(async (dir) => {
    const store = await openSqliteMailStore(`${dir}/mail.db`);
    const account = await store.createAccount("alice", null);
    const inbox = (await store.getMailbox(account.id, "INBOX"))!;
    const syncs = holdSyncs();
    try {
      const append = store.append(inbox.id, {
        raw: enc.encode("Subject: a\r\n\r\nx\r\n"),
        flags: [],
      });
      await tick();
      syncs.release(new Error("EIO"));
      await assert.rejects(append, /could not sync/);
      await assert.rejects(store.listMessages(inbox.id), /could not sync/);
    } finally {
      syncs.restore();
      await store.close().catch(() => {});
    }
  });
});

Deno.test("a large mailbox is listed in chunks, cached, and every change shows", async () => {
  await withDir(async (dir) => {
    const store = await openSqliteMailStore(`${dir}/mail.db`);
    try {
      const account = await store.createAccount("alice", null);
      const inbox = (await store.getMailbox(account.id, "INBOX"))!;
      const n = 12_000;
      const raw = enc.encode("Subject: s\r\n\r\nx\r\n");
      for (let i = 0; i < n; i += 1000) {
        const batch = Array.from({ length: 1000 }, (_, k) => ({
          raw,
          flags: (i + k) % 3 === 0 ? [] : ["\\Seen"],
        }));
        await store.appendBatch(inbox.id, batch);
      }
      // An APPEND that lands while the listing is read between chunks: the listing is either
      // before or after it, never a mix, and the next listing has it.
      const listing = store.listMessages(inbox.id);
      const appended = store.append(inbox.id, { raw, flags: [] });
      const first = await listing;
      await appended;
      assert.ok(first.length === n || first.length === n + 1, `${first.length}`);
      assert.deepEqual(
        first.map((m) => m.uid),
        Array.from({ length: first.length }, (_, i) => i + 1),
      );
      const second = await store.listMessages(inbox.id);
      assert.equal(second.length, n + 1);
      // Cached: the very same array comes back while nothing changes.
      const third = await store.listMessages(inbox.id);
      assert.equal(third, second);
      // A flag change shows in the next listing and in getMessages, while the array handed
      // out before stays as it was (the change patched a copy).
      await store.storeFlags(inbox.id, [6], "add", ["\\Flagged"]);
      const fourth = await store.listMessages(inbox.id);
      assert.deepEqual(fourth[5]!.flags, ["\\Seen", "\\Flagged"]);
      assert.equal(fourth[4], second[4]);
      assert.deepEqual(second[5]!.flags, ["\\Seen"]);
      assert.equal(second.length, n + 1);
      const picked = await store.getMessages(inbox.id, [9, 6, 6, 99_999, 1, 12_001]);
      assert.deepEqual(picked.map((m) => m.uid), [1, 6, 9, 12_001]);
      assert.deepEqual(picked[1]!.flags, ["\\Seen", "\\Flagged"]);
      await store.storeFlags(inbox.id, [2, 3], "add", ["\\Deleted"]);
      await store.expunge(inbox.id, [2, 3]);
      const fifth = await store.listMessages(inbox.id);
      assert.equal(fifth.length, n - 1);
      assert.deepEqual((await store.getMessages(inbox.id, [1, 2, 3, 4])).map((m) => m.uid), [1, 4]);
      // The cached listing, patched by this connection's own writes (not listed again: the
      // same objects come back), equals one read afresh.
      const before = await store.listMessages(inbox.id);
      await store.append(inbox.id, { raw, flags: ["$Label", "\\Seen"] });
      await store.storeFlags(inbox.id, [4, 12_002], "remove", ["\\Seen"]);
      await store.storeFlags(inbox.id, [7, 8], "add", ["\\Deleted"]);
      await store.expunge(inbox.id);
      const plain = (list: readonly MessageMeta[]) =>
        list.map((m) => ({ ...m, flags: [...m.flags] }));
      const patched = await store.listMessages(inbox.id);
      assert.equal(patched.length, n - 2);
      assert.equal(patched[0], before[0]);
      assert.deepEqual(plain(patched), plain((await store.changesSince(inbox.id, 0)).changed));
    } finally {
      await store.close();
    }
  });
});

Deno.test("a small mailbox listed in chunks while writes land comes out as it is after them", async () => {
  await withDir(async (dir) => {
    // A store that caches no listing: followed from empty, the mailbox would not be read at all.
    const store = await openSqliteMailStore(`${dir}/mail.db`, { listingCacheMessages: 0 });
    try {
      const account = await store.createAccount("alice", null);
      const inbox = (await store.getMailbox(account.id, "INBOX"))!;
      const raw = enc.encode("Subject: s\r\n\r\nx\r\n");
      await store.appendBatch(
        inbox.id,
        Array.from({ length: 900 }, (_, k) => ({ raw, flags: k % 3 === 0 ? [] : ["\\Seen"] })),
      );
      await store.storeFlags(inbox.id, [5], "add", ["\\Deleted"]);
      // The listing notes the counters and reads its chunks later: these writes come between,
      // so the chunks see another state than the counters, and the changes since bring the
      // listing to the state after them.
      const listing = store.listMessages(inbox.id);
      const writes = Promise.all([
        store.append(inbox.id, { raw, flags: ["$New"] }),
        store.storeFlags(inbox.id, [600], "add", ["\\Flagged"]),
        store.expunge(inbox.id, [5]),
        store.append(inbox.id, { raw, flags: [] }),
      ]);
      const listed = await listing;
      await writes;
      const plain = (list: readonly MessageMeta[]) =>
        list.map((m) => ({ ...m, flags: [...m.flags] }));
      assert.equal(listed.length, 901);
      assert.deepEqual(plain(listed), plain((await store.changesSince(inbox.id, 0)).changed));
      assert.deepEqual(plain(await store.listMessages(inbox.id)), plain(listed));
    } finally {
      await store.close();
    }
  });
});

Deno.test("a large message is read by the blob reader, byte for byte", async () => {
  await withDir(async (dir) => {
    const store = await openSqliteMailStore(`${dir}/mail.db`);
    try {
      const account = await store.createAccount("alice", null);
      const inbox = (await store.getMailbox(account.id, "INBOX"))!;
      const raw = new Uint8Array(5 * 1024 * 1024);
      for (let i = 0; i < raw.length; i++) raw[i] = (i * 31 + (i >> 12)) & 0xff;
      raw.set(enc.encode("Subject: big\r\n\r\n"));
      const { uid } = await store.append(inbox.id, { raw, flags: [] });
      const [a, b] = await Promise.all([store.getRaw(inbox.id, uid), store.getRaw(inbox.id, uid)]);
      assert.equal(a?.length, raw.length);
      assert.ok(a !== null && b !== null && a !== b);
      assert.deepEqual(a, raw);
      assert.deepEqual(b, raw);
      assert.equal(await store.getRaw(inbox.id, uid + 1), null);
      await store.storeFlags(inbox.id, [uid], "add", ["\\Deleted"]);
      await store.expunge(inbox.id, [uid]);
      assert.equal(await store.getRaw(inbox.id, uid), null);
    } finally {
      await store.close();
    }
  });
});

/**
 * Two connections to `path` as two Workers have them: shared syncs, and a relay that hands each
 * one's events to the other a microtask later.
 */
async function relayedPair(path: string) {
  const heard: Set<(event: MailboxEvent) => void>[] = [new Set(), new Set()];
  const relay = (i: number): EventRelay => ({
    publish: (event) => queueMicrotask(() => heard[1 - i]!.forEach((l) => l(event))),
    subscribe: (listener) => {
      heard[i]!.add(listener);
      return () => heard[i]!.delete(listener);
    },
  });
  const sync = allocateSharedSync();
  const a = await openSqliteMailStore(path, { relay: relay(0), sharedSync: sync });
  const b = await openSqliteMailStore(path, { relay: relay(1), sharedSync: sync });
  return { a, b, sync };
}

Deno.test("two connections joined by a relay and shared syncs take every write and hear each other", async () => {
  const dir = await Deno.makeTempDir({ prefix: "postern-sqlite-shared-" });
  const path = `${dir}/mail.db`;
  const { a, b, sync } = await relayedPair(path);
  try {
    const account = await a.createAccount("u", null);
    const inbox = (await b.getMailbox(account.id, "INBOX"))!;
    const seenByB: number[] = [];
    b.watch(inbox.id, (e) => e.kind === "append" && seenByB.push(...e.uids));
    const results = await Promise.all(
      Array.from(
        { length: 20 },
        (_, i) => (i % 2 === 0 ? a : b).append(inbox.id, { raw: enc.encode(`m${i}`) }),
      ),
    );
    const uids = results.map((r) => r.uid).sort((x, y) => x - y);
    assert.deepEqual(uids, Array.from({ length: 20 }, (_, i) => i + 1));
    await new Promise((r) => setTimeout(r, 0));
    // B's listener hears its own appends and, through the relay, A's.
    assert.deepEqual(seenByB.sort((x, y) => x - y), uids);
    assert.equal((await a.listMessages(inbox.id)).length, 20);
    // The WAL syncs were taken in turns: at least one completed, none beyond those begun.
    const [, begun, done] = new Int32Array(sync);
    assert.ok(done! >= 1 && done! <= begun!, `${begun} begun, ${done} done`);
    // The shared write lock is free between writes; one left taken (its holder's Worker
    // ended mid-transaction) is passed over after a while, and SQLite still orders writes.
    assert.equal(await writeLockAfterAWhile(sync), 0);
    new Int32Array(sync)[3] = 1;
    const late = await Promise.all([
      a.append(inbox.id, { raw: enc.encode("late a") }),
      b.storeFlags(inbox.id, [1], "add", ["\\Seen"]),
    ]);
    assert.equal(late[0].uid, 21);
    assert.deepEqual(late[1].updated.map((m) => m.flags), [["\\Seen"]]);
    assert.equal(await writeLockAfterAWhile(sync), 0);
  } finally {
    await a.close();
    await b.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a cached listing follows the writes another connection relays", async () => {
  const dir = await Deno.makeTempDir({ prefix: "postern-sqlite-relay-listing-" });
  const path = `${dir}/mail.db`;
  const { a, b } = await relayedPair(path);
  try {
    const account = await a.createAccount("u", null);
    const inbox = (await a.getMailbox(account.id, "INBOX"))!;
    const raw = enc.encode("Subject: s\r\n\r\nx\r\n");
    await a.appendBatch(inbox.id, Array.from({ length: 1200 }, () => ({ raw })));
    // B followed the mailbox from empty through the relay; its first hand-out has the
    // listing's objects made afresh (one after the other) on a later turn.
    await b.listMessages(inbox.id);
    await new Promise((r) => setTimeout(r, 50));
    const before = await b.listMessages(inbox.id);
    const events: MailboxEvent[] = [];
    b.watch(inbox.id, (e) => events.push(e));
    await a.append(inbox.id, { raw, flags: ["$Label"] });
    await a.storeFlags(inbox.id, [3, 1201], "add", ["\\Deleted"]);
    await a.expunge(inbox.id);
    await new Promise((r) => setTimeout(r, 0));
    assert.deepEqual(events.map((e) => e.kind), ["append", "flags", "expunge"]);
    // Listeners see no store-internal fields.
    assert.ok(events.every((e) => !("listing" in e)));
    const plain = (list: readonly MessageMeta[]) =>
      list.map((m) => ({ ...m, flags: [...m.flags] }));
    const after = await b.listMessages(inbox.id);
    assert.equal(after.length, 1199);
    // Patched, not listed again: an untouched message is the same cached object.
    assert.equal(after[0], before[0]);
    assert.deepEqual(plain(after), plain((await b.changesSince(inbox.id, 0)).changed));
  } finally {
    await a.close();
    await b.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a cached listing catches up on another connection's writes before hearing of them", async () => {
  const dir = await Deno.makeTempDir({ prefix: "postern-sqlite-catch-up-" });
  const path = `${dir}/mail.db`;
  const sync = allocateSharedSync();
  // No relay: B hears nothing of A's writes, as when an event from another Worker is late.
  const a = await openSqliteMailStore(path, { sharedSync: sync });
  const b = await openSqliteMailStore(path, { sharedSync: sync });
  try {
    const account = await a.createAccount("u", null);
    const inbox = (await a.getMailbox(account.id, "INBOX"))!;
    const raw = enc.encode("Subject: s\r\n\r\nx\r\n");
    await a.appendBatch(inbox.id, Array.from({ length: 1200 }, () => ({ raw })));
    const plain = (list: readonly MessageMeta[]) =>
      list.map((m) => ({ ...m, flags: [...m.flags] }));
    const fresh = async () => plain((await b.changesSince(inbox.id, 0)).changed);
    const before = await b.listMessages(inbox.id);
    await a.append(inbox.id, { raw, flags: ["$Label"] });
    await a.storeFlags(inbox.id, [3, 1201], "add", ["\\Deleted"]);
    await a.storeFlags(inbox.id, [7], "add", ["\\Seen"]);
    await a.expunge(inbox.id);
    const after = await b.listMessages(inbox.id);
    assert.equal(after.length, 1199);
    // Caught up, not listed again: an untouched message is the same cached object.
    assert.equal(after[0], before[0]);
    assert.deepEqual(plain(after), await fresh());
    assert.deepEqual(
      plain(await b.getMessages(inbox.id, [7])),
      plain(await a.getMessages(inbox.id, [7])),
    );
    // More changes than a quarter of the listing: listed again, and still exact.
    const all = after.map((m) => m.uid);
    await a.storeFlags(inbox.id, all.slice(0, 600), "add", ["$Many"]);
    const again = await b.listMessages(inbox.id);
    assert.notEqual(again[1000], after[1000]);
    assert.deepEqual(plain(again), await fresh());
  } finally {
    await a.close();
    await b.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openSqliteMailStore() adds sort texts to a version 4 database; its messages sort as before", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/mail.db`;
    const messages = [
      "From: Bob <bob@x>\r\nSubject: Re: Budget\r\nDate: 2 Jan 2023 10:00 +0000\r\n" +
      "Message-ID: <b@x>\r\nReferences: <a@x>\r\n\r\nTwo\r\n",
      "From: alice@x\r\nSubject: Budget\r\nDate: 1 Jan 2023 10:00 +0000\r\n" +
      "Message-ID: <a@x>\r\n\r\nOne\r\n",
    ];
    // A version 4 database holding messages with search texts and no sort texts.
    let store = await openSqliteMailStore(path);
    const account = await store.createAccount("alice", null);
    const inbox = (await store.getMailbox(account.id, "INBOX"))!;
    for (const m of messages) {
      const raw = enc.encode(m);
      const { sortText: _, ...derived } = derivedData(mimeSupport, raw);
      await store.append(inbox.id, { raw, ...derived });
    }
    await store.close();
    const db = new DatabaseSync(path);
    db.exec(
      "DROP TABLE listing_snapshots; DROP TABLE blob_chunks; ALTER TABLE blobs DROP COLUMN chunks; " +
        "ALTER TABLE blobs DROP COLUMN nul; DROP TABLE pending_blobs; DROP TABLE sort_texts; " +
        "UPDATE schema_version SET version = 4",
    );
    db.close();
    store = await openSqliteMailStore(path);
    try {
      assert.equal(store.schemaVersion, MIGRATIONS.length);
      assert.deepEqual(
        (await store.getSortTexts(inbox.id, [1, 2])).map((r) => [r.uid, r.text]),
        [[1, null], [2, null]],
      );
      const c = new TestClient(store);
      await c.login("alice");
      const raw = "From: carol@x\r\nSubject: Fwd: Budget\r\nDate: 3 Jan 2023 10:00 +0000\r\n" +
        "Message-ID: <c@x>\r\n\r\nThree\r\n";
      assert.match(await append(c, "INBOX", raw), /OK/);
      const rows = await store.getSortTexts(inbox.id, [1, 3]);
      assert.deepEqual(rows.map((r) => r.uid), [1, 3]);
      assert.equal(rows[0]!.text, null);
      assert.equal(rows[1]!.text, derivedData(mimeSupport, enc.encode(raw)).sortText);
      assert.equal(rows[1]!.size, enc.encode(raw).length);
      await c.cmd("S SELECT INBOX");
      assert.equal((await c.cmd("T SORT (DATE) UTF-8 ALL"))[0], "* SORT 2 1 3");
      assert.equal((await c.cmd("T SORT (FROM SUBJECT) UTF-8 ALL"))[0], "* SORT 2 1 3");
      assert.equal((await c.cmd("T THREAD REFERENCES UTF-8 ALL"))[0], "* THREAD (2 (1)(3))");
    } finally {
      await store.close();
    }
  });
});

/** A large message in a buffer of its own, and a copy of it to compare with. */
function largeMessage(tag: string, bytes = 5 * 1024 * 1024): { raw: Uint8Array; copy: Uint8Array } {
  const raw = new Uint8Array(bytes);
  for (let i = 0; i < raw.length; i++) raw[i] = 0x61 + ((i * 7 + (i >> 10)) % 26);
  raw.set(enc.encode(`Subject: ${tag}\r\n\r\n`));
  return { raw, copy: raw.slice() };
}

Deno.test("a large message handed over is written by the blob writer with its texts, and given back", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/mail.db`;
    const { store, account, inbox } = await aliceStore(path);
    try {
      const { raw, copy } = largeMessage("big");
      const stored = await store.append(inbox.id, {
        raw,
        flags: ["\\Seen"],
        summary: "summary text",
        searchText: "search text",
        sortText: "sort text",
        handOver: true,
      });
      // The bytes went to the writer's thread: the caller's view is detached.
      assert.equal(raw.byteLength, 0);
      assert.deepEqual(await store.getRaw(inbox.id, stored.uid), copy);
      assert.equal(await store.getSummary(inbox.id, stored.uid), "summary text");
      const texts = await store.getSearchTexts(inbox.id, [stored.uid]);
      assert.equal(texts.get(stored.uid), "search text");
      const sorted = await store.getSortTexts(inbox.id, [stored.uid]);
      assert.deepEqual(sorted.map((r) => [r.text, r.size]), [["sort text", copy.length]]);
      const [meta] = await store.listMessages(inbox.id);
      assert.deepEqual([meta?.size, meta?.flags], [copy.length, ["\\Seen"]]);
      assert.equal((await store.getMailbox(account.id, "INBOX"))?.size, copy.length);
      // A message not handed over, or small, stays the caller's.
      const kept = largeMessage("kept");
      await store.append(inbox.id, { raw: kept.raw });
      assert.equal(kept.raw.byteLength, kept.copy.length);
      const small = enc.encode("Subject: small\r\n\r\nx\r\n");
      await store.append(inbox.id, { raw: small, handOver: true });
      assert.equal(small.byteLength, 21);
    } finally {
      await store.close();
    }
    assert.equal(count(path, "SELECT count(*) AS n FROM pending_blobs"), 0);
    assert.equal(count(path, "SELECT count(*) AS n FROM blobs"), 3);
  });
});

Deno.test("a large delivery that stores no message leaves no blob behind", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/mail.db`;
    const { store, inbox } = await aliceStore(path);
    try {
      const options = { deliveryKey: "k1", windowMs: 60_000 };
      const first = largeMessage("first");
      const delivered = await store.deliver(inbox.id, { raw: first.raw, handOver: true }, options);
      assert.equal(delivered.kind, "stored");
      // The same key again is a duplicate; over quota is refused: neither keeps its blob.
      const again = largeMessage("again");
      const duplicate = await store.deliver(inbox.id, { raw: again.raw, handOver: true }, options);
      assert.equal(duplicate.kind, "duplicate");
      const over = largeMessage("over");
      const refused = await store.deliver(inbox.id, { raw: over.raw, handOver: true }, {
        deliveryKey: "k2",
        windowMs: 0,
        quota: { storage: 1024, messages: null },
      });
      assert.deepEqual(refused, { kind: "overquota", resource: "storage" });
      // A mailbox that is gone fails the append, and its blob goes too.
      const lost = largeMessage("lost");
      await assert.rejects(store.append(inbox.id + 1000, { raw: lost.raw, handOver: true }));
      assert.equal((await store.listMessages(inbox.id)).length, 1);
    } finally {
      await store.close();
    }
    assert.equal(count(path, "SELECT count(*) AS n FROM pending_blobs"), 0);
    assert.equal(count(path, "SELECT count(*) AS n FROM blobs"), 1);
  });
});

Deno.test("a blob left pending by a crash is swept at a later open; one with its message stays", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/mail.db`;
    const now = Date.now();
    let store = await openSqliteMailStore(path);
    const account = await store.createAccount("alice", null);
    const inbox = (await store.getMailbox(account.id, "INBOX"))!;
    const { raw, copy } = largeMessage("kept");
    const { uid } = await store.append(inbox.id, { raw, handOver: true });
    await store.close();
    // What a crash between the writer's commit and the message's leaves: a pending blob.
    const db = new DatabaseSync(path);
    const orphan = Number(
      db.prepare("INSERT INTO blobs (raw, summary) VALUES (?, NULL)").run(enc.encode("orphan"))
        .lastInsertRowid,
    );
    db.prepare("INSERT INTO search_texts (blob_id, text) VALUES (?, 'x')").run(orphan);
    db.prepare("INSERT INTO pending_blobs (blob_id, since) VALUES (?, ?)").run(orphan, now);
    db.close();
    // A young one may be another connection's, still on its way: it stays.
    store = await openSqliteMailStore(path, { now: () => now + 1000 });
    await store.close();
    assert.equal(count(path, "SELECT count(*) AS n FROM pending_blobs"), 1);
    store = await openSqliteMailStore(path, { now: () => now + 3_600_000 });
    try {
      assert.deepEqual(await store.getRaw(inbox.id, uid), copy);
    } finally {
      await store.close();
    }
    assert.equal(count(path, "SELECT count(*) AS n FROM pending_blobs"), 0);
    assert.equal(count(path, "SELECT count(*) AS n FROM blobs"), 1);
    assert.equal(count(path, "SELECT count(*) AS n FROM search_texts"), 0);
  });
});

Deno.test("writes racing the blob writer wait for it without error, on one connection and on two", async () => {
  await withDir(async (dir) => {
    const store = await openSqliteMailStore(`${dir}/one.db`, { startWorkers: true });
    try {
      const account = await store.createAccount("alice", null);
      const inbox = (await store.getMailbox(account.id, "INBOX"))!;
      const results = await Promise.all(
        Array.from(
          { length: 24 },
          (_, i) =>
            i % 8 === 0
              ? store.append(inbox.id, { raw: largeMessage(`big ${i}`).raw, handOver: true })
              : i % 3 === 0
              ? store.storeFlags(inbox.id, [1], "add", [`k${i}`]).then(() => null)
              : store.append(inbox.id, { raw: enc.encode(`Subject: ${i}\r\n\r\nx\r\n`) }),
        ),
      );
      const uids = results.flatMap((r) => r === null ? [] : [r.uid]).sort((a, b) => a - b);
      assert.deepEqual(uids, Array.from({ length: uids.length }, (_, i) => i + 1));
      const metas = await store.listMessages(inbox.id);
      assert.equal(metas.filter((m) => m.size === 5 * 1024 * 1024).length, 3);
    } finally {
      await store.close();
    }
    const { a, b, sync } = await relayedPair(`${dir}/two.db`);
    try {
      const account = await a.createAccount("u", null);
      const inbox = (await b.getMailbox(account.id, "INBOX"))!;
      const results = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          (i % 2 === 0 ? a : b).append(
            inbox.id,
            i % 4 < 2
              ? { raw: largeMessage(`big ${i}`).raw, handOver: true }
              : { raw: enc.encode(`m${i}`) },
          )),
      );
      assert.deepEqual(
        results.map((r) => r.uid).sort((x, y) => x - y),
        Array.from({ length: 12 }, (_, i) => i + 1),
      );
      assert.equal(await writeLockAfterAWhile(sync), 0);
    } finally {
      await a.close();
      await b.close();
    }
  });
});

Deno.test("an in-memory store writes a handed-over message itself and leaves it to the caller", async () => {
  const store = await openSqliteMailStore(":memory:");
  try {
    const account = await store.createAccount("alice", null);
    const inbox = (await store.getMailbox(account.id, "INBOX"))!;
    const { raw, copy } = largeMessage("memory");
    const { uid } = await store.append(inbox.id, { raw, handOver: true });
    assert.equal(raw.byteLength, copy.length);
    assert.deepEqual(await store.getRaw(inbox.id, uid), copy);
  } finally {
    await store.close();
  }
});

Deno.test("a batch of large handed-over messages is stored all or nothing, with no blob left", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/mail.db`;
    const { store, inbox } = await aliceStore(path);
    try {
      const a = largeMessage("a");
      const b = largeMessage("b");
      const small = enc.encode("Subject: small\r\n\r\nx\r\n");
      const stored = await store.appendBatch(inbox.id, [
        { raw: a.raw, searchText: "text a", handOver: true },
        { raw: small, handOver: true },
        { raw: b.raw, summary: "summary b", handOver: true },
      ]);
      assert.equal(stored.kind, "stored");
      // Both large ones went to the blob writer.
      assert.deepEqual([a.raw.byteLength, b.raw.byteLength], [0, 0]);
      const uids = stored.kind === "stored" ? stored.results.map((r) => r.uid) : [];
      assert.deepEqual(await store.getRaw(inbox.id, uids[0]!), a.copy);
      assert.deepEqual(await store.getRaw(inbox.id, uids[2]!), b.copy);
      assert.equal((await store.getSearchTexts(inbox.id, [uids[0]!])).get(uids[0]!), "text a");
      assert.equal(await store.getSummary(inbox.id, uids[2]!), "summary b");
      // Over quota: nothing of the batch is stored, and its blobs go.
      const c = largeMessage("c");
      const d = largeMessage("d");
      const refused = await store.appendBatch(
        inbox.id,
        [{ raw: c.raw, handOver: true }, { raw: d.raw, handOver: true }],
        { storage: 16 * 1024 * 1024, messages: null },
      );
      assert.deepEqual(refused, { kind: "overquota", resource: "storage" });
      // A mailbox that is gone: the batch fails as a whole.
      const e = largeMessage("e");
      await assert.rejects(
        store.appendBatch(inbox.id + 1000, [{ raw: e.raw, handOver: true }, { raw: small }]),
      );
      assert.equal((await store.listMessages(inbox.id)).length, 3);
    } finally {
      await store.close();
    }
    assert.equal(count(path, "SELECT count(*) AS n FROM pending_blobs"), 0);
    assert.equal(count(path, "SELECT count(*) AS n FROM blobs"), 3);
  });
});

Deno.test("of two connections to one database, only the one asked to checkpoints, and the WAL still empties", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/mail.db`;
    /** Messages in the database file alone: what checkpoints copied out of the WAL. */
    const inFile = () => {
      Deno.copyFileSync(path, `${dir}/copy.db`);
      try {
        // Before any checkpoint even the schema is in the WAL only.
        const db = new DatabaseSync(`${dir}/copy.db`);
        try {
          const table = db.prepare("SELECT 1 FROM sqlite_schema WHERE name = 'messages'").get();
          return table === undefined ? 0 : Number(
            db.prepare(
              "SELECT count(*) AS n FROM messages",
            ).get()?.n,
          );
        } finally {
          db.close();
        }
      } finally {
        Deno.removeSync(`${dir}/copy.db`);
        try {
          Deno.removeSync(`${dir}/copy.db-wal`);
        } catch { /* none */ }
      }
    };
    const sync = allocateSharedSync();
    const other = await openSqliteMailStore(path, {
      sharedSync: sync,
      startWorkers: true,
      checkpointer: false,
    });
    let primary: Awaited<ReturnType<typeof openSqliteMailStore>> | null = null;
    try {
      const account = await other.createAccount("alice", null);
      const inbox = (await other.getMailbox(account.id, "INBOX"))!;
      // More commits than start a checkpointer of its own in group-commit mode.
      for (let i = 0; i < 100; i++) {
        await other.append(inbox.id, { raw: enc.encode(`Subject: ${i}\r\n\r\nbody\r\n`) });
      }
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(other.checkpointing, false);
      // Nobody checkpointed: the messages are in the WAL only (SQLite's inline checkpoint is
      // only the backstop, far above these pages).
      assert.equal(inFile(), 0);
      primary = await openSqliteMailStore(path, { sharedSync: sync, startWorkers: true });
      assert.equal(primary.checkpointing, true);
      let copied = 0;
      for (let i = 0; i < 40 && copied < 100; i++) {
        await new Promise((r) => setTimeout(r, 50));
        copied = inFile();
      }
      assert.equal(copied, 100, "the primary's worker checkpointed the other's commits");
    } finally {
      await other.close();
      await primary?.close();
    }
    assert.equal(count(path, "SELECT count(*) AS n FROM messages"), 100);
  });
});

Deno.test("a write waiting for another process's write lock does not hold the event loop", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/mail.db`;
    const { store, inbox } = await aliceStore(path);
    try {
      // Another process (an administrator's CLI) holds SQLite's write lock for 400 ms.
      const holder = new Deno.Command(Deno.execPath(), {
        args: [
          "eval",
          `import { DatabaseSync } from "node:sqlite";
           const db = new DatabaseSync(${JSON.stringify(path)});
           db.exec("BEGIN IMMEDIATE");
           console.log("held");
           const until = Date.now() + 400;
           while (Date.now() < until) { /* holding */ }
           db.exec("COMMIT");`,
        ],
        stdout: "piped",
      }).spawn();
      const out = holder.stdout.getReader();
      assert.equal(new TextDecoder().decode((await out.read()).value).trim(), "held");
      const order: string[] = [];
      const appended = store.append(inbox.id, { raw: enc.encode("Subject: waited\r\n\r\nx\r\n") })
        .then((r) => {
          order.push("append");
          return r;
        });
      // A timer due long before the holder lets go runs while the append waits.
      setTimeout(() => order.push("timer"), 50);
      const { uid } = await appended;
      assert.deepEqual(order, ["timer", "append"]);
      assert.equal((await holder.status).code, 0);
      out.releaseLock();
      assert.deepEqual((await store.listMessages(inbox.id)).map((m) => m.uid), [uid]);
    } finally {
      await store.close();
    }
  });
});

Deno.test("each way of storing records whether a blob holds NUL; getRaw() says which are known free", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/mail.db`;
    const { store, inbox } = await aliceStore(path);
    const big = (tag: string, nulAt?: number) => {
      const m = largeMessage(tag);
      if (nulAt !== undefined) m.raw[nulAt] = m.copy[nulAt] = 0;
      return m;
    };
    const uids: Record<string, number> = {};
    try {
      const small = (text: string) => enc.encode(`Subject: s\r\n\r\n${text}\r\n`);
      // On the store's own connection, small and large; by the blob writer (handed over).
      uids.small = (await store.append(inbox.id, { raw: small("plain") })).uid;
      uids.smallNul = (await store.append(inbox.id, { raw: small("a\0b") })).uid;
      uids.large = (await store.append(inbox.id, { raw: big("large").raw })).uid;
      uids.largeNul = (await store.append(inbox.id, { raw: big("largeNul", 4_000_000).raw })).uid;
      uids.writer = (await store.append(inbox.id, { raw: big("w").raw, handOver: true })).uid;
      uids.writerNul =
        (await store.append(inbox.id, { raw: big("wNul", 100).raw, handOver: true })).uid;
      const known = async () => {
        const out: Record<string, boolean> = {};
        for (const [name, uid] of Object.entries(uids)) {
          const raw = await store.getRaw(inbox.id, uid);
          assert.ok(raw !== null);
          // Never claimed free when it is not; large ones come from the blob reader.
          assert.equal(knownNulFree(raw) && raw.includes(0), false, name);
          out[name] = knownNulFree(raw);
        }
        return out;
      };
      const expected = {
        small: true,
        smallNul: false,
        large: true,
        largeNul: false,
        writer: true,
        writerNul: false,
      };
      assert.deepEqual(await known(), expected);
      // The import path (postern store copy) records it too.
      const target = await openSqliteMailStore(`${dir}/copy.db`);
      try {
        await copyStore(store, target);
        const inbox2 = (await target.getMailbox(
          (await target.getAccount("alice"))!.id,
          "INBOX",
        ))!;
        const raws = await Promise.all(
          Object.values(uids).map((uid) => target.getRaw(inbox2.id, uid)),
        );
        assert.deepEqual(raws.map((r) => knownNulFree(r!)), Object.values(expected));
      } finally {
        await target.close();
      }
    } finally {
      await store.close();
    }
    // Blobs stored before version 7 have no record: nothing is claimed for them.
    const db = new DatabaseSync(path);
    db.exec("UPDATE blobs SET nul = NULL");
    db.close();
    const reopened = await openSqliteMailStore(path);
    try {
      for (const uid of Object.values(uids)) {
        assert.equal(knownNulFree((await reopened.getRaw(inbox.id, uid))!), false);
      }
    } finally {
      await reopened.close();
    }
  });
});

Deno.test("the blob writer stores a large message in pieces, which getRaw() joins and openRaw() streams", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/mail.db`;
    const { store, inbox } = await aliceStore(path);
    try {
      const size = 4 * BLOB_CHUNK + 12_345;
      const { raw, copy } = largeMessage("pieces", size);
      copy[size - 1] = raw[size - 1] = 0;
      const { uid } = await store.append(inbox.id, { raw, handOver: true });
      const whole = largeMessage("whole");
      const kept = await store.append(inbox.id, { raw: whole.raw });
      assert.equal(count(path, "SELECT count(*) AS n FROM blob_chunks"), 5);
      assert.equal(
        count(path, "SELECT count(*) AS n FROM blobs WHERE chunks = 5 AND raw = x''"),
        1,
      );
      // Joined by the blob reader.
      assert.deepEqual(await store.getRaw(inbox.id, uid), copy);
      // Streamed: the pieces in order, then null; NUL recorded.
      const stream = (await store.openRaw(inbox.id, uid))!;
      assert.deepEqual([stream.size, stream.nulFree], [size, false]);
      const pieces: Uint8Array[] = [];
      for (let p = await stream.next(); p !== null; p = await stream.next()) pieces.push(p);
      assert.deepEqual(pieces.map((p) => p.length), [...Array(4).fill(BLOB_CHUNK), 12_345]);
      assert.deepEqual(concatBytes(pieces), copy);
      assert.equal(await stream.next(), null);
      // A message stored whole is not streamed; a missing one is null.
      assert.equal(await store.openRaw(inbox.id, kept.uid), undefined);
      assert.equal(await store.openRaw(inbox.id, uid + 100), null);
      // Two streams and a read at once each get their own bytes.
      const [a, b] = [(await store.openRaw(inbox.id, uid))!, (await store.openRaw(inbox.id, uid))!];
      const [wholeAgain, first] = await Promise.all([store.getRaw(inbox.id, kept.uid), a.next()]);
      assert.deepEqual(wholeAgain, whole.copy);
      assert.deepEqual(first, copy.subarray(0, BLOB_CHUNK));
      assert.deepEqual((await b.next())!, copy.subarray(0, BLOB_CHUNK));
      // Expunged: gone for new streams; the pieces go with the blob.
      await store.storeFlags(inbox.id, [uid], "add", ["\\Deleted"]);
      await store.expunge(inbox.id, [uid]);
      assert.equal(await store.openRaw(inbox.id, uid), null);
      assert.equal(await store.getRaw(inbox.id, uid), null);
    } finally {
      await store.close();
    }
    assert.equal(count(path, "SELECT count(*) AS n FROM blob_chunks"), 0);
  });
});

Deno.test("a stream fails instead of ending short, and ends empty for a blob gone before it began", async () => {
  const piece = new Uint8Array([1, 2, 3]);
  const short = new ChunkStream(9, true, 3);
  short.push(piece);
  short.push(piece);
  const waiting = short.next().then(() => short.next());
  short.end(2);
  assert.deepEqual(await waiting, piece);
  await assert.rejects(short.next(), /pieces ended after 2 of 3/);
  const failed = new ChunkStream(9, true, 3);
  const pending = failed.next();
  failed.fail("The store is closing");
  failed.push(piece);
  await assert.rejects(pending, /Message read failed: The store is closing/);
  await assert.rejects(failed.next(), /Message read failed/);
  const gone = new ChunkStream(9, true, 3);
  gone.end(0);
  assert.equal(await gone.next(), null);
  // A store closed while its blob reader streams: the bytes come whole, or the stream fails.
  await withDir(async (dir) => {
    const { store, inbox } = await aliceStore(`${dir}/mail.db`);
    const { raw, copy } = largeMessage("stopped", 24 * BLOB_CHUNK);
    const { uid } = await store.append(inbox.id, { raw, handOver: true });
    const stream = (await store.openRaw(inbox.id, uid))!;
    await store.close();
    const pieces: Uint8Array[] = [];
    try {
      for (let p = await stream.next(); p !== null; p = await stream.next()) pieces.push(p);
      assert.deepEqual(concatBytes(pieces), copy);
    } catch (error) {
      assert.match(String(error), /Message read failed/);
    }
  });
});

Deno.test("FETCH streams a body stored in pieces, byte for byte as a body stored whole is sent", async () => {
  await withDir(async (dir) => {
    const size = 5 * BLOB_CHUNK + 777;
    const body = largeMessage("streamed", size);
    // NUL in a middle piece and in the last: each goes out as 0x80 in a plain literal.
    for (const at of [2 * BLOB_CHUNK + 5, size - 3]) body.raw[at] = body.copy[at] = 0;
    const internalDate = Date.UTC(2024, 0, 2, 3, 4, 5);
    const file = await aliceStore(`${dir}/mail.db`);
    const memory = new MemoryMailStore();
    try {
      await file.store.append(file.inbox.id, { raw: body.raw, handOver: true, internalDate });
      const account = await memory.createAccount("alice", null);
      const inbox = (await memory.getMailbox(account.id, "INBOX"))!;
      await memory.append(inbox.id, { raw: body.copy.slice(), internalDate });
      const reads = { getRaw: 0, openRaw: 0 };
      const { getRaw, openRaw } = file.store;
      file.store.getRaw = (...args) => (reads.getRaw++, getRaw.apply(file.store, args));
      file.store.openRaw = (...args) => (reads.openRaw++, openRaw.apply(file.store, args));
      const sessions = [new TestClient(file.store), new TestClient(memory)];
      const transcripts: Uint8Array[][] = [[], []];
      for (const [i, c] of sessions.entries()) {
        await c.login();
        await c.cmd("s SELECT INBOX");
        c.session.onOutput = (bytes) => {
          transcripts[i]!.push(bytes.slice());
        };
      }
      const commands = [
        "a FETCH 1 (UID RFC822.SIZE BODY.PEEK[])", // streamed
        "b UID FETCH 1 (INTERNALDATE BODY.PEEK[] FLAGS)", // streamed
        "c FETCH 1 (BODY.PEEK[]<1048570.20>)", // partial: read whole, joined
        "d FETCH 1 (BODY.PEEK[HEADER] BODY.PEEK[TEXT])", // sections: read whole
        "e FETCH 1 RFC822", // streamed; sets \\Seen
        "f FETCH 1 (FLAGS)",
      ];
      for (const command of commands) {
        for (const c of sessions) await c.session.receive(enc.encode(command + "\r\n"));
      }
      const [streamed, whole] = transcripts.map((t) => concatBytes(t));
      assert.equal(streamed!.length, whole!.length);
      assert.ok(streamed!.every((b, i) => b === whole![i]), "the same bytes");
      const text = new TextDecoder("latin1").decode(streamed!);
      assert.ok(text.startsWith(`* 1 FETCH (UID 1 RFC822.SIZE ${size} BODY[] {${size}}\r\n`));
      assert.match(text, /\r\nf OK /);
      assert.equal(text.split("\x00").length, 1, "no NUL in a plain literal");
      assert.deepEqual(reads, { getRaw: 2, openRaw: 3 });
    } finally {
      await file.store.close();
    }
  });
});
