/** `auth:` — local password verification (see server/auth/local.ts). */
import type * as v from "valibot";
import type { Positions } from "./_positions.ts";
import { duration, int, optional, section } from "./_schema.ts";
import { checkCost, DEFAULT_SCRYPT_COST, type ScryptCost } from "../../mailstore/password.ts";

export const authSchema = section({
  cache_ttl: optional(duration(0), "1h"),
  cache_negative_ttl: optional(duration(0), "1m"),
  scrypt_cost: optional(
    section({
      ln: optional(int(10, 20), DEFAULT_SCRYPT_COST.ln),
      r: optional(int(1, 32), DEFAULT_SCRYPT_COST.r),
      p: optional(int(1, 16), DEFAULT_SCRYPT_COST.p),
    }),
    {},
  ),
}, "Password checks: the authentication cache and the scrypt cost of new hashes");

/** The `auth:` section: local password verification. */
export interface AuthConfig {
  /** How long a successful password check is reused; 0 turns the cache off. Default 1h. */
  readonly cacheTtlMs: number;
  /** How long a failed password check is reused; 0 turns it off. Default 1m. */
  readonly cacheNegativeTtlMs: number;
  /** Cost of new scrypt hashes; logins re-hash to it. Default ln=15, r=8, p=1. */
  readonly scryptCost: ScryptCost;
}

export function readAuth(file: v.InferOutput<typeof authSchema>, at: Positions): AuthConfig {
  let scryptCost: ScryptCost = file.scrypt_cost;
  try {
    checkCost(scryptCost);
  } catch {
    at.fail(["auth", "scrypt_cost"], "needs more than 128 MiB per check (128 * 2^ln * r bytes)");
    scryptCost = DEFAULT_SCRYPT_COST;
  }
  return {
    cacheTtlMs: file.cache_ttl,
    cacheNegativeTtlMs: file.cache_negative_ttl,
    scryptCost: { ln: scryptCost.ln, r: scryptCost.r, p: scryptCost.p },
  };
}
