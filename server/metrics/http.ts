/**
 * The observability listener: `/metrics` (Prometheus text format), `/healthz` (the process
 * answers) and `/readyz` (listeners up, store and directory answering; the reason when not).
 * Plain HTTP, meant for loopback or a private network.
 */
import { CONTENT_TYPE, type PrometheusMetrics } from "./prometheus.ts";

export interface MetricsServerOptions {
  readonly hostname: string;
  readonly port: number;
  readonly metrics: PrometheusMetrics;
  /** Null when ready, else the reason. */
  readonly readiness: () => Promise<string | null>;
  readonly onError: (error: unknown) => void;
}

export interface MetricsServer {
  readonly addr: Deno.NetAddr;
  close(): Promise<void>;
}

const TEXT = "text/plain; charset=utf-8";

/** Starts the listener; throws when the address cannot be bound. */
export function startMetricsServer(options: MetricsServerOptions): MetricsServer {
  const controller = new AbortController();
  const server = Deno.serve({
    hostname: options.hostname,
    port: options.port,
    signal: controller.signal,
    onListen: () => {},
    onError: (error) => {
      options.onError(error);
      return new Response("internal error\n", { status: 500, headers: { "content-type": TEXT } });
    },
  }, (request) => handle(request, options));
  return {
    addr: server.addr,
    async close() {
      controller.abort();
      await server.finished;
    },
  };
}

async function handle(request: Request, options: MetricsServerOptions): Promise<Response> {
  if (request.method !== "GET" && request.method !== "HEAD") {
    return new Response("method not allowed\n", {
      status: 405,
      headers: { allow: "GET, HEAD", "content-type": TEXT },
    });
  }
  switch (new URL(request.url).pathname) {
    case "/metrics":
      return new Response(await options.metrics.expose(), {
        headers: { "content-type": CONTENT_TYPE },
      });
    case "/healthz":
      return new Response("ok\n", { headers: { "content-type": TEXT } });
    case "/readyz": {
      const reason = await options.readiness();
      return reason === null
        ? new Response("ready\n", { headers: { "content-type": TEXT } })
        : new Response(`not ready: ${reason}\n`, {
          status: 503,
          headers: { "content-type": TEXT },
        });
    }
    default:
      return new Response("not found\n", { status: 404, headers: { "content-type": TEXT } });
  }
}
