/**
 * xorshift32 (Marsaglia): a small deterministic generator, so that a randomized test or
 * benchmark replays from its seed. Returns numbers in [0, 1).
 */
export function xorshift32(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x1_0000_0000;
  };
}
