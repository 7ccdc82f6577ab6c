/**
 * Large messages in the mail store: `append` and `getRaw` of one 1, 10 and 40 MiB message
 * (random bytes, so that neither store can compress them) on PostgreSQL (bytea in the `blobs`
 * table, TOASTed out of line) and on SQLite (the reference), called on the store directly. It
 * tells whether message bodies in PostgreSQL need large objects above a size (issue 16: "bytea,
 * or large objects above a size").
 *
 * PostgreSQL is a throwaway cluster with `fsync=on`; SQLite commits with its group commit.
 * Figures are printed, never asserted; each size is the best of three rounds.
 *
 * Usage: `deno run -A bench/large_message_bench.ts`.
 */
import type { MailStore } from "../mailstore/mail_store.ts";
import { openPostgresMailStore } from "../mailstore/postgres/mod.ts";
import { openSqliteMailStore } from "../mailstore/sqlite/mod.ts";
import { postgresAvailable, startPostgres } from "../tests/_support/postgres.ts";

const SIZES_MIB = [1, 10, 40] as const;

export interface LargeMessageFigures {
  readonly mib: number;
  /** MiB/s of `append` (committed), PostgreSQL and SQLite. */
  readonly append: { readonly postgres: number; readonly sqlite: number };
  /** MiB/s of `getRaw`. */
  readonly read: { readonly postgres: number; readonly sqlite: number };
}

function message(mib: number): Uint8Array {
  const header = new TextEncoder().encode("Subject: large\r\n\r\n");
  const out = new Uint8Array(mib * 1024 * 1024);
  out.set(header);
  // getRandomValues fills at most 64 KiB per call.
  for (let at = header.length; at < out.length; at += 65_536) {
    crypto.getRandomValues(out.subarray(at, Math.min(out.length, at + 65_536)));
  }
  return out;
}

async function measure(store: MailStore, raw: Uint8Array): Promise<[number, number]> {
  const account = await store.getAccount("large") ?? await store.createAccount("large", null);
  const inbox = await store.getMailbox(account.id, "INBOX") ??
    await store.createMailbox(account.id, "INBOX");
  const mib = raw.byteLength / 1024 / 1024;
  let bestAppend = 0;
  let bestRead = 0;
  for (let round = 0; round < 3; round++) {
    const started = performance.now();
    const { uid } = await store.append(inbox.id, { raw });
    const appended = performance.now();
    const back = await store.getRaw(inbox.id, uid);
    const read = performance.now();
    if (back?.byteLength !== raw.byteLength) throw new Error("Read back a different message");
    bestAppend = Math.max(bestAppend, mib / ((appended - started) / 1000));
    bestRead = Math.max(bestRead, mib / ((read - appended) / 1000));
  }
  return [bestAppend, bestRead];
}

/** Both stores at each size; null without PostgreSQL. */
export async function benchLargeMessages(): Promise<LargeMessageFigures[] | null> {
  if (!postgresAvailable()) return null;
  const dir = await Deno.makeTempDir({ prefix: "postern-large-" });
  const pg = await startPostgres({ fsync: true });
  const postgres = await openPostgresMailStore({ url: pg.url, poolSize: 2 });
  const sqlite = await openSqliteMailStore(`${dir}/large.db`);
  try {
    const out: LargeMessageFigures[] = [];
    for (const mib of SIZES_MIB) {
      const raw = message(mib);
      const [pgAppend, pgRead] = await measure(postgres, raw);
      const [liteAppend, liteRead] = await measure(sqlite, raw);
      out.push({
        mib,
        append: { postgres: pgAppend, sqlite: liteAppend },
        read: { postgres: pgRead, sqlite: liteRead },
      });
    }
    return out;
  } finally {
    await postgres.close();
    await sqlite.close();
    await pg.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

export function formatLargeMessages(figures: LargeMessageFigures[] | null): string {
  if (figures === null) return "PostgreSQL is not installed (Debian package postgresql): skipped";
  const rows = [
    `${"message".padEnd(10)} ${"APPEND PostgreSQL".padStart(18)} ${"SQLite".padStart(12)} ${
      "ratio".padStart(6)
    } ${"getRaw PostgreSQL".padStart(18)} ${"SQLite".padStart(12)} ${"ratio".padStart(6)}`,
  ];
  const cell = (v: number) => `${v.toFixed(0)} MiB/s`;
  for (const f of figures) {
    rows.push(
      `${`${f.mib} MiB`.padEnd(10)} ${cell(f.append.postgres).padStart(18)} ${
        cell(f.append.sqlite).padStart(12)
      } ${`${(f.append.postgres / f.append.sqlite).toFixed(2)}x`.padStart(6)} ${
        cell(f.read.postgres).padStart(18)
      } ${cell(f.read.sqlite).padStart(12)} ${
        `${(f.read.postgres / f.read.sqlite).toFixed(2)}x`.padStart(6)
      }`,
    );
  }
  return rows.join("\n");
}

if (import.meta.main) {
  console.log(formatLargeMessages(await benchLargeMessages()));
}
