/**
 * Where password hashing runs (issue 12): scrypt (r=8, p=1) by three means, 16 checks each with
 * one per core at a time (as the server's check queue runs them), printing checks per second
 * and the worst event-loop stall seen by a 1 ms timer.
 *
 * - noble `scryptAsync`: pure JavaScript on the event loop, yielding every 10 ms;
 * - a pool of Workers (one per core), each running node:crypto `scryptSync`;
 * - node:crypto `scrypt` with a callback: native code on the runtime's thread pool (chosen for
 *   mailstore/password.ts: as fast as the Workers, with no worker file to ship).
 *
 *     deno run -A bench/scrypt_bench.ts [--ln 15] [--count 16]
 */
import { scrypt as nativeScrypt } from "node:crypto";
import { scryptAsync } from "@noble/hashes/scrypt.js";

export interface ScryptFigure {
  readonly name: string;
  readonly perSecond: number;
  readonly worstStallMs: number;
}

const OPTIONS = (ln: number) => ({ N: 2 ** ln, r: 8, p: 1, maxmem: 256 * 1024 * 1024 });
const SALT = new Uint8Array(16);

/**
 * Runs `count` checks with at most `parallel` at once (as the server's check queue does) while
 * a 1 ms timer measures how late the event loop gets to it.
 */
async function measure(
  name: string,
  count: number,
  parallel: number,
  one: () => Promise<unknown>,
): Promise<ScryptFigure> {
  let worst = 0;
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last - 1);
    last = now;
  }, 1);
  const start = performance.now();
  let left = count;
  const lane = async () => {
    while (left > 0) {
      left--;
      await one();
    }
  };
  await Promise.all(Array.from({ length: parallel }, lane));
  const seconds = (performance.now() - start) / 1000;
  clearInterval(timer);
  return { name, perSecond: count / seconds, worstStallMs: worst };
}

/** Runs the three variants at cost `ln`. */
export async function benchScrypt(ln: number, count: number): Promise<ScryptFigure[]> {
  const cores = Math.max(1, navigator.hardwareConcurrency || 1);
  const workers = Array.from(
    { length: cores },
    () => new Worker(new URL("./_scrypt_worker.ts", import.meta.url), { type: "module" }),
  );
  const idle = [...workers];
  const waiting: (() => void)[] = [];
  const pending = new Map<number, () => void>();
  let nextId = 0;
  for (const w of workers) {
    w.onmessage = (e: MessageEvent<{ id: number }>) => pending.get(e.data.id)?.();
  }
  const viaWorker = async () => {
    while (idle.length === 0) await new Promise<void>((r) => waiting.push(r));
    const worker = idle.pop()!;
    const id = nextId++;
    await new Promise<void>((resolve) => {
      pending.set(id, resolve);
      worker.postMessage({ id, ln });
    });
    pending.delete(id);
    idle.push(worker);
    waiting.shift()?.();
  };
  try {
    await viaWorker(); // Start-up of the workers is not part of the figure.
    return [
      await measure(
        "noble scryptAsync (event loop)",
        count,
        cores,
        () => scryptAsync("password", SALT, { ...OPTIONS(ln), dkLen: 32 }),
      ),
      await measure(`Workers x${cores}, node:crypto scryptSync`, count, cores, viaWorker),
      await measure(
        "node:crypto scrypt (thread pool)",
        count,
        cores,
        () =>
          new Promise((resolve, reject) =>
            nativeScrypt("password", SALT, 32, OPTIONS(ln), (e, k) => e ? reject(e) : resolve(k))
          ),
      ),
    ];
  } finally {
    for (const w of workers) w.terminate();
  }
}

export function formatScrypt(ln: number, figures: readonly ScryptFigure[]): string {
  const out = [
    `scrypt ln=${ln}, r=8, p=1 ${"checks/s".padStart(20)} ${"worst stall".padStart(12)}`,
  ];
  for (const f of figures) {
    out.push(
      `${f.name.padEnd(40)} ${f.perSecond.toFixed(1).padStart(8)} ${
        `${f.worstStallMs.toFixed(1)} ms`.padStart(12)
      }`,
    );
  }
  return out.join("\n");
}

if (import.meta.main) {
  const at = (name: string) => Deno.args.indexOf(name);
  const ln = at("--ln") >= 0 ? Number(Deno.args[at("--ln") + 1]) : 15;
  const count = at("--count") >= 0 ? Number(Deno.args[at("--count") + 1]) : 16;
  console.log(formatScrypt(ln, await benchScrypt(ln, count)));
}
