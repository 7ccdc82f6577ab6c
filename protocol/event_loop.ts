/**
 * Yielding to the event loop: long commands (FETCH 1:* or SEARCH on 100,000 messages) work in
 * steps and let timers, socket reads and other sessions run between them once a time slice is
 * used up, so that no single command holds the one JavaScript thread for long.
 *
 * A zero-delay timer is the portable yield, but Deno rounds it up to the next millisecond tick
 * and beyond: it costs about 2 ms of idle thread each time, which made slices of 10 ms the
 * cheapest affordable. A server installs a quicker yield (`useQuickYield`, an I/O round trip
 * that completes only once the runtime has polled its sockets and timers), and slices of 5 ms
 * then cost less than the 10 ms ones did.
 */

/** Work done between two yields of a long command, in milliseconds, yielding by timer. */
export const SLICE_MS = 10;
/** The same with a quick yield installed. */
export const QUICK_SLICE_MS = 5;

/**
 * With a quick yield installed, every this many yields one is a timer's all the same (about
 * every 80 ms of paced work), so that the thread goes idle now and then under endless work.
 */
const TIMER_YIELD_EVERY = 16;

let quickYield: (() => Promise<void>) | null = null;
let yields = 0;
let turnStart: (() => number) | null = null;
/**
 * When a pacer last resumed from a yield: a new turn began then, whatever `turnStart` says.
 * A zero-delay timer (`resumeTimer`) forgets it once that turn is over: a pacer made later in
 * the same turn (a write loop makes one per write) counts the turn from the resume, not a
 * fresh slice from its own start.
 */
let resumedAt = -Infinity;
let resumeTimer = false;

/**
 * Installs when the current turn of the event loop began (`performance.now()`, negative between
 * turns), as the server's session scheduler sees it (server/serve/turn_budget.ts). A pacer's
 * slice then also ends once the turn has run for a slice, so that long work begun late in a busy
 * turn (a SELECT after other sessions' commands) yields early instead of adding a whole slice.
 */
export function useTurnStart(start: () => number): void {
  turnStart = start;
}

/** Removes the turn clock `start` if it is the one installed. */
export function dropTurnStart(start: () => number): void {
  if (turnStart === start) turnStart = null;
}

/**
 * How long the current turn has run at `now`, ms, from the later of the turn clock's start and
 * the last resume (0 when neither is known).
 */
function turnAge(now: number): number {
  const start = Math.max(turnStart === null ? -1 : turnStart(), resumedAt);
  return start < 0 ? 0 : now - start;
}

function endResumedTurn(): void {
  resumeTimer = false;
  resumedAt = -Infinity;
}

/**
 * Installs a quick yield: a function whose promise settles in a later
 * turn of the event loop, after the sockets that are ready and the timers that are due have
 * run (see server/connection/wakeup.ts). Each thread (Worker) has its own.
 */
export function useQuickYield(yieldFn: () => Promise<void>): void {
  quickYield = yieldFn;
}

/** Removes the quick yield `yieldFn` if it is the one installed. */
export function dropQuickYield(yieldFn: () => Promise<void>): void {
  if (quickYield === yieldFn) quickYield = null;
}

/** The time slice of long work: `QUICK_SLICE_MS` while a quick yield is installed. */
export function sliceMs(): number {
  return quickYield === null ? SLICE_MS : QUICK_SLICE_MS;
}

/**
 * Resolves on a later turn of the event loop (a macrotask: due timers and ready I/O run first),
 * not in the current microtask queue as an already-resolved promise would. A caller yields once
 * per time slice, not once per step (see `Pacer`).
 */
export function yieldToEventLoop(): Promise<void> {
  yields = (yields + 1) % TIMER_YIELD_EVERY;
  if (quickYield !== null && yields !== 0) return quickYield();
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/**
 * Paces a long loop: `due()` is true once `sliceMs` have passed since the start or the last
 * `yield()`. With a slice of 0 every step yields, which makes the number of yields countable
 * in tests.
 */
export class Pacer {
  readonly #sliceMs: number;
  #since = performance.now();
  /** Yields so far. */
  yields = 0;

  /** A pacer of `sliceMs()` by default. */
  constructor(slice: number = sliceMs()) {
    this.#sliceMs = slice;
  }

  /** True when the current slice, or the current turn's (see `useTurnStart`), is used up. */
  due(): boolean {
    const now = performance.now();
    return now - this.#since >= this.#sliceMs || turnAge(now) >= this.#sliceMs;
  }

  /** Yields to the event loop and starts a new slice. */
  async yield(): Promise<void> {
    this.yields++;
    await yieldToEventLoop();
    this.#since = resumedAt = performance.now();
    if (!resumeTimer) {
      resumeTimer = true;
      setTimeout(endResumedTurn, 0);
    }
  }
}
