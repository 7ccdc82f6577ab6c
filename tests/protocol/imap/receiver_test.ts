import assert from "node:assert/strict";
import {
  CommandReceiver,
  findLiteralMarker,
  type ReceiverEvent,
} from "../../../protocol/imap/receiver.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Renders events compactly: text parts as-is, literals as <...>, other events by kind. */
function render(ev: ReceiverEvent): string {
  switch (ev.kind) {
    case "command":
      return ev.command.parts.map((p) =>
        p.kind === "text" ? dec.decode(p.bytes) : `<${p.binary ? "~" : ""}${dec.decode(p.bytes)}>`
      ).join("");
    case "continue":
      return "+";
    case "reject":
      return `${ev.tag} ${ev.status}${ev.code ? ` [${ev.code}]` : ""} ${ev.text}`;
    case "fatal":
      return `BYE ${ev.text}`;
  }
}

function drain(r: CommandReceiver): string[] {
  const out: string[] = [];
  for (let i = 0; i < 10_000; i++) {
    const ev = r.next();
    if (ev === null) return out;
    out.push(render(ev));
  }
  throw new Error("receiver did not stop");
}

function feed(chunks: readonly string[], limit = 1024, limits = {}): string[] {
  const r = new CommandReceiver(() => limit, limits);
  const out: string[] = [];
  for (const c of chunks) {
    r.push(enc.encode(c));
    out.push(...drain(r));
  }
  return out;
}

const script = "A023 LOGOUT\r\n" +
  "a1 LOGIN {5}\r\nalice {6+}\r\nsecret\r\n" +
  'a2 SELECT "INBOX"\r\n' +
  "a3 APPEND INBOX ~{3}\r\nx\0y\r\n" +
  "a4 NOOP\n";
const expected = [
  "A023 LOGOUT",
  "+",
  "a1 LOGIN <alice> <secret>",
  'a2 SELECT "INBOX"',
  "+",
  "a3 APPEND INBOX <~x\0y>",
  "a4 NOOP",
];

Deno.test("CommandReceiver yields the same events for a command split in two fragments", () => {
  assert.deepEqual(feed(["A023 LO", "GOUT\r\n"]), ["A023 LOGOUT"]);
});

Deno.test("CommandReceiver yields the same events at every split point of a script", () => {
  assert.deepEqual(feed([script]), expected);
  for (let i = 1; i < script.length; i++) {
    assert.deepEqual(feed([script.slice(0, i), script.slice(i)]), expected, `split at ${i}`);
  }
});

Deno.test("CommandReceiver handles byte-at-a-time input", () => {
  assert.deepEqual(feed([...script]), expected);
});

Deno.test("CommandReceiver answers an oversized synchronizing literal with NO [TOOBIG] before it is sent", () => {
  assert.deepEqual(feed(["a1 APPEND INBOX {2000}\r\n", "a2 NOOP\r\n"]), [
    "a1 NO [TOOBIG] Literal too large",
    "a2 NOOP",
  ]);
});

Deno.test("CommandReceiver skips an oversized non-synchronizing literal and then refuses the command", () => {
  const big = "x".repeat(2000);
  assert.deepEqual(feed([`a1 APPEND INBOX {2000+}\r\n${big}`, " more\r\na2 NOOP\r\n"]), [
    "a1 NO [TOOBIG] Literal too large",
    "a2 NOOP",
  ]);
});

Deno.test("CommandReceiver closes when a non-synchronizing literal is too large even to skip", () => {
  assert.deepEqual(feed(["a1 APPEND INBOX {99999999+}\r\nxx"], 10, { maxLiteralSkip: 100 }), [
    "BYE Literal too large",
  ]);
});

Deno.test("CommandReceiver refuses an overlong line with BAD and resynchronises", () => {
  const long = "a1 NOOP " + "x".repeat(300) + "\r\n";
  assert.deepEqual(feed([long, "a2 NOOP\r\n"], 1024, { maxLineLength: 100 }), [
    "a1 BAD Command line too long",
    "a2 NOOP",
  ]);
});

Deno.test("CommandReceiver skips the literal announced at the end of an overlong line", () => {
  const long = "a1 NOOP " + "x".repeat(300) + " {3+}\r\nabc\r\n";
  assert.deepEqual(feed([long, "a2 NOOP\r\n"], 1024, { maxLineLength: 100 }), [
    "a1 BAD Command line too long",
    "a2 NOOP",
  ]);
});

Deno.test("CommandReceiver keeps memory bounded for an endless line", () => {
  const r = new CommandReceiver(() => 10, { maxLineLength: 100 });
  const chunk = enc.encode("y".repeat(10_000));
  for (let i = 0; i < 100; i++) {
    r.push(chunk);
    assert.deepEqual(drain(r), []);
  }
  r.push(enc.encode("\r\n"));
  assert.deepEqual(drain(r), ["* BAD Command line too long"]);
});

Deno.test("CommandReceiver limits the number of literals in one command", () => {
  const cmd = "a1 X " + "{1+}\r\nx ".repeat(5) + "\r\n";
  assert.deepEqual(feed([cmd], 10, { maxLiteralsPerCommand: 3 }), ["a1 BAD Too many literals"]);
});

Deno.test("CommandReceiver asks for the literal limit with the command name", () => {
  const names: string[] = [];
  const r = new CommandReceiver((name) => {
    names.push(name);
    return 100;
  });
  r.push(enc.encode("a UID fetch {1}\r\nz\r\n"));
  drain(r);
  r.push(enc.encode("x LOGIN {1}\r\n"));
  drain(r);
  assert.deepEqual(names, ["UID FETCH", "LOGIN"]);
});

Deno.test("findLiteralMarker() recognises the literal forms and nothing else", () => {
  const cases: [string, unknown][] = [
    ["a {5}", { at: 2, size: 5, synchronizing: true, binary: false }],
    ["a {5+}", { at: 2, size: 5, synchronizing: false, binary: false }],
    ["a ~{12}", { at: 2, size: 12, synchronizing: true, binary: true }],
    ["a {}", null],
    ["a {5", null],
    ["a 5}", null],
    ["a {+}", null],
    ["}", null],
  ];
  for (const [line, want] of cases) {
    assert.deepEqual(findLiteralMarker(enc.encode(line)), want, line);
  }
  assert.equal(
    findLiteralMarker(enc.encode("a {99999999999999999999}"))?.size,
    Number.MAX_SAFE_INTEGER,
  );
});

Deno.test("CommandReceiver reads limits given as a function again as each command starts", () => {
  let maxLiteralsPerCommand = 2;
  const r = new CommandReceiver(() => 10, () => ({ maxLiteralsPerCommand }));
  const cmd = (tag: string) => `${tag} X {1+}\r\na {1+}\r\nb {1+}\r\nc\r\n`;
  r.push(enc.encode(cmd("a1")));
  assert.deepEqual(drain(r), ["a1 BAD Too many literals"]);
  maxLiteralsPerCommand = 3;
  r.push(enc.encode(cmd("a2")));
  assert.deepEqual(drain(r), ["a2 X <a> <b> <c>"]);
});

Deno.test("CommandReceiver closes on a flood of literals far beyond the limit", () => {
  const cmd = "a1 X " + "{1+}\r\nx ".repeat(13) + "\r\n";
  assert.deepEqual(feed([cmd], 10, { maxLiteralsPerCommand: 3 }), ["BYE Too many literals"]);
});
