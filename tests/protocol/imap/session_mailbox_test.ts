import assert from "node:assert/strict";
import { append, message, newStore, TestClient, withoutMailboxId } from "./_harness.ts";
import { concatBytes } from "../../../protocol/bytes.ts";
import { NUL_MAP_PIECE } from "../../../protocol/imap/response.ts";
import type { MailStore } from "../../../mailstore/mail_store.ts";

async function withMessages(n: number) {
  const store = await newStore();
  const c = new TestClient(store);
  await c.login();
  for (let i = 1; i <= n; i++) await append(c, "INBOX", message(`M${i}`, `body ${i}`));
  await c.cmd("s SELECT INBOX");
  return { store, c };
}

Deno.test("ImapSession runs a full client session: create, append, copy, move, store, expunge", async () => {
  const { store, c } = await withMessages(3);
  assert.deepEqual(withoutMailboxId(await c.cmd("c CREATE Work/Projects")), [
    "c OK CREATE completed",
  ]);
  assert.deepEqual(await c.cmd("c2 CREATE Work/Projects"), [
    "c2 NO [ALREADYEXISTS] Mailbox already exists",
  ]);
  const list = await c.cmd('l LIST "" "*"');
  assert.ok(list.includes('* LIST (\\HasNoChildren) "/" INBOX'), list.join("\n"));
  assert.ok(list.includes('* LIST (\\HasNoChildren \\Sent) "/" Sent'), list.join("\n"));
  assert.ok(list.includes('* LIST (\\HasNoChildren) "/" Work/Projects'), list.join("\n"));
  assert.ok(list.includes('* LIST (\\HasChildren) "/" Work'), list.join("\n"));
  assert.deepEqual(await c.cmd('l2 LIST "" %/%'), [
    '* LIST (\\HasNoChildren) "/" Work/Projects',
    "l2 OK LIST completed",
  ]);
  assert.deepEqual(await c.cmd('l3 LIST "" ""'), [
    '* LIST (\\Noselect) "/" ""',
    "l3 OK LIST completed",
  ]);

  const copy = await c.cmd("k COPY 1:2 Work/Projects");
  assert.match(copy.at(-1)!, /^k OK \[COPYUID \d+ 1:2 1:2\] COPY completed$/);
  assert.deepEqual(await c.cmd("k2 COPY 1 Nowhere"), ["k2 NO [TRYCREATE] No such mailbox"]);

  assert.deepEqual(await c.cmd("st STORE 2 +FLAGS (\\Deleted \\Seen)"), [
    "* 2 FETCH (FLAGS (\\Deleted \\Seen \\Recent))",
    "st OK STORE completed",
  ]);
  assert.deepEqual(await c.cmd("st2 STORE 1 +FLAGS.SILENT \\Answered"), ["st2 OK STORE completed"]);
  assert.deepEqual(await c.cmd("st3 UID STORE 3 FLAGS ($Label1)"), [
    "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label1)",
    "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label1 \\*)] Flags permitted",
    "* 3 FETCH (UID 3 FLAGS ($Label1 \\Recent))",
    "st3 OK UID STORE completed",
  ]);
  assert.deepEqual(await c.cmd("e EXPUNGE"), [
    "* 2 EXPUNGE",
    "* 2 RECENT",
    "e OK EXPUNGE completed",
  ]);
  assert.deepEqual(await c.cmd("f FETCH 1:* (UID FLAGS)"), [
    "* 1 FETCH (UID 1 FLAGS (\\Answered \\Recent))",
    "* 2 FETCH (UID 3 FLAGS ($Label1 \\Recent))",
    "f OK FETCH completed",
  ]);
  const mv = await c.cmd("m MOVE 1 Archive");
  assert.match(mv[0]!, /^\* OK \[COPYUID \d+ 1 1\] Moved$/);
  assert.deepEqual(mv.slice(1), ["* 1 EXPUNGE", "* 1 RECENT", "m OK MOVE completed"]);
  assert.deepEqual(await c.cmd("m2 UID MOVE 3 Archive"), [
    mv[0]!.replace(" 1 1]", " 3 2]"),
    "* 1 EXPUNGE",
    "* 0 RECENT",
    "m2 OK UID MOVE completed",
  ]);
  const archive = await store.getMailbox((await store.getAccount("alice"))!.id, "Archive");
  assert.equal(archive?.messages, 2);
  const status = await c.cmd("t STATUS Archive (MESSAGES UIDNEXT UNSEEN DELETED SIZE)");
  assert.match(
    status[0]!,
    /^\* STATUS Archive \(MESSAGES 2 UIDNEXT 3 UNSEEN 2 DELETED 0 SIZE \d+\)$/,
  );
  assert.deepEqual(await c.cmd("r RENAME Work Play"), ["r OK RENAME completed"]);
  assert.deepEqual(await c.cmd('l4 LIST "" Play/*'), [
    '* LIST (\\HasNoChildren) "/" Play/Projects',
    "l4 OK LIST completed",
  ]);
  assert.deepEqual(await c.cmd("d DELETE Play/Projects"), ["d OK DELETE completed"]);
  assert.deepEqual(await c.cmd("d2 DELETE INBOX"), ["d2 NO [CANNOT] INBOX cannot be deleted"]);
  assert.deepEqual(await c.cmd("u SUBSCRIBE Archive"), ["u OK SUBSCRIBE completed"]);
  assert.deepEqual(await c.cmd("u1 UNSUBSCRIBE Junk"), ["u1 OK UNSUBSCRIBE completed"]);
  assert.deepEqual(await c.cmd('u2 LSUB "" J*'), ["u2 OK LSUB completed"]);
  assert.deepEqual(await c.cmd('u2 LSUB "" A%'), ['* LSUB () "/" Archive', "u2 OK LSUB completed"]);
  assert.deepEqual(await c.cmd('u3 LIST (SUBSCRIBED) "" A*'), [
    '* LIST (\\HasNoChildren \\Archive \\Subscribed) "/" Archive',
    "u3 OK LIST completed",
  ]);
  assert.deepEqual(await c.cmd("x CLOSE"), ["x OK CLOSE completed"]);
  assert.deepEqual(await c.cmd("y FETCH 1 UID"), ["y BAD FETCH is not allowed in this state"]);
});

Deno.test("ImapSession FETCH returns sections, partials and macros and sets \\Seen", async () => {
  const { c } = await withMessages(1);
  const raw = message("M1", "body 1");
  const hdrEnd = raw.indexOf("\r\n\r\n") + 4;
  assert.equal(
    await c.raw("f1 FETCH 1 (BODY.PEEK[TEXT] RFC822.SIZE)\r\n"),
    `* 1 FETCH (BODY[TEXT] {8}\r\nbody 1\r\n RFC822.SIZE ${raw.length})\r\nf1 OK FETCH completed\r\n`,
  );
  assert.equal(
    await c.raw("f2 FETCH 1 BODY.PEEK[]<0.4>\r\n"),
    "* 1 FETCH (BODY[]<0> {4}\r\nFrom)\r\nf2 OK FETCH completed\r\n",
  );
  assert.equal(
    await c.raw("f3 FETCH 1 (BODY.PEEK[HEADER.FIELDS.NOT (From To Date Message-ID)])\r\n"),
    "* 1 FETCH (BODY[HEADER.FIELDS.NOT (From To Date Message-ID)] {15}\r\nSubject: M1\r\n\r\n)\r\n" +
      "f3 OK FETCH completed\r\n",
  );
  c.take();
  const fast = await c.raw("f5 FETCH 1 FAST\r\n");
  assert.match(
    fast,
    /^\* 1 FETCH \(FLAGS \(\\Recent\) INTERNALDATE "\d\d-\w{3}-\d{4} \d\d:\d\d:\d\d \+0000" RFC822.SIZE \d+\)\r\n/,
  );
  assert.equal(
    await c.raw("f6 FETCH 1 RFC822.HEADER\r\n"),
    `* 1 FETCH (RFC822.HEADER {${hdrEnd}}\r\n${raw.slice(0, hdrEnd)})\r\nf6 OK FETCH completed\r\n`,
  );
  // BODY[] without PEEK sets \Seen and reports FLAGS.
  assert.equal(
    await c.raw("f7 FETCH 1 BODY[TEXT]<2.100>\r\n"),
    "* 1 FETCH (BODY[TEXT]<2> {6}\r\ndy 1\r\n FLAGS (\\Seen \\Recent))\r\nf7 OK FETCH completed\r\n",
  );
  assert.deepEqual(await c.cmd("f8 FETCH 1 (FLAGS)"), [
    "* 1 FETCH (FLAGS (\\Seen \\Recent))",
    "f8 OK FETCH completed",
  ]);
  assert.deepEqual(await c.cmd("f9 FETCH 2 FLAGS"), ["f9 BAD Invalid message sequence number"]);
  assert.deepEqual(await c.cmd("f10 UID FETCH 5:* UID"), [
    "* 1 FETCH (UID 1)",
    "f10 OK UID FETCH completed",
  ]);
  assert.deepEqual(await c.cmd("f11 FETCH 1 (BODY[HEADER.FIELDS ()])"), ["f11 BAD Empty list"]);
  assert.deepEqual(await c.cmd("f13 FETCH 1 BODY[4.TEXT"), ["f13 BAD Expected ]"]);
});

Deno.test("ImapSession EXAMINE is read-only and keeps \\Seen untouched", async () => {
  const { c } = await withMessages(1);
  const ex = await c.cmd("x EXAMINE INBOX");
  assert.ok(ex.includes("* OK [CLOSED] Previous mailbox closed"));
  assert.equal(ex.at(-1), "x OK [READ-ONLY] EXAMINE completed");
  await c.raw("f FETCH 1 BODY[]\r\n");
  assert.deepEqual(await c.cmd("g FETCH 1 FLAGS"), [
    "* 1 FETCH (FLAGS ())",
    "g OK FETCH completed",
  ]);
  assert.deepEqual(await c.cmd("s STORE 1 +FLAGS \\Seen"), [
    "s NO [READ-ONLY] Mailbox is read-only",
  ]);
  assert.deepEqual(await c.cmd("e EXPUNGE"), ["e NO [READ-ONLY] Mailbox is read-only"]);
});

Deno.test("ImapSession SEARCH handles flags, sizes, dates, sets, NOT, OR and groups", async () => {
  const { c } = await withMessages(5);
  await c.cmd("a STORE 2,4 +FLAGS (\\Flagged)");
  await c.cmd("b STORE 5 +FLAGS (\\Seen $Work)");
  const cases: [string, string][] = [
    ["ALL", "1 2 3 4 5"],
    ["FLAGGED", "2 4"],
    ["UNFLAGGED UNSEEN", "1 3"],
    ["KEYWORD $Work", "5"],
    ["NOT KEYWORD $work", "1 2 3 4"],
    ["OR FLAGGED SEEN", "2 4 5"],
    ["(OR 1 5) UNSEEN", "1"],
    ["2:4 NOT 3", "2 4"],
    ["5:3", "3 4 5"],
    ["UID 1,3", "1 3"],
    ["LARGER 10 SMALLER 100000", "1 2 3 4 5"],
    ["SMALLER 10", ""],
    ["SUBJECT m3", "3"],
    ['HEADER Message-ID "M4@x"', "4"],
    ['BODY "body 2"', "2"],
    ["TEXT alice@EXAMPLE", "1 2 3 4 5"],
    ["SENTON 7-Mar-2023", "1 2 3 4 5"],
    ["SENTBEFORE 7-Mar-2023", ""],
    ["SINCE 1-Jan-2000", "1 2 3 4 5"],
    ["BEFORE 1-Jan-2000", ""],
    // The session selected after the APPENDs, so every message is \Recent in it.
    ["NEW", "1 2 3 4"],
    ["RECENT", "1 2 3 4 5"],
    ["OLD", ""],
    ["CHARSET UTF-8 ALL", "1 2 3 4 5"],
    ["*", "5"],
  ];
  for (const [query, want] of cases) {
    const out = await c.cmd(`s SEARCH ${query}`);
    assert.deepEqual(out, [`* SEARCH${want ? " " + want : ""}`, "s OK SEARCH completed"], query);
  }
  assert.deepEqual(await c.cmd("u UID SEARCH FLAGGED"), [
    "* SEARCH 2 4",
    "u OK UID SEARCH completed",
  ]);
  assert.deepEqual(await c.cmd("v SEARCH CHARSET KOI8-R ALL"), [
    "v NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset",
  ]);
  assert.deepEqual(await c.cmd("w SEARCH FOO"), ["w BAD Unknown search key FOO"]);
  assert.deepEqual(await c.cmd("w2 SEARCH ((((((((((((((((((ALL))))))))))))))))))"), [
    "w2 BAD Lists nested too deeply",
  ]);
  assert.deepEqual(await c.cmd("x SEARCH RETURN (MIN MAX COUNT ALL) FLAGGED"), [
    '* ESEARCH (TAG "x") MIN 2 MAX 4 ALL 2,4 COUNT 2',
    "x OK SEARCH completed",
  ]);
  assert.deepEqual(await c.cmd("y SEARCH RETURN (SAVE) FLAGGED"), ["y OK SEARCH completed"]);
  assert.deepEqual(await c.cmd("z FETCH $ UID"), [
    "* 2 FETCH (UID 2)",
    "* 4 FETCH (UID 4)",
    "z OK FETCH completed",
  ]);
});

Deno.test("ImapSession speaks IMAP4rev2 after ENABLE: ESEARCH, LIST on SELECT, UTF-8 names", async () => {
  const store = await newStore();
  const c = new TestClient(store);
  await c.login();
  assert.deepEqual(await c.cmd("e ENABLE IMAP4rev2 X-UNKNOWN"), [
    "* ENABLED IMAP4rev2",
    "e OK ENABLE completed",
  ]);
  assert.deepEqual(withoutMailboxId(await c.cmd('c CREATE "Entwürfe"')), ["c OK CREATE completed"]);
  await append(c, '"Entwürfe"', message("x"));
  const sel = await c.cmd('s SELECT "Entwürfe"');
  assert.ok(sel.includes('* LIST (\\HasNoChildren) "/" "Entwürfe"'), sel.join("\n"));
  assert.ok(!sel.some((l) => /RECENT|UNSEEN/.test(l)));
  assert.deepEqual(await c.cmd("q SEARCH ALL"), [
    '* ESEARCH (TAG "q") ALL 1',
    "q OK SEARCH completed",
  ]);
  assert.deepEqual(await c.cmd("q2 UID SEARCH SEEN"), [
    '* ESEARCH (TAG "q2") UID',
    "q2 OK UID SEARCH completed",
  ]);
});

Deno.test("ImapSession uses modified UTF-7 names for IMAP4rev1 clients", async () => {
  const store = await newStore();
  const c = new TestClient(store);
  await c.login();
  assert.deepEqual(withoutMailboxId(await c.cmd("c CREATE Entw&APw-rfe")), [
    "c OK CREATE completed",
  ]);
  const acct = (await store.getAccount("alice"))!;
  assert.notEqual(await store.getMailbox(acct.id, "Entwürfe"), null);
  assert.deepEqual(await c.cmd('l LIST "" Entw*'), [
    '* LIST (\\HasNoChildren) "/" Entw&APw-rfe',
    "l OK LIST completed",
  ]);
  assert.match((await c.cmd("s SELECT Entw&APw-rfe")).at(-1)!, /^s OK \[READ-WRITE\]/);
  assert.deepEqual(await c.cmd("b CREATE &Jjo!"), ["b BAD Invalid modified UTF-7 mailbox name"]);
  assert.deepEqual(withoutMailboxId(await c.cmd('q CREATE "A \\"quoted\\" name"')), [
    "q OK CREATE completed",
  ]);
  assert.deepEqual(await c.cmd('l2 LIST "" "A *"'), [
    '* LIST (\\HasNoChildren) "/" "A \\"quoted\\" name"',
    "l2 OK LIST completed",
  ]);
  assert.match((await c.cmd("i SELECT inbox")).at(-1)!, /^i OK/);
});

const multipart = [
  "From: =?UTF-8?Q?J=C3=BCrgen?= <j@example.org>",
  "To: bob@example.org",
  "Subject: =?UTF-8?B?R3LDvMOfZQ==?=",
  "Date: Tue, 7 Mar 2023 23:30:00 -0500",
  "MIME-Version: 1.0",
  'Content-Type: multipart/mixed; boundary="b1"',
  "",
  "--b1",
  "Content-Type: text/plain; charset=utf-8",
  "Content-Transfer-Encoding: base64",
  "",
  btoa("Secret word: pineapple\r\n"),
  "--b1",
  "Content-Type: application/octet-stream",
  "Content-Transfer-Encoding: base64",
  "",
  btoa("\x00\x01\x02"),
  "--b1--",
  "",
].join("\r\n");

Deno.test("ImapSession FETCH serves ENVELOPE, BODYSTRUCTURE, numeric sections and BINARY", async () => {
  const store = await newStore();
  const c = new TestClient(store);
  await c.login();
  await append(c, "INBOX", multipart);
  await c.cmd("s SELECT INBOX");
  const env = await c.cmd("f1 FETCH 1 (ENVELOPE BODYSTRUCTURE)");
  assert.match(
    env[0]!,
    /^\* 1 FETCH \(ENVELOPE \("Tue, 7 Mar 2023 23:30:00 -0500" "=\?UTF-8\?B\?R3LDvMOfZQ==\?=" /,
  );
  assert.match(
    env[0]!,
    /BODYSTRUCTURE \(\("text" "plain" \("charset" "utf-8"\) NIL NIL "base64" \d+ \d+/,
  );
  assert.equal(env.at(-1), "f1 OK FETCH completed");
  const part = await c.raw("f2 FETCH 1 (BODY.PEEK[1] BODY.PEEK[1.MIME])\r\n");
  assert.ok(part.includes(`BODY[1] {${btoa("Secret word: pineapple\r\n").length}}\r\n`), part);
  assert.ok(part.includes("BODY[1.MIME] {"), part);
  assert.equal(
    await c.raw("f3 FETCH 1 (BINARY.PEEK[2] BINARY.SIZE[2])\r\n"),
    "* 1 FETCH (BINARY[2] ~{3}\r\n\x00\x01\x02 BINARY.SIZE[2] 3)\r\nf3 OK FETCH completed\r\n",
  );
  assert.deepEqual(await c.cmd("f4 FETCH 1 BINARY.PEEK[9]"), [
    "f4 NO [NONEXISTENT] No such message part",
  ]);
  assert.deepEqual(await c.cmd("f5 FETCH 1 BODY.PEEK[9]"), [
    '* 1 FETCH (BODY[9] "")',
    "f5 OK FETCH completed",
  ]);
  // Search uses decoded text: encoded-word subject, base64 body, and the Date as written.
  assert.deepEqual(await c.cmd('q1 SEARCH SUBJECT "grüße"'), [
    "* SEARCH 1",
    "q1 OK SEARCH completed",
  ]);
  assert.deepEqual(await c.cmd("q2 SEARCH BODY PINEAPPLE"), [
    "* SEARCH 1",
    "q2 OK SEARCH completed",
  ]);
  assert.deepEqual(await c.cmd('q3 SEARCH FROM "jürgen"'), [
    "* SEARCH 1",
    "q3 OK SEARCH completed",
  ]);
  assert.deepEqual(await c.cmd("q4 SEARCH SENTON 7-Mar-2023"), [
    "* SEARCH 1",
    "q4 OK SEARCH completed",
  ]);
  assert.deepEqual(await c.cmd("q5 SEARCH TEXT pineapple"), [
    "* SEARCH 1",
    "q5 OK SEARCH completed",
  ]);
});

Deno.test("ImapSession without MIME support refuses structure items with BAD", async () => {
  const store = await newStore();
  const c = new TestClient(store, { mime: {} });
  await c.login();
  await append(c, "INBOX", multipart);
  await c.cmd("s SELECT INBOX");
  assert.deepEqual(await c.cmd("f FETCH 1 ENVELOPE"), ["f BAD FETCH ENVELOPE is not supported"]);
  assert.deepEqual(await c.cmd("g FETCH 1 BODY[1]"), ["g BAD FETCH BODY[] is not supported"]);
  assert.deepEqual(await c.cmd("h SEARCH SUBJECT =?UTF-8?B?R3LDvMOfZQ==?="), [
    "* SEARCH 1",
    "h OK SEARCH completed",
  ]);
});

Deno.test("ImapSession answers ID, NAMESPACE, LIST RETURN (STATUS), UID EXPUNGE and UNSELECT", async () => {
  const store = await newStore();
  const c = new TestClient(store);
  c.take();
  assert.deepEqual(await c.cmd('i ID ("name" "test" "version" NIL)'), [
    '* ID ("name" "Postern" "vendor" "Postern")',
    "i OK ID completed",
  ]);
  assert.deepEqual(await c.cmd("e ENABLE IMAP4rev2"), [
    "e BAD ENABLE is not allowed in this state",
  ]);
  await c.login();
  assert.deepEqual(await c.cmd("n NAMESPACE"), [
    '* NAMESPACE (("" "/")) NIL NIL',
    "n OK NAMESPACE completed",
  ]);
  const date = '"14-Jul-2021 02:44:25 -0700"';
  const size = message("D").length;
  assert.match(
    (await c.cmd(`a APPEND INBOX (\\Seen) ${date} {${size}+}\r\n${message("D")}`)).at(-1)!,
    /^a OK/,
  );
  await append(c, "INBOX", message("E"));
  assert.deepEqual(await c.cmd('l LIST "" INBOX RETURN (CHILDREN STATUS (MESSAGES UNSEEN))'), [
    '* LIST (\\HasNoChildren) "/" INBOX',
    "* STATUS INBOX (MESSAGES 2 UNSEEN 1)",
    "l OK LIST completed",
  ]);
  assert.deepEqual(await c.cmd('l2 LIST (SPECIAL-USE) "" *'), [
    '* LIST (\\HasNoChildren \\Archive) "/" Archive',
    '* LIST (\\HasNoChildren \\Drafts) "/" Drafts',
    '* LIST (\\HasNoChildren \\Junk) "/" Junk',
    '* LIST (\\HasNoChildren \\Sent) "/" Sent',
    '* LIST (\\HasNoChildren \\Trash) "/" Trash',
    "l2 OK LIST completed",
  ]);
  await c.cmd("s SELECT INBOX");
  assert.deepEqual(await c.cmd("f FETCH 1 INTERNALDATE"), [
    '* 1 FETCH (INTERNALDATE "14-Jul-2021 09:44:25 +0000")',
    "f OK FETCH completed",
  ]);
  await c.cmd("d STORE 1:2 +FLAGS.SILENT (\\Deleted)");
  assert.deepEqual(await c.cmd("x UID EXPUNGE 2"), [
    "* 2 EXPUNGE",
    "* 1 RECENT",
    "x OK UID EXPUNGE completed",
  ]);
  assert.deepEqual(await c.cmd("k CHECK"), ["k OK CHECK completed"]);
  assert.deepEqual(await c.cmd("u UNSELECT"), ["u OK UNSELECT completed"]);
  const acct = (await store.getAccount("alice"))!;
  const inbox = (await store.getMailbox(acct.id, "INBOX"))!;
  assert.equal(inbox.messages, 1, "UNSELECT must not expunge");
});

Deno.test("ImapSession LIST shows a deleted parent of surviving children with %", async () => {
  const store = await newStore();
  const c = new TestClient(store);
  await c.login();
  await c.cmd("c CREATE Work/Projects");
  await c.cmd("d DELETE Work");
  assert.deepEqual(await c.cmd('l LIST "" W%'), [
    '* LIST (\\Noselect \\HasChildren) "/" Work',
    "l OK LIST completed",
  ]);
  assert.deepEqual(await c.cmd('l2 LIST "" W*'), [
    '* LIST (\\HasNoChildren) "/" Work/Projects',
    "l2 OK LIST completed",
  ]);
  const caps = await c.cmd("k CAPABILITY");
  assert.match(
    caps[0]!,
    / ESEARCH SEARCHRES LIST-EXTENDED LIST-STATUS STATUS=SIZE CREATE-SPECIAL-USE SORT SORT=DISPLAY ESORT CONTEXT=SEARCH CONTEXT=SORT THREAD=ORDEREDSUBJECT THREAD=REFERENCES MULTIAPPEND UTF8=ACCEPT OBJECTID SAVEDATE BINARY PREVIEW APPENDLIMIT=\d+/,
  );
});

Deno.test("ImapSession FETCH waits for the driver between large output batches", async () => {
  const store = await newStore();
  const c = new TestClient(store);
  await c.login();
  const big = message("Big", "z".repeat(200 * 1024));
  for (let i = 0; i < 4; i++) await append(c, "INBOX", big);
  await c.cmd("s SELECT INBOX");
  const batches: number[] = [];
  let pending = 0;
  let maxPending = 0;
  c.session.onOutput = async (bytes) => {
    batches.push(bytes.length);
    pending++;
    maxPending = Math.max(maxPending, pending);
    await new Promise((r) => setTimeout(r, 2));
    pending--;
  };
  await c.session.receive(new TextEncoder().encode("f FETCH 1:4 BODY.PEEK[]\r\n"));
  assert.ok(batches.length >= 3, `batches ${batches}`);
  assert.equal(maxPending, 1);
  assert.equal(batches.reduce((a, b) => a + b, 0) > 4 * big.length, true);
});

Deno.test("ImapSession FETCH hands a large body over as a part of its own, in order", async () => {
  const store = await newStore();
  const c = new TestClient(store);
  await c.login();
  const big = message("Big", "y".repeat(300 * 1024));
  await append(c, "INBOX", big);
  await c.cmd("s SELECT INBOX");
  const parts: Uint8Array[] = [];
  let pending = 0;
  let maxPending = 0;
  c.session.onOutput = async (bytes) => {
    parts.push(bytes);
    pending++;
    maxPending = Math.max(maxPending, pending);
    await new Promise((r) => setTimeout(r, 1));
    pending--;
  };
  await c.session.receive(new TextEncoder().encode("f FETCH 1 BODY.PEEK[]\r\nn NOOP\r\n"));
  const sizes = parts.map((p) => p.length);
  assert.ok(sizes.includes(big.length), `parts ${sizes}`);
  assert.ok(sizes.every((n) => n === big.length || n < 1024), `parts ${sizes}`);
  assert.equal(maxPending, 1);
  const text = new TextDecoder().decode(concatBytes(parts));
  assert.ok(text.startsWith(`* 1 FETCH (BODY[] {${big.length}}\r\n`), text.slice(0, 40));
  assert.ok(text.endsWith(")\r\nf OK FETCH completed\r\nn OK NOOP completed\r\n"), text.slice(-60));
});

Deno.test("a long FETCH 1:* and SEARCH yield to the event loop, and answer the same", async () => {
  const store = await newStore();
  const seed = new TestClient(store);
  await seed.login();
  for (let i = 0; i < 600; i++) await append(seed, "INBOX", message(`m${i}`));
  const bySlice: string[][] = [];
  for (const sliceMs of [0, 60_000]) {
    const c = new TestClient(store, { sliceMs });
    await c.login();
    await c.cmd("s SELECT INBOX");
    const answers: string[] = [];
    for (const cmd of ["f FETCH 1:* (UID FLAGS)", "u UID SEARCH ALL"]) {
      // A timer set before the command runs before it completes only if the command yields
      // to the event loop: at every step with a slice of 0, never with a long slice here (the
      // memory store answers in microtasks).
      let timerRan = false;
      setTimeout(() => timerRan = true, 0);
      const lines = await c.cmd(cmd);
      answers.push(lines.join("\n"));
      assert.equal(timerRan, sliceMs === 0, `${cmd} slice ${sliceMs}`);
      await new Promise((r) => setTimeout(r, 0));
    }
    assert.equal(answers[0]!.split("\n").length, 601);
    assert.ok(answers[1]!.startsWith("* SEARCH 1 2 3 "));
    bySlice.push(answers);
  }
  // Yielding in the middle of a response (the SEARCH line is written 256 numbers at a time)
  // changes nothing in it. (FETCH differs: only the first session sees \Recent.)
  assert.equal(bySlice[0]![1], bySlice[1]![1]);
});

Deno.test("FETCH of a large body with NUL still sends each NUL as 0x80", async () => {
  const store = await newStore();
  const c = new TestClient(store);
  await c.login();
  const body = "q".repeat(5 * 1024 * 1024);
  const raw = new TextEncoder().encode(message("Nul", body));
  raw[raw.length - 100] = 0;
  const inbox = (await store.getMailbox((await store.getAccount("alice"))!.id, "INBOX"))!;
  await store.append(inbox.id, { raw, flags: [] });
  await c.cmd("s SELECT INBOX");
  const parts: Uint8Array[] = [];
  c.session.onOutput = (bytes) => {
    parts.push(bytes);
  };
  await c.session.receive(new TextEncoder().encode("f FETCH 1 BODY.PEEK[]\r\n"));
  // The body leaves in pieces of NUL_MAP_PIECE, each mapped as it is handed on.
  assert.ok(parts.filter((p) => p.length === NUL_MAP_PIECE).length >= 4);
  const all = concatBytes(parts);
  const start = all.indexOf(0x0a) + 1;
  const literal = all.subarray(start, start + raw.length);
  assert.equal(
    new TextDecoder().decode(all.subarray(0, start)).endsWith(`{${raw.length}}\r\n`),
    true,
  );
  assert.equal(literal.indexOf(0), -1);
  assert.equal(literal[raw.length - 100], 0x80);
  assert.equal(raw[raw.length - 100], 0, "the stored octets are left alone");
});

Deno.test("a streamed FETCH whose store fails mid-body ends the connection after NO [SERVERBUG]", async () => {
  const store = await newStore();
  const c = new TestClient(store);
  await c.login();
  const raw = new TextEncoder().encode(message("Streamed", "s".repeat(5 * 1024 * 1024)));
  const inbox = (await store.getMailbox((await store.getAccount("alice"))!.id, "INBOX"))!;
  await store.append(inbox.id, { raw, flags: [] });
  const pieces = [raw.subarray(0, 1024 * 1024)];
  let opened = 0;
  (store as MailStore).openRaw = () => {
    opened++;
    return Promise.resolve({
      size: raw.length,
      nulFree: true,
      next: () => {
        const piece = pieces.shift();
        return piece ? Promise.resolve(piece) : Promise.reject(new Error("disk went away"));
      },
    });
  };
  await c.cmd("s SELECT INBOX");
  const parts: Uint8Array[] = [];
  c.session.onOutput = (bytes) => {
    parts.push(bytes.slice());
  };
  await c.session.receive(new TextEncoder().encode("f FETCH 1 (UID BODY.PEEK[])\r\n"));
  const text = new TextDecoder().decode(concatBytes(parts));
  assert.equal(opened, 1);
  assert.ok(text.startsWith(`* 1 FETCH (UID 1 BODY[] {${raw.length}}\r\n`));
  const tagged = "f NO [SERVERBUG] Message read failed\r\n";
  assert.ok(text.endsWith(tagged), text.slice(-80));
  // The header, the one piece read, the tagged NO: nothing else.
  assert.equal(text.length, text.indexOf("\r\n") + 2 + 1024 * 1024 + tagged.length);
  assert.equal(c.closed, true);
});

Deno.test("pipelined commands in one read yield to the event loop between them, and answer the same", async () => {
  const store = await newStore();
  const transcripts: string[] = [];
  for (const sliceMs of [0, 60_000]) {
    const c = new TestClient(store, { sliceMs });
    await c.login();
    c.clear();
    const burst = Array.from({ length: 300 }, (_, i) => `n${i} NOOP\r\n`).join("");
    // A timer set before the read runs before its last answer only if the session yields
    // between the commands (the memory store answers in microtasks).
    let timerRan = false;
    setTimeout(() => timerRan = true, 0);
    await c.session.receive(new TextEncoder().encode(burst));
    assert.equal(timerRan, sliceMs === 0, `slice ${sliceMs}`);
    transcripts.push(c.take());
    await new Promise((r) => setTimeout(r, 0));
  }
  assert.equal(transcripts[0]!.split("\r\n").length, 301);
  assert.ok(transcripts[0]!.endsWith("n299 OK NOOP completed\r\n"));
  assert.equal(transcripts[0], transcripts[1]);
});
