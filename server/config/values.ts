/**
 * Parsers for the scalar value kinds of the configuration file: durations, byte sizes and
 * listen addresses. Each returns the parsed value, or a reason string for the error message.
 */

/** Milliseconds per duration unit. */
const DURATION_UNITS = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
} as const;

/** The largest duration accepted (about 24 days), so timers never overflow a 32-bit delay. */
export const MAX_DURATION_MS = 2 ** 31 - 1;

/** A parse outcome: the value, or the reason it was refused. */
export type Parsed<T> = { ok: true; value: T } | { ok: false; reason: string };

/**
 * Parses a duration such as `250ms`, `10s`, `5m`, `1h`, `1d` or a sum like `1h30m` into
 * milliseconds. A unit is mandatory so that `10` is never guessed to be seconds or millis.
 */
export function parseDuration(text: string): Parsed<number> {
  const trimmed = text.trim();
  const part = /(\d+)(ms|s|m|h|d)/y;
  let total = 0;
  let at = 0;
  while (at < trimmed.length) {
    part.lastIndex = at;
    const match = part.exec(trimmed);
    if (match === null) {
      return {
        ok: false,
        reason: /^\d+$/.test(trimmed)
          ? "a unit is required (ms, s, m, h or d)"
          : "expected a number with a unit, such as 250ms, 10s, 5m or 1h",
      };
    }
    const unit = match[2] as keyof typeof DURATION_UNITS;
    total += Number(match[1]) * DURATION_UNITS[unit];
    at = part.lastIndex;
  }
  if (trimmed.length === 0) return { ok: false, reason: "the duration is empty" };
  if (!Number.isSafeInteger(total) || total > MAX_DURATION_MS) {
    return { ok: false, reason: "the duration is too long (at most 24d)" };
  }
  return { ok: true, value: total };
}

/** Formats milliseconds the way the config file writes them (`30m`, `10s`, `250ms`). */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0s";
  for (const [unit, size] of [["d", 86_400_000], ["h", 3_600_000], ["m", 60_000], ["s", 1_000]]) {
    if (ms % (size as number) === 0) return `${ms / (size as number)}${unit}`;
  }
  return `${ms}ms`;
}

/** Bytes per size unit: binary prefixes with `i`, decimal without. */
const SIZE_UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1024,
  kb: 1000,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
};

/**
 * Parses a byte size: a plain integer, or a number with a unit (`64KiB`, `50MiB`, `1GB`; a bare
 * `k`, `M` or `G` is binary).
 */
export function parseSize(value: number | string): Parsed<number> {
  if (typeof value === "number") {
    return Number.isSafeInteger(value) && value >= 0
      ? { ok: true, value }
      : { ok: false, reason: "expected a whole number of bytes" };
  }
  const match = /^\s*(\d+)\s*([a-zA-Z]*)\s*$/.exec(value);
  const factor = match ? SIZE_UNITS[match[2]!.toLowerCase()] : undefined;
  if (!match || factor === undefined) {
    return { ok: false, reason: "expected a size such as 65536, 64KiB or 50MiB" };
  }
  const bytes = Number(match[1]) * factor;
  if (!Number.isSafeInteger(bytes)) return { ok: false, reason: "the size is too large" };
  return { ok: true, value: bytes };
}

/** A parsed `host:port` listen or connect address. */
export interface HostPort {
  /** Host name or IP address, without IPv6 brackets. */
  readonly hostname: string;
  readonly port: number;
}

const HOSTNAME =
  /^(?=.{1,253}$)[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/;
const IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
const IPV6 = /^[0-9a-fA-F:.]{2,45}$/;

/**
 * Parses `host:port`, `[ipv6]:port`. Port 0 asks the OS for a free port (used by tests).
 */
export function parseAddress(text: string): Parsed<HostPort> {
  const bracketed = /^\[([^\]]*)\]:(\d{1,5})$/.exec(text);
  const plain = /^([^:\[\]]+):(\d{1,5})$/.exec(text);
  const match = bracketed ?? plain;
  if (!match) return { ok: false, reason: "expected host:port, such as 127.0.0.1:993" };
  const hostname = match[1]!;
  const port = Number(match[2]);
  if (port > 65535) return { ok: false, reason: `port ${port} is out of range (0-65535)` };
  const valid = bracketed
    ? IPV6.test(hostname) && hostname.includes(":")
    : IPV4.test(hostname) || (HOSTNAME.test(hostname) && !/^[\d.]+$/.test(hostname));
  if (!valid) return { ok: false, reason: `"${hostname}" is not a valid host name or IP address` };
  return { ok: true, value: { hostname, port } };
}

/** Whether `hostname` names this machine's loopback interface. */
export function isLoopback(hostname: string): boolean {
  return hostname === "localhost" || hostname === "::1" || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}
