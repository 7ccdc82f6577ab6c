/**
 * Open connections per client address for every Worker of a server, in a SharedArrayBuffer,
 * so that `limits.max_connections_per_address` holds in total without a message to the
 * supervisor on every accept. An open-addressing table of 128-bit addresses (IPv4 as
 * IPv4-mapped IPv6) behind a spin lock held for a few reads and writes. Each Worker counts in
 * a column of its own, so that the supervisor can forget the connections of a Worker that
 * died (`clearAddressColumn`) and its replacement starts from what the others hold.
 */
import type { AddressGate } from "../connection/listener.ts";
import { withSpinLock } from "./spin_lock.ts";

/** Int32 cells before the slots: the lock, then the number of columns. */
const HEADER = 2;
/** Int32 fields of a slot before its counts: four words of address. */
const WORDS = 4;
/** Slots probed before the table counts as full for an address. */
const MAX_PROBES = 64;

/**
 * A table for `slots` addresses at once (rounded up to a power of two), counted in `columns`
 * columns (one per Worker).
 */
export function allocateAddressCounts(slots = 1 << 14, columns = 1): SharedArrayBuffer {
  let size = 1;
  while (size < slots) size *= 2;
  if (!Number.isInteger(columns) || columns < 1) throw new RangeError("columns < 1");
  const buffer = new SharedArrayBuffer((HEADER + size * (WORDS + columns)) * 4);
  new Int32Array(buffer)[1] = columns;
  return buffer;
}

/** Forgets every connection counted in `column` (its Worker is gone), for every address. */
export function clearAddressColumn(buffer: SharedArrayBuffer, column: number): void {
  const cells = new Int32Array(buffer);
  const slot = WORDS + cells[1]!;
  const slots = (cells.length - HEADER) / slot;
  withSpinLock(cells, () => {
    for (let i = 0; i < slots; i++) cells[HEADER + i * slot + WORDS + column] = 0;
  });
}

/**
 * The gate over a shared table. An address the table cannot hold (full, or not an IP
 * address) goes to `fallback`, which counts it elsewhere.
 */
export class SharedAddressCounts implements AddressGate {
  readonly #cells: Int32Array;
  readonly #slot: number;
  readonly #slots: number;
  /** Where this gate's own count sits in a slot. */
  readonly #own: number;
  readonly #fallback: AddressGate;

  /** A gate counting in `column` (from 0, below the table's column count). */
  constructor(buffer: SharedArrayBuffer, fallback: AddressGate, column = 0) {
    this.#cells = new Int32Array(buffer);
    const columns = this.#cells[1]!;
    if (!Number.isInteger(column) || column < 0 || column >= columns) {
      throw new RangeError(`No column ${column} in an address table of ${columns}`);
    }
    this.#slot = WORDS + columns;
    this.#slots = (this.#cells.length - HEADER) / this.#slot;
    this.#own = WORDS + column;
    this.#fallback = fallback;
  }

  claim(address: string, limit: number): Promise<boolean> {
    const words = addressWords(address);
    if (words === null) return this.#fallback.claim(address, limit);
    const outcome = this.#locked(() => {
      const at = this.#find(words, true);
      if (at === null) return null;
      if (this.#total(at) >= limit) return false;
      for (let i = 0; i < WORDS; i++) this.#cells[at + i] = words[i]!;
      this.#cells[at + this.#own] = this.#cells[at + this.#own]! + 1;
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
      // After a Worker's column was cleared, its replacement never releases into it.
      this.#cells[at + this.#own] = Math.max(0, this.#cells[at + this.#own]! - 1);
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
      const at = HEADER + i * this.#slot;
      let same = true;
      for (let w = 0; w < WORDS && same; w++) same = this.#cells[at + w] === words[w];
      const count = this.#total(at);
      if (same && (count > 0 || this.#used(at))) return at;
      if (count === 0 && free === null) free = at;
      if (!this.#used(at)) break;
    }
    return insert ? free : null;
  }

  /** The connections of every Worker to the slot's address. */
  #total(at: number): number {
    let sum = 0;
    for (let c = at + WORDS; c < at + this.#slot; c++) sum += this.#cells[c]!;
    return sum;
  }

  /** Whether a slot has ever held an address (all-zero words are never a client address). */
  #used(at: number): boolean {
    return (this.#cells[at]! | this.#cells[at + 1]! | this.#cells[at + 2]! |
      this.#cells[at + 3]!) !== 0;
  }

  #locked<T>(body: () => T): T {
    return withSpinLock(this.#cells, body);
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
