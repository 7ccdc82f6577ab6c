/**
 * Big-integer helpers for the pure-TypeScript RSA code (RFC 8017, Section 4).
 *
 * JavaScript BigInt arithmetic is NOT constant-time: timings depend on operand values. RSA
 * private-key operations built on it use blinding (see `_rsa.ts`), and the native provider is
 * preferred for RSA signing.
 */

/** OS2IP: big-endian octets to a non-negative integer (RFC 8017, Section 4.2). */
export function bytesToBigInt(bytes: Uint8Array): bigint {
  let hex = "";
  for (let i = 0; i < bytes.length; i++) hex += HEX[bytes[i]!];
  return hex.length === 0 ? 0n : BigInt("0x" + hex);
}

/**
 * I2OSP: a non-negative integer to exactly `length` big-endian octets (RFC 8017, Section 4.1).
 * Throws `RangeError` when the integer does not fit.
 */
export function bigIntToBytes(value: bigint, length: number): Uint8Array {
  if (value < 0n) throw new RangeError("Integer is negative");
  const hex = value.toString(16);
  const needed = (hex.length + 1) >> 1;
  if (needed > length) throw new RangeError("Integer too large");
  const out = new Uint8Array(length);
  const padded = hex.length % 2 === 1 ? "0" + hex : hex;
  const offset = length - needed;
  for (let i = 0; i < needed; i++) {
    out[offset + i] = parseInt(padded.substring(2 * i, 2 * i + 2), 16);
  }
  return out;
}

/** The minimal big-endian encoding of a non-negative integer (at least one octet). */
export function bigIntToMinimalBytes(value: bigint): Uint8Array {
  return bigIntToBytes(value, Math.max(1, byteLength(value)));
}

/** Number of significant bits of a non-negative integer. */
export function bitLength(value: bigint): number {
  return value === 0n ? 0 : value.toString(2).length;
}

/** Number of octets needed for a non-negative integer. */
export function byteLength(value: bigint): number {
  return (bitLength(value) + 7) >> 3;
}

/** `base ** exponent mod modulus` with a fixed 4-bit window. Not constant-time. */
export function modPow(base: bigint, exponent: bigint, modulus: bigint): bigint {
  if (modulus === 1n) return 0n;
  const b = ((base % modulus) + modulus) % modulus;
  const table: bigint[] = [1n, b];
  for (let i = 2; i < 16; i++) table.push((table[i - 1]! * b) % modulus);
  const hex = exponent.toString(16);
  let result = 1n;
  for (let i = 0; i < hex.length; i++) {
    if (i > 0) {
      result = (result * result) % modulus;
      result = (result * result) % modulus;
      result = (result * result) % modulus;
      result = (result * result) % modulus;
    }
    const digit = parseInt(hex[i]!, 16);
    if (digit !== 0) result = (result * table[digit]!) % modulus;
  }
  return result;
}

/** The inverse of `a` modulo `m`; throws `RangeError` when none exists. */
export function modInverse(a: bigint, m: bigint): bigint {
  let [oldR, r] = [((a % m) + m) % m, m];
  let [oldS, s] = [1n, 0n];
  while (r !== 0n) {
    const q = oldR / r;
    [oldR, r] = [r, oldR - q * r];
    [oldS, s] = [s, oldS - q * s];
  }
  if (oldR !== 1n) throw new RangeError("Value is not invertible");
  return ((oldS % m) + m) % m;
}

const HEX: readonly string[] = Array.from(
  { length: 256 },
  (_, i) => i.toString(16).padStart(2, "0"),
);
