import assert from "node:assert/strict";
import { newStore, TestClient } from "./_harness.ts";

const enc = new TextEncoder();

Deno.test("UTF8=ACCEPT is advertised; after ENABLE, APPEND takes UTF8 (literal8) (RFC 6855)", async () => {
  const c = new TestClient(await newStore());
  await c.login();
  assert.match((await c.cmd("C CAPABILITY"))[0]!, / UTF8=ACCEPT /);
  const msg = "From: Jürgen <j@example.de>\r\nSubject: Grüße aus Köln\r\n\r\nHallo\r\n";
  const n = enc.encode(msg).length;
  const before = await c.cmd(`A0 APPEND INBOX UTF8 (~{${n}+}\r\n${msg})`);
  assert.match(before.at(-1)!, /^A0 BAD/);
  assert.deepEqual(await c.cmd("E ENABLE UTF8=ACCEPT"), [
    "* ENABLED UTF8=ACCEPT",
    "E OK ENABLE completed",
  ]);
  const out = await c.cmd(`A1 APPEND INBOX (\\Seen) UTF8 (~{${n}+}\r\n${msg})`);
  assert.match(out.at(-1)!, /^A1 OK \[APPENDUID \d+ 1\]/);
  assert.match((await c.cmd(`A2 APPEND INBOX UTF8 ({${n}+}\r\n${msg})`)).at(-1)!, /^A2 BAD/);
  await c.cmd("S SELECT INBOX");
  const fetched = await c.raw("F FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\n");
  assert.ok(fetched.includes("Subject: Grüße aus Köln"), fetched);
  assert.deepEqual(await c.cmd(`Q SEARCH SUBJECT "grüße"`), [
    "* SEARCH 1",
    "Q OK SEARCH completed",
  ]);
});
