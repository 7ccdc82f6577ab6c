/**
 * A benchmark-only timer-drift probe: a 5 ms timer measures how late the event loop runs it,
 * and every 500 ms the worst lateness of that window is appended to a file as one JSON line
 * (`{"at": epochMs, "worstMs": n, "rss": bytes, "heapUsed": bytes}`). `postern serve` starts it when the environment variable
 * `POSTERN_STALL_PROBE` names the file; otherwise nothing runs.
 *
 * On Linux each line also says how the worst tick's time was spent by the main thread
 * (`_schedstat.ts`: `/proc/thread-self/schedstat`, and the exact thread CPU clock where FFI is
 * allowed, as in the benches): `cpuMs` running, `waitMs` runnable but waiting for a core
 * (other processes had it). A stall that is mostly `waitMs` is the machine's load, not ours.
 * `busyMs` is the most CPU time the main thread spent within any one tick of the window, the
 * timer's own 5 ms included (a thread busy throughout spends them all); `busyAt` is when that
 * tick began (`performance.now()`, to match against `--trace-gc` times). `ownMs` is the worst
 * lateness of the window less the tick's wait for a core: how late the server's own work made
 * the timer, whatever the machine's load (a runnable thread that waits for a core has no say).
 */

import { schedstat } from "./_schedstat.ts";

const TICK_MS = 5;
const REPORT_MS = 500;

/** Starts the probe when `POSTERN_STALL_PROBE` is set; returns a function that stops it. */
export function startStallProbeFromEnv(): () => void {
  let path: string | undefined;
  try {
    path = Deno.env.get("POSTERN_STALL_PROBE");
  } catch {
    return () => {};
  }
  if (path === undefined || path === "") return () => {};
  return startStallProbe(path);
}

/** Starts the probe writing to `path`; returns a function that stops it. */
export function startStallProbe(path: string): () => void {
  let last = performance.now();
  let worst = 0;
  let worstCpu = 0;
  let worstWait = 0;
  let busy = 0;
  let busyAt = 0;
  let own = 0;
  let sched = schedstat();
  let windowStart = last;
  const encoder = new TextEncoder();
  const timer = setInterval(() => {
    const now = performance.now();
    const nextSched = schedstat();
    const late = now - last - TICK_MS;
    if (late > worst) {
      worst = late;
      worstCpu = sched && nextSched ? nextSched.cpuMs - sched.cpuMs : NaN;
      worstWait = sched && nextSched ? nextSched.waitMs - sched.waitMs : NaN;
    }
    if (sched && nextSched && nextSched.cpuMs - sched.cpuMs > busy) {
      busy = nextSched.cpuMs - sched.cpuMs;
      busyAt = last;
    }
    if (sched && nextSched) own = Math.max(own, late - (nextSched.waitMs - sched.waitMs));
    sched = nextSched;
    last = now;
    if (now - windowStart >= REPORT_MS) {
      const { rss, heapUsed } = Deno.memoryUsage();
      const line = JSON.stringify({
        at: Date.now(),
        worstMs: Math.round(worst * 10) / 10,
        cpuMs: Math.round(worstCpu * 10) / 10,
        waitMs: Math.round(worstWait * 10) / 10,
        busyMs: Math.round(busy * 10) / 10,
        busyAt: Math.round(busyAt),
        ownMs: Math.round(own * 10) / 10,
        rss,
        heapUsed,
      });
      Deno.writeFileSync(path, encoder.encode(line + "\n"), { append: true });
      worst = 0;
      worstCpu = 0;
      worstWait = 0;
      busy = 0;
      busyAt = 0;
      own = 0;
      windowStart = now;
    }
  }, TICK_MS);
  Deno.unrefTimer(timer);
  return () => clearInterval(timer);
}

/** The worst stall the probe file reports between two epoch times, in milliseconds. */
export function worstStall(path: string, fromMs: number, toMs: number): number {
  let text = "";
  try {
    text = Deno.readTextFileSync(path);
  } catch {
    return NaN;
  }
  let worst = 0;
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const { at, worstMs } = JSON.parse(line) as { at: number; worstMs: number };
    if (at >= fromMs && at <= toMs + REPORT_MS) worst = Math.max(worst, worstMs);
  }
  return worst;
}

/** The worst stall between two epoch times with how the main thread spent it (see above). */
export function worstStallDetail(
  path: string,
  fromMs: number,
  toMs: number,
): { worstMs: number; cpuMs: number; waitMs: number; busyMs: number; ownMs: number } {
  let text = "";
  try {
    text = Deno.readTextFileSync(path);
  } catch {
    return { worstMs: NaN, cpuMs: NaN, waitMs: NaN, busyMs: NaN, ownMs: NaN };
  }
  let worst = { worstMs: 0, cpuMs: NaN, waitMs: NaN };
  let busyMs = 0;
  let ownMs = 0;
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const r = JSON.parse(line) as {
      at: number;
      worstMs: number;
      cpuMs?: number;
      waitMs?: number;
      busyMs?: number;
      ownMs?: number;
    };
    if (r.at < fromMs || r.at > toMs + REPORT_MS) continue;
    busyMs = Math.max(busyMs, r.busyMs ?? NaN);
    ownMs = Math.max(ownMs, r.ownMs ?? NaN);
    if (r.worstMs <= worst.worstMs) continue;
    worst = { worstMs: r.worstMs, cpuMs: r.cpuMs ?? NaN, waitMs: r.waitMs ?? NaN };
  }
  return { ...worst, busyMs, ownMs };
}

if (import.meta.main) {
  // A probe alone in its own process: how late an idle event loop runs on this machine now.
  startStallProbe(Deno.args[0]!);
  setInterval(() => {}, 60_000);
}

/** The last memory figures the probe file reports. */
export function lastMemory(path: string): { rss: number; heapUsed: number } | null {
  let text = "";
  try {
    text = Deno.readTextFileSync(path);
  } catch {
    return null;
  }
  const lines = text.trimEnd().split("\n");
  const last = lines[lines.length - 1];
  if (!last) return null;
  const { rss, heapUsed } = JSON.parse(last) as { rss: number; heapUsed: number };
  return { rss, heapUsed };
}
