/**
 * The store's side of a streamed read (`SqliteMailStore.openRaw`): the pieces the blob reader
 * posts, queued until the reader of the stream asks for them.
 */
import { MailStoreError, type RawStream } from "../mail_store.ts";

export class ChunkStream implements RawStream {
  readonly size: number;
  readonly nulFree: boolean;
  /** Pieces the blob reader is expected to send. */
  readonly #expected: number;
  #queue: Uint8Array[] = [];
  #ended = false;
  #error: MailStoreError | null = null;
  #waiting: { resolve(piece: Uint8Array | null): void; reject(error: Error): void } | null = null;

  constructor(size: number, nulFree: boolean, expected: number) {
    this.size = size;
    this.nulFree = nulFree;
    this.#expected = expected;
  }

  next(): Promise<Uint8Array | null> {
    if (this.#queue.length > 0) return Promise.resolve(this.#queue.shift()!);
    if (this.#error !== null) return Promise.reject(this.#error);
    if (this.#ended) return Promise.resolve(null);
    return new Promise((resolve, reject) => {
      this.#waiting = { resolve, reject };
    });
  }

  /** A piece from the blob reader. */
  push(piece: Uint8Array): void {
    if (this.#ended || this.#error !== null) return;
    const waiting = this.#waiting;
    this.#waiting = null;
    if (waiting !== null) waiting.resolve(piece);
    else this.#queue.push(piece);
  }

  /**
   * The blob reader has sent `count` pieces. None at all: the blob was gone, and the stream
   * ends empty. Some but not all: the read failed.
   */
  end(count: number): void {
    if (count !== this.#expected && count !== 0) {
      this.fail(`The message's pieces ended after ${count} of ${this.#expected}`);
      return;
    }
    this.#ended = true;
    this.#settle();
  }

  /** The read failed (the blob reader reported an error or stopped). */
  fail(message: string): void {
    if (this.#ended || this.#error !== null) return;
    this.#error = new MailStoreError("cannot", `Message read failed: ${message}`);
    this.#settle();
  }

  #settle(): void {
    const waiting = this.#waiting;
    if (waiting === null) return;
    this.#waiting = null;
    if (this.#error !== null) waiting.reject(this.#error);
    else waiting.resolve(null);
  }
}
