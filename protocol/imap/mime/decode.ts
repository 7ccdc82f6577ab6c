/**
 * Content-Transfer-Encoding decoders (RFC 2045, Sections 6.7 and 6.8) for FETCH BINARY
 * (RFC 3516, RFC 9051 Section 6.4.5) and for search text.
 */

/** The outcome of decoding: bytes, or a signal that the encoding is unknown (`UNKNOWN-CTE`). */
export type TransferDecodeResult =
  | { readonly ok: true; readonly bytes: Uint8Array }
  | { readonly ok: false; readonly reason: "unknown-cte"; readonly encoding: string };

/** Identity encodings, returned without copying (RFC 2045, Section 6.2). */
const IDENTITY = new Set(["", "7bit", "8bit", "binary"]);

/**
 * Decodes a part body. `encoding` is the Content-Transfer-Encoding as written (case and
 * surrounding whitespace do not matter; a missing header means 7bit). An encoding other than
 * 7bit, 8bit, binary, base64 and quoted-printable gives `{ ok: false }` so the caller answers
 * `NO [UNKNOWN-CTE]` (RFC 3516, Section 4.3).
 */
export function decodeTransfer(bytes: Uint8Array, encoding: string | null): TransferDecodeResult {
  const enc = (encoding ?? "").trim().toLowerCase();
  if (IDENTITY.has(enc)) return { ok: true, bytes };
  if (enc === "base64") return { ok: true, bytes: decodeBase64(bytes) };
  if (enc === "quoted-printable") return { ok: true, bytes: decodeQuotedPrintable(bytes) };
  return { ok: false, reason: "unknown-cte", encoding: enc };
}

const B64 = new Int16Array(256).fill(-1);
for (let i = 0; i < 64; i++) {
  B64["ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".charCodeAt(i)] = i;
}
B64[0x2d] = 62; // base64url "-" and "_" are accepted too
B64[0x5f] = 63;

/**
 * Decodes base64 (RFC 2045, Section 6.8), ignoring every character outside the alphabet (line
 * breaks, whitespace, garbage) as the RFC asks, and stopping at the first `=` pad.
 */
export function decodeBase64(input: Uint8Array): Uint8Array {
  const out = new Uint8Array(Math.floor((input.length * 3) / 4) + 3);
  let n = 0;
  let acc = 0;
  let bits = 0;
  for (let i = 0; i < input.length; i++) {
    const c = input[i]!;
    if (c === 0x3d) break;
    const v = B64[c]!;
    if (v < 0) continue;
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[n++] = (acc >> bits) & 0xff;
    }
  }
  return out.subarray(0, n);
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/**
 * Decodes quoted-printable (RFC 2045, Section 6.7): `=XX` escapes, soft line breaks (`=` then
 * optional trailing whitespace then CRLF or LF), and trailing whitespace removal on hard line
 * breaks. A malformed `=` is kept as written (the rule 1 "robust" handling of Section 6.7).
 */
export function decodeQuotedPrintable(input: Uint8Array): Uint8Array {
  const out = new Uint8Array(input.length);
  let n = 0;
  let lineEndTrim = 0;
  for (let i = 0; i < input.length; i++) {
    const c = input[i]!;
    if (c === 0x3d) {
      const h = i + 1 < input.length ? hexValue(input[i + 1]!) : -1;
      const l = i + 2 < input.length ? hexValue(input[i + 2]!) : -1;
      if (h >= 0 && l >= 0) {
        out[n++] = (h << 4) | l;
        i += 2;
        lineEndTrim = n;
        continue;
      }
      let j = i + 1;
      while (j < input.length && (input[j] === 0x20 || input[j] === 0x09)) j++;
      if (j < input.length && input[j] === 0x0d && input[j + 1] === 0x0a) {
        i = j + 1;
        lineEndTrim = n;
        continue;
      }
      if (j < input.length && input[j] === 0x0a) {
        i = j;
        lineEndTrim = n;
        continue;
      }
      if (j >= input.length) {
        lineEndTrim = n;
        break;
      }
      out[n++] = c;
      lineEndTrim = n;
      continue;
    }
    if (c === 0x0d || c === 0x0a) {
      n = lineEndTrim;
      if (c === 0x0d && input[i + 1] === 0x0a) {
        out[n++] = 0x0d;
        out[n++] = 0x0a;
        i++;
      } else {
        out[n++] = c;
      }
      lineEndTrim = n;
      continue;
    }
    out[n++] = c;
    if (c !== 0x20 && c !== 0x09) lineEndTrim = n;
  }
  // Trailing whitespace at the very end is transport padding as well.
  return out.subarray(0, lineEndTrim === n ? n : lineEndTrim);
}
