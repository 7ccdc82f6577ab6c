import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import type { ListingColumns, MessageMeta } from "../../mailstore/mail_store.ts";
import {
  DATA_FORMAT,
  KEYS_FORMAT,
  openSnapshot,
  packListing,
  PART_MESSAGES,
  readColumns,
  unpackListing,
  unpackRange,
  withData,
} from "../../mailstore/sqlite/_listing_snapshot.ts";
import {
  allocateSharedSync,
  openSqliteMailStore,
  type SqliteMailStore,
} from "../../mailstore/sqlite/mod.ts";
import { dropTurnStart, useTurnStart } from "../../protocol/event_loop.ts";
import { xorshift32 } from "../_support/rng.ts";

const enc = new TextEncoder();

const frozen = new Map<string, readonly string[]>();
/** The frozen flag array of a stored flag text, one per text (as the store shares them). */
function flagList(stored: string): readonly string[] {
  let flags = frozen.get(stored);
  if (flags === undefined) {
    flags = Object.freeze(stored === "" ? [] : stored.split(" "));
    frozen.set(stored, flags);
  }
  return flags;
}

function plain(list: readonly MessageMeta[]) {
  return list.map((m) => ({ ...m, flags: [...m.flags] }));
}

/**
 * Asserts two listings equal, reporting the count or the first message that differs: a diff of
 * arrays of thousands of objects (node:assert's) takes minutes and gigabytes.
 */
function sameListing(
  actual: readonly MessageMeta[] | ReturnType<typeof plain>,
  expected: readonly MessageMeta[] | ReturnType<typeof plain>,
  what = "",
): void {
  assert.equal(actual.length, expected.length, `${what} count`);
  for (let i = 0; i < actual.length; i++) {
    const a = JSON.stringify(plain([actual[i]!])[0]);
    const e = JSON.stringify(plain([expected[i]!])[0]);
    if (a !== e) assert.fail(`${what} message ${i}: ${a} instead of ${e}`);
  }
}

function sample(n: number): MessageMeta[] {
  const kinds = [[], ["\\Seen"], ["\\Seen", "$Label"], ["\\Flagged"]];
  return Array.from({ length: n }, (_, i) => ({
    uid: 3 * i + 1,
    modseq: i === 0 ? Number.MAX_SAFE_INTEGER : i + 2,
    // A copy of the same flags (another array) shares the table entry.
    flags: i % 5 === 4 ? [...kinds[1]!] : kinds[i % 4]!,
    internalDate: i === 1 ? -86_400_000 : 1_700_000_000_000 + i,
    size: i === 2 ? 2 ** 40 : 100 + i,
  }));
}

Deno.test("a packed listing unpacks to the same messages, whole or a range at a time", () => {
  const metas = sample(1000);
  metas[0] = { ...metas[0]!, uid: 1 };
  metas[999] = { ...metas[999]!, uid: 0xffff_ffff };
  const { flags, keys, data } = packListing(metas);
  assert.equal(keys.byteLength, 8 + 8 * 1000);
  assert.equal(data.byteLength, 8 + 24 * 1000);
  assert.deepEqual(JSON.parse(flags), ["", "\\Seen", "\\Seen $Label", "\\Flagged"]);
  const whole = unpackListing(flags, keys, data, flagList)!;
  assert.deepEqual(plain(whole), plain(metas));
  // Messages with the same flags share one frozen array.
  assert.equal(whole[1]!.flags, whole[4]!.flags);
  assert.ok(Object.isFrozen(whole[1]!.flags));
  const reader = openSnapshot(flags, keys, data, flagList)!;
  const out: MessageMeta[] = [];
  for (const [from, to] of [[0, 1], [1, 333], [333, 333], [333, 1000]]) {
    assert.ok(unpackRange(reader, from!, to!, out));
  }
  assert.deepEqual(plain(out), plain(metas));
  // Views into larger buffers at odd offsets read the same.
  const shifted = (bytes: Uint8Array) => {
    const out = new Uint8Array(bytes.byteLength + 3);
    out.set(bytes, 3);
    return out.subarray(3);
  };
  assert.deepEqual(
    plain(unpackListing(flags, shifted(keys), shifted(data), flagList)!),
    plain(metas),
  );
  // Keys at an offset the 32-bit columns cannot view are read from a copy.
  const uids: number[] = [];
  const lists: (readonly string[])[] = [];
  assert.ok(readColumns(openSnapshot(flags, shifted(keys), null, flagList)!, uids, lists, 0));
  assert.deepEqual(uids, metas.map((m) => m.uid));
  assert.deepEqual(lists, whole.map((m) => m.flags));
  // Keys alone, the data after.
  const keysOnly = openSnapshot(flags, keys, null, flagList)!;
  assert.equal(unpackRange(keysOnly, 0, 1, []), false);
  assert.equal(withData(keysOnly, data.subarray(0, 8 + 24 * 999)), null);
  const later: MessageMeta[] = [];
  assert.ok(unpackRange(withData(keysOnly, data)!, 0, 1000, later));
  assert.deepEqual(plain(later), plain(metas));
  const empty = packListing([]);
  assert.deepEqual(unpackListing(empty.flags, empty.keys, empty.data, flagList), []);
});

Deno.test("a malformed snapshot unpacks to null, never throws", () => {
  const metas = sample(10);
  const { flags, keys, data } = packListing(metas);
  const editKeys = (set: (v: DataView) => void) => {
    const copy = keys.slice();
    set(new DataView(copy.buffer));
    return unpackListing(flags, copy, data, flagList);
  };
  const editData = (set: (v: DataView) => void) => {
    const copy = data.slice();
    set(new DataView(copy.buffer));
    return unpackListing(flags, keys, copy, flagList);
  };
  const uidAt = 8;
  const flagAt = uidAt + 4 * 10;
  const cases: [string, MessageMeta[] | null][] = [
    ["not text", unpackListing(7, keys, data, flagList)],
    ["keys not bytes", unpackListing(flags, [1, 2], data, flagList)],
    ["data not bytes", unpackListing(flags, keys, [1, 2], flagList)],
    ["no data", unpackListing(flags, keys, null, flagList)],
    ["keys shorter than a header", unpackListing(flags, keys.subarray(0, 7), data, flagList)],
    ["keys truncated", unpackListing(flags, keys.subarray(0, keys.length - 1), data, flagList)],
    ["data truncated", unpackListing(flags, keys, data.subarray(0, data.length - 1), flagList)],
    ["keys longer", unpackListing(flags, new Uint8Array([...keys, 0]), data, flagList)],
    ["data longer", unpackListing(flags, keys, new Uint8Array([...data, 0]), flagList)],
    ["keys and data swapped", unpackListing(flags, data, keys, flagList)],
    ["another keys format", editKeys((v) => v.setUint32(0, KEYS_FORMAT + 1, true))],
    ["another data format", editData((v) => v.setUint32(0, DATA_FORMAT + 1, true))],
    ["a keys count that differs", editKeys((v) => v.setUint32(4, 9, true))],
    ["a data count that differs", editData((v) => v.setUint32(4, 9, true))],
    ["a count beyond a part", editKeys((v) => v.setUint32(4, PART_MESSAGES + 1, true))],
    ["flags not JSON", unpackListing("[", keys, data, flagList)],
    ["flags not an array", unpackListing('{"a":1}', keys, data, flagList)],
    ["a flag entry not text", unpackListing('["", 3]', keys, data, flagList)],
    [
      "more flag entries than messages",
      unpackListing(JSON.stringify(Array(11).fill("")), keys, data, flagList),
    ],
    ["a flag index beyond the table", editKeys((v) => v.setUint32(flagAt + 4 * 3, 4, true))],
    ["UID 0", editKeys((v) => v.setUint32(uidAt, 0, true))],
    ["UIDs not ascending", editKeys((v) => v.setUint32(uidAt + 4 * 5, 4, true))],
    ["MODSEQ 0", editData((v) => v.setFloat64(8 + 8 * 2, 0, true))],
    ["MODSEQ not a number", editData((v) => v.setFloat64(8 + 8 * 2, NaN, true))],
    ["MODSEQ beyond 2^53", editData((v) => v.setFloat64(8, 2 ** 53, true))],
    ["a date not an integer", editData((v) => v.setFloat64(8 + 8 * 10, 0.5, true))],
    ["a negative size", editData((v) => v.setFloat64(8 + 16 * 10 + 8, -1, true))],
    ["an infinite size", editData((v) => v.setFloat64(8 + 16 * 10 + 8, Infinity, true))],
  ];
  for (const [what, result] of cases) assert.equal(result, null, what);
  // A range that starts past a bad message still checks its order against the one before.
  const copy = keys.slice();
  new DataView(copy.buffer).setUint32(uidAt + 4 * 6, 2, true);
  const reader = openSnapshot(flags, copy, data, flagList)!;
  assert.equal(unpackRange(reader, 6, 10, []), false);
  // A part's first message must lie above the UID it follows.
  const part = openSnapshot(flags, keys, data, flagList)!;
  assert.equal(unpackRange(part, 0, 10, [], 1), false);
  assert.equal(unpackRange(part, 0, 10, [], 0), true);
});

Deno.test("a part's UID and flag columns are read from its keys, or not at all", () => {
  const metas = sample(10);
  const { flags, keys } = packListing(metas);
  const uidAt = 8;
  const flagAt = uidAt + 4 * 10;
  const columns = (bytes: Uint8Array, at = 0, after = 0) => {
    const uids: number[] = [7, 7];
    const lists: (readonly string[])[] = [];
    const ok = readColumns(openSnapshot(flags, bytes, null, flagList)!, uids, lists, at, after);
    return { ok, uids, lists };
  };
  // Written from `at` on, the entries before it kept.
  const read = columns(keys, 2);
  assert.ok(read.ok);
  assert.deepEqual(read.uids, [7, 7, ...metas.map((m) => m.uid)]);
  assert.deepEqual(read.lists.slice(2), metas.map((m) => flagList(m.flags.join(" "))));
  const edited = (set: (v: DataView) => void) => {
    const copy = keys.slice();
    set(new DataView(copy.buffer));
    return columns(copy).ok;
  };
  assert.equal(columns(keys, 0, metas[0]!.uid).ok, false, "not above the UID before");
  assert.equal(edited((v) => v.setUint32(uidAt + 4 * 5, 4, true)), false, "UIDs not ascending");
  assert.equal(edited((v) => v.setUint32(flagAt + 4 * 3, 4, true)), false, "flag index");
});

/** Asserts that columns hold exactly the listing `truth`: UIDs, flags and their lists. */
function sameColumns(columns: ListingColumns, truth: ReturnType<typeof plain>, what = ""): void {
  assert.equal(columns.uids.length, truth.length, `${what} count`);
  assert.equal(columns.flags.length, truth.length, `${what} flags`);
  const sets = new Set(columns.sets.map((f) => f.join(" ")));
  const used = new Set<string>();
  let floor = 0;
  for (let i = 0; i < truth.length; i++) {
    const t = truth[i]!;
    const text = columns.flags[i]!.join(" ");
    if (columns.uids[i] !== t.uid || text !== t.flags.join(" ")) {
      assert.fail(
        `${what} message ${i}: ${columns.uids[i]} ${text} instead of ${t.uid} ${t.flags}`,
      );
    }
    assert.ok(Object.isFrozen(columns.flags[i]));
    used.add(text);
    floor = Math.max(floor, t.modseq);
  }
  assert.deepEqual([...sets].sort(), [...used].sort(), `${what} flag lists`);
  assert.ok(columns.floor >= floor, `${what} floor ${columns.floor} below ${floor}`);
}

/** A file store with alice's INBOX holding `n` messages (every third unseen). */
async function filled(path: string, n: number) {
  // Filled by a store that caches nothing (so follows nothing and stores no snapshot), then
  // opened again: the mailbox's first listing is a cold one.
  const loader = await openSqliteMailStore(path, { listingCacheMessages: 0 });
  const account = await loader.createAccount("alice", null);
  const inbox = (await loader.getMailbox(account.id, "INBOX"))!;
  const raw = enc.encode("Subject: s\r\n\r\nx\r\n");
  for (let i = 0; i < n; i += 1000) {
    const batch = Array.from({ length: Math.min(1000, n - i) }, (_, k) => ({
      raw,
      flags: (i + k) % 3 === 0 ? [] : ["\\Seen"],
    }));
    await loader.appendBatch(inbox.id, batch);
  }
  await loader.close();
  const store = await openSqliteMailStore(path, { startWorkers: true });
  return { store, account, inbox };
}

/** The stored snapshot row of a mailbox, or undefined. */
function snapshotRow(path: string, mailboxId: number) {
  const db = new DatabaseSync(path);
  try {
    return db.prepare(
      "SELECT key, flags, length(keys) + length(data) AS bytes FROM listing_snapshots WHERE mailbox_id = ?",
    )
      .get(mailboxId) as { key: string; flags: string; bytes: number } | undefined;
  } finally {
    db.close();
  }
}

function edit(path: string, sql: string, ...args: (string | number)[]): void {
  const db = new DatabaseSync(path);
  try {
    if (args.length === 0) db.exec(sql);
    else db.prepare(sql).run(...args);
  } finally {
    db.close();
  }
}

/** Every message of the mailbox as read from its rows, the reference a listing must equal. */
async function fresh(store: SqliteMailStore, mailboxId: number) {
  return plain((await store.changesSince(mailboxId, 0)).changed);
}

async function reopen(path: string): Promise<SqliteMailStore> {
  return await openSqliteMailStore(path, { startWorkers: true });
}

Deno.test("a large mailbox's listing is stored as a snapshot and read back after a reopen", async () => {
  const dir = await Deno.makeTempDir({ prefix: "postern-snapshot-" });
  const path = `${dir}/mail.db`;
  try {
    let { store, inbox } = await filled(path, 3000);
    const listed = await store.listMessages(inbox.id);
    await store.close();
    const row = snapshotRow(path, inbox.id)!;
    assert.equal(row.bytes, 16 + 32 * 3000);
    assert.deepEqual(JSON.parse(row.flags).sort(), ["", "\\Seen"]);
    // The snapshot is what the reopened store lists: one whose flag text is changed behind its
    // back (and still matches the mailbox's counters) shows the change.
    edit(
      path,
      "UPDATE listing_snapshots SET flags = ? WHERE mailbox_id = ?",
      '["", "$Marked"]',
      inbox.id,
    );
    store = await reopen(path);
    const read = await store.listMessages(inbox.id);
    assert.equal(read.length, 3000);
    assert.deepEqual(read.map((m) => m.uid), listed.map((m) => m.uid));
    assert.ok(read.some((m) => m.flags.includes("$Marked")));
    await store.close();
    // Without snapshots the rows are listed: the true flags.
    store = await openSqliteMailStore(path, { startWorkers: true, listingSnapshots: false });
    sameListing(await store.listMessages(inbox.id), plain(listed));
    await store.close();
    // A mailbox deleted takes its snapshot with it.
    store = await reopen(path);
    await store.deleteMailbox(inbox.accountId, "INBOX").catch(() => {});
    const big = await store.createMailbox(inbox.accountId, "Big");
    const raw = enc.encode("Subject: s\r\n\r\nx\r\n");
    await store.appendBatch(big.id, Array.from({ length: 1000 }, () => ({ raw })));
    await store.listMessages(big.id);
    await store.close();
    assert.ok(snapshotRow(path, big.id));
    store = await reopen(path);
    await store.deleteMailbox(inbox.accountId, "Big");
    await store.close();
    assert.equal(snapshotRow(path, big.id), undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a stored snapshot catches up on the writes made since, or gives way to a listing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "postern-snapshot-catch-up-" });
  const path = `${dir}/mail.db`;
  try {
    let { store, inbox } = await filled(path, 2000);
    await store.listMessages(inbox.id);
    await store.close();
    const first = snapshotRow(path, inbox.id)!.key;
    // Writes of a store that never lists the mailbox: the snapshot falls behind.
    store = await openSqliteMailStore(path);
    const raw = enc.encode("Subject: t\r\n\r\ny\r\n");
    await store.append(inbox.id, { raw, flags: ["$New"] });
    await store.storeFlags(inbox.id, [5, 1500, 2001], "add", ["\\Flagged"]);
    await store.storeFlags(inbox.id, [7, 8, 1999], "add", ["\\Deleted"]);
    await store.expunge(inbox.id);
    await store.close();
    assert.equal(snapshotRow(path, inbox.id)!.key, first);
    // A copy whose snapshot marks every unseen message: the caught-up listing is built on the
    // snapshot (untouched messages keep the mark) and the changed rows replace theirs.
    const copy = `${dir}/copy.db`;
    await Deno.copyFile(path, copy);
    edit(copy, "UPDATE listing_snapshots SET flags = replace(flags, '\"\"', '\"$Base\"')");
    store = await reopen(copy);
    const based = await store.listMessages(inbox.id);
    const truth = await fresh(store, inbox.id);
    await store.close();
    assert.deepEqual(based.map((m) => m.uid), truth.map((m) => m.uid));
    const at = (uid: number) => based.find((m) => m.uid === uid)!.flags;
    assert.deepEqual(at(1), ["$Base"]);
    assert.deepEqual(at(2), ["\\Seen"]);
    assert.deepEqual(at(5), ["\\Seen", "\\Flagged"]);
    assert.deepEqual(at(2001), ["$New", "\\Flagged"]);
    store = await reopen(path);
    const caught = await store.listMessages(inbox.id);
    assert.equal(caught.length, 1998);
    sameListing(caught, await fresh(store, inbox.id));
    await store.close();
    // Caught up from few changes, the snapshot is not rewritten: it is still the first one,
    // until the store closes with the listing cached at a later state.
    assert.notEqual(snapshotRow(path, inbox.id)!.key, first);
    // More changes than a quarter of the listing: listed afresh, exact, and stored again.
    store = await openSqliteMailStore(path);
    await store.storeFlags(inbox.id, caught.slice(0, 900).map((m) => m.uid), "add", ["$Many"]);
    await store.close();
    const stale = snapshotRow(path, inbox.id)!.key;
    store = await reopen(path);
    const listed = await store.listMessages(inbox.id);
    sameListing(listed, await fresh(store, inbox.id));
    assert.equal(listed.filter((m) => m.flags.includes("$Many")).length, 900);
    await store.close();
    const row = snapshotRow(path, inbox.id)!;
    assert.notEqual(row.key, stale);
    assert.ok(JSON.parse(row.flags).includes("\\Seen $Many"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a snapshot that does not fit the mailbox is passed over and replaced", async () => {
  const dir = await Deno.makeTempDir({ prefix: "postern-snapshot-bad-" });
  const path = `${dir}/mail.db`;
  try {
    let { store, inbox } = await filled(path, 1500);
    const truth = plain(await store.listMessages(inbox.id));
    await store.close();
    const good = snapshotRow(path, inbox.id)!;
    const [validity, uidNext, modseq, count] = good.key.split(":");
    const breakings: [string, string, ...(string | number)[]][] = [
      ["data truncated", "UPDATE listing_snapshots SET data = substr(data, 1, 100)"],
      ["keys truncated", "UPDATE listing_snapshots SET keys = substr(keys, 1, 100)"],
      ["bad flags", "UPDATE listing_snapshots SET flags = 'x'"],
      [
        "another UIDVALIDITY",
        "UPDATE listing_snapshots SET key = ?",
        `${Number(validity) + 1}:${uidNext}:${modseq}:${count}`,
      ],
      [
        "a MODSEQ beyond the mailbox's",
        "UPDATE listing_snapshots SET key = ?",
        `${validity}:${uidNext}:${Number(modseq) + 5}:${count}`,
      ],
      [
        "another count",
        "UPDATE listing_snapshots SET key = ?",
        `${validity}:${uidNext}:${modseq}:1499`,
      ],
      // Expunge records pruned past the snapshot's MODSEQ: it could miss expunged messages.
      [
        "expunge records pruned",
        "UPDATE mailboxes SET vanished_floor = highestmodseq + 1 WHERE id = 1",
      ],
    ];
    for (const [what, sql, ...args] of breakings) {
      edit(
        path,
        "UPDATE listing_snapshots SET flags = ? WHERE mailbox_id = ?",
        '["", "$Wrong"]',
        inbox.id,
      );
      edit(path, sql, ...args);
      store = await reopen(path);
      // A view opens from the keys alone: only a snapshot whose keys fit gives columns, and its
      // listing's objects then come from the rows.
      const columns = await store.listColumns(inbox.id);
      assert.equal(columns !== null, what === "data truncated", what);
      const listed = await store.listMessages(inbox.id);
      sameListing(listed, truth, what);
      await store.close();
      // Listed afresh, the mailbox's snapshot is stored again, right.
      const row = snapshotRow(path, inbox.id)!;
      assert.equal(row.key, good.key, what);
      assert.ok(!row.flags.includes("$Wrong"), what);
      edit(path, "UPDATE mailboxes SET vanished_floor = 0 WHERE id = 1");
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a listing that leaves the cache is stored at its latest state", async () => {
  const dir = await Deno.makeTempDir({ prefix: "postern-snapshot-evict-" });
  const path = `${dir}/mail.db`;
  const loader = await openSqliteMailStore(path, { listingCacheMessages: 0 });
  const account = await loader.createAccount("alice", null);
  const inbox = (await loader.getMailbox(account.id, "INBOX"))!;
  const other = await loader.createMailbox(account.id, "Other");
  const raw = enc.encode("Subject: s\r\n\r\nx\r\n");
  for (const box of [inbox, other]) {
    await loader.appendBatch(box.id, Array.from({ length: 1500 }, () => ({ raw })));
  }
  await loader.close();
  // Room for one listing of 1,500 messages, not two.
  const store = await openSqliteMailStore(path, { startWorkers: true, listingCacheMessages: 2500 });
  try {
    await store.listMessages(inbox.id);
    // This store's own writes keep the cached listing current: its snapshot falls behind.
    await store.storeFlags(inbox.id, [10, 20], "add", ["\\Answered"]);
    await store.append(inbox.id, { raw, flags: ["$Late"] });
    const current = await store.listMessages(inbox.id);
    const written = async (box: number, key: (k: string | undefined) => boolean) => {
      for (let i = 0; i < 200 && !key(snapshotRow(path, box)?.key); i++) {
        await new Promise((r) => setTimeout(r, 10));
      }
      return snapshotRow(path, box)?.key;
    };
    const behind = await written(inbox.id, (k) => k !== undefined);
    // Listing the other mailbox evicts INBOX's listing, which is stored as it is now.
    await store.listMessages(other.id);
    const latest = await written(inbox.id, (k) => k !== behind);
    assert.notEqual(latest, behind);
    assert.equal(latest!.split(":")[3], "1501");
    assert.ok(snapshotRow(path, inbox.id)!.flags.includes("$Late"));
    // Read back (the cache now holds the other mailbox), it is the listing as it was.
    sameListing(await store.listMessages(inbox.id), plain(current));
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a snapshot of several parts is read whole, or not at all", async () => {
  const dir = await Deno.makeTempDir({ prefix: "postern-snapshot-parts-" });
  const path = `${dir}/mail.db`;
  try {
    let { store, inbox } = await filled(path, 2 * PART_MESSAGES + 100);
    const truth = plain(await store.listMessages(inbox.id));
    await store.close();
    const parts = () => {
      const db = new DatabaseSync(path);
      try {
        return db.prepare(
          `SELECT part, key, length(keys) + length(data) AS bytes FROM listing_snapshots
           WHERE mailbox_id = ? ORDER BY part`,
        ).all(inbox.id) as { part: number; key: string; bytes: number }[];
      } finally {
        db.close();
      }
    };
    const stored = parts();
    assert.deepEqual(stored.map((p) => [p.part, p.bytes]), [
      [0, 16 + 32 * PART_MESSAGES],
      [1, 16 + 32 * PART_MESSAGES],
      [2, 16 + 32 * 100],
    ]);
    assert.ok(stored.every((p) => p.key === stored[0]!.key));
    // Read back whole: every part's flags marked shows in every part.
    edit(path, "UPDATE listing_snapshots SET flags = replace(flags, '\\\\Seen', '$Read')");
    store = await reopen(path);
    const marked = await store.listMessages(inbox.id);
    await store.close();
    assert.deepEqual(marked.map((m) => m.uid), truth.map((m) => m.uid));
    assert.ok(marked.at(-1)!.flags.includes("$Read") && marked[1]!.flags.includes("$Read"));
    const breakings: [string, string][] = [
      [
        "a part of another snapshot",
        "UPDATE listing_snapshots SET key = key || '0' WHERE part = 1",
      ],
      ["a part missing", "DELETE FROM listing_snapshots WHERE part = 2"],
      [
        "parts out of order",
        "UPDATE listing_snapshots SET part = -part - 10 WHERE part IN (1, 2); " +
        "UPDATE listing_snapshots SET part = part + 13 WHERE part < 0",
      ],
      [
        "parts swapped",
        "UPDATE listing_snapshots SET part = -part - 10 WHERE part IN (0, 1); " +
        "UPDATE listing_snapshots SET part = part + 11 WHERE part < 0",
      ],
    ];
    for (const [what, sql] of breakings) {
      edit(path, "UPDATE listing_snapshots SET flags = replace(flags, '\\\\Seen', '$Read')");
      edit(path, sql);
      store = await reopen(path);
      sameListing(await store.listMessages(inbox.id), truth, what);
      await store.close();
      assert.deepEqual(parts(), stored, what);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("twenty callers of a cold listing share one read", async () => {
  const dir = await Deno.makeTempDir({ prefix: "postern-snapshot-shared-" });
  const path = `${dir}/mail.db`;
  try {
    let { store, inbox } = await filled(path, 20_000);
    const truth = plain(await store.listMessages(inbox.id));
    await store.close();
    for (const listingSnapshots of [false, true]) {
      store = await openSqliteMailStore(path, { startWorkers: true, listingSnapshots });
      try {
        // A write between the listings' starts: the waiters take the read's result brought up
        // to date, not a stale one.
        const raw = enc.encode("Subject: s\r\n\r\nx\r\n");
        const calls = Array.from({ length: 20 }, () => store.listMessages(inbox.id));
        const appended = store.append(inbox.id, { raw, flags: ["$Late"] });
        calls.push(appended.then(() => store.listMessages(inbox.id)));
        const lists = await Promise.all(calls);
        const { uid } = await appended;
        // One read: every caller holds the very same message objects.
        for (const list of lists) assert.equal(list[0], lists[0]![0], `${listingSnapshots}`);
        sameListing(lists.at(-1)!, [
          ...truth,
          ...plain(await store.getMessages(inbox.id, [uid])),
        ]);
        for (const list of lists) assert.ok(list.length === 20_000 || list.length === 20_001);
        await store.storeFlags(inbox.id, [uid], "add", ["\\Deleted"]);
        await store.expunge(inbox.id, [uid]);
      } finally {
        await store.close();
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a cold listing hands out its snapshot's columns, brought to the present, then its objects", async () => {
  const dir = await Deno.makeTempDir({ prefix: "postern-snapshot-columns-" });
  const path = `${dir}/mail.db`;
  try {
    let { store, inbox } = await filled(path, 20_000);
    await store.listMessages(inbox.id);
    // Cached: no columns, the caller lists.
    assert.equal(await store.listColumns(inbox.id), null);
    await store.close();
    // Writes of a store that never lists: an append, flag changes, an expunge (with a keyword
    // held by the expunged message only).
    store = await openSqliteMailStore(path);
    const raw = enc.encode("Subject: t\r\n\r\ny\r\n");
    await store.append(inbox.id, { raw, flags: ["$New"] });
    await store.storeFlags(inbox.id, [5, 19_000, 20_001], "add", ["\\Flagged"]);
    await store.storeFlags(inbox.id, [8], "add", ["$Only"]);
    await store.storeFlags(inbox.id, [7, 8, 11_999], "add", ["\\Deleted"]);
    await store.expunge(inbox.id);
    await store.close();
    // A copy whose snapshot marks every unseen message: the columns come from the snapshot.
    edit(path, "UPDATE listing_snapshots SET flags = replace(flags, '\"\"', '\"$Base\"')");
    store = await reopen(path);
    const truth = await fresh(store, inbox.id);
    // Unseen and untouched since the snapshot: marked.
    const expected = truth.map((m) => m.flags.length === 0 ? { ...m, flags: ["$Base"] } : m);
    // Twenty callers share one read: the very same arrays.
    const calls = Array.from({ length: 20 }, () => store.listColumns(inbox.id));
    const columns = await Promise.all(calls);
    for (const c of columns) assert.equal(c?.uids, columns[0]!.uids);
    assert.equal(columns[0]!.uids.length, 19_998);
    sameColumns(columns[0]!, expected);
    assert.ok(!columns[0]!.sets.some((f) => f.includes("$Only")));
    // While the objects are made, a getMessages of many waits for them (the snapshot's, so
    // marked) and a listMessages takes them.
    const many = await store.getMessages(inbox.id, truth.slice(0, 2000).map((m) => m.uid));
    assert.deepEqual(many[0]!.flags, ["$Base"]);
    const listed = await store.listMessages(inbox.id);
    assert.equal(listed.length, 19_998);
    assert.deepEqual(listed.map((m) => m.flags.join(" ")), expected.map((m) => m.flags.join(" ")));
    // Kept while the mailbox is at their state: the next SELECT shares them. Not after a change.
    assert.equal(await store.listColumns(inbox.id), columns[0]);
    await store.storeFlags(inbox.id, [1], "add", ["\\Answered"]);
    assert.equal(await store.listColumns(inbox.id), null);
    await store.close();
    // Without snapshots there are no columns; a store closed at once still ends cleanly.
    store = await openSqliteMailStore(path, { startWorkers: true, listingSnapshots: false });
    assert.equal(await store.listColumns(inbox.id), null);
    await store.close();
    store = await reopen(path);
    assert.ok(await store.listColumns(inbox.id));
    await store.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a snapshot packed across turns holds the listing of its key, whatever writes come between", async () => {
  const dir = await Deno.makeTempDir({ prefix: "postern-snapshot-paced-" });
  const path = `${dir}/mail.db`;
  // A turn clock that says every turn is old: each paced step yields.
  const old = () => performance.now() - 60_000;
  try {
    const { store, inbox } = await filled(path, 3 * PART_MESSAGES);
    useTurnStart(old);
    try {
      const before = plain(await store.listMessages(inbox.id));
      // Packing has begun and yields after its first part: these writes land between steps.
      await store.storeFlags(inbox.id, [2 * PART_MESSAGES + 5], "add", ["\\Flagged"]);
      await store.storeFlags(inbox.id, [PART_MESSAGES + 5], "add", ["\\Deleted"]);
      await store.expunge(inbox.id);
      const db = new DatabaseSync(path);
      let rows: { flags: string; keys: Uint8Array; data: Uint8Array }[] = [];
      for (let i = 0; i < 300 && rows.length < 3; i++) {
        await new Promise((r) => setTimeout(r, 10));
        rows = db.prepare("SELECT flags, keys, data FROM listing_snapshots ORDER BY part")
          .all() as never;
      }
      db.close();
      const stored = rows.flatMap((r) => unpackListing(r.flags, r.keys, r.data, flagList)!);
      sameListing(stored, before);
      // And the listing now is the one after the writes.
      assert.equal((await store.listMessages(inbox.id)).length, 3 * PART_MESSAGES - 1);
    } finally {
      dropTurnStart(old);
      await store.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

for (const seed of [7, 8, 9]) {
  Deno.test(`listings stay exact through random writes, reopens and evictions (seed ${seed})`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "postern-snapshot-random-" });
    const path = `${dir}/mail.db`;
    const random = xorshift32(seed);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
    const raw = enc.encode("Subject: r\r\n\r\nx\r\n");
    // Room for two of the three listings: every third SELECT evicts one.
    const open = () =>
      openSqliteMailStore(path, { startWorkers: true, listingCacheMessages: 2600 });
    let store = await open();
    // Another connection's writes reach this one only through the database (no relay).
    let other = await openSqliteMailStore(path);
    try {
      const account = await store.createAccount("alice", null);
      const boxes = [(await store.getMailbox(account.id, "INBOX"))!.id];
      boxes.push((await store.createMailbox(account.id, "A")).id);
      boxes.push((await store.createMailbox(account.id, "B")).id);
      for (const box of boxes) {
        await store.appendBatch(box, Array.from({ length: 1200 }, () => ({ raw, flags: [] })));
      }
      const check = async (
        box: number,
        lists: Promise<readonly MessageMeta[]>[],
        columns: Promise<ListingColumns | null>[],
      ) => {
        const truth = await fresh(store, box);
        for (const list of await Promise.all(lists)) sameListing(list, truth);
        for (const c of await Promise.all(columns)) if (c !== null) sameColumns(c, truth);
      };
      for (let step = 0; step < 80; step++) {
        const box = pick(boxes);
        const writer = random() < 0.3 ? other : store;
        const uids = (await fresh(store, box)).map((m) => m.uid);
        const some = () => uids.filter(() => random() < 0.02);
        switch (Math.floor(random() * 6)) {
          case 0:
            await writer.appendBatch(
              box,
              Array.from({ length: 1 + Math.floor(random() * 40) }, () => ({
                raw,
                flags: random() < 0.5 ? ["$New"] : [],
              })),
            );
            break;
          case 1:
            await writer.storeFlags(box, some(), pick(["add", "remove", "replace"]), [
              pick(["\\Seen", "\\Flagged", "$Work"]),
            ]);
            break;
          case 2: {
            const gone = some().slice(0, 30);
            await writer.storeFlags(box, gone, "add", ["\\Deleted"]);
            await writer.expunge(box, gone);
            break;
          }
          case 3:
            // Many at once: more than the catch-up takes.
            await writer.storeFlags(box, uids.filter(() => random() < 0.4), "add", ["$Bulk"]);
            break;
          case 4:
            await store.close();
            await other.close();
            store = await open();
            other = await openSqliteMailStore(path);
            break;
        }
        // Columns first (a SELECT of a listing not in memory), listings among them.
        const columns = Array.from(
          { length: Math.floor(random() * 3) },
          () => store.listColumns(box),
        );
        await check(
          box,
          Array.from({ length: 1 + Math.floor(random() * 3) }, () => store.listMessages(box)),
          columns,
        );
      }
    } finally {
      await store.close();
      await other.close();
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("a snapshot of an earlier state never replaces a later one", async () => {
  const dir = await Deno.makeTempDir({ prefix: "postern-snapshot-order-" });
  const path = `${dir}/mail.db`;
  const sync = allocateSharedSync();
  // Two connections as two Workers have them, without a relay: each sees the other's writes
  // only in the database.
  const a = await openSqliteMailStore(path, { startWorkers: true, sharedSync: sync });
  const b = await openSqliteMailStore(path, { startWorkers: true, sharedSync: sync });
  try {
    const account = await a.createAccount("alice", null);
    const inbox = (await a.getMailbox(account.id, "INBOX"))!;
    const raw = enc.encode("Subject: s\r\n\r\nx\r\n");
    await a.appendBatch(inbox.id, Array.from({ length: 1500 }, () => ({ raw })));
    await a.listMessages(inbox.id);
    // A's own write moves its cached listing past its stored snapshot.
    await a.append(inbox.id, { raw, flags: ["$A"] });
    await a.listMessages(inbox.id);
    // B lists later, after writes of its own, and stores the latest state when it closes.
    await b.storeFlags(inbox.id, [1, 2], "add", ["$B"]);
    const latest = (await b.listMessages(inbox.id)).length;
    await b.close();
    const key = snapshotRow(path, inbox.id)!.key;
    assert.equal(key.split(":")[3], String(latest));
    // A closes with its listing behind B's: its snapshot is refused, B's stays.
    await a.close();
    assert.equal(snapshotRow(path, inbox.id)!.key, key);
  } finally {
    await a.close();
    await b.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/** Waits (up to 2 s) until the mailbox's stored snapshot satisfies `ok`; returns its key. */
async function snapshotWhen(path: string, box: number, ok: (key: string | undefined) => boolean) {
  for (let i = 0; i < 200 && !ok(snapshotRow(path, box)?.key); i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  return snapshotRow(path, box)?.key;
}

Deno.test("a mailbox followed since it was empty is listed without reading its rows", async () => {
  const dir = await Deno.makeTempDir({ prefix: "postern-snapshot-follow-" });
  const path = `${dir}/mail.db`;
  const store = await openSqliteMailStore(path, { startWorkers: true });
  try {
    const account = await store.createAccount("alice", null);
    const box = (await store.createMailbox(account.id, "New")).id;
    const raw = enc.encode("Subject: s\r\n\r\nx\r\n");
    for (let i = 0; i < 3; i++) {
      await store.appendBatch(
        box,
        Array.from({ length: 100 }, (_, k) => ({
          raw,
          flags: k % 2 ? ["\\Seen"] : [],
        })),
      );
    }
    await store.storeFlags(box, [7], "add", ["\\Flagged"]);
    await store.storeFlags(box, [8], "add", ["\\Deleted"]);
    await store.expunge(box);
    const truth = await fresh(store, box);
    // A row changed behind the store's back, counters untouched: a listing read from the rows
    // would show it, the followed one does not.
    edit(path, "UPDATE messages SET flags = '$Behind' WHERE mailbox_id = ? AND uid = 1", box);
    sameListing(await store.listMessages(box), truth);
    // It keeps following: an append shows, and the listing grown to 1,000 messages is stored
    // as a snapshot before anyone lists it cold, and again once a fifth larger.
    await store.appendBatch(box, Array.from({ length: 800 }, () => ({ raw, flags: ["$Late"] })));
    const list = await store.listMessages(box);
    assert.equal(list.length, 1099);
    assert.deepEqual(list.at(-1)!.flags, ["$Late"]);
    assert.equal(list[0]!.flags.length, 0);
    // Appends come one event a message: the first snapshot is of the 1,000th.
    const first = await snapshotWhen(path, box, (k) => k !== undefined);
    assert.equal(first?.split(":")[3], "1000");
    await store.appendBatch(box, Array.from({ length: 100 }, () => ({ raw })));
    assert.equal(await snapshotWhen(path, box, (k) => k !== first), first);
    await store.appendBatch(box, Array.from({ length: 200 }, () => ({ raw })));
    assert.equal((await snapshotWhen(path, box, (k) => k !== first))?.split(":")[3], "1201");
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("listings grown by appends beyond the cache's size are evicted and stored", async () => {
  const dir = await Deno.makeTempDir({ prefix: "postern-snapshot-grow-" });
  const path = `${dir}/mail.db`;
  // Room for 2,500 messages: two mailboxes followed from empty to 1,500 each do not fit.
  const store = await openSqliteMailStore(path, { startWorkers: true, listingCacheMessages: 2500 });
  try {
    const account = await store.createAccount("alice", null);
    const a = (await store.createMailbox(account.id, "A")).id;
    const b = (await store.createMailbox(account.id, "B")).id;
    const raw = enc.encode("Subject: s\r\n\r\nx\r\n");
    for (const box of [a, b]) {
      for (let i = 0; i < 15; i++) {
        await store.appendBatch(box, Array.from({ length: 100 }, () => ({ raw })));
      }
    }
    // A grew a fifth past its snapshot at 1,300 no more; its full 1,500 is stored only because
    // B's growth evicted it.
    assert.equal(
      (await snapshotWhen(path, a, (k) => k?.endsWith(":1500") === true))?.split(":")[3],
      "1500",
    );
    sameListing(await store.listMessages(a), await fresh(store, a));
    sameListing(await store.listMessages(b), await fresh(store, b));
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a listing made mostly by writes is made afresh once after a hand-out, values kept", async () => {
  const dir = await Deno.makeTempDir({ prefix: "postern-snapshot-compact-" });
  const path = `${dir}/mail.db`;
  const store = await openSqliteMailStore(path);
  try {
    const account = await store.createAccount("alice", null);
    const box = (await store.createMailbox(account.id, "New")).id;
    // The objects the appends made, as their events carry them.
    const appended = new Map<number, MessageMeta>();
    const unwatch = store.watch(box, (e) => {
      if (e.kind === "append") { for (const m of e.metas ?? []) appended.set(m.uid, m); }
    });
    const raw = enc.encode("Subject: s\r\n\r\nx\r\n");
    for (let i = 0; i < 3; i++) {
      await store.appendBatch(
        box,
        Array.from({ length: 1000 }, (_, k) => ({
          raw,
          flags: k % 2 ? ["\\Seen"] : [],
        })),
      );
    }
    unwatch();
    // The hand-out makes the copy (a step at a time between yields; 3,000 messages take one).
    await store.listMessages(box);
    await new Promise((r) => setTimeout(r, 50));
    const first = await store.listMessages(box);
    sameListing(first, await fresh(store, box));
    // Made afresh: not the objects the appends made, the same values.
    assert.ok(appended.has(1));
    assert.notEqual(first[0], appended.get(1));
    assert.deepEqual(first[0], appended.get(1));
    // A few writes since do not make it afresh again.
    await store.storeFlags(box, [5], "add", ["\\Flagged"]);
    await store.append(box, { raw });
    const second = await store.listMessages(box);
    assert.equal(second[0], first[0]);
    assert.equal(second.length, 3001);
    sameListing(second, await fresh(store, box));
    // A listing beyond 32,768 messages is left as the appends made it: promoting a copy of
    // 100,000 objects held the event loop for 10 ms.
    const big = (await store.createMailbox(account.id, "Big")).id;
    let firstOfBig: MessageMeta | undefined;
    const unwatchBig = store.watch(big, (e) => {
      if (e.kind === "append") firstOfBig ??= e.metas?.[0];
    });
    for (let i = 0; i < 33; i++) {
      await store.appendBatch(big, Array.from({ length: 1000 }, () => ({ raw })));
    }
    unwatchBig();
    await store.listMessages(big);
    await new Promise((r) => setTimeout(r, 100));
    const kept = await store.listMessages(big);
    assert.equal(kept.length, 33_000);
    assert.ok(firstOfBig !== undefined);
    assert.equal(kept[0], firstOfBig);
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});
