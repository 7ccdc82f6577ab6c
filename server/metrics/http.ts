/**
 * The observability listener: `/metrics` (Prometheus text format), `/healthz` (the process
 * answers) and `/readyz` (listeners up, store and directory answering; the reason when not).
 * Plain HTTP through `Deno.serve`, meant for loopback or a private network; or HTTPS over
 * Postern's own TLS with required client certificates, where a minimal HTTP/1.1 reader takes
 * one bodiless GET per connection.
 */
import { concatBytes } from "../../protocol/bytes.ts";
import type { ServerConfig } from "../../protocol/tls/mod.ts";
import type { ByteChannel } from "../connection/channel.ts";
import { ListenerGroup } from "../connection/listener.ts";
import { CONTENT_TYPE, type PrometheusMetrics } from "./prometheus.ts";

export interface MetricsServerOptions {
  readonly hostname: string;
  readonly port: number;
  /** The exposition (a Worker supervisor adds its Workers' figures up). */
  readonly metrics: Pick<PrometheusMetrics, "expose">;
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

export interface MetricsTlsOptions extends MetricsServerOptions {
  /** Read on every handshake, so a reload's new server certificate is used. */
  readonly tlsConfig: () => ServerConfig;
  readonly handshakeTimeoutMs: number;
  /** A connection that has not sent its request head by then is closed. Default 10 s. */
  readonly requestTimeoutMs?: number;
}

/** Longest request head (request line and headers) read. */
const MAX_HEAD_BYTES = 8 * 1024;
const REASONS: Readonly<Record<number, string>> = {
  200: "OK",
  400: "Bad Request",
  404: "Not Found",
  405: "Method Not Allowed",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

/** Starts the HTTPS listener; the TLS engine refuses peers without a valid client certificate. */
export function startMetricsTlsServer(options: MetricsTlsOptions): MetricsServer {
  const group = new ListenerGroup({
    tlsConfig: options.tlsConfig,
    handshakeTimeoutMs: options.handshakeTimeoutMs,
    maxConnectionsPerAddress: 16,
    application: (context) =>
      serveHttp(context.channel, options, options.requestTimeoutMs ?? 10_000),
    onAccess: () => {},
    onError: (_message, error) => options.onError(error),
  });
  const [addr] = group.listen([
    { hostname: options.hostname, port: options.port, tls: "implicit" },
  ]);
  return { addr: addr!, close: () => group.close(1000) };
}

/** Answers one HTTP/1.1 request on `channel` and closes it (RFC 9112, Sections 2 and 3). */
async function serveHttp(
  channel: ByteChannel,
  options: MetricsServerOptions,
  timeoutMs: number,
): Promise<void> {
  const timer = setTimeout(() => void channel.close(), timeoutMs);
  try {
    const head = await readHead(channel);
    if (head === null) return;
    const response = await answer(head, options);
    const body = new Uint8Array(await response.arrayBuffer());
    const lines = [
      `HTTP/1.1 ${response.status} ${REASONS[response.status] ?? ""}`,
      ...[...response.headers].map(([name, value]) => `${name}: ${value}`),
      `content-length: ${body.length}`,
      "connection: close",
      "",
      "",
    ];
    const out = new TextEncoder().encode(lines.join("\r\n"));
    await channel.write(head.method === "HEAD" ? out : concatBytes([out, body]));
  } finally {
    clearTimeout(timer);
    await channel.close();
  }
}

interface RequestHead {
  readonly method: string;
  readonly target: string;
  readonly status?: number;
}

/** Reads up to the blank line ending the head; null when the peer leaves first. */
async function readHead(channel: ByteChannel): Promise<RequestHead | null> {
  let text = "";
  const decoder = new TextDecoder("latin1");
  while (!text.includes("\r\n\r\n")) {
    const chunk = await channel.read();
    if (chunk === null) return null;
    text += decoder.decode(chunk);
    if (text.length > MAX_HEAD_BYTES && !text.slice(0, MAX_HEAD_BYTES).includes("\r\n\r\n")) {
      return { method: "GET", target: "/", status: 431 };
    }
  }
  const line = /^([A-Z]{1,16}) (\/[\x21-\x7e]*) HTTP\/1\.[01]\r\n/.exec(text);
  if (line === null) return { method: "GET", target: "/", status: 400 };
  return { method: line[1]!, target: line[2]! };
}

function answer(head: RequestHead, options: MetricsServerOptions): Promise<Response> {
  const text = { "content-type": TEXT };
  if (head.status !== undefined) {
    return Promise.resolve(
      new Response(`${REASONS[head.status]?.toLowerCase()}\n`, {
        status: head.status,
        headers: text,
      }),
    );
  }
  if (head.method !== "GET" && head.method !== "HEAD") {
    return handle(new Request("https://metrics/", { method: "POST" }), options);
  }
  return handle(new Request(`https://metrics${head.target}`, { method: head.method }), options);
}
