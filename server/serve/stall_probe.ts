/**
 * A benchmark-only timer-drift probe: a 5 ms timer measures how late the event loop runs it,
 * and every 500 ms the worst lateness of that window is appended to a file as one JSON line
 * (`{"at": epochMs, "worstMs": n, "rss": bytes, "heapUsed": bytes}`). `postern serve` starts it when the environment variable
 * `POSTERN_STALL_PROBE` names the file; otherwise nothing runs.
 */

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
  let windowStart = last;
  const encoder = new TextEncoder();
  const timer = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last - TICK_MS);
    last = now;
    if (now - windowStart >= REPORT_MS) {
      const { rss, heapUsed } = Deno.memoryUsage();
      const line = JSON.stringify({
        at: Date.now(),
        worstMs: Math.round(worst * 10) / 10,
        rss,
        heapUsed,
      });
      Deno.writeFileSync(path, encoder.encode(line + "\n"), { append: true });
      worst = 0;
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
