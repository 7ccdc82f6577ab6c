/**
 * A set kept in an array, for the long-lived collections that gain and lose an entry per
 * connection (open connections, sessions, their idle checks, handshake deadlines).
 *
 * Not a `Set` or `Map`: V8 rebuilds an ordered hash table every few deletions, even at a constant
 * size, and the table it leaves behind still points at every entry it held. A collection that
 * lives long sits in the old generation, and so do its rebuilt tables; a scavenge takes every
 * pointer from the old generation into the young one as live, so each abandoned table kept the
 * connections open at that moment alive, and promoted, until the next full collection. Under four
 * `openssl s_time` clients that was 5.4 KB promoted per handshake, though a connection lives about
 * 3 ms, and 14-17 µs of scavenge pause per handshake on the event loop. Here an entry is removed by
 * moving the last one into its place: nothing is rebuilt, and no stale copy points anywhere.
 */

/** An entry's place in its set: `delete` takes it back. */
export interface Slot<T> {
  readonly item: T;
  /** Where the entry is in the set's array; -1 once removed. */
  index: number;
}

export class SlotSet<T> implements Iterable<T> {
  readonly #slots: Slot<T>[] = [];

  get size(): number {
    return this.#slots.length;
  }

  /** Adds `item` (again, if it is there already: each add is an entry of its own). */
  add(item: T): Slot<T> {
    const slot: Slot<T> = { item, index: this.#slots.length };
    this.#slots.push(slot);
    return slot;
  }

  /** Removes the entry; false if it was removed already (or belongs to another set). */
  delete(slot: Slot<T>): boolean {
    const slots = this.#slots;
    const at = slot.index;
    if (at < 0 || slots[at] !== slot) return false;
    const last = slots.pop()!;
    if (last !== slot) {
      slots[at] = last;
      last.index = at;
    }
    slot.index = -1;
    return true;
  }

  /** The items, as a copy: the set may change while a caller goes through them. */
  items(): T[] {
    const slots = this.#slots;
    const out = new Array<T>(slots.length);
    for (let i = 0; i < slots.length; i++) out[i] = slots[i]!.item;
    return out;
  }

  /** The entries, as a copy (see `items`). */
  slots(): Slot<T>[] {
    return this.#slots.slice();
  }

  [Symbol.iterator](): Iterator<T> {
    return this.items()[Symbol.iterator]();
  }
}
