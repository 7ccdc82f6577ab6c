import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import {
  bodyStructure,
  envelope,
  extractSection,
  foldText,
  fromSummary,
  MAX_SEARCH_TEXT,
  type MimePart,
  parseDate,
  parseMessage,
  parseSectionSpec,
  searchText,
  summarize,
} from "../../../../protocol/imap/mime/mod.ts";

const FIXTURES = fileURLToPath(new URL("../../../fixtures/mail/", import.meta.url));
const load = (name: string): Uint8Array => Deno.readFileSync(`${FIXTURES}${name}.eml`);
const search = (name: string) => {
  const raw = load(name);
  return searchText(raw, parseMessage(raw));
};

Deno.test("searchText() decodes RFC 2047 header values and folds case", () => {
  assert.deepEqual(search("23-subject-koi8-r").headers.get("subject"), ["привет мир"]);
  assert.deepEqual(search("24-subject-iso-2022-jp").headers.get("subject"), ["日本語"]);
  assert.deepEqual(search("18-subject-utf8-b").headers.get("subject"), ["ça va bien ? 😀"]);
  assert.deepEqual(search("70-encoded-display-names").headers.get("from"), [
    "björn åström <bjorn@example.se>",
  ]);
  assert.deepEqual(search("66-duplicate-headers").headers.get("subject"), [
    "first subject",
    "second subject",
  ]);
});

Deno.test("searchText() decodes transfer encodings and charsets of text parts", () => {
  assert.ok(search("03-plain-qp").body.includes("grüße, this line is long enough"));
  assert.ok(search("04-plain-base64").body.includes("base64 encoded text with ümlauts."));
  assert.ok(search("02-plain-utf8-8bit").body.includes("日本語のテキスト"));
  assert.ok(search("30-8bit-latin1-headers").body.includes("café au lait"));
  assert.ok(search("62-qp-long-lines").body.includes("ünïcödé ünïcödé"));
});

Deno.test("searchText() strips HTML markup and skips non-text parts", () => {
  const html = search("05-html-only").body;
  assert.ok(html.includes("hello bob & friends"));
  assert.ok(!html.includes("<b>"));
  assert.ok(!html.includes("var x"));
  const pdf = search("08-mixed-attachment-pdf").body;
  assert.ok(pdf.includes("see the attached report."));
  assert.ok(!pdf.includes("pdf-1.4"));
});

Deno.test("searchText() includes forwarded messages' headers and text", () => {
  const s = search("14-forwarded-multipart").body;
  assert.ok(s.includes("forwarding this."));
  assert.ok(s.includes("original with attachment"));
  assert.ok(s.includes("the original text."));
});

Deno.test("searchText() caps the body text", () => {
  const raw = new TextEncoder().encode("Subject: big\r\n\r\n" + "word ".repeat(200_000));
  const s = searchText(raw, parseMessage(raw));
  assert.ok(s.body.length <= MAX_SEARCH_TEXT);
});

Deno.test("foldText() normalises, lower-cases and collapses whitespace", () => {
  assert.equal(foldText("  A\u0301B\t\r\n C "), " áb c ");
});

Deno.test("parseDate() reads RFC 5322 dates, zones and obsolete forms", () => {
  assert.deepEqual(parseDate("Tue, 1 Jul 2003 10:52:37 +0200"), {
    time: Date.UTC(2003, 6, 1, 8, 52, 37),
    day: "2003-07-01",
  });
  assert.deepEqual(parseDate("1 Jul 03 23:00 PDT"), {
    time: Date.UTC(2003, 6, 2, 6, 0, 0),
    day: "2003-07-01",
  });
  assert.equal(parseDate("Tue, 3 Nov 2026 10:00:00 +0100 (CET)")?.day, "2026-11-03");
  assert.equal(parseDate("1 Jan 99 00:00:00 GMT")?.day, "1999-01-01");
  for (const bad of [null, "", "yesterday", "32 Jan 2020 00:00", "1 Foo 2020 00:00"]) {
    assert.equal(parseDate(bad), null, String(bad));
  }
});

Deno.test("summarize() and fromSummary() keep everything FETCH and SEARCH need", () => {
  for (const name of ["14-forwarded-multipart", "07-related-inline-images", "31-headers-only"]) {
    const raw = load(name);
    const tree = parseMessage(raw);
    const s = fromSummary(summarize(raw));
    assert.ok(s !== null);
    assert.equal(s.envelope, envelope(tree));
    assert.equal(s.bodyStructure, bodyStructure(tree, true));
    assert.equal(s.body, bodyStructure(tree, false));
    const blank = (p: MimePart): MimePart => ({
      ...p,
      headers: p.headers.map((f) => ({ ...f, value: "" })),
      children: p.children.map(blank),
      message: p.message === null ? null : blank(p.message),
    });
    assert.deepEqual(s.tree, blank(tree));
    for (const sec of ["1", "2", "1.MIME", "2.1", "HEADER.FIELDS (From)", "2.HEADER", "TEXT"]) {
      const spec = parseSectionSpec(sec)!;
      assert.deepEqual(extractSection(raw, s.tree, spec), extractSection(raw, tree, spec), sec);
    }
  }
  const s = fromSummary(summarize(load("01-plain-ascii")))!;
  assert.equal(s.sentDate?.day, "2026-11-02");
  // The search text is stored once, apart from the summary (protocol/imap/search_index.ts).
  assert.equal(s.version, 3);
  assert.equal(s.headers, undefined);
  assert.equal(s.text, undefined);
});

Deno.test("fromSummary() still reads version 2 summaries, which carry the search text", () => {
  const v3 = JSON.parse(summarize(load("01-plain-ascii")));
  const v2 = {
    ...v3,
    version: 2,
    headers: { subject: ["plain ascii"] },
    text: "this is a plain message.",
  };
  const s = fromSummary(JSON.stringify(v2))!;
  assert.equal(s.version, 2);
  assert.deepEqual(s.headers, { subject: ["plain ascii"] });
  assert.equal(s.text, "this is a plain message.");
  assert.equal(fromSummary(JSON.stringify({ ...v2, headers: undefined })), null);
  assert.equal(fromSummary(JSON.stringify({ ...v2, headers: { subject: [1] } })), null);
});

Deno.test("fromSummary() rejects missing, corrupt or outdated summaries", () => {
  const good = JSON.parse(summarize(load("14-forwarded-multipart")));
  const broken = [
    JSON.stringify({ ...good, version: 1 }),
    JSON.stringify({ ...good, tree: [1, 2] }),
    JSON.stringify({ ...good, tree: [5, 2, 1, [], false, "text", "plain", [], false] }),
    JSON.stringify({ ...good, sentDate: { time: "x" } }),
  ];
  for (const bad of ["", "null", "{}", "[]", '{"version":2}', "{", '"x"', ...broken]) {
    assert.equal(fromSummary(bad), null, bad);
  }
});

Deno.test("addressForms() normalises quoted, commented, folded, encoded and grouped addresses", async () => {
  const { addressForms } = await import("../../../../protocol/imap/mime/search_text.ts");
  assert.deepEqual(
    addressForms(
      '"user-from"@domain.org, user-from (Comment) @ domain.org, Jo <user-from@\r\n domain.org>, ' +
        '=?utf-8?Q?J=C3=BCrgen?= <j@x.de>, team: a@b, "Q. Z" <q@z>;, (only a comment)',
    ),
    [
      "user-from@domain.org",
      "comment <user-from@domain.org>",
      "jo <user-from@domain.org>",
      "jürgen <j@x.de>",
      "team:",
      "a@b",
      "q. z <q@z>",
    ],
  );
});
