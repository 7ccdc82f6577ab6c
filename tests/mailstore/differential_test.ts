import assert from "node:assert/strict";
import type { FlagOperation, MailStore } from "../../mailstore/mail_store.ts";
import { MemoryMailStore } from "../../mailstore/memory/mod.ts";
import { openSqliteMailStore } from "../../mailstore/sqlite/mod.ts";
import { openPostgresMailStore } from "../../mailstore/postgres/mod.ts";
import { postgresAvailable, startPostgres } from "../_support/postgres.ts";
import { xorshift32 } from "../_support/rng.ts";

// PostgreSQL joins as a third party where it is installed (one cluster for the whole file).
const postgresServer = postgresAvailable() ? await startPostgres() : null;

const FLAGS = ["\\Seen", "\\seen", "\\Deleted", "\\Flagged", "$Work", "$work", "\\Answered"];

async function result(p: Promise<unknown>): Promise<unknown> {
  try {
    return { ok: await p };
  } catch (e) {
    return { error: (e as { code?: string }).code ?? String(e) };
  }
}

function withoutUidValidity(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value, (k, v) => (k === "uidValidity" ? undefined : v)));
}

for (const seed of [1, 2, 3]) {
  const parties = postgresServer
    ? "MemoryMailStore, SqliteMailStore and PostgresMailStore"
    : "MemoryMailStore and SqliteMailStore";
  Deno.test(`${parties} agree on random operations (seed ${seed})`, async () => {
    const stores: MailStore[] = [
      new MemoryMailStore(),
      await openSqliteMailStore(":memory:"),
    ];
    if (postgresServer) {
      const url = await postgresServer.createDatabase(`differential_${seed}`);
      stores.push(await openPostgresMailStore({ url, poolSize: 2 }));
    }
    try {
      const boxIds: number[][] = [];
      for (const store of stores) {
        const a = await store.createAccount("alice", null);
        await store.createMailbox(a.id, "Extra");
        boxIds.push((await store.listMailboxes(a.id)).slice(0, 3).map((m) => m.id));
      }
      const random = xorshift32(seed);
      const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
      const flags = () => FLAGS.filter(() => random() < 0.3);
      const uids = () =>
        Array.from({ length: 1 + Math.floor(random() * 6) }, () => 1 + Math.floor(random() * 30));
      for (let step = 0; step < 300; step++) {
        const kind = pick([
          "append",
          "append",
          "store",
          "store",
          "expunge",
          "copy",
          "move",
          "changes",
        ]);
        const box = Math.floor(random() * 3);
        const other = Math.floor(random() * 3);
        const args = {
          raw: new TextEncoder().encode(`message ${step}`.repeat(1 + (step % 5))),
          flags: flags(),
          uids: uids(),
          op: pick<FlagOperation>(["add", "remove", "replace"]),
          since: random() < 0.3 ? Math.floor(random() * 40) : undefined,
          all: random() < 0.5,
        };
        const outcomes: unknown[] = [];
        for (const [i, store] of stores.entries()) {
          const id = boxIds[i]![box]!;
          const to = boxIds[i]![other]!;
          switch (kind) {
            case "append":
              outcomes.push(
                await result(
                  store.append(id, { raw: args.raw, flags: args.flags, internalDate: step }),
                ),
              );
              break;
            case "store":
              outcomes.push(
                await result(store.storeFlags(id, args.uids, args.op, args.flags, args.since)),
              );
              break;
            case "expunge":
              outcomes.push(await result(store.expunge(id, args.all ? undefined : args.uids)));
              break;
            case "copy":
              outcomes.push(await result(store.copy(id, args.uids, to)));
              break;
            case "move":
              outcomes.push(await result(store.move(id, args.uids, to)));
              break;
            case "changes":
              outcomes.push(await result(store.changesSince(id, args.since ?? 0)));
              break;
          }
        }
        for (let i = 1; i < outcomes.length; i++) {
          assert.deepEqual(
            withoutUidValidity(outcomes[i]),
            withoutUidValidity(outcomes[0]),
            `step ${step}: ${kind} (store ${i})`,
          );
        }
      }
      for (const [i, store] of stores.entries()) {
        const account = (await store.getAccount("alice"))!;
        for (const m of await store.listMailboxes(account.id)) {
          const list = await store.listMessages(m.id);
          assert.equal(m.messages, list.length);
          assert.equal(m.size, list.reduce((s, x) => s + x.size, 0));
          assert.equal(m.unseen, list.filter((x) => !x.flags.includes("\\Seen")).length);
          assert.equal(m.highestModseq >= Math.max(1, ...list.map((x) => x.modseq)), true);
        }
        const total = (await store.listMailboxes(account.id)).reduce((s, m) => s + m.messages, 0);
        assert.ok(total > 10, `store ${i} holds mail after the run`);
      }
    } finally {
      for (const store of stores) await store.close();
    }
  });
}

// Registered last, so it runs after every case above in this file.
Deno.test({
  name: "differential: the throwaway PostgreSQL cluster stops",
  ignore: postgresServer === null,
  fn: async () => {
    await postgresServer?.stop();
  },
});
