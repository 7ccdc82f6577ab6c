/**
 * Issue 11, "IMAP to the letter": \Recent for IMAP4rev1 sessions, FLAGS before new keywords,
 * NIL as a keyword, several BINARY.SIZE items, CONDSTORE's first HIGHESTMODSEQ and ESEARCH
 * MODSEQ, LSUB's \Noselect parents and lenient lookups of malformed modified UTF-7 names.
 */
import assert from "node:assert/strict";
import { append, message, newStore, TestClient } from "./_harness.ts";
import type { MailStore } from "../../../mailstore/mail_store.ts";

async function client(store: MailStore): Promise<TestClient> {
  const c = new TestClient(store);
  await c.login();
  return c;
}

Deno.test("\\Recent belongs to the first read-write SELECT after arrival; EXAMINE only looks", async () => {
  const store = await newStore();
  const a = await client(store);
  const b = await client(store);
  const e = await client(store);
  await append(a, "INBOX", message("m1"));
  await append(a, "INBOX", message("m2"));
  assert.deepEqual(await a.cmd("s STATUS INBOX (MESSAGES RECENT)"), [
    "* STATUS INBOX (MESSAGES 2 RECENT 2)",
    "s OK STATUS completed",
  ]);
  const ex = await e.cmd("x EXAMINE INBOX");
  assert.ok(ex.includes("* 2 RECENT"), ex.join("\n"));
  const sel = await a.cmd("s SELECT INBOX");
  assert.ok(sel.includes("* 2 RECENT"), sel.join("\n"));
  const sel2 = await b.cmd("s SELECT INBOX");
  assert.ok(sel2.includes("* 0 RECENT"), sel2.join("\n"));
  assert.deepEqual(await a.cmd("f FETCH 1:2 FLAGS"), [
    "* 1 FETCH (FLAGS (\\Recent))",
    "* 2 FETCH (FLAGS (\\Recent))",
    "f OK FETCH completed",
  ]);
  assert.deepEqual(await b.cmd("f FETCH 1 FLAGS"), [
    "* 1 FETCH (FLAGS ())",
    "f OK FETCH completed",
  ]);
  assert.deepEqual(await b.cmd("q SEARCH OLD"), ["* SEARCH 1 2", "q OK SEARCH completed"]);
  assert.deepEqual(await a.cmd("q SEARCH RECENT"), ["* SEARCH 1 2", "q OK SEARCH completed"]);
  await a.cmd("st STORE 1 +FLAGS.SILENT (\\Seen)");
  assert.deepEqual(await a.cmd("q SEARCH NEW"), ["* SEARCH 2", "q OK SEARCH completed"]);
  // A COPY into the selected mailbox: b, the first to learn of it, claims it.
  await e.cmd("u UNSELECT");
  await append(e, "Archive", message("m3"));
  await e.cmd("y SELECT Archive");
  assert.match(await e.raw("c COPY 1 INBOX\r\n"), /OK \[COPYUID/);
  const n = await b.cmd("n NOOP");
  assert.deepEqual(n, [
    "* 3 EXISTS",
    "* 1 RECENT",
    "* 1 FETCH (UID 1 FLAGS (\\Seen))",
    "n OK NOOP completed",
  ]);
  assert.deepEqual(await a.cmd("n NOOP"), ["* 3 EXISTS", "n OK NOOP completed"]);
  assert.deepEqual(await b.cmd("f FETCH 3 FLAGS"), [
    "* 3 FETCH (FLAGS (\\Recent))",
    "f OK FETCH completed",
  ]);
  // \Recent cannot be stored; the STORE answer still shows it.
  assert.deepEqual(await b.cmd("st STORE 3 FLAGS (\\Recent \\Flagged)"), [
    "* 3 FETCH (FLAGS (\\Flagged \\Recent))",
    "st OK STORE completed",
  ]);
  // STATUS from a session that holds the mailbox selected counts its own recent messages.
  assert.deepEqual(await b.cmd("s STATUS INBOX (RECENT)"), [
    "* STATUS INBOX (RECENT 1)",
    "s OK STATUS completed",
  ]);
});

Deno.test("IMAP4rev2 sessions neither see nor claim \\Recent", async () => {
  const store = await newStore();
  const a = await client(store);
  await a.cmd("e ENABLE IMAP4rev2");
  await append(a, "INBOX", message("m1"));
  const sel = await a.cmd("s SELECT INBOX");
  assert.ok(!sel.some((l) => l.endsWith(" RECENT")), sel.join("\n"));
  assert.deepEqual(await a.cmd("f FETCH 1 FLAGS"), [
    "* 1 FETCH (FLAGS ())",
    "f OK FETCH completed",
  ]);
  const b = await client(store);
  const sel2 = await b.cmd("s SELECT INBOX");
  assert.ok(sel2.includes("* 1 RECENT"), sel2.join("\n"));
});

Deno.test("A new keyword is announced in FLAGS and PERMANENTFLAGS before any FETCH shows it", async () => {
  const store = await newStore();
  const a = await client(store);
  const b = await client(store);
  const r = await client(store);
  await append(a, "INBOX", message("m1"), "old");
  await a.cmd("s SELECT INBOX");
  await b.cmd("s SELECT INBOX");
  const ro = await r.cmd("x EXAMINE INBOX");
  assert.ok(
    ro.includes("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft old)"),
    ro.join("\n"),
  );
  const st = await a.cmd("st STORE 1 +FLAGS ($keyword1)");
  assert.deepEqual(st, [
    "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft old $keyword1)",
    "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft old $keyword1 \\*)] " +
    "Flags permitted",
    "* 1 FETCH (FLAGS (old $keyword1 \\Recent))",
    "st OK STORE completed",
  ]);
  assert.deepEqual(await b.cmd("n NOOP"), [
    "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft old $keyword1)",
    "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft old $keyword1 \\*)] " +
    "Flags permitted",
    "* 1 FETCH (UID 1 FLAGS (old $keyword1))",
    "n OK NOOP completed",
  ]);
  assert.deepEqual(await r.cmd("n NOOP"), [
    "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft old $keyword1)",
    "* OK [PERMANENTFLAGS ()] No permanent flags permitted",
    "* 1 FETCH (UID 1 FLAGS (old $keyword1))",
    "n OK NOOP completed",
  ]);
  // An APPEND with a new keyword is announced with its EXISTS.
  await append(b, "INBOX", message("m2"), "fresh");
  const n = await a.cmd("n NOOP");
  assert.equal(n[0], "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft old $keyword1 fresh)");
  assert.ok(n.includes("* 2 EXISTS"), n.join("\n"));
});

Deno.test("NIL is a keyword: STORE accepts it and FLAGS announces it first", async () => {
  const store = await newStore();
  const c = await client(store);
  await append(c, "INBOX", message("m1"));
  await c.cmd("s SELECT INBOX");
  assert.deepEqual(await c.cmd("st STORE 1 +FLAGS NIL"), [
    "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft NIL)",
    "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft NIL \\*)] Flags permitted",
    "* 1 FETCH (FLAGS (NIL \\Recent))",
    "st OK STORE completed",
  ]);
  assert.deepEqual(await c.cmd("q SEARCH KEYWORD NIL"), ["* SEARCH 1", "q OK SEARCH completed"]);
});

Deno.test("FETCH answers every BINARY.SIZE item asked for", async () => {
  const store = await newStore();
  const c = await client(store);
  const mp = "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n" +
    "Content-Type: text/plain\r\n\r\nhi\r\n--b\r\nContent-Type: application/octet-stream\r\n" +
    "Content-Transfer-Encoding: base64\r\n\r\nAAECAw==\r\n--b--\r\n";
  await append(c, "INBOX", mp);
  await c.cmd("s SELECT INBOX");
  assert.deepEqual(await c.cmd("f FETCH 1 (BINARY.SIZE[1] BINARY.SIZE[2] BINARY.SIZE[1])"), [
    "* 1 FETCH (BINARY.SIZE[1] 2 BINARY.SIZE[2] 4)",
    "f OK FETCH completed",
  ]);
});

Deno.test("The first CONDSTORE-enabling command after a plain SELECT gets HIGHESTMODSEQ first", async () => {
  for (const command of ["FETCH 1 (MODSEQ)", "SEARCH MODSEQ 1", "STATUS INBOX (HIGHESTMODSEQ)"]) {
    const store = await newStore();
    const c = await client(store);
    await append(c, "INBOX", message("m1"));
    await c.cmd("s SELECT INBOX");
    const out = await c.cmd(`f ${command}`);
    assert.match(out[0]!, /^\* OK \[HIGHESTMODSEQ \d+\] Highest$/, command);
    assert.ok(!(await c.cmd(`g ${command}`)).some((l) => l.includes("[HIGHESTMODSEQ")), command);
  }
  const store = await newStore();
  const c = await client(store);
  await append(c, "INBOX", message("m1"));
  await c.cmd("s SELECT INBOX");
  const st = await c.cmd("st STORE 1 (UNCHANGEDSINCE 5) +FLAGS (\\Seen)");
  assert.match(st[0]!, /^\* OK \[HIGHESTMODSEQ \d+\] Highest$/);
});

Deno.test("ESEARCH MODSEQ is the MODSEQ of the messages the answer returns", async () => {
  const store = await newStore();
  const c = await client(store);
  for (let i = 1; i <= 3; i++) await append(c, "INBOX", message(`m${i}`));
  await c.cmd("s SELECT INBOX (CONDSTORE)");
  // Message 3 then 1 then 2 change, so their MODSEQs grow in that order.
  for (const n of [3, 1, 2]) await c.cmd(`st STORE ${n} +FLAGS.SILENT (\\Seen)`);
  const f = (await c.cmd("f FETCH 1:3 (MODSEQ)")).join(" ");
  const m = [1, 2, 3].map((n) =>
    Number(new RegExp(`\\* ${n} FETCH \\(MODSEQ \\((\\d+)`).exec(f)![1])
  );
  const [m1, m2, m3] = m as [number, number, number];
  assert.ok(m3 < m1 && m1 < m2, f);
  const cases: [string, string][] = [
    ["MIN", `MIN 1 MODSEQ ${m1}`],
    ["MAX", `MAX 3 MODSEQ ${m3}`],
    ["MIN MAX", `MIN 1 MAX 3 MODSEQ ${m1}`],
    ["COUNT", `COUNT 3 MODSEQ ${m2}`],
    ["ALL", `ALL 1:3 MODSEQ ${m2}`],
  ];
  for (const [ret, want] of cases) {
    const out = await c.cmd(`q SEARCH RETURN (${ret}) 1:3 MODSEQ "/flags/\\\\seen" all 1`);
    assert.equal(out[0], `* ESEARCH (TAG "q") ${want}`, ret);
  }
});

Deno.test("LSUB lists an unsubscribed parent of a subscribed child as \\Noselect", async () => {
  const store = await newStore();
  const c = await client(store);
  await c.cmd("c CREATE parent/child/grandchild");
  await c.cmd("b SUBSCRIBE parent/child/grandchild");
  assert.deepEqual(await c.cmd('l LSUB "" par%'), [
    '* LSUB (\\Noselect) "/" parent',
    "l OK LSUB completed",
  ]);
  assert.deepEqual(await c.cmd('l LSUB "" parent/%'), [
    '* LSUB (\\Noselect) "/" parent/child',
    "l OK LSUB completed",
  ]);
  await c.cmd("b SUBSCRIBE parent");
  assert.deepEqual(await c.cmd('l LSUB "" par%'), [
    '* LSUB () "/" parent',
    "l OK LSUB completed",
  ]);
  assert.deepEqual(await c.cmd('l LSUB "" par*'), [
    '* LSUB () "/" parent',
    '* LSUB () "/" parent/child/grandchild',
    "l OK LSUB completed",
  ]);
});

Deno.test("Malformed modified UTF-7 names are looked up leniently but refused for CREATE", async () => {
  const store = await newStore();
  const c = await client(store);
  const name = "!#$&'+,-.0123456789:;<=>?@^_`|[}";
  assert.deepEqual(await c.cmd(`s SELECT ${name}`), ["s NO [NONEXISTENT] No such mailbox"]);
  assert.deepEqual(await c.cmd(`s STATUS ${name} (MESSAGES)`), [
    "s NO [NONEXISTENT] No such mailbox",
  ]);
  assert.deepEqual(await c.cmd(`l LIST "" "${name}%*"`), ["l OK LIST completed"]);
  assert.deepEqual(await c.cmd(`l LIST "${name}" "%"`), ["l OK LIST completed"]);
  assert.deepEqual(await c.cmd(`c CREATE ${name}`), [
    "c BAD Invalid modified UTF-7 mailbox name",
  ]);
  assert.deepEqual(await c.cmd("d DELETE &Jjo"), ["d NO [NONEXISTENT] No such mailbox"]);
  assert.deepEqual(await c.cmd("b SUBSCRIBE &Jjo"), ["b BAD Invalid modified UTF-7 mailbox name"]);
  assert.deepEqual(await c.cmd("u UNSUBSCRIBE &Jjo"), ["u OK UNSUBSCRIBE completed"]);
});

Deno.test("FROM, TO and CC match address forms: quoted, folded, display names, groups", async () => {
  const store = await newStore();
  const c = await client(store);
  await append(
    c,
    "INBOX",
    'From: "user-from"@domain.org\r\nTo: Jo <user-to@\r\n domain.org>\r\n' +
      "Cc: group: =?utf-8?Q?J=C3=BCrgen?= <j@x.de>;, other: (foo) ;\r\nSubject: s\r\n\r\nb\r\n",
  );
  await append(c, "INBOX", message("plain"));
  await c.cmd("s SELECT INBOX");
  const cases: [string, string][] = [
    ["FROM user-from@domain.org", "1"],
    ["TO user-to@domain.org", "1"],
    ['TO "jo <user-to@domain.org>"', "1"],
    ["CC group", "1"],
    ["CC foo", ""],
    ["FROM alice@example.org", "2"],
    ['FROM "Alice <alice@"', "2"],
  ];
  for (const [query, want] of cases) {
    const out = await c.cmd(`q SEARCH ${query}`);
    assert.deepEqual(out, [`* SEARCH${want ? " " + want : ""}`, "q OK SEARCH completed"], query);
  }
  const out = await c.raw(
    `q SEARCH CHARSET UTF-8 CC {${
      new TextEncoder().encode("jürgen <j@").length
    }+}\r\njürgen <j@\r\n`,
  );
  assert.match(out, /^\* SEARCH 1\r\n/);
});

Deno.test("BODY[] of a binary part with NUL never puts NUL in a plain literal; BINARY keeps it", async () => {
  const store = await newStore();
  const c = await client(store);
  const msg =
    "Subject: x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
    "--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\nContent-Type: application/octet-stream\r\n" +
    "Content-Transfer-Encoding: binary\r\n\r\nab\0cd\0\r\n--b--\r\n";
  const bytes = new TextEncoder().encode(msg);
  const head = new TextEncoder().encode(`a APPEND INBOX ~{${bytes.length}+}\r\n`);
  const out = await c.raw(new Uint8Array([...head, ...bytes, 0x0d, 0x0a]));
  assert.match(out, /^a OK \[APPENDUID/);
  await c.cmd("s SELECT INBOX");
  for (
    const item of [
      "BODY.PEEK[2]",
      "BODY.PEEK[]",
      "RFC822",
      "BODY.PEEK[TEXT]",
      "BODY.PEEK[]<60.200>",
    ]
  ) {
    const f = await c.raw(`f FETCH 1 (${item})\r\n`);
    assert.ok(!f.includes("\0"), item);
    assert.match(f, /\{\d+\}\r\n/, item);
  }
  assert.equal(
    await c.raw("f FETCH 1 (BODY.PEEK[2])\r\n"),
    "* 1 FETCH (BODY[2] {6}\r\nab\u0080cd\u0080)\r\nf OK FETCH completed\r\n".replace(
      /\u0080/g,
      "\ufffd",
    ),
  );
  assert.equal(
    await c.raw("f FETCH 1 (BINARY.PEEK[2])\r\n"),
    "* 1 FETCH (BINARY[2] ~{6}\r\nab\0cd\0)\r\nf OK FETCH completed\r\n",
  );
  assert.match(
    await c.raw("f FETCH 1 (RFC822.SIZE)\r\n"),
    new RegExp(`RFC822.SIZE ${bytes.length}\\)`),
  );
});

Deno.test("Under QRESYNC a command that reports expunges ends with the new HIGHESTMODSEQ", async () => {
  const store = await newStore();
  const a = await client(store);
  const b = await client(store);
  for (let i = 1; i <= 2; i++) await append(a, "INBOX", message(`m${i}`));
  await a.cmd("e ENABLE QRESYNC");
  await a.cmd("s SELECT INBOX");
  await b.cmd("s SELECT INBOX");
  await b.cmd("st STORE 1 +FLAGS.SILENT (\\Deleted)");
  await b.cmd("x EXPUNGE");
  const n = await a.cmd("n NOOP");
  assert.equal(n[0], "* VANISHED 1");
  assert.match(n.at(-1)!, /^n OK \[HIGHESTMODSEQ \d+\] NOOP completed$/);
  assert.deepEqual(await a.cmd("n NOOP"), ["n OK NOOP completed"]);
  // Without QRESYNC the tagged OK stays plain.
  await b.cmd("st STORE 1 +FLAGS.SILENT (\\Deleted)");
  assert.deepEqual(await b.cmd("x EXPUNGE"), ["* 1 EXPUNGE", "x OK EXPUNGE completed"]);
});

for (const shared of [false, true]) {
  Deno.test(
    `RecentRegistry claims each UID once, peeks without claiming and forgets a mailbox${
      shared ? " (shared memory)" : ""
    }`,
    async () => {
      const { RecentRegistry, SharedBoundaries } = await import("../../../protocol/imap/recent.ts");
      const r = shared
        ? new RecentRegistry(new SharedBoundaries(SharedBoundaries.allocate(16)))
        : new RecentRegistry();
      assert.equal(r.claim(1, 7, [1, 2]), 2, "nobody added anything: nothing is recent");
      r.noteArrival(2, 7, 5);
      assert.equal(r.unclaimedFrom(2, 7, [4, 5, 6]), 1, "5 and 6 are unclaimed");
      assert.equal(r.claim(2, 7, [4, 5, 6]), 1, "5 and 6 are claimed");
      assert.equal(r.claim(2, 7, [4, 5, 6, 7]), 3, "7 is claimed");
      assert.equal(r.unclaimedFrom(2, 7, [4, 5, 6, 7]), 4);
      assert.equal(r.unclaimedFrom(2, 8, [1]), 1, "another UIDVALIDITY is another mailbox");
      r.forget(2);
      assert.equal(r.boundary(2, 7), null);
      assert.equal(r.boundary(1, 7), 3);
    },
  );
}

Deno.test("SharedBoundaries let the registries of two Workers claim each UID once", async () => {
  const { RecentRegistry, SharedBoundaries } = await import("../../../protocol/imap/recent.ts");
  const buffer = SharedBoundaries.allocate(4);
  const [a, b] = [0, 1].map(() => new RecentRegistry(new SharedBoundaries(buffer)));
  a!.noteArrival(9, 0xfffffff0, 1);
  b!.noteArrival(9, 0xfffffff0, 2);
  assert.equal(b!.claim(9, 0xfffffff0, [1, 2]), 0);
  assert.equal(a!.claim(9, 0xfffffff0, [1, 2, 3]), 2);
  // A full table (4 slots) knows no boundary for more mailboxes: nothing is recent there.
  for (let id = 10; id < 80; id++) a!.noteArrival(id, 1, 1);
  assert.equal(b!.unclaimedFrom(9, 0xfffffff0, [4]), 0);
  a!.forget(9);
  assert.equal(b!.boundary(9, 0xfffffff0), null);
});
