/**
 * AES-GCM (NIST SP 800-38D) for large inputs, composed of two node:crypto operations that run
 * faster in Deno than its `aes-*-gcm` cipher does as a whole. In Deno 2.9.6 on this project's
 * machines a 16 KiB record sealed with `createCipheriv("aes-128-gcm")` takes 89-95 µs (about
 * 175 MB/s): its counter mode produces the keystream a block at a time. The same AES with the
 * same key in ECB mode encrypts 16 KiB in 15 µs, and the same cipher authenticating 16 KiB of
 * additional data alone (GMAC) takes 31 µs. So:
 *
 * - the keystream is ECB over the counter blocks J0+1, J0+2, … (J0 = nonce || 1 for the 96-bit
 *   nonces of TLS), XORed with the plaintext here;
 * - the tag comes from the GMAC of `A || pad || C` under the same key and nonce: GHASH is linear,
 *   and that input differs from GCM's `A || pad || C || pad || lengths` only in the final
 *   length block (`[len(A || pad || C), 0]` instead of `[len(A), len(C)]`; the zero padding of
 *   C is the same), so `tag = tag' XOR ((L XOR L') · H)` with `H = E_K(0^128)`, and the mask
 *   `E_K(J0)` is in both. The multiplier `L XOR L'` depends only on the lengths (public); H is
 *   secret and is only shifted and masked, never used to branch or index.
 *
 * The intermediate tag' is never released, so that the GMAC reuses the record's nonce reveals
 * nothing. Every output equals standard AES-GCM's (the tests compare it with noble's AES-GCM at
 * every size and run Wycheproof's vectors through it).
 */
import { type Cipheriv, createCipheriv } from "node:crypto";

/** The most additional data and text one call composes; longer inputs take the plain cipher. */
export const COMPOSED_MAX_AAD = 256;
export const COMPOSED_MAX_TEXT = 64 * 1024;

/**
 * Scratch shared by every call (calls are synchronous and never nest): the counter blocks,
 * and the GHASH input `A || pad || C`. Grown on demand up to the limits above.
 */
let counters: Uint8Array<ArrayBuffer> = new Uint8Array(0);
let ghashInput: Uint8Array<ArrayBuffer> = new Uint8Array(0);

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function scratch(current: Uint8Array<ArrayBuffer>, bytes: number): Uint8Array<ArrayBuffer> {
  return current.length >= bytes ? current : new Uint8Array(Math.max(bytes, 2 * current.length));
}

/**
 * Zeroes a Buffer that node:crypto returned with Uint8Array's own `fill`: Buffer's override is
 * JavaScript in Deno, 7.3 µs for 16 KiB against 0.2.
 */
function wipe(buffer: Uint8Array): void {
  Uint8Array.prototype.fill.call(buffer, 0);
}

/** Big-endian 32-bit words of 16 bytes. */
function words(bytes: Uint8Array): Uint32Array {
  const out = new Uint32Array(4);
  for (let i = 0; i < 4; i++) {
    out[i] = ((bytes[4 * i]! << 24) | (bytes[4 * i + 1]! << 16) | (bytes[4 * i + 2]! << 8) |
      bytes[4 * i + 3]!) >>> 0;
  }
  return out;
}

/**
 * XORs into `tag` (16 bytes, in place) the product `m · h` in GF(2^128) with GCM's bit order
 * (SP 800-38D, Algorithm 1). `m` is public: its bits choose which multiples of `h` are added;
 * `h` is secret and goes through every step the same way.
 */
function addProduct(tag: Uint8Array, m: readonly number[], h: Uint32Array): void {
  let z0 = 0, z1 = 0, z2 = 0, z3 = 0;
  let v0 = h[0]!, v1 = h[1]!, v2 = h[2]!, v3 = h[3]!;
  for (let w = 0; w < 4; w++) {
    const word = m[w]!;
    for (let bit = 31; bit >= 0; bit--) {
      if ((word >>> bit) & 1) {
        z0 ^= v0;
        z1 ^= v1;
        z2 ^= v2;
        z3 ^= v3;
      }
      // V · x: a right shift, and the reduction polynomial when a bit falls off (masked).
      const reduce = -(v3 & 1);
      v3 = (v3 >>> 1) | (v2 << 31);
      v2 = (v2 >>> 1) | (v1 << 31);
      v1 = (v1 >>> 1) | (v0 << 31);
      v0 = (v0 >>> 1) ^ (0xe1000000 & reduce);
    }
  }
  const z = [z0, z1, z2, z3];
  for (let i = 0; i < 16; i++) tag[i] = tag[i]! ^ (z[i >> 2]! >>> (24 - 8 * (i & 3)));
}

/** Whether inputs of these sizes take this path. */
export function composedGcmFits(aadLength: number, textLength: number): boolean {
  return aadLength <= COMPOSED_MAX_AAD && textLength <= COMPOSED_MAX_TEXT;
}

function checkKey(key: Uint8Array): void {
  if (key.length !== 16 && key.length !== 32) throw new RangeError("AES key of 16 or 32 bytes");
}

/**
 * The ECB ciphers of the last few owners (record keys) that sealed or opened a large record, most
 * recent first. An ECB cipher holds 3.6 KiB (1 KiB of V8 heap, the rest native): one per record
 * key would stay with every connection that ever sent a large record, idle or not, and one made
 * per record cost 8 µs more per 16 KiB record in a bulk FETCH (286-288 against 258-266 ms of
 * server CPU per 51.6 MB). Four cover the transfers that run at once on a loop; more only make
 * some records build their cipher again.
 */
const recent: { owner: object; ecb: Cipheriv }[] = [];
const RECENT_CIPHERS = 4;

function ecbOf(owner: object, key: Uint8Array): Cipheriv {
  for (let i = 0; i < recent.length; i++) {
    const entry = recent[i]!;
    if (entry.owner !== owner) continue;
    if (i > 0) {
      recent.splice(i, 1);
      recent.unshift(entry);
    }
    return entry.ecb;
  }
  const ecb = createCipheriv(key.length === 16 ? "aes-128-ecb" : "aes-256-ecb", key, null);
  ecb.setAutoPadding(false);
  recent.unshift({ owner, ecb });
  if (recent.length > RECENT_CIPHERS) recent.pop();
  return ecb;
}

/**
 * One ECB pass under `owner`'s key over the zero block and the counter blocks J0+1, J0+2, … for
 * `length` bytes under `nonce` (12 bytes): H, then the keystream. The caller wipes the result
 * once used.
 */
function hashKeyAndKeystream(
  owner: object,
  key: Uint8Array,
  nonce: Uint8Array,
  length: number,
): Uint8Array {
  const blocks = 1 + ((length + 15) >> 4);
  counters = scratch(counters, blocks * 16);
  // Words in the platform's order (a view at offset 0 of a buffer of our own), so the nonce's
  // three words are copied as they are and the counter is byte-swapped to big-endian.
  const c = new Uint32Array(counters.buffer, 0, blocks * 4);
  c.fill(0, 0, 4);
  const n = new Uint32Array(3);
  new Uint8Array(n.buffer).set(nonce);
  const n0 = n[0]!, n1 = n[1]!, n2 = n[2]!;
  const little = LITTLE_ENDIAN;
  for (let i = 1, at = 4; i < blocks; i++, at += 4) {
    c[at] = n0;
    c[at + 1] = n1;
    c[at + 2] = n2;
    const k = i + 1;
    c[at + 3] = little
      ? ((k & 0xff) << 24) | ((k & 0xff00) << 8) | ((k >>> 8) & 0xff00) | (k >>> 24)
      : k;
  }
  return ecbOf(owner, key).update(counters.subarray(0, blocks * 16));
}

/**
 * Writes to `tag` the GCM tag of `A || pad || C` as laid out in `ghashInput` (`padded` = A's
 * length rounded up to 16), with `hks`'s first block as H.
 */
function tagOf(
  key: Uint8Array,
  nonce: Uint8Array,
  hks: Uint8Array,
  aadLength: number,
  padded: number,
  length: number,
  tag: Uint8Array,
): void {
  const gmac = createCipheriv(key.length === 16 ? "aes-128-gcm" : "aes-256-gcm", key, nonce);
  gmac.setAAD(ghashInput.subarray(0, padded + length));
  gmac.final();
  tag.set(gmac.getAuthTag());
  // L = [0, 8·len(A), 0, 8·len(C)] and L' = [0, 8·(padded + len(C)), 0, 0] as 32-bit words:
  // every length here is under 2^29 bytes.
  addProduct(tag, [0, (8 * aadLength) ^ (8 * (padded + length)), 0, 8 * length], words(hks));
}

/** XORs the keystream (`hks` after its first block) over `ghashInput[from, from + length)`. */
function xorKeystream(from: number, length: number, hks: Uint8Array): void {
  const g = ghashInput;
  const ks = hks.subarray(16);
  let i = 0;
  if ((ks.byteOffset & 3) === 0 && (from & 3) === 0) {
    const n = length >> 2;
    const a = new Uint32Array(g.buffer, g.byteOffset + from, n);
    const b = new Uint32Array(ks.buffer, ks.byteOffset, n);
    for (let w = 0; w < n; w++) a[w]! ^= b[w]!;
    i = n << 2;
  }
  for (; i < length; i++) g[from + i]! ^= ks[i]!;
}

/**
 * AES-128-GCM or AES-256-GCM (by the key's length) of `plaintext || trailer` with a 96-bit
 * nonce, written to `out` at `offset`: ciphertext, then the 16-byte tag. `owner` stands for the
 * key (the record key's object: its ECB cipher is kept a while for the next records); `key` must
 * not change for it. The caller checks the sizes (`composedGcmFits`).
 */
export function composedGcmSealInto(
  owner: object,
  key: Uint8Array,
  nonce: Uint8Array,
  aad: Uint8Array,
  plaintext: Uint8Array,
  trailer: Uint8Array,
  out: Uint8Array,
  offset: number,
): void {
  checkKey(key);
  if (nonce.length !== 12) throw new RangeError("AES-GCM nonce of 12 bytes");
  const length = plaintext.length + trailer.length;
  const padded = (aad.length + 15) & ~15;
  ghashInput = scratch(ghashInput, padded + length + 16);
  const g = ghashInput;
  g.fill(0, 0, padded);
  g.set(aad, 0);
  g.set(plaintext, padded);
  g.set(trailer, padded + plaintext.length);
  const hks = hashKeyAndKeystream(owner, key, nonce, length);
  xorKeystream(padded, length, hks);
  out.set(g.subarray(padded, padded + length), offset);
  tagOf(
    key,
    nonce,
    hks,
    aad.length,
    padded,
    length,
    out.subarray(offset + length, offset + length + 16),
  );
  wipe(hks);
}

/**
 * The plaintext of `ciphertextAndTag`, or null when its tag does not verify (`owner` and `key` as
 * for `composedGcmSealInto`).
 */
export function composedGcmOpen(
  owner: object,
  key: Uint8Array,
  nonce: Uint8Array,
  aad: Uint8Array,
  ciphertextAndTag: Uint8Array,
): Uint8Array | null {
  checkKey(key);
  const length = ciphertextAndTag.length - 16;
  if (length < 0 || nonce.length !== 12) return null;
  const padded = (aad.length + 15) & ~15;
  ghashInput = scratch(ghashInput, padded + length + 16);
  const g = ghashInput;
  g.fill(0, 0, padded);
  g.set(aad, 0);
  g.set(ciphertextAndTag.subarray(0, length), padded);
  const hks = hashKeyAndKeystream(owner, key, nonce, length);
  const expected = new Uint8Array(16);
  tagOf(key, nonce, hks, aad.length, padded, length, expected);
  let diff = 0;
  for (let i = 0; i < 16; i++) diff |= expected[i]! ^ ciphertextAndTag[length + i]!;
  if (diff !== 0) {
    wipe(hks);
    return null;
  }
  xorKeystream(padded, length, hks);
  wipe(hks);
  const plaintext = g.slice(padded, padded + length);
  g.fill(0, padded, padded + length);
  return plaintext;
}
