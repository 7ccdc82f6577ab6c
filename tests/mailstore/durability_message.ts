/**
 * The deterministic message number `n` of the durability test: sizes 200 B to ~20 KB, and
 * every tenth one over 4 MiB (written by the store's blob writer when handed over).
 */
export function durabilityMessage(n: number): Uint8Array {
  const head = `Subject: durability ${n}\r\nMessage-ID: <${n}@durability.test>\r\n\r\n`;
  const bodyLength = n % 10 === 5 ? 4 * 1024 * 1024 + n : 100 + ((n * 7919) % 20_000);
  const bytes = new Uint8Array(head.length + bodyLength);
  bytes.set(new TextEncoder().encode(head));
  let x = n >>> 0 || 1;
  for (let i = head.length; i < bytes.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    bytes[i] = x & 0xff;
  }
  return bytes;
}
