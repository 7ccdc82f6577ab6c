/** The PREVIEW text (RFC 8970, Section 3) of the fixture corpus and of edge cases. */
import assert from "node:assert/strict";
import { MAX_PREVIEW, parseMessage, preview } from "../../../../protocol/imap/mime/mod.ts";

const FIXTURES = new URL("../../../fixtures/mail/", import.meta.url);
const enc = new TextEncoder();

function of(raw: string | Uint8Array): string {
  const bytes = typeof raw === "string" ? enc.encode(raw) : raw;
  return preview(bytes, parseMessage(bytes));
}

Deno.test("preview() decodes transfer encodings and charsets, and strips HTML, over tests/fixtures/mail", async () => {
  const cases: [string, string][] = [
    ["01-plain-ascii.eml", "Hello Bob, this is a plain message. -- Alice"],
    ["02-plain-utf8-8bit.eml", "Grüße aus Köln — ça va? 日本語のテキスト"],
    [
      "03-plain-qp.eml",
      "Grüße, this line is long enough that it needs a soft line break somewhere in the middle of it. Trailing spaces A literal = sign.",
    ],
    ["04-plain-base64.eml", "Base64 encoded text with ümlauts. Second line."],
    ["05-html-only.eml", "Hello Bob & friends"],
    ["06-alternative.eml", "Plain version."],
    ["08-mixed-attachment-pdf.eml", "See the attached report."],
  ];
  for (const [name, want] of cases) {
    assert.equal(of(await Deno.readFile(new URL(name, FIXTURES))), want, name);
  }
});

Deno.test("preview() of every fixture is at most 256 characters of one-line text", async () => {
  for (const e of Deno.readDirSync(FIXTURES)) {
    if (!e.name.endsWith(".eml")) continue;
    const p = of(await Deno.readFile(new URL(e.name, FIXTURES)));
    assert.ok([...p].length <= MAX_PREVIEW, e.name);
    assert.doesNotMatch(p, /\p{Cc}|^\s|\s$|\s\s/u, e.name);
  }
});

Deno.test("preview() cuts at 256 characters without splitting a surrogate pair", () => {
  const body = "😀".repeat(300);
  const p = of(`Content-Type: text/plain; charset=utf-8\r\n\r\n${body}\r\n`);
  assert.equal([...p].length, MAX_PREVIEW);
  assert.equal(p, "😀".repeat(MAX_PREVIEW));
});

Deno.test("preview() skips quoted lines, attachments and attached messages; empty without text", () => {
  assert.equal(of("Subject: x\r\n\r\n> quoted\r\n>> more\r\nMy answer.\r\n"), "My answer.");
  const mixed = "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n" +
    "Content-Type: text/plain\r\nContent-Disposition: attachment\r\n\r\nattached notes\r\n--b\r\n" +
    "Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner text\r\n--b\r\n" +
    "Content-Type: text/html\r\n\r\n<p>The <i>real</i> body</p><script>x()</script>\r\n--b--\r\n";
  assert.equal(of(mixed), "The real body");
  assert.equal(of("Content-Type: image/png\r\n\r\nAAAA\r\n"), "");
  assert.equal(of("Subject: headers only\r\n"), "");
});
