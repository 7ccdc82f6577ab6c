import assert from "node:assert/strict";
import { newStore, TestClient } from "./_harness.ts";

/** A client whose session reports each command's start and result into `events`. */
async function observed(): Promise<{ c: TestClient; events: string[] }> {
  const c = new TestClient(await newStore());
  const events: string[] = [];
  c.session.onCommand = (name) => {
    events.push(`start ${name}`);
    return (result) => events.push(`end ${name} ${result}`);
  };
  c.take();
  return { c, events };
}

Deno.test("onCommand reports each command once with its result, in fragments too", async () => {
  const { c, events } = await observed();
  await c.raw("a1 NO");
  await c.raw("OP\r\na2 LOGIN alice wrong\r\n");
  await c.cmd("a3 LOGIN alice secret");
  await c.cmd("a4 SELECT Nowhere");
  await c.cmd("a5 UID FETCH 1:* FLAGS");
  await c.cmd("a6 FROB");
  await c.cmd("a7 FETCH");
  assert.deepEqual(events, [
    "start NOOP",
    "end NOOP ok",
    "start LOGIN",
    "end LOGIN no",
    "start LOGIN",
    "end LOGIN ok",
    "start SELECT",
    "end SELECT no",
    "start UID FETCH",
    "end UID FETCH bad",
    "start FROB",
    "end FROB bad",
    "start FETCH",
    "end FETCH bad",
  ]);
});

Deno.test("onCommand ends IDLE and AUTHENTICATE when their continuation completes", async () => {
  const { c, events } = await observed();
  await c.cmd("a1 AUTHENTICATE PLAIN");
  await c.cmd("AGFsaWNlAHNlY3JldA==");
  await c.cmd("a2 IDLE");
  assert.deepEqual(events.slice(-1), ["start IDLE"]);
  await c.cmd("DONE");
  assert.deepEqual(events, [
    "start AUTHENTICATE",
    "end AUTHENTICATE ok",
    "start IDLE",
    "end IDLE ok",
  ]);
});

Deno.test("selectedMailbox names the selected mailbox and nothing outside that state", async () => {
  const { c } = await observed();
  assert.equal(c.session.selectedMailbox, null);
  await c.login();
  await c.cmd("a1 SELECT INBOX");
  assert.equal(c.session.selectedMailbox, "INBOX");
  await c.cmd("a2 UNSELECT");
  assert.equal(c.session.selectedMailbox, null);
});
