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
 * Who goes first when steps wait:
 * - the steps of returning clients' handshakes (a ClientHello offering a vouched ticket, one
 *   issued after a login: protocol/tls/vouched_ticket.ts, and that handshake's later steps),
 *   taking turns with everything below, so that a flood of handshakes does not hold back a
 *   client that logged in before, and a flood of vouched tickets (which only an account holder
 *   can make) takes at most half of the steps;
 * - steps of handshakes under way (the client's second flight, a signature or directory
 *   answer), in arrival order, so that started work finishes;
 * - then, taking turns, new handshakes (a ClientHello) and records of peers that have not
 *   logged in yet (a LOGIN, or a KeyUpdate flood), in arrival order; of the records, a peer's
 *   first few (`LIGHT_RECORDS`: a LOGIN) go before those of peers that have sent more (a
 *   flood, pipelined commands that are never read).
 *
 * A new handshake that has waited longer than `FRESH_AGE_CAP_MS` yields to younger ones, and
 * such overdue ones go newest first (adaptive LIFO): while the gate keeps up, every client
 * waits its turn and no longer than the queue ahead of it; under overload the clients that just
 * connected are still served within about the cap, while the oldest waiting ClientHellos run
 * into their timeout, as a flood's would. The cap is short (CoDel's target, not a timeout):
 * in arrival order, a queue that never empties makes every client wait the whole cap. Taking
 * turns with the unauthenticated records keeps a flood of records on finished handshakes
 * (which are not under way any more) from holding every new handshake back, and a flood of
 * ClientHellos from holding back a LOGIN. Without overload nothing waits and the order does
 * not matter.
 */

/**
 * Handshake work allowed per turn of the event loop before the next step waits: about two full
 * handshakes on this 2-core machine, so an unloaded server never makes a handshake wait, and a
 * flood adds at most this much (plus one step) to an established session's wait per turn.
 *
 * A turn that comes late gets the same budget. (It used to get a quarter of its wait, up to 16
 * ms, so that handshakes kept a share of a thread whose turns were long; the sessions' commands
 * now take at most their own budget per turn (server/serve/turn_budget.ts), so a turn is late
 * because the thread waited for a core, and a larger budget only made the turn longer.)
 */
export const HANDSHAKE_BUDGET_MS = 4;

/**
 * What a step belongs to: a handshake under way, a new handshake (before the server's first
 * flight), a step of a handshake whose ClientHello offered a vouched ticket ("vouched"), or a
 * record of a peer that has finished its handshake but not logged in.
 */
export type GateStep = "continuing" | "vouched" | "fresh" | "record" | "bulk";

/**
 * How many of a peer's records pass the gate as "record" before the rest go as "bulk": an IMAP
 * client logs in within its first few commands (CAPABILITY, ID, LOGIN), a flood sends on.
 * Without it, an honest LOGIN waited its turn behind one step of every flooding peer
 * (KeyUpdate floods, clients that pipeline commands and never read): up to 990 ms in the
 * hostile bench.
 */
export const LIGHT_RECORDS = 8;

/** How a share of each event-loop turn is measured and handed out (a fake clock in tests). */
export interface TurnOptions {
  readonly budgetMs?: number;
  readonly now?: () => number;
  /** Runs `turn` in a later turn of the event loop (default `setTimeout(turn, 0)`). */
  readonly defer?: (turn: () => void) => void;
}

/** `options` with the defaults filled in: `budgetMs`, `performance.now()`, a zero-delay timer. */
export function turnClock(options: TurnOptions, budgetMs: number): Required<TurnOptions> {
  return {
    budgetMs: options.budgetMs ?? budgetMs,
    now: options.now ?? (() => performance.now()),
    defer: options.defer ?? ((turn) => void setTimeout(turn, 0)),
  };
}

/**
 * How long a new handshake waits in arrival order before younger ones go first. Under a
 * sustained flood of ClientHellos the queue in arrival order never empties, and every client
 * served waits about this long (at 250 ms, an honest client's ClientHello waited up to 760 ms
 * in the gate under the hostile bench); so this is a target of a few late turns, not a
 * timeout: a burst the gate clears within it is served in order, anything older goes after
 * the clients that just connected.
 */
export const FRESH_AGE_CAP_MS = 25;

/** The share of the budget that may carry over into the next turn (see `run`). */
const CARRIED_OVER = 1 / 4;

export class HandshakeGate {
  readonly #budgetMs: number;
  readonly #now: () => number;
  readonly #defer: (turn: () => void) => void;
  /** Steps of handshakes under way, oldest first. */
  readonly #continuing: (() => void)[] = [];
  /** Steps of handshakes whose ClientHello offered a vouched ticket, oldest first. */
  readonly #vouched: (() => void)[] = [];
  /** The last step released was a vouched one. */
  #vouchedLast = false;
  /** First steps of new handshakes that have waited less than the cap, oldest first. */
  readonly #fresh: { readonly since: number; readonly go: () => void }[] = [];
  /** First steps of new handshakes past the cap; the newest is released first. */
  readonly #overdue: (() => void)[] = [];
  /** Records of peers not logged in yet, oldest first. */
  readonly #records: (() => void)[] = [];
  /** Records of peers past their first `LIGHT_RECORDS`, oldest first. */
  readonly #bulk: (() => void)[] = [];
  /** The last step released from `#fresh` or `#records` was a record. */
  #recordLast = false;
  #spent = 0;
  #turnScheduled = false;
  /** A released step has not finished yet: the next waiter goes when it does. */
  #releasing = false;

  constructor(options: TurnOptions = {}) {
    ({ budgetMs: this.#budgetMs, now: this.#now, defer: this.#defer } = turnClock(
      options,
      HANDSHAKE_BUDGET_MS,
    ));
  }

  /** Steps waiting for a turn. */
  get waiting(): number {
    return this.#continuing.length + this.#vouched.length + this.#fresh.length +
      this.#overdue.length + this.#records.length + this.#bulk.length;
  }

  /** Runs one step now, or in a later turn when this turn's budget is spent. */
  async run<T>(step: () => T, kind: GateStep = "continuing"): Promise<T> {
    if (this.#spent >= this.#budgetMs || this.waiting > 0 || this.#releasing) {
      await new Promise<void>((resolve) => {
        if (kind === "fresh") this.#fresh.push({ since: this.#now(), go: resolve });
        else this.#queue(kind).push(resolve);
        this.#scheduleTurn();
      });
    }
    const started = this.#now();
    try {
      return step();
    } finally {
      this.#spent += this.#now() - started;
      this.#releasing = false;
      // The budget is made whole by a timer at the next turn, scheduled once a quarter of it is
      // spent: a timer after every step (one or two per handshake under `openssl s_time`, each
      // a Deno timer object and an entry in its map of timers) cost about 3 % of the server's
      // CPU per handshake. Until then what was spent carries over, so a turn may start with up
      // to a quarter of its budget gone, never more.
      if (this.#spent >= this.#budgetMs * CARRIED_OVER) this.#scheduleTurn();
      if (this.#spent < this.#budgetMs) this.#releaseNext();
    }
  }

  #queue(kind: Exclude<GateStep, "fresh">): (() => void)[] {
    switch (kind) {
      case "continuing":
        return this.#continuing;
      case "vouched":
        return this.#vouched;
      case "record":
        return this.#records;
      case "bulk":
        return this.#bulk;
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
    const next = this.#takeVouchedTurn();
    if (next === undefined) return;
    this.#releasing = true;
    next();
  }

  /** A vouched step and any other waiting step take turns while both wait. */
  #takeVouchedTurn(): (() => void) | undefined {
    const others = this.waiting - this.#vouched.length > 0;
    const vouched = this.#vouched.length > 0 && (!others || !this.#vouchedLast);
    this.#vouchedLast = vouched;
    return vouched ? this.#vouched.shift() : this.#continuing.shift() ?? this.#takeTurns();
  }

  /** A new handshake and an unauthenticated record take turns while both wait. */
  #takeTurns(): (() => void) | undefined {
    const fresh = this.#fresh.length + this.#overdue.length > 0;
    const records = this.#records.length + this.#bulk.length > 0;
    const record = records && (!fresh || !this.#recordLast);
    this.#recordLast = record;
    return record ? this.#records.shift() ?? this.#bulk.shift() : this.#takeFresh();
  }

  /** The oldest new handshake within the age cap, else the newest overdue one. */
  #takeFresh(): (() => void) | undefined {
    const now = this.#now();
    while (this.#fresh.length > 0 && now - this.#fresh[0]!.since > FRESH_AGE_CAP_MS) {
      this.#overdue.push(this.#fresh.shift()!.go);
    }
    return this.#fresh.shift()?.go ?? this.#overdue.pop();
  }
}
