/**
 * Sequence sets and UID sets (RFC 9051, Section 9 `sequence-set`; RFC 5182 `$`). Ranges may be
 * reversed (`5:3` is `3:5`), `*` is the largest number in use, and `$` is the saved search
 * result. Resolution never expands a range into memory: ranges are merged and walked against the
 * sorted list of numbers that exist.
 */

/** A sequence number or UID, or `*` for the largest in use. */
export type SeqNumber = number | "*";

export interface SeqRange {
  readonly start: SeqNumber;
  readonly end: SeqNumber;
}

export type SequenceSet =
  | { readonly kind: "ranges"; readonly ranges: readonly SeqRange[] }
  | { readonly kind: "saved" };

/** Largest value of an nz-number / uniqueid (RFC 9051, Section 9). */
export const MAX_NUMBER = 0xffffffff;

/** Ranges with `*` replaced by `largest`, ordered low to high and merged. */
function normalise(ranges: readonly SeqRange[], largest: number): [number, number][] {
  const out: [number, number][] = [];
  for (const r of ranges) {
    const a = r.start === "*" ? largest : r.start;
    const b = r.end === "*" ? largest : r.end;
    out.push(a <= b ? [a, b] : [b, a]);
  }
  out.sort((x, y) => x[0] - y[0]);
  const merged: [number, number][] = [];
  for (const r of out) {
    const last = merged[merged.length - 1];
    if (last !== undefined && r[0] <= last[1] + 1) last[1] = Math.max(last[1], r[1]);
    else merged.push(r);
  }
  return merged;
}

/**
 * Returns the members of `sorted` (ascending, unique) that the ranges cover, with `*` standing
 * for the last member.
 */
export function selectFromSorted(
  ranges: readonly SeqRange[],
  sorted: readonly number[],
): number[] {
  const last = sorted[sorted.length - 1];
  if (last === undefined) return [];
  const merged = normalise(ranges, last);
  // Each range is one slice of `sorted`, found by two binary searches (`1:*` of 100,000 UIDs
  // is one copy).
  const slices: number[][] = [];
  let i = 0;
  for (const [lo, hi] of merged) {
    i = firstAbove(sorted, lo - 1, i);
    const j = firstAbove(sorted, hi, i);
    if (j > i) slices.push(sorted.slice(i, j));
    i = j;
    if (i >= sorted.length) break;
  }
  return slices.length === 1 ? slices[0]! : slices.flat();
}

/** The index of the first of the ascending `sorted` above `n`, at or after `from`. */
function firstAbove(sorted: readonly number[], n: number, from: number): number {
  let lo = from;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]! <= n) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Resolves message sequence numbers against a mailbox of `count` messages. Returns null when
 * a number is out of range (RFC 9051 makes that an error), else the ascending numbers. In an
 * empty mailbox, a set such as `1:*` is empty rather than an error, as clients send it blindly.
 */
export function resolveSequenceNumbers(
  ranges: readonly SeqRange[],
  count: number,
): number[] | null {
  const spans = sequenceSpans(ranges, count);
  if (spans === null) return null;
  const out: number[] = [];
  for (const [lo, hi] of spans) for (let n = lo; n <= hi; n++) out.push(n);
  return out;
}

/**
 * `resolveSequenceNumbers` as ascending, merged, inclusive ranges `[lo, hi]` rather than every
 * number, or null when a number is out of range.
 */
export function sequenceSpans(
  ranges: readonly SeqRange[],
  count: number,
): [number, number][] | null {
  if (count === 0 && ranges.every((r) => r.start === "*" || r.end === "*")) return [];
  for (const r of ranges) {
    for (const n of [r.start, r.end]) {
      if (n === "*" ? count === 0 : n > count) return null;
    }
  }
  return normalise(ranges, count);
}

/** Formats ascending numbers as a compact sequence set (`1:3,7`), for APPENDUID/COPYUID. */
export function formatSequenceSet(numbers: readonly number[]): string {
  const parts: string[] = [];
  let i = 0;
  while (i < numbers.length) {
    const start = numbers[i]!;
    let end = start;
    while (i + 1 < numbers.length && numbers[i + 1] === end + 1) end = numbers[++i]!;
    parts.push(start === end ? `${start}` : `${start}:${end}`);
    i++;
  }
  return parts.join(",");
}

/** The ranges with `*` replaced by `n`, for matching against lists that lack the largest UID. */
export function starAs(ranges: readonly SeqRange[], n: number): SeqRange[] {
  return ranges.map((r) => ({
    start: r.start === "*" ? n : r.start,
    end: r.end === "*" ? n : r.end,
  }));
}
