import assert from "node:assert/strict";
import type { MailStore, QuotaLimits } from "../../../mailstore/mail_store.ts";
import type { QuotaSource } from "../../../protocol/imap/quota.ts";
import { append, message, newStore, TestClient } from "./_harness.ts";

/** Limits by account name, usage summed from the store (as server/serve/quota.ts does). */
function source(store: MailStore, limits: Record<string, QuotaLimits>): QuotaSource {
  return {
    limits: (name) => limits[name] ?? { storage: null, messages: null },
    async usage(accountId) {
      let storage = 0;
      let messages = 0;
      for (const m of await store.listMailboxes(accountId)) {
        storage += m.size;
        messages += m.messages;
      }
      return { storage, messages };
    },
  };
}

async function client(limits: Record<string, QuotaLimits>): Promise<TestClient> {
  const store = await newStore();
  const c = new TestClient(store, { quota: source(store, limits) });
  await c.login();
  return c;
}

Deno.test("QUOTA is advertised with both resources only when a quota source is given", async () => {
  const c = await client({});
  const caps = (await c.cmd("C CAPABILITY"))[0]!;
  assert.match(caps, / QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE /);
  const plain = new TestClient(await newStore());
  await plain.login();
  assert.doesNotMatch((await plain.cmd("C CAPABILITY"))[0]!, /QUOTA/);
  assert.match((await plain.cmd("Q GETQUOTAROOT INBOX")).at(-1)!, /^Q BAD/);
});

Deno.test("GETQUOTAROOT and GETQUOTA report STORAGE in KiB and MESSAGE (RFC 9208, 4.3)", async () => {
  const c = await client({ alice: { storage: 10 * 1024, messages: 3 } });
  const msg = message("One", "x".repeat(2000));
  assert.match(await append(c, "INBOX", msg), /^AP OK/);
  const kib = Math.ceil(new TextEncoder().encode(msg).length / 1024);
  // Thunderbird asks for the root of the folder it opens, quoted.
  assert.deepEqual(await c.cmd('T1 GETQUOTAROOT "INBOX"'), [
    '* QUOTAROOT INBOX "User quota"',
    `* QUOTA "User quota" (STORAGE ${kib} 10 MESSAGE 1 3)`,
    "T1 OK GETQUOTAROOT completed",
  ]);
  assert.deepEqual(await c.cmd('T2 GETQUOTA "User quota"'), [
    `* QUOTA "User quota" (STORAGE ${kib} 10 MESSAGE 1 3)`,
    "T2 OK GETQUOTA completed",
  ]);
  assert.match((await c.cmd('T3 GETQUOTA ""')).at(-1)!, /^T3 NO \[NONEXISTENT\]/);
  assert.match((await c.cmd("T4 GETQUOTAROOT Nowhere")).at(-1)!, /^T4 NO \[NONEXISTENT\]/);
  assert.match((await c.cmd("T5 GETQUOTAROOT")).at(-1)!, /^T5 BAD/);
});

Deno.test("An account without limits has no quota root", async () => {
  const c = await client({ alice: { storage: null, messages: null } });
  assert.deepEqual(await c.cmd("K GETQUOTAROOT Sent"), [
    "* QUOTAROOT Sent",
    "K OK GETQUOTAROOT completed",
  ]);
  assert.match((await c.cmd('K GETQUOTA "User quota"')).at(-1)!, /^K NO \[NONEXISTENT\]/);
});

Deno.test("APPEND and COPY over quota get NO [OVERQUOTA]; MOVE within the account does not", async () => {
  const c = await client({ alice: { storage: null, messages: 2 } });
  assert.match(await append(c, "INBOX", message("One")), /^AP OK/);
  assert.match(await append(c, "INBOX", message("Two")), /^AP OK/);
  assert.match(await append(c, "INBOX", message("Three")), /^AP NO \[OVERQUOTA\]/);
  await c.cmd("S SELECT INBOX");
  assert.match((await c.cmd("C COPY 1 Archive")).at(-1)!, /^C NO \[OVERQUOTA\]/);
  assert.match((await c.cmd("M MOVE 1 Archive")).at(-1)!, /^M OK/);
  assert.deepEqual((await c.cmd("S STATUS INBOX (MESSAGES)"))[0], "* STATUS INBOX (MESSAGES 1)");
  const big = await client({ alice: { storage: 1500, messages: null } });
  assert.match(await append(big, "INBOX", message("Big", "y".repeat(1000))), /^AP OK/);
  assert.match(
    await append(big, "INBOX", message("Big2", "y".repeat(1000))),
    /^AP NO \[OVERQUOTA\]/,
  );
  await big.cmd("S SELECT INBOX");
  assert.match((await big.cmd("C UID COPY 1 Trash")).at(-1)!, /^C NO \[OVERQUOTA\]/);
});

Deno.test("Another account's limits are its own", async () => {
  const store = await newStore();
  const quota = source(store, { alice: { storage: null, messages: 0 } });
  const bob = new TestClient(store, { quota });
  await bob.login("bob");
  assert.match(await append(bob, "INBOX", message("Fine")), /^AP OK/);
  const alice = new TestClient(store, { quota });
  await alice.login("alice");
  assert.match(await append(alice, "INBOX", message("Refused")), /^AP NO \[OVERQUOTA\]/);
});
