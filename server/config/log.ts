/** `log:` — level and format of the server log. */
import type * as v from "valibot";
import { choice, optional, section } from "./_schema.ts";

export const LOG_LEVELS = ["debug", "info", "warning", "error"] as const;
export const LOG_FORMATS = ["text", "json"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export type LogFormat = (typeof LOG_FORMATS)[number];

export const logSchema = section({
  level: optional(choice(LOG_LEVELS), "info"),
  format: optional(choice(LOG_FORMATS), "text"),
}, "Server log level and format");

export interface LogConfig {
  /** Default `info`. */
  readonly level: LogLevel;
  /** Default `text`. */
  readonly format: LogFormat;
}

export function readLog(file: v.InferOutput<typeof logSchema>): LogConfig {
  return { level: file.level, format: file.format };
}
