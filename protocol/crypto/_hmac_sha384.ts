/**
 * HMAC-SHA-384 (RFC 2104) of short inputs in the WebAssembly core (`p256_wasm/hmac_sha384.c`):
 * the SHA-384 key schedules (TLS 1.3 HKDF with TLS_AES_256_GCM_SHA384, the TLS 1.2 PRF of the
 * *_SHA384 suites) take 15-25 MACs per handshake, which cost 8-10 µs each through @noble/hashes
 * or node:crypto in this runtime (SHA-512's 64-bit rounds in 32-bit JavaScript halves, or a
 * native object per call) and about 1.5 µs here. Every result is checked against noble's HMAC
 * by the provider tests and the Wycheproof HMAC-SHA384 and HKDF-SHA384 vectors.
 */
import { smallBytes } from "../bytes.ts";
import {
  HMAC384_WASM_MAX_INPUT,
  HMAC384_WASM_MAX_KEY,
  type Hmac384Wasm,
  hmac384Wasm,
} from "./p256_wasm/mod.ts";

/** Longest message (all parts together) `hmacSha384Short` takes. */
export const MAX_INPUT = HMAC384_WASM_MAX_INPUT;
/** Longest key it takes (one SHA-384 block; TLS keys are hash-sized). */
export const MAX_KEY = HMAC384_WASM_MAX_KEY;

let wasm: Hmac384Wasm | null | undefined;

/**
 * HMAC-SHA-384(key, parts[0] || parts[1] || ...) as a 48-byte slab view (see `smallBytes`), or
 * null where the WebAssembly core cannot be instantiated (the caller falls back on a general
 * HMAC). The key must be at most `MAX_KEY` bytes and the parts at most `MAX_INPUT` together.
 */
export function hmacSha384Short(key: Uint8Array, parts: readonly Uint8Array[]): Uint8Array | null {
  if (key.length > MAX_KEY) throw new RangeError("HMAC key longer than a block");
  let length = 0;
  for (const p of parts) length += p.length;
  if (length > MAX_INPUT) throw new RangeError("HMAC input too long");
  const core = wasm === undefined ? (wasm = hmac384Wasm()) : wasm;
  if (core === null) return null;
  const io = core.io;
  io.set(key, 0);
  let at = 176;
  for (const p of parts) {
    io.set(p, at);
    at += p.length;
  }
  core.mac(key.length, length);
  const out = smallBytes(48);
  out.set(core.mac48);
  core.mac48.fill(0);
  return out;
}
