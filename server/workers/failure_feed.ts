/**
 * Password failures per client address between the Workers of one server, over a
 * BroadcastChannel, so that the login back-off (server/auth/local.ts) counts them all.
 */
import type { FailureFeed, FailureNotice } from "../auth/local.ts";

export class BroadcastFailureFeed implements FailureFeed {
  readonly #channel: BroadcastChannel;
  readonly #listeners = new Set<(notice: FailureNotice) => void>();

  constructor(name: string) {
    this.#channel = new BroadcastChannel(name);
    this.#channel.onmessage = (e: MessageEvent<FailureNotice>) => {
      for (const listener of [...this.#listeners]) listener(e.data);
    };
  }

  publish(notice: FailureNotice): void {
    this.#channel.postMessage(notice);
  }

  subscribe(listener: (notice: FailureNotice) => void): () => void {
    const entry = (notice: FailureNotice) => listener(notice);
    this.#listeners.add(entry);
    return () => this.#listeners.delete(entry);
  }

  close(): void {
    this.#listeners.clear();
    this.#channel.close();
  }
}
