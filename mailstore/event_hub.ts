/**
 * The in-process change feed behind `MailStore.watch()`: listeners per mailbox, told after a
 * change has been committed.
 */
import { getLogger } from "@logtape/logtape";
import type { MailboxEvent } from "./mail_store.ts";

const log = getLogger(["postern", "mailstore"]);

function logListenerError(error: unknown): void {
  log.error("A change-feed listener failed: {error}", { error });
}

/** Routes mailbox events to the listeners of that mailbox only. */
export class EventHub {
  #listeners = new Map<number, Set<(event: MailboxEvent) => void>>();
  #onListenerError: (error: unknown) => void;

  /** `onListenerError` hears about listeners that throw; by default they are logged. */
  constructor(onListenerError: (error: unknown) => void = logListenerError) {
    this.#onListenerError = onListenerError;
  }

  /** Registers a listener; the returned function removes it (idempotent). */
  watch(mailboxId: number, listener: (event: MailboxEvent) => void): () => void {
    // Wrap so that the same function registered twice is two independent registrations.
    const entry = (event: MailboxEvent) => listener(event);
    let set = this.#listeners.get(mailboxId);
    if (!set) {
      set = new Set();
      this.#listeners.set(mailboxId, set);
    }
    set.add(entry);
    return () => {
      const current = this.#listeners.get(mailboxId);
      if (!current) return;
      current.delete(entry);
      if (current.size === 0) this.#listeners.delete(mailboxId);
    };
  }

  /**
   * Delivers an event synchronously. A throwing listener must not undo a committed change or
   * starve the other listeners, so its error goes to `onListenerError` instead.
   */
  emit(event: MailboxEvent): void {
    const set = this.#listeners.get(event.mailboxId);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        listener(event);
      } catch (e) {
        this.#onListenerError(e);
      }
    }
  }

  /** Number of listeners on one mailbox (for tests and metrics). */
  listenerCount(mailboxId: number): number {
    return this.#listeners.get(mailboxId)?.size ?? 0;
  }

  /** Drops every listener (store closed). */
  clear(): void {
    this.#listeners.clear();
  }
}

/**
 * Carries committed mailbox events between store objects that share one database inside one
 * server (its Workers), so that IDLE and NOOP in one hear of a change made through another. A
 * store publishes an event once the change is durable, and hands what it receives to its own
 * `watch()` listeners. Stores on separate machines use the database's own channel instead
 * (PostgreSQL LISTEN/NOTIFY).
 */
export interface EventRelay {
  /** Sends a committed event to the other stores (never back to the sender). */
  publish(event: MailboxEvent): void;
  /** Hears the events the other stores publish; returns an unsubscribe function. */
  subscribe(listener: (event: MailboxEvent) => void): () => void;
  /**
   * Resolves once the events the other stores had published when it was called have reached
   * this one's listeners (bounded wait). Without it, events arrive when they arrive.
   */
  settled?(): Promise<void>;
}
