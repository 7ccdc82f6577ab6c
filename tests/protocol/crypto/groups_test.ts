/**
 * The key exchange groups secp521r1, x448, ffdhe2048 and ffdhe3072 in every provider: RFC 7748
 * vectors for X448 (Wycheproof has no X448 or P-521 ECDH file in our copy), agreement across
 * providers, and refusal of malformed or small-order peer values.
 */
import assert from "node:assert/strict";
import { defaultProvider } from "../../../protocol/crypto/mod.ts";
import { nativeProvider } from "../../../protocol/crypto/native.ts";
import { nobleProvider } from "../../../protocol/crypto/noble.ts";
import {
  CryptoError,
  type CryptoProvider,
  type KeyExchangeGroup,
} from "../../../protocol/crypto/provider.ts";
import { FFDHE_BYTES } from "../../../protocol/crypto/_groups.ts";
import { hex, toHex } from "../tls/_helpers.ts";

const PROVIDERS: readonly CryptoProvider[] = [nobleProvider, nativeProvider, defaultProvider];
const GROUPS: readonly KeyExchangeGroup[] = ["secp521r1", "x448", "ffdhe2048", "ffdhe3072"];

Deno.test("X448 matches the RFC 7748 (Section 6.2) Diffie-Hellman vector in every provider", () => {
  const alice = hex(
    "9a8f4925d1519f5775cf46b04b5800d4ee9ee8bae8bc5565d498c28dd9c9baf574a9419744897391006382a6f127ab1d9ac2d8c0a598726b",
  );
  const bobPublic = hex(
    "3eb7a829b0cd20f5bcfc0b599b6feccf6da4627107bdb0d4f345b43027d8b972fc3e34fb4232a13ca706dcb57aec3dae07bdc1c67bf33609",
  );
  for (const p of PROVIDERS) {
    const share = p.keyShareFromPrivate("x448", alice);
    assert.equal(
      toHex(share.publicKey),
      "9b08f7cc31b7e3e67d22d5aea121074a273bd2b83de09c63faa73d2c22c5d9bbc836647241d953d40c5b12da88120d53177f80e532c41fa0",
      p.name,
    );
    assert.equal(
      toHex(share.computeSecret(bobPublic)),
      "07fff4181ac6cc95ec1c16a94a0f74d12da232ce40a77552281d282bb60c0b56fd2464c335543936521c24403085d59a449a5037514a879d",
      p.name,
    );
  }
});

Deno.test("every provider agrees with every other on each new group", () => {
  for (const group of GROUPS) {
    for (const a of PROVIDERS) {
      for (const b of [nobleProvider, nativeProvider]) {
        const x = a.generateKeyShare(group);
        const y = b.generateKeyShare(group);
        assert.deepEqual(x.computeSecret(y.publicKey), y.computeSecret(x.publicKey), group);
      }
    }
  }
});

Deno.test("key shares of the new groups have their wire lengths", () => {
  const lengths = { secp521r1: 133, x448: 56, ffdhe2048: 256, ffdhe3072: 384 } as const;
  for (const p of PROVIDERS) {
    for (const group of GROUPS) {
      const share = p.generateKeyShare(group);
      assert.equal(share.publicKey.length, lengths[group as keyof typeof lengths], group);
      if (group === "secp521r1") assert.equal(share.publicKey[0], 4);
    }
  }
});

Deno.test("FFDHE peer values outside 1 < y < p-1 or of the wrong length are refused", () => {
  for (const p of PROVIDERS) {
    for (const group of ["ffdhe2048", "ffdhe3072"] as const) {
      const n = FFDHE_BYTES[group];
      const share = p.generateKeyShare(group);
      const pMinus1 = share.publicKey.slice().fill(0xff);
      pMinus1[n - 1] = 0xfe; // p ends in ...FFFF, so p-1 ends in ...FFFE
      const bad: [string, Uint8Array][] = [
        ["zero", new Uint8Array(n)],
        ["one", Uint8Array.from({ length: n }, (_, i) => i === n - 1 ? 1 : 0)],
        ["p-1", pMinus1],
        ["all ones (above p)", new Uint8Array(n).fill(0xff)],
        ["short", new Uint8Array(n - 1).fill(2)],
        ["long", new Uint8Array(n + 1).fill(2)],
      ];
      for (const [what, y] of bad) {
        assert.throws(() => share.computeSecret(y), CryptoError, `${p.name} ${group} ${what}`);
      }
    }
  }
});

Deno.test("malformed x448 and secp521r1 shares are refused", () => {
  for (const p of PROVIDERS) {
    const x = p.generateKeyShare("x448");
    assert.throws(() => x.computeSecret(new Uint8Array(55).fill(5)), CryptoError);
    assert.throws(() => x.computeSecret(new Uint8Array(56)), CryptoError, "low-order point");
    const e = p.generateKeyShare("secp521r1");
    const compressed = e.publicKey.slice(0, 67);
    compressed[0] = 2;
    assert.throws(() => e.computeSecret(compressed), CryptoError, "compressed");
    const offCurve = e.publicKey.slice();
    offCurve[100]! ^= 1;
    assert.throws(() => e.computeSecret(offCurve), CryptoError, "off the curve");
  }
});
