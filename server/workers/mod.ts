/**
 * Serving on every core (`server.workers`): one accept loop on the main thread, or several
 * Workers under a supervisor.
 */
import { type Config, workerCount } from "../config/mod.ts";
import { getLogger } from "../log.ts";
import { serve, type ServeHandle } from "../serve/mod.ts";
import { serveWorkers, type SupervisorOptions } from "./supervisor.ts";

export { serveWorkers };

/**
 * Serves `config` with as many accept loops as `server.workers` asks for. One runs on this
 * thread exactly as `serve` does; several need SO_REUSEPORT's load balancing, which only
 * Linux has, so elsewhere the server keeps to one.
 */
export async function serveOnCores(
  config: Config,
  options: SupervisorOptions = {},
): Promise<ServeHandle> {
  const count = workerCount(config);
  if (count <= 1) return await serve(config, options);
  const missing = Deno.build.os !== "linux"
    ? "Linux (SO_REUSEPORT)"
    : !reusePortEnabled()
    ? "Deno's --unstable-net (deno.json turns it on)"
    : null;
  if (missing !== null) {
    getLogger(["server"]).warn("server.workers needs {missing}; serving with one accept loop", {
      missing,
    });
    return await serve(config, options);
  }
  return await serveWorkers(config, count, options);
}

/**
 * Whether `Deno.listen({ reusePort: true })` may be called: in Deno 2.9 it is behind
 * `--unstable-net`, and calling it without ends the process. The same flag exposes
 * `Deno.listenDatagram`, which tells.
 */
export function reusePortEnabled(): boolean {
  return typeof (Deno as unknown as Record<string, unknown>).listenDatagram === "function";
}
