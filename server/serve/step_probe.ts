/**
 * A benchmark-only probe of logged-in clients' steps as the server sees them: the TLS handshake
 * (from accept to its end) and each command (from the read that completed it, its wait at the
 * handshake gate included, to its reply handed to the socket), each with how long the main
 * thread waited for a core meanwhile (the gate's part of that not counted)
 * (`/proc/thread-self/schedstat`). The hostile bench sets it beside what its honest client
 * observes, to tell the server's own delays from the machine's and the client's. One JSON line
 * per step (`{"at": epochMs, "step": "SELECT", "ms": n, "waitMs": n}`) is appended to the file
 * that the environment variable `POSTERN_STEP_PROBE` names; otherwise nothing is measured.
 * Only steps of connections that logged in are written: in the bench, the honest client's.
 * Lines are written in batches, at most `FLUSH_MS` after they were recorded, so that the probe
 * adds no file write to each step it measures.
 */

import { schedstat } from "./_schedstat.ts";

/** When a step started: `performance.now()` and the main thread's wait for a core so far. */
export interface StepMark {
  readonly at: number;
  readonly waitMs: number;
}

export interface StepProbe {
  mark(): StepMark;
  /**
   * Appends `step`, measured from `since` to `until` (default now); `gateMs`: of that, how long
   * it waited at the handshake gate.
   */
  record(
    step: string,
    since: StepMark,
    until?: StepMark,
    gateMs?: number,
    extra?: Record<string, number>,
  ): void;
  /** Writes the lines recorded so far. */
  flush(): void;
}

/** The longest a recorded line waits before it is written. */
export const FLUSH_MS = 100;

/** The probe when `POSTERN_STEP_PROBE` names a file, else null (read once per thread). */
export const stepProbe: StepProbe | null = fromEnv();

function fromEnv(): StepProbe | null {
  let path: string | undefined;
  try {
    path = Deno.env.get("POSTERN_STEP_PROBE");
  } catch {
    return null;
  }
  return path ? fileStepProbe(path) : null;
}

/** A probe appending to `path`. */
export function fileStepProbe(path: string): StepProbe {
  const encoder = new TextEncoder();
  const mark = (): StepMark => ({ at: performance.now(), waitMs: waitedMs() });
  let pending = "";
  let timer: ReturnType<typeof setTimeout> | undefined;
  const flush = () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    if (pending === "") return;
    const text = pending;
    pending = "";
    Deno.writeFileSync(path, encoder.encode(text), { append: true });
  };
  return {
    mark,
    flush,
    record(step, since, until, gateMs, extra) {
      const now = until ?? mark();
      pending += JSON.stringify({
        at: Date.now(),
        step,
        ms: Math.round((now.at - since.at) * 10) / 10,
        waitMs: Math.round((now.waitMs - since.waitMs) * 10) / 10,
        ...(gateMs === undefined ? {} : { gateMs: Math.round(gateMs * 10) / 10 }),
        ...extra,
      }) + "\n";
      if (timer === undefined) {
        timer = setTimeout(flush, FLUSH_MS);
        Deno.unrefTimer(timer);
      }
    },
  };
}

/** `performance.now()` as epoch milliseconds, to line up with another process's timestamps. */
export function epochMs(at: number): number {
  return Math.round((performance.timeOrigin + at) * 10) / 10;
}

/** How long a reading of the thread's wait is reused: marks come with every accept and read. */
const WAIT_REUSE_MS = 1;
let waitRead = { at: -Infinity, waitMs: 0 };

/**
 * The main thread's time runnable but waiting for a core so far, in ms (0 off Linux), read at
 * most once a millisecond (a flood makes thousands of marks a second).
 */
function waitedMs(): number {
  const now = performance.now();
  if (now - waitRead.at < WAIT_REUSE_MS) return waitRead.waitMs;
  const waitMs = schedstat()?.waitMs ?? 0;
  waitRead = { at: now, waitMs };
  return waitMs;
}

export interface StepFigure {
  /** The worst time the server took for the step. */
  readonly ms: number;
  /** Of that worst, the main thread's wait for a core. */
  readonly waitMs: number;
  /** Of that worst, the wait at the handshake gate (a handshake, a command before login). */
  readonly gateMs: number;
  /** The 90th percentile of the step's time, and of a handshake's wait at the gate. */
  readonly p90Ms: number;
  readonly p90GateMs: number;
  readonly count: number;
}

/** The worst of each step that the probe file holds between two epoch times. */
export function worstSteps(
  path: string,
  fromMs: number,
  toMs: number,
): Record<string, StepFigure> {
  let text = "";
  try {
    text = Deno.readTextFileSync(path);
  } catch {
    return {};
  }
  const steps = new Map<string, { ms: number; waitMs: number; gateMs: number }[]>();
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const r = JSON.parse(line) as {
      at: number;
      step: string;
      ms: number;
      waitMs: number;
      gateMs?: number;
    };
    if (r.at < fromMs || r.at > toMs) continue;
    let list = steps.get(r.step);
    if (list === undefined) steps.set(r.step, list = []);
    list.push({ ms: r.ms, waitMs: r.waitMs, gateMs: r.gateMs ?? 0 });
  }
  const out: Record<string, StepFigure> = {};
  for (const [step, list] of steps) {
    const worst = list.reduce((a, b) => b.ms > a.ms ? b : a);
    out[step] = {
      ...worst,
      p90Ms: p90(list.map((x) => x.ms)),
      p90GateMs: p90(list.map((x) => x.gateMs)),
      count: list.length,
    };
  }
  return out;
}

function p90(values: number[]): number {
  const sorted = values.toSorted((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.9))] ?? 0;
}
