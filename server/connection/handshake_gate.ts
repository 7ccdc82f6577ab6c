/**
 * Handshake admission. Every TLS handshake step (key exchange, signature, certificate checks)
 * runs on the one JavaScript thread that also moves every established session's records. A
 * burst of handshakes, all readable at once, would run back to back and hold the event loop
 * for as long as they take (hostile load: 1,000 connections, most of them handshaking).
 *
 * The gate lets handshake steps take at most `budgetMs` of the thread per turn of the event
 * loop. Further steps wait for a later turn (a timer), so between two batches of handshake
 * work the established sessions' reads and writes run. Established sessions never pass through
 * the gate; a handshake only waits, it is never refused (its own timeout still applies).
 *
 * Who goes first when steps wait: handshakes already under way (the client's second flight, a
 * signature or directory answer), in arrival order, so that started work finishes; then new
 * handshakes (a ClientHello), newest first. Under overload that is adaptive LIFO: a client that
 * just connected is served at once, while the oldest waiting ClientHellos run into their
 * timeout, as a flood's would; without overload nothing waits and the order does not matter.
 */

/**
 * Handshake work allowed per turn of the event loop before the next step waits: about two full
 * handshakes on this 2-core machine, so an unloaded server never makes a handshake wait, and a
 * flood adds at most this much (plus one step) to an established session's wait per turn.
 */
export const HANDSHAKE_BUDGET_MS = 4;

export class HandshakeGate {
  readonly #budgetMs: number;
  readonly #now: () => number;
  readonly #defer: (turn: () => void) => void;
  /** Steps of handshakes under way, oldest first. */
  readonly #continuing: (() => void)[] = [];
  /** First steps of new handshakes; the newest is released first. */
  readonly #fresh: (() => void)[] = [];
  #spent = 0;
  #turnScheduled = false;
  /** A released step has not finished yet: the next waiter goes when it does. */
  #releasing = false;

  constructor(
    options: {
      budgetMs?: number;
      now?: () => number;
      /** Runs `turn` in a later turn of the event loop (default `setTimeout(turn, 0)`). */
      defer?: (turn: () => void) => void;
    } = {},
  ) {
    this.#budgetMs = options.budgetMs ?? HANDSHAKE_BUDGET_MS;
    this.#now = options.now ?? (() => performance.now());
    this.#defer = options.defer ?? ((turn) => void setTimeout(turn, 0));
  }

  /** Steps waiting for a turn. */
  get waiting(): number {
    return this.#continuing.length + this.#fresh.length;
  }

  /**
   * Runs one handshake step now, or in a later turn when this turn's budget is spent. `fresh`
   * marks the first step of a new handshake (before the server's first flight).
   */
  async run<T>(step: () => T, fresh = false): Promise<T> {
    if (this.#spent >= this.#budgetMs || this.waiting > 0 || this.#releasing) {
      await new Promise<void>((resolve) => {
        (fresh ? this.#fresh : this.#continuing).push(resolve);
        this.#scheduleTurn();
      });
    }
    const started = this.#now();
    try {
      return step();
    } finally {
      this.#spent += this.#now() - started;
      this.#releasing = false;
      this.#scheduleTurn();
      if (this.#spent < this.#budgetMs) this.#releaseNext();
    }
  }

  /** A new turn: the budget is whole again; the first waiter goes. */
  #scheduleTurn(): void {
    if (this.#turnScheduled) return;
    this.#turnScheduled = true;
    this.#defer(() => {
      this.#turnScheduled = false;
      this.#spent = 0;
      this.#releaseNext();
    });
  }

  #releaseNext(): void {
    if (this.#releasing) return;
    const next = this.#continuing.shift() ?? this.#fresh.pop();
    if (next === undefined) return;
    this.#releasing = true;
    next();
  }
}
