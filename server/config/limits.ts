/** `limits:` — connection counts, timeouts and the largest command, literal and message. */
import type * as v from "valibot";
import { duration, int, optional, section, size } from "./_schema.ts";

export const limitsSchema = section({
  max_connections_per_user: optional(int(1), 20),
  max_connections_per_address: optional(int(1), 50),
  /** At least 30m (RFC 9051, Section 5.4). */
  idle_timeout: optional(duration(30 * 60_000), "30m"),
  /** At least 8192 (RFC 7162, Section 4). */
  max_line_length: optional(size(8192), "64KiB"),
  max_literal_size: optional(size(1024), "50MiB"),
  max_message_size: optional(size(1024), "50MiB"),
}, "Per-user and per-address connection limits, the idle timeout and the largest inputs");

export interface LimitsConfig {
  /** Default 20. */
  readonly maxConnectionsPerUser: number;
  /** Default 50. */
  readonly maxConnectionsPerAddress: number;
  /** At least 30m (RFC 9051, Section 5.4). Default 30m. */
  readonly idleTimeoutMs: number;
  /** Longest command line in octets, at least 8192 (RFC 7162, Section 4). Default 64KiB. */
  readonly maxLineLength: number;
  /** Largest literal in octets. Default 50MiB. */
  readonly maxLiteralSize: number;
  /** Largest APPENDed message in octets. Default 50MiB. */
  readonly maxMessageSize: number;
}

export function readLimits(file: v.InferOutput<typeof limitsSchema>): LimitsConfig {
  return {
    maxConnectionsPerUser: file.max_connections_per_user,
    maxConnectionsPerAddress: file.max_connections_per_address,
    idleTimeoutMs: file.idle_timeout,
    maxLineLength: file.max_line_length,
    maxLiteralSize: file.max_literal_size,
    maxMessageSize: file.max_message_size,
  };
}
