/** `metrics:` — the Prometheus, /healthz and /readyz listener (issue 21). */
import * as v from "valibot";
import type { Positions } from "./_positions.ts";
import { pathList, section } from "./_schema.ts";
import { readPathList } from "./_files.ts";
import { address } from "./listen.ts";
import { parseAddress } from "./values.ts";

export const metricsSchema = section({
  listen: address(),
  client_ca: v.optional(pathList()),
}, "The metrics listener: plain HTTP, or HTTPS with required client certificates");

/**
 * The metrics, /healthz and /readyz listener: plain HTTP, or HTTPS with required client
 * certificates when `clientCa` names CAs (the server certificate of `tls:` is presented).
 */
export interface MetricsConfig {
  readonly address: string;
  readonly hostname: string;
  readonly port: number;
  /** Absolute paths of PEM CA files for scraper certificates; empty for plain HTTP. */
  readonly clientCa: readonly string[];
}

export function readMetrics(
  file: v.InferOutput<typeof metricsSchema>,
  at: Positions,
): MetricsConfig {
  const parsed = parseAddress(file.listen);
  if (!parsed.ok) throw new Error("Address was checked by the schema");
  return {
    address: file.listen,
    ...parsed.value,
    clientCa: readPathList(at, ["metrics", "client_ca"], file.client_ca, []),
  };
}
