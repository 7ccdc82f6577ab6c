import assert from "node:assert/strict";
import { LegacyVerifierPool } from "../../../server/auth/legacy_pool.ts";
import { hashPassword } from "../../../mailstore/password.ts";

/** Dovecot 2.3 `doveadm pw` hashes of "secret", and the SHA-crypt specification's first vector. */
const BLF = "$2y$05$HtugKVkYHTb4dnkR9WS6xedT6QaLL00YIU2R8jF.k8TLZuIRBL5Ne";
const SHA512 =
  "$6$MlK7ruuPnwVMEeIp$c/fuqa3O5cPzaity6FJsZq9xS6GbGi8NR24ke2wxVO7oaiXz0p6A3TVg1TROS53PLItUwOYNK1FhKrzLCesz31";
const SHA256 = "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5";

Deno.test("LegacyVerifierPool verifies imported hashes on Workers and scrypt as usual", async () => {
  const pool = new LegacyVerifierPool(2);
  try {
    const results = await Promise.all([
      pool.verifyPassword("secret", BLF),
      pool.verifyPassword("Secret", BLF),
      pool.verifyPassword("secret", SHA512),
      pool.verifyPassword("wrong", SHA512),
      pool.verifyPassword("Hello world!", SHA256),
      pool.verifyPassword("pw", hashPassword("pw", { ln: 4, r: 8, p: 1 })),
      pool.verifyPassword("secret", "$1$unsupported$x"),
    ]);
    assert.deepEqual(results, [true, false, true, false, true, true, false]);
  } finally {
    pool.close();
  }
});

Deno.test("LegacyVerifierPool.close() fails the checks still running and refuses new ones", async () => {
  const pool = new LegacyVerifierPool(1);
  const running = pool.verify("secret", SHA512);
  pool.close();
  await assert.rejects(running, /closed/);
  await assert.rejects(pool.verify("secret", SHA512), /closed/);
});
