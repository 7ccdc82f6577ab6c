import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import {
  extractBinary,
  extractSection,
  type MimePart,
  parseMessage,
  parseSectionSpec,
  type SectionSpec,
} from "../../../../protocol/imap/mime/mod.ts";
import { bigAttachmentMessage } from "./_big_message.ts";

const FIXTURES = fileURLToPath(new URL("../../../fixtures/mail/", import.meta.url));
const text = (b: Uint8Array | null): string | null =>
  b === null ? null : new TextDecoder().decode(b);
const spec = (s: string): SectionSpec => {
  const p = parseSectionSpec(s);
  assert.ok(p !== null, s);
  return p;
};

Deno.test("parseSectionSpec() reads part paths and text specifiers", () => {
  assert.deepEqual(parseSectionSpec(""), { path: [], text: null, fields: [] });
  assert.deepEqual(parseSectionSpec("1"), { path: [1], text: null, fields: [] });
  assert.deepEqual(parseSectionSpec("1.2.3"), { path: [1, 2, 3], text: null, fields: [] });
  assert.deepEqual(parseSectionSpec("2.HEADER"), { path: [2], text: "HEADER", fields: [] });
  assert.deepEqual(parseSectionSpec("2.text"), { path: [2], text: "TEXT", fields: [] });
  assert.deepEqual(parseSectionSpec("1.2.MIME"), { path: [1, 2], text: "MIME", fields: [] });
  assert.deepEqual(parseSectionSpec("HEADER.FIELDS (From To)"), {
    path: [],
    text: "HEADER.FIELDS",
    fields: ["From", "To"],
  });
  assert.deepEqual(parseSectionSpec('3.HEADER.FIELDS.NOT ("Subject" X-A)'), {
    path: [3],
    text: "HEADER.FIELDS.NOT",
    fields: ["Subject", "X-A"],
  });
});

Deno.test("parseSectionSpec() rejects malformed specifications", () => {
  const bad = [
    "0",
    "1.0",
    "01",
    "1.",
    ".1",
    "1..2",
    "MIME",
    "HEADER.FIELDS",
    "HEADER.FIELDS ()",
    "HEADER.FIELDS (a",
    "BODY",
    "1HEADER",
    "1.2.TEXT.x",
    "9999999999",
    "1." + "1.".repeat(200) + "1",
  ];
  for (const s of bad) assert.equal(parseSectionSpec(s), null, s);
});

const simple = new TextEncoder().encode(
  "From: a@b.test\r\nSubject: Hi\r\n\r\nline 1\r\nline 2\r\n",
);

Deno.test("extractSection() treats part 1 of a non-multipart message as its body", () => {
  const root = parseMessage(simple);
  assert.equal(text(extractSection(simple, root, spec(""))), text(simple));
  assert.equal(text(extractSection(simple, root, spec("1"))), "line 1\r\nline 2\r\n");
  assert.equal(text(extractSection(simple, root, spec("TEXT"))), "line 1\r\nline 2\r\n");
  assert.equal(
    text(extractSection(simple, root, spec("HEADER"))),
    "From: a@b.test\r\nSubject: Hi\r\n\r\n",
  );
  assert.equal(
    text(extractSection(simple, root, spec("1.MIME"))),
    "From: a@b.test\r\nSubject: Hi\r\n\r\n",
  );
  assert.equal(extractSection(simple, root, spec("2")), null);
  assert.equal(extractSection(simple, root, spec("1.1")), null);
  assert.equal(extractSection(simple, root, spec("1.HEADER")), null);
});

Deno.test("extractSection() returns views into the raw message, not copies", () => {
  const root = parseMessage(simple);
  const body = extractSection(simple, root, spec("1"))!;
  assert.equal(body.buffer, simple.buffer);
  assert.equal(body.byteOffset, simple.indexOf(0x6c));
});

Deno.test("extractSection() reaches into a forwarded message/rfc822 and its multipart", () => {
  const raw = Deno.readFileSync(`${FIXTURES}14-forwarded-multipart.eml`);
  const root = parseMessage(raw);
  assert.equal(text(extractSection(raw, root, spec("1"))), "Forwarding this.");
  assert.equal(
    text(extractSection(raw, root, spec("2.MIME"))),
    "Content-Type: message/rfc822\r\nContent-Disposition: inline\r\n\r\n",
  );
  assert.ok(text(extractSection(raw, root, spec("2")))!.startsWith("From: Carol"));
  assert.ok(text(extractSection(raw, root, spec("2.HEADER")))!.endsWith("\r\n\r\n"));
  assert.ok(text(extractSection(raw, root, spec("2.TEXT")))!.startsWith("--fwd-inner-14\r\n"));
  assert.equal(text(extractSection(raw, root, spec("2.1"))), "The original text.");
  assert.equal(
    text(extractSection(raw, root, spec("2.2.MIME"))),
    'Content-Type: image/gif; name="dot.gif"\r\nContent-Transfer-Encoding: base64\r\n\r\n',
  );
  assert.equal(
    text(extractSection(raw, root, spec("2.HEADER.FIELDS (subject)"))),
    "Subject: Original with attachment\r\n\r\n",
  );
  assert.equal(extractSection(raw, root, spec("2.3")), null);
  assert.equal(extractSection(raw, root, spec("1.TEXT")), null);
});

Deno.test("extractSection() selects header fields case-insensitively, in message order", () => {
  const raw = new TextEncoder().encode(
    "Subject: s\r\nFrom: f\r\nX-Folded: a\r\n b\r\nTo: t\r\n\r\nbody",
  );
  const root = parseMessage(raw);
  assert.equal(
    text(extractSection(raw, root, spec("HEADER.FIELDS (TO x-folded SUBJECT)"))),
    "Subject: s\r\nX-Folded: a\r\n b\r\nTo: t\r\n\r\n",
  );
  assert.equal(
    text(extractSection(raw, root, spec("HEADER.FIELDS.NOT (to x-folded)"))),
    "Subject: s\r\nFrom: f\r\n\r\n",
  );
  assert.equal(text(extractSection(raw, root, spec("HEADER.FIELDS (Absent)"))), "\r\n");
});

Deno.test("extractBinary() decodes leaves and signals unknown encodings", () => {
  const raw = Deno.readFileSync(`${FIXTURES}47-unknown-cte.eml`);
  const root = parseMessage(raw);
  const one = extractBinary(raw, root, [1]);
  assert.ok(one !== null && one.ok);
  assert.equal(text(one.bytes), "x");
  assert.deepEqual(extractBinary(raw, root, [2]), {
    ok: false,
    reason: "unknown-cte",
    encoding: "x-uuencode",
  });
  assert.equal(extractBinary(raw, root, [3]), null);
  const b64 = Deno.readFileSync(`${FIXTURES}44-disposition-params.eml`);
  const r = extractBinary(b64, parseMessage(b64), [2]);
  assert.ok(r !== null && r.ok);
  assert.deepEqual([...r.bytes], [0, 1, 2, 3]);
});

Deno.test("a 20 MB attachment is parsed and extracted without copies", () => {
  // Its parse and extraction times are in `deno task bench --only parse`.
  const { raw, payload } = bigAttachmentMessage(15 * 1024 * 1024);
  assert.ok(raw.length > 20_000_000);
  const root: MimePart = parseMessage(raw);
  const section = extractSection(raw, root, spec("2"))!;
  const binary = extractBinary(raw, root, [2]);
  assert.equal(root.children.length, 2);
  assert.equal(section.buffer, raw.buffer);
  assert.equal(section.length, root.children[1]!.size);
  assert.ok(binary !== null && binary.ok);
  assert.equal(binary.bytes.length, payload.length);
  assert.ok(binary.bytes.every((b, i) => b === payload[i]));
});
