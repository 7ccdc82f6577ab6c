import assert from "node:assert/strict";
import { allocateRelayCounts, BroadcastRelay } from "../../../server/workers/event_relay.ts";
import type { MailboxEvent } from "../../../mailstore/mail_store.ts";

const expunged = (uid: number): MailboxEvent =>
  ({ kind: "expunge", mailboxId: 7, uids: [uid] }) as unknown as MailboxEvent;

function pair() {
  const name = `relay-test-${crypto.randomUUID()}`;
  const buffer = allocateRelayCounts(2);
  const a = new BroadcastRelay(name, { buffer, column: 0 });
  const b = new BroadcastRelay(name, { buffer, column: 1 });
  return { a, b, buffer, name };
}

Deno.test("BroadcastRelay.settled waits for the events another Worker published before it", async () => {
  const { a, b } = pair();
  try {
    const heard: number[] = [];
    b.subscribe((e) => heard.push((e as unknown as { uids: number[] }).uids[0]!));
    // Nothing on its way: settled at once, and a Worker's own events are not waited for.
    await b.settled();
    b.publish(expunged(99));
    await b.settled();
    for (let uid = 1; uid <= 3; uid++) a.publish(expunged(uid));
    // The events are posted, not yet delivered (delivery takes a task).
    assert.deepEqual(heard, []);
    await b.settled(60_000);
    assert.deepEqual(heard, [1, 2, 3]);
  } finally {
    a.close();
    b.close();
  }
});

Deno.test("BroadcastRelay.settled gives up after its timeout when an event never comes", async () => {
  const { a, b, buffer } = pair();
  try {
    // Worker 1 counted an event it never posted (it failed in between, say).
    Atomics.add(new Int32Array(buffer), 0, 1);
    await b.settled(20);
    // Later events still settle: the count heard catches up with the table.
    a.publish(expunged(1));
    await b.settled(60_000);
  } finally {
    a.close();
    b.close();
  }
});

Deno.test("BroadcastRelay ignores messages of another shape on its channel", async () => {
  const { a, b, name } = pair();
  const stranger = new BroadcastChannel(name);
  try {
    const heard: unknown[] = [];
    b.subscribe((e) => heard.push(e));
    stranger.postMessage({ kind: "expunge", mailboxId: 7, uids: [1] });
    stranger.postMessage({ from: 5, seq: 1, event: expunged(2) });
    stranger.postMessage({ from: 0, seq: 1, event: { kind: "rm -rf", mailboxId: 7 } });
    a.publish(expunged(3));
    await b.settled(60_000);
    assert.deepEqual(heard, [expunged(3)]);
  } finally {
    stranger.close();
    a.close();
    b.close();
  }
});
