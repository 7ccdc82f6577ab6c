import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import {
  bodyStructure,
  envelope,
  extractBinary,
  extractSection,
  headerValue,
  MAX_DEPTH,
  MAX_HEADER_FIELDS,
  MAX_PARTS,
  type MimePart,
  parseMessage,
  parseSectionSpec,
  searchText,
  summarize,
} from "../../../../protocol/imap/mime/mod.ts";
import { HOSTILE_MESSAGES } from "./_hostile_headers.ts";

const FIXTURES = fileURLToPath(new URL("../../../fixtures/mail/", import.meta.url));
const corpus = [...Deno.readDirSync(FIXTURES)].map((e) => e.name).filter((n) => n.endsWith(".eml"))
  .sort();
const enc = (s: string): Uint8Array => new TextEncoder().encode(s.replace(/\n/g, "\r\n"));
const text = (b: Uint8Array | null): string | null =>
  b === null ? null : new TextDecoder().decode(b);

/** Runs every entry point over a message; any exception fails the caller. */
function exercise(raw: Uint8Array): MimePart {
  const root = parseMessage(raw);
  envelope(root);
  bodyStructure(root, true);
  bodyStructure(root, false);
  searchText(raw, root);
  for (const s of ["", "HEADER", "TEXT", "1", "1.MIME", "2", "2.1", "1.HEADER", "2.TEXT"]) {
    extractSection(raw, root, parseSectionSpec(s)!);
  }
  extractBinary(raw, root, [1]);
  extractBinary(raw, root, [2, 1]);
  return root;
}

/** Checks that every part's offsets are ordered and nested inside its parent's body. */
function checkOffsets(p: MimePart, lo: number, hi: number, depth = 0): void {
  assert.ok(lo <= p.headerStart && p.headerStart <= p.headerEnd, "header order");
  assert.equal(p.headerEnd, p.bodyStart);
  assert.ok(p.bodyStart <= p.bodyEnd && p.bodyEnd <= hi, "body order");
  assert.equal(p.size, p.bodyEnd - p.bodyStart);
  assert.ok(depth <= MAX_DEPTH + 1);
  let prev = p.bodyStart;
  for (const c of p.children) {
    checkOffsets(c, prev, p.bodyEnd, depth + 1);
    prev = c.bodyEnd;
  }
  if (p.message !== null) checkOffsets(p.message, p.bodyStart, p.bodyEnd, depth + 1);
}

Deno.test("the corpus holds at least 60 messages", () => {
  assert.ok(corpus.length >= 60, `${corpus.length} messages`);
});

Deno.test("every corpus message parses without throwing and with consistent offsets", () => {
  for (const name of corpus) {
    const raw = Deno.readFileSync(FIXTURES + name);
    const root = exercise(raw);
    checkOffsets(root, 0, raw.length);
    JSON.parse(summarize(raw));
  }
});

Deno.test("truncated corpus messages never throw", () => {
  for (const name of corpus) {
    const raw = Deno.readFileSync(FIXTURES + name);
    const step = Math.max(1, Math.floor(raw.length / 60));
    for (let n = 0; n < raw.length; n += step) {
      const cut = raw.subarray(0, n);
      checkOffsets(exercise(cut), 0, n);
    }
  }
});

Deno.test("random bytes and random MIME-token soup never throw", () => {
  let seed = 12345;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed % n;
  };
  const tokens = [
    "\r\n",
    "\n",
    "\r",
    " ",
    "\t",
    ":",
    "--b",
    "--b--",
    "--c",
    "Content-Type: multipart/mixed; boundary=b",
    "Content-Type: multipart/alternative; boundary=c",
    "Content-Type: message/rfc822",
    "Content-Type: multipart/digest; boundary=b",
    "Content-Transfer-Encoding: base64",
    "Content-Transfer-Encoding: quoted-printable",
    "Content-Disposition: attachment; filename*0*=utf-8''%E2; filename*1=x",
    "From: a (b) <c@d>, g: h@i;",
    "Subject: =?utf-8?B?w4c=?=",
    "=?",
    "?=",
    "=",
    '"',
    "(",
    "<",
    ">",
    "@",
    ";",
    "\u00e9",
    "\u0000",
  ];
  for (let round = 0; round < 400; round++) {
    const bytes = new Uint8Array(rnd(600));
    for (let i = 0; i < bytes.length; i++) bytes[i] = rnd(256);
    checkOffsets(exercise(bytes), 0, bytes.length);
    let soup = "";
    const count = rnd(80);
    for (let i = 0; i < count; i++) soup += tokens[rnd(tokens.length)];
    const raw = new TextEncoder().encode(soup);
    checkOffsets(exercise(raw), 0, raw.length);
  }
});

Deno.test("parseMessage() bounds nesting depth", () => {
  let msg = "";
  const levels = 500;
  for (let i = 0; i < levels; i++) {
    msg += `Content-Type: multipart/mixed; boundary=b${i}\n\n--b${i}\n`;
  }
  msg += "\nleaf\n";
  const raw = enc(msg);
  const root = exercise(raw);
  let depth = 0;
  for (let p: MimePart | undefined = root; p !== undefined; p = p.children[0]) depth++;
  assert.ok(depth <= MAX_DEPTH + 1, `depth ${depth}`);
  let nested = "Subject: top\n";
  for (let i = 0; i < levels; i++) nested += "Content-Type: message/rfc822\n\nSubject: inner\n";
  exercise(enc(nested + "\nbody\n"));
});

Deno.test("parseMessage() bounds the number of parts", () => {
  const raw = enc(
    "Content-Type: multipart/mixed; boundary=b\n\n" + "--b\n\nx\n".repeat(MAX_PARTS + 500) +
      "--b--\n",
  );
  const root = parseMessage(raw);
  assert.ok(root.children.length < MAX_PARTS, `${root.children.length} parts`);
});

Deno.test("parseMessage() caps oversized headers and carries on", () => {
  const many = "X-A: 1\n".repeat(MAX_HEADER_FIELDS + 100) + "Subject: late\n\nbody\n";
  const a = parseMessage(enc(many));
  assert.ok(a.headerTruncated);
  assert.equal(a.headers.length, MAX_HEADER_FIELDS);
  assert.equal(text(extractSection(enc(many), a, parseSectionSpec("TEXT")!)), "body\r\n");
  const huge = "Subject: " + "y".repeat(2 * 1024 * 1024) + "\nFrom: a@b\n\nbody\n";
  const b = parseMessage(enc(huge));
  assert.ok(b.headerTruncated);
  const subject = headerValue(b, "subject")!;
  assert.ok(subject.length <= 64 * 1024 && subject.length > 60_000, `${subject.length}`);
  assert.equal(headerValue(b, "from"), "a@b");
  assert.equal(b.size, 6);
});

Deno.test("multipart bodies: preamble and epilogue stay out of the parts", () => {
  const raw = Deno.readFileSync(`${FIXTURES}52-preamble-epilogue.eml`);
  const root = parseMessage(raw);
  assert.equal(root.children.length, 2);
  assert.equal(
    text(extractSection(raw, root, parseSectionSpec("1")!)),
    "Implicitly typed plain US-ASCII text.\r\nIt does NOT end with a linebreak.",
  );
  assert.equal(
    text(extractSection(raw, root, parseSectionSpec("2")!)),
    "This is explicitly typed plain US-ASCII text.\r\nIt DOES end with a linebreak.\r\n",
  );
});

Deno.test("multipart bodies: a missing final boundary ends the last part at the end", () => {
  const raw = Deno.readFileSync(`${FIXTURES}27-missing-final-boundary.eml`);
  const root = parseMessage(raw);
  assert.equal(root.children.length, 2);
  assert.equal(text(extractSection(raw, root, parseSectionSpec("2")!)), "second, never closed\r\n");
});

Deno.test("multipart bodies: a boundary that never appears gives one text part", () => {
  for (const name of ["28-boundary-never-appears.eml", "46-multipart-no-boundary-param.eml"]) {
    const raw = Deno.readFileSync(FIXTURES + name);
    const root = parseMessage(raw);
    assert.equal(root.type, "multipart");
    assert.equal(root.children.length, 1);
    assert.equal(root.children[0]!.type, "text");
    assert.equal(root.children[0]!.bodyStart, root.bodyStart);
    assert.equal(root.children[0]!.bodyEnd, root.bodyEnd);
  }
});

Deno.test("multipart bodies: bare LF line endings are accepted everywhere", () => {
  const raw = Deno.readFileSync(`${FIXTURES}36-bare-lf-multipart.eml`);
  const root = parseMessage(raw);
  assert.deepEqual(root.children.map((c) => [c.subtype, c.size]), [["plain", 5], ["html", 11]]);
  assert.equal(text(extractSection(raw, root, parseSectionSpec("2")!)), "<b>html</b>");
});

Deno.test("multipart bodies: delimiters need whitespace or a line end after the boundary", () => {
  const raw = Deno.readFileSync(`${FIXTURES}26-malformed-boundary.eml`);
  const root = parseMessage(raw);
  assert.equal(root.children.length, 2);
  assert.ok(text(extractSection(raw, root, parseSectionSpec("1")!))!.includes("--b26x"));
  const ws = Deno.readFileSync(`${FIXTURES}64-whitespace-after-boundary.eml`);
  assert.equal(parseMessage(ws).children.length, 2);
});

Deno.test("headers: a message without a blank line is all header, and an empty body is empty", () => {
  const only = parseMessage(Deno.readFileSync(`${FIXTURES}31-headers-only.eml`));
  assert.equal(only.size, 0);
  assert.equal(headerValue(only, "date"), "Tue, 3 Nov 2026 10:00:00 +0100");
  const empty = parseMessage(Deno.readFileSync(`${FIXTURES}32-empty-body.eml`));
  assert.equal(empty.size, 0);
  assert.equal(empty.lines, 0);
});

Deno.test("message/rfc822 parts carry the encapsulated message, message/global too", () => {
  const raw = Deno.readFileSync(`${FIXTURES}48-message-global.eml`);
  const g = parseMessage(raw).children[1]!;
  assert.equal(g.subtype, "global");
  assert.ok(g.message !== null);
  assert.equal(headerValue(g.message, "subject"), "Grüße");
});

Deno.test("hostile headers and structures parse with consistent offsets", () => {
  // Their parse times are in `deno task bench --only parse`.
  for (const s of Object.values(HOSTILE_MESSAGES)) {
    const raw = new TextEncoder().encode(s);
    const tree = exercise(raw);
    summarize(raw);
    checkOffsets(tree, 0, raw.length);
  }
});
