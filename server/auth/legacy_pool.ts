/**
 * Imported hashes (SHA-crypt, bcrypt, Argon2id; mailstore/legacy_password.ts) verified on
 * Worker threads. Their libraries compute on the JavaScript thread: bcrypt cost 10 holds it
 * for about 100 ms at a time and Argon2id with 64 MiB for seconds in 10 ms slices, which would
 * stall every other session. Workers are started on the first imported hash only, at most one
 * per core (the check queue already bounds how many checks run), and stopped by `close()`.
 */
import { isLegacyHash } from "../../mailstore/legacy_password.ts";
import { verifyPasswordAsync } from "../../mailstore/password.ts";
import type { LegacyRequest, LegacyResponse } from "./legacy_worker.ts";

interface Waiting {
  readonly resolve: (ok: boolean) => void;
  readonly reject: (error: Error) => void;
}

interface PoolWorker {
  readonly worker: Worker;
  /** Requests sent to this worker and not answered yet, by id. */
  readonly pending: Map<number, Waiting>;
}

/** A lazily started pool of verification Workers. */
export class LegacyVerifierPool {
  readonly #size: number;
  readonly #workers: PoolWorker[] = [];
  #nextId = 0;
  #closed = false;

  constructor(size = Math.max(1, navigator.hardwareConcurrency || 1)) {
    this.#size = Math.max(1, size);
  }

  /**
   * A verifier for `LocalAuthenticator`: scrypt on the native thread pool as usual, imported
   * hashes on this pool's Workers.
   */
  // pretenured: one per pool, which lives as long as the server.
  readonly verifyPassword = (password: string, encoded: string): Promise<boolean> =>
    isLegacyHash(encoded) ? this.verify(password, encoded) : verifyPasswordAsync(password, encoded);

  /** True when `password` matches the imported hash `encoded`, computed on a Worker. */
  verify(password: string, encoded: string): Promise<boolean> {
    if (this.#closed) return Promise.reject(new Error("The verifier pool is closed"));
    const target = this.#pick();
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      target.pending.set(id, { resolve, reject });
      const request: LegacyRequest = { id, password, encoded };
      target.worker.postMessage(request);
    });
  }

  /** Stops the workers; checks still running fail. */
  close(): void {
    this.#closed = true;
    for (const w of this.#workers.splice(0)) this.#fail(w, new Error("The verifier pool closed"));
  }

  /** The least busy worker, starting a new one while the pool is below its size. */
  #pick(): PoolWorker {
    const idle = this.#workers.find((w) => w.pending.size === 0);
    if (idle) return idle;
    if (this.#workers.length < this.#size) return this.#start();
    return this.#workers.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
  }

  #start(): PoolWorker {
    const worker = new Worker(new URL("./legacy_worker.ts", import.meta.url), { type: "module" });
    const entry: PoolWorker = { worker, pending: new Map() };
    worker.onmessage = (e: MessageEvent<LegacyResponse>) => {
      const waiting = entry.pending.get(e.data.id);
      entry.pending.delete(e.data.id);
      waiting?.resolve(e.data.ok === true);
    };
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      const at = this.#workers.indexOf(entry);
      if (at >= 0) this.#workers.splice(at, 1);
      this.#fail(entry, new Error("A password verification worker failed"));
    };
    this.#workers.push(entry);
    return entry;
  }

  #fail(entry: PoolWorker, error: Error): void {
    entry.worker.terminate();
    for (const waiting of entry.pending.values()) waiting.reject(error);
    entry.pending.clear();
  }
}
