import assert from "node:assert/strict";
import { SearchIndex, writeSearchIndex } from "../../../protocol/imap/search_index.ts";
import { mimeSupport } from "../../../protocol/imap/mime_support.ts";
import { parseMessage, searchText } from "../../../protocol/imap/mime/mod.ts";
import { openSqliteMailStore } from "../../../mailstore/sqlite/mod.ts";
import type { MailStore } from "../../../mailstore/mail_store.ts";
import { append, message, newStore, TestClient, wrapStore } from "./_harness.ts";

Deno.test("writeSearchIndex() round-trips sent day, repeated headers and body", () => {
  const text = writeSearchIndex({
    sentDay: "2023-03-07",
    headers: [["subject", ["hello world"]], ["received", ["a", "b"]], ["x-empty", [""]]],
    body: "line one\nline\x00two\x1ethree\x1f",
  });
  const index = SearchIndex.read(text);
  assert.ok(index !== null);
  assert.equal(index.sentDay, "2023-03-07");
  assert.deepEqual(index.header("subject"), ["hello world"]);
  assert.deepEqual(index.header("received"), ["a", "b"]);
  assert.deepEqual(index.header("x-empty"), [""]);
  assert.deepEqual(index.header("to"), []);
  assert.equal(index.body, "line one\nline two\x1ethree\x1f");
  assert.equal(index.mayContain("world"), true);
  assert.equal(index.mayContain("three"), true);
  assert.equal(index.mayContain("needle"), false);
});

Deno.test("writeSearchIndex() turns separators inside header values into spaces", () => {
  const text = writeSearchIndex({
    sentDay: null,
    headers: [["sub\x1fject", ["a\x00b\x1ec\x1fd"]]],
    body: "",
  });
  const index = SearchIndex.read(text);
  assert.ok(index !== null);
  assert.equal(index.sentDay, null);
  assert.deepEqual(index.header("sub ject"), ["a b c d"]);
  assert.equal(index.body, "");
});

Deno.test("SearchIndex.read() refuses text that is not a search index", () => {
  for (const bad of ["", "1", "2\x00\x00\x01", "1\x00no-soh", '{"version":2}', "1\x00\x01x"]) {
    assert.equal(SearchIndex.read(bad), null, JSON.stringify(bad));
  }
});

Deno.test("mimeSupport.searchIndex() holds the decoded subject, body and sent day", () => {
  const raw = new TextEncoder().encode(
    message("=?UTF-8?Q?Gr=C3=BC=C3=9Fe?= Needle", "Body   with\r\n  NEEDLE."),
  );
  const summary = mimeSupport.summarize!(raw);
  // A summary holds no search text (the store keeps it once, apart): it takes the octets,
  // or a version 2 summary written before that.
  assert.equal(mimeSupport.searchIndex!({ raw: null, summary }), null);
  const legacy = legacySummary(raw);
  for (const m of [{ raw, summary }, { raw, summary: null }, { raw: null, summary: legacy }]) {
    const text = mimeSupport.searchIndex!(m);
    assert.ok(text !== null);
    const index = SearchIndex.read(text);
    assert.ok(index !== null);
    assert.deepEqual(index.header("subject"), ["grüße needle"]);
    assert.ok(index.body.includes("body with needle."), index.body);
    assert.equal(index.sentDay, "2023-03-07");
  }
});

/** A version 2 summary, as stored before version 3 moved the search text out of it. */
function legacySummary(raw: Uint8Array): string {
  const text = searchText(raw, parseMessage(raw));
  return JSON.stringify({
    ...JSON.parse(mimeSupport.summarize!(raw)),
    version: 2,
    headers: Object.fromEntries(text.headers),
    text: text.body,
  });
}

async function sqliteStore(): Promise<MailStore> {
  const store = await openSqliteMailStore(":memory:");
  await store.createAccount("alice", null);
  return store;
}

/** A store that counts the calls SEARCH makes. */
function counting(store: MailStore, counts: Record<string, number>): MailStore {
  const count = <A extends unknown[], R>(name: string, f: (...a: A) => R) => (...a: A): R => {
    counts[name] = (counts[name] ?? 0) + 1;
    return f(...a);
  };
  return wrapStore(store, {
    getSummary: count("getSummary", store.getSummary.bind(store)),
    getRaw: count("getRaw", store.getRaw.bind(store)),
    getSearchTexts: count("getSearchTexts", store.getSearchTexts.bind(store)),
  });
}

for (const kind of ["memory", "sqlite"] as const) {
  Deno.test(`SEARCH reads stored search text in batches, never a summary or the octets (${kind})`, async () => {
    const base = kind === "memory" ? await newStore() : await sqliteStore();
    const counts: Record<string, number> = {};
    const c = new TestClient(counting(base, counts));
    await c.login();
    const n = 2100;
    const inbox = (await base.getMailbox((await base.getAccount("alice"))!.id, "INBOX"))!;
    const mime = mimeSupport;
    for (let i = 1; i <= n; i++) {
      const raw = new TextEncoder().encode(
        message(i % 700 === 0 ? `find the Needle ${i}` : `plain ${i}`, i === 5 ? "a needle" : "x"),
      );
      const summary = mime.summarize!(raw);
      const searchText = mime.searchIndex!({ raw, summary })!;
      await base.append(inbox.id, { raw, summary, searchText, flags: i % 2 ? ["\\Seen"] : [] });
    }
    await c.cmd("s SELECT INBOX");
    assert.deepEqual(await c.cmd('a UID SEARCH SUBJECT "needle"'), [
      "* SEARCH 700 1400 2100",
      "a OK UID SEARCH completed",
    ]);
    assert.deepEqual(await c.cmd('b SEARCH NOT BODY "NEEDLE" UID 1:6'), [
      "* SEARCH 1 2 3 4 6",
      "b OK SEARCH completed",
    ]);
    assert.deepEqual(await c.cmd('d SEARCH SENTON 7-Mar-2023 OR SUBJECT "1400" UID 5'), [
      "* SEARCH 5 1400",
      "d OK SEARCH completed",
    ]);
    assert.deepEqual(await c.cmd('e UID SEARCH SUBJECT "find" NOT SUBJECT "1400" BODY x'), [
      "* SEARCH 700 2100",
      "e OK UID SEARCH completed",
    ]);
    assert.deepEqual(counts, { getSearchTexts: 8 });
    assert.equal((await c.cmd("u SEARCH UNSEEN"))[0]!.split(" ").length - 2, n / 2);
    assert.deepEqual(counts, { getSearchTexts: 8 }, "flag keys read no text");
    await base.close();
  });
}

Deno.test("SEARCH falls back to the summary of messages stored without search text", async () => {
  const base = await newStore();
  const counts: Record<string, number> = {};
  const c = new TestClient(counting(base, counts));
  await c.login();
  await append(c, "INBOX", message("first needle"));
  const inbox = (await base.getMailbox((await base.getAccount("alice"))!.id, "INBOX"))!;
  const raw = new TextEncoder().encode(message("old needle"));
  await base.append(inbox.id, { raw, summary: legacySummary(raw) });
  await base.append(inbox.id, { raw: new TextEncoder().encode(message("bare needle")) });
  await c.cmd("s SELECT INBOX");
  assert.deepEqual(await c.cmd('a SEARCH SUBJECT "needle"'), [
    "* SEARCH 1 2 3",
    "a OK SEARCH completed",
  ]);
  assert.deepEqual(counts, { getSearchTexts: 1, getSummary: 2, getRaw: 1 });
});

Deno.test("a SEARCH needle folds exactly as the stored text does (NFC, case, whitespace)", async () => {
  const c = new TestClient(await newStore());
  await c.login();
  await append(
    c,
    "INBOX",
    message("=?UTF-8?Q?Gr=C3=BC=C3=9Fe?= aus K=C3=B6ln", "Body   with\r\n  NEEDLE."),
  );
  assert.ok((await c.cmd("s SELECT INBOX")).at(-1)!.includes("OK"));
  // Upper case, runs of spaces and NFD "u" + combining diaeresis all match the stored "grüße aus".
  const nfd = "GRU\u0308\u00dfE   AUS".normalize("NFD");
  const literal = new TextEncoder().encode(nfd).length;
  for (
    const [search, expect] of [
      [`SEARCH CHARSET UTF-8 SUBJECT {${literal}+}\r\n${nfd}`, "* SEARCH 1"],
      ['SEARCH BODY "with NEEDLE."', "* SEARCH 1"],
      ['SEARCH BODY "with  needle"', "* SEARCH 1"],
      ['SEARCH BODY "withneedle"', "* SEARCH"],
    ]
  ) {
    assert.equal((await c.cmd(`q ${search}`))[0], expect, search);
  }
});
