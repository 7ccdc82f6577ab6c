import assert from "node:assert/strict";
import { FRESH_AGE_CAP_MS, HandshakeGate } from "../../../server/connection/handshake_gate.ts";

/** A gate on a fake clock whose turns run only when the test says so. */
function fakeGate(budgetMs: number) {
  let clock = 0;
  const turns: (() => void)[] = [];
  const gate = new HandshakeGate({
    budgetMs,
    now: () => clock,
    defer: (turn) => void turns.push(turn),
  });
  const settle = () => new Promise<void>((r) => setTimeout(r, 0));
  return {
    gate,
    advance(ms: number) {
      clock += ms;
    },
    /** A step that costs `ms` of the fake clock and records its name. */
    step: (log: string[], name: string, ms: number) => () => {
      clock += ms;
      log.push(name);
      return name;
    },
    async nextTurn() {
      const pending = turns.splice(0);
      for (const t of pending) t();
      await settle();
    },
    settle,
  };
}

Deno.test("HandshakeGate runs steps at once while the turn's budget lasts", async () => {
  const g = fakeGate(4);
  const log: string[] = [];
  assert.equal(await g.gate.run(g.step(log, "a", 1)), "a");
  assert.equal(await g.gate.run(g.step(log, "b", 1)), "b");
  assert.deepEqual(log, ["a", "b"]);
  assert.equal(g.gate.waiting, 0);
});

Deno.test("HandshakeGate sets a turn timer only once a quarter of the budget is spent, and the rest carries over", async () => {
  let clock = 0;
  let timers = 0;
  const turns: (() => void)[] = [];
  const gate = new HandshakeGate({
    budgetMs: 4,
    now: () => clock,
    defer: (turn) => {
      timers++;
      turns.push(turn);
    },
  });
  const step = (ms: number) => () => {
    clock += ms;
  };
  // Three steps of 0.3 ms: 0.9 ms spent, under a quarter of 4 ms, and no timer.
  for (let i = 0; i < 3; i++) await gate.run(step(0.3));
  assert.equal(timers, 0);
  // The fourth passes the quarter: one timer, which makes the budget whole.
  await gate.run(step(0.3));
  assert.equal(timers, 1);
  await gate.run(step(0.3));
  assert.equal(timers, 1, "one timer per turn");
  turns.splice(0).forEach((turn) => turn());
  // A new turn with the whole budget: 14 steps of 0.3 ms run at once (the last starts at
  // 3.9 ms), one more timer on the way; the next step waits for that timer's turn.
  for (let i = 0; i < 14; i++) await gate.run(step(0.3));
  assert.equal(timers, 2);
  let ran = false;
  const waiting = gate.run(() => {
    ran = true;
  });
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(ran, false);
  assert.equal(gate.waiting, 1);
  turns.splice(0).forEach((turn) => turn());
  await waiting;
  assert.equal(ran, true);
});

Deno.test("HandshakeGate defers steps past the budget to later turns, in arrival order", async () => {
  const g = fakeGate(4);
  const log: string[] = [];
  const all = ["a", "b", "c", "d", "e", "f", "g"].map((n) => g.gate.run(g.step(log, n, 3)));
  await g.settle();
  // 3 ms each against a 4 ms budget: two steps per turn.
  assert.deepEqual(log, ["a", "b"]);
  assert.equal(g.gate.waiting, 5);
  await g.nextTurn();
  assert.deepEqual(log, ["a", "b", "c", "d"]);
  await g.nextTurn();
  await g.nextTurn();
  await g.nextTurn();
  assert.deepEqual(log, ["a", "b", "c", "d", "e", "f", "g"]);
  assert.deepEqual(await Promise.all(all), ["a", "b", "c", "d", "e", "f", "g"]);
  assert.equal(g.gate.waiting, 0);
});

Deno.test("HandshakeGate lets one long step through and makes the next one wait", async () => {
  const g = fakeGate(4);
  const log: string[] = [];
  const first = g.gate.run(g.step(log, "long", 50));
  const second = g.gate.run(g.step(log, "next", 1));
  await g.settle();
  assert.deepEqual(log, ["long"]);
  await g.nextTurn();
  assert.deepEqual(log, ["long", "next"]);
  await Promise.all([first, second]);
});

Deno.test("HandshakeGate passes a step's exception to its caller and keeps going", async () => {
  const g = fakeGate(4);
  const log: string[] = [];
  await assert.rejects(
    g.gate.run(() => {
      throw new Error("bad record");
    }),
    /bad record/,
  );
  assert.equal(await g.gate.run(g.step(log, "after", 1)), "after");
});

Deno.test("HandshakeGate with real timers drains a burst of steps", async () => {
  const gate = new HandshakeGate({ budgetMs: 1 });
  let done = 0;
  await Promise.all(
    Array.from({ length: 200 }, () =>
      gate.run(() => {
        const until = performance.now() + 0.05;
        while (performance.now() < until) { /* work */ }
        done++;
      })),
  );
  assert.equal(done, 200);
  assert.equal(gate.waiting, 0);
});

Deno.test("HandshakeGate serves handshakes under way first, then new handshakes in arrival order", async () => {
  const g = fakeGate(4);
  const log: string[] = [];
  const first = g.gate.run(g.step(log, "busy", 10));
  const waiting = [
    g.gate.run(g.step(log, "new1", 3), "fresh"),
    g.gate.run(g.step(log, "cont1", 3)),
    g.gate.run(g.step(log, "new2", 3), "fresh"),
    g.gate.run(g.step(log, "cont2", 3)),
    g.gate.run(g.step(log, "new3", 3), "fresh"),
  ];
  await g.settle();
  for (let i = 0; i < 4; i++) await g.nextTurn();
  await Promise.all([first, ...waiting]);
  assert.deepEqual(log, ["busy", "cont1", "cont2", "new1", "new2", "new3"]);
});

Deno.test("HandshakeGate lets new handshakes and unauthenticated records take turns", async () => {
  const g = fakeGate(4);
  const log: string[] = [];
  const first = g.gate.run(g.step(log, "busy", 10));
  const waiting = [
    g.gate.run(g.step(log, "rec1", 3), "record"),
    g.gate.run(g.step(log, "rec2", 3), "record"),
    g.gate.run(g.step(log, "rec3", 3), "record"),
    g.gate.run(g.step(log, "new1", 3), "fresh"),
    g.gate.run(g.step(log, "cont1", 3)),
    g.gate.run(g.step(log, "new2", 3), "fresh"),
  ];
  await g.settle();
  for (let i = 0; i < 6; i++) await g.nextTurn();
  await Promise.all([first, ...waiting]);
  assert.deepEqual(log, ["busy", "cont1", "rec1", "new1", "rec2", "new2", "rec3"]);
});

Deno.test("HandshakeGate allows a late turn no more than the budget", async () => {
  let clock = 0;
  const turns: (() => void)[] = [];
  const gate = new HandshakeGate({
    budgetMs: 4,
    now: () => clock,
    defer: (turn) => void turns.push(turn),
  });
  const log: string[] = [];
  const step = (name: string, ms: number) => () => {
    clock += ms;
    log.push(name);
  };
  const first = gate.run(step("first", 5));
  const waiting = ["a", "b", "c", "d"].map((n) => gate.run(step(n, 3)));
  await new Promise((r) => setTimeout(r, 0));
  // The turn comes 40 ms after it was asked for: still two 3 ms steps (the second starts at 3).
  clock += 40;
  for (const t of turns.splice(0)) t();
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual(log, ["first", "a", "b"]);
  for (const t of turns.splice(0)) t();
  await Promise.all([first, ...waiting]);
  assert.deepEqual(log, ["first", "a", "b", "c", "d"]);
});

Deno.test("HandshakeGate serves new handshakes past the age cap last, the newest of them first", async () => {
  const g = fakeGate(4);
  const log: string[] = [];
  const first = g.gate.run(g.step(log, "busy", 10));
  const old = [
    g.gate.run(g.step(log, "old1", 1), "fresh"),
    g.gate.run(g.step(log, "old2", 1), "fresh"),
  ];
  await g.settle();
  // Time passes beyond the cap (a slow turn); then more clients connect.
  g.advance(FRESH_AGE_CAP_MS + 1);
  const young = [
    g.gate.run(g.step(log, "young1", 1), "fresh"),
    g.gate.run(g.step(log, "young2", 1), "fresh"),
  ];
  await g.settle();
  for (let i = 0; i < 4; i++) await g.nextTurn();
  await Promise.all([first, ...old, ...young]);
  assert.deepEqual(log, ["busy", "young1", "young2", "old2", "old1"]);
});

Deno.test("HandshakeGate under a sustained flood of new handshakes serves one that just arrived within two turns", async () => {
  const g = fakeGate(4);
  const log: string[] = [];
  const all: Promise<unknown>[] = [];
  // Each turn comes 10 ms after the last, 10 ClientHellos arrive and 4 are served (1 ms each,
  // turns on time): the queue grows by 6 a turn and never empties.
  let turn = 0;
  const flood = () => {
    for (let i = 0; i < 10; i++) all.push(g.gate.run(g.step(log, `t${turn}-${i}`, 1), "fresh"));
  };
  for (; turn < 40; turn++) {
    flood();
    await g.settle();
    g.advance(10);
    await g.nextTurn();
  }
  // The queue holds 400 ms of arrivals; a client connects, then the flood goes on.
  all.push(g.gate.run(g.step(log, "honest", 1), "fresh"));
  let served = -1;
  for (let i = 0; i < 5 && served < 0; i++, turn++) {
    await g.settle();
    g.advance(10);
    await g.nextTurn();
    if (log.includes("honest")) served = i;
    flood();
  }
  assert.ok(served >= 0 && served <= 1, `served after ${served} turns`);
  // Every waiting step is served once the flood stops.
  for (let i = 0; i < 200 && g.gate.waiting > 0; i++) await g.nextTurn();
  await Promise.all(all);
  assert.equal(log.length, all.length);
});

Deno.test("HandshakeGate serves a peer's first records before the records of peers that sent many", async () => {
  const g = fakeGate(4);
  const log: string[] = [];
  const first = g.gate.run(g.step(log, "busy", 10));
  const waiting = [
    g.gate.run(g.step(log, "flood1", 3), "bulk"),
    g.gate.run(g.step(log, "flood2", 3), "bulk"),
    g.gate.run(g.step(log, "login", 3), "record"),
    g.gate.run(g.step(log, "new1", 3), "fresh"),
    g.gate.run(g.step(log, "flood3", 3), "bulk"),
  ];
  await g.settle();
  for (let i = 0; i < 6; i++) await g.nextTurn();
  await Promise.all([first, ...waiting]);
  // Records and new handshakes still take turns; bulk records go in arrival order.
  assert.deepEqual(log, ["busy", "login", "new1", "flood1", "flood2", "flood3"]);
});

Deno.test("HandshakeGate serves a returning client's handshake steps ahead of the queue, taking turns with it", async () => {
  const g = fakeGate(4);
  const log: string[] = [];
  const first = g.gate.run(g.step(log, "busy", 10));
  const waiting = [
    g.gate.run(g.step(log, "new1", 3), "fresh"),
    g.gate.run(g.step(log, "rec1", 3), "record"),
    g.gate.run(g.step(log, "new2", 3), "fresh"),
    g.gate.run(g.step(log, "back1", 3), "vouched"),
    g.gate.run(g.step(log, "cont1", 3)),
    g.gate.run(g.step(log, "back2", 3), "vouched"),
    g.gate.run(g.step(log, "back3", 3), "vouched"),
  ];
  await g.settle();
  for (let i = 0; i < 8; i++) await g.nextTurn();
  await Promise.all([first, ...waiting]);
  // Vouched steps take every other turn (a flood of them gets at most half); the rest go in
  // the order they had: handshakes under way first.
  assert.deepEqual(log, [
    "busy",
    "back1",
    "cont1",
    "back2",
    "rec1",
    "back3",
    "new1",
    "new2",
  ]);
});
