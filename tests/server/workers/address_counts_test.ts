import assert from "node:assert/strict";
import {
  addressWords,
  allocateAddressCounts,
  clearAddressColumn,
  SharedAddressCounts,
} from "../../../server/workers/address_counts.ts";
import type { AddressGate } from "../../../server/connection/listener.ts";

/** A fallback gate that records what reached it. */
function fallback(): AddressGate & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    claim: (address) => (calls.push(`claim ${address}`), Promise.resolve(true)),
    release: (address) => void calls.push(`release ${address}`),
  };
}

Deno.test("addressWords() reads IPv4, IPv4-mapped and IPv6 forms alike and refuses the rest", () => {
  assert.deepEqual(addressWords("127.0.0.1"), addressWords("::ffff:127.0.0.1"));
  assert.deepEqual([...addressWords("::1")!], [0, 0, 0, 1]);
  assert.deepEqual(addressWords("2001:db8::1"), addressWords("2001:0db8:0:0:0:0:0:1"));
  assert.notDeepEqual(addressWords("2001:db8::1"), addressWords("2001:db8::2"));
  for (const bad of ["", "localhost", "1.2.3.256", "1::2::3", "1:2:3:4:5:6:7:8:9", "::"]) {
    assert.equal(addressWords(bad), null, bad);
  }
});

Deno.test("SharedAddressCounts holds a limit for two Workers together and frees slots", async () => {
  const buffer = allocateAddressCounts(4);
  const gateA = new SharedAddressCounts(buffer, fallback());
  const gateB = new SharedAddressCounts(buffer, fallback());
  assert.equal(await gateA.claim("10.0.0.1", 2), true);
  assert.equal(await gateB.claim("10.0.0.1", 2), true);
  assert.equal(await gateA.claim("10.0.0.1", 2), false);
  assert.equal(await gateB.claim("10.0.0.2", 2), true, "another address has its own count");
  gateB.release("10.0.0.1");
  assert.equal(await gateA.claim("10.0.0.1", 2), true);
  // A full table sends further addresses to the fallback.
  const spill = fallback();
  const gateC = new SharedAddressCounts(buffer, spill);
  for (let i = 3; i < 10; i++) await gateC.claim(`10.0.0.${i}`, 2);
  assert.ok(spill.calls.length > 0);
  assert.equal(await gateC.claim("not an address", 2), true);
  assert.ok(spill.calls.includes("claim not an address"));
});

Deno.test("clearAddressColumn() forgets the connections of one Worker and keeps the others'", async () => {
  const buffer = allocateAddressCounts(16, 2);
  const first = new SharedAddressCounts(buffer, fallback(), 0);
  const second = new SharedAddressCounts(buffer, fallback(), 1);
  assert.equal(await first.claim("10.0.0.1", 3), true);
  assert.equal(await first.claim("10.0.0.1", 3), true);
  assert.equal(await second.claim("10.0.0.1", 3), true);
  assert.equal(await second.claim("10.0.0.1", 3), false);
  // The first Worker died holding two: its replacement counts in the same column, from 0.
  clearAddressColumn(buffer, 0);
  const replacement = new SharedAddressCounts(buffer, fallback(), 0);
  assert.equal(await replacement.claim("10.0.0.1", 3), true);
  assert.equal(await second.claim("10.0.0.1", 3), true);
  assert.equal(await replacement.claim("10.0.0.1", 3), false);
  // A release never takes a column below zero.
  replacement.release("10.0.0.1");
  replacement.release("10.0.0.1");
  assert.equal(await second.claim("10.0.0.1", 3), true);
  assert.equal(await second.claim("10.0.0.1", 3), false);
  assert.throws(() => new SharedAddressCounts(buffer, fallback(), 2), RangeError);
});
