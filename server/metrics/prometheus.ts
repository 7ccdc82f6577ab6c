/**
 * The metrics registry behind `Metrics`, exposed in the Prometheus text format (version 0.0.4)
 * by prom-client. prom-client was measured against a small in-house registry under Deno: it
 * works unchanged, costs about 0.1 µs per counter increment and 0.25 µs per histogram
 * observation (in-house: 0.01 µs), which is below 1 % of the cheapest IMAP command and far
 * below a handshake, and it gets the exposition format (escaping, histograms, OpenMetrics)
 * right without code of ours. Its default Node.js collectors are not used: under Deno the
 * event-loop delay monitor reports nonsense, so lag, heap and RSS are measured here.
 */
import client from "prom-client";
import { COMMANDS } from "../../protocol/imap/commands/mod.ts";
import { FastHistogram } from "./fast_histogram.ts";
import type {
  AuthMechanism,
  AuthResultLabel,
  CommandResult,
  DirectoryLookupKind,
  HandshakeObservation,
  LmtpDeliveryResult,
  Metrics,
  RevocationPoint,
} from "./metrics.ts";

/** The exposition's HTTP content type. */
export const CONTENT_TYPE = client.Registry.PROMETHEUS_CONTENT_TYPE;

export interface PrometheusOptions {
  /** Size in bytes of the store's files, read at every scrape; null when unknown. */
  readonly databaseBytes?: () => number | null;
  /** How often the event-loop lag is sampled. Default 1 s. */
  readonly lagIntervalMs?: number;
}

const HANDSHAKE_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const COMMAND_BUCKETS = [
  0.0001,
  0.00025,
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  5,
  30,
];
const LOOKUP_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const STORE_BUCKETS = [
  0.00005,
  0.0001,
  0.00025,
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  1,
];

/** Command names as labels: the command table's names, everything else "other". */
export function commandLabel(name: string): string {
  return COMMANDS.has(name) ? name : "other";
}

/** A `Metrics` that records into a prom-client registry. */
export class PrometheusMetrics implements Metrics {
  readonly registry: client.Registry = new client.Registry();
  readonly #accepted: client.Counter<"listener">;
  readonly #open: client.Gauge<"listener">;
  readonly #refused: client.Counter<"listener">;
  readonly #received: client.Counter;
  readonly #sent: client.Counter;
  readonly #handshakes: client.Counter<"version" | "suite" | "group" | "result">;
  readonly #handshakeSeconds: client.Histogram<"result">;
  readonly #alertsSent: client.Counter<"description">;
  readonly #alertsReceived: client.Counter<"description">;
  readonly #auth: client.Counter<"mechanism" | "result">;
  readonly #lookups: client.Counter<"kind" | "result">;
  readonly #lookupSeconds: client.Histogram<"kind">;
  readonly #cacheHits: client.Counter;
  readonly #revocations: client.Counter<"point">;
  readonly #lmtpDeliveries: client.Counter<"result">;
  readonly #commands: client.Counter<"command" | "result">;
  readonly #commandSeconds: client.Histogram<"command">;
  readonly #storeErrors: client.Counter<"operation">;
  readonly #storeSeconds: FastHistogram;
  #lag = 0;
  readonly #lagTimer: ReturnType<typeof setInterval>;

  constructor(options: PrometheusOptions = {}) {
    const registers = [this.registry];
    const counter = <L extends string>(name: string, help: string, labelNames: L[] = []) =>
      new client.Counter<L>({ name, help, labelNames, registers });
    const histogram = <L extends string>(
      name: string,
      help: string,
      buckets: number[],
      labelNames: L[] = [],
    ) => new client.Histogram<L>({ name, help, labelNames, buckets, registers });
    const gauge = (name: string, help: string, read: () => number | null) =>
      new client.Gauge({
        name,
        help,
        registers,
        collect() {
          const value = read();
          if (value !== null) this.set(value);
        },
      });

    this.#accepted = counter(
      "postern_connections_accepted_total",
      "Connections accepted",
      ["listener"],
    );
    this.#open = new client.Gauge({
      name: "postern_connections_open",
      help: "Connections open now",
      labelNames: ["listener"],
      registers,
    });
    this.#refused = counter(
      "postern_connections_refused_total",
      "Connections closed at once (too many from one address)",
      ["listener"],
    );
    this.#received = counter("postern_received_bytes_total", "Octets read from client sockets");
    this.#sent = counter("postern_sent_bytes_total", "Octets written to client sockets");
    this.#handshakes = counter("postern_tls_handshakes_total", "TLS handshakes by outcome", [
      "version",
      "suite",
      "group",
      "result",
    ]);
    this.#handshakeSeconds = histogram(
      "postern_tls_handshake_duration_seconds",
      "TLS handshake duration, first byte to Finished (directory check included)",
      HANDSHAKE_BUCKETS,
      ["result"],
    );
    this.#alertsSent = counter("postern_tls_alerts_sent_total", "TLS alerts sent", [
      "description",
    ]);
    this.#alertsReceived = counter("postern_tls_alerts_received_total", "TLS alerts received", [
      "description",
    ]);
    this.#auth = counter("postern_authentications_total", "Authentication attempts", [
      "mechanism",
      "result",
    ]);
    this.#lookups = counter("postern_directory_lookups_total", "Directory (LDAP) lookups", [
      "kind",
      "result",
    ]);
    this.#lookupSeconds = histogram(
      "postern_directory_lookup_duration_seconds",
      "Directory lookup duration",
      LOOKUP_BUCKETS,
      ["kind"],
    );
    this.#cacheHits = counter(
      "postern_directory_cache_hits_total",
      "Certificate checks answered from the directory cache",
    );
    this.#revocations = counter(
      "postern_directory_revocations_total",
      "Certificates the directory no longer holds, by where it was noticed",
      ["point"],
    );
    this.#lmtpDeliveries = counter(
      "postern_lmtp_deliveries_total",
      "LMTP recipients answered after the message, by reply class (ok, temporary, permanent)",
      ["result"],
    );
    this.#commands = counter("postern_imap_commands_total", "IMAP commands completed", [
      "command",
      "result",
    ]);
    this.#commandSeconds = histogram(
      "postern_imap_command_duration_seconds",
      "IMAP command duration, parsed to tagged response",
      COMMAND_BUCKETS,
      ["command"],
    );
    // Calls are counted by the histogram's _count; failures once more here.
    this.#storeErrors = counter("postern_store_errors_total", "Mail store calls that failed", [
      "operation",
    ]);
    this.#storeSeconds = new FastHistogram(
      "postern_store_operation_duration_seconds",
      "Mail store call duration (its _count counts calls)",
      "operation",
      STORE_BUCKETS,
    );
    // The registry takes any metric with name, help, type and get(); prom-client formats it.
    this.registry.registerMetric(this.#storeSeconds as unknown as client.Histogram);
    gauge(
      "postern_store_database_size_bytes",
      "Size of the database files",
      options.databaseBytes ?? (() => null),
    );
    gauge(
      "postern_event_loop_lag_seconds",
      "How late the last event-loop probe timer fired",
      () => this.#lag,
    );
    gauge(
      "process_resident_memory_bytes",
      "Resident set size",
      () => Deno.memoryUsage().rss,
    );
    gauge("postern_heap_used_bytes", "V8 heap in use", () => Deno.memoryUsage().heapUsed);
    gauge("postern_heap_total_bytes", "V8 heap reserved", () => Deno.memoryUsage().heapTotal);
    const started = Date.now() / 1000 - performance.now() / 1000;
    gauge("process_start_time_seconds", "Start time since the Unix epoch", () => started);

    const interval = options.lagIntervalMs ?? 1000;
    let expected = performance.now() + interval;
    const timer = setInterval(() => {
      const now = performance.now();
      this.#lag = Math.max(0, now - expected) / 1000;
      expected = now + interval;
    }, interval);
    Deno.unrefTimer(timer as unknown as number);
    this.#lagTimer = timer;
  }

  /** The exposition text. */
  expose(): Promise<string> {
    return this.registry.metrics();
  }

  /** Stops the event-loop probe. */
  close(): void {
    clearInterval(this.#lagTimer);
  }

  connectionOpened(listener: string): void {
    this.#accepted.inc({ listener });
    this.#open.inc({ listener });
  }
  connectionClosed(listener: string): void {
    this.#open.dec({ listener });
  }
  connectionRefused(listener: string): void {
    this.#refused.inc({ listener });
  }
  bytesReceived(octets: number): void {
    this.#received.inc(octets);
  }
  bytesSent(octets: number): void {
    this.#sent.inc(octets);
  }
  handshake(o: HandshakeObservation): void {
    this.#handshakes.inc({ version: o.version, suite: o.suite, group: o.group, result: o.result });
    this.#handshakeSeconds.observe({ result: o.result }, o.seconds);
  }
  tlsAlert(direction: "sent" | "received", description: string): void {
    (direction === "sent" ? this.#alertsSent : this.#alertsReceived).inc({ description });
  }
  authentication(mechanism: AuthMechanism, result: AuthResultLabel): void {
    this.#auth.inc({ mechanism, result });
  }
  directoryLookup(kind: DirectoryLookupKind, result: string, seconds: number): void {
    this.#lookups.inc({ kind, result });
    this.#lookupSeconds.observe({ kind }, seconds);
  }
  directoryCacheHit(): void {
    this.#cacheHits.inc();
  }
  lmtpDelivery(result: LmtpDeliveryResult): void {
    this.#lmtpDeliveries.inc({ result });
  }

  revocation(point: RevocationPoint): void {
    this.#revocations.inc({ point });
  }
  imapCommand(name: string, result: CommandResult, seconds: number): void {
    const command = commandLabel(name);
    this.#commands.inc({ command, result });
    this.#commandSeconds.observe({ command }, seconds);
  }
  storeOperation(operation: string, ok: boolean, seconds: number): void {
    if (!ok) this.#storeErrors.inc({ operation });
    this.#storeSeconds.observe(operation, seconds);
  }
}
