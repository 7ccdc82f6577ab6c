/**
 * Handshake work done ahead, on a thread of its own: the message-free half of each P-256
 * signature (the nonce: k G and k^-1, nearly all of a signature's time) and X25519 key pairs.
 * With them ready, the event loop only finishes a signature (`P256WasmSigner.signWithNonce`, a
 * few µs against about 65 µs) and imports a key pair (about 4 µs against 30 µs to make one).
 * On a machine whose clients keep the event loop's thread busy, that work then runs on
 * another core (bench/handshake_bench.ts, `tls.signing` auto against sync).
 *
 * Each ring lives in shared memory: a state cell per slot (0 empty, 1 ready, 2 being used),
 * then 64 bytes per slot.
 * The thread fills the slots in order and sleeps while they are all full; the event loop takes
 * them in the same order, wipes each before handing it back, and wakes the thread after every
 * `AHEAD_BATCH` (and whenever it finds none ready), so that the thread refills in bursts. A
 * slot serves exactly one signature or one key exchange. When none is ready (a burst took
 * them all, the thread has not started yet), the caller works as it would without this.
 *
 * P-256 nonces come from RFC 6979's generator with 32 fresh random bytes in place of the
 * digest (see p256_wasm/mod.ts): they depend on the key and on the randomness, not on the
 * message, which is not known yet. What the slots hold is as secret as the keys: with a
 * signature, a nonce gives its key away. It stays in this process's memory, and is wiped when
 * used and when the thread stops.
 *
 * The thread runs at the lowest priority (`AHEAD_NICE`, see _ahead_thread.ts): it is meant for
 * cores that would otherwise sit idle.
 */
import {
  AHEAD_SLOT_BYTES,
  type AheadReport,
  type AheadRing,
  type AheadStart,
  BEAT,
  STOP,
  WAKE,
} from "./_ahead_thread.ts";
import type { P256WasmSigner } from "./p256_wasm/mod.ts";

type AheadStarted = Extract<AheadReport, { kind: "started" }>;
type AheadEnded = Extract<AheadReport, { kind: "ended" }>;

/** Slots per ring: a burst of handshakes this large finds every one ready. */
export const AHEAD_SLOTS = 256;
/** Slots taken between two wake-ups of the thread, which then refills them in one burst. */
export const AHEAD_BATCH = 32;
/**
 * The thread's nice value: the lowest priority, so that the event loop and the clients always
 * go first. Needs the `setPriority` system permission (`--allow-sys=setPriority`); without it the
 * thread runs at the server's priority (`started` says so).
 */
export const AHEAD_NICE = 19;
/** How often the owner beats, and how long the thread waits for a beat before it ends. */
export const AHEAD_BEAT_MS = 1000;
export const AHEAD_ORPHAN_MS = 10_000;

/** The event loop's side of one ring. */
class Ring {
  readonly state: Int32Array;
  readonly data: Uint8Array;
  next = 0;
  /** Slots taken. */
  used = 0;

  constructor(readonly cells: SharedArrayBuffer, readonly slots: number) {
    this.state = new Int32Array(cells, 0, slots);
    this.data = new Uint8Array(cells, 4 * slots, slots * AHEAD_SLOT_BYTES);
  }
}

export class HandshakeAhead {
  readonly #control = new Int32Array(new SharedArrayBuffer(12));
  readonly #beat: ReturnType<typeof setInterval>;
  readonly #nonces: Ring[];
  readonly #x25519: Ring | null;
  readonly #worker: Worker;
  readonly #started: Promise<AheadStarted>;
  readonly #ended: Promise<AheadEnded>;
  #stopped = false;

  /**
   * Starts the thread: a nonce ring for each P-256 private scalar of `p256` (32 bytes each, in
   * that order), and an X25519 ring if `x25519`. Throws where Workers cannot be made.
   */
  constructor(
    options: {
      readonly p256: readonly Uint8Array[];
      readonly x25519: boolean;
      /** Default `AHEAD_BEAT_MS` and `AHEAD_ORPHAN_MS` (shorter in tests). */
      readonly beatMs?: number;
      readonly orphanMs?: number;
      /** The thread's nice value: default `AHEAD_NICE`; null keeps the owner's. */
      readonly nice?: number | null;
    },
    slots = AHEAD_SLOTS,
  ) {
    const ring = () => new Ring(new SharedArrayBuffer(4 * slots + slots * AHEAD_SLOT_BYTES), slots);
    this.#nonces = options.p256.map(ring);
    this.#x25519 = options.x25519 ? ring() : null;
    const rings: AheadRing[] = this.#nonces.map((r, i) => {
      if (options.p256[i]!.length !== 32) throw new RangeError("A P-256 scalar has 32 bytes");
      return { kind: "p256-nonce", cells: r.cells, d: options.p256[i]!.slice() };
    });
    if (this.#x25519 !== null) rings.push({ kind: "x25519", cells: this.#x25519.cells });
    this.#worker = new Worker(new URL("./_ahead_thread.ts", import.meta.url), {
      type: "module",
    });
    let started: (report: AheadStarted) => void = () => {};
    this.#started = new Promise((resolve) => started = resolve);
    this.#ended = new Promise((resolve) => {
      this.#worker.onmessage = (event: MessageEvent<AheadReport>) => {
        if (event.data.kind === "started") started(event.data);
        else {
          started({ kind: "started", nice: null, error: "the thread ended before it started" });
          resolve(event.data);
        }
      };
      this.#worker.onerror = (event: ErrorEvent) => {
        event.preventDefault();
        started({ kind: "started", nice: null, error: event.message });
        resolve({ kind: "ended", error: event.message });
      };
    });
    const start: AheadStart = {
      control: this.#control.buffer as SharedArrayBuffer,
      slots,
      rings,
      orphanMs: options.orphanMs ?? AHEAD_ORPHAN_MS,
      nice: options.nice === undefined ? AHEAD_NICE : options.nice,
    };
    this.#worker.postMessage(start);
    // The beat tells the thread that its owner lives (see _ahead_thread.ts); it does not keep
    // the event loop alive.
    const control = this.#control;
    this.#beat = setInterval(() => Atomics.add(control, BEAT, 1), options.beatMs ?? AHEAD_BEAT_MS);
    Deno.unrefTimer(this.#beat as unknown as number);
  }

  /**
   * Resolves once the thread runs, with the nice value it runs at (null, with `error`, when it
   * could not change it: it then runs at the owner's priority).
   */
  get started(): Promise<AheadStarted> {
    return this.#started;
  }

  /**
   * Resolves when the thread has ended: after `stop()`, or on its own with `error` (the
   * handshakes then do all the work inline).
   */
  get ended(): Promise<AheadEnded> {
    return this.#ended;
  }

  /** Slots taken so far: signatures finished with the `index`th key's nonces, or key pairs. */
  used(which: number | "x25519"): number {
    return (which === "x25519" ? this.#x25519 : this.#nonces[which])?.used ?? 0;
  }

  /**
   * The rings' shared memory, nonce rings first (for the tests: a thread that ends wipes it).
   */
  get sharedRings(): readonly SharedArrayBuffer[] {
    return [...this.#nonces, this.#x25519].flatMap((ring) => ring === null ? [] : [ring.cells]);
  }

  /** Slots ready now in a ring. */
  ready(which: number | "x25519"): number {
    const ring = which === "x25519" ? this.#x25519 : this.#nonces[which];
    let n = 0;
    for (let i = 0; ring !== undefined && ring !== null && i < ring.slots; i++) {
      if (Atomics.load(ring.state, i) === 1) n++;
    }
    return n;
  }

  /**
   * Signs `digest` with the `index`th key (its scalar `d`) and its next ready nonce, or returns
   * null when none is ready or the rare nonce gave s = 0 (it is used up all the same).
   */
  signP256(
    index: number,
    signer: P256WasmSigner,
    d: Uint8Array,
    digest: Uint8Array,
  ): Uint8Array | null {
    const ring = this.#nonces[index];
    if (ring === undefined) return null;
    return this.#take(ring, (data, at) => signer.signWithNonce(d, digest, data, at));
  }

  /**
   * Hands the next ready X25519 key pair (private scalar, then public key: 32 bytes each) to
   * `use`, which must copy what it keeps; null when none is ready.
   */
  takeX25519<T>(use: (pair: Uint8Array) => T): T | null {
    if (this.#x25519 === null) return null;
    return this.#take(this.#x25519, (data, at) => use(data.subarray(at, at + AHEAD_SLOT_BYTES)));
  }

  /** Takes a ring's next slot if it is ready, wipes it and hands it back to the thread. */
  #take<T>(ring: Ring, use: (data: Uint8Array, at: number) => T | null): T | null {
    const i = ring.next;
    if (this.#stopped) return null;
    // Ready (1) becomes in use (2), unless the thread, ending, withdrew the slot first.
    if (Atomics.compareExchange(ring.state, i, 1, 2) !== 1) {
      this.#wake();
      return null;
    }
    const at = i * AHEAD_SLOT_BYTES;
    let result: T | null;
    try {
      result = use(ring.data, at);
    } finally {
      ring.data.fill(0, at, at + AHEAD_SLOT_BYTES);
      ring.next = (i + 1) % ring.slots;
      ring.used++;
      Atomics.store(ring.state, i, 0);
      if (ring.next % AHEAD_BATCH === 0) this.#wake();
    }
    return result;
  }

  /** Wakes the thread if it sleeps. */
  #wake(): void {
    if (Atomics.compareExchange(this.#control, WAKE, 0, 1) === 0) {
      Atomics.notify(this.#control, WAKE);
    }
  }

  /** Stops the thread; resolves once it has wiped the keys and the slots. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#beat);
    Atomics.store(this.#control, STOP, 1);
    Atomics.store(this.#control, WAKE, 1);
    Atomics.notify(this.#control, WAKE);
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.#ended,
      new Promise((resolve) => timer = setTimeout(resolve, 2000)),
    ]);
    clearTimeout(timer);
    this.#worker.terminate();
    for (const ring of [...this.#nonces, this.#x25519]) ring?.data.fill(0);
  }
}
