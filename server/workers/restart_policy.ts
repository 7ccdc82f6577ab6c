/**
 * When the supervisor restarts a failed Worker, and when it takes a silent one for gone: the
 * decisions alone, without clock or timers (the supervisor passes the time in), so that a test
 * can run them on a fake clock.
 */

/** The bounds of `RestartPolicy`. */
export interface RestartLimits {
  /** Restarts of one Worker within a minute, beyond which it waits for the minute to pass. */
  readonly maxPerMinute: number;
  /** The first restart's delay; each further one within the minute doubles it. */
  readonly firstDelayMs: number;
  readonly maxDelayMs: number;
}

export const RESTART_LIMITS: RestartLimits = {
  maxPerMinute: 5,
  firstDelayMs: 200,
  maxDelayMs: 10_000,
};

const MINUTE_MS = 60_000;

/**
 * The back-off of failed Workers, per Worker id: the delay doubles with each restart of the
 * last minute (up to `maxDelayMs`); past `maxPerMinute` the next restart waits until the
 * oldest of the minute is a minute old, so that no minute holds more. A Worker that fails
 * past the cap while no other Worker is left is given up (the server then stops, and a service
 * manager starts it afresh, rather than spin).
 */
export class RestartPolicy {
  readonly #limits: RestartLimits;
  /** When each Worker id was (or will be) restarted, within the last minute. */
  readonly #restarts = new Map<number, number[]>();

  constructor(limits: RestartLimits = RESTART_LIMITS) {
    this.#limits = limits;
  }

  /**
   * Worker `id` failed at `now`: the delay after which to start its replacement, or null to
   * give it up (past the cap with `othersAlive` false).
   */
  onFailure(id: number, now: number, othersAlive: boolean): number | null {
    const limits = this.#limits;
    const recent = (this.#restarts.get(id) ?? []).filter((t) => now - t < MINUTE_MS);
    this.#restarts.set(id, recent);
    let delay = Math.min(limits.maxDelayMs, limits.firstDelayMs * 2 ** recent.length);
    if (recent.length >= limits.maxPerMinute) {
      if (!othersAlive) return null;
      delay = Math.max(delay, recent[recent.length - limits.maxPerMinute]! + MINUTE_MS - now);
    }
    recent.push(now + delay);
    return delay;
  }

  /** Restarts of Worker `id` counted at `now` (those of the last minute, and any scheduled). */
  recentCount(id: number, now: number): number {
    return (this.#restarts.get(id) ?? []).filter((t) => now - t < MINUTE_MS).length;
  }
}

/** How often a Worker bumps its heartbeat cell, ms. */
export const HEARTBEAT_MS = 1000;
/** How long a Worker's heartbeat may stand still before the Worker is taken for gone. */
export const SILENCE_MS = 15_000;

/**
 * Heartbeats of the Workers: each bumps its cell of a shared Int32Array every `HEARTBEAT_MS`
 * from a timer of its event loop. A Worker that ended itself (`self.close()`, of which Deno
 * tells the parent nothing) or whose event loop is stuck stops bumping it; once a cell has
 * not moved for `silenceMs`, the Worker is reported. The supervisor's clock notes when each
 * cell last moved, so that no clock is shared between threads.
 */
export class Watchdog {
  readonly #silenceMs: number;
  /** Per watched Worker id: the beat last seen and when it was first seen. */
  readonly #seen = new Map<number, { beat: number; at: number }>();

  constructor(silenceMs: number = SILENCE_MS) {
    this.#silenceMs = silenceMs;
  }

  /** Starts watching Worker `id` (once it serves), whose cell now holds `beat`. */
  watch(id: number, beat: number, now: number): void {
    this.#seen.set(id, { beat, at: now });
  }

  /** Stops watching Worker `id` (it exited, or is stopping). */
  forget(id: number): void {
    this.#seen.delete(id);
  }

  /**
   * The watched Workers whose beat has not moved for `silenceMs` at `now`; they are no longer
   * watched (the supervisor ends and replaces them).
   */
  check(now: number, beatOf: (id: number) => number): number[] {
    const silent: number[] = [];
    for (const [id, seen] of this.#seen) {
      const beat = beatOf(id);
      if (beat !== seen.beat) this.#seen.set(id, { beat, at: now });
      else if (now - seen.at >= this.#silenceMs) silent.push(id);
    }
    for (const id of silent) this.#seen.delete(id);
    return silent;
  }
}
