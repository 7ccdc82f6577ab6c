/** `server:` — how the server uses the machine's cores (issue 15). */
import * as v from "valibot";
import { describeValue, int, section } from "./_schema.ts";

/** More accept loops than this buy nothing and cost a store connection each. */
export const MAX_WORKERS = 256;

const workers = v.union(
  [v.literal("auto"), int(1, MAX_WORKERS)],
  (i) =>
    typeof i.input === "number"
      ? `expected a whole number from 1 to ${MAX_WORKERS}, got ${i.input}`
      : `expected auto or a whole number, got ${describeValue(i.input)}`,
);

export const serverSchema = section({
  workers: v.optional(workers, "auto"),
}, "How the server uses the machine's cores");

/** How the server uses the machine's cores. */
export interface ServerSettings {
  /**
   * Accept loops, each a Worker with its own listeners (SO_REUSEPORT) and store connection;
   * `auto` (the default) is one per core. 1 runs everything on the main thread.
   */
  readonly workers: number | "auto";
}

export function readServer(file: v.InferOutput<typeof serverSchema>): ServerSettings {
  return { workers: file.workers };
}

/** The number of accept loops `server.workers` asks for on this machine. */
export function workerCount(config: { readonly server: ServerSettings }): number {
  const workers = config.server.workers;
  if (workers !== "auto") return workers;
  return Math.max(1, Math.min(MAX_WORKERS, navigator.hardwareConcurrency || 1));
}
