import assert from "node:assert/strict";
import { append, message, newStore, TestClient, wrapStore } from "./_harness.ts";

async function twoSessions(n: number) {
  const store = await newStore();
  const a = new TestClient(store);
  const b = new TestClient(store);
  await a.login();
  await b.login();
  for (let i = 1; i <= n; i++) await append(a, "INBOX", message(`M${i}`));
  await a.cmd("s SELECT INBOX");
  await b.cmd("s SELECT INBOX");
  return { store, a, b };
}

Deno.test("ImapSession reports another session's changes at NOOP", async () => {
  const { a, b } = await twoSessions(2);
  await append(b, "INBOX", message("M3"));
  await b.cmd("x STORE 1 +FLAGS (\\Flagged)");
  // a selected first, so messages 1 and 2 are \Recent there; b's APPEND claimed message 3,
  // so a's RECENT count does not change and is not sent again.
  assert.deepEqual(await a.cmd("n NOOP"), [
    "* 3 EXISTS",
    "* 1 FETCH (UID 1 FLAGS (\\Flagged \\Recent))",
    "n OK NOOP completed",
  ]);
  assert.deepEqual(await a.cmd("n2 NOOP"), ["n2 OK NOOP completed"]);
  await b.cmd("d STORE 2 +FLAGS.SILENT (\\Deleted)");
  await b.cmd("e EXPUNGE");
  assert.deepEqual(await a.cmd("n3 NOOP"), ["* 2 EXPUNGE", "* 1 RECENT", "n3 OK NOOP completed"]);
  assert.deepEqual(await a.cmd("f FETCH 1:* UID"), [
    "* 1 FETCH (UID 1)",
    "* 2 FETCH (UID 3)",
    "f OK FETCH completed",
  ]);
});

Deno.test("ImapSession never sends EXPUNGE during FETCH, STORE or SEARCH and keeps sequence numbers", async () => {
  const { a, b } = await twoSessions(4);
  await b.cmd("d STORE 2 +FLAGS.SILENT (\\Deleted)");
  await b.cmd("e EXPUNGE");
  await append(b, "INBOX", message("M5"));
  // a still sees 4 messages: seq 3 is still UID 3, and message 2 is gone but keeps its number.
  const f = await a.cmd("f FETCH 1:4 (UID)");
  assert.deepEqual(f, [
    "* 1 FETCH (UID 1)",
    "* 3 FETCH (UID 3)",
    "* 4 FETCH (UID 4)",
    // b's own APPEND claimed message 5's \Recent; a keeps messages 1 to 4 (no new RECENT).
    "* 5 EXISTS",
    "f OK [EXPUNGEISSUED] FETCH completed; some messages were expunged",
  ]);
  assert.ok(!f.some((l) => l.includes("EXPUNGE ") || / EXPUNGE$/.test(l)), f.join("\n"));
  const s = await a.cmd("s STORE 3 +FLAGS (\\Seen)");
  assert.ok(s.includes("* 3 FETCH (FLAGS (\\Seen \\Recent))"), s.join("\n"));
  assert.ok(!s.some((l) => / EXPUNGE$/.test(l)), s.join("\n"));
  const q = await a.cmd("q SEARCH ALL");
  assert.ok(!q.some((l) => / EXPUNGE$/.test(l)), q.join("\n"));
  assert.ok(q.includes("* SEARCH 1 3 4 5"), q.join("\n"));
  // NOOP delivers the expunge; numbers then shift.
  assert.deepEqual(await a.cmd("n NOOP"), ["* 2 EXPUNGE", "* 3 RECENT", "n OK NOOP completed"]);
  assert.deepEqual(await a.cmd("g FETCH 2 UID"), ["* 2 FETCH (UID 3)", "g OK FETCH completed"]);
});

Deno.test("ImapSession keeps each session's own sequence numbers consistent", async () => {
  const { a, b } = await twoSessions(3);
  await a.cmd("x STORE 1 +FLAGS.SILENT (\\Deleted)");
  await b.cmd("y STORE 3 +FLAGS.SILENT (\\Deleted)");
  // a learns of b's \Deleted flag and both expunges; numbers shift as each is reported.
  assert.deepEqual(await a.cmd("e EXPUNGE"), [
    "* 1 EXPUNGE",
    "* 2 EXPUNGE",
    "* 1 RECENT",
    "e OK EXPUNGE completed",
  ]);
  // b has not been told yet: its message 2 is still UID 2.
  assert.deepEqual(await b.cmd("f FETCH 2 UID"), ["* 2 FETCH (UID 2)", "f OK FETCH completed"]);
  assert.deepEqual(await b.cmd("n NOOP"), ["* 1 EXPUNGE", "* 2 EXPUNGE", "n OK NOOP completed"]);
  assert.deepEqual(await b.cmd("g FETCH 1 UID"), ["* 1 FETCH (UID 2)", "g OK FETCH completed"]);
});

Deno.test("ImapSession pushes changes during IDLE and stops at DONE", async () => {
  const { a, b } = await twoSessions(2);
  assert.deepEqual(await a.cmd("i IDLE"), ["+ idling"]);
  assert.equal(a.session.idle, true);
  await append(b, "INBOX", message("M3"));
  await a.session.receive(new Uint8Array(0));
  // b, which appended it with the mailbox selected, owns message 3's \Recent.
  assert.equal(a.take(), "* 3 EXISTS\r\n");
  await b.cmd("x STORE 1 +FLAGS.SILENT (\\Deleted)");
  await a.session.receive(new Uint8Array(0));
  assert.equal(a.take(), "* 1 FETCH (UID 1 FLAGS (\\Deleted \\Recent))\r\n");
  await b.cmd("e EXPUNGE");
  await a.session.receive(new Uint8Array(0));
  assert.equal(a.take(), "* 1 EXPUNGE\r\n* 1 RECENT\r\n");
  assert.deepEqual(await a.cmd("DONE"), ["i OK IDLE terminated"]);
  assert.equal(a.session.idle, false);
  assert.deepEqual(await a.cmd("f FETCH 1:* UID"), [
    "* 1 FETCH (UID 2)",
    "* 2 FETCH (UID 3)",
    "f OK FETCH completed",
  ]);
  assert.deepEqual(await a.cmd("j IDLE"), ["+ idling"]);
  assert.deepEqual(await a.cmd("NOPE"), ["j BAD Expected DONE"]);
});

Deno.test("ImapSession ends the session when the selected mailbox is deleted elsewhere", async () => {
  const store = await newStore();
  const a = new TestClient(store);
  const b = new TestClient(store);
  await a.login();
  await b.login();
  await a.cmd("c CREATE Temp");
  await a.cmd("s SELECT Temp");
  await b.cmd("d DELETE Temp");
  assert.deepEqual(await a.cmd("n NOOP"), [
    "* BYE Selected mailbox was deleted",
    "n OK NOOP completed",
  ]);
  assert.equal(a.closed, true);
});

Deno.test("ImapSession server-initiated BYE closes the connection", async () => {
  const { a } = await twoSessions(0);
  await a.session.bye("Server shutting down");
  assert.equal(a.take(), "* BYE Server shutting down\r\n");
  assert.equal(a.closed, true);
});

Deno.test("ImapSession keepalive speaks only during IDLE", async () => {
  const { a } = await twoSessions(1);
  await a.session.keepalive();
  assert.equal(a.take(), "");
  await a.cmd("i IDLE");
  await a.session.keepalive();
  assert.equal(a.take(), "* OK Still here\r\n");
  assert.deepEqual(await a.cmd("DONE"), ["i OK IDLE terminated"]);
});

Deno.test("ImapSession implements CONDSTORE: HIGHESTMODSEQ, MODSEQ, CHANGEDSINCE, UNCHANGEDSINCE", async () => {
  const { store, a, b } = await twoSessions(3);
  const acct = (await store.getAccount("alice"))!;
  const sel = await a.cmd("s SELECT INBOX (CONDSTORE)");
  const highest = Number(/HIGHESTMODSEQ (\d+)/.exec(sel.join("\n"))?.[1]);
  assert.ok(highest > 0, sel.join("\n"));
  const metas = await store.listMessages((await store.getMailbox(acct.id, "INBOX"))!.id);
  assert.deepEqual(await a.cmd("f FETCH 1 (UID MODSEQ)"), [
    `* 1 FETCH (UID 1 MODSEQ (${metas[0]!.modseq}))`,
    "f OK FETCH completed",
  ]);
  await b.cmd("x STORE 2 +FLAGS (\\Flagged)");
  const changed = await a.cmd(`c UID FETCH 1:* (FLAGS) (CHANGEDSINCE ${highest})`);
  assert.equal(changed.length, 2, changed.join("\n"));
  assert.match(changed[0]!, /^\* 2 FETCH \(UID 2 FLAGS \(\\Flagged\) MODSEQ \(\d+\)\)$/);
  // a already saw the new flags in its FETCH, so NOOP has nothing more to say.
  assert.deepEqual(await a.cmd("n NOOP"), ["n OK NOOP completed"]);
  const st = await a.cmd(`u UID STORE 1:3 (UNCHANGEDSINCE ${highest}) +FLAGS.SILENT (\\Seen)`);
  assert.equal(st.at(-1), "u OK [MODIFIED 2] Conditional UID STORE completed");
  assert.ok(st.some((l) => /^\* 1 FETCH \(UID 1 MODSEQ \(\d+\)\)$/.test(l)), st.join("\n"));
  const q = await a.cmd(`q SEARCH MODSEQ ${highest + 1}`);
  assert.match(q[0]!, /^\* SEARCH 1 2 3 \(MODSEQ \d+\)$/);
  const status = await a.cmd("t STATUS INBOX (HIGHESTMODSEQ)");
  assert.match(status[0]!, /^\* STATUS INBOX \(HIGHESTMODSEQ \d+\)$/);
  await b.cmd("y STORE 3 -FLAGS (\\Seen)");
  const n2 = await a.cmd("n2 NOOP");
  assert.match(n2[0]!, /^\* 3 FETCH \(UID 3 FLAGS \(\) MODSEQ \(\d+\)\)$/);
});

Deno.test("ImapSession implements QRESYNC: SELECT resync, VANISHED and UID FETCH VANISHED", async () => {
  const { store, a, b } = await twoSessions(4);
  const acct = (await store.getAccount("alice"))!;
  const inbox = (await store.getMailbox(acct.id, "INBOX"))!;
  assert.deepEqual(await a.cmd("s2 SELECT INBOX (QRESYNC (1 1))"), [
    "s2 BAD QRESYNC must be enabled first",
  ]);
  await a.cmd("u UNSELECT");
  assert.deepEqual(await a.cmd("e ENABLE QRESYNC"), ["* ENABLED QRESYNC", "e OK ENABLE completed"]);
  await a.cmd("s1 SELECT INBOX");
  const before = inbox.highestModseq;
  await b.cmd("x STORE 1,3 +FLAGS.SILENT (\\Deleted)");
  await b.cmd("y EXPUNGE");
  await b.cmd("z STORE 2 +FLAGS (\\Flagged)");
  // a is still selected from before: it gets one VANISHED instead of EXPUNGEs.
  const n = await a.cmd("n NOOP");
  assert.ok(n.includes("* VANISHED 1,3"), n.join("\n"));
  assert.ok(!n.some((l) => / EXPUNGE$/.test(l)), n.join("\n"));
  const sel = await a.cmd(`s SELECT INBOX (QRESYNC (${inbox.uidValidity} ${before} 1:4))`);
  assert.ok(sel.includes("* VANISHED (EARLIER) 1,3"), sel.join("\n"));
  // b's sequence number 2 was UID 4 after its own EXPUNGE.
  assert.ok(
    sel.some((l) => /^\* 2 FETCH \(UID 4 FLAGS \(\\Flagged\) MODSEQ \(\d+\)\)$/.test(l)),
    sel.join("\n"),
  );
  assert.match(sel.at(-1)!, /^s OK \[READ-WRITE\]/);
  const f = await a.cmd(`f UID FETCH 1:* (FLAGS) (CHANGEDSINCE ${before} VANISHED)`);
  assert.equal(f[0], "* VANISHED (EARLIER) 1,3");
  assert.match(f[1]!, /^\* 2 FETCH \(UID 4 FLAGS \(\\Flagged\) MODSEQ \(\d+\)\)$/);
  assert.deepEqual(await a.cmd("g FETCH 1 (FLAGS) (VANISHED)"), [
    "g BAD Unknown FETCH modifier VANISHED",
  ]);
});

Deno.test("ImapSession never reports a new message that was expunged while it was being read", async () => {
  const store = await newStore();
  let expungeDuringRead: (() => Promise<void>) | null = null;
  const a = new TestClient(wrapStore(store, {
    async getMessages(id, uids) {
      const metas = await store.getMessages(id, uids);
      const hook = expungeDuringRead;
      expungeDuringRead = null;
      if (hook !== null) await hook();
      return metas;
    },
  }));
  const b = new TestClient(store);
  await a.login();
  await b.login();
  await append(b, "INBOX", message("M1"));
  await a.cmd("s SELECT INBOX");
  await append(b, "INBOX", message("M2"));
  const inbox = (await store.getMailbox((await store.getAccount("alice"))!.id, "INBOX"))!;
  expungeDuringRead = async () => {
    await store.storeFlags(inbox.id, [2], "add", ["\\Deleted"]);
    await store.expunge(inbox.id);
  };
  // The read of message 2 returns it, but it is gone by the time the read completes.
  assert.deepEqual(await a.cmd("n NOOP"), ["n OK NOOP completed"]);
  assert.deepEqual(await a.cmd("f FETCH 1:* UID"), ["* 1 FETCH (UID 1)", "f OK FETCH completed"]);
});

Deno.test("ImapSession keeps an IDLE session whose store cannot be read, and reports later", async () => {
  const store = await newStore();
  let down = false;
  const flaky = wrapStore(store, {
    getMessages(id, uids) {
      if (down) return Promise.reject(new Error("connection to the database lost"));
      return store.getMessages(id, uids);
    },
  });
  const a = new TestClient(flaky);
  const b = new TestClient(store);
  await a.login();
  await b.login();
  await append(b, "INBOX", message("M1"));
  await a.cmd("s SELECT INBOX");
  assert.deepEqual(await a.cmd("i IDLE"), ["+ idling"]);
  down = true;
  await append(b, "INBOX", message("M2"));
  await a.session.receive(new Uint8Array(0));
  assert.equal(a.take(), "");
  assert.equal(a.closed, false);
  down = false;
  // The update is tried again after half a second.
  let seen = "";
  for (let i = 0; i < 40 && !seen.includes("* 2 EXISTS"); i++) {
    await new Promise((r) => setTimeout(r, 50));
    seen += a.take();
  }
  assert.equal(seen, "* 2 EXISTS\r\n* 1 RECENT\r\n");
  assert.deepEqual(await a.cmd("DONE"), ["i OK IDLE terminated"]);
  assert.equal(a.closed, false);
  assert.deepEqual(a.errors, []);
});

Deno.test("ImapSession waits at NOOP for changes still on their way from another Worker", async () => {
  const { store, a, b } = await twoSessions(3);
  // The store's settle() stands for a relay with an expunge from another Worker in flight:
  // the change lands only when the session asks the store to settle.
  let inFlight = true;
  const settling = store as typeof store & { settle?: () => Promise<void> };
  settling.settle = async () => {
    if (!inFlight) return;
    inFlight = false;
    await b.cmd("d STORE 2 +FLAGS.SILENT (\\Deleted)");
    await b.cmd("e EXPUNGE");
  };
  // FETCH may not report expunges, so it does not wait; NOOP does and reports the expunge.
  assert.deepEqual(await a.cmd("f FETCH 2 UID"), ["* 2 FETCH (UID 2)", "f OK FETCH completed"]);
  assert.equal(inFlight, true);
  assert.deepEqual(await a.cmd("n NOOP"), ["* 2 EXPUNGE", "* 2 RECENT", "n OK NOOP completed"]);
  assert.equal(inFlight, false);
  assert.deepEqual(await a.cmd("f2 FETCH 1:* UID"), [
    "* 1 FETCH (UID 1)",
    "* 2 FETCH (UID 3)",
    "f2 OK FETCH completed",
  ]);
});

Deno.test("SELECT (QRESYNC) never reports VANISHED (EARLIER) for a message in its EXISTS count", async () => {
  const store = await newStore();
  let expungeBeforeChanges: (() => Promise<void>) | null = null;
  const a = new TestClient(wrapStore(store, {
    async changesSince(id, modseq) {
      const hook = expungeBeforeChanges;
      expungeBeforeChanges = null;
      if (hook !== null) await hook();
      return await store.changesSince(id, modseq);
    },
  }));
  const b = new TestClient(store);
  await a.login();
  await b.login();
  for (let i = 1; i <= 3; i++) await append(b, "INBOX", message(`M${i}`));
  const inbox = (await store.getMailbox((await store.getAccount("alice"))!.id, "INBOX"))!;
  await a.cmd("e ENABLE QRESYNC");
  // Message 2 is expunged after SELECT listed the mailbox, before it read the changes: it is
  // in the EXISTS count, so it goes out later as VANISHED, not as VANISHED (EARLIER).
  expungeBeforeChanges = async () => {
    await store.storeFlags(inbox.id, [2], "add", ["\\Deleted"]);
    await store.expunge(inbox.id);
  };
  const sel = await a.cmd(`s SELECT INBOX (QRESYNC (${inbox.uidValidity} 1 1:3))`);
  assert.ok(sel.includes("* 3 EXISTS"), sel.join("\n"));
  assert.ok(!sel.some((l) => l.startsWith("* VANISHED")), sel.join("\n"));
  assert.ok(sel.some((l) => /^\* 3 FETCH \(UID 3 /.test(l)), sel.join("\n"));
  const n = await a.cmd("n NOOP");
  assert.deepEqual(n.slice(0, -1), ["* VANISHED 2"]);
  assert.match(n.at(-1)!, /^n OK /);
  assert.deepEqual(await a.cmd("f FETCH 1:* UID"), [
    "* 1 FETCH (UID 1)",
    "* 2 FETCH (UID 3)",
    "f OK FETCH completed",
  ]);
});

Deno.test("UID FETCH (CHANGEDSINCE VANISHED) never names a message in the EXISTS count", async () => {
  const { store, b } = await twoSessions(3);
  const a = new TestClient(store);
  await a.login();
  await a.cmd("e ENABLE QRESYNC");
  await a.cmd("s SELECT INBOX");
  await b.cmd("d STORE 1 +FLAGS.SILENT (\\Deleted)");
  await b.cmd("x EXPUNGE");
  // UID 1's expunge waits in a's queue (no EXPUNGE during FETCH); VANISHED (EARLIER), which
  // does not renumber, must not name it while it is in a's EXISTS count.
  const f = await a.cmd("f UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)");
  assert.ok(!f.some((l) => l.startsWith("* VANISHED (EARLIER)")), f.join("\n"));
  assert.match(f.at(-1)!, /^f OK /);
  const n = await a.cmd("n NOOP");
  assert.ok([...f, ...n].includes("* VANISHED 1"), [...f, ...n].join("\n"));
  assert.deepEqual(await a.cmd("g FETCH 1:* UID"), [
    "* 1 FETCH (UID 2)",
    "* 2 FETCH (UID 3)",
    "g OK FETCH completed",
  ]);
});
