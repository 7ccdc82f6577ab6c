/** Shared helpers for the TLS engine tests. */
import type { Aead, AeadAlgorithm, CryptoProvider } from "../../../protocol/crypto/provider.ts";
import { TlsAlert } from "../../../protocol/tls/alert.ts";

/** The alert `fn` raises, or "none" when it returns; anything but a TlsAlert is rethrown. */
export function alertOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof TlsAlert) return e.alert;
    throw e;
  }
  return "none";
}

export function hex(s: string): Uint8Array {
  const clean = s.replace(/[^0-9a-fA-F]/g, "");
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function toHex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** A tiny deterministic PRNG (xorshift32) for reproducible fuzzing. */
export function prng(seed: number): (n: number) => Uint8Array {
  let s = seed >>> 0 || 1;
  return (n: number) => {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      s ^= s << 13;
      s >>>= 0;
      s ^= s >>> 17;
      s ^= s << 5;
      s >>>= 0;
      out[i] = s & 0xff;
    }
    return out;
  };
}

/** A provider whose AEADs throw on the next seal while `failures.left` is above zero. */
export function failingProvider(
  provider: CryptoProvider,
  failures: { left: number },
): CryptoProvider {
  // The provider's own methods stay reachable through the prototype (a class's methods are
  // not own properties, so a spread would lose them).
  const wrapped: CryptoProvider = Object.create(provider);
  return Object.assign(wrapped, {
    createAead(algorithm: AeadAlgorithm, key: Uint8Array): Aead {
      const inner = provider.createAead(algorithm, key);
      const fail = () => {
        if (failures.left > 0) {
          failures.left--;
          throw new Error("AEAD failure");
        }
      };
      return {
        keyLength: inner.keyLength,
        nonceLength: inner.nonceLength,
        tagLength: inner.tagLength,
        seal(...args: Parameters<typeof inner.seal>) {
          fail();
          return inner.seal(...args);
        },
        sealInto(...args: Parameters<typeof inner.sealInto>) {
          fail();
          inner.sealInto(...args);
        },
        open: (...args: Parameters<typeof inner.open>) => inner.open(...args),
      };
    },
  });
}
