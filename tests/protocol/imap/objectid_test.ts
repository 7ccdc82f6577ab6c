/** OBJECTID (RFC 8474): MAILBOXID, EMAILID and THREADID over an in-memory session. */
import assert from "node:assert/strict";
import { append, message, newStore, TestClient } from "./_harness.ts";

const ID = "[A-Za-z][A-Za-z0-9_-]{0,254}";

async function client(): Promise<TestClient> {
  const c = new TestClient(await newStore());
  await c.login();
  return c;
}

function one(lines: readonly string[], re: RegExp): string {
  const hit = lines.map((l) => re.exec(l)).find((m) => m !== null);
  assert.ok(hit, `${re} in ${lines.join(" | ")}`);
  return hit[1]!;
}

Deno.test("OBJECTID is advertised (RFC 8474, Section 3)", async () => {
  const c = await client();
  assert.match((await c.cmd("C CAPABILITY"))[0]!, / OBJECTID( |$)/);
});

Deno.test("CREATE, SELECT, EXAMINE and STATUS name one MAILBOXID, kept across RENAME (RFC 8474, 4.1-4.3)", async () => {
  const c = await client();
  const created = await c.cmd("C CREATE Projects");
  const id = one(created, new RegExp(`^C OK \\[MAILBOXID \\((${ID})\\)\\] CREATE completed$`));
  const selected = await c.cmd("S SELECT Projects");
  assert.ok(selected.includes(`* OK [MAILBOXID (${id})] Ok`), selected.join("\n"));
  assert.deepEqual((await c.cmd("X EXAMINE Projects")).filter((l) => l.includes("MAILBOXID")), [
    `* OK [MAILBOXID (${id})] Ok`,
  ]);
  await c.cmd("U UNSELECT");
  assert.deepEqual(await c.cmd("R RENAME Projects Work"), ["R OK RENAME completed"]);
  assert.deepEqual(await c.cmd("T STATUS Work (MESSAGES MAILBOXID)"), [
    `* STATUS Work (MESSAGES 0 MAILBOXID (${id}))`,
    "T OK STATUS completed",
  ]);
  const inbox = one(await c.cmd("I STATUS INBOX (MAILBOXID)"), /MAILBOXID \(([^)\s]+)\)/);
  assert.notEqual(inbox, id);
  // Deleted and created again: a new mailbox, so a new id (RFC 8474, Section 4.1).
  await c.cmd("D DELETE Work");
  const again = one(await c.cmd("C2 CREATE Work"), /MAILBOXID \(([^)\s]+)\)/);
  assert.notEqual(again, id);
});

Deno.test("FETCH EMAILID and THREADID: copies keep both, replies share the thread (RFC 8474, 5.1, 5.2, 7)", async () => {
  const c = await client();
  await append(c, "INBOX", message("Root"));
  await append(c, "INBOX", message("Reply", "Hi.", "References: <Root@x>\r\n"));
  await append(
    c,
    "INBOX",
    message("Reply2", "Hi.", "In-Reply-To: <Reply@x>\r\nReferences: <Root@x> <Reply@x>\r\n"),
  );
  await append(c, "INBOX", message("Other"));
  await c.cmd("S SELECT INBOX");
  const lines = await c.cmd("F FETCH 1:4 (EMAILID THREADID)");
  assert.equal(lines.at(-1), "F OK FETCH completed");
  const re = new RegExp(`^\\* (\\d) FETCH \\(EMAILID \\((${ID})\\) THREADID \\((${ID})\\)\\)$`);
  const rows = lines.slice(0, 4).map((l) => {
    const m = re.exec(l);
    assert.ok(m, l);
    return { email: m[2]!, thread: m[3]! };
  });
  assert.equal(new Set(rows.map((r) => r.email)).size, 4);
  assert.equal(rows[0]!.thread, rows[1]!.thread);
  assert.equal(rows[0]!.thread, rows[2]!.thread);
  assert.notEqual(rows[3]!.thread, rows[0]!.thread);
  // COPY and MOVE keep EMAILID and THREADID.
  await c.cmd("C COPY 1 Archive");
  await c.cmd("M MOVE 4 Archive");
  await c.cmd("S2 SELECT Archive");
  const copied = await c.cmd("F2 UID FETCH 1:* (EMAILID THREADID)");
  assert.deepEqual(copied.slice(0, 2), [
    `* 1 FETCH (UID 1 EMAILID (${rows[0]!.email}) THREADID (${rows[0]!.thread}))`,
    `* 2 FETCH (UID 2 EMAILID (${rows[3]!.email}) THREADID (${rows[3]!.thread}))`,
  ]);
});

Deno.test("SEARCH EMAILID and THREADID find the message and its thread (RFC 8474, Section 6)", async () => {
  const c = await client();
  await append(c, "INBOX", message("Root"));
  await append(c, "INBOX", message("Other"));
  await append(c, "INBOX", message("Reply", "Hi.", "In-Reply-To: <Root@x>\r\n"));
  await c.cmd("S SELECT INBOX");
  const f = await c.cmd("F FETCH 1 (EMAILID THREADID)");
  const email = one(f, /EMAILID \(([^)\s]+)\)/);
  const thread = one(f, /THREADID \(([^)\s]+)\)/);
  assert.deepEqual(await c.cmd(`A SEARCH EMAILID ${email}`), [
    "* SEARCH 1",
    "A OK SEARCH completed",
  ]);
  assert.deepEqual(await c.cmd(`B UID SEARCH THREADID ${thread}`), [
    "* SEARCH 1 3",
    "B OK UID SEARCH completed",
  ]);
  assert.deepEqual(await c.cmd(`C SEARCH NOT THREADID ${thread}`), [
    "* SEARCH 2",
    "C OK SEARCH completed",
  ]);
  assert.deepEqual(await c.cmd("D SEARCH EMAILID Mnothere"), ["* SEARCH", "D OK SEARCH completed"]);
  assert.match((await c.cmd("E SEARCH EMAILID ab.cd")).at(-1)!, /^E BAD /);
  assert.match((await c.cmd(`G SEARCH EMAILID ${"a".repeat(256)}`)).at(-1)!, /^G BAD /);
});
