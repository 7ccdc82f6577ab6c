/**
 * HMAC-SHA-256 (RFC 2104 over FIPS 180-4 SHA-256) for the short inputs of a TLS 1.3 handshake:
 * HKDF-Extract and HKDF-Expand-Label, the Finished MACs and the RFC 6979 nonce generator of
 * ECDSA signing. Written from the standards for speed: the general-purpose HMAC builds two hash
 * objects, their buffers and views on every call, which cost more than the few compressions a
 * 32-byte MAC of a 50-byte input needs. Here every call works in preallocated scratch memory
 * and allocates only its 32-byte result.
 *
 * Only used on data of at most `MAX_INPUT` bytes (the caller falls back to the general HMAC
 * beyond); every result is checked against the general implementation by the provider tests and
 * the Wycheproof HMAC and HKDF vectors. `Sha256Context`, the running transcript hash, shares the
 * compression function and has no length limit.
 */
import { smallBytes } from "../bytes.ts";
import { HMAC_WASM_MAX_INPUT, type HmacWasm, hmacWasm } from "./p256_wasm/mod.ts";

const K = new Int32Array([
  0x428a2f98,
  0x71374491,
  0xb5c0fbcf,
  0xe9b5dba5,
  0x3956c25b,
  0x59f111f1,
  0x923f82a4,
  0xab1c5ed5,
  0xd807aa98,
  0x12835b01,
  0x243185be,
  0x550c7dc3,
  0x72be5d74,
  0x80deb1fe,
  0x9bdc06a7,
  0xc19bf174,
  0xe49b69c1,
  0xefbe4786,
  0x0fc19dc6,
  0x240ca1cc,
  0x2de92c6f,
  0x4a7484aa,
  0x5cb0a9dc,
  0x76f988da,
  0x983e5152,
  0xa831c66d,
  0xb00327c8,
  0xbf597fc7,
  0xc6e00bf3,
  0xd5a79147,
  0x06ca6351,
  0x14292967,
  0x27b70a85,
  0x2e1b2138,
  0x4d2c6dfc,
  0x53380d13,
  0x650a7354,
  0x766a0abb,
  0x81c2c92e,
  0x92722c85,
  0xa2bfe8a1,
  0xa81a664b,
  0xc24b8b70,
  0xc76c51a3,
  0xd192e819,
  0xd6990624,
  0xf40e3585,
  0x106aa070,
  0x19a4c116,
  0x1e376c08,
  0x2748774c,
  0x34b0bcb5,
  0x391c0cb3,
  0x4ed8aa4a,
  0x5b9cca4f,
  0x682e6ff3,
  0x748f82ee,
  0x78a5636f,
  0x84c87814,
  0x8cc70208,
  0x90befffa,
  0xa4506ceb,
  0xbef9a3f7,
  0xc67178f2,
]);

const IV = new Int32Array([
  0x6a09e667,
  0xbb67ae85,
  0x3c6ef372,
  0xa54ff53a,
  0x510e527f,
  0x9b05688c,
  0x1f83d9ab,
  0x5be0cd19,
]);

/**
 * Longest message (key excluded) one call accepts: the scratch buffer's size less padding, and
 * what the WebAssembly core takes.
 */
export const MAX_INPUT = HMAC_WASM_MAX_INPUT;

const W = new Int32Array(64);
/** The message being hashed, padded: the key block (or inner digest) and then the data. */
const scratch = new Uint8Array(64 + MAX_INPUT + 72);
const inner = new Int32Array(8);
const outer = new Int32Array(8);

/** One SHA-256 compression of the 64-byte block at `offset` of `scratch` into `state`. */
function compress(state: Int32Array, offset: number): void {
  compressFrom(state, scratch, offset);
}

/** One SHA-256 compression of the 64-byte block at `offset` of `m` into `state`. */
function compressFrom(state: Int32Array, m: Uint8Array, offset: number): void {
  for (let i = 0; i < 16; i++, offset += 4) {
    W[i] = (m[offset]! << 24) | (m[offset + 1]! << 16) | (m[offset + 2]! << 8) | m[offset + 3]!;
  }
  for (let i = 16; i < 64; i++) {
    const w15 = W[i - 15]!;
    const w2 = W[i - 2]!;
    const s0 = ((w15 >>> 7) | (w15 << 25)) ^ ((w15 >>> 18) | (w15 << 14)) ^ (w15 >>> 3);
    const s1 = ((w2 >>> 17) | (w2 << 15)) ^ ((w2 >>> 19) | (w2 << 13)) ^ (w2 >>> 10);
    W[i] = (W[i - 16]! + s0 + W[i - 7]! + s1) | 0;
  }
  let a = state[0]!, b = state[1]!, c = state[2]!, d = state[3]!;
  let e = state[4]!, f = state[5]!, g = state[6]!, h = state[7]!;
  for (let i = 0; i < 64; i++) {
    const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const t1 = (h + S1 + ((e & f) ^ (~e & g)) + K[i]! + W[i]!) | 0;
    const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
    h = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + t2) | 0;
  }
  state[0] = (state[0]! + a) | 0;
  state[1] = (state[1]! + b) | 0;
  state[2] = (state[2]! + c) | 0;
  state[3] = (state[3]! + d) | 0;
  state[4] = (state[4]! + e) | 0;
  state[5] = (state[5]! + f) | 0;
  state[6] = (state[6]! + g) | 0;
  state[7] = (state[7]! + h) | 0;
}

/** Writes the 8 words of `state` big-endian into the first 32 bytes of `out`. */
function storeState(state: Int32Array, out: Uint8Array): void {
  for (let i = 0; i < 8; i++) {
    const v = state[i]!;
    out[4 * i] = v >>> 24;
    out[4 * i + 1] = (v >>> 16) & 0xff;
    out[4 * i + 2] = (v >>> 8) & 0xff;
    out[4 * i + 3] = v & 0xff;
  }
}

/** Pads the `length` bytes of `scratch` (a multiple of 64 already hashed elsewhere: `prefix`). */
function padAndCompress(state: Int32Array, length: number, prefix: number): void {
  const bits = (prefix + length) * 8;
  let end = length;
  scratch[end++] = 0x80;
  while (end % 64 !== 56) scratch[end++] = 0;
  // Inputs stay far below 2^32 bits: the high word of the 64-bit length is zero.
  scratch[end++] = 0;
  scratch[end++] = 0;
  scratch[end++] = 0;
  scratch[end++] = 0;
  scratch[end++] = bits >>> 24;
  scratch[end++] = (bits >>> 16) & 0xff;
  scratch[end++] = (bits >>> 8) & 0xff;
  scratch[end++] = bits & 0xff;
  for (let at = 0; at < end; at += 64) compress(state, at);
}

/** The key block XOR `pad` into `state`, from the IV. */
function keyBlock(state: Int32Array, key: Uint8Array, pad: number): void {
  state.set(IV);
  for (let i = 0; i < 64; i++) scratch[i] = (key[i] ?? 0) ^ pad;
  compress(state, 0);
}

/**
 * Results are 32-byte views carved from shared slabs (`smallBytes`), not an ArrayBuffer each: a
 * full handshake takes about 22 MACs (its whole key schedule), and in Deno every Uint8Array has
 * its own off-heap backing store, allocated and later swept (freed) by V8 at a cost comparable
 * to a SHA-256 block. The neighbours of a result are other small results (secrets too), never
 * handed out as the slab itself.
 */
function result(): Uint8Array {
  return smallBytes(32);
}

const digestState = new Int32Array(8);

/**
 * SHA-256 of at most `MAX_INPUT` bytes (the CertificateVerify content a handshake signs), in
 * the same scratch memory; the result is a slab view like the MACs'.
 */
export function sha256Short(data: Uint8Array): Uint8Array {
  if (data.length > MAX_INPUT) throw new RangeError("SHA-256 input too long");
  digestState.set(IV);
  scratch.set(data, 0);
  padAndCompress(digestState, data.length, 0);
  const out = result();
  storeState(digestState, out);
  scratch.fill(0, 0, data.length + 72);
  return out;
}

let wasm: HmacWasm | null | undefined;

/**
 * HMAC-SHA-256(key, parts[0] || parts[1] || ...). The key must be at most 64 bytes (TLS keys
 * are hash-sized) and the parts at most `MAX_INPUT` bytes together. Computed in the WebAssembly
 * core (p256_wasm/p256.c, `hm_mac`: its compressions take about half the time of these, and it
 * keeps the pad states of its last four keys); in JavaScript where WebAssembly is unavailable.
 */
export function hmacSha256(key: Uint8Array, parts: readonly Uint8Array[]): Uint8Array {
  if (key.length > 64) throw new RangeError("HMAC key longer than a block");
  let length = 0;
  for (const p of parts) length += p.length;
  if (length > MAX_INPUT) throw new RangeError("HMAC input too long");
  const core = wasm === undefined ? (wasm = hmacWasm()) : wasm;
  if (core === null) return hmacSha256Script(key, parts, length);
  const io = core.io;
  io.set(key, 0);
  let at = 96;
  for (const p of parts) {
    io.set(p, at);
    at += p.length;
  }
  core.mac(key.length, length);
  const out = result();
  out.set(core.mac32);
  core.mac32.fill(0);
  return out;
}

/** `hmacSha256` in JavaScript (exported for the tests); `length` is the parts' total. */
export function hmacSha256Script(
  key: Uint8Array,
  parts: readonly Uint8Array[],
  length: number,
): Uint8Array {
  keyBlock(inner, key, 0x36);
  keyBlock(outer, key, 0x5c);
  let at = 0;
  for (const p of parts) {
    scratch.set(p, at);
    at += p.length;
  }
  padAndCompress(inner, length, 64);
  storeState(inner, scratch);
  padAndCompress(outer, 32, 64);
  const out = result();
  storeState(outer, out);
  // The scratch held key material: clear the key block and the message.
  scratch.fill(0, 0, Math.max(64, length + 72));
  return out;
}

/**
 * A running SHA-256 (the TLS transcript hash), in JavaScript: node:crypto's hash object costs
 * more to copy (each transcript digest copies it: a new Hash object, its stream machinery and a
 * native context, about a dozen allocations) than the few blocks a handshake hashes cost here.
 * Its state and the pending block are 32 and 64 bytes, small enough to live on the JavaScript
 * heap, so `clone()` allocates nothing off-heap.
 */
export class Sha256Context {
  /** The chaining state (8 words), then the pending block (64 bytes): one backing store. */
  readonly #state: Int32Array;
  readonly #block: Uint8Array;
  /** Bytes waiting in `#block` (0 to 63). */
  #pending: number;
  /** Bytes hashed so far, pending ones included. */
  #length: number;

  constructor(from?: Sha256Context) {
    const words = new Int32Array(24);
    this.#state = words.subarray(0, 8);
    this.#block = new Uint8Array(words.buffer, 32, 64);
    if (from === undefined) {
      this.#state.set(IV);
      this.#pending = 0;
      this.#length = 0;
    } else {
      words.set(from.#state);
      this.#block.set(from.#block);
      this.#pending = from.#pending;
      this.#length = from.#length;
    }
  }

  update(data: Uint8Array): void {
    const n = data.length;
    const block = this.#block;
    let at = 0;
    let pending = this.#pending;
    this.#length += n;
    if (pending > 0) {
      while (pending < 64 && at < n) block[pending++] = data[at++]!;
      if (pending < 64) {
        this.#pending = pending;
        return;
      }
      compressFrom(this.#state, block, 0);
      pending = 0;
    }
    for (; n - at >= 64; at += 64) compressFrom(this.#state, data, at);
    while (at < n) block[pending++] = data[at++]!;
    this.#pending = pending;
  }

  /** The digest of everything so far (a slab view); the context stays usable. */
  digest(): Uint8Array {
    const state = digestState;
    state.set(this.#state);
    const pending = this.#pending;
    const block = this.#block;
    for (let i = 0; i < pending; i++) scratch[i] = block[i]!;
    let end = pending;
    scratch[end++] = 0x80;
    while (end % 64 !== 56) scratch[end++] = 0;
    // The length in bits, a 64-bit big-endian number (exact below 2^53 bytes).
    const high = Math.floor(this.#length / 0x20000000);
    const low = (this.#length * 8) >>> 0;
    scratch[end++] = high >>> 24;
    scratch[end++] = (high >>> 16) & 0xff;
    scratch[end++] = (high >>> 8) & 0xff;
    scratch[end++] = high & 0xff;
    scratch[end++] = low >>> 24;
    scratch[end++] = (low >>> 16) & 0xff;
    scratch[end++] = (low >>> 8) & 0xff;
    scratch[end++] = low & 0xff;
    for (let at = 0; at < end; at += 64) compress(state, at);
    scratch.fill(0, 0, end);
    const out = result();
    storeState(state, out);
    return out;
  }

  clone(): Sha256Context {
    return new Sha256Context(this);
  }
}
