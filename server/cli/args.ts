/**
 * A small command-line parser for `postern`: long options (`--config FILE`, `--config=FILE`),
 * short aliases (`-c FILE`), boolean flags, `--` to end options, and positionals checked
 * against each command's declared arguments. Mistakes become a `UsageError`, which the entry
 * point prints as one line and answers with exit code 2.
 */
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
 * option keeps the last value in `values`; `lists` has them all.
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
  const byShort = new Map<string, string>();
  for (const [name, spec] of Object.entries(options)) {
    if (spec.short !== undefined) byShort.set(spec.short, name);
  }
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--") {
      rest.push(...args.slice(i + 1));
      break;
    }
    if (arg === "-" || !arg.startsWith("-")) {
      rest.push(arg);
      continue;
    }
    let name: string;
    let inline: string | undefined;
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
      inline = eq === -1 ? undefined : arg.slice(eq + 1);
    } else {
      const long = byShort.get(arg.slice(1, 2));
      if (long === undefined || (arg.length > 2 && options[long]?.type === "boolean")) {
        throw new UsageError(`unknown option "${arg}" for ${command}`, command);
      }
      name = long;
      inline = arg.length > 2 ? arg.slice(2) : undefined;
    }
    const spec = options[name];
    if (spec === undefined) {
      const guess = suggest(name, Object.keys(options));
      const hint = guess === undefined ? "" : ` (did you mean "--${guess}"?)`;
      throw new UsageError(`unknown option "--${name}" for ${command}${hint}`, command);
    }
    if (spec.type === "boolean") {
      if (inline !== undefined) {
        throw new UsageError(`option "--${name}" takes no value`, command);
      }
      values[name] = true;
      continue;
    }
    const value = inline ?? args[++i];
    if (value === undefined || (inline === undefined && value.startsWith("-") && value !== "-")) {
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
