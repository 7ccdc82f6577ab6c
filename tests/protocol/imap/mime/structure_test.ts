/**
 * Golden ENVELOPE, BODY and BODYSTRUCTURE strings. `golden_structures.json` holds the strings
 * for fourteen corpus messages; they were checked against Dovecot 2.3 by dovecot_diff_test.ts
 * (none of these messages is in its list of deliberate differences), and are pinned here so the
 * check also runs where Dovecot is not installed. The small cases below are written by hand
 * from RFC 9051, Section 7.5.2.
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import {
  bodyStructure,
  envelope,
  imapString,
  nstring,
  parseMessage,
} from "../../../../protocol/imap/mime/mod.ts";

const FIXTURES = fileURLToPath(new URL("../../../fixtures/mail/", import.meta.url));
const GOLDEN: Record<string, { envelope: string; bodystructure: string; body: string }> = JSON
  .parse(Deno.readTextFileSync(new URL("./golden_structures.json", import.meta.url)));

const enc = (s: string): Uint8Array => new TextEncoder().encode(s.replace(/\n/g, "\r\n"));

for (const [name, want] of Object.entries(GOLDEN)) {
  Deno.test(`envelope() and bodyStructure() match the golden strings for ${name}`, () => {
    const tree = parseMessage(Deno.readFileSync(`${FIXTURES}${name}.eml`));
    assert.equal(envelope(tree), want.envelope);
    assert.equal(bodyStructure(tree, true), want.bodystructure);
    assert.equal(bodyStructure(tree, false), want.body);
  });
}

Deno.test("envelope() of a minimal message defaults Sender and Reply-To to From", () => {
  const tree = parseMessage(enc("From: a@b.test\nSubject: Hi\n\nbody\n"));
  assert.equal(
    envelope(tree),
    '(NIL "Hi" ((NIL NIL "a" "b.test")) ((NIL NIL "a" "b.test")) ((NIL NIL "a" "b.test")) ' +
      "NIL NIL NIL NIL NIL)",
  );
});

Deno.test("envelope() of a message without headers is all NIL", () => {
  assert.equal(
    envelope(parseMessage(enc("\nbody\n"))),
    "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)",
  );
  assert.equal(
    envelope(parseMessage(new Uint8Array())),
    "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)",
  );
});

Deno.test("envelope() sends 8-bit, quoted and long strings as literals", () => {
  const long = "x".repeat(1200);
  const tree = parseMessage(enc(`Subject: Grüße\nIn-Reply-To: ${long}\nMessage-ID: <"q"@x>\n\n`));
  const env = envelope(tree);
  assert.ok(env.startsWith("(NIL {7}\r\nGrüße NIL NIL NIL NIL NIL NIL {1200}\r\nx"));
  assert.ok(env.endsWith('{7}\r\n<"q"@x>)'));
});

Deno.test("bodyStructure() of a bare message is text/plain us-ascii 7bit with lines", () => {
  const tree = parseMessage(enc("Subject: x\n\nline 1\nline 2\n"));
  assert.equal(
    bodyStructure(tree, true),
    '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 16 2 NIL NIL NIL NIL)',
  );
  assert.equal(
    bodyStructure(tree, false),
    '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 16 2)',
  );
});

Deno.test("bodyStructure() gives non-text parts no line count and keeps case as written", () => {
  const tree = parseMessage(
    enc("Content-Type: Application/PDF; Name=a.pdf\nContent-Transfer-Encoding: BASE64\n\nAAAA\n"),
  );
  assert.equal(
    bodyStructure(tree, true),
    '("Application" "PDF" ("Name" "a.pdf") NIL NIL "BASE64" 6 NIL NIL NIL NIL)',
  );
});

Deno.test("bodyStructure() writes multipart extension data: params, disposition, language, location", () => {
  const tree = parseMessage(enc(
    'Content-Type: multipart/mixed; boundary="b"\nContent-Disposition: inline\n' +
      "Content-Language: fr\nContent-Location: x.mbox\n\n--b\n\nhi\n--b--\n",
  ));
  assert.equal(
    bodyStructure(tree, true),
    '(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 2 0 NIL NIL NIL NIL) "mixed" ' +
      '("boundary" "b") ("inline" NIL) ("fr") "x.mbox")',
  );
  assert.equal(
    bodyStructure(tree, false),
    '(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 2 0) "mixed")',
  );
});

Deno.test("imapString() and nstring() choose NIL, quoted or literal forms", () => {
  assert.equal(nstring(null), "NIL");
  assert.equal(nstring(""), '""');
  assert.equal(imapString("plain text"), '"plain text"');
  assert.equal(imapString('a"b'), '{3}\r\na"b');
  assert.equal(imapString("a\\b"), "{3}\r\na\\b");
  assert.equal(imapString("a\r\nb"), "{4}\r\na\r\nb");
  assert.equal(imapString("é"), "{2}\r\né");
});
