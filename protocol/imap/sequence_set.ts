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
  const out: number[] = [];
  let i = 0;
  for (const [lo, hi] of merged) {
    while (i < sorted.length && sorted[i]! < lo) i++;
    while (i < sorted.length && sorted[i]! <= hi) out.push(sorted[i++]!);
    if (i >= sorted.length) break;
  }
  return out;
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
  if (count === 0 && ranges.every((r) => r.start === "*" || r.end === "*")) return [];
  for (const r of ranges) {
    for (const n of [r.start, r.end]) {
      if (n === "*" ? count === 0 : n > count) return null;
    }
  }
  const merged = normalise(ranges, count);
  const out: number[] = [];
  for (const [lo, hi] of merged) for (let n = lo; n <= hi; n++) out.push(n);
  return out;
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
