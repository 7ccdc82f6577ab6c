/**
 * The MailStore contract suite. Every implementation runs it:
 * `runMailStoreContract("memory", () => Promise.resolve(new MemoryMailStore()))`.
 * Each case opens a fresh store and closes it afterwards.
 */
import assert from "node:assert/strict";
import type { Mailbox, MailboxEvent, MailStore } from "../../mailstore/mail_store.ts";
import { MailStoreError } from "../../mailstore/mail_store.ts";

const enc = new TextEncoder();

function message(n: number | string, body = "Hello"): Uint8Array {
  return enc.encode(`Subject: message ${n}\r\nFrom: a@example.org\r\n\r\n${body}\r\n`);
}

async function rejectsWith(p: Promise<unknown>, code: MailStoreError["code"]): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof MailStoreError, `expected MailStoreError, got ${String(e)}`);
    assert.equal(e.code, code);
    assert.equal(e.name, "MailStoreError");
    return true;
  });
}

function sortedFlags(flags: readonly string[]): string[] {
  return [...flags].sort();
}

/** Registers the contract cases for one implementation. */
export function runMailStoreContract(name: string, open: () => Promise<MailStore>): void {
  function test(title: string, body: (store: MailStore) => Promise<void>): void {
    Deno.test(`${name}: ${title}`, async () => {
      const store = await open();
      try {
        await body(store);
      } finally {
        await store.close();
      }
    });
  }

  async function setup(store: MailStore, account = "alice") {
    const a = await store.createAccount(account, null);
    const inbox = await store.getMailbox(a.id, "INBOX");
    assert.ok(inbox);
    return { account: a, inbox };
  }

  async function mailbox(store: MailStore, accountId: number, box: string): Promise<Mailbox> {
    const m = await store.getMailbox(accountId, box);
    assert.ok(m, `mailbox ${box} exists`);
    return m;
  }

  // Accounts

  test("createAccount() creates the default mailboxes with SPECIAL-USE", async (store) => {
    const a = await store.createAccount("alice", "$scrypt$x");
    assert.equal(a.name, "alice");
    assert.equal(a.passwordHash, "$scrypt$x");
    const boxes = await store.listMailboxes(a.id);
    const byName = new Map(boxes.map((b) => [b.name, b]));
    assert.deepEqual([...byName.keys()].sort(), [
      "Archive",
      "Drafts",
      "INBOX",
      "Junk",
      "Sent",
      "Trash",
    ]);
    assert.equal(byName.get("INBOX")?.specialUse, null);
    assert.equal(byName.get("Sent")?.specialUse, "\\Sent");
    assert.equal(byName.get("Drafts")?.specialUse, "\\Drafts");
    assert.equal(byName.get("Trash")?.specialUse, "\\Trash");
    assert.equal(byName.get("Junk")?.specialUse, "\\Junk");
    assert.equal(byName.get("Archive")?.specialUse, "\\Archive");
    for (const b of boxes) {
      assert.equal(b.accountId, a.id);
      assert.equal(b.messages, 0);
      assert.equal(b.unseen, 0);
      assert.equal(b.size, 0);
      assert.equal(b.uidNext, 1);
      assert.ok(b.uidValidity > 0 && b.uidValidity <= 0xffffffff);
      assert.ok(b.highestModseq >= 1);
    }
  });

  test("account methods get, list, set the password and delete", async (store) => {
    const a = await store.createAccount("alice", null);
    const b = await store.createAccount("bob", "hash-b");
    assert.notEqual(a.id, b.id);
    assert.deepEqual(await store.getAccount("alice"), a);
    assert.equal(await store.getAccount("carol"), null);
    assert.deepEqual((await store.listAccounts()).map((x) => x.name).sort(), ["alice", "bob"]);
    await store.setPasswordHash("alice", "hash-a");
    assert.equal((await store.getAccount("alice"))?.passwordHash, "hash-a");
    await store.setPasswordHash("alice", null);
    assert.equal((await store.getAccount("alice"))?.passwordHash, null);
    await store.deleteAccount("bob");
    assert.equal(await store.getAccount("bob"), null);
    await rejectsWith(store.listMailboxes(b.id), "nonexistent");
    assert.deepEqual((await store.listAccounts()).map((x) => x.name), ["alice"]);
  });

  test("account errors carry the right codes", async (store) => {
    await store.createAccount("alice", null);
    await rejectsWith(store.createAccount("alice", null), "alreadyexists");
    await rejectsWith(store.createAccount("", null), "cannot");
    await rejectsWith(store.setPasswordHash("nobody", "x"), "nonexistent");
    await rejectsWith(store.deleteAccount("nobody"), "nonexistent");
  });

  test("deleteAccount() removes its mailboxes and tells their watchers", async (store) => {
    const { account, inbox } = await setup(store);
    const events: MailboxEvent[] = [];
    store.watch(inbox.id, (e) => events.push(e));
    await store.append(inbox.id, { raw: message(1) });
    await store.deleteAccount("alice");
    assert.deepEqual(events.at(-1), { kind: "deleted", mailboxId: inbox.id });
    await rejectsWith(store.listMessages(inbox.id), "nonexistent");
    const again = await store.createAccount("alice", null);
    assert.notEqual(again.id, account.id);
    const fresh = await mailbox(store, again.id, "INBOX");
    assert.notEqual(fresh.uidValidity, inbox.uidValidity);
    assert.equal(fresh.messages, 0);
  });

  // Mailboxes

  test("INBOX is matched case-insensitively and stored as INBOX", async (store) => {
    const { account, inbox } = await setup(store);
    for (const spelling of ["inbox", "Inbox", "iNbOx"]) {
      assert.equal((await store.getMailbox(account.id, spelling))?.id, inbox.id);
    }
    await rejectsWith(store.createMailbox(account.id, "inbox"), "alreadyexists");
    const child = await store.createMailbox(account.id, "inbox/Child");
    assert.equal(child.name, "INBOX/Child");
    assert.equal((await store.getMailbox(account.id, "Inbox/Child"))?.id, child.id);
    assert.equal(await store.getMailbox(account.id, "inbox/child"), null);
    assert.equal(await store.getMailbox(account.id, "sent"), null);
  });

  test("createMailbox() creates a mailbox with fresh counters", async (store) => {
    const { account } = await setup(store);
    const m = await store.createMailbox(account.id, "Projects/Postern", "\\Flagged");
    assert.equal(m.name, "Projects/Postern");
    assert.equal(m.specialUse, "\\Flagged");
    assert.equal(m.uidNext, 1);
    assert.equal(m.messages, 0);
    assert.equal(m.subscribed, false);
    assert.deepEqual(await store.getMailbox(account.id, "Projects/Postern"), m);
    const plain = await store.createMailbox(account.id, "Plain");
    assert.equal(plain.specialUse, null);
    const names = (await store.listMailboxes(account.id)).map((b) => b.name);
    assert.ok(names.includes("Projects/Postern") && names.includes("Plain"));
  });

  test("createMailbox() rejects duplicates and malformed names", async (store) => {
    const { account } = await setup(store);
    await store.createMailbox(account.id, "Work");
    await rejectsWith(store.createMailbox(account.id, "Work"), "alreadyexists");
    await rejectsWith(store.createMailbox(account.id, ""), "cannot");
    await rejectsWith(store.createMailbox(account.id, "a//b"), "cannot");
    await rejectsWith(store.createMailbox(account.id, "/a"), "cannot");
    await rejectsWith(store.createMailbox(account.id, "a/"), "cannot");
    await rejectsWith(store.createMailbox(account.id, "a\u0000b"), "cannot");
    await rejectsWith(store.createMailbox(account.id, "x".repeat(100_000)), "limit");
    await rejectsWith(store.createMailbox(9_999_999, "Work"), "nonexistent");
  });

  test("mailboxes of one account are invisible to another", async (store) => {
    const alice = await setup(store, "alice");
    const bob = await setup(store, "bob");
    assert.notEqual(alice.inbox.id, bob.inbox.id);
    await store.createMailbox(alice.account.id, "Secret");
    assert.equal(await store.getMailbox(bob.account.id, "Secret"), null);
    await store.append(alice.inbox.id, { raw: message(1) });
    assert.equal((await mailbox(store, bob.account.id, "INBOX")).messages, 0);
    await rejectsWith(store.copy(alice.inbox.id, [1], bob.inbox.id), "cannot");
  });

  test("deleteMailbox() deletes the mailbox and its messages but keeps children", async (store) => {
    const { account } = await setup(store);
    const parent = await store.createMailbox(account.id, "A");
    const child = await store.createMailbox(account.id, "A/B");
    await store.append(parent.id, { raw: message(1) });
    const events: MailboxEvent[] = [];
    store.watch(parent.id, (e) => events.push(e));
    await store.deleteMailbox(account.id, "A");
    assert.deepEqual(events, [{ kind: "deleted", mailboxId: parent.id }]);
    assert.equal(await store.getMailbox(account.id, "A"), null);
    assert.equal((await store.getMailbox(account.id, "A/B"))?.id, child.id);
    await rejectsWith(store.listMessages(parent.id), "nonexistent");
    await rejectsWith(store.getRaw(parent.id, 1), "nonexistent");
    await rejectsWith(store.deleteMailbox(account.id, "A"), "nonexistent");
    await rejectsWith(store.deleteMailbox(account.id, "inbox"), "cannot");
  });

  test("uidValidity changes only when a mailbox is recreated", async (store) => {
    const { account } = await setup(store);
    const first = await store.createMailbox(account.id, "Box");
    await store.append(first.id, { raw: message(1) });
    await store.storeFlags(first.id, [1], "add", ["\\Seen"]);
    await store.expunge(first.id);
    assert.equal((await mailbox(store, account.id, "Box")).uidValidity, first.uidValidity);
    await store.renameMailbox(account.id, "Box", "Box2");
    assert.equal((await mailbox(store, account.id, "Box2")).uidValidity, first.uidValidity);
    await store.renameMailbox(account.id, "Box2", "Box");
    await store.deleteMailbox(account.id, "Box");
    const second = await store.createMailbox(account.id, "Box");
    assert.notEqual(second.uidValidity, first.uidValidity);
    assert.notEqual(second.id, first.id);
    await store.deleteMailbox(account.id, "Box");
    const third = await store.createMailbox(account.id, "Box");
    assert.ok(![first.uidValidity, second.uidValidity].includes(third.uidValidity));
  });

  test("renameMailbox() renames the mailbox and its children", async (store) => {
    const { account } = await setup(store);
    const a = await store.createMailbox(account.id, "A");
    const ab = await store.createMailbox(account.id, "A/B");
    const abc = await store.createMailbox(account.id, "A/B/C");
    const ax = await store.createMailbox(account.id, "AX");
    await store.append(ab.id, { raw: message(1) });
    const events: MailboxEvent[] = [];
    store.watch(ab.id, (e) => events.push(e));
    await store.renameMailbox(account.id, "A", "Z/Y");
    assert.equal((await store.getMailbox(account.id, "Z/Y"))?.id, a.id);
    assert.equal((await store.getMailbox(account.id, "Z/Y/B"))?.id, ab.id);
    assert.equal((await store.getMailbox(account.id, "Z/Y/B/C"))?.id, abc.id);
    assert.equal((await store.getMailbox(account.id, "AX"))?.id, ax.id);
    assert.equal(await store.getMailbox(account.id, "A"), null);
    assert.equal(await store.getMailbox(account.id, "A/B"), null);
    assert.deepEqual(events, [{ kind: "renamed", mailboxId: ab.id, name: "Z/Y/B" }]);
    const moved = await mailbox(store, account.id, "Z/Y/B");
    assert.equal(moved.messages, 1);
    assert.equal(moved.uidValidity, ab.uidValidity);
    assert.deepEqual(await store.getRaw(moved.id, 1), message(1));
  });

  test("renameMailbox() errors carry the right codes", async (store) => {
    const { account } = await setup(store);
    await store.createMailbox(account.id, "A");
    await store.createMailbox(account.id, "B");
    await rejectsWith(store.renameMailbox(account.id, "Nope", "C"), "nonexistent");
    await rejectsWith(store.renameMailbox(account.id, "A", "B"), "alreadyexists");
    await rejectsWith(store.renameMailbox(account.id, "A", "inbox"), "alreadyexists");
    await rejectsWith(store.renameMailbox(account.id, "A", "A/Sub"), "cannot");
    await rejectsWith(store.renameMailbox(account.id, "A", ""), "cannot");
    assert.ok(await store.getMailbox(account.id, "A"));
  });

  test("renaming INBOX moves its messages and leaves INBOX empty", async (store) => {
    const { account, inbox } = await setup(store);
    const child = await store.createMailbox(account.id, "INBOX/Keep");
    await store.append(inbox.id, { raw: message(1), flags: ["\\Seen"] });
    await store.append(inbox.id, { raw: message(2), flags: ["$Label"], internalDate: 1e12 });
    const events: MailboxEvent[] = [];
    store.watch(inbox.id, (e) => events.push(e));
    await store.renameMailbox(account.id, "inbox", "Old Inbox");
    const after = await mailbox(store, account.id, "INBOX");
    assert.equal(after.id, inbox.id);
    assert.equal(after.messages, 0);
    assert.equal(after.uidValidity, inbox.uidValidity);
    assert.ok(after.uidNext >= 3, "INBOX UIDs keep growing");
    assert.deepEqual(events.filter((e) => e.kind === "expunge").flatMap((e) => e.uids), [1, 2]);
    const old = await mailbox(store, account.id, "Old Inbox");
    assert.notEqual(old.id, inbox.id);
    assert.equal(old.messages, 2);
    assert.equal(old.unseen, 1);
    const list = await store.listMessages(old.id);
    assert.deepEqual(await store.getRaw(old.id, list[0]!.uid), message(1));
    assert.deepEqual(await store.getRaw(old.id, list[1]!.uid), message(2));
    assert.deepEqual(list[1]!.flags, ["$Label"]);
    assert.equal(list[1]!.internalDate, 1e12);
    assert.equal((await store.getMailbox(account.id, "INBOX/Keep"))?.id, child.id);
    const appended = await store.append(inbox.id, { raw: message(3) });
    assert.ok(appended.uid >= 3);
  });

  test("subscriptions follow set, unset and rename, and survive delete", async (store) => {
    const { account } = await setup(store);
    const defaults = await store.listSubscriptions(account.id);
    assert.ok(defaults.includes("INBOX"));
    await store.createMailbox(account.id, "News");
    await store.createMailbox(account.id, "News/Deno");
    assert.equal((await mailbox(store, account.id, "News")).subscribed, false);
    await store.setSubscribed(account.id, "News", true);
    await store.setSubscribed(account.id, "News/Deno", true);
    await store.setSubscribed(account.id, "News", true);
    assert.equal((await mailbox(store, account.id, "News")).subscribed, true);
    let subs = await store.listSubscriptions(account.id);
    assert.equal(subs.filter((s) => s === "News").length, 1);
    await store.renameMailbox(account.id, "News", "Feeds");
    subs = await store.listSubscriptions(account.id);
    assert.ok(subs.includes("Feeds") && subs.includes("Feeds/Deno"));
    assert.ok(!subs.includes("News") && !subs.includes("News/Deno"));
    await store.deleteMailbox(account.id, "Feeds/Deno");
    subs = await store.listSubscriptions(account.id);
    assert.ok(subs.includes("Feeds/Deno"), "a deleted mailbox stays subscribed");
    await store.setSubscribed(account.id, "Feeds/Deno", false);
    await store.setSubscribed(account.id, "Feeds", false);
    subs = await store.listSubscriptions(account.id);
    assert.ok(!subs.includes("Feeds") && !subs.includes("Feeds/Deno"));
    await store.setSubscribed(account.id, "inbox", false);
    assert.ok(!(await store.listSubscriptions(account.id)).includes("INBOX"));
    assert.equal((await mailbox(store, account.id, "INBOX")).subscribed, false);
    await rejectsWith(store.setSubscribed(account.id, "Ghost", true), "nonexistent");
  });

  // Messages

  test("append() stores raw bytes, flags, date and summary", async (store) => {
    const { account, inbox } = await setup(store);
    const raw = message(1, "x".repeat(1000));
    const r1 = await store.append(inbox.id, {
      raw,
      flags: ["\\seen", "$Work", "$WORK"],
      internalDate: 1_700_000_000_000,
      summary: '{"subject":"message 1"}',
    });
    raw[0] = 0;
    assert.equal(r1.uid, 1);
    assert.equal(r1.uidValidity, inbox.uidValidity);
    assert.ok(r1.modseq > inbox.highestModseq);
    const r2 = await store.append(inbox.id, { raw: message(2) });
    assert.equal(r2.uid, 2);
    assert.ok(r2.modseq > r1.modseq);
    const [m1, m2] = await store.listMessages(inbox.id);
    assert.ok(m1 && m2);
    assert.deepEqual(m1, {
      uid: 1,
      modseq: r1.modseq,
      flags: m1.flags,
      internalDate: 1_700_000_000_000,
      size: raw.byteLength,
    });
    assert.deepEqual(sortedFlags(m1.flags), ["$Work", "\\Seen"]);
    assert.deepEqual(m2.flags, []);
    assert.ok(Math.abs(m2.internalDate - Date.now()) < 60_000);
    const stored = await store.getRaw(inbox.id, 1);
    assert.deepEqual(stored, message(1, "x".repeat(1000)));
    assert.equal(await store.getSummary(inbox.id, 1), '{"subject":"message 1"}');
    assert.equal(await store.getSummary(inbox.id, 2), null);
    assert.equal(await store.getRaw(inbox.id, 3), null);
    assert.equal(await store.getSummary(inbox.id, 3), null);
    const box = await mailbox(store, account.id, "INBOX");
    assert.equal(box.messages, 2);
    assert.equal(box.unseen, 1);
    assert.equal(box.size, raw.byteLength + message(2).byteLength);
    assert.equal(box.uidNext, 3);
    assert.equal(box.highestModseq, r2.modseq);
  });

  test("getSearchTexts() reads the search text of many messages in one call", async (store) => {
    const { account, inbox } = await setup(store);
    for (let i = 1; i <= 6; i++) {
      await store.append(inbox.id, {
        raw: message(i),
        ...(i === 3 ? {} : { searchText: `text ${i}` }),
        summary: `s${i}`,
      });
    }
    const texts = await store.getSearchTexts(inbox.id, [6, 1, 2, 3, 5, 99]);
    assert.deepEqual([...texts].sort((a, b) => a[0] - b[0]), [
      [1, "text 1"],
      [2, "text 2"],
      [3, null],
      [5, "text 5"],
      [6, "text 6"],
    ]);
    assert.equal((await store.getSearchTexts(inbox.id, [])).size, 0);
    await store.storeFlags(inbox.id, [2, 4], "add", ["\\Deleted"]);
    await store.expunge(inbox.id);
    assert.deepEqual([...(await store.getSearchTexts(inbox.id, [1, 2, 4, 5])).keys()].sort(), [
      1,
      5,
    ]);
    const dest = await store.createMailbox(account.id, "Dest");
    const { mapping } = await store.copy(inbox.id, [1, 3], dest.id);
    const copied = await store.getSearchTexts(dest.id, mapping.map(([, u]) => u));
    assert.equal(copied.get(mapping[0]![1]), "text 1");
    assert.equal(copied.get(mapping[1]![1]), null);
    await store.expunge(inbox.id);
    await store.storeFlags(inbox.id, [1], "add", ["\\Deleted"]);
    await store.expunge(inbox.id);
    assert.equal(copied.get(mapping[0]![1]), "text 1");
    assert.equal(
      (await store.getSearchTexts(dest.id, [mapping[0]![1]])).get(mapping[0]![1]),
      "text 1",
      "a copy keeps the search text after the source is expunged",
    );
    await rejectsWith(store.getSearchTexts(9999, [1]), "nonexistent");
  });

  test("getSearchTexts() with a substring keeps matching texts and messages without one", async (store) => {
    const { inbox } = await setup(store);
    const texts = ["the needle here", "hay", "grüße needle", "needl", "ünïcödé"];
    for (const [i, searchText] of texts.entries()) {
      await store.append(inbox.id, { raw: message(i), searchText });
    }
    await store.append(inbox.id, { raw: message("none") });
    const all = [1, 2, 3, 4, 5, 6];
    const sorted = (m: Map<number, string | null>) => [...m].sort((a, b) => a[0] - b[0]);
    assert.deepEqual(sorted(await store.getSearchTexts(inbox.id, all, "needle")), [
      [1, "the needle here"],
      [3, "grüße needle"],
      [6, null],
    ]);
    assert.deepEqual(sorted(await store.getSearchTexts(inbox.id, all, "cöd")), [
      [5, "ünïcödé"],
      [6, null],
    ]);
    assert.deepEqual(sorted(await store.getSearchTexts(inbox.id, [2, 3], "")), [
      [2, "hay"],
      [3, "grüße needle"],
    ]);
    assert.deepEqual(sorted(await store.getSearchTexts(inbox.id, all, "NEEDLE")), [[6, null]]);
  });

  test("append() stores binary bytes and empty messages unchanged", async (store) => {
    const { inbox } = await setup(store);
    const bytes = new Uint8Array(4096);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 131) & 0xff;
    const r = await store.append(inbox.id, { raw: bytes });
    assert.deepEqual(await store.getRaw(inbox.id, r.uid), bytes);
    const e = await store.append(inbox.id, { raw: new Uint8Array(0) });
    assert.deepEqual(await store.getRaw(inbox.id, e.uid), new Uint8Array(0));
  });

  test("message methods reject unknown mailboxes and bad flags", async (store) => {
    const { inbox } = await setup(store);
    await rejectsWith(store.append(9_999_999, { raw: message(1) }), "nonexistent");
    await rejectsWith(store.listMessages(9_999_999), "nonexistent");
    await rejectsWith(store.getMessages(9_999_999, [1]), "nonexistent");
    await rejectsWith(store.getRaw(9_999_999, 1), "nonexistent");
    await rejectsWith(store.getSummary(9_999_999, 1), "nonexistent");
    await rejectsWith(store.storeFlags(9_999_999, [1], "add", ["\\Seen"]), "nonexistent");
    await rejectsWith(store.expunge(9_999_999), "nonexistent");
    await rejectsWith(store.changesSince(9_999_999, 0), "nonexistent");
    await rejectsWith(store.copy(inbox.id, [1], 9_999_999), "nonexistent");
    await rejectsWith(store.move(9_999_999, [1], inbox.id), "nonexistent");
    await rejectsWith(store.append(inbox.id, { raw: message(1), flags: ["a b"] }), "cannot");
    await rejectsWith(store.append(inbox.id, { raw: message(1), flags: [""] }), "cannot");
    const many = Array.from({ length: 1000 }, (_, i) => `$k${i}`);
    await rejectsWith(store.append(inbox.id, { raw: message(1), flags: many }), "limit");
    assert.equal((await store.listMessages(inbox.id)).length, 0);
  });

  test("getMessages() returns the existing UIDs in order", async (store) => {
    const { inbox } = await setup(store);
    for (let i = 1; i <= 5; i++) await store.append(inbox.id, { raw: message(i) });
    const got = await store.getMessages(inbox.id, [5, 2, 99, 2, 4]);
    assert.deepEqual(got.map((m) => m.uid), [2, 4, 5]);
    assert.deepEqual(await store.getMessages(inbox.id, []), []);
  });

  test("UIDs only grow, also after expunge and after deleting the highest UID", async (store) => {
    const { account, inbox } = await setup(store);
    for (let i = 1; i <= 3; i++) await store.append(inbox.id, { raw: message(i) });
    await store.storeFlags(inbox.id, [3], "add", ["\\Deleted"]);
    assert.deepEqual(await store.expunge(inbox.id), [3]);
    assert.equal((await mailbox(store, account.id, "INBOX")).uidNext, 4);
    assert.equal((await store.append(inbox.id, { raw: message(4) })).uid, 4);
    await store.storeFlags(inbox.id, [1, 2, 4], "add", ["\\Deleted"]);
    await store.expunge(inbox.id);
    const empty = await mailbox(store, account.id, "INBOX");
    assert.equal(empty.messages, 0);
    assert.equal(empty.uidNext, 5);
    assert.equal((await store.append(inbox.id, { raw: message(5) })).uid, 5);
    const other = await store.createMailbox(account.id, "Other");
    await store.move(inbox.id, [5], other.id);
    assert.equal((await store.append(inbox.id, { raw: message(6) })).uid, 6);
  });

  test("modseq grows on every change and highestModseq tracks it", async (store) => {
    const { account, inbox } = await setup(store);
    const seen: number[] = [inbox.highestModseq];
    const high = async () => (await mailbox(store, account.id, "INBOX")).highestModseq;
    const a = await store.append(inbox.id, { raw: message(1) });
    seen.push(a.modseq);
    assert.equal(await high(), a.modseq);
    const b = await store.append(inbox.id, { raw: message(2) });
    seen.push(b.modseq);
    const s = await store.storeFlags(inbox.id, [1], "add", ["\\Flagged"]);
    seen.push(s.updated[0]!.modseq);
    assert.equal(await high(), s.updated[0]!.modseq);
    const noop = await store.storeFlags(inbox.id, [1], "add", ["\\flagged"]);
    assert.equal(noop.updated[0]!.modseq, s.updated[0]!.modseq, "no change, no new MODSEQ");
    assert.equal(await high(), s.updated[0]!.modseq);
    await store.storeFlags(inbox.id, [2], "add", ["\\Deleted"]);
    seen.push(await high());
    await store.expunge(inbox.id);
    seen.push(await high());
    const other = await store.createMailbox(account.id, "Other");
    await store.copy(inbox.id, [1], other.id);
    assert.equal(await high(), seen.at(-1), "copying out leaves the source unchanged");
    await store.move(inbox.id, [1], other.id);
    seen.push(await high());
    for (let i = 1; i < seen.length; i++) {
      assert.ok(seen[i]! > seen[i - 1]!, `modseq ${seen[i]} follows ${seen[i - 1]}`);
    }
    const o = await mailbox(store, account.id, "Other");
    const msgs = await store.listMessages(other.id);
    assert.equal(o.highestModseq, Math.max(...msgs.map((m) => m.modseq)));
  });

  test("storeFlags() adds, removes and replaces flags case-insensitively", async (store) => {
    const { account, inbox } = await setup(store);
    for (let i = 1; i <= 3; i++) {
      await store.append(inbox.id, { raw: message(i), flags: ["$Old"] });
    }
    let r = await store.storeFlags(inbox.id, [1, 2], "add", ["\\SEEN", "$New"]);
    assert.deepEqual(r.modified, []);
    assert.deepEqual(r.updated.map((m) => m.uid), [1, 2]);
    assert.deepEqual(sortedFlags(r.updated[0]!.flags), ["$New", "$Old", "\\Seen"]);
    assert.equal((await mailbox(store, account.id, "INBOX")).unseen, 1);
    r = await store.storeFlags(inbox.id, [1, 2, 3], "remove", ["$old", "\\seen"]);
    assert.deepEqual(r.updated.map((m) => sortedFlags(m.flags)), [["$New"], ["$New"], []]);
    assert.equal((await mailbox(store, account.id, "INBOX")).unseen, 3);
    r = await store.storeFlags(inbox.id, [2, 3], "replace", ["\\Answered", "\\draft"]);
    assert.deepEqual(r.updated.map((m) => sortedFlags(m.flags)), [
      ["\\Answered", "\\Draft"],
      ["\\Answered", "\\Draft"],
    ]);
    r = await store.storeFlags(inbox.id, [3], "replace", []);
    assert.deepEqual(r.updated[0]!.flags, []);
    r = await store.storeFlags(inbox.id, [42], "add", ["\\Seen"]);
    assert.deepEqual(r, { updated: [], modified: [] });
    const list = await store.listMessages(inbox.id);
    assert.deepEqual(list.map((m) => sortedFlags(m.flags)), [
      ["$New"],
      ["\\Answered", "\\Draft"],
      [],
    ]);
  });

  test("storeFlags() with unchangedSince reports modified UIDs and leaves them alone", async (store) => {
    const { inbox } = await setup(store);
    const a = await store.append(inbox.id, { raw: message(1) });
    const b = await store.append(inbox.id, { raw: message(2) });
    await store.storeFlags(inbox.id, [2], "add", ["$Touched"]);
    const r = await store.storeFlags(inbox.id, [1, 2], "add", ["\\Seen"], b.modseq);
    assert.deepEqual(r.modified, [2]);
    assert.deepEqual(r.updated.map((m) => m.uid), [1]);
    const [m1, m2] = await store.listMessages(inbox.id);
    assert.deepEqual(m1!.flags, ["\\Seen"]);
    assert.deepEqual(m2!.flags, ["$Touched"]);
    const z = await store.storeFlags(inbox.id, [1], "add", ["$X"], 0);
    assert.deepEqual(z.modified, [1]);
    const same = await store.storeFlags(inbox.id, [1], "add", ["$X"], m1!.modseq);
    assert.deepEqual(same.modified, []);
    assert.ok(same.updated[0]!.modseq > a.modseq);
  });

  test("copy() keeps flags and bytes and maps to new destination UIDs", async (store) => {
    const { account, inbox } = await setup(store);
    const dest = await store.createMailbox(account.id, "Dest");
    await store.append(dest.id, { raw: message("d") });
    for (let i = 1; i <= 4; i++) {
      await store.append(inbox.id, {
        raw: message(i),
        flags: i % 2 ? ["\\Seen", "$K"] : [],
        internalDate: 1e12 + i,
        summary: `s${i}`,
      });
    }
    const events: MailboxEvent[] = [];
    store.watch(dest.id, (e) => events.push(e));
    const r = await store.copy(inbox.id, [4, 1, 3, 77], dest.id);
    assert.equal(r.uidValidity, dest.uidValidity);
    assert.deepEqual(r.mapping, [[1, 2], [3, 3], [4, 4]]);
    assert.deepEqual(events, [{ kind: "append", mailboxId: dest.id, uids: [2, 3, 4] }]);
    for (const [src, dst] of r.mapping) {
      assert.deepEqual(await store.getRaw(dest.id, dst), message(src));
      assert.equal(await store.getSummary(dest.id, dst), `s${src}`);
      const [s] = await store.getMessages(inbox.id, [src]);
      const [d] = await store.getMessages(dest.id, [dst]);
      assert.deepEqual(sortedFlags(d!.flags), sortedFlags(s!.flags));
      assert.equal(d!.internalDate, s!.internalDate);
      assert.equal(d!.size, s!.size);
    }
    assert.equal((await mailbox(store, account.id, "INBOX")).messages, 4);
    const d = await mailbox(store, account.id, "Dest");
    assert.equal(d.messages, 4);
    assert.equal(d.uidNext, 5);
    const empty = await store.copy(inbox.id, [99], dest.id);
    assert.deepEqual(empty.mapping, []);
    const self = await store.copy(inbox.id, [2], inbox.id);
    assert.deepEqual(self.mapping, [[2, 5]]);
  });

  test("move() copies then expunges the source atomically", async (store) => {
    const { account, inbox } = await setup(store);
    const dest = await store.createMailbox(account.id, "Dest");
    for (let i = 1; i <= 3; i++) {
      await store.append(inbox.id, { raw: message(i), flags: ["$F"] });
    }
    const before = await mailbox(store, account.id, "INBOX");
    const events: MailboxEvent[] = [];
    store.watch(inbox.id, (e) => events.push(e));
    const r = await store.move(inbox.id, [3, 1], dest.id);
    assert.equal(r.uidValidity, dest.uidValidity);
    assert.deepEqual(r.mapping, [[1, 1], [3, 2]]);
    assert.deepEqual(events, [{ kind: "expunge", mailboxId: inbox.id, uids: [1, 3] }]);
    assert.deepEqual((await store.listMessages(inbox.id)).map((m) => m.uid), [2]);
    assert.equal(await store.getRaw(inbox.id, 1), null);
    assert.deepEqual(await store.getRaw(dest.id, 2), message(3));
    assert.deepEqual((await store.getMessages(dest.id, [1]))[0]!.flags, ["$F"]);
    const changes = await store.changesSince(inbox.id, before.highestModseq);
    assert.deepEqual(changes.vanished, [1, 3]);
    assert.deepEqual(changes.changed, []);
  });

  test("expunge() removes all \\Deleted messages, or only the given UIDs", async (store) => {
    const { account, inbox } = await setup(store);
    for (let i = 1; i <= 6; i++) await store.append(inbox.id, { raw: message(i) });
    await store.storeFlags(inbox.id, [2, 3, 5, 6], "add", ["\\deleted"]);
    const events: MailboxEvent[] = [];
    store.watch(inbox.id, (e) => events.push(e));
    assert.deepEqual(await store.expunge(inbox.id, [1, 3, 5, 42]), [3, 5]);
    assert.deepEqual(events, [{ kind: "expunge", mailboxId: inbox.id, uids: [3, 5] }]);
    assert.deepEqual((await store.listMessages(inbox.id)).map((m) => m.uid), [1, 2, 4, 6]);
    assert.deepEqual(await store.expunge(inbox.id), [2, 6]);
    assert.deepEqual((await store.listMessages(inbox.id)).map((m) => m.uid), [1, 4]);
    const high = (await mailbox(store, account.id, "INBOX")).highestModseq;
    assert.deepEqual(await store.expunge(inbox.id), []);
    assert.equal((await mailbox(store, account.id, "INBOX")).highestModseq, high);
    assert.equal(events.length, 2, "an empty expunge emits nothing");
    const box = await mailbox(store, account.id, "INBOX");
    assert.equal(box.messages, 2);
    assert.equal(box.size, message(1).byteLength + message(4).byteLength);
  });

  test("changesSince() returns changed messages and vanished UIDs", async (store) => {
    const { account, inbox } = await setup(store);
    for (let i = 1; i <= 5; i++) await store.append(inbox.id, { raw: message(i) });
    const mark = (await mailbox(store, account.id, "INBOX")).highestModseq;
    let c = await store.changesSince(inbox.id, mark);
    assert.deepEqual(c, { changed: [], vanished: [] });
    await store.storeFlags(inbox.id, [4, 2], "add", ["\\Seen"]);
    await store.storeFlags(inbox.id, [5], "add", ["\\Deleted"]);
    await store.expunge(inbox.id);
    await store.append(inbox.id, { raw: message(6) });
    c = await store.changesSince(inbox.id, mark);
    assert.deepEqual(c.changed.map((m) => m.uid), [2, 4, 6]);
    assert.deepEqual(c.vanished, [5]);
    for (const m of c.changed) assert.ok(m.modseq > mark);
    const all = await store.changesSince(inbox.id, 0);
    assert.deepEqual(all.changed.map((m) => m.uid), [1, 2, 3, 4, 6]);
    assert.deepEqual(all.vanished, [5]);
    const high = (await mailbox(store, account.id, "INBOX")).highestModseq;
    assert.deepEqual(await store.changesSince(inbox.id, high), { changed: [], vanished: [] });
  });

  test("watch() delivers events to listeners of that mailbox only", async (store) => {
    const { account, inbox } = await setup(store);
    const other = await store.createMailbox(account.id, "Other");
    const a: MailboxEvent[] = [];
    const b: MailboxEvent[] = [];
    const c: MailboxEvent[] = [];
    const stopA = store.watch(inbox.id, (e) => a.push(e));
    store.watch(inbox.id, (e) => b.push(e));
    store.watch(other.id, (e) => c.push(e));
    store.watch(inbox.id, () => {
      throw new Error("a broken listener");
    });
    await store.append(inbox.id, { raw: message(1) });
    await store.storeFlags(inbox.id, [1], "add", ["\\Deleted"]);
    await store.storeFlags(inbox.id, [1], "add", ["\\Deleted"]);
    await store.expunge(inbox.id);
    stopA();
    stopA();
    await store.append(inbox.id, { raw: message(2) });
    await store.renameMailbox(account.id, "Other", "Renamed");
    // Metadata an event may carry is checked in the next test.
    const bare = (events: MailboxEvent[]) =>
      events.map((e) => {
        if (e.kind !== "append" && e.kind !== "flags") return e;
        const { metas: _, ...rest } = e;
        return rest;
      });
    assert.deepEqual(bare(a), [
      { kind: "append", mailboxId: inbox.id, uids: [1] },
      { kind: "flags", mailboxId: inbox.id, uids: [1] },
      { kind: "expunge", mailboxId: inbox.id, uids: [1] },
    ]);
    assert.deepEqual(bare(b), [...bare(a), { kind: "append", mailboxId: inbox.id, uids: [2] }]);
    assert.deepEqual(c, [{ kind: "renamed", mailboxId: other.id, name: "Renamed" }]);
  });

  test("metadata an event carries is the message as committed", async (store) => {
    const { inbox } = await setup(store);
    const events: MailboxEvent[] = [];
    store.watch(inbox.id, (e) => events.push(e));
    const checked: Promise<void>[] = [];
    store.watch(inbox.id, (e) => {
      if (e.kind !== "append" && e.kind !== "flags" || e.metas === undefined) return;
      const metas = e.metas;
      checked.push((async () => {
        assert.deepEqual(metas.map((m) => m.uid), e.uids);
        const now = await store.getMessages(inbox.id, [...e.uids]);
        // Nothing else changed these messages meanwhile in this test.
        if (e === events.at(-1)) assert.deepEqual([...metas].map((m) => ({ ...m })), now);
      })());
    });
    await store.append(inbox.id, { raw: message(1), flags: ["\\Seen", "$Label"] });
    await Promise.all(checked.splice(0));
    await store.append(inbox.id, { raw: message(2) });
    await Promise.all(checked.splice(0));
    await store.storeFlags(inbox.id, [1, 2], "add", ["\\Flagged"]);
    await Promise.all(checked.splice(0));
    await store.storeFlags(inbox.id, [1], "remove", ["\\Seen"]);
    await Promise.all(checked.splice(0));
    assert.deepEqual(events.map((e) => e.kind), ["append", "append", "flags", "flags"]);
  });

  test("watch() fires after the change is visible", async (store) => {
    const { inbox } = await setup(store);
    let seen: Promise<number> | undefined;
    store.watch(inbox.id, () => {
      seen ??= store.listMessages(inbox.id).then((l) => l.length);
    });
    await store.append(inbox.id, { raw: message(1) });
    assert.equal(await seen, 1);
  });

  test("watch() listeners see the whole of a move, never half of it", async (store) => {
    const { account, inbox } = await setup(store);
    const dest = await store.createMailbox(account.id, "Dest");
    for (let i = 1; i <= 3; i++) await store.append(inbox.id, { raw: message(i) });
    const views: Promise<[number, number]>[] = [];
    const look = () =>
      views.push(
        Promise.all([store.listMessages(inbox.id), store.listMessages(dest.id)]).then((
          [a, b],
        ) => [a.length, b.length]),
      );
    store.watch(inbox.id, look);
    store.watch(dest.id, look);
    await store.move(inbox.id, [1, 2], dest.id);
    assert.equal(views.length, 2);
    for (const view of await Promise.all(views)) assert.deepEqual(view, [1, 2]);
  });

  test("append() refuses a message over the size limit", async (store) => {
    const { account, inbox } = await setup(store);
    const huge = new Uint8Array(64 * 1024 * 1024 + 1);
    await rejectsWith(store.append(inbox.id, { raw: huge }), "limit");
    assert.equal((await mailbox(store, account.id, "INBOX")).uidNext, 1);
  });

  test("parallel appends get distinct, increasing UIDs", async (store) => {
    const { account, inbox } = await setup(store);
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => store.append(inbox.id, { raw: message(i) })),
    );
    const uids = results.map((r) => r.uid).sort((a, b) => a - b);
    assert.deepEqual(uids, Array.from({ length: 20 }, (_, i) => i + 1));
    assert.equal(new Set(results.map((r) => r.modseq)).size, 20);
    assert.equal((await mailbox(store, account.id, "INBOX")).messages, 20);
  });

  test("bulk operations on hundreds of UIDs agree with single lookups", async (store) => {
    const { account, inbox } = await setup(store);
    const work = await store.createMailbox(account.id, "Work");
    for (let i = 0; i < 10; i++) await store.append(inbox.id, { raw: message(i) });
    // Double by copying until there are 640 messages, in a handful of calls.
    for (let round = 0; round < 6; round++) {
      const all = (await store.listMessages(inbox.id)).map((m) => m.uid);
      await store.copy(inbox.id, all, inbox.id);
    }
    const list = await store.listMessages(inbox.id);
    assert.equal(list.length, 640);
    const odd = list.filter((m) => m.uid % 2 === 1).map((m) => m.uid);
    const got = await store.getMessages(inbox.id, [...odd, 99_999]);
    assert.deepEqual(got.map((m) => m.uid), odd);
    const r = await store.storeFlags(inbox.id, odd, "add", ["\\Seen", "\\Deleted"]);
    assert.equal(r.updated.length, 320);
    const box = await mailbox(store, account.id, "INBOX");
    assert.equal(box.unseen, 320);
    const moved = await store.move(inbox.id, odd.slice(0, 300), work.id);
    assert.equal(moved.mapping.length, 300);
    assert.deepEqual(await store.expunge(inbox.id), odd.slice(300));
    const after = await mailbox(store, account.id, "INBOX");
    assert.equal(after.messages, 320);
    assert.equal(after.unseen, 320);
    const w = await mailbox(store, account.id, "Work");
    assert.equal(w.messages, 300);
    assert.equal(w.unseen, 0);
  });

  // Delivery addresses and LMTP delivery

  test("addresses map case-insensitively to one account and go with it", async (store) => {
    const { account } = await setup(store);
    const bob = await store.createAccount("bob", null);
    await store.addAddress(account.id, "Alice@Example.ORG");
    await store.addAddress(account.id, "alice.smith@example.org");
    await store.addAddress(account.id, "alice@example.org");
    assert.deepEqual(await store.listAddresses(account.id), [
      "alice.smith@example.org",
      "alice@example.org",
    ]);
    assert.equal((await store.findAccountByAddress("ALICE@example.org"))?.name, "alice");
    assert.equal(await store.findAccountByAddress("carol@example.org"), null);
    assert.equal(await store.findAccountByAddress("not an address"), null);
    await rejectsWith(store.addAddress(bob.id, "alice@example.org"), "alreadyexists");
    await rejectsWith(store.addAddress(bob.id, "no-at-sign"), "cannot");
    await rejectsWith(store.addAddress(999, "x@example.org"), "nonexistent");
    await store.removeAddress("Alice.Smith@example.org");
    await rejectsWith(store.removeAddress("alice.smith@example.org"), "nonexistent");
    await store.deleteAccount("alice");
    assert.equal(await store.findAccountByAddress("alice@example.org"), null);
    await store.addAddress(bob.id, "alice@example.org");
    assert.equal((await store.findAccountByAddress("alice@example.org"))?.name, "bob");
  });

  test("deliver() stores once per key within the window and tells watchers", async (store) => {
    const { inbox } = await setup(store);
    const events: MailboxEvent[] = [];
    const stop = store.watch(inbox.id, (e) => events.push(e));
    const options = { deliveryKey: "k1", windowMs: 1000, now: 10_000 };
    const first = await store.deliver(inbox.id, { raw: message(1) }, options);
    assert.equal(first.kind, "stored");
    const again = await store.deliver(inbox.id, { raw: message(1) }, { ...options, now: 10_500 });
    assert.deepEqual(again, { kind: "duplicate", mailboxId: inbox.id, uid: 1 });
    const other = await store.deliver(inbox.id, { raw: message(1) }, {
      ...options,
      deliveryKey: "k2",
    });
    assert.equal(other.kind, "stored");
    const late = await store.deliver(inbox.id, { raw: message(1) }, { ...options, now: 11_001 });
    assert.equal(late.kind, "stored");
    stop();
    assert.deepEqual((await store.listMessages(inbox.id)).map((m) => m.uid), [1, 2, 3]);
    assert.deepEqual(events.map((e) => e.kind), ["append", "append", "append"]);
  });

  test("deliver() refuses a message over the account's quota", async (store) => {
    const { account, inbox } = await setup(store);
    const sent = await mailbox(store, account.id, "Sent");
    await store.append(sent.id, { raw: message(1) });
    const size = message(1).byteLength;
    const key = (n: number) => ({ deliveryKey: `q${n}`, windowMs: 60_000 });
    const tight = { storage: size * 2, messages: 10 };
    assert.equal(
      (await store.deliver(inbox.id, { raw: message(2) }, { ...key(1), quota: tight })).kind,
      "stored",
    );
    assert.deepEqual(
      await store.deliver(inbox.id, { raw: message(3) }, { ...key(2), quota: tight }),
      { kind: "overquota", resource: "storage" },
    );
    assert.deepEqual(
      await store.deliver(inbox.id, { raw: message(3) }, {
        ...key(3),
        quota: { storage: null, messages: 2 },
      }),
      { kind: "overquota", resource: "messages" },
    );
    // A refused delivery leaves no dedup record behind.
    assert.equal(
      (await store.deliver(inbox.id, { raw: message(3) }, key(2))).kind,
      "stored",
    );
  });

  test("deliverBatch() commits each delivery on its own terms, in order", async (store) => {
    const { account, inbox } = await setup(store);
    const sent = await mailbox(store, account.id, "Sent");
    const events: MailboxEvent[] = [];
    const stop = store.watch(inbox.id, (e) => events.push(e));
    const item = (
      key: string,
      mailboxId = inbox.id,
      quota?: { storage: number; messages: null },
    ) => ({
      mailboxId,
      input: { raw: message(key) },
      options: { deliveryKey: key, windowMs: 60_000, ...(quota ? { quota } : {}) },
    });
    const outcomes = await store.deliverBatch([
      item("a"),
      item("b", 99_999),
      item("a"),
      item("c", inbox.id, { storage: 10, messages: null }),
      item("d", sent.id),
      item("e"),
    ]);
    stop();
    assert.deepEqual(outcomes.map((o) => o.ok ? o.result.kind : "error"), [
      "stored",
      "error",
      "duplicate",
      "overquota",
      "stored",
      "stored",
    ]);
    const failed = outcomes[1]!;
    assert.ok(!failed.ok && failed.error instanceof MailStoreError);
    assert.deepEqual((await store.listMessages(inbox.id)).map((m) => m.uid), [1, 2]);
    assert.equal((await store.listMessages(sent.id)).length, 1);
    assert.deepEqual(events.map((e) => e.kind === "append" ? e.uids : []), [[1], [2]]);
    assert.deepEqual(await store.deliverBatch([]), []);
  });

  test("appendBatch() stores every message with consecutive UIDs in one commit", async (store) => {
    const { inbox } = await setup(store);
    await store.append(inbox.id, { raw: message(0) });
    const events: MailboxEvent[] = [];
    const stop = store.watch(inbox.id, (e) => events.push(e));
    const r = await store.appendBatch(inbox.id, [
      { raw: message(1), flags: ["\\Seen"] },
      { raw: message(2), internalDate: 1_700_000_000_000 },
      { raw: message(3), summary: "s3", searchText: "t3" },
    ]);
    stop();
    assert.equal(r.kind, "stored");
    assert.ok(r.kind === "stored");
    assert.deepEqual(r.results.map((x) => x.uid), [2, 3, 4]);
    assert.ok(r.results.every((x) => x.uidValidity === inbox.uidValidity));
    const metas = await store.listMessages(inbox.id);
    assert.deepEqual(metas.map((m) => m.uid), [1, 2, 3, 4]);
    assert.deepEqual(metas[1]!.flags, ["\\Seen"]);
    assert.equal(metas[2]!.internalDate, 1_700_000_000_000);
    assert.equal(await store.getSummary(inbox.id, 4), "s3");
    assert.deepEqual(events.flatMap((e) => e.kind === "append" ? e.uids : []), [2, 3, 4]);
    assert.deepEqual(await store.appendBatch(inbox.id, []), { kind: "stored", results: [] });
  });

  test("appendBatch() stores nothing when one message fails or the batch is over quota", async (store) => {
    const { account, inbox } = await setup(store);
    const many = Array.from({ length: 2000 }, (_, i) => `k${i}`);
    await rejectsWith(
      store.appendBatch(inbox.id, [{ raw: message(1) }, { raw: message(2), flags: many }]),
      "limit",
    );
    await rejectsWith(store.appendBatch(99_999, [{ raw: message(1) }]), "nonexistent");
    const size = message(1).byteLength;
    assert.deepEqual(
      await store.appendBatch(inbox.id, [{ raw: message(1) }, { raw: message(2) }], {
        storage: size + 1,
        messages: null,
      }),
      { kind: "overquota", resource: "storage" },
    );
    assert.deepEqual(
      await store.appendBatch(inbox.id, [{ raw: message(1) }, { raw: message(2) }], {
        storage: null,
        messages: 1,
      }),
      { kind: "overquota", resource: "messages" },
    );
    assert.deepEqual(await store.listMessages(inbox.id), []);
    const after = await mailbox(store, account.id, "INBOX");
    assert.equal(after.messages, 0);
    const ok = await store.appendBatch(inbox.id, [{ raw: message(1) }], {
      storage: size,
      messages: 1,
    });
    assert.equal(ok.kind, "stored");
  });

  // Object ids (RFC 8474) and save dates (RFC 8514)

  test("every mailbox has a MAILBOXID of its own, kept across RENAME (RFC 8474, 4.1)", async (store) => {
    const { account } = await setup(store);
    const boxes = await store.listMailboxes(account.id);
    for (const b of boxes) assert.match(b.objectId, /^[A-Za-z][A-Za-z0-9_-]{0,254}$/);
    assert.equal(new Set(boxes.map((b) => b.objectId)).size, boxes.length);
    const a = await store.createMailbox(account.id, "A");
    await store.createMailbox(account.id, "A/B");
    const ab = await mailbox(store, account.id, "A/B");
    await store.renameMailbox(account.id, "A", "Z");
    assert.equal((await mailbox(store, account.id, "Z")).objectId, a.objectId);
    assert.equal((await mailbox(store, account.id, "Z/B")).objectId, ab.objectId);
    // A new mailbox under an old name is another mailbox.
    await store.deleteMailbox(account.id, "Z");
    const again = await store.createMailbox(account.id, "Z");
    assert.notEqual(again.objectId, a.objectId);
  });

  test("renaming INBOX keeps INBOX's MAILBOXID; the new mailbox gets its own", async (store) => {
    const { account, inbox } = await setup(store);
    await store.append(inbox.id, { raw: message(1) });
    await store.renameMailbox(account.id, "INBOX", "Old");
    assert.equal((await mailbox(store, account.id, "INBOX")).objectId, inbox.objectId);
    assert.notEqual((await mailbox(store, account.id, "Old")).objectId, inbox.objectId);
  });

  test("getObjectInfo() gives each message an EMAILID, its THREADID and a save date", async (store) => {
    const { inbox } = await setup(store);
    const before = Date.now();
    await store.append(inbox.id, { raw: message(1), threadId: "Tabc" });
    await store.append(inbox.id, { raw: message(1), internalDate: 1_000_000 });
    const after = Date.now();
    const info = await store.getObjectInfo(inbox.id, [1, 2, 3]);
    assert.deepEqual([...info.keys()], [1, 2]);
    const [one, two] = [info.get(1)!, info.get(2)!];
    assert.match(one.emailId, /^[A-Za-z][A-Za-z0-9_-]{0,254}$/);
    assert.notEqual(one.emailId, two.emailId, "same octets, different messages");
    assert.equal(one.threadId, "Tabc");
    assert.match(two.threadId, /^[A-Za-z][A-Za-z0-9_-]{0,254}$/);
    assert.notEqual(two.threadId, one.threadId);
    for (const m of [one, two]) {
      assert.ok(m.saveDate !== null && m.saveDate >= before && m.saveDate <= after);
    }
  });

  test("COPY and MOVE keep EMAILID and THREADID and set a new save date (RFC 8474 5.1, RFC 8514 3)", async (store) => {
    const { account, inbox } = await setup(store);
    const box = await store.createMailbox(account.id, "Box");
    await store.append(inbox.id, { raw: message(1), threadId: "Tone" });
    await store.append(inbox.id, { raw: message(2) });
    const source = await store.getObjectInfo(inbox.id, [1, 2]);
    await new Promise((r) => setTimeout(r, 5));
    await store.copy(inbox.id, [1], box.id);
    await store.move(inbox.id, [2], box.id);
    const copied = await store.getObjectInfo(box.id, [1, 2]);
    for (const [from, to] of [[1, 1], [2, 2]] as const) {
      assert.equal(copied.get(to)!.emailId, source.get(from)!.emailId);
      assert.equal(copied.get(to)!.threadId, source.get(from)!.threadId);
      assert.ok(copied.get(to)!.saveDate! > source.get(from)!.saveDate!);
    }
    assert.equal(copied.get(1)!.threadId, "Tone");
    assert.deepEqual([...(await store.getObjectInfo(inbox.id, [2])).keys()], []);
  });

  test("a closed store refuses further calls", async (store) => {
    await store.createAccount("alice", null);
    await store.close();
    await assert.rejects(store.getAccount("alice"));
  });
}
