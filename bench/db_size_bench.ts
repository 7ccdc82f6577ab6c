/**
 * How much room the SQLite store takes against the raw mail it holds: the fixture corpus of
 * tests/fixtures/mail, repeated to `messages` (default 10,000) with a unique Message-ID each,
 * appended with the derived data APPEND stores (summary, search text, THREADID). Prints the
 * raw octets, the database file after a checkpoint and VACUUM, and what each derived column
 * adds. Not a test; run by hand or through `deno task bench --only dbsize`:
 *   deno run -A bench/db_size_bench.ts [messages]
 */
import { fileURLToPath } from "node:url";
import { DatabaseSync } from "node:sqlite";
import { openSqliteMailStore } from "../mailstore/sqlite/mod.ts";
import { derivedData, mimeSupport } from "../protocol/imap/mime_support.ts";

export async function dbSizeFigures(total: number): Promise<void> {
  const dir = fileURLToPath(new URL("../tests/fixtures/mail/", import.meta.url));
  const corpus = [...Deno.readDirSync(dir)].filter((e) => e.name.endsWith(".eml"))
    .map((e) => Deno.readTextFileSync(dir + e.name)).sort();
  const work = await Deno.makeTempDir({ prefix: "postern-dbsize-" });
  try {
    const path = `${work}/postern.db`;
    const store = await openSqliteMailStore(path, { synchronous: "off" });
    const account = await store.createAccount("bench", null);
    const inbox = (await store.getMailbox(account.id, "INBOX"))!;
    const enc = new TextEncoder();
    let rawBytes = 0;
    for (let i = 0; i < total; i++) {
      const text = `Message-ID: <size-${i}@bench.example>\r\n` + corpus[i % corpus.length]!;
      const raw = enc.encode(text);
      rawBytes += raw.length;
      await store.append(inbox.id, { raw, ...derivedData(mimeSupport, raw) });
    }
    await store.close();
    const db = new DatabaseSync(path);
    db.exec("PRAGMA wal_checkpoint(TRUNCATE); VACUUM;");
    const sum = (sql: string) => Number((db.prepare(sql).get() as { n: number | null }).n ?? 0);
    const summaries = sum("SELECT SUM(LENGTH(CAST(summary AS BLOB))) AS n FROM blobs");
    const searchTexts = sum("SELECT SUM(LENGTH(CAST(text AS BLOB))) AS n FROM search_texts");
    db.close();
    const file = (await Deno.stat(path)).size;
    const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;
    const ratio = (n: number) => `${(n / rawBytes).toFixed(2)}x raw`;
    console.log(`messages                ${total}`);
    console.log(`raw mail                ${mib(rawBytes)}`);
    console.log(`database file           ${mib(file)} (${ratio(file)})`);
    console.log(`  summaries (JSON)      ${mib(summaries)} (${ratio(summaries)})`);
    console.log(`  search texts          ${mib(searchTexts)} (${ratio(searchTexts)})`);
  } finally {
    await Deno.remove(work, { recursive: true });
  }
}

if (import.meta.main) await dbSizeFigures(Number(Deno.args[0] ?? 10_000));
