/**
 * The building blocks of the settings schema (valibot): one per kind of value the file holds,
 * each carrying the messages `postern check-config` prints and, where valibot's own JSON Schema
 * conversion cannot see the rule (durations, sizes), the JSON Schema editors check against.
 */
import * as v from "valibot";
import type { JsonSchema } from "@valibot/to-json-schema";
import { suggest } from "./suggest.ts";
import { formatDuration, parseDuration, parseSize } from "./values.ts";

/** JSON Schemas of the blocks whose rule is a custom check; read by json_schema.ts. */
export const JSON_OVERRIDES: WeakMap<object, JsonSchema> = new WeakMap();

function withJson<T extends object>(schema: T, json: JsonSchema): T {
  JSON_OVERRIDES.set(schema, json);
  // With typeMode "input" the converter reads a pipe from its first schema.
  const first = (schema as { pipe?: readonly object[] }).pipe?.[0];
  if (first !== undefined) JSON_OVERRIDES.set(first, json);
  return schema;
}

/** How a list of choices reads in a message: `a, b or c`. */
export function quoteList(values: readonly (string | number)[]): string {
  if (values.length === 1) return String(values[0]);
  return `${values.slice(0, -1).join(", ")} or ${values[values.length - 1]}`;
}

/** Descriptions shown by editors, added to the JSON Schema of a section. */
export const DESCRIPTIONS: WeakMap<object, string> = new WeakMap();

/**
 * A mapping with a fixed set of keys. An unknown key gets a did-you-mean hint; a value that is
 * not a mapping is reported once, at the section.
 */
export function section<const E extends v.ObjectEntries>(
  entries: E,
  description?: string,
): v.StrictObjectSchema<E, v.ErrorMessage<v.StrictObjectIssue>> {
  const keys = Object.keys(entries);
  const schema = v.strictObject(entries, (issue) => {
    if (issue.expected === "never") {
      const guess = suggest(String(issue.path?.at(-1)?.key ?? ""), keys);
      return guess === undefined ? "" : ` (did you mean "${guess}"?)`;
    }
    return issue.expected?.startsWith('"') ? "" : "@mappingkeys";
  });
  if (description !== undefined) DESCRIPTIONS.set(schema, description);
  return schema;
}

/** Text that is not blank. */
export function text(): v.SchemaWithPipe<
  readonly [
    v.StringSchema<v.ErrorMessage<v.StringIssue>>,
    v.RegexAction<string, "must not be empty">,
  ]
> {
  return v.pipe(
    v.string((i) => `expected text, got ${describeValue(i.input)}`),
    v.regex(/\S/, "must not be empty"),
  );
}

/** A file path; the section's reader resolves it against the configuration's folder. */
export const path = text;

/** `true` or `false`. */
export function bool(): v.BooleanSchema<v.ErrorMessage<v.BooleanIssue>> {
  return v.boolean((i) => `expected true or false, got ${describeValue(i.input)}`);
}

/** A whole number from `min` to `max`. */
export function int(min: number, max = Number.MAX_SAFE_INTEGER): v.GenericSchema<number> {
  const range = (i: v.BaseIssue<unknown>) =>
    `expected a whole number from ${min} to ${max}, got ${i.input}`;
  const number = v.number((i) => `expected a number, got ${describeValue(i.input)}`);
  const atLeast = v.minValue<number, number, typeof range>(min, range);
  if (max === Number.MAX_SAFE_INTEGER) return v.pipe(number, v.integer(range), atLeast);
  const atMost = v.maxValue<number, number, typeof range>(max, range);
  return v.pipe(number, v.integer(range), atLeast, atMost);
}

/** One of `values`, with a did-you-mean hint for a near miss. */
export function choice<const T extends readonly string[]>(values: T): v.PicklistSchema<
  T,
  v.ErrorMessage<v.PicklistIssue>
> {
  return v.picklist(values, (i) => {
    const value = i.input;
    const shown = typeof value === "string" ? `"${value}"` : describeValue(value);
    const guess = typeof value === "string" ? suggest(value, values) : undefined;
    const hint = guess === undefined ? "" : `; did you mean "${guess}"?`;
    return `invalid value ${shown} (expected ${quoteList(values)})${hint}`;
  });
}

const DURATION_PATTERN = "^([0-9]+(ms|s|m|h|d))+$";

/** A duration with a unit (`250ms`, `10s`, `1h30m`), read as milliseconds, at least `minMs`. */
export function duration(minMs = 1): v.GenericSchema<unknown, number> {
  return withJson(
    v.pipe(
      v.unknown(),
      v.rawTransform(({ dataset, addIssue, NEVER }) => {
        const value = dataset.value;
        if (typeof value !== "string" && typeof value !== "number") {
          addIssue({ message: `expected a duration such as 10s, got ${describeValue(value)}` });
          return NEVER;
        }
        const parsed = parseDuration(String(value));
        if (!parsed.ok) {
          addIssue({
            message: `invalid duration ${JSON.stringify(String(value))}: ${parsed.reason}`,
          });
          return NEVER;
        }
        if (parsed.value < minMs) {
          addIssue({ message: `must be at least ${formatDuration(minMs)}, got ${value}` });
          return NEVER;
        }
        return parsed.value;
      }),
    ),
    {
      type: "string",
      pattern: DURATION_PATTERN,
      ...(minMs > 0 ? { description: `At least ${formatDuration(minMs)}` } : {}),
    },
  );
}

const SIZE_PATTERN = "^\\s*[0-9]+\\s*([kKmMgG]?[iI]?[bB]?)\\s*$";

/** A byte size (`65536`, `64KiB`, `50MB`), read as bytes, at least `min`. */
export function size(min: number): v.GenericSchema<unknown, number> {
  return withJson(
    v.pipe(
      v.unknown(),
      v.rawTransform(({ dataset, addIssue, NEVER }) => {
        const value = dataset.value;
        if (typeof value !== "number" && typeof value !== "string") {
          addIssue({
            message: `expected a size such as 65536 or 50MiB, got ${describeValue(value)}`,
          });
          return NEVER;
        }
        const parsed = parseSize(value);
        if (!parsed.ok) {
          addIssue({ message: `invalid size ${JSON.stringify(value)}: ${parsed.reason}` });
          return NEVER;
        }
        if (parsed.value < min) {
          addIssue({ message: `must be at least ${min} bytes, got ${parsed.value}` });
          return NEVER;
        }
        return parsed.value;
      }),
    ),
    {
      anyOf: [{ type: "integer", minimum: min }, { type: "string", pattern: SIZE_PATTERN }],
    },
  );
}

/**
 * A value whose shape the section's reader checks itself (it needs the file's nodes or other
 * settings); `json` tells editors what is expected.
 */
export function checkedByReader(json: JsonSchema): v.GenericSchema<unknown, unknown> {
  return withJson(v.unknown(), json);
}

/** One file path, or a list of them. */
export function pathList(): v.GenericSchema<unknown, unknown> {
  return checkedByReader({
    anyOf: [{ type: "string" }, { type: "array", items: { type: "string" } }],
  });
}

/** A setting that may be left out, with its default (given as the file would write it). */
export const optional = v.optional;

/** Checks `input` against a schema, all issues at once, one per setting. */
export function check<S extends v.GenericSchema>(
  schema: S,
  input: unknown,
): v.SafeParseResult<S> {
  return v.safeParse(schema, input, { abortEarly: false, abortPipeEarly: true });
}

/** How a value read from YAML is named in a message: `"text"`, `number 5`, `a list`. */
export function describeValue(value: unknown): string {
  if (value === null || value === undefined) return "nothing";
  if (Array.isArray(value)) return value.length === 0 ? "an empty list" : "a list";
  if (typeof value === "object") return "a mapping";
  if (typeof value === "string") return `"${value}"`;
  if (typeof value === "number" || typeof value === "boolean") return `${typeof value} ${value}`;
  return "an unsupported value";
}
