/**
 * Durable commits and the event loop: W concurrent writers (default 20) each append 2 KB
 * messages to one SqliteMailStore for S seconds, once with SQLite syncing inside COMMIT
 * (`commit: "inline"`, synchronous=FULL, the reference) and once with the asynchronous group
 * commit (`commit: "group"`). Reported: appends per second, the event-loop time each append
 * call takes before it returns its promise (mean and worst), and the worst lateness of a 5 ms
 * timer during the run. Figures are printed, never asserted.
 *
 * Usage: `deno run -A bench/group_commit_bench.ts [--writers W] [--seconds S]`.
 */
import { openSqliteMailStore } from "../mailstore/sqlite/mod.ts";

/** One mode's figures. */
export interface CommitFigures {
  readonly mode: "inline" | "group";
  readonly appendsPerSecond: number;
  readonly loopMsMean: number;
  readonly loopMsWorst: number;
  readonly timerLateWorstMs: number;
}

const raw = (n: number) =>
  new TextEncoder().encode(
    `Subject: commit ${n}\r\nFrom: a@example.org\r\n\r\n${"x".repeat(1500 + (n % 1000))}\r\n`,
  );

async function run(
  mode: "inline" | "group",
  writers: number,
  seconds: number,
): Promise<CommitFigures> {
  const dir = await Deno.makeTempDir({ prefix: "postern-commit-" });
  const store = await openSqliteMailStore(`${dir}/store.db`, { commit: mode });
  try {
    const account = await store.createAccount("bench", null);
    const inbox = (await store.getMailbox(account.id, "INBOX"))!;
    let appends = 0;
    let loopMs = 0;
    let loopWorst = 0;
    let timerWorst = 0;
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      timerWorst = Math.max(timerWorst, now - last - 5);
      last = now;
    }, 5);
    const start = performance.now();
    const stopAt = start + seconds * 1000;
    await Promise.all(Array.from({ length: writers }, async (_, w) => {
      for (let i = 0; performance.now() < stopAt; i++) {
        const t0 = performance.now();
        const done = store.append(inbox.id, { raw: raw(w * 1_000_000 + i), flags: [] });
        const t = performance.now() - t0;
        loopMs += t;
        loopWorst = Math.max(loopWorst, t);
        await done;
        appends++;
        // A client's round trip: the next command arrives in a later task, as from a socket.
        await new Promise((resolve) => setTimeout(resolve, 0));
      }
    }));
    const elapsed = (performance.now() - start) / 1000;
    clearInterval(timer);
    return {
      mode,
      appendsPerSecond: appends / elapsed,
      loopMsMean: loopMs / appends,
      loopMsWorst: loopWorst,
      timerLateWorstMs: timerWorst,
    };
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/** Runs inline, group, inline, group (alternating against drift on a shared machine). */
export async function benchGroupCommit(
  writers: number,
  seconds: number,
): Promise<CommitFigures[]> {
  const out: CommitFigures[] = [];
  for (let round = 0; round < 2; round++) {
    for (const mode of ["inline", "group"] as const) out.push(await run(mode, writers, seconds));
  }
  return out;
}

/** Formats the figures as a table. */
export function formatGroupCommit(figures: readonly CommitFigures[]): string {
  const rows = [
    `${"commit".padEnd(8)} ${"APPEND/s".padStart(9)} ${"loop ms/append".padStart(15)} ${
      "worst call".padStart(11)
    } ${"worst timer lateness".padStart(21)}`,
  ];
  for (const f of figures) {
    rows.push(
      `${f.mode.padEnd(8)} ${f.appendsPerSecond.toFixed(0).padStart(9)} ${
        f.loopMsMean.toFixed(3).padStart(15)
      } ${f.loopMsWorst.toFixed(1).padStart(8)} ms ${
        f.timerLateWorstMs.toFixed(1).padStart(18)
      } ms`,
    );
  }
  return rows.join("\n");
}

function flag(args: readonly string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

if (import.meta.main) {
  const writers = Number(flag(Deno.args, "--writers") ?? 20);
  const seconds = Number(flag(Deno.args, "--seconds") ?? 5);
  console.log(`Durable appends, ${writers} concurrent writers, ${seconds} s per mode`);
  console.log(formatGroupCommit(await benchGroupCommit(writers, seconds)));
}
