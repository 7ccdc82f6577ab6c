/** A counting semaphore with a bounded wait queue, for directory lookups. */

/** The wait queue is full; the caller should fail rather than pile up. */
export class LimiterFullError extends Error {
  constructor() {
    super("Too many directory lookups waiting");
    this.name = "LimiterFullError";
  }
}

export class Limiter {
  readonly #max: number;
  readonly #maxQueue: number;
  readonly #queue: Array<() => void> = [];
  #inFlight = 0;
  #peak = 0;

  constructor(max: number, maxQueue: number) {
    this.#max = max;
    this.#maxQueue = maxQueue;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /** Highest number of holders seen at once. */
  get peak(): number {
    return this.#peak;
  }

  get queued(): number {
    return this.#queue.length;
  }

  /** Runs `task` once a slot is free. Throws `LimiterFullError` when the queue is full. */
  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#inFlight >= this.#max) {
      if (this.#queue.length >= this.#maxQueue) throw new LimiterFullError();
      await new Promise<void>((resolve) => this.#queue.push(resolve));
    } else {
      this.#inFlight++;
    }
    this.#peak = Math.max(this.#peak, this.#inFlight);
    try {
      return await task();
    } finally {
      const next = this.#queue.shift();
      // The slot passes straight to the next waiter, so inFlight stays as it is.
      if (next !== undefined) next();
      else this.#inFlight--;
    }
  }
}
