/**
 * Logging for the server, on LogTape: readable text lines (coloured on a terminal) or one JSON
 * object per line, written synchronously to stderr so lines keep their order and survive a crash.
 *
 * Every record passes through `redact()` first: a property whose name says it holds a secret
 * (password, secret, key, authorization, token, …) is replaced before any formatter sees it.
 */
import {
  ansiColorFormatter,
  configureSync,
  getJsonLinesFormatter,
  getLogger as getLogTapeLogger,
  getTextFormatter,
  type Logger,
  type LogRecord,
  type Sink,
  type TextFormatter,
} from "@logtape/logtape";
import type { LogFormat, LogLevel } from "./config/mod.ts";

export type { Logger } from "@logtape/logtape";

/** The root category of every Postern logger. */
export const ROOT_CATEGORY = "postern";

/** The placeholder a redacted value is replaced with. */
export const REDACTED = "[redacted]";

export interface LoggingOptions {
  readonly level: LogLevel;
  readonly format: LogFormat;
  /**
   * Where formatted lines go (each ends with a newline). Default: stderr, written synchronously.
   * Tests pass a capturing function.
   */
  readonly write?: (line: string) => void;
  /** Colour text lines. Default: when stderr is a terminal and NO_COLOR is unset. */
  readonly color?: boolean;
}

/**
 * Configures LogTape for the whole process, replacing any earlier setup. Records of every
 * category at `level` or above are written; LogTape's own meta logger only from warnings.
 */
export function setupLogging(options: LoggingOptions): void {
  const write = options.write ?? writeStderr;
  const formatter = chooseFormatter(options.format, options.color ?? useColor());
  const sink: Sink = (record) => write(formatter(redactRecord(record)));
  configureSync({
    reset: true,
    sinks: { main: sink },
    loggers: [
      { category: [], sinks: ["main"], lowestLevel: options.level },
      {
        category: ["logtape", "meta"],
        sinks: ["main"],
        parentSinks: "override",
        lowestLevel: "warning",
      },
    ],
  });
}

/**
 * A logger under the `postern` category: `getLogger("imap")` logs as `postern.imap`, and
 * `getLogger(["tls", "handshake"])` as `postern.tls.handshake`.
 */
export function getLogger(category: string | readonly string[] = []): Logger {
  const parts = typeof category === "string" ? [category] : [...category];
  if (parts[0] === ROOT_CATEGORY) parts.shift();
  return getLogTapeLogger([ROOT_CATEGORY, ...parts]);
}

/** Words that mark a property name as holding a secret. */
const SECRET_WORDS = new Set([
  "password",
  "passwd",
  "passphrase",
  "secret",
  "key",
  "authorization",
  "token",
  "credential",
  "credentials",
  "cookie",
]);

/**
 * Whether a property name denotes a secret, judged by its words (`bindPassword`,
 * `private_key`, `Authorization`, `x-api-key`): `keyboard` passes, `privateKey` does not.
 */
export function isSecretName(name: string): boolean {
  const known = secretNames.get(name);
  if (known !== undefined) return known;
  const words = name.replace(/([a-z0-9])([A-Z])/g, "$1 $2").toLowerCase().split(/[^a-z0-9]+/);
  const secret = words.some((word) => SECRET_WORDS.has(word));
  // Property names come from the code, a few dozen: every record (one per connection in the
  // access log) looks them up instead of splitting them again. Names from data (a Map's keys)
  // stop being remembered at the bound.
  if (secretNames.size < SECRET_NAMES_KEPT) secretNames.set(name, secret);
  return secret;
}

/** `isSecretName`'s answers so far. */
const secretNames = new Map<string, boolean>();
const SECRET_NAMES_KEPT = 1024;

/**
 * A copy of `value` in which every property with a secret name (see `isSecretName`), at any
 * depth, is replaced by `[redacted]`. Cycles and depth are bounded; byte arrays are summarised.
 */
export function redact(value: unknown): unknown {
  return redactValue(value, 0, new WeakSet());
}

const MAX_DEPTH = 8;

function redactValue(value: unknown, depth: number, seen: WeakSet<object>): unknown {
  if (value === null || typeof value !== "object") return value;
  if (seen.has(value)) return "[circular]";
  if (depth >= MAX_DEPTH) return "[nested]";
  if (value instanceof Uint8Array) return `[${value.length} bytes]`;
  if (value instanceof Date) return value;
  if (value instanceof Error) {
    return { name: value.name, message: value.message };
  }
  seen.add(value);
  try {
    if (Array.isArray(value)) return value.map((item) => redactValue(item, depth + 1, seen));
    if (value instanceof Map) {
      const out: Record<string, unknown> = {};
      for (const [k, v] of value) {
        const name = String(k);
        out[name] = isSecretName(name) ? REDACTED : redactValue(v, depth + 1, seen);
      }
      return out;
    }
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = isSecretName(k) ? REDACTED : redactValue(v, depth + 1, seen);
    }
    return out;
  } finally {
    seen.delete(value);
  }
}

/**
 * Redacts a record's properties and the values interpolated into its message. A message value
 * that is the same string as a secret property (`{password}` in the template) is replaced too.
 */
export function redactRecord(record: LogRecord): LogRecord {
  const secrets = new Set<unknown>();
  for (const [k, v] of Object.entries(record.properties)) {
    if (isSecretName(k) && v !== undefined && v !== null && v !== "") secrets.add(v);
  }
  const message = record.message.map((part, index) => {
    if (index % 2 === 0) return part;
    if (secrets.has(part)) return REDACTED;
    return redact(part);
  });
  return {
    ...record,
    message,
    properties: redact(record.properties) as Record<string, unknown>,
  };
}

function chooseFormatter(format: LogFormat, color: boolean): TextFormatter {
  switch (format) {
    case "json":
      return getJsonLinesFormatter({ properties: "nest:properties", message: "rendered" });
    case "text":
      return withProperties(
        color ? ansiColorFormatter : getTextFormatter({
          timestamp: "date-time-tz",
          level: "ABBR",
          category: ".",
          value: renderValue,
        }),
      );
    default: {
      const unreachable: never = format;
      throw new Error(`Unknown log format ${unreachable}`);
    }
  }
}

/** Printable ASCII without `"` and `\`: a string that Deno.inspect shows as `"s"`. */
const PLAIN_STRING = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/**
 * Renders a value interpolated into a text line as LogTape's default (Deno.inspect) does, with
 * the common cases done directly: a finite number and a plain string each cost Deno.inspect a
 * few microseconds, several times per access-log line.
 */
export function renderValue(value: unknown, inspect: (value: unknown) => string): string {
  if (typeof value === "string" && PLAIN_STRING.test(value)) return `"${value}"`;
  if (typeof value === "number" && Number.isFinite(value) && !Object.is(value, -0)) {
    return String(value);
  }
  if (value === null || value === undefined || typeof value === "boolean") return String(value);
  return inspect(value);
}

/** Appends properties that the message did not interpolate, as `key=value`, to a text line. */
function withProperties(formatter: TextFormatter): TextFormatter {
  return (record) => {
    const line = formatter(record).replace(/\n$/, "");
    const template = typeof record.rawMessage === "string"
      ? record.rawMessage
      : record.rawMessage.join("");
    const extra = Object.entries(record.properties)
      .filter(([k]) => !template.includes(`{${k}}`))
      .map(([k, v]) => `${k}=${typeof v === "string" ? JSON.stringify(v) : safeJson(v)}`);
    return extra.length === 0 ? `${line}\n` : `${line} ${extra.join(" ")}\n`;
  };
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value, (_k, v) => typeof v === "bigint" ? v.toString() : v) ?? "null";
  } catch {
    return String(value);
  }
}

function useColor(): boolean {
  try {
    return Deno.stderr.isTerminal() && Deno.env.get("NO_COLOR") === undefined;
  } catch {
    return false;
  }
}

const encoder = new TextEncoder();

function writeStderr(line: string): void {
  let bytes = encoder.encode(line);
  try {
    while (bytes.length > 0) bytes = bytes.subarray(Deno.stderr.writeSync(bytes));
  } catch {
    // A closed stderr must not take the server down with it.
  }
}
