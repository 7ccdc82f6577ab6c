/**
 * A thread for the MIME derivation of large APPENDed messages (`DeriveOffThread`): parsing a
 * 51.6 MB message for its summary and search text takes ~50 ms of CPU, which would stall every
 * other session of the event loop. The bytes go to the thread and back by transfer, without a
 * copy. One per accept loop, started with the server (`new Worker` blocks the event loop until
 * the thread runs) and stopped with it.
 */
import type { DerivedData, DeriveOffThread } from "../../protocol/imap/mime_support.ts";

/** A request to the derive thread: `raw` is a view of a whole ArrayBuffer, transferred. */
export interface DeriveRequest {
  readonly id: number;
  readonly raw: Uint8Array;
}

/** A report of the derive thread; `raw` is the request's bytes, transferred back. */
export type DeriveReport =
  | {
    readonly kind: "derived";
    readonly id: number;
    readonly raw: Uint8Array;
    readonly derived: DerivedData;
  }
  | { readonly kind: "error"; readonly id: number; readonly raw: Uint8Array };

/** The derive thread of one accept loop. */
export class DeriveWorker {
  #worker: Worker | null;
  #next = 0;
  readonly #pending = new Map<number, (report: DeriveReport | undefined) => void>();

  /** Starts the thread; without one (Workers not permitted) every call answers null. */
  constructor() {
    try {
      this.#worker = new Worker(new URL("./_derive_thread.ts", import.meta.url), {
        type: "module",
      });
    } catch {
      this.#worker = null;
      return;
    }
    const worker = this.#worker;
    worker.onmessage = (e: MessageEvent<DeriveReport>) => {
      const done = this.#pending.get(e.data.id);
      this.#pending.delete(e.data.id);
      done?.(e.data);
    };
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      this.close();
    };
  }

  // pretenured: one per derive Worker, which lives as long as its accept loop.
  readonly derive: DeriveOffThread = (raw) => {
    const worker = this.#worker;
    if (
      worker === null || !(raw.buffer instanceof ArrayBuffer) || raw.byteOffset !== 0 ||
      raw.byteLength !== raw.buffer.byteLength
    ) return Promise.resolve(null);
    const id = this.#next++;
    const request: DeriveRequest = { id, raw };
    try {
      worker.postMessage(request, [raw.buffer]);
    } catch {
      return Promise.resolve(null);
    }
    return new Promise((resolve, reject) => {
      this.#pending.set(id, (report) => {
        if (report === undefined) reject(new Error("The derive thread ended with a message"));
        else {resolve({
            raw: report.raw,
            derived: report.kind === "derived" ? report.derived : null,
          });}
      });
    });
  };

  /** Stops the thread; requests still out reject (their bytes are gone with it). */
  close(): void {
    const worker = this.#worker;
    if (worker === null) return;
    this.#worker = null;
    worker.terminate();
    for (const done of this.#pending.values()) done(undefined);
    this.#pending.clear();
  }
}
