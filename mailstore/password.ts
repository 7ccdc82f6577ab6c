/**
 * Password hashing for local accounts: scrypt (RFC 7914) in a PHC-style string,
 * `$scrypt$ln=15,r=8,p=1$<salt>$<hash>`, with unpadded standard Base64 as in the PHC string
 * format. Parameters read back from the database are capped, so a tampered row cannot make
 * verification allocate gigabytes or spin for minutes.
 *
 * Verification runs on the native thread pool (`node:crypto` `scrypt` with a callback), never on
 * the JavaScript thread: measured on the 2-core machine (ln=15, r=8, p=1), one check costs about
 * 170 ms native and 245 ms in noble's `scryptAsync`, which also blocks the event loop for 10 ms
 * slices; 16 checks through the thread pool ran at 16/s, as fast as a pool of two Workers
 * (15/s), with no worker files to ship. Callers bound how many run at once (32 MiB each).
 *
 * Hashes imported from other servers (SHA-crypt, bcrypt, Argon2id) verify through
 * `legacy_password.ts` and are replaced by scrypt on the next successful login.
 */
import { scrypt as nativeScrypt, scryptSync } from "node:crypto";
import { isLegacyHash, verifyLegacyPassword } from "./legacy_password.ts";

/** scrypt cost: N = 2^ln, block size r, parallelism p (RFC 7914, Section 2). */
export interface ScryptCost {
  readonly ln: number;
  readonly r: number;
  readonly p: number;
}

/**
 * The cost for new hashes (`auth.scrypt_cost`): 32 MiB of memory, about 170 ms of one core
 * here. OWASP's minimum is N=2^17 (ln=17), r=8, p=1: 128 MiB and about 570 ms per check on
 * this machine, which limits a 2-core server to about 2 cold logins per second. With the
 * authentication cache most logins skip the check, but every restart and every new password
 * pays it, so ln=15 stays the default and ln=17 is a documented choice for bigger machines.
 */
export const DEFAULT_SCRYPT_COST: ScryptCost = { ln: 15, r: 8, p: 1 };

/** Upper bounds accepted when verifying; 128 * 2^ln * r must also stay within MAX_MEMORY. */
const MAX_LN = 20;
const MAX_R = 32;
const MAX_P = 16;
const MAX_MEMORY = 128 * 1024 * 1024;
const SALT_LENGTH = 16;
const HASH_LENGTH = 32;
const MIN_SALT_BYTES = 8;
const MIN_HASH_BYTES = 16;
const MAX_ENCODED_BYTES = 64;

/** Longest accepted password, in UTF-8 bytes. */
export const MAX_PASSWORD_BYTES = 1024;

/** Raised when a password or an encoded hash cannot be used. */
export class PasswordHashError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PasswordHashError";
  }
}

interface Parsed {
  readonly cost: ScryptCost;
  readonly salt: Uint8Array;
  readonly hash: Uint8Array;
}

/** Hashes `password` with a fresh 16-byte random salt, on the calling thread (for the CLI). */
export function hashPassword(password: string, cost: ScryptCost = DEFAULT_SCRYPT_COST): string {
  checkCost(cost);
  const salt = crypto.getRandomValues(new Uint8Array(SALT_LENGTH));
  const hash = scryptSync(passwordBytes(password), salt, HASH_LENGTH, scryptOptions(cost));
  return encode(cost, salt, new Uint8Array(hash));
}

/** As `hashPassword`, on the native thread pool (for re-hashing at login). */
export async function hashPasswordAsync(
  password: string,
  cost: ScryptCost = DEFAULT_SCRYPT_COST,
): Promise<string> {
  checkCost(cost);
  const salt = crypto.getRandomValues(new Uint8Array(SALT_LENGTH));
  const hash = await scryptOffThread(passwordBytes(password), salt, HASH_LENGTH, cost);
  return encode(cost, salt, hash);
}

/**
 * True when `password` matches the scrypt string `encoded`, computed on the calling thread. A
 * malformed or over-expensive `encoded` value is simply a mismatch. The final comparison runs
 * in constant time.
 */
export function verifyPassword(password: string, encoded: string): boolean {
  const parsed = tryParse(encoded);
  const pw = tryPasswordBytes(password);
  if (!parsed || !pw) return false;
  const derived = scryptSync(pw, parsed.salt, parsed.hash.length, scryptOptions(parsed.cost));
  return constantTimeEqual(new Uint8Array(derived), parsed.hash);
}

/**
 * True when `password` matches `encoded`: a scrypt string, checked on the native thread pool so
 * that the server keeps serving other connections, or an imported hash (`legacy_password.ts`).
 */
export async function verifyPasswordAsync(password: string, encoded: string): Promise<boolean> {
  if (isLegacyHash(encoded)) return await verifyLegacyPassword(password, encoded);
  const parsed = tryParse(encoded);
  const pw = tryPasswordBytes(password);
  if (!parsed || !pw) return false;
  const derived = await scryptOffThread(pw, parsed.salt, parsed.hash.length, parsed.cost);
  return constantTimeEqual(derived, parsed.hash);
}

/** True when `encoded` is a scrypt string this module can verify (not an imported hash). */
export function isScryptHash(encoded: string): boolean {
  return tryParse(encoded) !== null;
}

/** True when `encoded` is unusable, imported, or was made with a cost other than `cost`. */
export function needsRehash(encoded: string, cost: ScryptCost = DEFAULT_SCRYPT_COST): boolean {
  const parsed = tryParse(encoded);
  return !parsed || parsed.cost.ln !== cost.ln || parsed.cost.r !== cost.r ||
    parsed.cost.p !== cost.p;
}

/** Compares two byte strings in time that depends only on their lengths. */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** node:crypto refuses more than 32 MiB by default, which ln=15, r=8 already needs. */
function scryptOptions(cost: ScryptCost) {
  return { N: 2 ** cost.ln, r: cost.r, p: cost.p, maxmem: MAX_MEMORY + 1024 * 1024 };
}

function scryptOffThread(
  password: Uint8Array,
  salt: Uint8Array,
  length: number,
  cost: ScryptCost,
): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    nativeScrypt(password, salt, length, scryptOptions(cost), (error, key) => {
      if (error) reject(error);
      else resolve(new Uint8Array(key.buffer, key.byteOffset, key.byteLength));
    });
  });
}

/** Throws `PasswordHashError` unless `cost` is within the bounds verification accepts. */
export function checkCost(cost: ScryptCost): void {
  const ok = Number.isInteger(cost.ln) && cost.ln >= 1 && cost.ln <= MAX_LN &&
    Number.isInteger(cost.r) && cost.r >= 1 && cost.r <= MAX_R &&
    Number.isInteger(cost.p) && cost.p >= 1 && cost.p <= MAX_P &&
    128 * 2 ** cost.ln * cost.r <= MAX_MEMORY;
  if (!ok) throw new PasswordHashError("Unsupported scrypt parameters");
}

/** Passwords are compared after Unicode NFC normalisation (RFC 8265, OpaqueString). */
function passwordBytes(password: string): Uint8Array {
  const bytes = new TextEncoder().encode(password.normalize("NFC"));
  if (bytes.length > MAX_PASSWORD_BYTES) throw new PasswordHashError("Password is too long");
  return bytes;
}

function tryPasswordBytes(password: string): Uint8Array | null {
  if (password.length > MAX_PASSWORD_BYTES) return null;
  try {
    return passwordBytes(password);
  } catch {
    return null;
  }
}

function encode(cost: ScryptCost, salt: Uint8Array, hash: Uint8Array): string {
  return `$scrypt$ln=${cost.ln},r=${cost.r},p=${cost.p}$${b64(salt)}$${b64(hash)}`;
}

const ENCODED_PATTERN =
  /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,3}),p=(\d{1,3})\$([A-Za-z0-9+/]{11,88})\$([A-Za-z0-9+/]{11,88})$/;

function tryParse(encoded: string): Parsed | null {
  if (encoded.length > 256) return null;
  const m = ENCODED_PATTERN.exec(encoded);
  if (!m) return null;
  const cost = { ln: Number(m[1]), r: Number(m[2]), p: Number(m[3]) };
  try {
    checkCost(cost);
  } catch {
    return null;
  }
  const salt = unb64(m[4]!);
  const hash = unb64(m[5]!);
  if (!salt || !hash) return null;
  if (salt.length < MIN_SALT_BYTES || salt.length > MAX_ENCODED_BYTES) return null;
  if (hash.length < MIN_HASH_BYTES || hash.length > MAX_ENCODED_BYTES) return null;
  return { cost, salt, hash };
}

function b64(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/=+$/, "");
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
