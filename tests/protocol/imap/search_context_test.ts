/** CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267, Section 4): PARTIAL, CONTEXT, UPDATE, CANCELUPDATE. */
import assert from "node:assert/strict";
import { append, message, newStore, TestClient } from "./_harness.ts";

/** Two sessions of alice on one store; the first has INBOX selected with messages a, c, b. */
async function pair(): Promise<[TestClient, TestClient]> {
  const store = await newStore();
  const a = new TestClient(store);
  const b = new TestClient(store);
  await a.login();
  await b.login();
  for (const s of ["Cherry", "Apple", "Banana"]) await append(b, "INBOX", message(s));
  await a.cmd("S SELECT INBOX");
  await b.cmd("S SELECT INBOX");
  return [a, b];
}

Deno.test("CONTEXT=SEARCH and CONTEXT=SORT are advertised (RFC 5267, Section 4)", async () => {
  const [a] = await pair();
  assert.match((await a.cmd("C CAPABILITY"))[0]!, / ESORT CONTEXT=SEARCH CONTEXT=SORT /);
});

Deno.test("PARTIAL returns a window of the result (RFC 5267, Section 4.4)", async () => {
  const [a] = await pair();
  assert.deepEqual(await a.cmd("A SEARCH RETURN (PARTIAL 2:3) ALL"), [
    '* ESEARCH (TAG "A") PARTIAL (2:3 2:3)',
    "A OK SEARCH completed",
  ]);
  assert.deepEqual(await a.cmd("B UID SEARCH RETURN (PARTIAL 3:2 COUNT) ALL"), [
    '* ESEARCH (TAG "B") UID PARTIAL (2:3 2:3) COUNT 3',
    "B OK UID SEARCH completed",
  ]);
  assert.deepEqual(await a.cmd("C SEARCH RETURN (PARTIAL 5:9) ALL"), [
    '* ESEARCH (TAG "C") PARTIAL (5:9 NIL)',
    "C OK SEARCH completed",
  ]);
  // Subjects sort Apple (2), Banana (3), Cherry (1).
  assert.deepEqual(await a.cmd("D SORT RETURN (PARTIAL 1:2) (SUBJECT) UTF-8 ALL"), [
    '* ESEARCH (TAG "D") PARTIAL (1:2 2:3)',
    "D OK SORT completed",
  ]);
  assert.deepEqual(await a.cmd("E UID SORT RETURN (PARTIAL 2:3) (REVERSE SUBJECT) UTF-8 ALL"), [
    '* ESEARCH (TAG "E") UID PARTIAL (2:3 3,2)',
    "E OK UID SORT completed",
  ]);
  for (const bad of ["PARTIAL 0:2", "PARTIAL 1:2 ALL", "PARTIAL 2", "PARTIAL -1:-2"]) {
    assert.match((await a.cmd(`F SEARCH RETURN (${bad}) ALL`)).at(-1)!, /^F BAD /, bad);
  }
});

Deno.test("CONTEXT alone implies ALL; UPDATE alone returns no data (RFC 5267, 4.2 and 4.3)", async () => {
  const [a] = await pair();
  assert.deepEqual(await a.cmd("A SEARCH RETURN (CONTEXT) ALL"), [
    '* ESEARCH (TAG "A") ALL 1:3',
    "A OK SEARCH completed",
  ]);
  assert.deepEqual(await a.cmd("B UID SEARCH RETURN (UPDATE) ALL"), [
    '* ESEARCH (TAG "B") UID',
    "B OK UID SEARCH completed",
  ]);
  assert.deepEqual(await a.cmd("C UID SORT RETURN (CONTEXT UPDATE COUNT) (SUBJECT) UTF-8 ALL"), [
    '* ESEARCH (TAG "C") UID COUNT 3',
    "C OK UID SORT completed",
  ]);
});

Deno.test("UPDATE reports REMOVEFROM and ADDTO as the mailbox changes (RFC 5267, Section 4.3)", async () => {
  const [a, b] = await pair();
  await a.cmd("A UID SEARCH RETURN (UPDATE) UNSEEN");
  await a.cmd("B UID SORT RETURN (UPDATE) (SUBJECT) UTF-8 UNDELETED");
  await b.cmd("s STORE 1 +FLAGS (\\Seen)");
  await append(b, "INBOX", message("Avocado"));
  await b.cmd("d STORE 3 +FLAGS (\\Deleted)");
  await b.cmd("x EXPUNGE");
  const noop = await a.cmd("N NOOP");
  assert.deepEqual(noop.filter((l) => l.startsWith("* ESEARCH")), [
    // SEARCH results carry position 0; the sorted one names positions: Banana (UID 3) was
    // second of Apple, Banana, Cherry, and Avocado (UID 4) now is.
    '* ESEARCH (TAG "A") UID REMOVEFROM (0 1,3) ADDTO (0 4)',
    '* ESEARCH (TAG "B") UID REMOVEFROM (2 3) ADDTO (2 4)',
  ]);
  assert.equal(noop.at(-1), "N OK NOOP completed");
  // Nothing changed: nothing to report.
  assert.deepEqual(await a.cmd("N2 NOOP"), ["N2 OK NOOP completed"]);
  // No updates while expunges may not be reported (FETCH, STORE, SEARCH).
  await append(b, "INBOX", message("Zucchini"));
  assert.ok((await a.cmd("F FETCH 1 (FLAGS)")).every((l) => !l.includes("ESEARCH")));
  assert.deepEqual((await a.cmd("N3 NOOP")).filter((l) => l.startsWith("* ESEARCH")), [
    '* ESEARCH (TAG "A") UID ADDTO (0 5)',
    '* ESEARCH (TAG "B") UID ADDTO (4 5)',
  ]);
});

Deno.test("CANCELUPDATE ends updates; an unknown tag is NO; SELECT ends every context (RFC 5267, 4.3)", async () => {
  const [a, b] = await pair();
  await a.cmd("A UID SEARCH RETURN (UPDATE) ALL");
  await a.cmd("B UID SEARCH RETURN (UPDATE) ALL");
  assert.deepEqual(await a.cmd('C CANCELUPDATE "A"'), ["C OK CANCELUPDATE completed"]);
  assert.match((await a.cmd('D CANCELUPDATE "A"')).at(-1)!, /^D NO /);
  assert.match((await a.cmd("D2 CANCELUPDATE")).at(-1)!, /^D2 BAD /);
  await append(b, "INBOX", message("New"));
  assert.deepEqual((await a.cmd("N NOOP")).filter((l) => l.startsWith("* ESEARCH")), [
    '* ESEARCH (TAG "B") UID ADDTO (0 4)',
  ]);
  await a.cmd("S2 SELECT INBOX");
  await append(b, "INBOX", message("Newer"));
  assert.ok((await a.cmd("N2 NOOP")).every((l) => !l.includes("ESEARCH")));
  assert.match((await a.cmd('E CANCELUPDATE "B"')).at(-1)!, /^E NO /);
});

Deno.test("sequence-number contexts: REMOVEFROM goes before the EXPUNGE that renumbers, ADDTO after EXISTS", async () => {
  const [a, b] = await pair();
  await a.cmd("A SEARCH RETURN (UPDATE) UNSEEN");
  await b.cmd("d STORE 1 +FLAGS (\\Deleted)");
  await b.cmd("x EXPUNGE");
  await b.cmd("s STORE 1 +FLAGS (\\Seen)");
  await append(b, "INBOX", message("New"));
  assert.deepEqual(await a.cmd("N NOOP"), [
    '* ESEARCH (TAG "A") REMOVEFROM (0 1:2)',
    "* 1 EXPUNGE",
    "* 3 EXISTS",
    "* 2 RECENT",
    "* 1 FETCH (UID 2 FLAGS (\\Seen \\Recent))",
    '* ESEARCH (TAG "A") ADDTO (0 3)',
    "N OK NOOP completed",
  ]);
});

Deno.test("a session keeps at most 8 contexts; more get NOUPDATE (RFC 5267, Section 4.3)", async () => {
  const [a] = await pair();
  for (let i = 0; i < 8; i++) {
    assert.equal((await a.cmd(`T${i} SEARCH RETURN (UPDATE) ALL`)).length, 2);
  }
  assert.deepEqual(await a.cmd("T8 SEARCH RETURN (UPDATE COUNT) ALL"), [
    '* NO [NOUPDATE "T8"] Too many or too large kept results',
    '* ESEARCH (TAG "T8") COUNT 3',
    "T8 OK SEARCH completed",
  ]);
  // The same tag again replaces its context.
  assert.equal((await a.cmd("T0 SEARCH RETURN (UPDATE) ALL")).length, 2);
});

/** Applies `ADDTO`/`REMOVEFROM` pairs to a kept result, as a client would (RFC 5267, 4.3). */
function applyUpdates(result: number[], line: string, sorted: boolean): void {
  for (const part of line.matchAll(/(ADDTO|REMOVEFROM) \(([^)]*)\)/g)) {
    const words = part[2]!.split(" ");
    for (let i = 0; i < words.length; i += 2) {
      const position = Number(words[i]);
      const numbers = words[i + 1]!.split(",").flatMap((r) => {
        const [a, b] = r.split(":").map(Number);
        if (b === undefined) return [a!];
        const out: number[] = [];
        for (let n = a!; n <= b; n++) out.push(n);
        return out;
      });
      if (part[1] === "REMOVEFROM") {
        for (const n of numbers) {
          const at = result.indexOf(n);
          assert.ok(at >= 0, `${n} removed but not in the result`);
          if (sorted) assert.equal(at + 1, position, line);
          result.splice(at, 1);
        }
      } else {
        for (const [k, n] of numbers.entries()) {
          assert.ok(!result.includes(n), `${n} added twice`);
          if (sorted) result.splice(position - 1 + k, 0, n);
          else result.push(n);
        }
      }
    }
  }
  if (!sorted) result.sort((a, b) => a - b);
}

Deno.test("20 sessions keep SEARCH and SORT results up to date while another one changes the mailbox", async () => {
  const store = await newStore();
  const writer = new TestClient(store);
  await writer.login();
  const words = ["kiwi", "apple", "fig", "lime", "date", "pear", "plum", "yuzu"];
  for (let i = 0; i < 12; i++) await append(writer, "INBOX", message(`${words[i % 8]} ${i}`));
  await writer.cmd("W SELECT INBOX");
  const readers = await Promise.all(Array.from({ length: 20 }, async () => {
    const c = new TestClient(store);
    await c.login();
    await c.cmd("S SELECT INBOX");
    const unseen = (await c.cmd("A UID SEARCH RETURN (UPDATE ALL) UNSEEN"))[0]!;
    const sorted = (await c.cmd("B UID SORT RETURN (UPDATE ALL) (SUBJECT) UTF-8 UNDELETED"))[0]!;
    const all = (line: string) => {
      const m = / ALL (\S+)$/.exec(line);
      return m === null ? [] : m[1]!.split(",").flatMap((r) => {
        const [a, b] = r.split(":").map(Number);
        if (b === undefined) return [a!];
        const out: number[] = [];
        // Sorted ALL sets make ranges of ascending runs only (see sort.ts).
        for (let n = a!; n <= b; n++) out.push(n);
        return out;
      });
    };
    return { c, unseen: all(unseen), sorted: all(sorted) };
  }));
  for (let round = 0; round < 10; round++) {
    await append(writer, "INBOX", message(`${words[(round * 3) % 8]} r${round}`));
    await writer.cmd(`F${round} UID STORE ${round + 1} +FLAGS (\\Seen)`);
    await writer.cmd(`D${round} UID STORE ${round + 3} +FLAGS (\\Deleted)`);
    if (round % 3 === 2) await writer.cmd(`X${round} EXPUNGE`);
    await Promise.all(readers.map(async (r, i) => {
      if ((round + i) % 2 === 0) return;
      for (const line of await r.c.cmd(`N${round} NOOP`)) {
        if (line.startsWith('* ESEARCH (TAG "A")')) applyUpdates(r.unseen, line, false);
        if (line.startsWith('* ESEARCH (TAG "B")')) applyUpdates(r.sorted, line, true);
      }
    }));
  }
  for (const r of readers) {
    for (const line of await r.c.cmd("N NOOP")) {
      if (line.startsWith('* ESEARCH (TAG "A")')) applyUpdates(r.unseen, line, false);
      if (line.startsWith('* ESEARCH (TAG "B")')) applyUpdates(r.sorted, line, true);
    }
    const fresh = (await r.c.cmd("F UID SEARCH UNSEEN"))[0]!.split(" ").slice(2).map(Number);
    assert.deepEqual(r.unseen, fresh);
    const order = (await r.c.cmd("G UID SORT (SUBJECT) UTF-8 UNDELETED"))[0]!.split(" ").slice(2)
      .map(Number);
    assert.deepEqual(r.sorted, order);
  }
});

Deno.test("UPDATE notifications arrive during IDLE (RFC 5267, Section 4.3)", async () => {
  const [a, b] = await pair();
  await a.cmd("A UID SEARCH RETURN (UPDATE) UNSEEN");
  assert.deepEqual(await a.cmd("i IDLE"), ["+ idling"]);
  await append(b, "INBOX", message("Durian"));
  await a.session.receive(new Uint8Array(0));
  assert.equal(a.take(), '* 4 EXISTS\r\n* ESEARCH (TAG "A") UID ADDTO (0 4)\r\n');
  await b.cmd("s STORE 4 +FLAGS (\\Seen)");
  await a.session.receive(new Uint8Array(0));
  assert.equal(
    a.take(),
    '* 4 FETCH (UID 4 FLAGS (\\Seen))\r\n* ESEARCH (TAG "A") UID REMOVEFROM (0 4)\r\n',
  );
  assert.deepEqual(await a.cmd("DONE"), ["i OK IDLE terminated"]);
});

Deno.test("hostile arguments of the new extensions get BAD or NO, never a server error", async () => {
  const [a] = await pair();
  const lines = [
    "SEARCH RETURN (PARTIAL 1:4294967296) ALL",
    "SEARCH RETURN (PARTIAL 4294967295:1) ALL",
    "SEARCH RETURN (PARTIAL 1:2 PARTIAL 3:4) ALL",
    "SEARCH RETURN (PARTIAL) ALL",
    "SEARCH RETURN (UPDATE UPDATE CONTEXT CONTEXT) ALL",
    "SORT RETURN (PARTIAL 1:2 ALL) (SUBJECT) UTF-8 ALL",
    "CANCELUPDATE",
    "CANCELUPDATE tag",
    `CANCELUPDATE ${'"x" '.repeat(150).trim()}`,
    "FETCH 1 (PREVIEW (LAZY LAZY))",
    "FETCH 1 (PREVIEW (",
    "FETCH 1 (PREVIEW (LAZY)",
    "FETCH 1 PREVIEW (LAZY) EMAILID",
    `SEARCH EMAILID ${"M".repeat(300)}`,
    'SEARCH THREADID "T1"',
    "SEARCH THREADID",
    "SEARCH SAVEDSINCE 31-Feb-2024",
    "SEARCH SAVEDBEFORE",
    "STATUS INBOX (MAILBOXID MAILBOXID)",
  ];
  for (const [i, line] of lines.entries()) {
    const out = await a.cmd(`h${i} ${line}`);
    const tagged = out.at(-1) ?? "";
    assert.match(tagged, new RegExp(`^h${i} (OK|NO|BAD) `), line);
    assert.doesNotMatch(tagged, /SERVERBUG/, line);
  }
  assert.deepEqual(a.errors, []);
  assert.deepEqual(await a.cmd("n NOOP"), ["n OK NOOP completed"]);
});

Deno.test("a kept result over sequence numbers is recomputed whole: an EXPUNGE moves untouched messages", async () => {
  const [a, b] = await pair();
  assert.deepEqual(await a.cmd("A SEARCH RETURN (UPDATE ALL) 2:*"), [
    '* ESEARCH (TAG "A") ALL 2:3',
    "A OK SEARCH completed",
  ]);
  await b.cmd("d STORE 1 +FLAGS (\\Deleted)");
  await b.cmd("x EXPUNGE");
  // UID 2 was untouched, but it is message 1 now, outside 2:*.
  assert.deepEqual(await a.cmd("N NOOP"), [
    "* 1 EXPUNGE",
    "* 2 RECENT",
    '* ESEARCH (TAG "A") REMOVEFROM (0 1)',
    "N OK NOOP completed",
  ]);
});

Deno.test("kept results are capped at 250,000 UIDs per session; beyond, NOUPDATE", async () => {
  const store = await newStore();
  const inbox = (await store.getMailbox(1, "INBOX"))!;
  const raw = new TextEncoder().encode("Subject: x\r\n\r\nx\r\n");
  await store.appendBatch(inbox.id, Array.from({ length: 125_001 }, () => ({ raw })));
  const a = new TestClient(store);
  await a.login();
  await a.cmd("S SELECT INBOX");
  assert.deepEqual(await a.cmd("A UID SEARCH RETURN (UPDATE COUNT) ALL"), [
    '* ESEARCH (TAG "A") UID COUNT 125001',
    "A OK UID SEARCH completed",
  ]);
  assert.deepEqual(await a.cmd("B UID SEARCH RETURN (UPDATE COUNT) ALL"), [
    '* NO [NOUPDATE "B"] Too many or too large kept results',
    '* ESEARCH (TAG "B") UID COUNT 125001',
    "B OK UID SEARCH completed",
  ]);
});
