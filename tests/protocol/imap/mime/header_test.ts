import assert from "node:assert/strict";
import {
  type Address,
  bytesToText,
  decodeEncodedWords,
  parseAddressList,
  parseParamValue,
  unfold,
} from "../../../../protocol/imap/mime/mod.ts";

Deno.test("decodeEncodedWords() decodes B and Q words in the common charsets", () => {
  const cases: [string, string][] = [
    ["=?UTF-8?B?w4dhIHZhIGJpZW4gPyDwn5iA?=", "Ça va bien ? 😀"],
    ["=?utf-8?Q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=", "Grüße aus Köln"],
    ["=?ISO-8859-1?Q?Andr=E9?= Pirard", "André Pirard"],
    ["=?iso-8859-15?Q?Preis:_100_=A4?=", "Preis: 100 €"],
    ["=?windows-1252?Q?=93Smart_quotes=94_=96_dash?=", "\u201cSmart quotes\u201d \u2013 dash"],
    ["=?koi8-r?B?8NLJ18XU?=", "Привет"],
    ["=?ISO-2022-JP?B?GyRCRnxLXDhsGyhC?=", "日本語"],
    ["=?us-ascii?q?plain?=", "plain"],
    ["=?utf-8*en?q?with_language?=", "with language"],
  ];
  for (const [input, want] of cases) assert.equal(decodeEncodedWords(input), want, input);
});

Deno.test("decodeEncodedWords() drops whitespace only between adjacent encoded words", () => {
  assert.equal(decodeEncodedWords("=?utf-8?q?a?= =?utf-8?q?b?="), "ab");
  assert.equal(decodeEncodedWords("=?utf-8?q?a?=\r\n =?utf-8?q?b?="), "ab");
  assert.equal(decodeEncodedWords("=?utf-8?q?a?= plain =?utf-8?q?b?="), "a plain b");
  assert.equal(decodeEncodedWords("x =?utf-8?q?a?="), "x a");
});

Deno.test("decodeEncodedWords() joins a multibyte character split across two words", () => {
  // "✓" is E2 9C 93; the split happens inside the character.
  assert.equal(decodeEncodedWords("=?utf-8?Q?=E2=9C?= =?utf-8?Q?=93?="), "✓");
  assert.equal(decodeEncodedWords("=?utf-8?B?4pw=?= =?utf-8?B?kw==?="), "✓");
});

Deno.test("decodeEncodedWords() leaves unknown charsets and malformed words as written", () => {
  assert.equal(decodeEncodedWords("=?x-unknown?Q?keep?="), "=?x-unknown?Q?keep?=");
  assert.equal(decodeEncodedWords("=?utf-8?X?bad?="), "=?utf-8?X?bad?=");
  assert.equal(decodeEncodedWords("=?utf-8?Q?unterminated"), "=?utf-8?Q?unterminated");
  assert.equal(decodeEncodedWords("no words at all"), "no words at all");
  assert.equal(decodeEncodedWords("=?utf-8?q?=ZZ?="), "=ZZ");
});

Deno.test("unfold() turns each line break plus whitespace into one space", () => {
  assert.equal(unfold("a\r\n b"), "a b");
  assert.equal(unfold("a\r\n\tb"), "a b");
  assert.equal(unfold("a\n  b"), "a  b");
  assert.equal(unfold("a\rb"), "ab");
});

Deno.test("bytesToText() reads valid UTF-8 as UTF-8 and anything else byte for byte", () => {
  assert.equal(bytesToText(new TextEncoder().encode("Grüße")), "Grüße");
  assert.equal(bytesToText(new Uint8Array([0x43, 0x61, 0x66, 0xe9])), "Café");
  assert.equal(bytesToText(new Uint8Array([])), "");
});

Deno.test("parseParamValue() reads tokens, quoted strings and comments", () => {
  const v = parseParamValue(
    'text/plain (comment) ; charset="utf-8"; format=flowed;DelSp=yes ; name="a \\"b\\" c"',
  );
  assert.equal(v.value, "text/plain");
  assert.deepEqual(v.params.map((p) => [p.name, p.value]), [
    ["charset", "utf-8"],
    ["format", "flowed"],
    ["delsp", "yes"],
    ["name", 'a "b" c'],
  ]);
  assert.equal(v.params[2]!.rawName, "DelSp");
});

Deno.test("parseParamValue() decodes RFC 2231 extended values with charset and language", () => {
  const v = parseParamValue("attachment; filename*=iso-8859-1'de'Gr%FC%DFe.txt");
  assert.equal(v.value, "attachment");
  assert.deepEqual(v.params[0], {
    name: "filename",
    value: "Grüße.txt",
    rawName: "filename*",
    rawValue: "iso-8859-1'de'Gr%FC%DFe.txt",
  });
});

Deno.test("parseParamValue() joins RFC 2231 continuations in section order", () => {
  const ext = parseParamValue(
    "application/x; name*0*=utf-8''%D0%94%D0%BE; name*2=\".docx\"; name*1*=%D0%BA",
  );
  assert.equal(ext.params[0]!.value, "Док.docx");
  assert.equal(ext.params[0]!.rawName, "name*");
  assert.equal(ext.params[0]!.rawValue, "utf-8''%D0%94%D0%BE%D0%BA.docx");
  const plain = parseParamValue('a/b; n*1="second"; n*0="first "');
  assert.deepEqual(plain.params.map((p) => [p.rawName, p.value]), [["n", "first second"]]);
  // A gap in the sections stops the join.
  const gap = parseParamValue('a/b; n*0="one"; n*2="three"');
  assert.equal(gap.params[0]!.value, "one");
});

Deno.test("parseParamValue() prefers continuations over a plain value and keeps the first duplicate", () => {
  const v = parseParamValue('a/b; name="plain"; name*0="con"; name*1="tinued"; x=1; X=2');
  assert.deepEqual(v.params.map((p) => [p.name, p.value]), [["x", "1"], ["name", "continued"]]);
});

Deno.test("parseParamValue() lists RFC 2231 parameters after plain ones, by name (as Dovecot)", () => {
  const v = parseParamValue("attachment; z*=utf-8''z; filename*=utf-8''f; size=3; a=1");
  assert.deepEqual(v.params.map((p) => p.rawName), ["size", "a", "filename*", "z*"]);
});

Deno.test("parseParamValue() decodes RFC 2047 words inside quoted parameter values", () => {
  const v = parseParamValue('attachment; filename="=?utf-8?B?w5xiZXJzaWNodC54bHN4?="');
  assert.equal(v.params[0]!.value, "Übersicht.xlsx");
  assert.equal(v.params[0]!.rawValue, "=?utf-8?B?w5xiZXJzaWNodC54bHN4?=");
});

Deno.test("parseParamValue() survives malformed parameter lists", () => {
  for (const s of ["", ";", "a/b;;;", "a/b; =x", "a/b; x", 'a/b; x="unterminated', "a/b; x*=%"]) {
    parseParamValue(s);
  }
  assert.deepEqual(parseParamValue("a/b; x").params, []);
});

function mbox(a: Address): string {
  if (a.kind === "group") return `${a.name}:[${a.members.map(mbox).join(",")}]`;
  return `${a.name ?? "-"}|${a.route ?? "-"}|${a.local}|${a.domain}`;
}

Deno.test("parseAddressList() reads display names, quoted names and bare addresses", () => {
  const cases: [string, string[]][] = [
    ["alice@example.org", ["-|-|alice|example.org"]],
    ["Alice Example <alice@example.org>", ["Alice Example|-|alice|example.org"]],
    ['"Smith, John" <john@example.com>', ["Smith, John|-|john|example.com"]],
    ['"Joe Q. Public" <john.q.public@example.com>', ["Joe Q. Public|-|john.q.public|example.com"]],
    ["Joe Q. Public <jqp@example.com>", ["Joe Q. Public|-|jqp|example.com"]],
    ["a@x.test, b@y.test", ["-|-|a|x.test", "-|-|b|y.test"]],
    ["=?utf-8?q?Bj=C3=B6rn?= <b@x.se>", ["=?utf-8?q?Bj=C3=B6rn?=|-|b|x.se"]],
  ];
  for (const [input, want] of cases) assert.deepEqual(parseAddressList(input).map(mbox), want);
});

Deno.test("parseAddressList() takes a trailing comment as the name and ignores others", () => {
  assert.deepEqual(parseAddressList("john@example.com (John Doe)").map(mbox), [
    "John Doe|-|john|example.com",
  ]);
  assert.deepEqual(parseAddressList("(lead) Mary <mary@x.test> (trail)").map(mbox), [
    "Mary|-|mary|x.test",
  ]);
  assert.deepEqual(parseAddressList("joe (Joe Q) @ example.org").map(mbox), [
    "Joe Q|-|joe|example.org",
  ]);
});

Deno.test("parseAddressList() reads groups, empty groups and group members", () => {
  assert.deepEqual(parseAddressList("undisclosed-recipients:;").map(mbox), [
    "undisclosed-recipients:[]",
  ]);
  assert.deepEqual(
    parseAddressList('Friends: bob@x.test, "Carol C." <carol@y.test>;, dave@z.test').map(mbox),
    ["Friends:[-|-|bob|x.test,Carol C.|-|carol|y.test]", "-|-|dave|z.test"],
  );
});

Deno.test("parseAddressList() unquotes quoted local parts and reads source routes", () => {
  assert.deepEqual(parseAddressList('"with space"@x.test').map(mbox), [
    "-|-|with space|x.test",
  ]);
  assert.deepEqual(parseAddressList('"john.smith"@x.test').map(mbox), ["-|-|john.smith|x.test"]);
  assert.deepEqual(parseAddressList("R <@a.test,@b.test:user@c.test>").map(mbox), [
    "R|@a.test,@b.test|user|c.test",
  ]);
});

Deno.test("parseAddressList() marks missing mailboxes and domains as Dovecot does", () => {
  assert.deepEqual(parseAddressList("localuser, <nobody>, Name Only, @d.test").map(mbox), [
    "-|-|localuser|MISSING_DOMAIN",
    "-|-|nobody|MISSING_DOMAIN",
    "Name Only|-|MISSING_MAILBOX|MISSING_DOMAIN",
    "-|-|MISSING_MAILBOX|d.test",
  ]);
});

Deno.test("parseAddressList() never throws on malformed input", () => {
  const inputs = [
    "",
    ",,,",
    "<",
    ">",
    "a@",
    "@",
    '"unterminated',
    "(unterminated",
    "group: a@b",
    ":;",
    "<<a@b>>",
    "a@b@c",
    "[1.2.3.4]",
    "x@[1.2.3.4]",
    "\u0000\uffff",
  ];
  for (const s of inputs) parseAddressList(s);
  assert.deepEqual(parseAddressList("x@[1.2.3.4]").map(mbox), ["-|-|x|[1.2.3.4]"]);
});

Deno.test("ENVELOPE gives empty groups and groups with comments only their start and end entries", async () => {
  const { envelope } = await import("../../../../protocol/imap/mime/envelope.ts");
  const { parseMessage } = await import("../../../../protocol/imap/mime/parse.ts");
  const raw = new TextEncoder().encode(
    "From: a@b\r\nCc: group:;, group2: (foo) ;, g3: x@y, (c) z@w (d);, solo@example.org\r\n\r\n",
  );
  const env = envelope(parseMessage(raw));
  assert.ok(
    env.includes(
      '((NIL NIL "group" NIL)(NIL NIL NIL NIL)(NIL NIL "group2" NIL)(NIL NIL NIL NIL)' +
        '(NIL NIL "g3" NIL)(NIL NIL "x" "y")("d" NIL "z" "w")(NIL NIL NIL NIL)' +
        '(NIL NIL "solo" "example.org"))',
    ),
    env,
  );
});
