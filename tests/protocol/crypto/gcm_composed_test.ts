/**
 * The native provider's AES-GCM for large records (protocol/crypto/_gcm_composed.ts: an ECB
 * keystream and a GMAC with a length fix-up) against noble's AES-GCM, an independent
 * implementation: every size on both sides of the switch (4 KiB) and of the limits (64 KiB of
 * text, 256 bytes of additional data), sealed whole and into a record buffer with a trailer,
 * opened, and refused after any change to the ciphertext, tag, additional data or nonce.
 */
import assert from "node:assert/strict";
import { nativeProvider } from "../../../protocol/crypto/native.ts";
import { nobleProvider } from "../../../protocol/crypto/noble.ts";
import {
  composedGcmFits,
  composedGcmOpen,
  composedGcmSealInto,
} from "../../../protocol/crypto/_gcm_composed.ts";

const TEXT_SIZES = [0, 1, 15, 16, 17, 1300, 4095, 4096, 4097, 16385, 16401, 65536, 65537];
const AAD_SIZES = [0, 5, 13, 16, 17, 256, 257];

function random(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let at = 0; at < n; at += 65536) crypto.getRandomValues(out.subarray(at, at + 65536));
  return out;
}

for (const algorithm of ["AES-128-GCM", "AES-256-GCM"] as const) {
  Deno.test(`native ${algorithm}: every size seals and opens as noble's does`, () => {
    const key = random(algorithm === "AES-128-GCM" ? 16 : 32);
    const ours = nativeProvider.createAead(algorithm, key);
    const reference = nobleProvider.createAead(algorithm, key);
    for (const size of TEXT_SIZES) {
      for (const aadSize of AAD_SIZES) {
        const nonce = random(12), aad = random(aadSize), text = random(size);
        const expected = reference.seal(nonce, aad, text);
        assert.deepEqual(ours.seal(nonce, aad, text), expected, `seal ${size}/${aadSize}`);
        // Into a record buffer at an odd offset, the last byte as the trailer (TLS 1.3's type).
        const split = Math.max(0, size - 1);
        const out = new Uint8Array(size + 16 + 7).fill(0xaa);
        ours.sealInto(nonce, aad, text.subarray(0, split), text.subarray(split), out, 3);
        assert.deepEqual(out.subarray(3, 3 + size + 16), expected, `sealInto ${size}/${aadSize}`);
        assert.ok(out.subarray(0, 3).every((b) => b === 0xaa), "bytes before untouched");
        assert.ok(out.subarray(3 + size + 16).every((b) => b === 0xaa), "bytes after untouched");
        assert.deepEqual(ours.open(nonce, aad, expected), text, `open ${size}/${aadSize}`);
      }
    }
  });

  Deno.test(`native ${algorithm}: a large record changed anywhere is refused`, () => {
    const key = random(algorithm === "AES-128-GCM" ? 16 : 32);
    const aead = nativeProvider.createAead(algorithm, key);
    for (const size of [4096, 4100, 16401]) {
      const nonce = random(12), aad = random(5), text = random(size);
      const sealed = aead.seal(nonce, aad, text);
      for (const at of [0, 1, size >> 1, size - 1, size, size + 15]) {
        const changed = sealed.slice();
        changed[at]! ^= 0x01;
        assert.equal(aead.open(nonce, aad, changed), null, `byte ${at} of ${size}`);
      }
      const otherAad = aad.slice();
      otherAad[4]! ^= 0x80;
      assert.equal(aead.open(nonce, otherAad, sealed), null, "additional data");
      assert.equal(aead.open(nonce, new Uint8Array(6), sealed), null, "additional data length");
      const otherNonce = nonce.slice();
      otherNonce[11]! ^= 0x01;
      assert.equal(aead.open(otherNonce, aad, sealed), null, "nonce");
      assert.equal(aead.open(nonce, aad, sealed.subarray(0, sealed.length - 1)), null, "cut");
      assert.deepEqual(aead.open(nonce, aad, sealed), text);
    }
  });
}

Deno.test("composed AES-GCM: the tag's length fix-up holds for every short length pair", () => {
  // Every text length 0-80 with every additional-data length 0-40: the lengths block is the only
  // part of the tag the fix-up changes.
  const key = random(16);
  const reference = nobleProvider.createAead("AES-128-GCM", key);
  const nonce = random(12);
  for (let size = 0; size <= 80; size++) {
    for (let aadSize = 0; aadSize <= 40; aadSize++) {
      const aad = random(aadSize), text = random(size);
      const out = new Uint8Array(size + 16);
      composedGcmSealInto(key, key, nonce, aad, text, new Uint8Array(0), out, 0);
      assert.deepEqual(out, reference.seal(nonce, aad, text), `${size}/${aadSize}`);
    }
  }
});

Deno.test("composed AES-GCM: refuses keys other than AES-128 and AES-256, nonces other than 12 bytes", () => {
  const none = new Uint8Array(0);
  const out = new Uint8Array(4096 + 16);
  assert.throws(
    () => composedGcmSealInto({}, random(24), random(12), none, random(4096), none, out, 0),
    RangeError,
  );
  assert.throws(
    () => composedGcmSealInto({}, random(16), random(8), none, random(4096), none, out, 0),
    RangeError,
  );
  const key = random(16);
  composedGcmSealInto(key, key, new Uint8Array(12).fill(1), none, random(4096), none, out, 0);
  assert.equal(composedGcmOpen(key, key, new Uint8Array(16).fill(1), none, out), null);
  assert.equal(
    composedGcmOpen(key, key, new Uint8Array(12).fill(1), none, out.subarray(0, 15)),
    null,
  );
  assert.ok(composedGcmOpen(key, key, new Uint8Array(12).fill(1), none, out) !== null);
  assert.equal(composedGcmFits(256, 65536), true);
  assert.equal(composedGcmFits(257, 100), false);
  assert.equal(composedGcmFits(0, 65537), false);
});

Deno.test("native AES-GCM: many keys taking turns with large records keep their own ciphers", () => {
  // More record keys than the composed path keeps ECB ciphers for, in an order that evicts and
  // brings back each: every record must still be sealed and opened under its own key.
  const keys = Array.from({ length: 7 }, (_, i) => random(i % 2 === 0 ? 16 : 32));
  const ours = keys.map((k) =>
    nativeProvider.createAead(k.length === 16 ? "AES-128-GCM" : "AES-256-GCM", k)
  );
  const reference = keys.map((k) =>
    nobleProvider.createAead(k.length === 16 ? "AES-128-GCM" : "AES-256-GCM", k)
  );
  for (const i of [0, 1, 2, 3, 4, 5, 6, 0, 6, 1, 5, 2, 4, 3, 3, 0, 0, 6]) {
    const nonce = random(12), aad = random(5), text = random(16401);
    const sealed = ours[i]!.seal(nonce, aad, text);
    assert.deepEqual(sealed, reference[i]!.seal(nonce, aad, text), `key ${i}`);
    assert.deepEqual(ours[i]!.open(nonce, aad, sealed), text);
    assert.equal(ours[(i + 1) % 7]!.open(nonce, aad, sealed), null, "another key refuses it");
  }
});
