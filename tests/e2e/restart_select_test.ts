/**
 * The first SELECT of a large mailbox after a restart opens from the UIDs and flags of the
 * store's snapshot (`MailStore.listColumns`), and the listing's objects are made after it has
 * answered. Sessions that open the mailbox at once while another changes it must each see it
 * exactly: the same messages, numbers and flags as a session opened once the changes are made.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openSqliteMailStore } from "../../mailstore/sqlite/mod.ts";
import { DATABASE_FILE } from "../../server/serve/data_dir.ts";
import { RawImap } from "../_support/imap_clients.ts";
import { startPosternProcess } from "../_support/postern.ts";
import { rawConnection, runStateChecker } from "../_support/state_checker.ts";

const PASSWORD = "restart secret";
const MESSAGES = 3000;
const enc = new TextEncoder();

function login(port: number, caPem: string): Promise<RawImap> {
  return RawImap.login(port, caPem, "alice", PASSWORD);
}

function message(n: number): Uint8Array {
  return enc.encode(
    `Subject: restart ${n}\r\nMessage-ID: <r${n}@postern.test>\r\n\r\nbody ${n}\r\n`,
  );
}

/** The mailbox as a session sees it: `seq UID FLAGS` per message, from FETCH 1:*. */
async function seen(imap: RawImap): Promise<string[]> {
  const r = await imap.command("FETCH 1:* (UID FLAGS)", undefined, 30_000);
  assert.equal(r.status, "OK", r.tagged);
  return r.untagged
    .map((u) =>
      /^\* (\d+) FETCH \((?:UID (\d+) FLAGS \(([^)]*)\)|FLAGS \(([^)]*)\) UID (\d+))\)$/.exec(
        u.text,
      )
    )
    .filter((m) => m !== null)
    // \Recent belongs to one session (RFC 3501, Section 2.3.2): left out.
    .map((m) => `${m[1]} ${m[2] ?? m[5]} ${(m[3] ?? m[4])!.replace(/\\Recent ?/, "").trim()}`);
}

Deno.test("sessions that open a large mailbox right after a restart, while it changes, see it exactly", async () => {
  const postern = await startPosternProcess({ users: [{ name: "alice", password: PASSWORD }] });
  const { implicitPort: port, caPem } = postern;
  const open: RawImap[] = [];
  try {
    // Loaded by pipelined APPENDs (LITERAL+), every third message unseen.
    const loader = await login(port, caPem);
    const pieces: Uint8Array[] = [];
    for (let i = 0; i < MESSAGES; i++) {
      const m = message(i);
      const flags = i % 3 === 0 ? "()" : "(\\Seen)";
      pieces.push(
        enc.encode(`a${i} APPEND INBOX ${flags} {${m.length}+}\r\n`),
        m,
        enc.encode("\r\n"),
      );
    }
    const batch = new Uint8Array(pieces.reduce((n, p) => n + p.length, 0));
    pieces.reduce((at, p) => (batch.set(p, at), at + p.length), 0);
    await loader.write(batch);
    const loaded = await loader.readUntil((r) => r.text.startsWith(`a${MESSAGES - 1} `), 120_000);
    assert.ok(loaded, "the APPENDs were answered");
    assert.equal(loaded.filter((r) => / OK \[APPENDUID /.test(r.text)).length, MESSAGES);
    await loader.close();

    // A restart: the listing leaves memory, its snapshot stays in the database. Meanwhile
    // another process writes (a second node, an admin tool): the snapshot falls behind, and the
    // first SELECT brings it up to date from the rows.
    await postern.restart(async () => {
      const store = await openSqliteMailStore(join(postern.dir, "data", DATABASE_FILE));
      try {
        const account = (await store.getAccount("alice"))!;
        const inbox = (await store.getMailbox(account.id, "INBOX"))!;
        await store.storeFlags(inbox.id, [10, 11, 2000], "add", ["$Behind"]);
        await store.storeFlags(inbox.id, [1], "add", ["\\Seen"]);
        await store.storeFlags(inbox.id, [12, 13], "add", ["\\Deleted"]);
        await store.expunge(inbox.id, [12, 13]);
        await store.append(inbox.id, { raw: message(MESSAGES), flags: ["$Offline"] });
      } finally {
        await store.close();
      }
    });
    const writer = await login(port, caPem);
    const readers = await Promise.all(Array.from({ length: 4 }, () => login(port, caPem)));
    open.push(writer, ...readers);
    const first = await writer.command("SELECT INBOX");
    assert.equal(first.status, "OK", first.tagged);
    // Message 1 was seen while the server was down: the first unseen is now the fourth.
    assert.ok(first.untagged.some((u) => u.text.startsWith("* OK [UNSEEN 4]")), first.tagged);
    // The readers open the mailbox at once while the writer changes it.
    const selects = readers.map((r) => r.command("SELECT INBOX", undefined, 30_000));
    const writes = (async () => {
      for (
        const command of [
          "UID STORE 5,1500 +FLAGS (\\Flagged)",
          "UID STORE 7,8,2999 +FLAGS (\\Deleted)",
          "UID EXPUNGE 7,8,2999",
          "UID STORE 1 -FLAGS (\\Seen)",
          "UID STORE 3 +FLAGS ($Label)",
        ]
      ) {
        assert.equal((await writer.command(command)).status, "OK", command);
      }
      const late = await writer.command("APPEND INBOX (\\Seen $Late)", message(MESSAGES + 1));
      assert.equal(late.status, "OK", late.tagged);
    })();
    const opened = await Promise.all(selects);
    await writes;
    for (const r of opened) {
      assert.equal(r.status, "OK", r.tagged);
      const exists = r.untagged.find((u) => / EXISTS$/.test(u.text))!.text;
      const count = Number(/^\* (\d+) EXISTS$/.exec(exists)![1]);
      assert.ok(count >= MESSAGES - 5 + 1 && count <= MESSAGES - 2 + 2, exists);
    }
    // Each reader hears of the changes it missed, then sees what a session opened now sees.
    const fresh = await login(port, caPem);
    open.push(fresh);
    assert.equal((await fresh.command("SELECT INBOX")).status, "OK");
    const truth = await seen(fresh);
    assert.equal(truth.length, MESSAGES - 5 + 2);
    assert.deepEqual(truth.slice(-2), [
      `${MESSAGES - 4} ${MESSAGES + 1} $Offline`,
      `${MESSAGES - 3} ${MESSAGES + 2} \\Seen $Late`,
    ]);
    assert.ok(truth.includes("9 11 \\Seen $Behind"), truth.slice(0, 12).join(", "));
    for (const r of [writer, ...readers]) {
      assert.equal((await r.command("NOOP")).status, "OK");
      assert.deepEqual(await seen(r), truth);
    }
    for (const imap of open.splice(0)) await imap.close();

    // Again, then 20 clients run the state checker's mix on the mailbox from its first SELECT
    // on, while its listing's objects are still being made.
    await postern.restart(async () => {
      const store = await openSqliteMailStore(join(postern.dir, "data", DATABASE_FILE));
      try {
        const account = (await store.getAccount("alice"))!;
        const inbox = (await store.getMailbox(account.id, "INBOX"))!;
        await store.storeFlags(inbox.id, [20, 21], "add", ["$Again"]);
      } finally {
        await store.close();
      }
    });
    const result = await runStateChecker(
      async () => rawConnection(await login(port, caPem)),
      { clients: 20, durationMs: 3000, maxCommands: 40, seed: 43, reselect: true },
    );
    assert.deepEqual(result.errors, [], result.errors.slice(0, 20).join("\n"));
    assert.ok(result.commands > 20 * 10, `only ${result.commands} commands ran`);
  } finally {
    for (const imap of open) await imap.close().catch(() => {});
    await postern.stop();
  }
});
