/** A counting semaphore with a bounded wait queue and a bounded wait, for directory lookups. */

/** No slot became free in time, or too many callers already wait. */
export class LimiterFullError extends Error {
  constructor(message = "Too many directory lookups waiting") {
    super(message);
    this.name = "LimiterFullError";
  }
}

interface Waiter {
  readonly wake: () => void;
}

export class Limiter {
  readonly #max: number;
  readonly #maxQueue: number;
  readonly #queue: Waiter[] = [];
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

  /**
   * Runs `task` once a slot is free. Throws `LimiterFullError` when the queue is full, or when
   * no slot frees up within `maxWaitMs`.
   */
  async run<T>(task: () => Promise<T>, maxWaitMs = Infinity): Promise<T> {
    if (this.#inFlight >= this.#max) {
      if (this.#queue.length >= this.#maxQueue) throw new LimiterFullError();
      await this.#wait(maxWaitMs);
    } else {
      this.#inFlight++;
    }
    this.#peak = Math.max(this.#peak, this.#inFlight);
    try {
      return await task();
    } finally {
      const next = this.#queue.shift();
      // The slot passes straight to the next waiter, so inFlight stays as it is.
      if (next !== undefined) next.wake();
      else this.#inFlight--;
    }
  }

  #wait(maxWaitMs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const waiter: Waiter = {
        wake: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      this.#queue.push(waiter);
      if (Number.isFinite(maxWaitMs)) {
        timer = setTimeout(() => {
          const i = this.#queue.indexOf(waiter);
          if (i !== -1) this.#queue.splice(i, 1);
          reject(new LimiterFullError(`No directory connection free within ${maxWaitMs} ms`));
        }, Math.max(0, maxWaitMs));
      }
    });
  }
}
