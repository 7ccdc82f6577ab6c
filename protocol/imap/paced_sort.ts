/**
 * A sort that yields to the event loop (see `Pacer`): runs of a few thousand elements are
 * sorted natively, then merged pairwise a slice at a time, so that sorting 100,000 messages
 * (SORT, RFC 5256) never holds the thread for more than about one time slice.
 */
import type { Pacer } from "../event_loop.ts";

/** Elements sorted in one native call; a few milliseconds of work. */
const RUN = 4096;
/** Elements merged between two checks of the pacer. */
const MERGE_STEP = 4096;

/**
 * Sorts `items` by `cmp` in place (a merge sort over native runs: stable), yielding through
 * `pacer` once a slice is used up.
 */
export async function pacedSort<T>(
  items: T[],
  cmp: (a: T, b: T) => number,
  pacer: Pacer,
): Promise<void> {
  const n = items.length;
  if (n <= RUN) {
    items.sort(cmp);
    return;
  }
  for (let start = 0; start < n; start += RUN) {
    const run = items.slice(start, start + RUN).sort(cmp);
    for (let i = 0; i < run.length; i++) items[start + i] = run[i]!;
    if (pacer.due()) await pacer.yield();
  }
  let from = items;
  let to: T[] = new Array(n);
  for (let width = RUN; width < n; width *= 2) {
    for (let lo = 0; lo < n; lo += 2 * width) {
      const mid = Math.min(lo + width, n);
      const hi = Math.min(lo + 2 * width, n);
      let i = lo;
      let j = mid;
      let k = lo;
      while (k < hi) {
        const end = Math.min(k + MERGE_STEP, hi);
        while (k < end) {
          if (j >= hi || (i < mid && cmp(from[i]!, from[j]!) <= 0)) to[k++] = from[i++]!;
          else to[k++] = from[j++]!;
        }
        if (pacer.due()) await pacer.yield();
      }
    }
    [from, to] = [to, from];
  }
  if (from !== items) { for (let i = 0; i < n; i++) items[i] = from[i]!; }
}
