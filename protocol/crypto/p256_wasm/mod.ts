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
 */
import { CryptoError } from "../provider.ts";
import { P256_WASM_BASE64 } from "./_module.ts";

interface Exports {
  readonly memory: WebAssembly.Memory;
  p256_io(): number;
  p256_init(): void;
  p256_sign(): number;
  p256_sign_with_nonce(): number;
  p256_base_mul(): number;
  p256_field_op(op: number): void;
}

let loaded: { exports: Exports; io: Uint8Array } | null | undefined;

function decodeBase64(text: string): Uint8Array<ArrayBuffer> {
  const binary = atob(text);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

function load(): { exports: Exports; io: Uint8Array } | null {
  if (loaded !== undefined) return loaded;
  try {
    const module = new WebAssembly.Module(decodeBase64(P256_WASM_BASE64));
    const exports = new WebAssembly.Instance(module, {}).exports as unknown as Exports;
    // The memory never grows (no allocator), so one view stays valid.
    const io = new Uint8Array(exports.memory.buffer, exports.p256_io(), 256);
    loaded = { exports, io };
  } catch {
    loaded = null;
  }
  return loaded;
}

/** One DER INTEGER of a 32-byte big-endian positive value (X.690, 8.3). */
function derInteger(value: Uint8Array): Uint8Array {
  let start = 0;
  while (start < value.length - 1 && value[start] === 0) start++;
  const pad = value[start]! >= 0x80 ? 1 : 0;
  const out = new Uint8Array(2 + pad + value.length - start);
  out[0] = 0x02;
  out[1] = pad + value.length - start;
  out.set(value.subarray(start), 2 + pad);
  return out;
}

/** The DER ECDSA-Sig-Value (RFC 3279, Section 2.2.3) of r and s. */
function derSignature(r: Uint8Array, s: Uint8Array): Uint8Array {
  const ri = derInteger(r);
  const si = derInteger(s);
  const out = new Uint8Array(2 + ri.length + si.length);
  out[0] = 0x30;
  out[1] = ri.length + si.length;
  out.set(ri, 2);
  out.set(si, 2 + ri.length);
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
}

/**
 * The signer, instantiating the module on first call (about 0.6 ms; the comb table follows
 * on the first signature, about 6 ms), or null where the module cannot be instantiated.
 */
export function p256WasmSigner(): P256WasmSigner | null {
  const core = load();
  if (core === null) return null;
  const { exports, io } = core;
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
      return derSignature(io.slice(96, 128), io.slice(128, 160));
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
