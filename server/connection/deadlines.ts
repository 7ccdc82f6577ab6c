/**
 * Deadlines that one interval timer checks for all of them: the handshakes' timeouts. A
 * `setTimeout` per connection was an entry added to and deleted from Deno's map of active timers
 * for every connection, the churn that kept connections alive through scavenges (see
 * `../slot_set.ts`), and 1.5 µs for the pair. A deadline fires at most a quarter of its delay
 * late, and never more than 100 ms late; the timer runs only while a deadline is pending.
 */
import { type Slot, SlotSet } from "../slot_set.ts";

interface Deadline {
  readonly at: number;
  readonly fire: () => void;
}

/** The longest the timer waits between two checks, in ms. */
const MAX_PERIOD_MS = 100;
const MIN_PERIOD_MS = 5;

export class Deadlines {
  readonly #pending = new SlotSet<Deadline>();
  #timer: ReturnType<typeof setInterval> | null = null;
  #period = 0;

  /** Calls `fire` about `ms` from now, unless `cancel` comes first. */
  add(ms: number, fire: () => void): Slot<Deadline> {
    const slot = this.#pending.add({ at: performance.now() + ms, fire });
    const period = Math.max(MIN_PERIOD_MS, Math.min(MAX_PERIOD_MS, Math.floor(ms / 4)));
    if (this.#timer === null || period < this.#period) {
      if (this.#timer !== null) clearInterval(this.#timer);
      this.#period = period;
      this.#timer = setInterval(() => this.#check(), period);
    }
    return slot;
  }

  /** Drops a deadline that has not fired (a fired or dropped one is ignored). */
  cancel(slot: Slot<Deadline>): void {
    this.#pending.delete(slot);
    if (this.#pending.size === 0) this.#stop();
  }

  /** Deadlines pending (for the tests). */
  get size(): number {
    return this.#pending.size;
  }

  #check(): void {
    const now = performance.now();
    for (const slot of this.#pending.slots()) {
      if (slot.item.at > now || !this.#pending.delete(slot)) continue;
      try {
        slot.item.fire();
      } catch {
        // A deadline's action (closing a socket) has no one to report to; the others still run.
      }
    }
    if (this.#pending.size === 0) this.#stop();
  }

  #stop(): void {
    if (this.#timer === null) return;
    clearInterval(this.#timer);
    this.#timer = null;
    this.#period = 0;
  }
}

/** The handshakes' timeouts, in this isolate. */
export const handshakeDeadlines = new Deadlines();
