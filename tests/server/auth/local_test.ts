import assert from "node:assert/strict";
import type { ImapAuthenticator } from "../../../protocol/imap/auth.ts";
import { MemoryMailStore } from "../../../mailstore/memory/mod.ts";
import { hashPassword, verifyPasswordAsync } from "../../../mailstore/password.ts";
import { ImapError } from "../../../protocol/imap/errors.ts";
import {
  addressKey,
  LocalAuthenticator,
  type LocalAuthenticatorOptions,
} from "../../../server/auth/local.ts";
import { BroadcastFailureFeed } from "../../../server/workers/failure_feed.ts";

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
    scryptCost: LOW,
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
  for (let i = 0; i < 3; i++) assert.equal(await auth.verify("alice", `bad${i}`, peer), null);
  assert.equal(auth.failures(peer), 3);
  assert.equal(verified.length, 3);
  assert.equal(await auth.verify("alice", "bad3", peer), null);
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
    assert.equal((await auth.check("alice", `worse${i}`, peer)).ok, false);
  }
  assert.deepEqual(periods, [2000, 4000, 8000, 10_000, 10_000]);
  advance(10_000);
  assert.equal((await auth.verify("alice", "secret", peer))?.name, "alice");
  assert.equal(auth.failures(peer), 0, "success clears the record");
  assert.ok(sleeps.every((ms) => ms === 1000));
});

Deno.test("failures are forgotten after the quiet period", async () => {
  const { auth, advance } = await fixture({ forgetAfterMs: 60_000 });
  for (let i = 0; i < 3; i++) await auth.verify("alice", `bad${i}`, "192.0.2.9");
  assert.equal(auth.failures("192.0.2.9"), 3);
  advance(60_001);
  assert.equal(auth.failures("192.0.2.9"), 0);
  assert.equal(auth.trackedAddresses, 0);
});

Deno.test("the address table stays bounded and evicts the oldest entries", async () => {
  const { auth } = await fixture({ maxTrackedAddresses: 3 });
  for (let i = 1; i <= 10; i++) {
    assert.equal(await auth.verify("alice", `bad${i}`, `10.0.0.${i}`), null);
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
  for (let i = 1; i <= 4; i++) await auth.verify("alice", `bad${i}`, `2001:db8:5:6::${i}`);
  const r = await auth.check("alice", "secret", "2001:db8:5:6::99");
  assert.equal(r.ok, false);
});

Deno.test("concurrent checks queue instead of being refused, and all succeed", async () => {
  const gates: (() => void)[] = [];
  let running = 0;
  let peak = 0;
  const { auth } = await fixture({
    maxConcurrent: 2,
    cacheTtlMs: 0,
    verifyPassword: (password, encoded) => {
      running++;
      peak = Math.max(peak, running);
      return new Promise((resolve) =>
        gates.push(() => {
          running--;
          resolve(verifyPasswordAsync(password, encoded));
        })
      );
    },
  });
  let settled = 0;
  const all = Array.from(
    { length: 100 },
    () => auth.check("alice", "secret", "192.0.2.1").finally(() => settled++),
  );
  while (settled < 100) {
    gates.shift()?.();
    await new Promise((r) => setTimeout(r, 0));
  }
  const outcomes = await Promise.all(all);
  assert.ok(outcomes.every((o) => o.ok), "100 right logins from one address all succeed");
  assert.equal(peak, 2, "never more than maxConcurrent checks at once");
  assert.equal(auth.failures("192.0.2.1"), 0);
});

Deno.test("a full queue answers busy (UNAVAILABLE), never wrong credentials", async () => {
  const gates: (() => void)[] = [];
  const { auth } = await fixture({
    maxConcurrent: 1,
    maxQueued: 2,
    maxQueuedPerAddress: 1,
    cacheTtlMs: 0,
    verifyPassword: () => new Promise((resolve) => gates.push(() => resolve(true))),
  });
  const a1 = auth.check("alice", "secret", "192.0.2.1");
  const a2 = auth.check("alice", "secret", "192.0.2.1");
  await new Promise((r) => setTimeout(r, 0));
  // One runs and one waits for 192.0.2.1, whose share of the queue is then full.
  assert.deepEqual(await auth.check("alice", "secret", "192.0.2.1"), {
    ok: false,
    reason: "busy",
    retryAfterMs: 2000,
  });
  const b1 = auth.check("alice", "secret", "192.0.2.2");
  await new Promise((r) => setTimeout(r, 0));
  const c1 = await auth.check("alice", "secret", "192.0.2.3");
  assert.ok(!c1.ok && c1.reason === "busy", "the whole queue is full");
  await assert.rejects(
    auth.login("alice", "secret", { peer: "192.0.2.4:1234" }),
    (e: unknown) => e instanceof ImapError && e.code === "UNAVAILABLE",
  );
  while (gates.length > 0) {
    gates.shift()?.();
    await new Promise((r) => setTimeout(r, 0));
  }
  for (const r of await Promise.all([a1, a2, b1])) assert.equal(r.ok, true);
  assert.equal(auth.failures("192.0.2.1"), 0, "busy is not a failure");
});

Deno.test("the queue serves addresses round-robin", async () => {
  const order: string[] = [];
  const gates: (() => void)[] = [];
  const { auth } = await fixture({
    maxConcurrent: 1,
    cacheTtlMs: 0,
    verifyPassword: () => new Promise((resolve) => gates.push(() => resolve(true))),
  });
  const all: Promise<unknown>[] = [];
  for (let i = 0; i < 4; i++) {
    all.push(auth.check("alice", "secret", "10.0.0.1").then(() => order.push("a")));
  }
  await new Promise((r) => setTimeout(r, 0));
  for (let i = 0; i < 2; i++) {
    all.push(auth.check("alice", "secret", "10.0.0.2").then(() => order.push("b")));
  }
  while (order.length < 6) {
    gates.shift()?.();
    await new Promise((r) => setTimeout(r, 0));
  }
  await Promise.all(all);
  assert.deepEqual(order, ["a", "a", "b", "a", "b", "a"]);
});

Deno.test("the cache answers a repeated right login without a check", async () => {
  const { auth, verified, advance } = await fixture({ cacheTtlMs: 60_000 });
  assert.equal((await auth.check("alice", "secret", "192.0.2.1")).ok, true);
  assert.equal((await auth.check("alice", "secret", "192.0.2.2")).ok, true);
  assert.equal(verified.length, 1);
  assert.equal((await auth.check("alice", "Secret", "192.0.2.2")).ok, false);
  assert.equal(verified.length, 2, "another password is checked");
  advance(60_001);
  assert.equal((await auth.check("alice", "secret", "192.0.2.1")).ok, true);
  assert.equal(verified.length, 3, "an expired entry is checked again");
  auth.clearCache();
  assert.equal(auth.cachedOutcomes, 0);
  assert.equal((await auth.check("alice", "secret", "192.0.2.1")).ok, true);
  assert.equal(verified.length, 4, "SIGHUP's clearCache() forgets every entry");
});

Deno.test("a password change or removal in the store invalidates the cache", async () => {
  const { auth, store, verified } = await fixture();
  assert.equal((await auth.check("alice", "secret", "192.0.2.1")).ok, true);
  // As `postern user passwd` does from another process: only the stored hash changes.
  await store.setPasswordHash("alice", hashPassword("new one", LOW));
  assert.equal((await auth.check("alice", "secret", "192.0.2.1")).ok, false);
  assert.equal(verified.length, 2);
  assert.equal((await auth.check("alice", "new one", "192.0.2.1")).ok, true);
  assert.equal((await auth.check("alice", "new one", "192.0.2.1")).ok, true);
  assert.equal(verified.length, 3);
  await store.deleteAccount("alice");
  assert.equal((await auth.check("alice", "new one", "192.0.2.1")).ok, false);
  await store.createAccount("alice", hashPassword("new one", LOW));
  assert.equal((await auth.check("alice", "new one", "192.0.2.1")).ok, true);
});

Deno.test("a repeated wrong password is answered from the cache and counts once", async () => {
  const { auth, verified, sleeps, advance } = await fixture({ negativeCacheTtlMs: 30_000 });
  for (let i = 0; i < 10; i++) {
    assert.equal((await auth.check("alice", "old password", "192.0.2.1")).ok, false);
  }
  assert.equal(verified.length, 1);
  assert.equal(auth.failures("192.0.2.1"), 1);
  assert.equal(sleeps.length, 10, "every failure is still delayed");
  assert.equal((await auth.check("alice", "secret", "192.0.2.1")).ok, true);
  advance(30_001);
  assert.equal((await auth.check("alice", "old password", "192.0.2.1")).ok, false);
  assert.equal(verified.length, 3);
});

Deno.test("with the cache off every login is checked", async () => {
  const { auth, verified } = await fixture({ cacheTtlMs: 0, negativeCacheTtlMs: 0 });
  for (let i = 0; i < 3; i++) await auth.check("alice", "secret", "192.0.2.1");
  for (let i = 0; i < 3; i++) await auth.check("alice", "nope", "192.0.2.2");
  assert.equal(verified.length, 6);
  assert.equal(auth.cachedOutcomes, 0);
});

Deno.test("a login re-hashes an imported or differently priced hash to the current cost", async () => {
  const { auth, store } = await fixture({ scryptCost: { ln: 5, r: 8, p: 1 } });
  assert.equal((await auth.check("alice", "secret", "192.0.2.1")).ok, true);
  const rehashed = (await store.getAccount("alice"))!.passwordHash!;
  assert.match(rehashed, /^\$scrypt\$ln=5,r=8,p=1\$/);
  // SHA512-CRYPT "Hello world!" from the SHA-crypt specification's test vectors.
  await store.createAccount(
    "imported",
    "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1",
  );
  assert.equal((await auth.check("imported", "Hello world", "192.0.2.1")).ok, false);
  assert.match((await store.getAccount("imported"))!.passwordHash!, /^\$6\$/);
  assert.equal((await auth.check("imported", "Hello world!", "192.0.2.1")).ok, true);
  const upgraded = (await store.getAccount("imported"))!.passwordHash!;
  assert.match(upgraded, /^\$scrypt\$ln=5,r=8,p=1\$/);
  assert.equal(await verifyPasswordAsync("Hello world!", upgraded), true);
  assert.equal((await auth.check("imported", "Hello world!", "192.0.2.1")).ok, true);
});

Deno.test("login() fits the IMAP authenticator contract and throttles across ports", async () => {
  const { auth } = await fixture();
  const imap: Pick<ImapAuthenticator, "login"> = auth;
  assert.deepEqual(await imap.login("alice", "secret", { peer: "127.0.0.1:50000", tls: true }), {
    accountName: "alice",
  });
  for (let port = 50001; port <= 50004; port++) {
    const ctx = { peer: `127.0.0.1:${port}`, tls: true };
    assert.equal(await imap.login("alice", `bad${port}`, ctx), null);
  }
  assert.equal(auth.failures("127.0.0.1"), 4);
  const r = await auth.check("alice", "secret", "127.0.0.1:50005");
  assert.ok(!r.ok && r.reason === "throttled");
  // The right password while throttled is not called wrong: NO [UNAVAILABLE] with a retry text.
  await assert.rejects(
    imap.login("alice", "secret", { peer: "127.0.0.1:50006", tls: true }),
    (e: unknown) =>
      e instanceof ImapError && e.status === "NO" && e.code === "UNAVAILABLE" &&
      /try again in \d+ s/.test(e.message),
  );
});

Deno.test("simultaneous logins with the same password share one check", async () => {
  const gates: (() => void)[] = [];
  const { auth, verified } = await fixture({
    verifyPassword: (password, encoded) =>
      new Promise((resolve) => {
        verified.push(encoded);
        gates.push(() => resolve(verifyPasswordAsync(password, encoded)));
      }),
  });
  let settled = 0;
  const right = Array.from(
    { length: 50 },
    (_, i) => auth.check("alice", "secret", `10.0.${i}.1`).finally(() => settled++),
  );
  const wrong = Array.from(
    { length: 5 },
    () => auth.check("alice", "guess", "10.9.9.9").finally(() => settled++),
  );
  while (settled < 55) {
    gates.shift()?.();
    await new Promise((r) => setTimeout(r, 0));
  }
  assert.ok((await Promise.all(right)).every((o) => o.ok));
  assert.ok((await Promise.all(wrong)).every((o) => !o.ok && o.reason === "invalid"));
  assert.equal(verified.length, 2, "one check for the right password, one for the wrong one");
  assert.equal(auth.failures("10.9.9.9"), 1, "the shared failure counts once");
});

Deno.test("Workers' authenticators share cached verdicts over their feed, and the stamp still rules", async () => {
  const name = `postern-auth-test-${crypto.randomUUID()}`;
  const key = crypto.getRandomValues(new Uint8Array(32));
  const feedA = new BroadcastFailureFeed(name, key);
  const feedB = new BroadcastFailureFeed(name, key);
  try {
    const a = await fixture({ cacheTtlMs: 60_000, failureFeed: feedA });
    // The second Worker's authenticator reads the same store.
    const verifiedB: string[] = [];
    const b = new LocalAuthenticator({
      store: a.store,
      // The fixture's clock: a verdict carries when it expires.
      now: () => 1_000_000,
      sleep: () => Promise.resolve(),
      scryptCost: LOW,
      cacheTtlMs: 60_000,
      failureFeed: feedB,
      verifyPassword: (password, encoded) => {
        verifiedB.push(encoded);
        return verifyPasswordAsync(password, encoded);
      },
    });
    assert.equal((await a.auth.check("alice", "secret", "192.0.2.1")).ok, true);
    for (let i = 0; i < 50 && b.cachedOutcomes === 0; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal((await b.check("alice", "secret", "192.0.2.2")).ok, true);
    assert.equal(verifiedB.length, 0, "the other Worker's check was a hit here");
    // A password change reaches both: the verdict holds only against the hash it was made on.
    await a.store.setPasswordHash("alice", hashPassword("new one", LOW));
    assert.equal((await b.check("alice", "secret", "192.0.2.2")).ok, false);
    assert.equal(verifiedB.length, 1);
    // A verdict from a feed without the key, or malformed, is ignored.
    feedA.publish({
      kind: "verdict",
      key: "x".repeat(31),
      valid: true,
      stamp: null,
      madeAt: 1_000_000,
      expires: 1e15,
    });
    assert.equal((await b.check("alice", "new one", "192.0.2.2")).ok, true);
    // After a reload cleared it, a verdict made before is not taken.
    b.clearCache();
    feedA.publish({
      kind: "verdict",
      key: "y".repeat(32),
      valid: true,
      stamp: null,
      madeAt: 999_999,
      expires: 1e15,
    });
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(b.cachedOutcomes, 0);
  } finally {
    feedA.close();
    feedB.close();
  }
});
