import assert from "node:assert/strict";
import { CommandReader } from "../../../protocol/imap/parser.ts";
import { ImapError } from "../../../protocol/imap/errors.ts";
import type { CommandPart } from "../../../protocol/imap/receiver.ts";
import {
  formatSequenceSet,
  resolveSequenceNumbers,
  selectFromSorted,
  type SequenceSet,
} from "../../../protocol/imap/sequence_set.ts";
import { decodeMutf7, encodeMutf7, Mutf7Error } from "../../../protocol/imap/mutf7.ts";

const enc = new TextEncoder();
const text = (s: string): CommandPart => ({ kind: "text", bytes: enc.encode(s) });
const lit = (s: string): CommandPart => ({ kind: "literal", bytes: enc.encode(s), binary: false });

function reader(...parts: (string | CommandPart)[]): CommandReader {
  return new CommandReader(parts.map((p) => typeof p === "string" ? text(p) : p), 4);
}

function bad(fn: () => unknown, message?: RegExp): void {
  assert.throws(
    fn,
    (e) => e instanceof ImapError && e.status === "BAD" && (!message || message.test(e.message)),
  );
}

Deno.test("CommandReader reads atoms, quoted strings with escapes and literals as astrings", () => {
  const r = reader('a1 LOGIN "al\\"i\\\\ce" ', lit("sécret"), " plain]");
  assert.equal(r.tag(), "a1");
  r.sp();
  assert.equal(r.keyword(), "LOGIN");
  r.sp();
  assert.equal(r.astring(), 'al"i\\ce');
  r.sp();
  assert.equal(r.astring(), "sécret");
  r.sp();
  assert.equal(r.astring(), "plain]");
  r.end();
});

Deno.test("CommandReader rejects malformed strings with BAD", () => {
  bad(() => reader('"abc').astring(), /Unterminated/);
  bad(() => reader('"a\\bc"').astring(), /escape/);
  bad(() => reader("(x").astring());
  bad(() => reader("").astring());
  bad(
    () => reader("", { kind: "literal", bytes: Uint8Array.of(0xff), binary: false }).astring(),
    /UTF-8/,
  );
  bad(
    () => reader("", { kind: "literal", bytes: Uint8Array.of(1), binary: true }).astring(),
    /Binary/,
  );
});

Deno.test("CommandReader caps the nesting depth of lists", () => {
  const nested = (r: CommandReader): unknown =>
    r.peek() === 0x28 ? r.list(() => nested(r)) : r.atom();
  assert.deepEqual(nested(reader("((a b) c)")), [["a", "b"], "c"]);
  bad(() => nested(reader("(((((a)))))")), /nested/);
});

Deno.test("CommandReader parses sequence sets with *, $ and reversed ranges", () => {
  const cases: [string, SequenceSet][] = [
    ["1", { kind: "ranges", ranges: [{ start: 1, end: 1 }] }],
    ["5:3,*", { kind: "ranges", ranges: [{ start: 5, end: 3 }, { start: "*", end: "*" }] }],
    ["2:*", { kind: "ranges", ranges: [{ start: 2, end: "*" }] }],
    ["$", { kind: "saved" }],
  ];
  for (const [input, want] of cases) {
    const r = reader(input);
    assert.deepEqual(r.sequenceSet(), want, input);
    r.end();
  }
  for (const input of ["0", "1:", ",1", "a", "4294967296", "1::2"]) {
    bad(() => {
      const r = reader(input);
      r.sequenceSet();
      r.end();
    });
  }
});

Deno.test("selectFromSorted() picks what a plain filter picks, for random sets and UIDs", () => {
  for (let round = 0; round < 500; round++) {
    const sorted: number[] = [];
    for (let u = 1, n = Math.floor(Math.random() * 40); sorted.length < n;) {
      u += 1 + Math.floor(Math.random() * 4);
      sorted.push(u);
    }
    const pick = () =>
      Math.random() < 0.15 ? "*" as const : 1 + Math.floor(Math.random() * (4 * sorted.length + 4));
    const ranges = Array.from({ length: 1 + Math.floor(Math.random() * 4) }, () => ({
      start: pick(),
      end: pick(),
    }));
    const last = sorted.at(-1) ?? 0;
    const covered = (u: number) =>
      ranges.some((r) => {
        const a = r.start === "*" ? last : r.start;
        const b = r.end === "*" ? last : r.end;
        return u >= Math.min(a, b) && u <= Math.max(a, b);
      });
    assert.deepEqual(
      selectFromSorted(ranges, sorted),
      sorted.filter(covered),
      JSON.stringify(ranges),
    );
  }
});

Deno.test("Sequence sets resolve against the numbers in use without expanding ranges", () => {
  assert.deepEqual(selectFromSorted([{ start: 1, end: 4294967295 }], [3, 9, 12]), [3, 9, 12]);
  assert.deepEqual(selectFromSorted([{ start: 20, end: "*" }], [3, 9, 12]), [12]);
  assert.deepEqual(selectFromSorted([{ start: 10, end: 4 }, { start: 3, end: 3 }], [3, 9, 12]), [
    3,
    9,
  ]);
  assert.deepEqual(selectFromSorted([{ start: "*", end: "*" }], []), []);
  assert.deepEqual(resolveSequenceNumbers([{ start: 3, end: 1 }, { start: 2, end: 2 }], 5), [
    1,
    2,
    3,
  ]);
  assert.equal(resolveSequenceNumbers([{ start: 6, end: 6 }], 5), null);
  assert.deepEqual(resolveSequenceNumbers([{ start: "*", end: "*" }], 0), []);
  assert.equal(resolveSequenceNumbers([{ start: 1, end: 1 }], 0), null);
  assert.equal(formatSequenceSet([1, 2, 3, 5, 7, 8]), "1:3,5,7:8");
});

Deno.test("CommandReader parses dates and date-times", () => {
  assert.equal(reader("1-Feb-2024").date(), Date.UTC(2024, 1, 1));
  assert.equal(reader('"01-feb-2024"').date(), Date.UTC(2024, 1, 1));
  bad(() => reader("31-Feb-2024").date());
  bad(() => reader("1-Foo-2024").date());
  assert.equal(reader('" 7-Mar-2023 10:00:00 +0200"').dateTime(), Date.UTC(2023, 2, 7, 8));
  bad(() => reader('"7-Mar-2023 25:00:00 +0000"').dateTime());
});

Deno.test("CommandReader reads flags and flag lists", () => {
  assert.deepEqual(reader("(\\Seen $Junk \\Flagged)").flagList(), ["\\Seen", "$Junk", "\\Flagged"]);
  assert.equal(reader("\\*").flag(true), "\\*");
  bad(() => reader("\\*").flag(false));
});

Deno.test("Modified UTF-7 round-trips mailbox names and rejects malformed ones", () => {
  const cases: [string, string][] = [
    ["INBOX", "INBOX"],
    ["Entwürfe", "Entw&APw-rfe"],
    ["A&B", "A&-B"],
    ["日本語", "&ZeVnLIqe-"],
    ["~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"],
    ["😀", "&2D3eAA-"],
  ];
  for (const [utf8, mutf7] of cases) {
    assert.equal(encodeMutf7(utf8), mutf7);
    assert.equal(decodeMutf7(mutf7), utf8);
  }
  for (const badName of ["&Jjo!", "&U,BTFw", "&AGE-", "é", "&2D0-"]) {
    assert.throws(() => decodeMutf7(badName), Mutf7Error, badName);
  }
});

Deno.test("compilePattern() matches LIST wildcards without exponential backtracking", async () => {
  const { compilePattern } = await import("../../../protocol/imap/commands/list.ts");
  const cases: [string, string, boolean][] = [
    ["*", "a/b/c", true],
    ["%", "a/b", false],
    ["%", "INBOX", true],
    ["a/%", "a/b", true],
    ["a/%", "a/b/c", false],
    ["a/*", "a/b/c", true],
    ["*c", "a/b/c", true],
    ["%/%/c", "a/b/c", true],
    ["a%b", "a/b", false],
    ["a*%b", "a/xb", true],
    ["Entw&APw-rfe", "Entw&APw-rfe", true],
    ["", "", true],
    ["x", "", false],
    ["😀/%", "😀/x", true],
    ["%😀", "a😀", true],
  ];
  for (const [pattern, name, want] of cases) {
    assert.equal(compilePattern(pattern).test(name), want, `${pattern} ~ ${name}`);
  }
  const hostile = compilePattern("*a".repeat(200) + "b");
  // A backtracking pattern would not finish; its time is in `deno task bench --only parse`.
  assert.equal(hostile.test("a".repeat(500)), false);
});
