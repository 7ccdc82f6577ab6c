import assert from "node:assert/strict";
import { scryptSync } from "node:crypto";
import {
  constantTimeEqual,
  hashPassword,
  hashPasswordAsync,
  needsRehash,
  PasswordHashError,
  verifyPassword,
  verifyPasswordAsync,
} from "../../mailstore/password.ts";

const LOW = { ln: 4, r: 8, p: 1 };

function b64(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes)).replace(/=+$/, "");
}

Deno.test("hashPassword() writes a PHC-style scrypt string that verifies", async () => {
  const encoded = hashPassword("correct horse", LOW);
  assert.match(encoded, /^\$scrypt\$ln=4,r=8,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
  assert.equal(verifyPassword("correct horse", encoded), true);
  assert.equal(verifyPassword("correct horsE", encoded), false);
  assert.equal(verifyPassword("", encoded), false);
  assert.equal(await verifyPasswordAsync("correct horse", encoded), true);
  assert.equal(await verifyPasswordAsync("wrong", encoded), false);
  assert.notEqual(hashPassword("correct horse", LOW), encoded, "each hash has its own salt");
});

Deno.test("hashPassword() uses ln=15, r=8, p=1 by default", () => {
  const encoded = hashPassword("pw");
  assert.ok(encoded.startsWith("$scrypt$ln=15,r=8,p=1$"));
  assert.equal(needsRehash(encoded), false);
  assert.equal(needsRehash(hashPassword("pw", LOW)), true);
  assert.equal(needsRehash("garbage"), true);
});

Deno.test("verifyPassword() agrees with node:crypto scrypt on the same parameters", () => {
  const salt = new Uint8Array(16).map((_, i) => i * 17);
  const hash = scryptSync("pässword", salt, 32, { N: 2 ** 6, r: 4, p: 2 });
  const encoded = `$scrypt$ln=6,r=4,p=2$${b64(salt)}$${b64(new Uint8Array(hash))}`;
  assert.equal(verifyPassword("pässword", encoded), true);
  assert.equal(verifyPassword("password", encoded), false);
});

Deno.test("verifyPassword() compares passwords after NFC normalisation", () => {
  const encoded = hashPassword("caf\u00e9", LOW);
  assert.equal(verifyPassword("cafe\u0301", encoded), true);
});

Deno.test("verifyPassword() rejects malformed and over-expensive encodings", () => {
  const good = hashPassword("pw", LOW);
  const [, , params, salt, hash] = good.split("$");
  assert.equal(params, "ln=4,r=8,p=1");
  const bad = [
    "",
    "pw",
    `$argon2id$${params}$${salt}$${hash}`,
    `$scrypt$ln=4,r=8$${salt}$${hash}`,
    `$scrypt$ln=4,r=8,p=1,x=1$${salt}$${hash}`,
    `$scrypt$ln=0,r=8,p=1$${salt}$${hash}`,
    `$scrypt$ln=21,r=8,p=1$${salt}$${hash}`,
    `$scrypt$ln=20,r=8,p=1$${salt}$${hash}`, // 1 GiB of memory: refused, not attempted
    `$scrypt$ln=4,r=0,p=1$${salt}$${hash}`,
    `$scrypt$ln=4,r=999,p=1$${salt}$${hash}`,
    `$scrypt$ln=4,r=8,p=999$${salt}$${hash}`,
    `$scrypt$ln=4,r=8,p=1$${salt}$${hash}$`,
    `$scrypt$ln=4,r=8,p=1$${salt}$${hash!.slice(0, 12)}`,
    `$scrypt$ln=4,r=8,p=1$AAAA$${hash}`,
    `$scrypt$ln=4,r=8,p=1$${salt}$${hash}==`,
    `$scrypt$ln=4,r=8,p=1$${salt}$${"A".repeat(300)}`,
    `$scrypt$ln=4,r=8,p=1$${salt}$${hash!.slice(0, -1)}!`,
  ];
  for (const encoded of bad) {
    const started = performance.now();
    assert.equal(verifyPassword("pw", encoded), false, encoded);
    assert.ok(performance.now() - started < 2000, `${encoded} was refused quickly`);
  }
  assert.equal(verifyPassword("pw", good), true);
});

Deno.test("password length is capped", async () => {
  const long = "x".repeat(1025);
  assert.throws(() => hashPassword(long, LOW), PasswordHashError);
  assert.throws(() => hashPassword("pw", { ln: 30, r: 8, p: 1 }), (e: unknown) => {
    assert.ok(e instanceof PasswordHashError);
    assert.equal(e.name, "PasswordHashError");
    return true;
  });
  const encoded = hashPassword("x".repeat(1024), LOW);
  assert.equal(verifyPassword("x".repeat(1024), encoded), true);
  assert.equal(verifyPassword(long, encoded), false);
  assert.equal(await verifyPasswordAsync(long, encoded), false);
});

Deno.test("constantTimeEqual() compares bytes and lengths", () => {
  assert.equal(constantTimeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 2])), true);
  assert.equal(constantTimeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 3])), false);
  assert.equal(constantTimeEqual(new Uint8Array([1]), new Uint8Array([1, 0])), false);
  assert.equal(constantTimeEqual(new Uint8Array(), new Uint8Array()), true);
});

Deno.test("hashes made on the native thread pool agree with noble's scrypt", async () => {
  const { scrypt } = await import("@noble/hashes/scrypt.js");
  const encoded = await hashPasswordAsync("pässword", LOW);
  const [, , , salt, hash] = encoded.split("$");
  const unb64 = (t: string) =>
    Uint8Array.from(atob(t + "=".repeat((4 - t.length % 4) % 4)), (c) => c.charCodeAt(0));
  const expected = scrypt(new TextEncoder().encode("pässword"), unb64(salt!), {
    N: 2 ** LOW.ln,
    r: LOW.r,
    p: LOW.p,
    dkLen: 32,
  });
  assert.deepEqual(unb64(hash!), expected);
  assert.equal(await verifyPasswordAsync("pässword", encoded), true);
  assert.equal(verifyPassword("pässword", encoded), true);
});

Deno.test("verifyPasswordAsync() checks ln=15 hashes, beyond node:crypto's default maxmem", async () => {
  const encoded = hashPassword("pw");
  assert.equal(await verifyPasswordAsync("pw", encoded), true);
  assert.equal(await verifyPasswordAsync("pW", encoded), false);
});
