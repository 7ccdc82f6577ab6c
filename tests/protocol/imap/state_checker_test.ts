/**
 * The multi-client state checker (tests/_support/state_checker.ts) over in-process sessions:
 * first that its model catches each kind of contradiction, then 20 clients sharing one INBOX
 * on the memory and the SQLite store, each for a bounded number of commands.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { MemoryMailStore } from "../../../mailstore/memory/mod.ts";
import type { MailStore } from "../../../mailstore/mail_store.ts";
import { openSqliteMailStore } from "../../../mailstore/sqlite/mod.ts";
import { MailboxModel, runStateChecker, sessionConnection } from "../../_support/state_checker.ts";

Deno.test("MailboxModel reports every kind of contradiction it is meant to catch", () => {
  const cases: [string[], RegExp][] = [
    [["* 3 EXISTS", "* 2 EXISTS"], /EXISTS went down/],
    [["* 2 EXISTS", "* 3 EXPUNGE"], /EXPUNGE of unknown message/],
    [["* 2 EXISTS", "* 3 FETCH (UID 9 FLAGS ())"], /FETCH of unknown message/],
    [["* 1 EXISTS", "* FLAGS (\\Seen)", "* 1 FETCH (UID 4 FLAGS ($new))"], /keyword \$new before/],
    [["* 1 EXISTS", "* 1 FETCH (UID 4)", "* 1 FETCH (UID 5)"], /UID 5 at a sequence number/],
    [["* 2 EXISTS", "* 2 FETCH (UID 4)", "* 1 FETCH (UID 7)"], /UIDs out of order/],
    [
      ["* 1 EXISTS", "* 1 FETCH (UID 4 MODSEQ (9))", "* 1 FETCH (UID 4 MODSEQ (8))"],
      /MODSEQ went down/,
    ],
    [["* 1 EXISTS", "* 1 FETCH (UID 4 MODSEQ (9))", "* OK [HIGHESTMODSEQ 5] x"], /HIGHESTMODSEQ/],
    [["* 1 EXISTS", "* 2 RECENT"], /RECENT above EXISTS/],
    [["* 1 EXISTS", "* SEARCH 1 2"], /SEARCH hit beyond/],
  ];
  for (const [lines, want] of cases) {
    const model = new MailboxModel("t");
    for (const line of lines) model.observe(line);
    assert.equal(model.errors.length, 1, `${lines.join(" | ")}: ${model.errors.join("; ")}`);
    assert.match(model.errors[0]!, want);
  }
  const fine = new MailboxModel("t");
  for (
    const line of [
      "* FLAGS (\\Seen $a)",
      "* 3 EXISTS",
      "* 1 RECENT",
      "* 2 FETCH (UID 5 FLAGS ($A \\Recent) MODSEQ (3))",
      "* 1 EXPUNGE",
      "* 1 FETCH (UID 5 MODSEQ (4))",
      "* 2 FETCH (UID 8)",
      "* OK [HIGHESTMODSEQ 4] x",
      "* SEARCH 1 2",
    ]
  ) fine.observe(line);
  assert.deepEqual(fine.errors, []);
});

for (const kind of ["memory", "sqlite"] as const) {
  Deno.test(`20 sessions on one mailbox announce no contradictory state (${kind} store)`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "postern-state-" });
    const store: MailStore = kind === "memory"
      ? new MemoryMailStore()
      : await openSqliteMailStore(join(dir, "state.db"));
    try {
      await store.createAccount("alice", null);
      const result = await runStateChecker(() => sessionConnection(store, "alice"), {
        clients: 20,
        durationMs: 2000,
        maxCommands: 120,
        seed: 11,
      });
      assert.deepEqual(result.errors, [], result.errors.slice(0, 20).join("\n"));
      assert.ok(result.commands > 20 * 20, `only ${result.commands} commands ran`);
    } finally {
      await store.close();
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("20 sessions that SELECT again with QRESYNC now and then announce no contradictory state", async () => {
  const store = new MemoryMailStore();
  try {
    await store.createAccount("alice", null);
    const result = await runStateChecker(() => sessionConnection(store, "alice"), {
      clients: 20,
      durationMs: 2000,
      maxCommands: 120,
      seed: 904,
      qresync: (i) => i % 2 === 1,
      reselect: true,
    });
    assert.deepEqual(result.errors, [], result.errors.slice(0, 20).join("\n"));
    assert.ok(result.commands > 20 * 20, `only ${result.commands} commands ran`);
  } finally {
    await store.close();
  }
});

Deno.test("MailboxModel applies VANISHED by UID, also to messages known only by number", () => {
  const model = new MailboxModel("t");
  // UIDs 10, ?, ?, 40, ?: VANISHED 20 must be one of the two unknown ones before 40.
  for (
    const line of ["* 5 EXISTS", "* 1 FETCH (UID 10)", "* 4 FETCH (UID 40)", "* VANISHED 10,20"]
  ) model.observe(line);
  model.observe("* 1 FETCH (UID 35)");
  assert.deepEqual(model.errors, []);
  assert.deepEqual(model.uids, [35, 40, undefined]);
  // Only one unknown message is left after 40: the second and third UIDs are unknown.
  model.observe("* VANISHED 41:43");
  assert.equal(model.errors.length, 2);
  assert.match(model.errors[0]!, /VANISHED of unknown UID 42/);
});
