import assert from "node:assert/strict";
import { baseSubject } from "../../../protocol/imap/base_subject.ts";
import {
  formatThreads,
  MAX_THREAD_DEPTH,
  type ThreadMessage,
  type ThreadNode,
  threadReferences,
} from "../../../protocol/imap/thread.ts";
import {
  keepResult,
  keptResult,
  MAX_KEPT_RESULTS,
  type MessageSortKeys,
  SortKeyCache,
} from "../../../protocol/imap/sort_cache.ts";
import { derivedData, mimeSupport } from "../../../protocol/imap/mime_support.ts";
import { sentTime, sortKeys } from "../../../protocol/imap/commands/_sort_data.ts";
import { parseDate } from "../../../protocol/imap/mime/mod.ts";
import { openSqliteMailStore } from "../../../mailstore/sqlite/mod.ts";
import { SearchIndex } from "../../../protocol/imap/search_index.ts";
import { append, newStore, TestClient } from "./_harness.ts";

Deno.test("baseSubject() strips leaders, blobs and trailers as RFC 5256, Section 2.1 says", () => {
  const cases: [string, string, boolean][] = [
    ["hello", "hello", false],
    ["re: hello", "hello", true],
    ["re:re: fwd: hello", "hello", true],
    ["re[2]: hello", "hello", true],
    ["fw: hello (fwd)", "hello", true],
    ["hello (fwd) (fwd)  ", "hello", true],
    ["[list] re: hello", "hello", true],
    ["[list] hello", "hello", false],
    ["[only a blob]", "[only a blob]", false],
    ["[fwd: re: hello]", "hello", true],
    ["  re :  hello  ", "hello", true],
    ["reply: hello", "reply: hello", false],
    ["", "", false],
  ];
  for (const [input, base, flag] of cases) {
    assert.deepEqual(baseSubject(input), { base, replyOrForward: flag }, input);
  }
});

function msg(
  n: number,
  subject: string,
  date: string,
  extra: { from?: string; to?: string; id?: string; refs?: string; irt?: string } = {},
): string {
  const h = [
    `From: ${extra.from ?? "Zed <zed@example.org>"}`,
    `To: ${extra.to ?? "bob@example.org"}`,
    `Subject: ${subject}`,
    `Date: ${date}`,
    `Message-ID: <${extra.id ?? `m${n}`}@x>`,
  ];
  if (extra.refs !== undefined) h.push(`References: ${extra.refs}`);
  if (extra.irt !== undefined) h.push(`In-Reply-To: ${extra.irt}`);
  return h.join("\r\n") + "\r\n\r\nBody " + "x".repeat(n * 100) + "\r\n";
}

async function mailbox(messages: readonly string[]): Promise<TestClient> {
  const c = new TestClient(await newStore());
  await c.login();
  for (const m of messages) assert.match(await append(c, "INBOX", m), /OK/);
  await c.cmd("S SELECT INBOX");
  return c;
}

const corpus = [
  msg(1, "Re: Lunch", "Mon, 2 Jan 2023 12:00:00 +0000", {
    from: "Carol <carol@x>",
    refs: "<m2@x>",
  }),
  msg(2, "Lunch", "Mon, 2 Jan 2023 10:00:00 +0000", { from: "alice@x", to: "Ann <zz@x>" }),
  msg(3, "[team] Budget", "Sun, 1 Jan 2023 09:00:00 +0100", { from: "Bob <bob@x>" }),
  msg(4, "Re: Budget", "Tue, 3 Jan 2023 09:00:00 +0000", { from: "dave@x", irt: "<m3@x>" }),
  msg(5, "Fwd: Lunch (fwd)", "Wed, 4 Jan 2023 09:00:00 +0000", { refs: "<m2@x> <m1@x>" }),
  msg(6, "Other", "Sun, 1 Jan 2023 07:00:00 +0000", { from: '"Ann" <erin@x>' }),
];

Deno.test("SORT orders by each RFC 5256 and RFC 5957 key, REVERSE and ties by sequence", async () => {
  const c = await mailbox(corpus);
  const sort = async (criteria: string) => (await c.cmd(`T SORT (${criteria}) UTF-8 ALL`))[0];
  assert.equal(await sort("DATE"), "* SORT 6 3 2 1 4 5");
  assert.equal(await sort("REVERSE DATE"), "* SORT 5 4 1 2 3 6");
  assert.equal(await sort("ARRIVAL"), "* SORT 1 2 3 4 5 6");
  assert.equal(await sort("SIZE"), "* SORT 1 2 3 4 5 6");
  assert.equal(await sort("SUBJECT"), "* SORT 3 4 1 2 5 6");
  assert.equal(await sort("SUBJECT DATE"), "* SORT 3 4 2 1 5 6");
  assert.equal(await sort("FROM"), "* SORT 2 3 1 4 6 5");
  assert.equal(await sort("DISPLAYFROM"), "* SORT 2 6 3 1 4 5");
  assert.equal(await sort("DISPLAYTO REVERSE SIZE"), "* SORT 2 6 5 4 3 1");
  assert.equal(await sort("TO"), "* SORT 1 3 4 5 6 2");
  assert.equal(await sort("CC"), "* SORT 1 2 3 4 5 6");
  const uid = await c.cmd("U UID SORT (REVERSE SUBJECT) US-ASCII NOT FROM bob");
  assert.deepEqual(uid, ["* SORT 6 1 2 5 4", "U OK UID SORT completed"]);
});

Deno.test("SORT RETURN answers with ESEARCH in sort order (RFC 5267)", async () => {
  const c = await mailbox(corpus);
  assert.deepEqual(await c.cmd("E1 SORT RETURN (MIN MAX COUNT ALL) (DATE) UTF-8 ALL"), [
    '* ESEARCH (TAG "E1") MIN 6 MAX 5 ALL 6,3,2,1,4:5 COUNT 6',
    "E1 OK SORT completed",
  ]);
  assert.deepEqual(await c.cmd("E2 UID SORT RETURN () (SUBJECT) UTF-8 1:2"), [
    '* ESEARCH (TAG "E2") UID ALL 1:2',
    "E2 OK UID SORT completed",
  ]);
  assert.deepEqual(await c.cmd("E3 SORT RETURN (COUNT MIN) (SUBJECT) UTF-8 SUBJECT nothing"), [
    '* ESEARCH (TAG "E3") COUNT 0',
    "E3 OK SORT completed",
  ]);
});

Deno.test("SORT refuses bad criteria, charsets and return options precisely", async () => {
  const c = await mailbox(corpus.slice(0, 1));
  const last = async (line: string) => (await c.cmd(line)).at(-1);
  assert.match((await last("B1 SORT (NAME) UTF-8 ALL"))!, /^B1 BAD .*sort key/i);
  assert.match((await last("B2 SORT () UTF-8 ALL"))!, /^B2 BAD/);
  assert.match((await last("B3 SORT (DATE) KOI8-R ALL"))!, /^B3 NO \[BADCHARSET/);
  assert.match((await last("B4 SORT RETURN (SAVE) (DATE) UTF-8 ALL"))!, /^B4 BAD/);
  assert.match((await last("B5 SORT (DATE) UTF-8"))!, /^B5 BAD/);
  assert.match((await last("B6 SORT (REVERSE) UTF-8 ALL"))!, /^B6 BAD/);
  assert.match((await last("B7 THREAD JWZ UTF-8 ALL"))!, /^B7 BAD .*algorithm/i);
  const other = new TestClient(await newStore());
  await other.login();
  assert.match((await other.cmd("B8 SORT (DATE) UTF-8 ALL")).at(-1)!, /^B8 BAD/);
});

Deno.test("SORT and THREAD are read in fragments", async () => {
  const c = await mailbox(corpus);
  await c.raw("F1 UID SO");
  await c.raw("RT (REV");
  const out = await c.raw("ERSE DATE) UTF-8 SUBJECT {5+}\r\nlunch\r\n");
  assert.equal(out, "* SORT 5 1 2\r\nF1 OK UID SORT completed\r\n");
});

Deno.test("THREAD ORDEREDSUBJECT groups by base subject under the earliest message", async () => {
  const c = await mailbox(corpus);
  assert.deepEqual(await c.cmd("T THREAD ORDEREDSUBJECT UTF-8 ALL"), [
    "* THREAD (6)(3 4)(2 (1)(5))",
    "T OK THREAD completed",
  ]);
});

Deno.test("THREAD REFERENCES links references, In-Reply-To and same subjects", async () => {
  const c = await mailbox(corpus);
  assert.deepEqual(await c.cmd("T THREAD REFERENCES UTF-8 ALL"), [
    "* THREAD (6)(3 4)(2 1 5)",
    "T OK THREAD completed",
  ]);
  assert.deepEqual(await c.cmd("U UID THREAD REFERENCES UTF-8 NOT UID 2"), [
    "* THREAD (6)(3 4)(1 5)",
    "U OK UID THREAD completed",
  ]);
  assert.deepEqual(await c.cmd("N THREAD REFERENCES UTF-8 SUBJECT nothing"), [
    "* THREAD",
    "N OK THREAD completed",
  ]);
});

Deno.test("THREAD REFERENCES survives loops, duplicate ids and missing parents", async () => {
  const d = "Mon, 2 Jan 2023 10:00:00 +0000";
  const c = await mailbox([
    msg(1, "a", d, { id: "a", refs: "<b@x>" }),
    msg(2, "b", d, { id: "b", refs: "<a@x>" }),
    msg(3, "c", d, { id: "a" }),
    msg(4, "d", d, { id: "d", refs: "<gone@x> <d@x>" }),
    msg(5, "e", d, { id: "e", refs: "<gone@x>" }),
    msg(6, "f", d, { id: "f", refs: "<gone2@x>" }),
  ]);
  const out = await c.cmd("T THREAD REFERENCES UTF-8 ALL");
  assert.equal(out.at(-1), "T OK THREAD completed");
  const numbers = out[0]!.match(/\d+/g)!.map(Number).sort();
  assert.deepEqual(numbers, [1, 2, 3, 4, 5, 6], out[0]);
});

Deno.test("CAPABILITY advertises SORT, SORT=DISPLAY, ESORT and both THREAD algorithms", async () => {
  const c = await mailbox([]);
  const caps = (await c.cmd("C CAPABILITY"))[0]!.split(" ");
  for (
    const cap of ["SORT", "SORT=DISPLAY", "ESORT", "THREAD=ORDEREDSUBJECT", "THREAD=REFERENCES"]
  ) {
    assert.ok(caps.includes(cap), cap);
  }
});

Deno.test("threadReferences() caps a hostile 5,000-deep reply chain without deep recursion", () => {
  const messages: ThreadMessage[] = [];
  for (let i = 1; i <= 5000; i++) {
    messages.push({
      seq: i,
      n: i,
      date: i,
      subject: { base: "x", replyOrForward: i > 1 },
      subjectKey: "X",
      messageId: `m${i}`,
      references: i > 1 ? [`m${i - 1}`] : [],
    });
  }
  const roots = threadReferences(messages);
  const text = formatThreads(roots);
  assert.equal(text.match(/\d+/g)!.length, 5000);
  let depth = 0;
  for (let n: ThreadNode | undefined = roots[0]; n !== undefined; n = n.children[0]) depth++;
  assert.equal(depth, MAX_THREAD_DEPTH);
});

Deno.test("SORT keys cached by one session serve another, and expunged messages drop out", async () => {
  const store = await newStore();
  const a = new TestClient(store);
  await a.login();
  for (const m of corpus) assert.match(await append(a, "INBOX", m), /OK/);
  await a.cmd("S SELECT INBOX");
  assert.equal((await a.cmd("T SORT (DATE) UTF-8 ALL"))[0], "* SORT 6 3 2 1 4 5");
  await a.cmd("D STORE 2 +FLAGS (\\Deleted)");
  await a.cmd("E EXPUNGE");
  const b = new TestClient(store);
  await b.login();
  await b.cmd("S SELECT INBOX");
  assert.equal((await b.cmd("T UID SORT (DATE) UTF-8 ALL"))[0], "* SORT 6 3 1 4 5");
  assert.equal((await b.cmd("T SORT (DATE) UTF-8 ALL"))[0], "* SORT 5 2 1 3 4");
  assert.equal((await b.cmd("T THREAD REFERENCES UTF-8 ALL"))[0], "* THREAD (5)(2 3)(1 4)");
});

Deno.test("SortKeyCache drops the least recently sorted mailbox beyond its bound", () => {
  const cache = new SortKeyCache(3);
  const keys = sortKeysOf();
  const a = cache.mailbox(1, 1, 2);
  a.set(1, keys).set(2, keys);
  cache.added(2);
  const b = cache.mailbox(2, 1, 2);
  b.set(1, keys).set(2, keys);
  cache.added(2);
  assert.equal(cache.size, 2);
  assert.equal(cache.mailbox(2, 1, 2).size, 2);
  assert.equal(cache.mailbox(1, 1, 2).size, 0);
});

function sortKeysOf(): MessageSortKeys {
  return {
    size: 1,
    arrival: 0,
    date: 0,
    subject: { base: "", replyOrForward: false },
    subjectKey: "",
    from: "",
    to: "",
    cc: "",
    displayFrom: "",
    displayTo: "",
    messageId: null,
    references: [],
  };
}

Deno.test("20 sessions sort and thread one mailbox at once while another appends", async () => {
  const store = await newStore();
  const writer = new TestClient(store);
  await writer.login();
  for (const m of corpus) assert.match(await append(writer, "INBOX", m), /OK/);
  const readers = await Promise.all(Array.from({ length: 20 }, async () => {
    const c = new TestClient(store);
    await c.login();
    await c.cmd("S EXAMINE INBOX");
    return c;
  }));
  const appending = (async () => {
    for (let i = 0; i < 10; i++) {
      await append(writer, "INBOX", msg(10 + i, `Later ${i}`, "Fri, 6 Jan 2023 09:00:00 +0000"));
    }
  })();
  const answers = await Promise.all(readers.map(async (c, i) => {
    const sort = await c.cmd(
      i % 2 === 0 ? "T UID SORT (DATE) UTF-8 UID 1:6" : "T UID THREAD REFERENCES UTF-8 UID 1:6",
    );
    return sort[0];
  }));
  await appending;
  for (const [i, a] of answers.entries()) {
    assert.equal(a, i % 2 === 0 ? "* SORT 6 3 2 1 4 5" : "* THREAD (6)(3 4)(2 1 5)");
  }
  assert.equal((await readers[0]!.cmd("N NOOP")).at(-1), "N OK NOOP completed");
});

Deno.test("a repeated text SORT stays right as messages arrive and searches narrow it", async () => {
  const c = await mailbox(corpus);
  const sort = async (args: string) => (await c.cmd(`T SORT ${args}`))[0];
  assert.equal(await sort("(SUBJECT) UTF-8 ALL"), "* SORT 3 4 1 2 5 6");
  // The ranks of the mailbox's subjects are kept; a subset sorts by the same order.
  assert.equal(await sort("(REVERSE SUBJECT) UTF-8 1:4"), "* SORT 1 2 3 4");
  assert.equal(await sort("(SUBJECT) UTF-8 ALL"), "* SORT 3 4 1 2 5 6");
  // A new subject between the others: the kept ranks no longer cover the mailbox.
  assert.match(await append(c, "INBOX", msg(7, "Candles", "Thu, 5 Jan 2023 09:00:00 +0000")), /OK/);
  await c.cmd("N NOOP");
  assert.equal(await sort("(SUBJECT) UTF-8 ALL"), "* SORT 3 4 7 1 2 5 6");
});

Deno.test("the sort text gives every sort key the whole search text gives", () => {
  const extra = [
    "From: =?UTF-8?Q?J=C3=BCrgen?= <j@x>, other@x\r\nTo: Team: a@x, b@x;\r\n" +
    "Subject: =?UTF-8?B?UmU6IMOcYmVy?= [fwd: Budget]\r\nDate: 1 Feb 2023 10:00 +0100\r\n" +
    "Cc: <cc@x>\r\nIn-Reply-To: <p@x> <q@x>\r\nReceived: by x; 1 Feb 2023\r\n\r\nBody\r\n",
    "Subject: no addresses\r\n\r\n",
  ];
  const enc = new TextEncoder();
  for (const [i, text] of [...corpus, ...extra].entries()) {
    const raw = enc.encode(text);
    const derived = derivedData(mimeSupport, raw);
    assert.ok(derived.searchText !== undefined && derived.sortText !== undefined);
    assert.ok(derived.sortText.length <= derived.searchText.length);
    const meta = { uid: i + 1, modseq: 1, flags: [], internalDate: 1e12, size: raw.length };
    assert.deepEqual(
      sortKeys(meta, SearchIndex.read(derived.sortText)),
      sortKeys(meta, SearchIndex.read(derived.searchText)),
      text.slice(0, 60),
    );
  }
});

Deno.test("sentTime() reads a Date value as parseDate() does", () => {
  const values = [
    "wed, 1 jan 2025 00:05:17 +0000",
    "Wed, 1 Jan 2025 00:05:17 +0000",
    "1 jan 2025 23:59:60 -0130",
    "tue, 31 dec 2024 12:00:00 +1400",
    "tue, 07 mar 2023 10:00:00 +0000",
    "wed, 1 jan 2025 00:05:17 +0000 (utc)",
    "wed, 1 (x) jan 2025 00:05:17 +0000",
    "1 jan 99 10:00 est",
    "1 jan 2025 10:00 gmt",
    "1 january 2025 10:00:00 +0000",
    "32 jan 2025 10:00:00 +0000",
    "1 jan 2025 24:00:00 +0000",
    "1 jan 2025 10:60:00 +0000",
    "1 jan 2025 10:00:61 +0000",
    "0 jan 2025 10:00:00 +0000",
    "1 foo 2025 10:00:00 +0000",
    "wed,  1 jan 2025 00:05:17 +0000",
    "",
    "garbage",
    "wed, 1 jan 0050 00:05:17 +0000",
    "wed, 1 jan 2025 00:05:17 +00000",
    "wed, 1 jan 2025 00:05:17 *0000",
    "wed, 1 jan 2025 00-05:17 +0000",
    "wed, 1x jan 2025 00:05:17 +0000",
    "(), 1 jan 2025 00:05:17 +0000",
    "wed,  1 jan 2025 00:05:17 +0000",
    "wed, 1 jan 2025 00:05:17 +0000 ",
  ];
  for (const v of values) assert.equal(sentTime(v), parseDate(v)?.time, v);
  assert.equal(sentTime(null), undefined);
});

Deno.test("SORT and THREAD read keys per field from SQLite sort texts as the memory store's whole keys give", async () => {
  const commands = [
    "T SORT (DATE) UTF-8 ALL",
    "T SORT (REVERSE ARRIVAL) UTF-8 ALL",
    "T SORT (SIZE) UTF-8 ALL",
    "T SORT (SUBJECT) UTF-8 ALL",
    "T SORT (CC FROM) UTF-8 ALL",
    "T SORT (REVERSE TO) UTF-8 ALL",
    "T SORT (DISPLAYFROM DATE) UTF-8 ALL",
    "T SORT (DISPLAYTO) UTF-8 ALL",
    "T SORT RETURN (COUNT MIN MAX ALL) (DATE) UTF-8 UNDELETED",
    "T SORT (REVERSE DATE) UTF-8 ALL",
    "T THREAD REFERENCES UTF-8 ALL",
    "T THREAD ORDEREDSUBJECT UTF-8 ALL",
  ];
  const messages = [
    ...corpus,
    msg(7, "=?UTF-8?B?UmU6IMOcYmVy?= [fwd: Budget]", "1 Feb 2023 10:00 +0100 (CET)", {
      from: "=?UTF-8?Q?J=C3=BCrgen?= <j@x>, other@x",
      to: "Team: a@x, b@x;",
      irt: "<p@x> <q@x>",
    }),
    msg(8, "Lunch", "not a date"),
  ];
  // Each message its own INTERNALDATE: ARRIVAL must not depend on which second the APPENDs of
  // each store fall in (the same second gives a tie, broken by sequence number).
  const appendAll = async (c: TestClient) => {
    for (const [i, m] of messages.entries()) {
      const size = new TextEncoder().encode(m).length;
      const date = `"${String(i + 1).padStart(2, "0")}-Mar-2024 10:00:00 +0000"`;
      const out = await c.cmd(`AP APPEND INBOX ${date} {${size}+}\r\n${m}`);
      assert.match(out.at(-1) ?? "", /^AP OK/);
    }
    await c.cmd("S SELECT INBOX");
  };
  const memory = new TestClient(await newStore());
  await memory.login();
  await appendAll(memory);
  const expected: string[] = [];
  for (const command of commands) expected.push((await memory.cmd(command))[0]!);
  assert.equal(expected[1], "* SORT 8 7 6 5 4 3 2 1");
  // Each order of first use derives a different group of keys first.
  for (const order of [commands, [...commands].reverse()]) {
    const store = await openSqliteMailStore(":memory:");
    try {
      await store.createAccount("alice", null);
      const c = new TestClient(store);
      await c.login();
      await appendAll(c);
      for (const command of order) {
        assert.equal((await c.cmd(command))[0], expected[commands.indexOf(command)], command);
      }
    } finally {
      await store.close();
    }
  }
});

Deno.test("a kept whole-mailbox SORT and THREAD follow APPEND and EXPUNGE", async () => {
  const c = await mailbox(corpus);
  const commands = [
    "T SORT (SUBJECT) UTF-8 ALL",
    "T UID SORT (REVERSE DATE) UTF-8 ALL",
    "T SORT (DISPLAYFROM) UTF-8 ALL",
    "T THREAD ORDEREDSUBJECT UTF-8 ALL",
    "T UID THREAD REFERENCES UTF-8 ALL",
    // Picked from the kept whole-mailbox orders above.
    "T SORT (SUBJECT) UTF-8 2:5",
    "T UID SORT (REVERSE DATE) UTF-8 NOT SUBJECT lunch",
    "T SORT RETURN (ALL COUNT) (DISPLAYFROM) UTF-8 UNDELETED",
    // Derived from the kept orders of the reversed criteria, runs of equal keys included.
    "T SORT (REVERSE SUBJECT) UTF-8 ALL",
    "T SORT (REVERSE DISPLAYFROM) UTF-8 UNDELETED",
    "T UID SORT (DATE) UTF-8 ALL",
  ];
  const answers = async (client: TestClient) => {
    const out: string[] = [];
    for (const command of commands) out.push((await client.cmd(command))[0]!);
    return out;
  };
  /** What stores that never sorted these messages answer (each command its own store). */
  const fresh = async (messages: readonly string[], expunge?: string) => {
    const out: string[] = [];
    for (const command of commands) {
      const r = await mailbox(messages);
      if (expunge !== undefined) {
        await r.cmd(`D STORE ${expunge} +FLAGS (\\Deleted)`);
        await r.cmd("E EXPUNGE");
      }
      out.push((await r.cmd(command))[0]!);
    }
    return out;
  };
  const first = await answers(c);
  assert.deepEqual(await answers(c), first);
  assert.deepEqual(first, await fresh(corpus));
  const later = msg(7, "Candles", "Thu, 5 Jan 2023 09:00:00 +0000", { refs: "<m3@x>" });
  assert.match(await append(c, "INBOX", later), /OK/);
  await c.cmd("N NOOP");
  assert.deepEqual(await answers(c), await fresh([...corpus, later]));
  await c.cmd("D STORE 2 +FLAGS (\\Deleted)");
  await c.cmd("E EXPUNGE");
  assert.deepEqual(await answers(c), await fresh([...corpus, later], "2"));
});

Deno.test("keepResult() keeps a bounded number of results per mailbox, for one set of UIDs", () => {
  const keys = new Map<number, MessageSortKeys>();
  for (let i = 0; i <= MAX_KEPT_RESULTS; i++) keepResult(keys, [1, 2], `r${i}`, i);
  assert.equal(keptResult(keys, [1, 2], "r0"), undefined);
  assert.equal(keptResult(keys, [1, 2], `r${MAX_KEPT_RESULTS}`), MAX_KEPT_RESULTS);
  assert.equal(keptResult(keys, [1, 3], `r${MAX_KEPT_RESULTS}`), undefined);
  keepResult(keys, [1, 3], "other", 0);
  assert.equal(keptResult(keys, [1, 2], "r1"), undefined);
});
