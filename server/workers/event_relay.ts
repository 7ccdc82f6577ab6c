/**
 * Mailbox events between the Workers of one server, over a BroadcastChannel: each Worker's
 * store publishes what it committed, once durable, and hears what the others committed.
 *
 * Every Worker counts what it published in a shared table (one cell per Worker), and each
 * event carries its sender's count. A Worker that has heard sender `w`'s event number `n` has
 * heard all of `w`'s earlier ones (a BroadcastChannel keeps one sender's order), so comparing
 * the table with what arrived tells whether events are still on their way: `settled()` waits
 * for them. A NOOP on one Worker thereby reports every change acknowledged on another before it.
 */
import type { EventRelay } from "../../mailstore/event_hub.ts";
import type { MailboxEvent } from "../../mailstore/mail_store.ts";

const KINDS = new Set(["append", "flags", "expunge", "deleted", "renamed"]);

/** How long `settled()` waits for events at most (one lost with a failed Worker, say). */
export const SETTLE_TIMEOUT_MS = 100;

/** The table of published counts, one cell per Worker (index: its column). */
export function allocateRelayCounts(workers: number): SharedArrayBuffer {
  return new SharedArrayBuffer(4 * Math.max(1, workers));
}

interface Envelope {
  readonly from: number;
  readonly seq: number;
  readonly event: MailboxEvent;
}

interface Waiter {
  readonly targets: Int32Array;
  readonly done: () => void;
}

/** An `EventRelay` over the named BroadcastChannel (one name per running server). */
export class BroadcastRelay implements EventRelay {
  readonly #channel: BroadcastChannel;
  readonly #listeners = new Set<(event: MailboxEvent) => void>();
  /** Events published by each Worker, shared; this one bumps cell `#column`. */
  readonly #published: Int32Array;
  readonly #column: number;
  /** The highest count heard from each Worker. */
  readonly #heard: Int32Array;
  readonly #waiters = new Set<Waiter>();

  /**
   * `counts` is the table from `allocateRelayCounts` and `column` this Worker's cell; without
   * them (one store, tests) `settled()` has nothing to wait for.
   */
  constructor(
    name: string,
    counts?: { readonly buffer: SharedArrayBuffer; readonly column: number },
  ) {
    this.#channel = new BroadcastChannel(name);
    this.#published = new Int32Array(counts?.buffer ?? new SharedArrayBuffer(4));
    this.#column = counts?.column ?? 0;
    // What was published before this relay existed is already in the store it reads.
    this.#heard = Int32Array.from(this.#published, (_, i) => Atomics.load(this.#published, i));
    this.#channel.onmessage = (e: MessageEvent<unknown>) => {
      if (!isEnvelope(e.data, this.#heard.length)) return;
      const { from, seq, event } = e.data;
      if (seq > this.#heard[from]!) this.#heard[from] = seq;
      for (const listener of [...this.#listeners]) listener(event);
      for (const waiter of this.#waiters) if (this.#reached(waiter.targets)) waiter.done();
    };
  }

  publish(event: MailboxEvent): void {
    const seq = Atomics.add(this.#published, this.#column, 1) + 1;
    this.#channel.postMessage({ from: this.#column, seq, event } satisfies Envelope);
  }

  subscribe(listener: (event: MailboxEvent) => void): () => void {
    const entry = (event: MailboxEvent) => listener(event);
    this.#listeners.add(entry);
    return () => this.#listeners.delete(entry);
  }

  /**
   * Resolves once every event the other Workers had published when it was called has arrived
   * (and reached the listeners), or after `timeoutMs`.
   */
  settled(timeoutMs = SETTLE_TIMEOUT_MS): Promise<void> {
    const targets = Int32Array.from(this.#published, (_, i) => Atomics.load(this.#published, i));
    targets[this.#column] = 0;
    if (this.#reached(targets)) return Promise.resolve();
    return new Promise((resolve) => {
      const waiter: Waiter = {
        targets,
        done: () => {
          clearTimeout(timer);
          this.#waiters.delete(waiter);
          resolve();
        },
      };
      const timer = setTimeout(waiter.done, timeoutMs);
      this.#waiters.add(waiter);
    });
  }

  #reached(targets: Int32Array): boolean {
    for (let i = 0; i < targets.length; i++) if (this.#heard[i]! < targets[i]!) return false;
    return true;
  }

  close(): void {
    this.#listeners.clear();
    for (const waiter of [...this.#waiters]) waiter.done();
    this.#channel.close();
  }
}

/** The shape every Worker posts; anything else on the channel is ignored. */
function isEnvelope(data: unknown, workers: number): data is Envelope {
  const envelope = data as Partial<Record<string, unknown>> | null;
  if (typeof envelope !== "object" || envelope === null) return false;
  const { from, seq } = envelope;
  const event = envelope.event as Partial<Record<string, unknown>> | null;
  return Number.isSafeInteger(from) && (from as number) >= 0 && (from as number) < workers &&
    Number.isSafeInteger(seq) && typeof event === "object" && event !== null &&
    KINDS.has(String(event.kind)) && Number.isSafeInteger(event.mailboxId);
}
