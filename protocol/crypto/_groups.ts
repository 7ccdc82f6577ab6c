/**
 * The key exchange groups beyond x25519, P-256 and P-384: secp521r1 and x448 (RFC 8446,
 * Section 4.2.7; @noble/curves), and the finite-field groups ffdhe2048 and ffdhe3072 of
 * RFC 7919, through node:crypto's Diffie-Hellman or, for the pure provider, BigInt modular
 * exponentiation. Shared by both providers; each picks its backend for DH.
 */
import { x448 } from "@noble/curves/ed448.js";
import { p521 } from "@noble/curves/nist.js";
import { createDiffieHellman } from "node:crypto";
import { bigIntToBytes, bytesToBigInt, modPow } from "./_bigint.ts";
import type { KeyExchangeGroup, KeyShare } from "./provider.ts";
import { CryptoError } from "./provider.ts";

export type ExtraGroup = "secp521r1" | "x448" | "ffdhe2048" | "ffdhe3072";

export function isExtraGroup(group: KeyExchangeGroup): group is ExtraGroup {
  return group === "secp521r1" || group === "x448" || group === "ffdhe2048" ||
    group === "ffdhe3072";
}

/** The safe primes of RFC 7919, Appendix A.1 and A.2 (generator 2). */
const FFDHE_PRIME_HEX: Readonly<Record<"ffdhe2048" | "ffdhe3072", string>> = {
  ffdhe2048: "FFFFFFFFFFFFFFFFADF85458A2BB4A9AAFDC5620273D3CF1D8B9C583CE2D3695" +
    "A9E13641146433FBCC939DCE249B3EF97D2FE363630C75D8F681B202AEC4617A" +
    "D3DF1ED5D5FD65612433F51F5F066ED0856365553DED1AF3B557135E7F57C935" +
    "984F0C70E0E68B77E2A689DAF3EFE8721DF158A136ADE73530ACCA4F483A797A" +
    "BC0AB182B324FB61D108A94BB2C8E3FBB96ADAB760D7F4681D4F42A3DE394DF4" +
    "AE56EDE76372BB190B07A7C8EE0A6D709E02FCE1CDF7E2ECC03404CD28342F61" +
    "9172FE9CE98583FF8E4F1232EEF28183C3FE3B1B4C6FAD733BB5FCBC2EC22005" +
    "C58EF1837D1683B2C6F34A26C1B2EFFA886B423861285C97FFFFFFFFFFFFFFFF",
  ffdhe3072: "FFFFFFFFFFFFFFFFADF85458A2BB4A9AAFDC5620273D3CF1D8B9C583CE2D3695" +
    "A9E13641146433FBCC939DCE249B3EF97D2FE363630C75D8F681B202AEC4617A" +
    "D3DF1ED5D5FD65612433F51F5F066ED0856365553DED1AF3B557135E7F57C935" +
    "984F0C70E0E68B77E2A689DAF3EFE8721DF158A136ADE73530ACCA4F483A797A" +
    "BC0AB182B324FB61D108A94BB2C8E3FBB96ADAB760D7F4681D4F42A3DE394DF4" +
    "AE56EDE76372BB190B07A7C8EE0A6D709E02FCE1CDF7E2ECC03404CD28342F61" +
    "9172FE9CE98583FF8E4F1232EEF28183C3FE3B1B4C6FAD733BB5FCBC2EC22005" +
    "C58EF1837D1683B2C6F34A26C1B2EFFA886B4238611FCFDCDE355B3B6519035B" +
    "BC34F4DEF99C023861B46FC9D6E6C9077AD91D2691F7F7EE598CB0FAC186D91C" +
    "AEFE130985139270B4130C93BC437944F4FD4452E2D74DD364F2E21E71F54BFF" +
    "5CAE82AB9C9DF69EE86D2BC522363A0DABC521979B0DEADA1DBF9A42D5C4484E" +
    "0ABCD06BFA53DDEF3C1B20EE3FD59D7C25E41D2B66C62E37FFFFFFFFFFFFFFFF",
};

const FFDHE_PRIME = {
  ffdhe2048: BigInt("0x" + FFDHE_PRIME_HEX.ffdhe2048),
  ffdhe3072: BigInt("0x" + FFDHE_PRIME_HEX.ffdhe3072),
};

/** Public value length: the prime's size (RFC 8446, Section 4.2.8.1). */
export const FFDHE_BYTES = { ffdhe2048: 256, ffdhe3072: 384 } as const;

/**
 * Checks a peer's FFDHE public value: exactly the prime's length and 1 < y < p-1
 * (RFC 7919, Section 5.1; RFC 8446, Section 4.2.8.1). Returns it as a number.
 */
export function checkFfdheShare(group: "ffdhe2048" | "ffdhe3072", peer: Uint8Array): bigint {
  if (peer.length !== FFDHE_BYTES[group]) {
    throw new CryptoError(`Invalid ${group} key share: wrong length`);
  }
  const y = bytesToBigInt(peer);
  if (y <= 1n || y >= FFDHE_PRIME[group] - 1n) {
    throw new CryptoError(`Invalid ${group} key share: out of range`);
  }
  return y;
}

/** Throws on an all-zero shared secret (a small-order peer value). */
function checkNonZero(group: string, secret: Uint8Array): void {
  let acc = 0;
  for (let i = 0; i < secret.length; i++) acc |= secret[i]!;
  if (acc === 0) throw new CryptoError(`Invalid ${group} key share: all-zero shared secret`);
}

/**
 * A 320-bit private exponent: more than twice the security strength of either group (about
 * 103 and 125 bits; RFC 7919, Section 5.2), at a tenth of the cost of a full-size exponent,
 * which matters because a client can choose FFDHE for every handshake. Top bit set.
 */
function ffdheExponent(random: (n: number) => Uint8Array): Uint8Array {
  const x = random(40);
  x[0]! |= 0x80;
  return x;
}

/** FFDHE through node:crypto (OpenSSL underneath). */
function nativeFfdhe(
  group: "ffdhe2048" | "ffdhe3072",
  random: (n: number) => Uint8Array,
): KeyShare {
  const dh = createDiffieHellman(
    bigIntToBytes(FFDHE_PRIME[group], FFDHE_BYTES[group]),
    new Uint8Array([2]),
  );
  dh.setPrivateKey(ffdheExponent(random));
  const publicKey = pad(new Uint8Array(dh.generateKeys()), FFDHE_BYTES[group]);
  return {
    group,
    publicKey,
    computeSecret(peer: Uint8Array): Uint8Array {
      checkFfdheShare(group, peer);
      // RFC 8446, Section 7.4.1: the secret keeps its leading zeros (the prime's length).
      const secret = pad(new Uint8Array(dh.computeSecret(peer)), FFDHE_BYTES[group]);
      checkNonZero(group, secret);
      return secret;
    },
  };
}

/** FFDHE with BigInt arithmetic (the pure provider; slow, but dependency-free). */
function bigintFfdhe(
  group: "ffdhe2048" | "ffdhe3072",
  random: (n: number) => Uint8Array,
): KeyShare {
  const p = FFDHE_PRIME[group];
  const x = bytesToBigInt(ffdheExponent(random));
  const publicKey = bigIntToBytes(modPow(2n, x, p), FFDHE_BYTES[group]);
  return {
    group,
    publicKey,
    computeSecret(peer: Uint8Array): Uint8Array {
      const y = checkFfdheShare(group, peer);
      const secret = bigIntToBytes(modPow(y, x, p), FFDHE_BYTES[group]);
      checkNonZero(group, secret);
      return secret;
    },
  };
}

/** secp521r1 with noble: uncompressed points only; the secret is the x-coordinate. */
function p521Share(secretKey: Uint8Array): KeyShare {
  let publicKey: Uint8Array | undefined;
  return {
    group: "secp521r1",
    get publicKey(): Uint8Array {
      return publicKey ??= p521.getPublicKey(secretKey, false);
    },
    computeSecret(peer: Uint8Array): Uint8Array {
      if (peer.length !== 133 || peer[0] !== 0x04) {
        throw new CryptoError("Invalid secp521r1 key share: not an uncompressed point");
      }
      try {
        return p521.getSharedSecret(secretKey, peer, true).slice(1);
      } catch {
        throw new CryptoError("Invalid secp521r1 key share: not a point on the curve");
      }
    },
  };
}

/** X448 with noble (RFC 7748); an all-zero result is refused (RFC 8446, Section 7.4.2). */
function x448Share(secretKey: Uint8Array): KeyShare {
  const publicKey = x448.getPublicKey(secretKey);
  return {
    group: "x448",
    publicKey,
    computeSecret(peer: Uint8Array): Uint8Array {
      if (peer.length !== 56) throw new CryptoError("Invalid x448 key share: wrong length");
      let secret: Uint8Array;
      try {
        secret = x448.getSharedSecret(secretKey, peer);
      } catch {
        throw new CryptoError("Invalid x448 key share: all-zero shared secret");
      }
      checkNonZero("x448", secret);
      return secret;
    },
  };
}

/** A fresh key share of an extra group; with native, FFDHE runs in node:crypto. */
export function generateExtraShare(
  group: ExtraGroup,
  native: boolean,
  random: (n: number) => Uint8Array,
): KeyShare {
  switch (group) {
    case "secp521r1":
      return p521Share(p521.utils.randomSecretKey());
    case "x448":
      return x448Share(x448.utils.randomSecretKey());
    case "ffdhe2048":
    case "ffdhe3072":
      return native ? nativeFfdhe(group, random) : bigintFfdhe(group, random);
    default: {
      const never: never = group;
      throw new CryptoError(`Unsupported key exchange group: ${String(never)}`);
    }
  }
}

/**
 * A key share with a given private key (test vectors): the x448 scalar (56 bytes), or the
 * big-endian secp521r1 scalar. FFDHE has no fixed-key form here.
 */
export function extraShareFromPrivate(group: ExtraGroup, privateKey: Uint8Array): KeyShare {
  if (group === "x448") {
    if (privateKey.length !== 56) throw new CryptoError("Invalid x448 private key length");
    return x448Share(privateKey.slice());
  }
  if (group === "secp521r1") {
    const d = bytesToBigInt(privateKey);
    if (d === 0n || d >= p521.Point.Fn.ORDER) {
      throw new CryptoError("Invalid secp521r1 private key: out of range");
    }
    return p521Share(bigIntToBytes(d, 66));
  }
  throw new CryptoError(`No fixed-key form for ${group}`);
}

function pad(bytes: Uint8Array, length: number): Uint8Array {
  if (bytes.length === length) return bytes;
  const out = new Uint8Array(length);
  out.set(bytes, length - bytes.length);
  return out;
}
