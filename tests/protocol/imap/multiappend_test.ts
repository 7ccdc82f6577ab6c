import assert from "node:assert/strict";
import type { QuotaSource } from "../../../protocol/imap/quota.ts";
import { message, newStore, TestClient, wrapStore } from "./_harness.ts";

const enc = new TextEncoder();

/** `{n+}\r\n<msg>` with a non-synchronizing literal. */
function lit(msg: string): string {
  return `{${enc.encode(msg).length}+}\r\n${msg}`;
}

Deno.test("MULTIAPPEND stores every message and answers one APPENDUID range (RFC 3502)", async () => {
  const c = new TestClient(await newStore());
  await c.login();
  assert.match((await c.cmd("C CAPABILITY"))[0]!, / MULTIAPPEND /);
  const out = await c.cmd(
    `A1 APPEND Sent (\\Seen) ${lit(message("One"))} "05-Mar-2024 10:00:00 +0000" ${
      lit(message("Two"))
    } (\\Flagged \\Draft) "06-Mar-2024 11:00:00 +0100" ${lit(message("Three"))}`,
  );
  assert.match(out.at(-1)!, /^A1 OK \[APPENDUID \d+ 1:3\] APPEND completed$/);
  await c.cmd("S SELECT Sent");
  assert.deepEqual(await c.cmd("F FETCH 1:3 (FLAGS INTERNALDATE)"), [
    '* 1 FETCH (FLAGS (\\Seen \\Recent) INTERNALDATE "' + (await internalDate(c, 1)) + '")',
    '* 2 FETCH (FLAGS (\\Recent) INTERNALDATE "05-Mar-2024 10:00:00 +0000")',
    '* 3 FETCH (FLAGS (\\Flagged \\Draft \\Recent) INTERNALDATE "06-Mar-2024 10:00:00 +0000")',
    "F OK FETCH completed",
  ]);
});

async function internalDate(c: TestClient, seq: number): Promise<string> {
  const line = (await c.cmd(`I FETCH ${seq} (INTERNALDATE)`))[0]!;
  return /INTERNALDATE "([^"]+)"/.exec(line)![1]!;
}

Deno.test("MULTIAPPEND stores nothing when one message is refused", async () => {
  const c = new TestClient(await newStore());
  await c.login();
  const many = Array.from({ length: 2000 }, (_, i) => `k${i}`).join(" ");
  const out = await c.cmd(
    `A1 APPEND INBOX ${lit(message("One"))} (${many}) ${lit(message("Two"))}`,
  );
  assert.match(out.at(-1)!, /^A1 NO/);
  const empty = await c.cmd(`A2 APPEND INBOX ${lit(message("One"))} {0+}\r\n`);
  assert.match(empty.at(-1)!, /^A2 NO \[CANNOT\]/);
  const bad = await c.cmd(`A3 APPEND INBOX ${lit(message("One"))} junk`);
  assert.match(bad.at(-1)!, /^A3 BAD/);
  assert.deepEqual(await c.cmd("S STATUS INBOX (MESSAGES)"), [
    "* STATUS INBOX (MESSAGES 0)",
    "S OK STATUS completed",
  ]);
});

Deno.test("MULTIAPPEND over quota is refused as a whole with NO [OVERQUOTA]", async () => {
  const store = await newStore();
  const quota: QuotaSource = {
    limits: () => ({ storage: null, messages: 2 }),
    usage: () => Promise.resolve({ storage: 0, messages: 0 }),
  };
  const c = new TestClient(store, { quota });
  await c.login();
  const three = [1, 2, 3].map((n) => lit(message(`M${n}`))).join(" ");
  assert.match((await c.cmd(`A1 APPEND INBOX ${three}`)).at(-1)!, /^A1 NO \[OVERQUOTA\]/);
  const two = [1, 2].map((n) => lit(message(`M${n}`))).join(" ");
  assert.match((await c.cmd(`A2 APPEND INBOX ${two}`)).at(-1)!, /^A2 OK \[APPENDUID \d+ 1:2\]/);
});

Deno.test("MULTIAPPEND into the selected mailbox reports the new messages and \\Recent", async () => {
  const store = await newStore();
  const c = new TestClient(wrapStore(store, {}));
  await c.login();
  await c.cmd("S SELECT INBOX");
  const out = await c.cmd(`A APPEND INBOX ${lit(message("X"))} ${lit(message("Y"))}`);
  assert.deepEqual(out.slice(0, 2), ["* 2 EXISTS", "* 2 RECENT"]);
  assert.match(out.at(-1)!, /^A OK \[APPENDUID \d+ 1:2\]/);
});
