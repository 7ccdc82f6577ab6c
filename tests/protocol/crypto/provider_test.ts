/**
 * Contract tests that every crypto provider must pass, plus cross-provider checks (what one
 * signs or seals, the other verifies or opens).
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { generateKeyPairSync } from "node:crypto";
import {
  type AeadAlgorithm,
  CryptoError,
  type CryptoProvider,
  type EcCurve,
  type HashAlgorithm,
  type KeyExchangeGroup,
  type PrivateKey,
} from "../../../protocol/crypto/provider.ts";
import { nobleProvider } from "../../../protocol/crypto/noble.ts";
import { nativeProvider } from "../../../protocol/crypto/native.ts";
import { defaultProvider } from "../../../protocol/crypto/mod.ts";
import { CURVE_ORDER } from "../../../protocol/crypto/_common.ts";

const PROVIDERS: readonly CryptoProvider[] = [nobleProvider, nativeProvider, defaultProvider];
const HASHES: readonly HashAlgorithm[] = ["SHA-256", "SHA-384", "SHA-512"];
const GROUPS: readonly KeyExchangeGroup[] = ["x25519", "secp256r1", "secp384r1"];
const AEADS: readonly AeadAlgorithm[] = ["AES-128-GCM", "AES-256-GCM", "CHACHA20-POLY1305"];
const text = new TextEncoder();

function hex(s: string): Uint8Array {
  const clean = s.replaceAll(/\s/g, "");
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.substring(2 * i, 2 * i + 2), 16);
  return out;
}

function toHex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** One RSA key for all RSA tests: generation is the slow part. */
const rsaKey = nativeProvider.generatePrivateKey("rsa2048");

function keyFor(p: CryptoProvider, kind: "P-256" | "P-384" | "ed25519"): PrivateKey {
  return p.generatePrivateKey(kind);
}

for (const p of PROVIDERS) {
  Deno.test(`${p.name}: HashContext.digest() does not disturb the running hash`, () => {
    for (const algorithm of HASHES) {
      const ctx = p.createHash(algorithm);
      ctx.update(text.encode("abc"));
      const first = ctx.digest();
      assert.deepEqual(ctx.digest(), first);
      assert.deepEqual(first, p.hash(algorithm, text.encode("abc")));
      ctx.update(text.encode("def"));
      assert.deepEqual(ctx.digest(), p.hash(algorithm, text.encode("abcdef")));
    }
  });

  Deno.test(`${p.name}: HashContext.clone() forks an independent hash`, () => {
    const ctx = p.createHash("SHA-256");
    ctx.update(text.encode("abc"));
    const fork = ctx.clone();
    fork.update(text.encode("X"));
    ctx.update(text.encode("Y"));
    assert.deepEqual(fork.digest(), p.hash("SHA-256", text.encode("abcX")));
    assert.deepEqual(ctx.digest(), p.hash("SHA-256", text.encode("abcY")));
  });

  Deno.test(`${p.name}: hash() matches the FIPS 180-4 "abc" vectors and returns plain bytes`, () => {
    const abc = text.encode("abc");
    assert.equal(
      toHex(p.hash("SHA-256", abc)),
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    );
    assert.equal(
      toHex(p.hash("SHA-384", abc)),
      "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed" +
        "8086072ba1e7cc2358baeca134c825a7",
    );
    assert.equal(Object.getPrototypeOf(p.hash("SHA-256", abc)), Uint8Array.prototype);
    assert.equal(Object.getPrototypeOf(p.hmac("SHA-256", abc, abc)), Uint8Array.prototype);
  });

  Deno.test(`${p.name}: HKDF matches RFC 5869 test case 3 (empty salt and info)`, () => {
    const ikm = new Uint8Array(22).fill(0x0b);
    const prk = p.hkdfExtract("SHA-256", new Uint8Array(0), ikm);
    assert.equal(
      toHex(prk),
      "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04",
    );
    assert.equal(
      toHex(p.hkdfExpand("SHA-256", prk, new Uint8Array(0), 42)),
      "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d" +
        "9d201395faa4b61a96c8",
    );
    assert.throws(() => p.hkdfExpand("SHA-256", prk, new Uint8Array(0), 255 * 32 + 1), CryptoError);
  });

  for (const curve of ["P-256", "P-384"] as const) {
    for (const hash of HASHES) {
      Deno.test(`${p.name}: ECDSA ${curve} with ${hash} signs and verifies`, () => {
        const key = keyFor(p, curve);
        const pub = p.publicKeyOf(key);
        const msg = text.encode("CertificateVerify content");
        const sig = p.sign(key, { kind: "ecdsa", hash }, msg);
        assert.equal(sig[0], 0x30, "ECDSA signatures are DER");
        assert.ok(p.verify(pub, { kind: "ecdsa", hash }, msg, sig));
        assert.ok(!p.verify(pub, { kind: "ecdsa", hash }, text.encode("other"), sig));
        const other = hash === "SHA-256" ? "SHA-384" : "SHA-256";
        assert.ok(!p.verify(pub, { kind: "ecdsa", hash: other }, msg, sig));
      });
    }
  }

  Deno.test(`${p.name}: ECDSA verify accepts high-S signatures`, () => {
    for (const curve of ["P-256", "P-384"] as const) {
      const key = keyFor(p, curve);
      const msg = text.encode("high S");
      const sig = p.sign(key, { kind: "ecdsa", hash: "SHA-256" }, msg);
      const flipped = flipS(sig, curve);
      assert.notDeepEqual(flipped, sig);
      assert.ok(p.verify(p.publicKeyOf(key), { kind: "ecdsa", hash: "SHA-256" }, msg, flipped));
    }
  });

  Deno.test(`${p.name}: ECDSA keys tolerate short scalars and compressed public points`, () => {
    for (const curve of ["P-256", "P-384"] as const) {
      const key: PrivateKey = {
        kind: "ec",
        curve,
        d: Uint8Array.of(7),
        publicKey: new Uint8Array(0),
      };
      const pub = p.publicKeyOf(key);
      assert.ok(pub.kind === "ec");
      const size = curve === "P-256" ? 32 : 48;
      assert.equal(pub.point.length, 1 + 2 * size);
      const msg = text.encode("short scalar");
      const sig = p.sign(key, { kind: "ecdsa", hash: "SHA-256" }, msg);
      assert.ok(p.verify(pub, { kind: "ecdsa", hash: "SHA-256" }, msg, sig));
      const compressed = new Uint8Array(1 + size);
      compressed[0] = 0x02 | (pub.point[2 * size]! & 1);
      compressed.set(pub.point.subarray(1, 1 + size), 1);
      assert.ok(
        p.verify(
          { kind: "ec", curve, point: compressed },
          { kind: "ecdsa", hash: "SHA-256" },
          msg,
          sig,
        ),
      );
      const offCurve = pub.point.slice();
      offCurve[2 * size]! ^= 1;
      assert.throws(
        () =>
          p.verify(
            { kind: "ec", curve, point: offCurve },
            { kind: "ecdsa", hash: "SHA-256" },
            msg,
            sig,
          ),
        CryptoError,
      );
      assert.throws(() => p.publicKeyOf({ ...key, d: new Uint8Array(size) }), CryptoError);
    }
  });

  Deno.test(`${p.name}: Ed25519 verify returns false for a key that is not a point`, () => {
    const sig = new Uint8Array(64);
    for (const fill of [0x02, 0xff]) {
      const key = new Uint8Array(32).fill(fill);
      assert.equal(
        p.verify({ kind: "ed25519", key }, { kind: "ed25519" }, new Uint8Array(1), sig),
        false,
      );
    }
    assert.throws(
      () =>
        p.verify(
          { kind: "ed25519", key: new Uint8Array(31) },
          { kind: "ed25519" },
          new Uint8Array(1),
          sig,
        ),
      CryptoError,
    );
  });

  Deno.test(`${p.name}: Ed25519 signs and verifies`, () => {
    const key = keyFor(p, "ed25519");
    const pub = p.publicKeyOf(key);
    const msg = text.encode("hello");
    const sig = p.sign(key, { kind: "ed25519" }, msg);
    assert.equal(sig.length, 64);
    assert.ok(p.verify(pub, { kind: "ed25519" }, msg, sig));
    const bad = sig.slice();
    bad[10]! ^= 1;
    assert.ok(!p.verify(pub, { kind: "ed25519" }, msg, bad));
    assert.ok(!p.verify(pub, { kind: "ed25519" }, msg, sig.subarray(1)));
  });

  Deno.test(`${p.name}: Ed25519 matches RFC 8032 test 1`, () => {
    const seed = hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
    const publicKey = hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
    const key: PrivateKey = { kind: "ed25519", seed, publicKey };
    assert.deepEqual(p.publicKeyOf(key), { kind: "ed25519", key: publicKey });
    assert.equal(
      toHex(p.sign(key, { kind: "ed25519" }, new Uint8Array(0))),
      "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155" +
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    );
  });

  for (const kind of ["rsa-pss", "rsa-pkcs1"] as const) {
    for (const hash of HASHES) {
      Deno.test(`${p.name}: ${kind} with ${hash} signs and verifies`, () => {
        const pub = p.publicKeyOf(rsaKey);
        assert.equal(pub.kind === "rsa" && pub.bits, 2048);
        const msg = text.encode("RSA message");
        const sig = p.sign(rsaKey, { kind, hash }, msg);
        assert.equal(sig.length, 256);
        assert.ok(p.verify(pub, { kind, hash }, msg, sig));
        assert.ok(!p.verify(pub, { kind, hash }, text.encode("RSA messagf"), sig));
        const other = kind === "rsa-pss" ? "rsa-pkcs1" : "rsa-pss";
        assert.ok(!p.verify(pub, { kind: other, hash }, msg, sig));
        assert.ok(!p.verify(pub, { kind, hash }, msg, sig.subarray(1)));
      });
    }
  }

  Deno.test(`${p.name}: RSA-PSS signatures are randomized`, () => {
    const msg = text.encode("salted");
    const a = p.sign(rsaKey, { kind: "rsa-pss", hash: "SHA-256" }, msg);
    const b = p.sign(rsaKey, { kind: "rsa-pss", hash: "SHA-256" }, msg);
    assert.notDeepEqual(a, b);
  });

  Deno.test(`${p.name}: sign() refuses a key of the wrong kind`, () => {
    const ec = keyFor(p, "P-256");
    assert.throws(() => p.sign(ec, { kind: "ed25519" }, new Uint8Array(1)), CryptoError);
    assert.throws(
      () => p.sign(ec, { kind: "rsa-pss", hash: "SHA-256" }, new Uint8Array(1)),
      CryptoError,
    );
  });

  for (const group of GROUPS) {
    Deno.test(`${p.name}: ${group} key shares agree on a secret`, () => {
      const a = p.generateKeyShare(group);
      const b = p.generateKeyShare(group);
      assert.equal(a.group, group);
      const size = group === "x25519" ? 32 : group === "secp256r1" ? 65 : 97;
      assert.equal(a.publicKey.length, size);
      if (group !== "x25519") assert.equal(a.publicKey[0], 0x04);
      const s1 = a.computeSecret(b.publicKey);
      assert.deepEqual(s1, b.computeSecret(a.publicKey));
      assert.equal(s1.length, group === "secp384r1" ? 48 : 32);
    });

    Deno.test(`${p.name}: ${group} key shares reject malformed peer keys`, () => {
      const a = p.generateKeyShare(group);
      const peer = p.generateKeyShare(group).publicKey;
      assert.throws(() => a.computeSecret(peer.subarray(1)), CryptoError);
      assert.throws(() => a.computeSecret(new Uint8Array(0)), CryptoError);
      if (group === "x25519") return;
      const compressed = new Uint8Array((peer.length - 1) / 2 + 1);
      compressed[0] = 0x02 | (peer[peer.length - 1]! & 1);
      compressed.set(peer.subarray(1, compressed.length), 1);
      assert.throws(() => a.computeSecret(compressed), CryptoError, "compressed point");
      const offCurve = peer.slice();
      offCurve[offCurve.length - 1]! ^= 1;
      assert.throws(() => a.computeSecret(offCurve), CryptoError, "point not on the curve");
      const zero = new Uint8Array(peer.length);
      zero[0] = 0x04;
      assert.throws(() => a.computeSecret(zero), CryptoError, "all-zero coordinates");
    });
  }

  Deno.test(`${p.name}: x25519 rejects low-order peer keys (all-zero secret)`, () => {
    const a = p.generateKeyShare("x25519");
    const lowOrder = [
      new Uint8Array(32),
      hex("0100000000000000000000000000000000000000000000000000000000000000"),
      hex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
      hex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    ];
    for (const peer of lowOrder) assert.throws(() => a.computeSecret(peer), CryptoError);
  });

  Deno.test(`${p.name}: keyShareFromPrivate() reproduces the RFC 8448 x25519 exchange`, () => {
    const client = p.keyShareFromPrivate(
      "x25519",
      hex("49af42ba7f7994852d713ef2784bcbcaa7911de26adc5642cb634540e7ea5005"),
    );
    const server = p.keyShareFromPrivate(
      "x25519",
      hex("b1580eeadf6dd589b8ef4f2d5652578cc810e9980191ec8d058308cea216a21e"),
    );
    assert.equal(
      toHex(client.publicKey),
      "99381de560e4bd43d23d8e435a7dbafeb3c06e51c13cae4d5413691e529aaf2c",
    );
    assert.equal(
      toHex(server.publicKey),
      "c9828876112095fe66762bdbf7c672e156d6cc253b833df1dd69b1b04e751f0f",
    );
    const secret = server.computeSecret(client.publicKey);
    assert.equal(
      toHex(secret),
      "8bd4054fb55b9d63fdfbacf9f04b9f0d35e6d63f537563efd46272900f89492d",
    );
  });

  Deno.test(`${p.name}: keyShareFromPrivate() rejects out-of-range NIST scalars`, () => {
    for (const [group, curve] of [["secp256r1", "P-256"], ["secp384r1", "P-384"]] as const) {
      const size = curve === "P-256" ? 32 : 48;
      assert.throws(() => p.keyShareFromPrivate(group, new Uint8Array(size)), CryptoError);
      const n = CURVE_ORDER[curve as EcCurve].toString(16).padStart(size * 2, "0");
      assert.throws(() => p.keyShareFromPrivate(group, hex(n)), CryptoError);
      assert.throws(
        () => p.keyShareFromPrivate(group, new Uint8Array(size + 1).fill(1)),
        CryptoError,
      );
      const one = new Uint8Array(size);
      one[size - 1] = 1;
      assert.equal(p.keyShareFromPrivate(group, one).publicKey.length, 1 + 2 * size);
    }
    assert.throws(() => p.keyShareFromPrivate("x25519", new Uint8Array(31)), CryptoError);
  });

  for (const algorithm of AEADS) {
    Deno.test(`${p.name}: ${algorithm} seals, opens, and refuses tampering`, () => {
      const keyLength = algorithm === "AES-128-GCM" ? 16 : 32;
      const aead = p.createAead(algorithm, p.randomBytes(keyLength));
      assert.equal(aead.keyLength, keyLength);
      assert.equal(aead.nonceLength, 12);
      assert.equal(aead.tagLength, 16);
      const nonce = p.randomBytes(12);
      const aad = text.encode("header");
      for (const size of [0, 1, 100, 16384 + 1]) {
        const msg = p.randomBytes(size);
        const sealed = aead.seal(nonce, aad, msg);
        assert.equal(sealed.length, size + 16);
        assert.deepEqual(aead.open(nonce, aad, sealed), msg);
        const badTag = sealed.slice();
        badTag[badTag.length - 1]! ^= 0x80;
        assert.equal(aead.open(nonce, aad, badTag), null, "tampered tag");
        if (size > 0) {
          const badBody = sealed.slice();
          badBody[0]! ^= 1;
          assert.equal(aead.open(nonce, aad, badBody), null, "tampered ciphertext");
        }
        assert.equal(aead.open(nonce, text.encode("headex"), sealed), null, "other aad");
        const otherNonce = nonce.slice();
        otherNonce[11]! ^= 1;
        assert.equal(aead.open(otherNonce, aad, sealed), null, "other nonce");
      }
      assert.equal(aead.open(nonce, aad, new Uint8Array(15)), null, "shorter than a tag");
      assert.equal(aead.open(nonce.subarray(1), aad, new Uint8Array(32)), null, "short nonce");
      assert.throws(() => aead.seal(nonce.subarray(1), aad, new Uint8Array(1)), CryptoError);
      assert.throws(() => p.createAead(algorithm, new Uint8Array(keyLength + 1)), CryptoError);
    });

    Deno.test(`${p.name}: ${algorithm} sealInto() is seal() of content and trailer, in place`, () => {
      const aead = p.createAead(algorithm, p.randomBytes(algorithm === "AES-128-GCM" ? 16 : 32));
      const nonce = p.randomBytes(12);
      const aad = text.encode("hdr");
      // Sizes around the default ChaCha20-Poly1305's switch from WebAssembly to native
      // (2,048 bytes) and the native provider's join of content and trailer (4,096 bytes).
      for (const size of [0, 1, 60, 2046, 2047, 2048, 4094, 4095, 4096, 16384]) {
        for (const trailer of [new Uint8Array(0), Uint8Array.of(22)]) {
          const content = p.randomBytes(size);
          const expected = aead.seal(nonce, aad, new Uint8Array([...content, ...trailer]));
          const out = new Uint8Array(7 + expected.length + 3).fill(0xee);
          aead.sealInto(nonce, aad, content, trailer, out, 7);
          assert.deepEqual(
            out.subarray(7, 7 + expected.length),
            expected,
            `${size}+${trailer.length}`,
          );
          assert.ok(out.subarray(0, 7).every((b) => b === 0xee), "bytes before the offset");
          assert.ok(out.subarray(7 + expected.length).every((b) => b === 0xee), "bytes after");
        }
      }
    });
  }

  Deno.test(`${p.name}: generatePrivateKey() and publicKeyOf() agree for each kind`, () => {
    for (const kind of ["P-256", "P-384", "ed25519"] as const) {
      const key = p.generatePrivateKey(kind);
      const pub = p.publicKeyOf(key);
      if (key.kind === "ec" && pub.kind === "ec") {
        assert.equal(key.curve, kind);
        assert.deepEqual(pub.point, key.publicKey);
      } else if (key.kind === "ed25519" && pub.kind === "ed25519") {
        assert.deepEqual(pub.key, key.publicKey);
      } else {
        assert.fail(`unexpected key kind for ${kind}`);
      }
    }
  });

  Deno.test(`${p.name}: randomBytes() returns fresh bytes of the requested length`, () => {
    assert.equal(p.randomBytes(0).length, 0);
    assert.equal(p.randomBytes(70000).length, 70000);
    assert.notDeepEqual(p.randomBytes(32), p.randomBytes(32));
  });
}

Deno.test("generatePrivateKey() makes a working rsa2048 key with e = 65537", () => {
  assert.equal(rsaKey.kind, "rsa");
  if (rsaKey.kind !== "rsa") return;
  assert.equal(rsaKey.e, 65537n);
  assert.equal(rsaKey.p * rsaKey.q, rsaKey.n);
  assert.equal(rsaKey.n.toString(2).length, 2048);
});

Deno.test("noble and native providers interoperate on signatures", () => {
  const msg = text.encode("cross-provider");
  const keys: PrivateKey[] = [
    nobleProvider.generatePrivateKey("P-256"),
    nativeProvider.generatePrivateKey("P-384"),
    nobleProvider.generatePrivateKey("ed25519"),
    rsaKey,
  ];
  for (const key of keys) {
    const algorithms = key.kind === "ec"
      ? [{ kind: "ecdsa", hash: "SHA-384" } as const]
      : key.kind === "ed25519"
      ? [{ kind: "ed25519" } as const]
      : [
        { kind: "rsa-pss", hash: "SHA-256" } as const,
        { kind: "rsa-pkcs1", hash: "SHA-512" } as const,
      ];
    for (const algorithm of algorithms) {
      for (
        const [signer, verifier] of [[nobleProvider, nativeProvider], [
          nativeProvider,
          nobleProvider,
        ]]
      ) {
        const sig = signer!.sign(key, algorithm, msg);
        assert.ok(verifier!.verify(verifier!.publicKeyOf(key), algorithm, msg, sig));
      }
    }
  }
  // PKCS#1 v1.5 is deterministic: both providers produce the same bytes.
  assert.deepEqual(
    nobleProvider.sign(rsaKey, { kind: "rsa-pkcs1", hash: "SHA-256" }, msg),
    nativeProvider.sign(rsaKey, { kind: "rsa-pkcs1", hash: "SHA-256" }, msg),
  );
});

Deno.test("RSA-PSS interoperates for moduli whose bit length is not a multiple of 8", () => {
  const msg = text.encode("emBits edge");
  for (const bits of [1535, 1536, 1537, 1543]) {
    const { privateKey } = generateKeyPairSync("rsa", { modulusLength: bits });
    const jwk = privateKey.export({ format: "jwk" });
    const b = (v: string | undefined): bigint => {
      assert.ok(v !== undefined);
      return BigInt("0x" + toHex(new Uint8Array(Buffer.from(v, "base64url"))));
    };
    const key: PrivateKey = {
      kind: "rsa",
      n: b(jwk.n),
      e: b(jwk.e),
      d: b(jwk.d),
      p: b(jwk.p),
      q: b(jwk.q),
      dp: b(jwk.dp),
      dq: b(jwk.dq),
      qi: b(jwk.qi),
    };
    for (const hash of HASHES) {
      for (
        const [signer, verifier] of [[nobleProvider, nativeProvider], [
          nativeProvider,
          nobleProvider,
        ]] as const
      ) {
        const sig = signer.sign(key, { kind: "rsa-pss", hash }, msg);
        assert.ok(
          verifier.verify(verifier.publicKeyOf(key), { kind: "rsa-pss", hash }, msg, sig),
          `${bits} ${hash}`,
        );
      }
    }
  }
});

Deno.test("noble and native providers interoperate on key shares and AEADs", () => {
  for (const group of GROUPS) {
    const a = nobleProvider.generateKeyShare(group);
    const b = nativeProvider.generateKeyShare(group);
    assert.deepEqual(a.computeSecret(b.publicKey), b.computeSecret(a.publicKey));
  }
  for (const algorithm of AEADS) {
    const key = nobleProvider.randomBytes(algorithm === "AES-128-GCM" ? 16 : 32);
    const nonce = nobleProvider.randomBytes(12);
    const msg = nobleProvider.randomBytes(1000);
    const sealed = nobleProvider.createAead(algorithm, key).seal(nonce, msg.subarray(0, 5), msg);
    assert.deepEqual(
      nativeProvider.createAead(algorithm, key).seal(nonce, msg.subarray(0, 5), msg),
      sealed,
    );
    assert.deepEqual(
      nativeProvider.createAead(algorithm, key).open(nonce, msg.subarray(0, 5), sealed),
      msg,
    );
  }
});

Deno.test("CryptoError has its name set", () => {
  const e = new CryptoError("Invalid thing");
  assert.equal(e.name, "CryptoError");
  assert.ok(e instanceof Error);
});

/** Replaces s by n - s in a DER ECDSA signature (the other valid signature for the same r). */
function flipS(der: Uint8Array, curve: EcCurve): Uint8Array {
  let offset = der[1]! & 0x80 ? 3 : 2;
  const readInt = (): bigint => {
    assert.equal(der[offset], 0x02);
    const len = der[offset + 1]!;
    const value = BigInt("0x" + toHex(der.subarray(offset + 2, offset + 2 + len)));
    offset += 2 + len;
    return value;
  };
  const r = readInt();
  const s = readInt();
  const encode = (v: bigint): number[] => {
    let h = v.toString(16);
    if (h.length % 2) h = "0" + h;
    const bytes = Array.from(hex(h));
    if (bytes[0]! & 0x80) bytes.unshift(0);
    return [0x02, bytes.length, ...bytes];
  };
  const body = [...encode(r), ...encode(CURVE_ORDER[curve] - s)];
  const len = body.length < 128 ? [body.length] : [0x81, body.length];
  return new Uint8Array([0x30, ...len, ...body]);
}

Deno.test("the short-input HMAC-SHA-256 matches @noble/hashes on every size up to its limit", async () => {
  const { hmac } = await import("@noble/hashes/hmac.js");
  const { sha256 } = await import("@noble/hashes/sha2.js");
  const { hmacSha256, hmacSha256Script, MAX_INPUT } = await import(
    "../../../protocol/crypto/_hmac_sha256.ts"
  );
  for (let size = 0; size <= MAX_INPUT; size += size < 200 ? 1 : 37) {
    const key = nobleProvider.randomBytes(size % 65);
    const data = nobleProvider.randomBytes(size);
    const cut = size >> 1;
    const expected = hmac(sha256, key, data);
    const label = `key ${key.length} bytes, data ${size} bytes`;
    assert.deepEqual(hmacSha256(key, [data.subarray(0, cut), data.subarray(cut)]), expected, label);
    // The JavaScript fallback, for a runtime without WebAssembly.
    assert.deepEqual(
      hmacSha256Script(key, [data.subarray(0, cut), data.subarray(cut)], size),
      expected,
      `${label}, in JavaScript`,
    );
  }
  // The last size too (the sweep's step does not land on it).
  const key = nobleProvider.randomBytes(64);
  const data = nobleProvider.randomBytes(MAX_INPUT);
  assert.deepEqual(hmacSha256(key, [data]), hmac(sha256, key, data));
  assert.throws(() => hmacSha256(new Uint8Array(65), []), RangeError);
  assert.throws(() => hmacSha256(new Uint8Array(32), [new Uint8Array(MAX_INPUT + 1)]), RangeError);
});

Deno.test("the short-input HMAC-SHA-384 matches @noble/hashes on every size up to its limits", async () => {
  const { hmac } = await import("@noble/hashes/hmac.js");
  const { sha384 } = await import("@noble/hashes/sha2.js");
  const { hmacSha384Short, MAX_INPUT, MAX_KEY } = await import(
    "../../../protocol/crypto/_hmac_sha384.ts"
  );
  // Every message length around the one- and two-block tails (111/112 bytes: where the padding
  // and the 16-byte length field stop fitting in the last block), keys of every length up to a
  // block, and more key slots than the core keeps (four): evicted keys come back right.
  const keys = Array.from(
    { length: 6 },
    (_, i) => nobleProvider.randomBytes([0, 1, 47, 48, 127, 128][i]!),
  );
  for (let size = 0; size <= MAX_INPUT; size += size < 300 ? 1 : 41) {
    const key = keys[size % keys.length]!;
    const data = nobleProvider.randomBytes(size);
    const cut = size >> 1;
    assert.deepEqual(
      hmacSha384Short(key, [data.subarray(0, cut), data.subarray(cut)]),
      hmac(sha384, key, data),
      `key ${key.length} bytes, data ${size} bytes`,
    );
  }
  const key = nobleProvider.randomBytes(MAX_KEY);
  const data = nobleProvider.randomBytes(MAX_INPUT);
  assert.deepEqual(hmacSha384Short(key, [data]), hmac(sha384, key, data));
  assert.throws(() => hmacSha384Short(new Uint8Array(MAX_KEY + 1), []), RangeError);
  assert.throws(() => hmacSha384Short(key, [new Uint8Array(MAX_INPUT + 1)]), RangeError);
  // The provider's HMAC and HKDF go through it, and fall back beyond its limits.
  for (const n of [48, MAX_INPUT, MAX_INPUT + 1]) {
    const long = nobleProvider.randomBytes(n);
    assert.deepEqual(nobleProvider.hmac("SHA-384", key, long), hmac(sha384, key, long), `${n}`);
  }
  const big = nobleProvider.randomBytes(MAX_KEY + 1);
  assert.deepEqual(nobleProvider.hmac("SHA-384", big, data), hmac(sha384, big, data));
});

Deno.test("the short-input SHA-256 matches @noble/hashes on every size up to its limit", async () => {
  const { sha256 } = await import("@noble/hashes/sha2.js");
  const { sha256Short, MAX_INPUT } = await import("../../../protocol/crypto/_hmac_sha256.ts");
  for (let size = 0; size <= MAX_INPUT; size += size < 200 ? 1 : 37) {
    const data = nobleProvider.randomBytes(size);
    assert.deepEqual(new Uint8Array(sha256Short(data)), sha256(data), `${size} bytes`);
  }
  assert.throws(() => sha256Short(new Uint8Array(MAX_INPUT + 1)), RangeError);
});

Deno.test("the running SHA-256 matches @noble/hashes however the input is split", async () => {
  const { sha256 } = await import("@noble/hashes/sha2.js");
  const { Sha256Context } = await import("../../../protocol/crypto/_hmac_sha256.ts");
  for (let size = 0; size <= 300; size++) {
    const data = nobleProvider.randomBytes(size);
    for (const pieces of [1, 2, 3, 7]) {
      const ctx = new Sha256Context();
      let at = 0;
      for (let i = 1; i <= pieces; i++) {
        const next = Math.floor((size * i) / pieces) - (i === 1 ? 0 : (size % 5));
        const end = Math.min(size, Math.max(at, i === pieces ? size : next));
        ctx.update(data.subarray(at, end));
        at = end;
      }
      assert.deepEqual(ctx.digest(), sha256(data), `${size} bytes in ${pieces} pieces`);
    }
  }
});

Deno.test("a running SHA-256 digest or clone leaves the context running", async () => {
  const { sha256 } = await import("@noble/hashes/sha2.js");
  const { Sha256Context } = await import("../../../protocol/crypto/_hmac_sha256.ts");
  const messages = [300, 90, 6, 700, 80, 36, 36].map((n) => nobleProvider.randomBytes(n));
  const ctx = new Sha256Context();
  let so = new Uint8Array(0);
  for (const m of messages) {
    const before = ctx.clone();
    ctx.update(m);
    so = new Uint8Array([...so, ...m]);
    assert.deepEqual(ctx.digest(), sha256(so));
    assert.deepEqual(ctx.digest(), sha256(so), "a second digest is the same");
    // The clone taken before this message still hashes without it, and goes its own way.
    assert.deepEqual(before.digest(), sha256(so.subarray(0, so.length - m.length)));
    before.update(Uint8Array.of(1));
    assert.deepEqual(ctx.digest(), sha256(so), "updating the clone leaves the original");
  }
});

Deno.test("the running SHA-256 encodes lengths of 2^32 bits and more", async () => {
  const { createHash } = await import("node:crypto");
  const { Sha256Context } = await import("../../../protocol/crypto/_hmac_sha256.ts");
  // 2^29 bytes and a few more: the 64-bit bit count's high word is 1. The piece is not a
  // multiple of 64 bytes, so updates also go through the pending block.
  const piece = nobleProvider.randomBytes(4 * 1024 * 1024 + 3);
  const count = Math.ceil(2 ** 29 / piece.length);
  const ours = new Sha256Context();
  const theirs = createHash("sha256");
  for (let i = 0; i < count; i++) {
    ours.update(piece);
    theirs.update(piece);
  }
  assert.deepEqual(ours.digest(), new Uint8Array(theirs.digest()));
});

Deno.test("the short-input HMAC-SHA-256 reuses a key's pad states only for the same key bytes", async () => {
  const { hmac } = await import("@noble/hashes/hmac.js");
  const { sha256 } = await import("@noble/hashes/sha2.js");
  const { hmacSha256 } = await import("../../../protocol/crypto/_hmac_sha256.ts");
  const check = (key: Uint8Array, label: string) => {
    const data = nobleProvider.randomBytes(40);
    assert.deepEqual(hmacSha256(key, [data]), hmac(sha256, key, data), label);
  };
  const a = nobleProvider.randomBytes(32);
  check(a, "a");
  check(a, "a again (cached)");
  // The same object with other bytes, one byte changed, then a prefix and an extension of it.
  a[31]! ^= 1;
  check(a, "a changed in place");
  check(a.subarray(0, 31), "a's first 31 bytes");
  check(Uint8Array.of(...a, 0), "a and a zero byte");
  // More keys in turn than the cache holds, twice round, and keys of every length.
  const keys = Array.from({ length: 7 }, () => nobleProvider.randomBytes(32));
  for (let round = 0; round < 2; round++) {
    for (const [i, key] of keys.entries()) check(key, `key ${i}, round ${round}`);
  }
  for (let n = 0; n <= 64; n++) {
    const key = nobleProvider.randomBytes(n);
    check(key, `length ${n}`);
    check(key, `length ${n} again`);
  }
});

Deno.test("short-input HMAC results share slabs but never overlap or change", async () => {
  const { hmac } = await import("@noble/hashes/hmac.js");
  const { sha256 } = await import("@noble/hashes/sha2.js");
  const { hmacSha256 } = await import("../../../protocol/crypto/_hmac_sha256.ts");
  // Enough results to cross several slabs; all kept alive, as a connection keeps its secrets.
  const keys = Array.from({ length: 40 }, (_, i) => nobleProvider.randomBytes(32 + (i % 3)));
  const results = keys.map((key, i) => hmacSha256(key, [Uint8Array.of(i)]));
  for (const [i, r] of results.entries()) {
    assert.equal(r.length, 32);
    assert.deepEqual(new Uint8Array(r), hmac(sha256, keys[i]!, Uint8Array.of(i)), `result ${i}`);
  }
  // Wiping one result (as callers do with key material) leaves every other one intact.
  results[9]!.fill(0);
  for (const [i, r] of results.entries()) {
    if (i === 9) continue;
    assert.deepEqual(
      new Uint8Array(r),
      hmac(sha256, keys[i]!, Uint8Array.of(i)),
      `after wipe ${i}`,
    );
  }
});

Deno.test("P-256 signatures with the fast RFC 6979 nonce are the deterministic ones of @noble/curves", async () => {
  const { p256 } = await import("@noble/curves/nist.js");
  const { sha256 } = await import("@noble/hashes/sha2.js");
  const key = nobleProvider.generatePrivateKey("P-256");
  assert.equal(key.kind, "ec");
  if (key.kind !== "ec") return;
  for (let i = 0; i < 8; i++) {
    const message = nobleProvider.randomBytes(130 + i);
    const ours = defaultProvider.sign(key, { kind: "ecdsa", hash: "SHA-256" }, message);
    const reference = p256.sign(sha256(message), key.d, { prehash: false, format: "der" });
    assert.deepEqual(ours, reference);
  }
});

Deno.test("default ChaCha20-Poly1305 (WebAssembly up to 2 KiB) seals and opens as node:crypto does", () => {
  const rand = (n: number) => nativeProvider.randomBytes(n);
  for (let round = 0; round < 6; round++) {
    const key = rand(32);
    const fast = defaultProvider.createAead("CHACHA20-POLY1305", key);
    const reference = nativeProvider.createAead("CHACHA20-POLY1305", key);
    const sizes = [0, 1, 15, 16, 17, 63, 64, 65, 127, 128, 129, 1300, 2047, 2048, 2049, 3000];
    for (let i = 0; i < 8; i++) sizes.push(Math.floor(Math.random() * 2100));
    for (const size of sizes) {
      for (const aadLength of [0, 5, 13, 255, 256, 257]) {
        const nonce = rand(12), aad = rand(aadLength), message = rand(size);
        const sealed = fast.seal(nonce, aad, message);
        assert.deepEqual(sealed, reference.seal(nonce, aad, message), `seal ${size}/${aadLength}`);
        assert.deepEqual(fast.open(nonce, aad, sealed), message, `open ${size}/${aadLength}`);
        // Any flipped bit of the ciphertext, the tag, the nonce or the data is refused.
        const at = Math.floor(Math.random() * sealed.length);
        const bad = sealed.slice();
        bad[at]! ^= 1 << (round % 8);
        assert.equal(fast.open(nonce, aad, bad), null, `tampered byte ${at} of ${size}`);
        const otherNonce = nonce.slice();
        otherNonce[size % 12]! ^= 0x80;
        assert.equal(fast.open(otherNonce, aad, sealed), null, `other nonce ${size}`);
        if (aadLength > 0) {
          const otherAad = aad.slice();
          otherAad[aadLength - 1]! ^= 1;
          assert.equal(fast.open(nonce, otherAad, sealed), null, `other aad ${size}`);
        }
        // The same key still works after a refusal (no state left behind).
        assert.deepEqual(fast.open(nonce, aad, sealed), message, `reopen ${size}`);
      }
    }
  }
});
