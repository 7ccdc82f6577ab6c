/**
 * Password hashes brought along from another server (Dovecot passwd-files, /etc/shadow): they
 * are stored as they are and verify as they are, until the next successful login replaces them
 * with scrypt.
 *
 * - SHA-crypt, `$5$` (SHA-256) and `$6$` (SHA-512), as specified by Ulrich Drepper's
 *   "Unix crypt using SHA-256 and SHA-512"; Dovecot's `{SHA256-CRYPT}` and `{SHA512-CRYPT}`.
 *   Computed by the `unixcrypt` package (no dependencies, node:crypto hashes).
 * - bcrypt, `$2y$`, `$2b$`, `$2a$`; Dovecot's `{BLF-CRYPT}`. Computed by `bcryptjs`, whose
 *   asynchronous compare yields to the event loop between rounds.
 * - Argon2id in the PHC string format, `$argon2id$v=19$m=…,t=…,p=…$salt$hash` (RFC 9106);
 *   Dovecot's `{ARGON2ID}`. Computed by `@noble/hashes`, in slices that yield to the event loop.
 *
 * Every cost parameter is capped before anything is computed, so a crafted import cannot make a
 * login spin for minutes or allocate gigabytes. These libraries compute on the calling thread
 * (bcrypt cost 10 holds it for about 100 ms at a time, Argon2id with 64 MiB for seconds in
 * 10 ms slices), so the server calls them on Workers (server/auth/legacy_pool.ts).
 */
import { argon2idAsync } from "@noble/hashes/argon2.js";
import bcrypt from "bcryptjs";
import { encrypt as shaCrypt } from "unixcrypt";

/** Most SHA-crypt rounds accepted (Dovecot and glibc default to 5,000). */
export const MAX_SHA_CRYPT_ROUNDS = 50_000;
/** Highest bcrypt cost accepted (Dovecot's default is 5, PHP's 10). */
export const MAX_BCRYPT_COST = 14;
/** Argon2id limits: memory in KiB (256 MiB), passes and lanes. */
export const MAX_ARGON2_MEMORY_KIB = 256 * 1024;
export const MAX_ARGON2_PASSES = 10;
export const MAX_ARGON2_LANES = 8;

/** A hash format this module verifies. */
export type LegacyScheme = "SHA256-CRYPT" | "SHA512-CRYPT" | "BLF-CRYPT" | "ARGON2ID";

const SHA_CRYPT = /^\$([56])\$(?:rounds=(\d{1,9})\$)?([./0-9A-Za-z]{1,16})\$([./0-9A-Za-z]+)$/;
const BCRYPT = /^\$2[aby]\$(\d{2})\$[./A-Za-z0-9]{53}$/;
const ARGON2ID =
  /^\$argon2id\$v=(\d+)\$m=(\d{1,10}),t=(\d{1,10}),p=(\d{1,3})\$([A-Za-z0-9+/]{8,88})\$([A-Za-z0-9+/]{16,172})$/;

/** Which supported scheme `encoded` is in, or null when it is none of them or out of bounds. */
export function legacyScheme(encoded: string): LegacyScheme | null {
  if (encoded.length > 512) return null;
  const sha = SHA_CRYPT.exec(encoded);
  if (sha) {
    const rounds = sha[2] === undefined ? 5000 : Number(sha[2]);
    const digestLength = sha[1] === "5" ? 43 : 86;
    if (rounds < 1000 || rounds > MAX_SHA_CRYPT_ROUNDS || sha[4]!.length !== digestLength) {
      return null;
    }
    return sha[1] === "5" ? "SHA256-CRYPT" : "SHA512-CRYPT";
  }
  const bf = BCRYPT.exec(encoded);
  if (bf) {
    const cost = Number(bf[1]);
    return cost >= 4 && cost <= MAX_BCRYPT_COST ? "BLF-CRYPT" : null;
  }
  return argon2Params(encoded) === null ? null : "ARGON2ID";
}

/** True when `encoded` is an imported hash of a supported scheme. */
export function isLegacyHash(encoded: string): boolean {
  return legacyScheme(encoded) !== null;
}

/**
 * True when `password` matches the imported hash `encoded`. The password's UTF-8 bytes are
 * used as given (the other server did not normalise them). Unsupported or over-expensive
 * hashes never match. The comparisons inside the three libraries run in constant time.
 */
export async function verifyLegacyPassword(password: string, encoded: string): Promise<boolean> {
  switch (legacyScheme(encoded)) {
    case "SHA256-CRYPT":
    case "SHA512-CRYPT": {
      // unixcrypt takes the settings without the digest: `$6$rounds=N$salt`.
      const settings = encoded.slice(0, encoded.lastIndexOf("$"));
      return constantTimeStringEqual(shaCrypt(password, settings), encoded);
    }
    case "BLF-CRYPT":
      // bcrypt reads only the first 72 bytes; bcryptjs follows that, as do PHP and Dovecot.
      return await bcrypt.compare(password, encoded);
    case "ARGON2ID": {
      const params = argon2Params(encoded)!;
      const derived = await argon2idAsync(new TextEncoder().encode(password), params.salt, {
        t: params.t,
        m: params.m,
        p: params.p,
        version: params.version,
        dkLen: params.hash.length,
        maxmem: (MAX_ARGON2_MEMORY_KIB + 1024) * 1024,
      });
      return constantTimeBytesEqual(derived, params.hash);
    }
    case null:
      return false;
  }
}

/**
 * The hash to store for a line of a Dovecot passwd-file: `{SCHEME}value` with one of the
 * supported schemes, or a bare `$6$`, `$5$`, `$2y$` or `$argon2id$` string. `{PLAIN}` and
 * `{CLEARTEXT}` give `{ plain }`, for the caller to hash with scrypt. Anything else is
 * `{ error }` with a short reason.
 */
export function parseImportedHash(
  field: string,
): { readonly hash: string } | { readonly plain: string } | { readonly error: string } {
  const prefixed = /^\{([A-Za-z0-9.-]+)\}(.*)$/s.exec(field);
  const scheme = prefixed ? prefixed[1]!.toUpperCase() : null;
  const value = prefixed ? prefixed[2]! : field;
  if (scheme === "PLAIN" || scheme === "CLEARTEXT") return { plain: value };
  if (
    scheme !== null && !["SHA256-CRYPT", "SHA512-CRYPT", "BLF-CRYPT", "ARGON2ID"].includes(scheme)
  ) {
    return { error: `unsupported scheme {${scheme}}` };
  }
  const found = legacyScheme(value);
  if (found === null) {
    return { error: scheme === null ? "not a supported hash" : `malformed {${scheme}} hash` };
  }
  if (scheme !== null && scheme !== found) {
    return { error: `{${scheme}} label on a ${found} hash` };
  }
  return { hash: value };
}

interface Argon2Params {
  readonly version: number;
  readonly m: number;
  readonly t: number;
  readonly p: number;
  readonly salt: Uint8Array;
  readonly hash: Uint8Array;
}

function argon2Params(encoded: string): Argon2Params | null {
  const m = ARGON2ID.exec(encoded);
  if (!m) return null;
  const version = Number(m[1]);
  const mem = Number(m[2]);
  const t = Number(m[3]);
  const p = Number(m[4]);
  if (version !== 0x13 && version !== 0x10) return null;
  if (p < 1 || p > MAX_ARGON2_LANES || t < 1 || t > MAX_ARGON2_PASSES) return null;
  if (mem < 8 * p || mem > MAX_ARGON2_MEMORY_KIB) return null;
  const salt = unb64(m[5]!);
  const hash = unb64(m[6]!);
  if (!salt || !hash || salt.length < 8 || hash.length < 12) return null;
  return { version, m: mem, t, p, salt, hash };
}

function unb64(text: string): Uint8Array | null {
  if (text.length % 4 === 1) return null;
  try {
    const bin = atob(text + "=".repeat((4 - (text.length % 4)) % 4));
    return Uint8Array.from(bin, (c) => c.charCodeAt(0));
  } catch {
    return null;
  }
}

function constantTimeStringEqual(a: string, b: string): boolean {
  const enc = new TextEncoder();
  return constantTimeBytesEqual(enc.encode(a), enc.encode(b));
}

function constantTimeBytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}
