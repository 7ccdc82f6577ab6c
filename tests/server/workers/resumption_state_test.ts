import assert from "node:assert/strict";
import { allocateTicketUses, SharedTicketUses } from "../../../server/workers/ticket_uses.ts";
import {
  allocateSharedSessions,
  SharedSessionStore,
} from "../../../server/workers/session_store.ts";
import type { Session12 } from "../../../protocol/tls/tls12/session.ts";

const id = (n: number) => new Uint8Array(16).fill(n);

Deno.test("SharedTicketUses counts a ticket's uses for every Worker together", () => {
  const buffer = allocateTicketUses(64);
  const a = new SharedTicketUses(buffer, 2);
  const b = new SharedTicketUses(buffer, 2);
  const now = 1_700_000_000_000;
  assert.equal(a.take(id(1), now + 60_000, now), true);
  assert.equal(b.take(id(1), now + 60_000, now), true);
  assert.equal(a.take(id(1), now + 60_000, now), false);
  assert.equal(b.take(id(1), now + 60_000, now), false);
  assert.equal(b.take(id(2), now + 60_000, now), true, "another ticket has its own count");
  // Malformed ids are refused (a full handshake), never counted.
  assert.equal(a.take(new Uint8Array(16), now + 60_000, now), false);
  assert.equal(a.take(new Uint8Array(15).fill(3), now + 60_000, now), false);
});

Deno.test("SharedTicketUses takes expired tickets' slots and refuses when its table is full", () => {
  const buffer = allocateTicketUses(4);
  const uses = new SharedTicketUses(buffer, 1);
  const now = 1_700_000_000_000;
  for (let n = 1; n <= 4; n++) assert.equal(uses.take(id(n), now + 10_000, now), true);
  assert.equal(uses.take(id(5), now + 10_000, now), false, "full: refused, no count forgotten");
  assert.equal(uses.take(id(1), now + 10_000, now), false);
  const later = now + 20_000;
  assert.equal(uses.take(id(5), later + 10_000, later), true);
  assert.equal(uses.take(id(5), later + 10_000, later), false);
});

Deno.test("SharedTicketUses.usable peeks without counting a use", () => {
  const buffer = allocateTicketUses(4);
  const a = new SharedTicketUses(buffer, 2);
  const b = new SharedTicketUses(buffer, 2);
  const now = 1_700_000_000_000;
  assert.equal(a.usable(id(1), now), true, "a new ticket");
  assert.equal(a.usable(id(1), now), true, "peeking twice records nothing");
  assert.equal(a.take(id(1), now + 10_000, now), true);
  assert.equal(b.usable(id(1), now), true, "one use left");
  assert.equal(b.take(id(1), now + 10_000, now), true);
  assert.equal(a.usable(id(1), now), false, "used up, seen from every Worker");
  assert.equal(b.usable(id(1), now), false);
  for (let n = 2; n <= 4; n++) assert.equal(a.take(id(n), now + 10_000, now), true);
  assert.equal(a.usable(id(5), now), false, "full: a new ticket could not be counted");
  assert.equal(a.usable(id(5), now + 20_000), true, "expired tickets' slots are free again");
  assert.equal(a.usable(new Uint8Array(16), now), false, "malformed");
});

function session(n: number, createdAt: number, chainBytes = 0): Session12 {
  return {
    suite: 0xc02f,
    masterSecret: new Uint8Array(48).fill(n),
    extendedMasterSecret: true,
    peerChain: chainBytes > 0 ? [new Uint8Array(chainBytes).fill(n)] : [],
    serverName: new TextEncoder().encode("localhost"),
    createdAt,
  };
}

Deno.test("SharedSessionStore gives a session stored by one Worker to another", () => {
  let now = 1_700_000_000_000;
  const buffer = allocateSharedSessions({ ringBytes: 64 * 1024, slots: 64 });
  const a = new SharedSessionStore(buffer, { now: () => now, lifetimeMs: 60_000 });
  const b = new SharedSessionStore(buffer, { now: () => now, lifetimeMs: 60_000 });
  const sid = new Uint8Array(32).fill(7);
  a.put(sid, session(7, now, 1000));
  assert.deepEqual(b.get(sid), session(7, now, 1000));
  assert.equal(b.get(new Uint8Array(32).fill(8)), null);
  assert.equal(b.get(sid.subarray(0, 31)), null, "a prefix of an ID is another ID");
  b.delete(sid);
  assert.equal(a.get(sid), null);
  a.put(sid, session(7, now));
  now += 60_000;
  assert.equal(b.get(sid), null, "expired");
  for (const bad of [new Uint8Array(0), new Uint8Array(33)]) {
    a.put(bad, session(1, now));
    assert.equal(a.get(bad), null);
  }
});

Deno.test("SharedSessionStore overwrites its oldest sessions once its ring is full", () => {
  const now = 1_700_000_000_000;
  const buffer = allocateSharedSessions({ ringBytes: 32 * 1024, slots: 1024 });
  const store = new SharedSessionStore(buffer, { now: () => now });
  const sid = (n: number) => new Uint8Array(32).fill(n);
  // About 2 KiB each: 40 of them go round the ring more than twice.
  for (let n = 1; n <= 40; n++) store.put(sid(n), session(n, now, 2000));
  assert.equal(store.get(sid(1)), null);
  assert.deepEqual(store.get(sid(40)), session(40, now, 2000));
  assert.deepEqual(store.get(sid(39)), session(39, now, 2000));
  // Too large for a quarter of the ring: not kept.
  store.put(sid(41), session(41, now, 9000));
  assert.equal(store.get(sid(41)), null);
  assert.deepEqual(store.get(sid(40)), session(40, now, 2000));
});
