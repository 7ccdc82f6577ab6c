/**
 * Mailbox events between the Workers of one server, over a BroadcastChannel: each Worker's
 * store publishes what it committed, once durable, and hears what the others committed.
 */
import type { EventRelay } from "../../mailstore/event_hub.ts";
import type { MailboxEvent } from "../../mailstore/mail_store.ts";

const KINDS = new Set(["append", "flags", "expunge", "deleted", "renamed"]);

/** An `EventRelay` over the named BroadcastChannel (one name per running server). */
export class BroadcastRelay implements EventRelay {
  readonly #channel: BroadcastChannel;
  readonly #listeners = new Set<(event: MailboxEvent) => void>();

  constructor(name: string) {
    this.#channel = new BroadcastChannel(name);
    this.#channel.onmessage = (e: MessageEvent<unknown>) => {
      if (!isMailboxEvent(e.data)) return;
      for (const listener of [...this.#listeners]) listener(e.data);
    };
  }

  publish(event: MailboxEvent): void {
    this.#channel.postMessage(event);
  }

  subscribe(listener: (event: MailboxEvent) => void): () => void {
    const entry = (event: MailboxEvent) => listener(event);
    this.#listeners.add(entry);
    return () => this.#listeners.delete(entry);
  }

  close(): void {
    this.#listeners.clear();
    this.#channel.close();
  }
}

/** The shape every Worker posts; anything else on the channel is ignored. */
function isMailboxEvent(data: unknown): data is MailboxEvent {
  const event = data as Partial<Record<string, unknown>> | null;
  return typeof event === "object" && event !== null && KINDS.has(String(event.kind)) &&
    Number.isSafeInteger(event.mailboxId);
}
