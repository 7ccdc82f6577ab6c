/** SAVEDATE (RFC 8514) over an in-memory session. */
import assert from "node:assert/strict";
import { MemoryMailStore } from "../../../mailstore/memory/mod.ts";
import { append, message, newStore, TestClient, wrapStore } from "./_harness.ts";

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

function imapDay(ms: number): string {
  const d = new Date(ms);
  return `${d.getUTCDate()}-${MONTHS[d.getUTCMonth()]}-${d.getUTCFullYear()}`;
}

Deno.test("SAVEDATE is advertised (RFC 8514, Section 2)", async () => {
  const c = new TestClient(await newStore());
  await c.login();
  assert.match((await c.cmd("C CAPABILITY"))[0]!, / SAVEDATE( |$)/);
});

Deno.test("FETCH SAVEDATE is when the message was saved, not its INTERNALDATE (RFC 8514, Section 4.1)", async () => {
  const c = new TestClient(await newStore());
  await c.login();
  const before = Date.now();
  const size = new TextEncoder().encode(message("Old")).length;
  await c.cmd(`A APPEND INBOX "01-Jan-2001 00:00:00 +0000" {${size}+}\r\n${message("Old")}`);
  await c.cmd("S SELECT INBOX");
  const line = (await c.cmd("F FETCH 1 (INTERNALDATE SAVEDATE)"))[0]!;
  const m = /^\* 1 FETCH \(INTERNALDATE "01-Jan-2001 00:00:00 \+0000" SAVEDATE "([^"]+)"\)$/
    .exec(line);
  assert.ok(m, line);
  const saved = Date.parse(m[1]!.replace(/^(\d+)-(\w+)-(\d+) /, "$2 $1 $3 "));
  assert.ok(saved >= Math.floor(before / 1000) * 1000 - 1000 && saved <= Date.now() + 1000);
});

Deno.test("COPY and MOVE give the copy a new save date (RFC 8514, Section 3)", async () => {
  const store = await newStore();
  const c = new TestClient(store);
  await c.login();
  await append(c, "INBOX", message("One"));
  await append(c, "INBOX", message("Two"));
  const inbox = (await store.getMailbox(1, "INBOX"))!;
  const source = await store.getObjectInfo(inbox.id, [1, 2]);
  await new Promise((r) => setTimeout(r, 10));
  await c.cmd("S SELECT INBOX");
  await c.cmd("C COPY 1 Archive");
  await c.cmd("M MOVE 2 Archive");
  const archive = (await store.getMailbox(1, "Archive"))!;
  const copies = await store.getObjectInfo(archive.id, [1, 2]);
  assert.ok(copies.get(1)!.saveDate! > source.get(1)!.saveDate!);
  assert.ok(copies.get(2)!.saveDate! > source.get(2)!.saveDate!);
});

Deno.test("SEARCH SAVEDBEFORE, SAVEDON, SAVEDSINCE and SAVEDATESUPPORTED (RFC 8514, Section 4.2)", async () => {
  const c = new TestClient(await newStore());
  await c.login();
  const size = new TextEncoder().encode(message("Old")).length;
  await c.cmd(`A APPEND INBOX "01-Jan-2001 00:00:00 +0000" {${size}+}\r\n${message("Old")}`);
  await append(c, "INBOX", message("New"));
  await c.cmd("S SELECT INBOX");
  const today = imapDay(Date.now());
  const tomorrow = imapDay(Date.now() + 86_400_000);
  // Both were saved today, whatever their INTERNALDATE says.
  assert.deepEqual(await c.cmd(`A SEARCH SAVEDON ${today}`), [
    "* SEARCH 1 2",
    "A OK SEARCH completed",
  ]);
  assert.deepEqual(await c.cmd(`B SEARCH SAVEDSINCE ${today}`), [
    "* SEARCH 1 2",
    "B OK SEARCH completed",
  ]);
  assert.deepEqual(await c.cmd(`C SEARCH SAVEDBEFORE ${today}`), [
    "* SEARCH",
    "C OK SEARCH completed",
  ]);
  assert.deepEqual(await c.cmd(`D SEARCH SAVEDBEFORE ${tomorrow}`), [
    "* SEARCH 1 2",
    "D OK SEARCH completed",
  ]);
  assert.deepEqual(await c.cmd("E SEARCH BEFORE 2-Jan-2001"), [
    "* SEARCH 1",
    "E OK SEARCH completed",
  ]);
  assert.deepEqual(await c.cmd("F SEARCH SAVEDATESUPPORTED"), [
    "* SEARCH 1 2",
    "F OK SEARCH completed",
  ]);
  assert.match((await c.cmd("G SEARCH SAVEDON yesterday")).at(-1)!, /^G BAD /);
});

Deno.test("a message stored before save dates were kept: FETCH SAVEDATE NIL, SEARCH falls back to INTERNALDATE (RFC 8514, 4.1, 4.2)", async () => {
  const store = new MemoryMailStore();
  await store.createAccount("alice", null);
  const inbox = (await store.getMailbox(1, "INBOX"))!;
  await store.append(inbox.id, {
    raw: new TextEncoder().encode(message("Legacy")),
    internalDate: Date.UTC(2001, 0, 1),
  });
  const c = new TestClient(wrapStore(store, {
    getObjectInfo: async (id, uids) =>
      new Map(
        [...(await store.getObjectInfo(id, uids))].map(([u, o]) => [u, { ...o, saveDate: null }]),
      ),
  }));
  await c.login();
  await c.cmd("S SELECT INBOX");
  assert.match((await c.cmd("F FETCH 1 (SAVEDATE)"))[0]!, /^\* 1 FETCH \(SAVEDATE NIL\)$/);
  assert.deepEqual(await c.cmd("A SEARCH SAVEDON 1-Jan-2001"), [
    "* SEARCH 1",
    "A OK SEARCH completed",
  ]);
});
