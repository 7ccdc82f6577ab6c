/**
 * The command-line parser of `postern`: long options (`--config FILE`, `--config=FILE`),
 * short aliases (`-c FILE`), boolean flags, `--` to end options, and positionals checked
 * against each command's declared arguments. Mistakes become a `UsageError`, which the entry
 * point prints as one line and answers with exit code 2.
 */
import { parseArgs as splitArgs } from "node:util";
import { suggest } from "../config/suggest.ts";

/** A mistake on the command line: unknown command or option, missing or extra argument. */
export class UsageError extends Error {
  /** The command whose `--help` explains the mistake, e.g. `certs issue-client`. */
  readonly command: string | undefined;
  constructor(message: string, command?: string) {
    super(message);
    this.name = "UsageError";
    this.command = command;
  }
}

/** A failure while running a well-formed command (exit code 1). */
export class CliError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CliError";
  }
}

export interface OptionSpec {
  readonly type: "string" | "boolean";
  readonly short?: string;
  /** Placeholder shown in help for string options, e.g. `FILE`. */
  readonly value?: string;
  readonly description: string;
}

export interface PositionalSpec {
  readonly name: string;
  readonly optional?: boolean;
}

export type OptionValues = Readonly<Record<string, string | boolean | undefined>>;

export interface ParsedArgs {
  readonly values: OptionValues;
  readonly positionals: readonly string[];
  /** Every value of each string option, in order, for options that may be repeated. */
  readonly lists: Readonly<Record<string, readonly string[]>>;
}

/**
 * Parses `args` for `command` against its option and positional specs. Repeating a string
 * option keeps the last value in `values`; `lists` has them all. Splitting the words into
 * options and positionals is node:util's `parseArgs` (its tokens); the checks and their
 * messages are ours.
 */
export function parseArgs(
  args: readonly string[],
  command: string,
  options: Readonly<Record<string, OptionSpec>>,
  positionals: readonly PositionalSpec[],
): ParsedArgs {
  const values: Record<string, string | boolean | undefined> = {};
  const lists: Record<string, string[]> = {};
  const rest: string[] = [];
  const { tokens } = splitArgs({
    args: [...args],
    options: Object.fromEntries(
      Object.entries(options).map((
        [name, { type, short }],
      ) => [name, short ? { type, short } : { type }]),
    ),
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  for (const token of tokens) {
    if (token.kind === "positional") rest.push(token.value);
    if (token.kind !== "option") continue;
    const spec = options[token.name];
    if (spec === undefined) {
      const guess = token.rawName.startsWith("--")
        ? suggest(token.name, Object.keys(options))
        : undefined;
      const hint = guess === undefined ? "" : ` (did you mean "--${guess}"?)`;
      throw new UsageError(`unknown option "${token.rawName}" for ${command}${hint}`, command);
    }
    const name = token.name;
    if (spec.type === "boolean") {
      if (token.value !== undefined) {
        throw new UsageError(`option "--${name}" takes no value`, command);
      }
      values[name] = true;
      continue;
    }
    const value = token.value;
    if (value === undefined || (!token.inlineValue && value.startsWith("-") && value !== "-")) {
      throw new UsageError(`option "--${name}" needs a value (${spec.value ?? "VALUE"})`, command);
    }
    values[name] = value;
    (lists[name] ??= []).push(value);
  }
  if (values.help === true) return { values, positionals: rest, lists };
  const required = positionals.filter((p) => !p.optional).length;
  if (rest.length < required) {
    const missing = positionals[rest.length]!;
    throw new UsageError(`${command} needs ${missing.name}`, command);
  }
  if (rest.length > positionals.length) {
    throw new UsageError(
      `unexpected argument "${rest[positionals.length]}" for ${command}`,
      command,
    );
  }
  return { values, positionals: rest, lists };
}

/** The help text of one command: usage line, description, then its options. */
export function formatCommandHelp(
  program: string,
  command: string,
  summary: string,
  options: Readonly<Record<string, OptionSpec>>,
  positionals: readonly PositionalSpec[],
  details?: string,
): string {
  const args = positionals.map((p) => (p.optional ? `[${p.name}]` : p.name)).join(" ");
  const lines = [`Usage: ${program} ${command}${args ? ` ${args}` : ""} [options]`, "", summary];
  if (details !== undefined) lines.push("", details);
  lines.push("", "Options:");
  const rows = Object.entries(options).map(([name, spec]) => {
    const short = spec.short === undefined ? "    " : `-${spec.short}, `;
    const value = spec.type === "string" ? ` ${spec.value ?? "VALUE"}` : "";
    return [`  ${short}--${name}${value}`, spec.description] as const;
  });
  const width = Math.max(...rows.map(([left]) => left.length)) + 2;
  for (const [left, right] of rows) lines.push(left.padEnd(width) + right);
  return lines.join("\n") + "\n";
}
