/**
 * Prints what keeping search results up to date costs (RFC 5267 UPDATE): the time of a NOOP
 * that follows one APPEND by another session, on an N-message SQLite mailbox, with no context
 * (the reference, measured in the same run) and with SEARCH and SORT contexts. In-process
 * sessions, no TLS. Not a test; run by hand:
 *   deno run -A bench/search_context_bench.ts [messages]
 */
import { openSqliteMailStore } from "../mailstore/sqlite/mod.ts";
import { derivedData, mimeSupport } from "../protocol/imap/mime_support.ts";
import { TestClient } from "../tests/protocol/imap/_harness.ts";

const total = Number(Deno.args[0] ?? 10_000);
const ROUNDS = 9;
const dir = await Deno.makeTempDir({ prefix: "postern-context-bench-" });
const store = await openSqliteMailStore(`${dir}/m.db`);
try {
  const account = await store.createAccount("alice", null);
  await store.createAccount("bob", null);
  const inbox = (await store.getMailbox(account.id, "INBOX"))!;
  const enc = new TextEncoder();
  for (let start = 0; start < total; start += 500) {
    const batch = [];
    for (let i = start; i < Math.min(total, start + 500); i++) {
      const raw = enc.encode(
        `From: a${i % 97}@example.org\r\nSubject: s ${(i * 7919) % total}\r\n` +
          `Date: Tue, 7 Mar 2023 10:00:00 +0000\r\n\r\nbody ${i}\r\n`,
      );
      batch.push({ raw, flags: i % 3 === 0 ? ["\\Seen"] : [], ...derivedData(mimeSupport, raw) });
    }
    await store.appendBatch(inbox.id, batch);
  }
  const reader = new TestClient(store);
  const writer = new TestClient(store);
  await reader.login();
  await writer.login();
  await reader.cmd("S SELECT INBOX");
  await writer.cmd("S SELECT INBOX");
  let n = 0;
  const median = async (): Promise<number> => {
    const times: number[] = [];
    for (let k = 0; k < ROUNDS; k++) {
      const raw = `Subject: new ${n++}\r\n\r\nx\r\n`;
      await writer.cmd(`A APPEND INBOX {${raw.length}+}\r\n${raw}`);
      const started = performance.now();
      await reader.cmd("N NOOP");
      times.push(performance.now() - started);
    }
    return times.sort((a, b) => a - b)[ROUNDS >> 1]!;
  };
  const reference = await median();
  console.log(`NOOP after one APPEND, ${total} messages, median of ${ROUNDS}:`);
  console.log(`  no context (reference)          ${reference.toFixed(1)} ms`);
  const steps: [string, string[]][] = [
    ["+ UID SEARCH UNSEEN", ["UID SEARCH RETURN (UPDATE) UNSEEN"]],
    ["+ UID SORT (SUBJECT) ALL", ["UID SORT RETURN (UPDATE) (SUBJECT) UTF-8 ALL"]],
    [
      "+ 6 more SEARCH (3 of them FROM)",
      [1, 2, 3, 4, 5, 6].map((i) => `UID SEARCH RETURN (UPDATE) ${i % 2 ? "FROM a1" : "UNSEEN"}`),
    ],
  ];
  let tag = 0;
  for (const [label, commands] of steps) {
    for (const c of commands) await reader.cmd(`C${tag++} ${c}`);
    const ms = await median();
    console.log(
      `  ${label.padEnd(32)} ${ms.toFixed(1)} ms (${(ms / Math.max(reference, 0.01)).toFixed(0)}x)`,
    );
  }
} finally {
  await store.close();
  await Deno.remove(dir, { recursive: true });
}
