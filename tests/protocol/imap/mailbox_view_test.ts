/**
 * MailboxView with change events that carry message metadata: it reports what they carry
 * without reading the store, and reads the store when an event may be older than what the
 * client was already told.
 */
import assert from "node:assert/strict";
import { MemoryMailStore } from "../../../mailstore/memory/mod.ts";
import type { MailboxEvent, MessageMeta } from "../../../mailstore/mail_store.ts";
import { MailboxView } from "../../../protocol/imap/mailbox_view.ts";
import { Output } from "../../../protocol/imap/response.ts";
import { openSqliteMailStore } from "../../../mailstore/sqlite/mod.ts";
import { wrapStore } from "./_harness.ts";

const dec = new TextDecoder();
const raw = (n: number) => new TextEncoder().encode(`Subject: ${n}\r\n\r\nBody ${n}\r\n`);

async function setUp() {
  const memory = new MemoryMailStore();
  const account = await memory.createAccount("alice", null);
  const inbox = (await memory.getMailbox(account.id, "INBOX"))!;
  for (let i = 1; i <= 5; i++) await memory.append(inbox.id, { raw: raw(i) });
  let emit: (e: MailboxEvent) => void = () => {};
  let reads = 0;
  const store = wrapStore(memory, {
    watch(_id, listener) {
      emit = listener;
      return () => {};
    },
    getMessages(id, uids) {
      reads++;
      return memory.getMessages(id, uids);
    },
  });
  const view = await MailboxView.open(store, inbox, false);
  const sync = async () => {
    const out = new Output();
    await view.sync(store, out, { allowExpunge: true, condstore: false, qresync: false });
    return dec.decode(out.take());
  };
  const meta = (uid: number, modseq: number, flags: string[]): MessageMeta => ({
    uid,
    modseq,
    flags,
    internalDate: 0,
    size: 10,
  });
  return {
    memory,
    inbox,
    view,
    emit: (e: MailboxEvent) => emit(e),
    sync,
    meta,
    reads: () => reads,
  };
}

Deno.test("MailboxView reports flags an event carries without reading the store", async () => {
  const t = await setUp();
  t.emit({ kind: "flags", mailboxId: t.inbox.id, uids: [2], metas: [t.meta(2, 100, ["\\Seen"])] });
  assert.equal(await t.sync(), "* 2 FETCH (UID 2 FLAGS (\\Seen))\r\n");
  assert.equal(t.reads(), 0);
});

Deno.test("MailboxView keeps the newest of several carried changes, whatever their order", async () => {
  const t = await setUp();
  t.emit({
    kind: "flags",
    mailboxId: t.inbox.id,
    uids: [1],
    metas: [t.meta(1, 101, ["\\Flagged"])],
  });
  t.emit({ kind: "flags", mailboxId: t.inbox.id, uids: [1], metas: [t.meta(1, 100, ["\\Seen"])] });
  // A change committed before an append may be heard of after it.
  t.emit({ kind: "append", mailboxId: t.inbox.id, uids: [6], metas: [t.meta(6, 103, [])] });
  t.emit({ kind: "flags", mailboxId: t.inbox.id, uids: [3], metas: [t.meta(3, 102, ["\\Draft"])] });
  assert.equal(
    await t.sync(),
    "* 6 EXISTS\r\n* 1 FETCH (UID 1 FLAGS (\\Flagged))\r\n* 3 FETCH (UID 3 FLAGS (\\Draft))\r\n",
  );
  assert.equal(t.reads(), 0);
});

Deno.test("MailboxView reads the store for an event without metadata or older than it reported", async () => {
  const t = await setUp();
  await t.memory.storeFlags(t.inbox.id, [2], "add", ["\\Answered"]);
  t.emit({ kind: "flags", mailboxId: t.inbox.id, uids: [2], metas: [t.meta(2, 100, ["\\Seen"])] });
  t.emit({ kind: "flags", mailboxId: t.inbox.id, uids: [2] });
  assert.equal(await t.sync(), "* 2 FETCH (UID 2 FLAGS (\\Answered))\r\n");
  assert.equal(t.reads(), 1);
  t.emit({ kind: "flags", mailboxId: t.inbox.id, uids: [1], metas: [t.meta(1, 200, ["\\Seen"])] });
  assert.equal(await t.sync(), "* 1 FETCH (UID 1 FLAGS (\\Seen))\r\n");
  // Heard of late, and older than what the client was told: the store has the truth.
  t.emit({ kind: "flags", mailboxId: t.inbox.id, uids: [1], metas: [t.meta(1, 150, ["\\Draft"])] });
  await t.memory.storeFlags(t.inbox.id, [1], "add", ["\\Seen"]);
  assert.equal(await t.sync(), "");
  assert.equal(t.reads(), 2);
});

Deno.test("MailboxView numbers several expunges as the client sees each one", async () => {
  const t = await setUp();
  t.emit({ kind: "expunge", mailboxId: t.inbox.id, uids: [5, 2, 4] });
  assert.equal(await t.sync(), "* 2 EXPUNGE\r\n* 3 EXPUNGE\r\n* 3 EXPUNGE\r\n");
  assert.deepEqual(t.view.uids, [1, 3]);
  t.emit({ kind: "flags", mailboxId: t.inbox.id, uids: [3], metas: [t.meta(3, 100, ["\\Seen"])] });
  assert.equal(await t.sync(), "* 2 FETCH (UID 3 FLAGS (\\Seen))\r\n");
});

Deno.test("MailboxView reads the store for an event older than a FETCH or STORE reported", async () => {
  const t = await setUp();
  // The client was told message 3 at MODSEQ 300 by a FETCH or STORE answer, not by a sync.
  t.view.noteFlags(3, ["\\Flagged"]);
  t.view.noteModseq(300);
  // Another Worker's older change to it arrives late.
  t.emit({ kind: "flags", mailboxId: t.inbox.id, uids: [3], metas: [t.meta(3, 250, ["\\Draft"])] });
  await t.sync();
  assert.equal(t.reads(), 1);
});

Deno.test("MailboxView never announces a message whose expunge came before its append (two Workers)", async () => {
  const t = await setUp();
  // Worker A appends UID 6; a client on this Worker reads it from the store, then expunges
  // it. This Worker's expunge event reaches the view before A's append (another sender).
  await t.memory.append(t.inbox.id, { raw: raw(6), flags: ["\\Deleted"] });
  assert.deepEqual(await t.memory.expunge(t.inbox.id), [6]);
  t.emit({ kind: "expunge", mailboxId: t.inbox.id, uids: [6] });
  assert.equal(await t.sync(), "");
  t.emit({ kind: "append", mailboxId: t.inbox.id, uids: [6], metas: [t.meta(6, 50, [])] });
  assert.equal(await t.sync(), "");
  assert.deepEqual(t.view.uids, [1, 2, 3, 4, 5]);
  // Later arrivals are announced as usual.
  await t.memory.append(t.inbox.id, { raw: raw(7) });
  await t.memory.append(t.inbox.id, { raw: raw(8) });
  t.emit({ kind: "append", mailboxId: t.inbox.id, uids: [8], metas: [t.meta(8, 60, [])] });
  assert.equal(await t.sync(), "* 7 EXISTS\r\n");
  assert.deepEqual(t.view.uids, [1, 2, 3, 4, 5, 7, 8]);
});

Deno.test("a large opening claim of \\Recent is a range that expunges and arrivals keep exact", async () => {
  const memory = new MemoryMailStore();
  const account = await memory.createAccount("bob", null);
  const inbox = (await memory.getMailbox(account.id, "INBOX"))!;
  const total = 2500;
  for (let i = 1; i <= total; i++) await memory.append(inbox.id, { raw: raw(i) });
  const { recentRegistryFor } = await import("../../../protocol/imap/recent.ts");
  // Every message arrived before anyone looked: all are recent for the first claimer.
  recentRegistryFor(memory).noteArrival(inbox.id, inbox.uidValidity, 1);
  const view = await MailboxView.open(memory, inbox, false, "claim");
  const peek = await MailboxView.open(memory, inbox, true, "peek");
  assert.equal(view.recentCount, total);
  assert.equal(peek.recentCount, 0, "claimed by the first");
  assert.equal(view.isRecent(1), true);
  assert.equal(view.isRecent(total), true);
  assert.equal(view.isRecent(total + 1), false);
  await memory.storeFlags(inbox.id, [7], "add", ["\\Deleted"]);
  await memory.expunge(inbox.id, [7]);
  const sync = async (v: MailboxView) => {
    const out = new Output();
    await v.sync(memory, out, { allowExpunge: true, condstore: false, qresync: false });
    return dec.decode(out.take());
  };
  assert.equal(await sync(view), `* 7 EXPUNGE\r\n* ${total - 1} RECENT\r\n`);
  assert.equal(view.isRecent(7), false);
  assert.equal(view.recentCount, total - 1);
  await memory.append(inbox.id, { raw: raw(total + 1) });
  assert.equal(await sync(view), `* ${total} EXISTS\r\n* ${total} RECENT\r\n`);
  assert.equal(view.isRecent(total + 1), true);
  view.close();
  peek.close();
});

Deno.test("a view opened from a store's columns reports the writes made while and after it opens", async () => {
  const dir = await Deno.makeTempDir({ prefix: "postern-view-columns-" });
  const path = `${dir}/mail.db`;
  let store = await openSqliteMailStore(path, { startWorkers: true });
  try {
    const account = await store.createAccount("alice", null);
    const inbox = (await store.getMailbox(account.id, "INBOX"))!;
    await store.appendBatch(
      inbox.id,
      Array.from({ length: 3000 }, (_, i) => ({ raw: raw(i), flags: i % 2 ? ["\\Seen"] : [] })),
    );
    await store.listMessages(inbox.id);
    await store.close();
    // Reopened: the listing is not in memory, its snapshot is.
    store = await openSqliteMailStore(path, { startWorkers: true });
    const sqlite = store;
    let columns = 0;
    const counted = wrapStore(store, {
      async listColumns(id) {
        const c = await sqlite.listColumns(id);
        if (c !== null) columns++;
        return c;
      },
    });
    const opening = MailboxView.open(counted, inbox, false);
    // Writes in the same turn: after the view watches, before its columns are read.
    const early = [
      store.append(inbox.id, { raw: raw(3000), flags: ["$New"] }),
      store.storeFlags(inbox.id, [2], "add", ["\\Flagged"]),
    ];
    const view = await opening;
    await Promise.all(early);
    assert.equal(columns, 1);
    assert.equal(view.count, 3001);
    assert.equal(view.firstUnseen(), 1);
    await store.storeFlags(inbox.id, [3, 4], "add", ["\\Deleted"]);
    await store.expunge(inbox.id, [3]);
    await store.append(inbox.id, { raw: raw(3001) });
    const out = new Output();
    await view.sync(counted, out, { allowExpunge: true, condstore: false, qresync: false });
    const lines = dec.decode(out.take()).split("\r\n").filter((l) => l !== "");
    // The change to message 2 is in the columns (the client has been told no flags yet): its
    // event changes nothing.
    assert.deepEqual(lines, [
      "* 3 EXPUNGE",
      "* 3001 EXISTS",
      "* 3 FETCH (UID 4 FLAGS (\\Seen \\Deleted))",
    ]);
    const truth = (await store.listMessages(inbox.id)).map((m) => m.uid);
    assert.deepEqual(view.uids, truth);
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});
