import assert from "node:assert/strict";
import type { ImapAuthenticator } from "../../../protocol/imap/auth.ts";
import { MemoryMailStore } from "../../../mailstore/memory/mod.ts";
import { hashPassword, verifyPasswordAsync } from "../../../mailstore/password.ts";
import {
  addressKey,
  LocalAuthenticator,
  type LocalAuthenticatorOptions,
} from "../../../server/auth/local.ts";

const LOW = { ln: 4, r: 8, p: 1 };

async function fixture(options: Partial<LocalAuthenticatorOptions> = {}) {
  const store = new MemoryMailStore();
  await store.createAccount("alice", hashPassword("secret", LOW));
  await store.createAccount("certonly", null);
  let now = 1_000_000;
  const sleeps: number[] = [];
  const verified: string[] = [];
  const auth = new LocalAuthenticator({
    store,
    now: () => now,
    sleep: (ms) => {
      sleeps.push(ms);
      return Promise.resolve();
    },
    dummyCost: LOW,
    verifyPassword: (password, encoded) => {
      verified.push(encoded);
      return verifyPasswordAsync(password, encoded);
    },
    ...options,
  });
  return {
    store,
    auth,
    sleeps,
    verified,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

Deno.test("verify() returns the account for the right password without delay", async () => {
  const { auth, sleeps } = await fixture();
  const account = await auth.verify("alice", "secret", "192.0.2.1");
  assert.equal(account?.name, "alice");
  assert.deepEqual(sleeps, []);
  assert.equal(auth.failures("192.0.2.1"), 0);
  assert.equal(auth.trackedAddresses, 0);
});

Deno.test("verify() delays a wrong password by at least a second", async () => {
  const { auth, sleeps } = await fixture();
  assert.equal(await auth.verify("alice", "wrong", "192.0.2.1"), null);
  assert.deepEqual(sleeps, [1000]);
  assert.equal(auth.failures("192.0.2.1"), 1);
});

Deno.test("unknown users and password-less accounts cost one dummy check and fail", async () => {
  const { auth, verified, sleeps } = await fixture();
  assert.equal(await auth.verify("nobody", "secret", "192.0.2.1"), null);
  assert.equal(await auth.verify("certonly", "", "192.0.2.2"), null);
  assert.equal(await auth.verify("x".repeat(10_000), "secret", "192.0.2.3"), null);
  assert.equal(verified.length, 3, "every attempt runs exactly one scrypt check");
  for (const encoded of verified) assert.match(encoded, /^\$scrypt\$ln=4,r=8,p=1\$/);
  assert.equal(new Set(verified).size, 1, "the same dummy hash each time");
  assert.deepEqual(sleeps, [1000, 1000, 1000]);
});

Deno.test("repeated failures from one address back off exponentially up to a cap", async () => {
  const { auth, sleeps, verified, advance } = await fixture({ backoffMaxMs: 10_000 });
  const peer = "198.51.100.7";
  for (let i = 0; i < 3; i++) assert.equal(await auth.verify("alice", "bad", peer), null);
  assert.equal(auth.failures(peer), 3);
  assert.equal(verified.length, 3);
  assert.equal(await auth.verify("alice", "bad", peer), null);
  // Four failures: blocked for 2 s. Even the right password is refused without a check.
  const refused = await auth.check("alice", "secret", peer);
  assert.deepEqual(refused, { ok: false, reason: "throttled", retryAfterMs: 2000 });
  assert.equal(verified.length, 4);
  assert.equal((await auth.check("alice", "secret", "198.51.100.8")).ok, true);
  const periods: number[] = [];
  for (let i = 0; i < 5; i++) {
    const r = await auth.check("alice", "secret", peer);
    assert.ok(!r.ok && r.reason === "throttled");
    periods.push(r.retryAfterMs);
    advance(r.retryAfterMs);
    assert.equal((await auth.check("alice", "bad", peer)).ok, false);
  }
  assert.deepEqual(periods, [2000, 4000, 8000, 10_000, 10_000]);
  advance(10_000);
  assert.equal((await auth.verify("alice", "secret", peer))?.name, "alice");
  assert.equal(auth.failures(peer), 0, "success clears the record");
  assert.ok(sleeps.every((ms) => ms === 1000));
});

Deno.test("failures are forgotten after the quiet period", async () => {
  const { auth, advance } = await fixture({ forgetAfterMs: 60_000 });
  for (let i = 0; i < 3; i++) await auth.verify("alice", "bad", "192.0.2.9");
  assert.equal(auth.failures("192.0.2.9"), 3);
  advance(60_001);
  assert.equal(auth.failures("192.0.2.9"), 0);
  assert.equal(auth.trackedAddresses, 0);
});

Deno.test("the address table stays bounded and evicts the oldest entries", async () => {
  const { auth } = await fixture({ maxTrackedAddresses: 3 });
  for (let i = 1; i <= 10; i++) {
    assert.equal(await auth.verify("alice", "bad", `10.0.0.${i}`), null);
    assert.ok(auth.trackedAddresses <= 3);
  }
  assert.equal(auth.failures("10.0.0.1"), 0);
  assert.equal(auth.failures("10.0.0.10"), 1);
});

Deno.test("IPv6 peers are grouped by /64 and IPv4-mapped peers as IPv4", async () => {
  assert.equal(addressKey("2001:db8:1:2::1"), addressKey("2001:DB8:1:2:ffff::9"));
  assert.notEqual(addressKey("2001:db8:1:2::1"), addressKey("2001:db8:1:3::1"));
  assert.equal(addressKey("[2001:db8::1%eth0]"), "2001:db8:0:0::/64");
  assert.equal(addressKey("::ffff:192.0.2.1"), "192.0.2.1");
  assert.equal(addressKey("::1"), "0:0:0:0::/64");
  assert.equal(addressKey("192.0.2.1"), "192.0.2.1");
  assert.equal(addressKey("1:2:3:4:5:6:7:8:9"), "1:2:3:4:5:6:7:8:9");
  assert.equal(addressKey("192.0.2.1:50122"), "192.0.2.1");
  assert.equal(addressKey("[2001:db8:1:2::1]:993"), addressKey("2001:db8:1:2::7"));
  assert.equal(addressKey("[::ffff:192.0.2.1]:50122"), "192.0.2.1");
  const { auth } = await fixture();
  for (let i = 1; i <= 4; i++) await auth.verify("alice", "bad", `2001:db8:5:6::${i}`);
  const r = await auth.check("alice", "secret", "2001:db8:5:6::99");
  assert.equal(r.ok, false);
});

Deno.test("concurrent checks are bounded per address and overall", async () => {
  const gates: (() => void)[] = [];
  const { auth } = await fixture({
    maxConcurrentPerAddress: 2,
    maxConcurrent: 2,
    maxQueued: 1,
    verifyPassword: () => new Promise((resolve) => gates.push(() => resolve(false))),
  });
  const a1 = auth.check("alice", "x", "192.0.2.1");
  const a2 = auth.check("alice", "x", "192.0.2.1");
  await Promise.resolve();
  const a3 = await auth.check("alice", "x", "192.0.2.1");
  assert.deepEqual(a3, { ok: false, reason: "throttled", retryAfterMs: 1000 });
  // Two checks run; a third address waits in the queue; a fourth is refused.
  const b1 = auth.check("alice", "x", "192.0.2.2");
  await new Promise((r) => setTimeout(r, 0));
  const c1 = await auth.check("alice", "x", "192.0.2.3");
  assert.ok(!c1.ok && c1.reason === "throttled");
  for (let i = 0; i < 10 && gates.length < 3; i++) {
    gates.shift()?.();
    await new Promise((r) => setTimeout(r, 0));
  }
  while (gates.length > 0) {
    gates.shift()?.();
    await new Promise((r) => setTimeout(r, 0));
  }
  for (const r of await Promise.all([a1, a2, b1])) {
    assert.deepEqual(r, { ok: false, reason: "invalid" });
  }
});

Deno.test("login() fits the IMAP authenticator contract and throttles across ports", async () => {
  const { auth } = await fixture();
  const imap: Pick<ImapAuthenticator, "login"> = auth;
  assert.deepEqual(await imap.login("alice", "secret", { peer: "127.0.0.1:50000", tls: true }), {
    accountName: "alice",
  });
  for (let port = 50001; port <= 50004; port++) {
    assert.equal(await imap.login("alice", "bad", { peer: `127.0.0.1:${port}`, tls: true }), null);
  }
  assert.equal(auth.failures("127.0.0.1"), 4);
  const r = await auth.check("alice", "secret", "127.0.0.1:50005");
  assert.ok(!r.ok && r.reason === "throttled");
});
