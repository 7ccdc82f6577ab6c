/// <reference lib="deno.worker" />
/**
 * The thread of a `HandshakeAhead` (ahead.ts): fills each ring's slots in order with what its
 * kind asks for (a P-256 nonce for one key, an X25519 key pair), taking the rings in turn. When
 * every ring's next slot is full it sleeps until the event loop has taken a batch and wakes it,
 * then refills in one burst: a wake-up per batch, not per handshake. It ends when the stop cell
 * is set, wiping the keys and every slot, and also when its owner has not beaten for
 * `orphanMs`: in Deno 2.9 a Worker that is terminated (the supervisor ending a failed accept
 * loop) leaves the Workers it started running, and this one holds key material.
 *
 * It runs at the lowest priority (nice 19, when the owner asks for it; only on Linux, which
 * applies a nice value to the one thread), so that it fills cores the event loop and everything
 * else leave idle and never takes one from them. At normal priority each batch's wake-up put it
 * on a core ahead of the event loop or a client for a burst of refills (32 slots, about 3 ms),
 * and the event loop's thread waited for a core while the clients waited for it; a thread that
 * gets too little time leaves slots empty, and the handshakes do that work inline.
 */
import { setPriority } from "node:os";
import { generateKeyPairSync } from "node:crypto";
import { P256_NONCE_BATCH, P256_NONCE_BYTES, p256WasmSigner } from "./p256_wasm/mod.ts";

/**
 * One ring: its cells (a state cell per slot: 0 empty, 1 ready, 2 being used by the owner; then
 * 64 bytes per slot) and what fills it.
 */
export type AheadRing =
  | { readonly kind: "p256-nonce"; readonly cells: SharedArrayBuffer; readonly d: Uint8Array }
  | { readonly kind: "x25519"; readonly cells: SharedArrayBuffer };

/** The setup message: the control cells (stop, wake, beat), the slots per ring, the rings. */
export interface AheadStart {
  readonly control: SharedArrayBuffer;
  readonly slots: number;
  readonly rings: readonly AheadRing[];
  /** How long the owner's beat may stand still before the thread takes the owner to be gone. */
  readonly orphanMs: number;
  /** The nice value to run at (null: the owner's priority). */
  readonly nice: number | null;
}

/**
 * What the thread reports: `started` once, with the nice value it runs at (null: it could not
 * change it, and why), then `ended` once it has wiped everything.
 */
export type AheadReport =
  | { readonly kind: "started"; readonly nice: number | null; readonly error?: string }
  | { readonly kind: "ended"; readonly error?: string };

/** Bytes of a slot: a nonce (r, k^-1), or an X25519 key pair (private scalar, public key). */
export const AHEAD_SLOT_BYTES = P256_NONCE_BYTES;
/** The control cells. */
export const STOP = 0;
export const WAKE = 1;
/** Counted up by the owner's event loop while it lives. */
export const BEAT = 2;

self.onmessage = (event: MessageEvent<AheadStart>) => {
  const { control, slots, rings, orphanMs, nice } = event.data;
  if (nice === null) self.postMessage({ kind: "started", nice: null } satisfies AheadReport);
  else if (Deno.build.os !== "linux") {
    // Elsewhere process 0 is the whole process: the event loop would go down with the thread.
    const error = "a thread's own priority is only set on Linux";
    self.postMessage({ kind: "started", nice: null, error } satisfies AheadReport);
  } else {
    try {
      // Process 0: on Linux, this thread alone.
      setPriority(0, nice);
      self.postMessage({ kind: "started", nice } satisfies AheadReport);
    } catch (e) {
      const error = e instanceof Error ? e.message : String(e);
      self.postMessage({ kind: "started", nice: null, error } satisfies AheadReport);
    }
  }
  const cells = new Int32Array(control);
  const views = rings.map((ring) => ({
    ring,
    state: new Int32Array(ring.cells, 0, slots),
    data: new Uint8Array(ring.cells, 4 * slots, slots * AHEAD_SLOT_BYTES),
    next: 0,
    // Nonces are drawn in batches (they share their inversions, about 30 % less CPU each) and
    // handed to the ring one slot at a time; `left` of them wait at the end of `batch`.
    batch: ring.kind === "p256-nonce" ? new Uint8Array(P256_NONCE_BATCH * P256_NONCE_BYTES) : null,
    left: 0,
  }));
  let error: string | undefined;
  try {
    const signer = rings.some((r) => r.kind === "p256-nonce") ? p256WasmSigner() : null;
    const fill = (view: (typeof views)[number]): void => {
      const at = view.next * AHEAD_SLOT_BYTES;
      if (view.ring.kind === "p256-nonce") {
        if (signer === null || view.batch === null) throw new Error("WebAssembly is not available");
        if (view.left === 0) {
          signer.nonces(view.ring.d, P256_NONCE_BATCH, view.batch, 0);
          view.left = P256_NONCE_BATCH;
        }
        const from = (P256_NONCE_BATCH - view.left) * P256_NONCE_BYTES;
        view.data.set(view.batch.subarray(from, from + P256_NONCE_BYTES), at);
        view.batch.fill(0, from, from + P256_NONCE_BYTES);
        view.left--;
      } else {
        const { privateKey, publicKey } = generateKeyPairSync("x25519");
        const pkcs8 = privateKey.export({ format: "der", type: "pkcs8" });
        const spki = publicKey.export({ format: "der", type: "spki" });
        view.data.set(pkcs8.subarray(pkcs8.length - 32), at);
        view.data.set(spki.subarray(spki.length - 32), at + 32);
        pkcs8.fill(0);
      }
    };
    let beat = Atomics.load(cells, BEAT);
    let beatSeen = performance.now();
    while (Atomics.load(cells, STOP) === 0) {
      let filled = false;
      for (const view of views) {
        if (Atomics.load(view.state, view.next) !== 0) continue;
        fill(view);
        Atomics.store(view.state, view.next, 1);
        view.next = (view.next + 1) % slots;
        filled = true;
      }
      if (filled) continue;
      // Every ring full: sleep until the event loop has taken a batch (or the pool stops); the
      // timeout is a backstop for a wake-up that came between the check and the wait.
      Atomics.store(cells, WAKE, 0);
      if (views.every((v) => Atomics.load(v.state, v.next) !== 0)) {
        Atomics.wait(cells, WAKE, 0, Math.min(100, orphanMs));
      }
      const now = performance.now();
      if (Atomics.load(cells, BEAT) !== beat) {
        beat = Atomics.load(cells, BEAT);
        beatSeen = now;
      } else if (now - beatSeen > orphanMs) {
        throw new Error("its owner stopped beating");
      }
    }
  } catch (e) {
    error = e instanceof Error ? e.message : String(e);
  } finally {
    // Withdraw every ready slot before wiping it, so that the owner, if it lives, never takes a
    // wiped one; a slot it is using (2) it wipes itself.
    for (const view of views) {
      for (let i = 0; i < slots; i++) {
        if (Atomics.compareExchange(view.state, i, 1, 0) === 1) {
          view.data.fill(0, i * AHEAD_SLOT_BYTES, (i + 1) * AHEAD_SLOT_BYTES);
        }
      }
      if (view.ring.kind === "p256-nonce") view.ring.d.fill(0);
      view.batch?.fill(0);
    }
  }
  const report: AheadReport = error === undefined ? { kind: "ended" } : { kind: "ended", error };
  self.postMessage(report);
  self.close();
};
