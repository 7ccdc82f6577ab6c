/**
 * Child process of durability_test.ts: appends messages to a SqliteMailStore in a loop and
 * prints "<n> <uid>" for each append once it has resolved (i.e. been acknowledged). Every
 * third message is then flagged \Flagged, and "f <uid>" printed once that has resolved. The
 * messages are handed over, so that the large ones go through the blob writer.
 * Usage: deno run -A durability_child.ts <db path>
 */
import { openSqliteMailStore } from "../../mailstore/sqlite/mod.ts";
import { durabilityMessage } from "./durability_message.ts";

const path = Deno.args[0];
if (!path) throw new Error("Missing database path");
const store = await openSqliteMailStore(path);
const account = await store.createAccount("crash", null);
const inbox = await store.getMailbox(account.id, "INBOX");
if (!inbox) throw new Error("Missing INBOX");
const out = new TextEncoder();
Deno.stdout.writeSync(out.encode("ready\n"));
// Bounded: the parent kills us long before this ends.
for (let n = 1; n <= 1_000_000; n++) {
  const raw = durabilityMessage(n);
  const r = await store.append(inbox.id, { raw, flags: ["$N" + n], handOver: true });
  say(`${n} ${r.uid}\n`);
  if (n % 3 === 0) {
    await store.storeFlags(inbox.id, [r.uid], "add", ["\\Flagged"]);
    say(`f ${r.uid}\n`);
  }
}

function say(text: string): void {
  const line = out.encode(text);
  let written = 0;
  while (written < line.length) written += Deno.stdout.writeSync(line.subarray(written));
}
