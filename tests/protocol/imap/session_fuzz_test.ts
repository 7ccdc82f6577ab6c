import assert from "node:assert/strict";
import { append, message, newStore, TestClient } from "./_harness.ts";
import { xorshift32 } from "../../_support/rng.ts";

const WORDS = [
  "FETCH",
  "UID",
  "STORE",
  "SEARCH",
  "SELECT",
  "LIST",
  "(",
  ")",
  "[",
  "]",
  "{3}",
  "{2+}",
  "~{1}",
  "*",
  "1:*",
  "$",
  "5:3",
  '"',
  "\\",
  "BODY[",
  "HEADER.FIELDS",
  "<0.5>",
  "FLAGS",
  "+FLAGS",
  "\\Seen",
  "OR",
  "NOT",
  "INBOX",
  "&Jjo-",
  "\r\n",
  " ",
  "x",
  "\0",
  "\xff",
  "IDLE",
  "DONE",
  "AUTHENTICATE",
  "PLAIN",
  "=",
  "APPEND",
  "COPY",
  "MOVE",
  "EXPUNGE",
  "((((((((((((((((((((",
];

Deno.test("ImapSession survives random command soup without exceptions or unbounded output", async () => {
  const store = await newStore();
  const next = xorshift32(0x5eed);
  for (let round = 0; round < 40; round++) {
    const c = new TestClient(store);
    await c.login();
    if (round % 2 === 0) {
      await append(c, "INBOX", message(`R${round}`));
      await c.cmd("s SELECT INBOX");
    }
    let input = "";
    for (let i = 0; i < 200; i++) {
      const w = WORDS[Math.floor(next() * WORDS.length)]!;
      input += next() < 0.1 ? String.fromCharCode(Math.floor(next() * 256)) : w;
      if (next() < 0.15) input += `\r\nt${i} `;
    }
    const bytes = new Uint8Array([...input].map((ch) => ch.charCodeAt(0) & 0xff));
    // Feed in random fragments.
    let off = 0;
    while (off < bytes.length && !c.closed) {
      const n = 1 + Math.floor(next() * 40);
      await c.raw(bytes.subarray(off, off + n));
      off += n;
    }
    assert.deepEqual(c.errors, [], `round ${round}`);
    const out = c.take();
    assert.ok(out.length < 1_000_000);
    if (!c.closed) {
      await c.raw("\r\n\r\nDONE\r\n*\r\n");
      c.take();
      const tail = await c.cmd("zz NOOP");
      assert.ok(tail.at(-1)?.startsWith("zz ") || c.closed, `round ${round}: ${tail.join("|")}`);
    }
    c.session.dispose();
  }
});

Deno.test("ImapSession survives random bytes before login and closes after too many errors", async () => {
  const store = await newStore();
  const next = xorshift32(42);
  for (let round = 0; round < 20; round++) {
    const c = new TestClient(store);
    c.take();
    const bytes = new Uint8Array(2000);
    for (let i = 0; i < bytes.length; i++) bytes[i] = next() < 0.05 ? 10 : Math.floor(next() * 256);
    await c.raw(bytes);
    assert.deepEqual(c.errors, []);
    assert.equal(c.session.stateKind, "notAuthenticated");
  }
});

Deno.test("ImapSession refuses searches with too many keys", async () => {
  const store = await newStore();
  const c = new TestClient(store);
  await c.login();
  await c.cmd("s SELECT INBOX");
  assert.deepEqual(await c.cmd(`q SEARCH ${"ALL ".repeat(1001)}ALL`), [
    "q BAD Search has too many keys",
  ]);
  assert.deepEqual(await c.cmd(`q2 SEARCH ${"SEEN ".repeat(100)}ALL`), [
    "* SEARCH",
    "q2 OK SEARCH completed",
  ]);
});
