/**
 * The queue password checks wait in. A fixed number of checks run at once (each scrypt holds
 * 32 MiB and a core); the rest wait, in a queue that is bounded overall and per client address,
 * and is served round-robin between addresses so that one busy office cannot starve everyone
 * else. Only when the queue is full is an attempt turned away, and the caller then answers
 * "try again later" (RFC 5530 UNAVAILABLE), never "wrong password".
 */

/** Limits of a `CheckQueue`. */
export interface CheckQueueLimits {
  /** Checks running at once. */
  readonly slots: number;
  /** Checks waiting overall. */
  readonly maxQueued: number;
  /** Checks waiting from one address. */
  readonly maxQueuedPerAddress: number;
}

/** A bounded, per-address round-robin queue in front of a fixed number of slots. */
export class CheckQueue {
  readonly #limits: CheckQueueLimits;
  /** Waiters per address; the map's order is the round-robin order. */
  readonly #waiting = new Map<string, (() => void)[]>();
  #queued = 0;
  #running = 0;

  constructor(limits: CheckQueueLimits) {
    this.#limits = {
      slots: Math.max(1, limits.slots),
      maxQueued: Math.max(0, limits.maxQueued),
      maxQueuedPerAddress: Math.max(0, limits.maxQueuedPerAddress),
    };
  }

  /** Runs `task` in a slot; resolves `{ queued: false }` without running it when full. */
  async run<T>(
    address: string,
    task: () => Promise<T>,
  ): Promise<{ readonly queued: true; readonly value: T } | { readonly queued: false }> {
    if (!(await this.#acquire(address))) return { queued: false };
    try {
      return { queued: true, value: await task() };
    } finally {
      this.#release();
    }
  }

  /** Checks running now. */
  get running(): number {
    return this.#running;
  }

  /** Checks waiting now. */
  get queued(): number {
    return this.#queued;
  }

  #acquire(address: string): Promise<boolean> | boolean {
    if (this.#running < this.#limits.slots) {
      this.#running++;
      return true;
    }
    const mine = this.#waiting.get(address);
    if (
      this.#queued >= this.#limits.maxQueued ||
      (mine?.length ?? 0) >= this.#limits.maxQueuedPerAddress
    ) {
      return false;
    }
    return new Promise((resolve) => {
      const waiter = () => resolve(true);
      if (mine) mine.push(waiter);
      else this.#waiting.set(address, [waiter]);
      this.#queued++;
    });
  }

  #release(): void {
    const first = this.#waiting.entries().next();
    if (first.done) {
      this.#running--;
      return;
    }
    const [address, waiters] = first.value;
    const next = waiters.shift()!;
    this.#waiting.delete(address);
    // The address goes to the back of the round, behind every other waiting address.
    if (waiters.length > 0) this.#waiting.set(address, waiters);
    this.#queued--;
    // The slot passes straight to the next waiter, so the running count stays as it is.
    next();
  }
}
