import assert from "node:assert/strict";
import type { MailStore } from "../../../mailstore/mail_store.ts";
import { openSqliteMailStore } from "../../../mailstore/sqlite/mod.ts";
import { FIRST_FLUSH } from "../../../protocol/imap/response.ts";
import { newStore, TestClient, wrapStore } from "./_harness.ts";

const enc = new TextEncoder();
const DATE = Date.UTC(2024, 0, 2, 3, 4, 5);

async function filled(kind: "memory" | "sqlite", n: number): Promise<MailStore> {
  const store = kind === "memory" ? await newStore() : await openSqliteMailStore(":memory:");
  if (kind === "sqlite") await store.createAccount("alice", null);
  const inbox = (await store.getMailbox((await store.getAccount("alice"))!.id, "INBOX"))!;
  for (let i = 1; i <= n; i++) {
    await store.append(inbox.id, {
      raw: enc.encode(`Subject: ${i}\r\n\r\nbody ${i}\r\n`),
      flags: i % 3 === 0 ? [] : i % 3 === 1 ? ["\\Seen"] : ["\\Seen", "$Work"],
      internalDate: DATE + i * 1000,
    });
  }
  return store;
}

function flagsOf(i: number): string {
  return i % 3 === 0 ? "()" : i % 3 === 1 ? "(\\Seen)" : "(\\Seen $Work)";
}

for (const kind of ["memory", "sqlite"] as const) {
  Deno.test(`FETCH of metadata items answers each message in item order (${kind})`, async () => {
    const n = 5000;
    const store = await filled(kind, n);
    const calls: number[] = [];
    const c = new TestClient(wrapStore(store, {
      getMessages: (id, uids) => {
        calls.push(uids.length);
        return store.getMessages(id, uids);
      },
    }));
    await c.login();
    await c.cmd("s SELECT INBOX");
    const pieces: number[] = [];
    const collect = c.session.onOutput;
    c.session.onOutput = (bytes) => {
      pieces.push(bytes.length);
      return collect(bytes);
    };
    const out = await c.cmd("f FETCH 1:* (UID FLAGS)");
    c.session.onOutput = collect;
    // The first responses leave after a small first batch and FIRST_FLUSH bytes, and each
    // later piece is at most twice as large, so the client starts reading early.
    assert.ok(pieces.length >= 4, `pieces ${pieces}`);
    assert.ok(pieces[0]! >= FIRST_FLUSH && pieces[0]! < FIRST_FLUSH + 100, `pieces ${pieces}`);
    for (let i = 1; i < pieces.length - 1; i++) {
      assert.ok(pieces[i]! <= 2 * pieces[i - 1]! + 100, `pieces ${pieces}`);
    }
    assert.equal(out.length, n + 1);
    for (let i = 1; i <= n; i++) {
      assert.equal(out[i - 1], `* ${i} FETCH (UID ${i} FLAGS ${flagsOf(i)})`);
    }
    assert.equal(out[n], "f OK FETCH completed");
    assert.deepEqual(calls, [256, 4096, 648], "a small first batch, then large ones");

    const line = (i: number) =>
      `* ${i} FETCH (UID ${i} FLAGS ${flagsOf(i)} RFC822.SIZE 22 INTERNALDATE ` +
      `"02-Jan-2024 03:04:${String(5 + i).padStart(2, "0")} +0000" MODSEQ (${i + 1}))`;
    assert.deepEqual(
      await c.cmd("u UID FETCH 2:3,9 (FLAGS RFC822.SIZE FLAGS INTERNALDATE MODSEQ)"),
      // The first MODSEQ item turns CONDSTORE on: HIGHESTMODSEQ comes first (RFC 7162, 3.1).
      ["* OK [HIGHESTMODSEQ 5001] Highest", line(2), line(3), line(9), "u OK UID FETCH completed"],
    );
    await store.close();
  });
}

Deno.test("FETCH of metadata skips messages expunged by another session and says so", async () => {
  const store = await filled("memory", 6);
  const c = new TestClient(store);
  await c.login();
  await c.cmd("s SELECT INBOX");
  const inbox = (await store.getMailbox((await store.getAccount("alice"))!.id, "INBOX"))!;
  await store.storeFlags(inbox.id, [2, 5], "add", ["\\Deleted"]);
  await store.expunge(inbox.id, [2, 5]);
  assert.deepEqual(await c.cmd("f FETCH 1:* (UID)"), [
    "* 1 FETCH (UID 1)",
    "* 3 FETCH (UID 3)",
    "* 4 FETCH (UID 4)",
    "* 6 FETCH (UID 6)",
    "f OK [EXPUNGEISSUED] FETCH completed; some messages were expunged",
  ]);
  await store.close();
});

Deno.test("SEARCH of metadata keys answers every number in one line (sqlite)", async () => {
  const n = 5000;
  const store = await filled("sqlite", n);
  const c = new TestClient(store);
  await c.login();
  await c.cmd("s SELECT INBOX");
  const all = Array.from({ length: n }, (_, i) => i + 1);
  const unseen = all.filter((i) => i % 3 === 0);
  assert.deepEqual(await c.cmd("a UID SEARCH ALL"), [
    `* SEARCH ${all.join(" ")}`,
    "a OK UID SEARCH completed",
  ]);
  assert.deepEqual(await c.cmd("b UID SEARCH UNSEEN"), [
    `* SEARCH ${unseen.join(" ")}`,
    "b OK UID SEARCH completed",
  ]);
  assert.deepEqual(await c.cmd("c SEARCH KEYWORD $work NOT 1:4990"), [
    "* SEARCH 4991 4994 4997 5000",
    "c OK SEARCH completed",
  ]);
  assert.deepEqual(await c.cmd("d UID SEARCH unseen modseq 4990"), [
    "* OK [HIGHESTMODSEQ 5001] Highest",
    "* SEARCH 4989 4992 4995 4998 (MODSEQ 4999)",
    "d OK UID SEARCH completed",
  ]);
  await store.close();
});

Deno.test("SELECT names the first unseen message and every keyword of many flag combinations", async () => {
  const n = 3000;
  const store = await filled("sqlite", n);
  const inbox = (await store.getMailbox((await store.getAccount("alice"))!.id, "INBOX"))!;
  const all = Array.from({ length: n }, (_, i) => i + 1);
  await store.storeFlags(inbox.id, all.filter((u) => u !== 2991), "add", ["\\Seen"]);
  for (let k = 1; k <= 12; k++) {
    await store.storeFlags(inbox.id, all.filter((u) => u % 13 === k), "add", [`$K${k}`]);
  }
  const c = new TestClient(store);
  await c.login();
  const out = await c.cmd("s SELECT INBOX");
  const keywords = ["$K1", "$Work", ...Array.from({ length: 11 }, (_, i) => `$K${i + 2}`)];
  assert.ok(out.includes("* OK [UNSEEN 2991] First unseen message"), out.join("\n"));
  const flags = out.find((l) => l.startsWith("* FLAGS "));
  assert.equal(
    flags,
    `* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft ${keywords.join(" ")})`,
  );
  await store.storeFlags(inbox.id, [2991], "add", ["\\Seen"]);
  const again = await c.cmd("t SELECT INBOX");
  assert.ok(!again.some((l) => l.includes("[UNSEEN")), again.join("\n"));
  await store.close();
});

Deno.test("Sessions that open the same large listing keep views of their own", async () => {
  const n = 3000;
  const store = await filled("sqlite", n);
  const a = new TestClient(store);
  const b = new TestClient(store);
  await a.login();
  await b.login();
  await a.cmd("s SELECT INBOX");
  assert.ok((await b.cmd("s SELECT INBOX")).includes("* 3000 EXISTS"));
  await a.cmd("t STORE 1 +FLAGS.SILENT (\\Deleted)");
  assert.deepEqual(await a.cmd("e EXPUNGE"), ["* 1 EXPUNGE", "e OK EXPUNGE completed"]);
  // b has not been told of the expunge: its sequence numbers are unchanged.
  assert.deepEqual(await b.cmd("f FETCH 1:2 (UID)"), [
    "* 2 FETCH (UID 2)",
    "f OK [EXPUNGEISSUED] FETCH completed; some messages were expunged",
  ]);
  const c = new TestClient(store);
  await c.login();
  const opened = await c.cmd("s SELECT INBOX");
  assert.ok(opened.includes("* 2999 EXISTS"), opened.join("\n"));
  assert.ok(opened.includes("* OK [UNSEEN 2] First unseen message"), opened.join("\n"));
  assert.deepEqual((await c.cmd("f FETCH 1 (UID)"))[0], "* 1 FETCH (UID 2)");
  assert.deepEqual((await a.cmd("f FETCH 1 (UID)"))[0], "* 1 FETCH (UID 2)");
  await store.close();
});

Deno.test("Views that share one large listing each report another session's flag change", async () => {
  const store = await filled("sqlite", 3000);
  const [a, b, c] = [new TestClient(store), new TestClient(store), new TestClient(store)];
  for (const client of [a, b, c]) await client.login();
  const opened = await a.cmd("s SELECT INBOX");
  assert.ok(opened.includes("* OK [UNSEEN 3] First unseen message"), opened.join("\n"));
  await b.cmd("s SELECT INBOX");
  await c.cmd("s SELECT INBOX");
  assert.deepEqual(await c.cmd("t STORE 3 +FLAGS.SILENT (\\Seen)"), ["t OK STORE completed"]);
  // a takes the change into its view first; b must not find it already there.
  for (const client of [a, b]) {
    assert.deepEqual(await client.cmd("n NOOP"), [
      "* 3 FETCH (UID 3 FLAGS (\\Seen))",
      "n OK NOOP completed",
    ]);
  }
  const d = new TestClient(store);
  await d.login();
  const later = await d.cmd("s SELECT INBOX");
  assert.ok(later.includes("* OK [UNSEEN 6] First unseen message"), later.join("\n"));
  await store.close();
});
