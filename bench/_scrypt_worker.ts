/** Worker of bench/scrypt_bench.ts: derives one scrypt key per message with node:crypto. */
import { scryptSync } from "node:crypto";

interface Job {
  readonly id: number;
  readonly ln: number;
}

/** The worker's global scope, typed by hand: the checked libraries are those of the main thread. */
const scope = self as unknown as {
  onmessage: ((e: MessageEvent<Job>) => void) | null;
  postMessage(message: unknown): void;
};

scope.onmessage = (e: MessageEvent<Job>) => {
  const { id, ln } = e.data;
  const key = scryptSync("password", new Uint8Array(16), 32, {
    N: 2 ** ln,
    r: 8,
    p: 1,
    maxmem: 256 * 1024 * 1024,
  });
  scope.postMessage({ id, key: new Uint8Array(key) });
};
