/**
 * Prints SqliteMailStore figures: durable append rate, and the cost of the hot reads on a
 * 100,000-message mailbox. Not a test; run by hand:
 *   deno run -A bench/sqlite_store_bench.ts [messages]
 */
import { openSqliteMailStore } from "../mailstore/sqlite/mod.ts";

const total = Number(Deno.args[0] ?? 100_000);
const dir = await Deno.makeTempDir({ prefix: "postern-figures-" });
const raw = (n: number) =>
  new TextEncoder().encode(
    `Subject: figure ${n}\r\nFrom: a@example.org\r\n\r\n${"x".repeat(1500 + (n % 1000))}\r\n`,
  );

function time<T>(label: string, f: () => Promise<T>): Promise<T> {
  const started = performance.now();
  return f().then((v) => {
    console.log(`${label.padEnd(44)} ${(performance.now() - started).toFixed(1)} ms`);
    return v;
  });
}

try {
  // Durable appends, one at a time (one transaction and one WAL sync each).
  {
    const store = await openSqliteMailStore(`${dir}/durable.db`);
    const a = await store.createAccount("bench", null);
    const inbox = (await store.getMailbox(a.id, "INBOX"))!;
    const n = 500;
    const started = performance.now();
    for (let i = 0; i < n; i++) await store.append(inbox.id, { raw: raw(i), flags: ["$X"] });
    const ms = performance.now() - started;
    console.log(`durable append (FULL, ~2 KB): ${(n / (ms / 1000)).toFixed(0)} msg/s over ${n}`);
    await store.close();
  }

  // Bulk fill without fsync, then reopen durable and time the reads.
  const path = `${dir}/big.db`;
  {
    const store = await openSqliteMailStore(path, { synchronous: "off" });
    const a = await store.createAccount("bench", null);
    const inbox = (await store.getMailbox(a.id, "INBOX"))!;
    const started = performance.now();
    for (let i = 0; i < total; i++) {
      await store.append(inbox.id, { raw: raw(i), flags: i % 3 ? ["\\Seen"] : [] });
    }
    const ms = performance.now() - started;
    console.log(
      `bulk append (synchronous=off): ${(total / (ms / 1000)).toFixed(0)} msg/s over ${total}`,
    );
    await store.close();
  }
  const store = await openSqliteMailStore(path);
  const a = (await store.getAccount("bench"))!;
  const box = (await time("getMailbox (SELECT counters)", () => store.getMailbox(a.id, "INBOX")))!;
  console.log(`  messages=${box.messages} unseen=${box.unseen} size=${box.size}`);
  await time("listMailboxes", () => store.listMailboxes(a.id));
  const list = await time(`listMessages (${total})`, () => store.listMessages(box.id));
  await time(`listMessages again (${list.length})`, () => store.listMessages(box.id));
  await time(
    "getMessages (100 scattered UIDs)",
    () => store.getMessages(box.id, Array.from({ length: 100 }, (_, i) => 1 + i * 997)),
  );
  await time(
    "getMessages (10,000 UIDs)",
    () => store.getMessages(box.id, Array.from({ length: 10_000 }, (_, i) => 1 + i * 7)),
  );
  await time("getRaw (one message)", () => store.getRaw(box.id, Math.floor(total / 2)));
  await time(
    "changesSince (last 10 modseqs)",
    () => store.changesSince(box.id, box.highestModseq - 10),
  );
  await time(
    "storeFlags (one message, durable)",
    () => store.storeFlags(box.id, [5], "add", ["\\Flagged"]),
  );
  await time("append (one message, durable)", () => store.append(box.id, { raw: raw(0) }));
  await time("storeFlags \\Deleted on 1,000 + expunge", async () => {
    await store.storeFlags(
      box.id,
      Array.from({ length: 1000 }, (_, i) => 1 + i * 50),
      "add",
      ["\\Deleted"],
    );
    return await store.expunge(box.id);
  });
  await store.close();
  const size = (await Deno.stat(path)).size;
  console.log(`database file: ${(size / 1048576).toFixed(1)} MiB`);
} finally {
  await Deno.remove(dir, { recursive: true });
}
