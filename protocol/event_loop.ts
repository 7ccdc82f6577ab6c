/**
 * Yielding to the event loop: long commands (FETCH 1:* or SEARCH on 100,000 messages) work in
 * steps and let timers, socket reads and other sessions run between them once a time slice is
 * used up, so that no single command holds the one JavaScript thread for long.
 */

/** Work done between two yields of a long command, in milliseconds. */
export const SLICE_MS = 10;

/**
 * Resolves on a later turn of the event loop (a macrotask: timers and I/O run first), not in
 * the current microtask queue as an already-resolved promise would. Nested timers are clamped
 * to 4 ms, so a caller yields once per time slice, not once per step (see `Pacer`).
 */
export function yieldToEventLoop(): Promise<void> {
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

  constructor(sliceMs: number = SLICE_MS) {
    this.#sliceMs = sliceMs;
  }

  /** True when the current slice is used up. */
  due(): boolean {
    return performance.now() - this.#since >= this.#sliceMs;
  }

  /** Yields to the event loop and starts a new slice. */
  async yield(): Promise<void> {
    this.yields++;
    await yieldToEventLoop();
    this.#since = performance.now();
  }
}
