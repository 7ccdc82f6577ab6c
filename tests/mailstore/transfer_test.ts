/**
 * `copyStore` (postern store copy): SQLite to PostgreSQL and back keeps every UIDVALIDITY,
 * UID, MODSEQ, flag, byte, subscription, address and expunge record, so a client's
 * CONDSTORE/QRESYNC state stays valid; and the CLI command copies between two configurations.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { MailStore } from "../../mailstore/mail_store.ts";
import { openSqliteMailStore } from "../../mailstore/sqlite/mod.ts";
import { openDataStore } from "../../server/serve/data_dir.ts";
import { openPostgresMailStore } from "../../mailstore/postgres/mod.ts";
import { copyStore } from "../../mailstore/transfer.ts";
import { postgresAvailable, startPostgres } from "../_support/postgres.ts";
import { posternCommand } from "../_support/server_process.ts";

const available = postgresAvailable();
const pg = available ? await startPostgres() : null;
const enc = new TextEncoder();

/** Some history: appends, flags, expunges, copies, a rename, a deleted mailbox. */
async function fill(store: MailStore): Promise<void> {
  for (const name of ["alice", "bob"]) {
    const account = await store.createAccount(name, name === "alice" ? "$scrypt$x" : null);
    await store.addAddress(account.id, `${name}@example.org`);
    const inbox = (await store.getMailbox(account.id, "INBOX"))!;
    const work = await store.createMailbox(account.id, "Work/Projects");
    for (let i = 0; i < 30; i++) {
      await store.append(inbox.id, {
        raw: enc.encode(`Subject: ${name} ${i}\r\n\r\n${"body ".repeat(i)}\r\n\u0000\xff`),
        flags: i % 4 === 0 ? ["\\Seen", "$Work"] : [],
        internalDate: 1_700_000_000_000 + i * 1000,
        summary: `{"n":${i}}`,
        ...(i % 3 === 0 ? { threadId: `T${name}${i % 2}` } : {}),
        ...(i % 2 === 0 ? { searchText: `needle ${i}` } : {}),
      });
    }
    await store.storeFlags(inbox.id, [2, 3, 5, 30], "add", ["\\Deleted"]);
    await store.expunge(inbox.id);
    await store.copy(inbox.id, [1, 4, 6], work.id);
    await store.move(inbox.id, [7, 8], work.id);
    await store.storeFlags(work.id, [1], "replace", ["\\Answered"]);
    await store.setSubscribed(account.id, "Work/Projects", true);
    await store.createMailbox(account.id, "Gone");
    await store.deleteMailbox(account.id, "Gone");
    await store.renameMailbox(account.id, "Work/Projects", "Jobs/Projects");
  }
}

/** Everything a client could observe, without store-internal ids. */
async function observe(store: MailStore): Promise<unknown> {
  const out: unknown[] = [];
  for (const account of await store.listAccounts()) {
    const boxes = [];
    for (const m of await store.listMailboxes(account.id)) {
      const messages = await store.listMessages(m.id);
      const uids = messages.map((x) => x.uid);
      const raws = [];
      for (const uid of uids) {
        raws.push([
          uid,
          Array.from(await store.getRaw(m.id, uid) ?? []),
          await store.getSummary(m.id, uid),
        ]);
      }
      boxes.push({
        ...m,
        id: 0,
        accountId: 0,
        messages,
        raws,
        texts: [...await store.getSearchTexts(m.id, uids)],
        objects: [...await store.getObjectInfo(m.id, uids)],
        since0: await store.changesSince(m.id, 0),
        since10: await store.changesSince(m.id, 10),
      });
    }
    out.push({
      name: account.name,
      passwordHash: account.passwordHash,
      addresses: await store.listAddresses(account.id),
      subscriptions: await store.listSubscriptions(account.id),
      boxes,
    });
  }
  return out;
}

Deno.test({
  name: "copyStore() carries SQLite to PostgreSQL and back with every UID and MODSEQ",
  ignore: !available,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "postern-transfer-" });
    const source = await openSqliteMailStore(join(dir, "a.db"));
    const middle = await openPostgresMailStore({ url: await pg!.createDatabase("transfer_a") });
    const back = await openSqliteMailStore(join(dir, "b.db"));
    try {
      await fill(source);
      const before = await observe(source);
      const there = await copyStore(source, middle);
      assert.equal(there.accounts, 2);
      assert.deepEqual(await observe(middle), before);
      await copyStore(middle, back);
      assert.deepEqual(await observe(back), before);
      // The copy goes on where the source stood: a new mailbox gets a fresh UIDVALIDITY, a
      // new message the next UID.
      const alice = (await middle.getAccount("alice"))!;
      const inbox = (await middle.getMailbox(alice.id, "INBOX"))!;
      const next = await middle.append(inbox.id, { raw: enc.encode("Subject: new\r\n\r\n") });
      assert.equal(next.uid, inbox.uidNext);
      assert.equal(next.modseq, inbox.highestModseq + 1);
      const olds = (await middle.listMailboxes(alice.id)).map((m) => m.uidValidity);
      const fresh = await middle.createMailbox(alice.id, "Fresh");
      assert.ok(fresh.uidValidity > Math.max(...olds));
      // A store that holds accounts is never merged into.
      await assert.rejects(copyStore(source, middle), /already holds accounts/);
    } finally {
      await source.close();
      await middle.close();
      await back.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "postern store copy --from --to moves a SQLite store into PostgreSQL",
  ignore: !available,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "postern-store-copy-" });
    try {
      const url = (await pg!.createDatabase("transfer_cli")).replace(`:${pg!.password}@`, "@");
      const from = join(dir, "from.yaml");
      const to = join(dir, "to.yaml");
      await Deno.writeTextFile(from, `data_dir: ${join(dir, "data")}\n`);
      await Deno.writeTextFile(
        to,
        `data_dir: ${join(dir, "data2")}\nstore:\n  kind: postgres\n  url: ${url}\n` +
          `  password_file: ${pg!.passwordFile}\n`,
      );
      await Deno.mkdir(join(dir, "data"));
      const sqlite = await openDataStore(join(dir, "data"));
      try {
        await fill(sqlite);
      } finally {
        await sqlite.close();
      }
      await posternCommand(["store", "copy", "--from", from, "--to", to]);
      const a = await openDataStore(join(dir, "data"));
      const b = await openPostgresMailStore({ url, password: pg!.password });
      try {
        assert.deepEqual(await observe(b), await observe(a));
      } finally {
        await a.close();
        await b.close();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

// Registered last, so it runs after every case above in this file.
Deno.test({
  name: "transfer: the throwaway PostgreSQL cluster stops",
  ignore: !available,
  fn: async () => {
    await pg?.stop();
  },
});
