/** PREVIEW (RFC 8970) over an in-memory session. */
import assert from "node:assert/strict";
import { append, message, newStore, TestClient, wrapStore } from "./_harness.ts";

Deno.test("PREVIEW is advertised (RFC 8970, Section 2)", async () => {
  const c = new TestClient(await newStore());
  assert.match((await c.cmd("C CAPABILITY"))[0]!, / PREVIEW( |$)/);
});

Deno.test("FETCH PREVIEW and PREVIEW (LAZY) send the stored preview (RFC 8970, Sections 3 and 3.1)", async () => {
  const c = new TestClient(await newStore());
  await c.login();
  await append(c, "INBOX", message("One", 'Hello "Bob",\r\n\r\n  see   you.\r\n> old text'));
  await append(c, "INBOX", message("Two", "Grüße"));
  await append(c, "INBOX", "Subject: empty\r\n\r\n");
  await c.cmd("S SELECT INBOX");
  // Octets outside quoted-string's range go as a literal of UTF-8 (RFC 8970, Section 3).
  assert.deepEqual(await c.cmd("F FETCH 1:3 (PREVIEW)"), [
    "* 1 FETCH (PREVIEW {21}",
    'Hello "Bob", see you.)',
    "* 2 FETCH (PREVIEW {7}",
    "Grüße)",
    '* 3 FETCH (PREVIEW "")',
    "F OK FETCH completed",
  ]);
  assert.deepEqual(await c.cmd("L UID FETCH 2 (PREVIEW (LAZY) FLAGS)"), [
    "* 2 FETCH (UID 2 PREVIEW {7}",
    "Grüße FLAGS (\\Recent))",
    "L OK UID FETCH completed",
  ]);
  assert.match((await c.cmd("B FETCH 1 (PREVIEW (EAGER))")).at(-1)!, /^B BAD /);
  assert.match((await c.cmd("B2 FETCH 1 (PREVIEW ())")).at(-1)!, /^B2 BAD /);
});

Deno.test("a summary written before PREVIEW: LAZY answers NIL, plain PREVIEW computes it (RFC 8970, 3.1)", async () => {
  const store = await newStore();
  const c = new TestClient(
    wrapStore(store, {
      getSummary: async (id, uid) => {
        const s = await store.getSummary(id, uid);
        if (s === null) return null;
        const { preview: _, ...rest } = JSON.parse(s);
        return JSON.stringify(rest);
      },
    }),
  );
  await c.login();
  await append(c, "INBOX", message("Old", "Stored long ago."));
  await c.cmd("S SELECT INBOX");
  assert.deepEqual(await c.cmd("L FETCH 1 (PREVIEW (LAZY))"), [
    "* 1 FETCH (PREVIEW NIL)",
    "L OK FETCH completed",
  ]);
  assert.deepEqual(await c.cmd("F FETCH 1 (PREVIEW)"), [
    '* 1 FETCH (PREVIEW "Stored long ago.")',
    "F OK FETCH completed",
  ]);
});
