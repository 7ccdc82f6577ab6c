/**
 * The write lock the connections of one server to one database share (a cell of the shared
 * sync record, `allocateSharedSync`), so that BEGIN IMMEDIATE never meets another connection's
 * write transaction: SQLite's busy handler would sleep 1, 2, 5, 10... ms with the event loop
 * blocked, however soon the other's transaction ended (measured on the mix with two Workers:
 * up to 61 ms). A waiter here is woken by the holder's release instead.
 *
 * A connection on an event loop holds it (`HELD`) only while a transaction body runs, a
 * fraction of a millisecond. The blob writer (`_blob_writer.ts`) holds it (`HELD_LONG`) while
 * it inserts a large message, a few hundred milliseconds, on a thread of its own; waiters then
 * wait longer before they take its holder to be gone. Past that deadline a waiter goes ahead:
 * SQLite's own lock still orders the writes, so this lock only saves time.
 */

/** The lock's index in the shared sync record (the cells before it are the sync turns). */
export const WRITE_LOCK = 3;
/** The lock's value while a connection on an event loop runs a write transaction. */
export const HELD = 1;
/** The lock's value while the blob writer runs its write transaction. */
export const HELD_LONG = 2;
/** How long a write waits on a `HELD` lock before assuming its holder is gone (its Worker ended). */
export const WRITE_TURN_MS = 100;
/** How long a write waits on a `HELD_LONG` lock before assuming its holder is gone. */
export const LONG_TURN_MS = 10_000;

/** How long a waiter that found the lock held as `held` waits in all. */
export function turnMs(held: number): number {
  return held === HELD_LONG ? LONG_TURN_MS : WRITE_TURN_MS;
}

/**
 * Takes the write lock with `value`, blocking the thread until it is free (or its holder is
 * taken to be gone). On an event loop, `SqliteMailStore` waits without blocking instead.
 */
export function lockWrites(cells: Int32Array, value: number = HELD): void {
  const start = performance.now();
  let deadline = start + WRITE_TURN_MS;
  for (;;) {
    const held = Atomics.compareExchange(cells, WRITE_LOCK, 0, value);
    if (held === 0) return;
    deadline = Math.max(deadline, start + turnMs(held));
    const left = deadline - performance.now();
    if (left <= 0) return;
    Atomics.wait(cells, WRITE_LOCK, held, Math.min(left, 10));
  }
}

/** Releases the write lock and wakes its waiters. */
export function unlockWrites(cells: Int32Array): void {
  Atomics.store(cells, WRITE_LOCK, 0);
  Atomics.notify(cells, WRITE_LOCK);
}
