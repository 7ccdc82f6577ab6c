import assert from "node:assert/strict";
import { MIN_TICKET_LENGTH, TicketKeys } from "../../../protocol/tls/ticket_keys.ts";
import { provider } from "./_pair.ts";

const HOUR = 3600_000;

function clock(start = 1_700_000_000_000) {
  const c = { now: start, fn: () => c.now };
  return c;
}

Deno.test("TicketKeys seals and opens a state, and refuses forged or short tickets", () => {
  const keys = new TicketKeys({ provider });
  const state = new Uint8Array([1, 2, 3, 4]);
  const ticket = keys.seal(state);
  assert.equal(ticket.length, MIN_TICKET_LENGTH + state.length);
  const opened = keys.open(ticket)!;
  assert.deepEqual(opened.state, state);
  assert.equal(opened.stale, false);
  for (let i = 0; i < ticket.length; i++) {
    const forged = ticket.slice();
    forged[i]! ^= 0x80;
    assert.equal(keys.open(forged), null, `byte ${i}`);
  }
  assert.equal(keys.open(ticket.subarray(0, MIN_TICKET_LENGTH - 1)), null);
  assert.equal(new TicketKeys({ provider }).open(ticket), null);
});

Deno.test("TicketKeys rotates on the injected clock and retires keys after the ring", () => {
  const c = clock();
  const keys = new TicketKeys({ provider, now: c.fn, count: 2, keyLifetimeMs: 12 * HOUR });
  assert.equal(keys.ticketLifetimeSeconds, 24 * 3600);
  const first = keys.seal(new Uint8Array([1]));
  c.now += 12 * HOUR;
  const second = keys.seal(new Uint8Array([2]));
  assert.notDeepEqual(first.subarray(0, 16), second.subarray(0, 16));
  assert.equal(keys.open(first)!.stale, true);
  assert.equal(keys.open(second)!.stale, false);
  c.now += 12 * HOUR;
  assert.equal(keys.open(first), null);
  assert.equal(keys.open(second)!.stale, true);
  c.now += 12 * HOUR;
  assert.equal(keys.open(second), null);
});

Deno.test("TicketKeys uses the injected randomness for key names and nonces", () => {
  let n = 0;
  const random = (len: number) => new Uint8Array(len).fill(++n);
  const keys = new TicketKeys({ provider, random });
  const t = keys.seal(new Uint8Array(0));
  // Draws: the key (1), its name (2), the vouched twin's key (3) and name (4), the nonce (5).
  assert.deepEqual(t.subarray(0, 16), new Uint8Array(16).fill(2));
  assert.deepEqual(t.subarray(16, 28), new Uint8Array(12).fill(5));
  assert.deepEqual(keys.seal(new Uint8Array(0), true).subarray(0, 16), new Uint8Array(16).fill(4));
  assert.throws(() => new TicketKeys({ provider, count: 0 }), RangeError);
});

Deno.test("TicketKeys with one secret open each other's tickets, per period, and not another secret's", () => {
  const c = clock(1_700_000_000_000);
  const secret = new Uint8Array(32).fill(7);
  const options = { provider, now: c.fn, count: 2, keyLifetimeMs: 12 * HOUR, secret };
  const a = new TicketKeys(options);
  const ticket = a.seal(new Uint8Array([1, 2]));
  // Another holder made later in the same period, or in the next, opens it.
  c.now += HOUR;
  const b = new TicketKeys(options);
  assert.deepEqual(b.open(ticket)!.state, new Uint8Array([1, 2]));
  assert.deepEqual(a.open(b.seal(new Uint8Array([3])))!.state, new Uint8Array([3]));
  c.now += 12 * HOUR;
  assert.equal(b.open(ticket)!.stale, true);
  c.now += 12 * HOUR;
  assert.equal(b.open(ticket), null, "retired after count periods");
  const other = new TicketKeys({ ...options, secret: new Uint8Array(32).fill(8) });
  assert.equal(other.open(a.seal(new Uint8Array([4]))), null);
  assert.throws(() => new TicketKeys({ ...options, secret: new Uint8Array(16) }), RangeError);
});

Deno.test("TicketKeys seals vouched tickets under a twin key: open takes both, openVouched only those", () => {
  for (const secret of [undefined, new Uint8Array(32).fill(9)]) {
    const keys = new TicketKeys({ provider, ...(secret ? { secret } : {}) });
    const plain = keys.seal(new Uint8Array([1]));
    const vouched = keys.seal(new Uint8Array([2]), true);
    assert.notDeepEqual(plain.subarray(0, 16), vouched.subarray(0, 16), "distinct key names");
    assert.deepEqual(keys.open(plain), {
      state: new Uint8Array([1]),
      stale: false,
      keyAgeMs: keys.open(plain)!.keyAgeMs,
      vouched: false,
    });
    assert.equal(keys.open(vouched)!.vouched, true);
    assert.deepEqual(keys.openVouched(vouched)!.state, new Uint8Array([2]));
    assert.equal(keys.openVouched(plain), null, "a handshake's ticket is not vouched");
    // The name is bound to the key: a plain ticket renamed as vouched does not open.
    const renamed = plain.slice();
    renamed.set(vouched.subarray(0, 16));
    assert.equal(keys.openVouched(renamed), null);
    assert.equal(keys.open(renamed), null);
  }
});
