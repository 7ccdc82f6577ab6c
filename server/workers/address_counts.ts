/**
 * Open connections per client address for every Worker of a server, in a SharedArrayBuffer,
 * so that `limits.max_connections_per_address` holds in total without a message to the
 * supervisor on every accept. An open-addressing table of 128-bit addresses (IPv4 as
 * IPv4-mapped IPv6) behind a spin lock held for a few reads and writes.
 */
import type { AddressGate } from "../connection/listener.ts";

/** Int32 fields per slot: four words of address, then the count. */
const SLOT = 5;
/** Slots probed before the table counts as full for an address. */
const MAX_PROBES = 64;

/** A table for `slots` addresses at once (rounded up to a power of two). */
export function allocateAddressCounts(slots = 1 << 14): SharedArrayBuffer {
  let size = 1;
  while (size < slots) size *= 2;
  return new SharedArrayBuffer((1 + size * SLOT) * 4);
}

/**
 * The gate over a shared table. An address the table cannot hold (full, or not an IP
 * address) goes to `fallback`, which counts it elsewhere.
 */
export class SharedAddressCounts implements AddressGate {
  readonly #cells: Int32Array;
  readonly #slots: number;
  readonly #fallback: AddressGate;

  constructor(buffer: SharedArrayBuffer, fallback: AddressGate) {
    this.#cells = new Int32Array(buffer);
    this.#slots = (this.#cells.length - 1) / SLOT;
    this.#fallback = fallback;
  }

  claim(address: string, limit: number): Promise<boolean> {
    const words = addressWords(address);
    if (words === null) return this.#fallback.claim(address, limit);
    const outcome = this.#locked(() => {
      const at = this.#find(words, true);
      if (at === null) return null;
      const count = this.#cells[at + 4]!;
      if (count >= limit) return false;
      for (let i = 0; i < 4; i++) this.#cells[at + i] = words[i]!;
      this.#cells[at + 4] = count + 1;
      return true;
    });
    return outcome === null ? this.#fallback.claim(address, limit) : Promise.resolve(outcome);
  }

  release(address: string): void {
    const words = addressWords(address);
    if (words === null) return this.#fallback.release(address);
    const found = this.#locked(() => {
      const at = this.#find(words, false);
      if (at === null) return false;
      // A slot whose count reaches 0 stays reserved for its address: probe paths stay intact.
      this.#cells[at + 4] = Math.max(0, this.#cells[at + 4]! - 1);
      return true;
    });
    if (!found) this.#fallback.release(address);
  }

  /** The slot of an address, or (with `insert`) a free one (count 0) on its probe path. */
  #find(words: Int32Array, insert: boolean): number | null {
    let i = (Math.imul(words[3]! ^ words[2]! ^ words[1]! ^ words[0]!, 0x9e3779b1) >>> 0) &
      (this.#slots - 1);
    let free: number | null = null;
    for (let probe = 0; probe < MAX_PROBES; probe++, i = (i + 1) & (this.#slots - 1)) {
      const at = 1 + i * SLOT;
      let same = true;
      for (let w = 0; w < 4 && same; w++) same = this.#cells[at + w] === words[w];
      const count = this.#cells[at + 4]!;
      if (same && (count > 0 || this.#used(at))) return at;
      if (count === 0 && free === null) free = at;
      if (!this.#used(at)) break;
    }
    return insert ? free : null;
  }

  /** Whether a slot has ever held an address (all-zero words are never a client address). */
  #used(at: number): boolean {
    return (this.#cells[at]! | this.#cells[at + 1]! | this.#cells[at + 2]! |
      this.#cells[at + 3]!) !== 0;
  }

  #locked<T>(body: () => T): T {
    while (Atomics.compareExchange(this.#cells, 0, 0, 1) !== 0) {
      // Another Worker is inside a step of a few instructions.
    }
    try {
      return body();
    } finally {
      Atomics.store(this.#cells, 0, 0);
    }
  }
}

/** An IP address as four 32-bit words (IPv4 mapped into IPv6), or null when it is none. */
export function addressWords(address: string): Int32Array | null {
  const words = new Int32Array(4);
  const v4 = /^(?:::ffff:)?(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/i.exec(address);
  if (v4) {
    const octets = v4.slice(1).map(Number);
    if (octets.some((o) => o > 255)) return null;
    words[2] = 0xffff;
    words[3] = (octets[0]! << 24) | (octets[1]! << 16) | (octets[2]! << 8) | octets[3]!;
    return words;
  }
  const bare = address.replace(/%.*$/, "");
  if (!/^[0-9a-f:]+$/i.test(bare) || bare.length > 39) return null;
  const halves = bare.split("::");
  if (halves.length > 2) return null;
  const head = halves[0] === "" ? [] : halves[0]!.split(":");
  const tail = halves.length === 2 && halves[1] !== "" ? halves[1]!.split(":") : [];
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return null;
  const groups = [...head, ...Array(halves.length === 2 ? missing : 0).fill("0"), ...tail];
  for (let g = 0; g < 8; g++) {
    const text = groups[g]!;
    if (!/^[0-9a-f]{1,4}$/i.test(text)) return null;
    const value = parseInt(text, 16);
    words[g >> 1] = g % 2 === 0 ? (value << 16) : (words[g >> 1]! | value);
  }
  // All zeros marks a never-used slot; `::` is no client's address anyway.
  return words.some((w) => w !== 0) ? words : null;
}
