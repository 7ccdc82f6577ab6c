import assert from "node:assert/strict";
import {
  isLegacyHash,
  legacyScheme,
  parseImportedHash,
  verifyLegacyPassword,
} from "../../mailstore/legacy_password.ts";
import { needsRehash, verifyPasswordAsync } from "../../mailstore/password.ts";

/**
 * The test vectors of "Unix crypt using SHA-256 and SHA-512" (Ulrich Drepper), cross-checked
 * with glibc crypt(3).
 */
const SHA_CRYPT_VECTORS: readonly (readonly [string, string])[] = [
  ["Hello world!", "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5"],
  [
    "Hello world!",
    "$5$rounds=10000$saltstringsaltst$3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA",
  ],
  [
    "This is just a test",
    "$5$rounds=5000$toolongsaltstrin$Un/5jzAHMgOGZ5.mWJpuVolil07guHPvOW8mGRcvxa5",
  ],
  [
    "a very much longer text to encrypt.  This one even stretches over morethan one line.",
    "$5$rounds=1400$anotherlongsalts$Rx.j8H.h8HjEDGomFU8bDkXm3XIUnzyxf12oP84Bnq1",
  ],
  [
    "the minimum number is still observed",
    "$5$rounds=1000$roundstoolow$yfvwcWrQ8l/K0DAWyuPMDNHpIVlTQebY9l/gL972bIC",
  ],
  [
    "Hello world!",
    "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1",
  ],
  [
    "Hello world!",
    "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v.",
  ],
  [
    "This is just a test",
    "$6$rounds=5000$toolongsaltstrin$lQ8jolhgVRVhY4b5pZKaysCLi0QBxGoNeKQzQ3glMhwllF7oGDZxUhx1yxdYcz/e1JSbq3y6JMxxl8audkUEm0",
  ],
  [
    "a very much longer text to encrypt.  This one even stretches over morethan one line.",
    "$6$rounds=1400$anotherlongsalts$POfYwTEok97VWcjxIiSOjiykti.o/pQs.wPvMxQ6Fm7I6IoYN3CmLs66x9t0oSwbtEW7o7UmJEiDwGqd8p4ur1",
  ],
  [
    "the minimum number is still observed",
    "$6$rounds=1000$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZt58jaTfF4ZEQpyUNGc0dqbpBYYBaHHrsX.",
  ],
];

Deno.test("verifyLegacyPassword() accepts the SHA-crypt specification's test vectors", async () => {
  for (const [password, encoded] of SHA_CRYPT_VECTORS) {
    assert.equal(isLegacyHash(encoded), true, encoded);
    assert.equal(await verifyLegacyPassword(password, encoded), true, encoded);
    assert.equal(await verifyLegacyPassword(password + "x", encoded), false, encoded);
    assert.equal(await verifyPasswordAsync(password, encoded), true, "through password.ts");
    assert.equal(needsRehash(encoded), true, "imported hashes are replaced at login");
  }
});

Deno.test("SHA-crypt hashes over the rounds cap are refused without computing", async () => {
  // Vectors from the specification with 77,777 and 123,456 rounds: above MAX_SHA_CRYPT_ROUNDS.
  const expensive =
    "$6$rounds=77777$short$WuQyW2YR.hBNpjjRhpYD/ifIw05xdfeEyQoMxIXbkvr0gge1a1x3yRULJ5CCaUeOxFmtlcGZelFl5CxtgfiAc0";
  assert.equal(legacyScheme(expensive), null);
  assert.equal(
    await verifyLegacyPassword("we have a short salt string but not a short password", expensive),
    false,
  );
  assert.equal(legacyScheme("$6$rounds=999999999$x$" + "a".repeat(86)), null);
  assert.equal(legacyScheme("$6$rounds=10$roundstoolow$" + "a".repeat(86)), null);
});

Deno.test("SHA-crypt agrees with OpenSSL's passwd -5 and -6 on UTF-8 passwords", async () => {
  for (const [flag, password] of [["-5", "pässwörd"], ["-6", "naïve café"]] as const) {
    const out = await new Deno.Command("openssl", {
      args: ["passwd", flag, "-salt", "QxJ8z1.vW/abcdef", password],
      stdout: "piped",
    }).output();
    const encoded = new TextDecoder().decode(out.stdout).trim();
    assert.equal(await verifyLegacyPassword(password, encoded), true, encoded);
    assert.equal(await verifyLegacyPassword(password.normalize("NFD"), encoded), false);
  }
});

/** Hashes made by Dovecot 2.3's `doveadm pw` for the password "secret". */
const DOVECOT = {
  blf: "{BLF-CRYPT}$2y$05$HtugKVkYHTb4dnkR9WS6xedT6QaLL00YIU2R8jF.k8TLZuIRBL5Ne",
  argon2id:
    "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$WRE8DUsCjARYimapveJLEQ$VPiuSxa1+jQtvpuALdhe3ReYkRLV4X6VcRXhZgsEVpw",
  sha512:
    "{SHA512-CRYPT}$6$MlK7ruuPnwVMEeIp$c/fuqa3O5cPzaity6FJsZq9xS6GbGi8NR24ke2wxVO7oaiXz0p6A3TVg1TROS53PLItUwOYNK1FhKrzLCesz31",
};

Deno.test("hashes from doveadm pw verify as they are", async () => {
  for (const field of Object.values(DOVECOT)) {
    const parsed = parseImportedHash(field);
    assert.ok("hash" in parsed, field);
    assert.equal(await verifyLegacyPassword("secret", parsed.hash), true, field);
    if (!field.startsWith("{ARGON2ID}")) {
      assert.equal(await verifyLegacyPassword("Secret", parsed.hash), false, field);
    }
  }
  // The same schemes without the {SCHEME} prefix.
  assert.ok(
    "hash" in parseImportedHash("$2y$05$HtugKVkYHTb4dnkR9WS6xedT6QaLL00YIU2R8jF.k8TLZuIRBL5Ne"),
  );
  assert.ok("hash" in parseImportedHash(DOVECOT.argon2id.slice("{ARGON2ID}".length)));
});

Deno.test("parseImportedHash() refuses unsupported, mislabelled and over-expensive hashes", () => {
  assert.deepEqual(parseImportedHash("{PLAIN}secret"), { plain: "secret" });
  assert.deepEqual(parseImportedHash("{SSHA}abcd"), { error: "unsupported scheme {SSHA}" });
  assert.deepEqual(parseImportedHash("{MD5-CRYPT}$1$abc$def"), {
    error: "unsupported scheme {MD5-CRYPT}",
  });
  assert.deepEqual(parseImportedHash("$1$abc$def"), { error: "not a supported hash" });
  assert.deepEqual(parseImportedHash(DOVECOT.blf.replace("BLF-CRYPT", "SHA512-CRYPT")), {
    error: "{SHA512-CRYPT} label on a BLF-CRYPT hash",
  });
  assert.deepEqual(parseImportedHash("{BLF-CRYPT}$2y$31$" + "a".repeat(53)), {
    error: "malformed {BLF-CRYPT} hash",
  });
  const argon = DOVECOT.argon2id.slice("{ARGON2ID}".length);
  assert.equal(legacyScheme(argon.replace("m=65536", "m=4194304")), null, "4 GiB of memory");
  assert.equal(legacyScheme(argon.replace("t=3", "t=1000")), null, "1,000 passes");
  assert.equal(legacyScheme(argon.replace("p=1", "p=64")), null, "64 lanes");
  assert.equal(legacyScheme("$argon2i$v=19$m=65536,t=3,p=1$WRE8DUsCjARYimapveJLEQ$x"), null);
  assert.equal(legacyScheme("x".repeat(10_000)), null);
});
