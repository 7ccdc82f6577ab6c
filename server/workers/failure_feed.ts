/**
 * Password failures per client address between the Workers of one server, over a
 * BroadcastChannel, so that the login back-off (server/auth/local.ts) counts them all; and
 * the password cache's verdicts, under a cache key common to the Workers. A BroadcastChannel
 * never leaves the process.
 */
import type { FailureFeed, FailureNotice } from "../auth/local.ts";

export class BroadcastFailureFeed implements FailureFeed {
  readonly #channel: BroadcastChannel;
  readonly #listeners = new Set<(notice: FailureNotice) => void>();
  readonly cacheKey: Uint8Array;

  constructor(name: string, cacheKey: Uint8Array) {
    this.cacheKey = cacheKey;
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
