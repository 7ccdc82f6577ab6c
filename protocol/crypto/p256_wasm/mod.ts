/**
 * P-256 ECDSA signing in WebAssembly (`p256.c`, compiled into `_module.ts` by `build.ts`): the
 * same signatures as @noble/curves' `p256.sign` (RFC 6979 nonces, low S, DER), several
 * times faster (bench/crypto_bench.ts). The module is instantiated synchronously on first use,
 * once per isolate (each Worker has its own); where WebAssembly is unavailable,
 * `p256WasmSigner()` returns null and callers keep noble.
 *
 * The nonce stays RFC 6979 (deterministic; HMAC-SHA-256 inside the module): the signatures
 * match noble byte for byte, which the tests use as an oracle, and a failing or repeating
 * random source cannot leak the key through a reused nonce. Randomness only blinds the
 * nonce's inversion (a variable-time binary Euclid on k times 32 random bytes): with a
 * broken source that inversion's timing would depend on k, but no signature would change.
 *
 * A server may also draw nonces ahead (`nonce`, on a thread of its own: `../ahead.ts`) and
 * finish signatures with them (`signWithNonce`): k then comes from the same generator with 32
 * fresh random bytes in place of the digest, so it depends on the key and the randomness but
 * not on the message, which is not known yet. That moves the scalar multiplication and the
 * inversion, nearly all of a signature's time, off the handshake's path. The price: such a
 * nonce is only as good as the random source (the system's CSPRNG through
 * `crypto.getRandomValues`); a source that repeated itself would repeat k for two messages and
 * give the key away, which RFC 6979 nonces rule out. `tls.signing: sync` keeps RFC 6979.
 *
 * The module also computes the TLS key schedule's HMAC-SHA-256 (`hmacWasm`, used by
 * `../_hmac_sha256.ts`) and seals the small ChaCha20-Poly1305 records (`chachaWasmAead`).
 */
import { smallBytes } from "../../bytes.ts";
import { type Aead, CryptoError } from "../provider.ts";
import { checkSealInto } from "../_common.ts";
import { P256_WASM_BASE64 } from "./_module.ts";

interface Exports {
  readonly memory: WebAssembly.Memory;
  cc_io(): number;
  cc_seal(aadLength: number, length: number): number;
  cc_open(aadLength: number, length: number): number;
  p256_io(): number;
  p256_init(): void;
  p256_sign(): number;
  p256_sign_with_nonce(): number;
  p256_nonce(): number;
  p256_nb_io(): number;
  p256_nonces(count: number): number;
  p256_nonces_forcing(count: number, force: number): number;
  p256_sign_finish(): number;
  p256_base_mul(): number;
  p256_field_op(op: number): void;
  hm_io(): number;
  hm_mac(keyLength: number, length: number): number;
  h384_io(): number;
  h384_mac(keyLength: number, length: number): number;
}

interface Core {
  exports: Exports;
  io: Uint8Array;
  /** `p256_nb_io`: a batch of nonces, 64 bytes each (in: 32 random bytes; out: r, k^-1). */
  nb: Uint8Array;
  /** `cc_io`: key, nonce, additional data, then the record (chacha20poly1305.c). */
  cc: Uint8Array;
}

let loaded: Core | null | undefined;

function decodeBase64(text: string): Uint8Array<ArrayBuffer> {
  const binary = atob(text);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

function load(): Core | null {
  if (loaded !== undefined) return loaded;
  try {
    const module = new WebAssembly.Module(decodeBase64(P256_WASM_BASE64));
    const exports = new WebAssembly.Instance(module, {}).exports as unknown as Exports;
    // The memory never grows (no allocator), so one view stays valid.
    const io = new Uint8Array(exports.memory.buffer, exports.p256_io(), 256);
    const nb = new Uint8Array(
      exports.memory.buffer,
      exports.p256_nb_io(),
      P256_NONCE_BATCH * P256_NONCE_BYTES,
    );
    const cc = new Uint8Array(exports.memory.buffer, exports.cc_io(), CC_DATA + CC_MAX_DATA + 16);
    loaded = { exports, io, nb, cc };
  } catch {
    loaded = null;
  }
  return loaded;
}

/** Where the DER INTEGER of the 32-byte big-endian value at `at` starts (X.690, 8.3). */
function derStart(io: Uint8Array, at: number): number {
  let start = at;
  while (start < at + 31 && io[start] === 0) start++;
  return start;
}

/** Writes the DER INTEGER of `io[start, end)` at `offset` of `out`; returns where it ends. */
function putInteger(out: Uint8Array, offset: number, io: Uint8Array, start: number, end: number) {
  const pad = io[start]! >= 0x80 ? 1 : 0;
  out[offset] = 0x02;
  out[offset + 1] = pad + end - start;
  offset += 2;
  if (pad) out[offset++] = 0;
  for (let i = start; i < end; i++) out[offset++] = io[i]!;
  return offset;
}

/**
 * The DER ECDSA-Sig-Value (RFC 3279, Section 2.2.3) of the r and s the core left at 96 and 128
 * of `io`, in one allocation.
 */
function derSignature(io: Uint8Array): Uint8Array {
  const r = derStart(io, 96);
  const s = derStart(io, 128);
  const rLength = 2 + (io[r]! >= 0x80 ? 1 : 0) + 128 - r;
  const sLength = 2 + (io[s]! >= 0x80 ? 1 : 0) + 160 - s;
  const out = new Uint8Array(2 + rLength + sLength);
  out[0] = 0x30;
  out[1] = rLength + sLength;
  putInteger(out, putInteger(out, 2, io, r, 128), io, s, 160);
  return out;
}

/** The WebAssembly P-256 signer of this isolate. */
export interface P256WasmSigner {
  /**
   * Signs a digest (at least 32 bytes; its leftmost 256 bits are used) with the private key
   * `d` (32 bytes, 1 <= d < n). Returns the DER signature.
   */
  sign(d: Uint8Array, digest: Uint8Array): Uint8Array;
  /** k * G as 0x04 || x || y, for 1 <= k < n (32 bytes). */
  baseMul(k: Uint8Array): Uint8Array;
  /**
   * Draws a nonce for a later `signWithNonce` with the private key `d`: 64 bytes, r then k^-1
   * (in the core's Montgomery form), written into `out` at `offset`. A secret as the key is.
   */
  nonce(d: Uint8Array, out: Uint8Array, offset: number): void;
  /**
   * `count` nonces (1 to `P256_NONCE_BATCH`) as `nonce` draws them, written one after another
   * into `out` from `offset`. The batch shares the two inversions each nonce needs (Montgomery's
   * trick), so a nonce costs about 30 % less than alone in batches of 16.
   */
  nonces(d: Uint8Array, count: number, out: Uint8Array, offset: number): void;
  /**
   * Signs a digest (as `sign`) with a nonce of `nonce` drawn for the same `d`, and wipes the
   * nonce's 64 bytes at `offset` of `nonce`: each serves one signature. Returns the DER
   * signature, or null in the negligible case that s is zero (sign otherwise).
   */
  signWithNonce(
    d: Uint8Array,
    digest: Uint8Array,
    nonce: Uint8Array,
    offset: number,
  ): Uint8Array | null;
}

/** Bytes of a nonce drawn by `P256WasmSigner.nonce`: r, then k^-1. */
export const P256_NONCE_BYTES = 64;

/** Most nonces `P256WasmSigner.nonces` draws in one call (`NB_MAX` in p256.c). */
export const P256_NONCE_BATCH = 16;

/**
 * The signer, instantiating the module on first call (about 0.6 ms; the comb table follows
 * on the first signature, about 6 ms), or null where the module cannot be instantiated.
 */
export function p256WasmSigner(): P256WasmSigner | null {
  const core = load();
  if (core === null) return null;
  const { exports, io, nb } = core;
  return {
    sign(d: Uint8Array, digest: Uint8Array): Uint8Array {
      if (d.length !== 32) throw new CryptoError("Invalid P-256 private key length");
      if (digest.length < 32) {
        throw new CryptoError("ECDSA P-256 needs a digest of 32 bytes or more");
      }
      io.set(d, 0);
      io.set(digest.subarray(0, 32), 32);
      crypto.getRandomValues(io.subarray(160, 192));
      const result = exports.p256_sign();
      if (result === -1) throw new CryptoError("Invalid P-256 private key");
      if (result !== 1) throw new CryptoError("ECDSA P-256 signing found no nonce");
      const signature = derSignature(io);
      io.fill(0, 96, 160);
      return signature;
    },
    nonce(d: Uint8Array, out: Uint8Array, offset: number): void {
      if (d.length !== 32) throw new CryptoError("Invalid P-256 private key length");
      io.set(d, 0);
      crypto.getRandomValues(io.subarray(32, 64));
      crypto.getRandomValues(io.subarray(160, 192));
      const result = exports.p256_nonce();
      if (result === -1) throw new CryptoError("Invalid P-256 private key");
      if (result !== 1) throw new CryptoError("ECDSA P-256 found no nonce");
      out.set(io.subarray(192, 256), offset);
      io.fill(0, 192, 256);
    },
    nonces(d: Uint8Array, count: number, out: Uint8Array, offset: number): void {
      if (d.length !== 32) throw new CryptoError("Invalid P-256 private key length");
      if (!Number.isInteger(count) || count < 1 || count > P256_NONCE_BATCH) {
        throw new RangeError(`A batch of nonces holds 1 to ${P256_NONCE_BATCH}`);
      }
      const bytes = count * P256_NONCE_BYTES;
      io.set(d, 0);
      crypto.getRandomValues(io.subarray(160, 192));
      // Each nonce reads the first half of its 64 bytes; the second half is overwritten.
      crypto.getRandomValues(nb.subarray(0, bytes));
      const result = exports.p256_nonces(count);
      if (result === -1) throw new CryptoError("Invalid P-256 private key");
      if (result !== 1) throw new CryptoError("ECDSA P-256 found no nonce");
      out.set(nb.subarray(0, bytes), offset);
      nb.fill(0, 0, bytes);
    },
    signWithNonce(
      d: Uint8Array,
      digest: Uint8Array,
      nonce: Uint8Array,
      offset: number,
    ): Uint8Array | null {
      if (d.length !== 32) throw new CryptoError("Invalid P-256 private key length");
      if (digest.length < 32) {
        throw new CryptoError("ECDSA P-256 needs a digest of 32 bytes or more");
      }
      io.set(d, 0);
      io.set(digest.subarray(0, 32), 32);
      io.set(nonce.subarray(offset, offset + P256_NONCE_BYTES), 192);
      nonce.fill(0, offset, offset + P256_NONCE_BYTES);
      const result = exports.p256_sign_finish();
      if (result === -1) throw new CryptoError("Invalid P-256 private key");
      const signature = result === 1 ? derSignature(io) : null;
      io.fill(0, 96, 160);
      return signature;
    },
    baseMul(k: Uint8Array): Uint8Array {
      if (k.length !== 32) throw new CryptoError("Invalid P-256 scalar length");
      io.set(k, 0);
      if (exports.p256_base_mul() !== 1) throw new CryptoError("Invalid P-256 scalar");
      const out = new Uint8Array(65);
      out[0] = 4;
      out.set(io.subarray(32, 96), 1);
      io.fill(0, 32, 96);
      return out;
    },
  };
}

/**
 * Field and scalar arithmetic of the core, for the tests: a and b are 32-byte big-endian
 * integers (reduced once on input). op 0 add, 1 sub, 2 mul, 3 inverse of a (Fermat), 4 square
 * of a, 5 inverse of a (binary Euclid), mod p; 8 to 11 add, sub, mul and inverse mod n.
 */
export function p256WasmFieldOp(op: number, a: Uint8Array, b: Uint8Array): Uint8Array {
  const core = load();
  if (core === null) throw new CryptoError("WebAssembly is unavailable");
  core.io.set(a, 0);
  core.io.set(b, 32);
  core.exports.p256_field_op(op);
  return core.io.slice(64, 96);
}

/**
 * Builds the comb table now instead of on the first signature; returns false where
 * WebAssembly is unavailable.
 */
export function p256WasmWarm(): boolean {
  const core = load();
  core?.exports.p256_init();
  return core !== null;
}

/**
 * One signature attempt with a chosen nonce k, for the tests: r || s (64 bytes), or null
 * when k or d is out of range or r or s is zero.
 */
export function p256WasmSignWithNonce(
  d: Uint8Array,
  z: Uint8Array,
  k: Uint8Array,
): Uint8Array | null {
  const core = load();
  if (core === null) throw new CryptoError("WebAssembly is unavailable");
  core.io.set(d, 0);
  core.io.set(z, 32);
  core.io.set(k, 64);
  crypto.getRandomValues(core.io.subarray(160, 192));
  const ok = core.exports.p256_sign_with_nonce() === 1;
  const out = core.io.slice(96, 160);
  core.io.fill(0, 96, 160);
  return ok ? out : null;
}

/**
 * For the tests: the nonces of the key `d` drawn from `inputs` (32 bytes each, in place of the
 * random bytes), as one batch, where bit i of `force` sends nonce i through the path of a
 * rejected candidate, and one by one (`p256_nonce`). Each result holds 64 bytes per nonce;
 * null when the core reports a failure.
 */
export function p256WasmNoncesFrom(
  d: Uint8Array,
  inputs: readonly Uint8Array[],
  force = 0,
): { batch: Uint8Array; single: Uint8Array } | null {
  const core = load();
  if (core === null) throw new Error("WebAssembly is not available");
  const { exports, io, nb } = core;
  const blind = () => crypto.getRandomValues(io.subarray(160, 192));
  io.set(d, 0);
  blind();
  inputs.forEach((input, i) => nb.set(input, i * P256_NONCE_BYTES));
  if (exports.p256_nonces_forcing(inputs.length, force) !== 1) return null;
  const batch = nb.slice(0, inputs.length * P256_NONCE_BYTES);
  nb.fill(0);
  const single = new Uint8Array(batch.length);
  for (const [i, input] of inputs.entries()) {
    io.set(d, 0);
    io.set(input, 32);
    blind();
    if (exports.p256_nonce() !== 1) return null;
    single.set(io.subarray(192, 256), i * P256_NONCE_BYTES);
    io.fill(0, 192, 256);
  }
  return { batch, single };
}

/** Longest HMAC message `hm_mac` takes (`HM_MAX_DATA` in p256.c). */
export const HMAC_WASM_MAX_INPUT = 1024;

/** HMAC-SHA-256 in the module: its I/O buffer and the call (p256.c, `hm_mac`). */
export interface HmacWasm {
  /** The key (at most 64 bytes) at 0, the MAC out at 64, the message at 96. */
  readonly io: Uint8Array;
  /** The MAC out: `io[64, 96)`, one view made once (a view per MAC was 22 per handshake). */
  readonly mac32: Uint8Array;
  /** MACs the message of `length` bytes under the key of `keyLength`; wipes both. */
  mac(keyLength: number, length: number): void;
}

/** The module's HMAC-SHA-256, or null where the module cannot be instantiated. */
export function hmacWasm(): HmacWasm | null {
  const core = load();
  if (core === null) return null;
  const { exports } = core;
  const io = new Uint8Array(exports.memory.buffer, exports.hm_io(), 96 + HMAC_WASM_MAX_INPUT);
  return {
    io,
    mac32: io.subarray(64, 96),
    mac(keyLength: number, length: number): void {
      if (exports.hm_mac(keyLength, length) !== 1) throw new RangeError("HMAC input too long");
    },
  };
}

/** Layout of `cc_io` (chacha20poly1305.c): additional data at 64, the record at `CC_DATA`. */
const CC_MAX_AAD = 256;
const CC_DATA = 64 + CC_MAX_AAD;
const CC_MAX_DATA = 8192;

/**
 * Records up to this many bytes (content and trailer) are sealed and opened in WebAssembly,
 * larger ones by `large`: one call into the module costs 1.7-1.9 µs for 60 bytes and 5-7 µs for
 * 1,300, where node:crypto's cipher object and stream cost 8-10 µs at any size up to 4 KiB; at
 * 4,096 bytes the module takes 15-17 µs against 8-11 (CPU per seal, one process).
 */
export const CHACHA_WASM_BELOW = 2048;

/**
 * ChaCha20-Poly1305 (RFC 8439) that seals and opens records of at most `CHACHA_WASM_BELOW`
 * bytes in the WebAssembly core and hands larger ones to a second AEAD of the same key: the
 * bytes are the same either way. The key, nonce and any plaintext are wiped from the module's memory
 * after each call.
 */
class WasmChaCha20Poly1305 implements Aead {
  readonly keyLength = 32;
  readonly nonceLength = 12;
  readonly tagLength = 16;
  readonly #core: Core;
  readonly #key: Uint8Array;
  readonly #makeLarge: (key: Uint8Array) => Aead;
  /** Made on the first record over `CHACHA_WASM_BELOW`: handshake keys never need one. */
  #largeAead: Aead | null = null;

  constructor(core: Core, key: Uint8Array, makeLarge: (key: Uint8Array) => Aead) {
    this.#core = core;
    this.#key = smallBytes(32);
    this.#key.set(key);
    this.#makeLarge = makeLarge;
  }

  get #large(): Aead {
    return this.#largeAead ??= this.#makeLarge(this.#key);
  }

  #load(nonce: Uint8Array, aad: Uint8Array): Uint8Array {
    const cc = this.#core.cc;
    cc.set(this.#key, 0);
    cc.set(nonce, 32);
    cc.set(aad, 64);
    return cc;
  }

  seal(nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Uint8Array {
    if (nonce.length !== 12) throw new CryptoError("Invalid AEAD nonce length");
    const length = plaintext.length;
    if (length > CHACHA_WASM_BELOW || aad.length > CC_MAX_AAD) {
      return this.#large.seal(nonce, aad, plaintext);
    }
    const cc = this.#load(nonce, aad);
    cc.set(plaintext, CC_DATA);
    this.#core.exports.cc_seal(aad.length, length);
    return cc.slice(CC_DATA, CC_DATA + length + 16);
  }

  sealInto(
    nonce: Uint8Array,
    aad: Uint8Array,
    plaintext: Uint8Array,
    trailer: Uint8Array,
    out: Uint8Array,
    offset: number,
  ): void {
    const length = checkSealInto(this, nonce, plaintext, trailer, out, offset);
    if (length > CHACHA_WASM_BELOW || aad.length > CC_MAX_AAD) {
      this.#large.sealInto(nonce, aad, plaintext, trailer, out, offset);
      return;
    }
    const cc = this.#load(nonce, aad);
    cc.set(plaintext, CC_DATA);
    cc.set(trailer, CC_DATA + plaintext.length);
    this.#core.exports.cc_seal(aad.length, length);
    out.set(cc.subarray(CC_DATA, CC_DATA + length + 16), offset);
  }

  open(nonce: Uint8Array, aad: Uint8Array, ciphertextAndTag: Uint8Array): Uint8Array | null {
    if (nonce.length !== 12) return null;
    const length = ciphertextAndTag.length;
    if (length < 16) return null;
    if (length - 16 > CHACHA_WASM_BELOW || aad.length > CC_MAX_AAD) {
      return this.#large.open(nonce, aad, ciphertextAndTag);
    }
    const cc = this.#load(nonce, aad);
    cc.set(ciphertextAndTag, CC_DATA);
    const ok = this.#core.exports.cc_open(aad.length, length) === 1;
    const plaintext = ok ? cc.slice(CC_DATA, CC_DATA + length - 16) : null;
    cc.fill(0, CC_DATA, CC_DATA + length);
    return plaintext;
  }
}

/**
 * ChaCha20-Poly1305 with `key` (32 bytes) that runs small records in this isolate's
 * WebAssembly core and larger ones in the AEAD `makeLarge` returns for the same key (made on
 * first use); null where the module cannot be instantiated.
 */
export function chachaWasmAead(
  key: Uint8Array,
  makeLarge: (key: Uint8Array) => Aead,
): Aead | null {
  const core = load();
  if (core === null) return null;
  if (key.length !== 32) {
    throw new CryptoError(`Invalid CHACHA20-POLY1305 key length: ${key.length}`);
  }
  return new WasmChaCha20Poly1305(core, key, makeLarge);
}

/** Longest HMAC-SHA-384 message `h384_mac` takes (`H384_MAX_DATA` in hmac_sha384.c). */
export const HMAC384_WASM_MAX_INPUT = 1024;
/** Longest HMAC-SHA-384 key `h384_mac` takes: one SHA-384 block. */
export const HMAC384_WASM_MAX_KEY = 128;

/** HMAC-SHA-384 in the module: its I/O buffer and the call (hmac_sha384.c, `h384_mac`). */
export interface Hmac384Wasm {
  /** The key (at most 128 bytes) at 0, the MAC out at 128, the message at 176. */
  readonly io: Uint8Array;
  /** The MAC out: `io[128, 176)`. */
  readonly mac48: Uint8Array;
  /** MACs the message of `length` bytes under the key of `keyLength`; wipes both. */
  mac(keyLength: number, length: number): void;
}

/** The module's HMAC-SHA-384, or null where the module cannot be instantiated. */
export function hmac384Wasm(): Hmac384Wasm | null {
  const core = load();
  if (core === null) return null;
  const { exports } = core;
  const io = new Uint8Array(exports.memory.buffer, exports.h384_io(), 176 + HMAC384_WASM_MAX_INPUT);
  return {
    io,
    mac48: io.subarray(128, 176),
    mac(keyLength: number, length: number): void {
      if (exports.h384_mac(keyLength, length) !== 1) throw new RangeError("HMAC input too long");
    },
  };
}
