import assert from "node:assert/strict";
import { TurnBudget } from "../../../server/serve/turn_budget.ts";

/** A budget on a fake clock whose turns end only when the test says so. */
function fakeBudget(budgetMs: number) {
  let clock = 0;
  const turns: (() => void)[] = [];
  const budget = new TurnBudget({ budgetMs, now: () => clock, defer: (t) => void turns.push(t) });
  const settle = () => new Promise<void>((r) => setTimeout(r, 0));
  /** A session: passes the budget, then spends `ms` of the clock on its command. */
  const command = async (log: string[], name: string, ms: number) => {
    const turn = budget.pass();
    if (turn !== undefined) await turn;
    clock += ms;
    log.push(name);
  };
  return {
    budget,
    command,
    async nextTurn() {
      const pending = turns.splice(0);
      for (const t of pending) t();
      await settle();
    },
    settle,
  };
}

Deno.test("TurnBudget lets commands through at once while the turn is young", async () => {
  const b = fakeBudget(4);
  const log: string[] = [];
  await Promise.all([b.command(log, "a", 1), b.command(log, "b", 1), b.command(log, "c", 1)]);
  assert.deepEqual(log, ["a", "b", "c"]);
  assert.equal(b.budget.waiting, 0);
});

Deno.test("TurnBudget defers commands past the budget to later turns, in arrival order", async () => {
  const b = fakeBudget(4);
  const log: string[] = [];
  // Five commands of 3 ms arrive in one turn: two fit (the second starts at 3 ms < 4 ms).
  const all = Promise.all(["a", "b", "c", "d", "e"].map((n) => b.command(log, n, 3)));
  await b.settle();
  assert.deepEqual(log, ["a", "b"]);
  assert.equal(b.budget.waiting, 3);
  await b.nextTurn();
  assert.deepEqual(log, ["a", "b", "c", "d"]);
  await b.nextTurn();
  assert.deepEqual(log, ["a", "b", "c", "d", "e"]);
  await all;
  assert.equal(b.budget.waiting, 0);
});

Deno.test("TurnBudget queues a newcomer behind those already waiting", async () => {
  const b = fakeBudget(4);
  const log: string[] = [];
  const first = Promise.all([b.command(log, "a", 5), b.command(log, "b", 1)]);
  await b.settle();
  assert.deepEqual(log, ["a"]);
  // The turn ends; before the waiting one runs, a newcomer arrives in the new turn.
  const late = b.command(log, "c", 1);
  await b.nextTurn();
  await Promise.all([first, late]);
  assert.deepEqual(log, ["a", "b", "c"]);
});

Deno.test("TurnBudget with real timers: every command runs", async () => {
  const budget = new TurnBudget({ budgetMs: 1 });
  let done = 0;
  const spin = (ms: number) => {
    const t = performance.now();
    while (performance.now() - t < ms) { /* busy */ }
  };
  await Promise.all(Array.from({ length: 20 }, async () => {
    const turn = budget.pass();
    if (turn !== undefined) await turn;
    spin(0.5);
    done++;
  }));
  assert.equal(done, 20);
  assert.equal(budget.waiting, 0);
});
