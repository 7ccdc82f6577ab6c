/**
 * Starts our listener on a free loopback port with the echo service (or a given application),
 * for interoperability tests and benchmarks.
 */
import { buildServerConfig, type PemTlsInput } from "../../server/connection/tls_config.ts";
import {
  type AccessRecord,
  type Application,
  ListenerGroup,
  type ListenerSpec,
} from "../../server/connection/listener.ts";
import { runEcho } from "../../server/connection/echo.ts";
import type { PeerCheck, SigningMode } from "../../server/connection/tls_channel.ts";
import type { Metrics } from "../../server/metrics/metrics.ts";

export interface TestServer {
  readonly port: number;
  readonly access: AccessRecord[];
  readonly errors: unknown[];
  close(): Promise<void>;
}

export interface TestServerOptions extends Omit<PemTlsInput, "certificatePem" | "privateKeyPem"> {
  readonly certPem: string;
  readonly keyPem: string;
  readonly tls?: ListenerSpec["tls"];
  readonly application?: Application;
  readonly checkPeer?: PeerCheck;
  readonly handshakeTimeoutMs?: number;
  readonly metrics?: Metrics;
  /** Makes it a PROXY protocol listener trusting these balancers. */
  readonly proxy?: ListenerSpec["proxy"];
  readonly proxyHeaderTimeoutMs?: number;
  /** Default 1000. */
  readonly maxConnectionsPerAddress?: number;
  /** Where handshake signatures are made (default "sync", as the listener's default). */
  readonly signing?: SigningMode;
}

export async function startTestServer(options: TestServerOptions): Promise<TestServer> {
  const config = buildServerConfig({
    ...options,
    certificatePem: options.certPem,
    privateKeyPem: options.keyPem,
  });
  const access: AccessRecord[] = [];
  const errors: unknown[] = [];
  const group = new ListenerGroup({
    tlsConfig: () => config,
    handshakeTimeoutMs: options.handshakeTimeoutMs ?? 10_000,
    ...(options.signing ? { signing: options.signing } : {}),
    maxConnectionsPerAddress: options.maxConnectionsPerAddress ?? 1000,
    ...(options.checkPeer ? { checkPeer: options.checkPeer } : {}),
    application: options.application ?? ((ctx) => runEcho(ctx.channel)),
    onAccess: (r) => access.push(r),
    onError: (_m, e) => errors.push(e),
    ...(options.metrics ? { metrics: options.metrics } : {}),
    ...(options.proxyHeaderTimeoutMs ? { proxyHeaderTimeoutMs: options.proxyHeaderTimeoutMs } : {}),
  });
  const [addr] = group.listen([{
    hostname: "127.0.0.1",
    port: 0,
    tls: options.tls ?? "implicit",
    ...(options.proxy ? { proxy: options.proxy } : {}),
  }]);
  await Promise.resolve();
  return { port: addr!.port, access, errors, close: () => group.close(2000) };
}
