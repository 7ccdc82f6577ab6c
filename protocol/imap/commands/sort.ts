/**
 * SORT and UID SORT (RFC 5256, Section 3), with the DISPLAYFROM and DISPLAYTO keys of
 * SORT=DISPLAY (RFC 5957) and the ESORT return options MIN, MAX, ALL and COUNT (RFC 5267,
 * Section 3). Keys come from the stored search text (see `_sort_data.ts`); ties fall back to
 * sequence order.
 */
import type { CommandContext, CommandSpec, Completion } from "../context.ts";
import { badSyntax } from "../errors.ts";
import type { CommandReader } from "../parser.ts";
import { formatSequenceSet } from "../sequence_set.ts";
import { loadSortRecords, type SortRecord } from "./_sort_data.ts";
import { readCharset, readSearchProgram } from "./search.ts";

type Compare = (a: SortRecord, b: SortRecord) => number;

function text(pick: (r: SortRecord) => string): Compare {
  return (a, b) => {
    const x = pick(a);
    const y = pick(b);
    return x < y ? -1 : x > y ? 1 : 0;
  };
}

function num(pick: (r: SortRecord) => number): Compare {
  return (a, b) => pick(a) - pick(b);
}

/** The sort keys (RFC 5256 `sort-key`, RFC 5957 DISPLAYFROM and DISPLAYTO). */
const KEYS: Record<string, Compare> = {
  ARRIVAL: num((r) => r.keys.arrival),
  CC: text((r) => r.keys.cc),
  DATE: num((r) => r.keys.date),
  FROM: text((r) => r.keys.from),
  SIZE: num((r) => r.keys.size),
  SUBJECT: text((r) => r.keys.subjectKey),
  TO: text((r) => r.keys.to),
  DISPLAYFROM: text((r) => r.keys.displayFrom),
  DISPLAYTO: text((r) => r.keys.displayTo),
};

/** Most criteria in one SORT. */
const MAX_CRITERIA = 32;

type ReturnOption = "MIN" | "MAX" | "ALL" | "COUNT";
const RETURN_OPTIONS: ReadonlySet<string> = new Set(["MIN", "MAX", "ALL", "COUNT"]);

function readCriteria(r: CommandReader): Compare {
  const criteria = r.list(() => {
    let reverse = false;
    let key = r.keyword("sort key");
    if (key === "REVERSE") {
      reverse = true;
      r.sp();
      key = r.keyword("sort key");
    }
    const cmp = KEYS[key];
    if (cmp === undefined) throw badSyntax(`Unknown sort key ${key.slice(0, 40)}`);
    return reverse ? (a: SortRecord, b: SortRecord) => cmp(b, a) : cmp;
  }, false);
  if (criteria.length > MAX_CRITERIA) throw badSyntax("Too many sort criteria");
  return (a, b) => {
    for (const c of criteria) {
      const d = c(a, b);
      if (d !== 0) return d;
    }
    return a.seq - b.seq;
  };
}

async function sort(ctx: CommandContext, r: CommandReader, uidMode: boolean): Promise<Completion> {
  r.sp();
  let returns: ReturnOption[] | null = null;
  if (r.peekKeyword() === "RETURN") {
    r.keyword();
    r.sp();
    returns = r.list(() => {
      const opt = r.keyword("return option");
      if (!RETURN_OPTIONS.has(opt)) throw badSyntax(`Unknown SORT return option ${opt}`);
      return opt as ReturnOption;
    });
    r.sp();
  }
  const compare = readCriteria(r);
  r.sp();
  readCharset(r);
  r.sp();
  const key = readSearchProgram(r);
  const records = await loadSortRecords(ctx, key);
  records.sort(compare);
  const numbers = records.map((x) => uidMode ? x.uid : x.seq);
  const label = uidMode ? "UID SORT" : "SORT";
  if (returns === null) {
    ctx.out.line(`* SORT${numbers.map((n) => " " + n).join("")}`);
    return { text: `${label} completed` };
  }
  const wanted: readonly ReturnOption[] = returns.length === 0 ? ["ALL"] : returns;
  const parts = [`* ESEARCH (TAG "${ctx.tag}")`];
  if (uidMode) parts.push("UID");
  if (numbers.length > 0) {
    if (wanted.includes("MIN")) parts.push(`MIN ${numbers[0]}`);
    if (wanted.includes("MAX")) parts.push(`MAX ${numbers[numbers.length - 1]}`);
    // ALL keeps the sort order: only ascending runs become ranges (RFC 5267, Section 3.1).
    if (wanted.includes("ALL")) parts.push(`ALL ${formatSequenceSet(numbers)}`);
  }
  if (wanted.includes("COUNT")) parts.push(`COUNT ${numbers.length}`);
  ctx.out.line(parts.join(" "));
  return { text: `${label} completed` };
}

export const sortCommand: CommandSpec = {
  name: "SORT",
  states: ["selected"],
  allowsExpunge: false,
  run: (ctx, r) => sort(ctx, r, false),
};

export const uidSortCommand: CommandSpec = {
  name: "UID SORT",
  states: ["selected"],
  allowsExpunge: true,
  run: (ctx, r) => sort(ctx, r, true),
};
