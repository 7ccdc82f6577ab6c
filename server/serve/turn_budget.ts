/**
 * A share of each event-loop turn for the sessions' commands. When many clients' requests
 * arrive together, one poll of the event loop resolves all their reads, and every session would
 * run its command in the same turn, back to back: 20 clients at about half a millisecond each
 * kept the thread from its timers and other sockets for 10-20 ms (the mix bench). Sessions pass
 * `TurnBudget.pass()` before each command; once the turn has run for `budgetMs`, the rest wait
 * for a later turn (a timer), in arrival order, so that timers and other I/O run in between.
 *
 * "The turn" starts at the first `pass()` after the previous turn ended (a zero-delay timer set
 * at that first pass marks the end), so the time counted includes everything the thread did
 * since then: other sessions' commands, TLS records, garbage collection. Nothing waits while
 * the turn is young, so a quiet server never delays a command.
 */

import { turnClock, type TurnOptions } from "../connection/handshake_gate.ts";

/**
 * Session work per turn before the next command waits: a few commands' worth, well under the
 * 10 ms the event loop may stall, leaving room for a scavenge in the same turn.
 */
export const TURN_BUDGET_MS = 4;

export class TurnBudget {
  readonly #budgetMs: number;
  readonly #now: () => number;
  readonly #defer: (turn: () => void) => void;
  /** When this turn's first pass came; -1 between turns. */
  #turnStart = -1;
  /** Commands waiting for a later turn, oldest first. */
  readonly #waiting: (() => void)[] = [];
  #turnScheduled = false;

  constructor(options: TurnOptions = {}) {
    ({ budgetMs: this.#budgetMs, now: this.#now, defer: this.#defer } = turnClock(
      options,
      TURN_BUDGET_MS,
    ));
  }

  /** When this turn's first pass came (`now()`); -1 between turns. */
  get turnStart(): number {
    return this.#turnStart;
  }

  /** Commands waiting for a later turn. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /**
   * Resolves at once while this turn has time left and nobody waits, else in a later turn.
   * Returns undefined when it need not wait, so a caller can skip the `await`.
   */
  pass(): Promise<void> | undefined {
    const now = this.#now();
    if (this.#turnStart < 0) {
      this.#turnStart = now;
      this.#scheduleTurn();
    }
    if (this.#waiting.length === 0 && now - this.#turnStart < this.#budgetMs) return undefined;
    return new Promise<void>((resolve) => {
      this.#waiting.push(resolve);
      this.#scheduleTurn();
    });
  }

  /** The end of this turn; the next one starts with its first released command. */
  #scheduleTurn(): void {
    if (this.#turnScheduled) return;
    this.#turnScheduled = true;
    this.#defer(() => {
      this.#turnScheduled = false;
      this.#turnStart = -1;
      this.#releaseNext();
    });
  }

  /**
   * Releases the oldest waiting command, and after its synchronous part (a microtask queued
   * behind it) the next one, while the new turn has time left; the rest wait for the turn after.
   */
  #releaseNext(): void {
    const next = this.#waiting.shift();
    if (next === undefined) return;
    if (this.#turnStart < 0) {
      this.#turnStart = this.#now();
      this.#scheduleTurn();
    }
    next();
    queueMicrotask(() => {
      if (this.#now() - this.#turnStart < this.#budgetMs) this.#releaseNext();
      else if (this.#waiting.length > 0) this.#scheduleTurn();
    });
  }
}
