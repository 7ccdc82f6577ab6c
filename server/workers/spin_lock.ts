/**
 * The lock the shared tables of the Workers (address counts, ticket uses, TLS 1.2 sessions) take
 * around each step: cell 0 of `cells`, 0 when free. A step is a few instructions or a copy of a
 * few kilobytes and never awaits, so a waiter spins rather than sleeps.
 */
export function withSpinLock<T>(cells: Int32Array, body: () => T): T {
  while (Atomics.compareExchange(cells, 0, 0, 1) !== 0) {
    // Another Worker is inside a step.
  }
  try {
    return body();
  } finally {
    Atomics.store(cells, 0, 0);
  }
}
