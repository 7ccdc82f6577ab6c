/**
 * Client-certificate benchmark: full TLS 1.3 handshakes per second through our listener with a
 * P-256 client certificate presented and verified (RFC 8446, Section 4.4.2-4.4.3), next to the
 * same handshake without one, plus where the server's time goes: path validation (RFC 5280,
 * Section 6) with its signature checks, the client's CertificateVerify, the key exchange and the
 * server's own signature. The client is Deno.connectTls (rustls). As in IMAP, the server speaks
 * first: each handshake ends when the client has read the server's greeting, so the server has
 * finished verifying before the next one starts. (A client-first echo would measure the client's
 * Nagle delay instead: rustls' Finished and the first record wait for a delayed ACK, ~40 ms.)
 *
 * Run directly: `deno run -A bench/mtls_bench.ts [rounds]`.
 */
import type { CryptoProvider, KeyShare } from "../protocol/crypto/provider.ts";
import { defaultProvider } from "../protocol/crypto/mod.ts";
import type { ServerConfig } from "../protocol/tls/mod.ts";
import type { ClientCertVerifier, VerifiedPeer } from "../protocol/x509/identity.ts";
import { ListenerGroup } from "../server/connection/listener.ts";
import { buildServerConfig } from "../server/connection/tls_config.ts";
import { makeOpensslPki, type OpensslPki } from "../tests/_support/openssl_pki.ts";

/** Server time per handshake, in milliseconds, by step. */
export interface MtlsSteps {
  /** The whole `ClientCertVerifier.verify()` call: parsing, path building and checks. */
  readonly pathValidationMs: number;
  /** Of which: certificate signature checks along the path. */
  readonly pathSignaturesMs: number;
  /** How many certificate signatures the path check verified. */
  readonly pathSignatureChecks: number;
  /** The check of the client's CertificateVerify signature. */
  readonly certificateVerifyMs: number;
  /** Ephemeral key generation and shared-secret computation. */
  readonly keyExchangeMs: number;
  /** The server's own CertificateVerify signature. */
  readonly serverSignatureMs: number;
  /**
   * Elapsed time over handshakes (the inverse of the throughput): everything else, the client's
   * own work, the record layer and the event loop, is the rest of it.
   */
  readonly handshakeMs: number;
}

export interface MtlsBreakdown {
  readonly withCert: MtlsSteps;
  readonly withoutCert: MtlsSteps;
  /** The server step that costs most with a client certificate. */
  readonly dominant: keyof Omit<
    MtlsSteps,
    "handshakeMs" | "pathSignaturesMs" | "pathSignatureChecks"
  >;
}

export interface MtlsFigures {
  /** Handshakes per second with no client certificate (the server still asks for one). */
  readonly withoutCert: number;
  /** Handshakes per second with a P-256 client certificate presented and verified. */
  readonly withCert: number;
  readonly breakdown: MtlsBreakdown;
}

/** Accumulated server time by step, filled by the timing wrappers below. */
class Stopwatch {
  path = 0;
  pathSignatures = 0;
  pathChecks = 0;
  certificateVerify = 0;
  keyExchange = 0;
  serverSignature = 0;
  inPath = false;

  reset(): void {
    this.path =
      this.pathSignatures =
      this.pathChecks =
      this.certificateVerify =
        0;
    this.keyExchange = this.serverSignature = 0;
  }

  steps(handshakes: number, seconds: number): MtlsSteps {
    return {
      pathValidationMs: this.path / handshakes,
      pathSignaturesMs: this.pathSignatures / handshakes,
      pathSignatureChecks: this.pathChecks / handshakes,
      certificateVerifyMs: this.certificateVerify / handshakes,
      keyExchangeMs: this.keyExchange / handshakes,
      serverSignatureMs: this.serverSignature / handshakes,
      handshakeMs: (seconds * 1000) / handshakes,
    };
  }
}

function timed<T>(add: (ms: number) => void, run: () => T): T {
  const started = performance.now();
  try {
    return run();
  } finally {
    add(performance.now() - started);
  }
}

/** The default provider with its signature and key-exchange calls timed. */
function timingProvider(inner: CryptoProvider, watch: Stopwatch): CryptoProvider {
  const timedShare = (share: KeyShare): KeyShare => ({
    group: share.group,
    publicKey: share.publicKey,
    computeSecret: (peer) =>
      timed((ms) => watch.keyExchange += ms, () => share.computeSecret(peer)),
  });
  return {
    name: `${inner.name}+timing`,
    randomBytes: (n) => inner.randomBytes(n),
    createHash: (a) => inner.createHash(a),
    hash: (a, d) => inner.hash(a, d),
    hmac: (a, k, d) => inner.hmac(a, k, d),
    hkdfExtract: (a, s, i) => inner.hkdfExtract(a, s, i),
    hkdfExpand: (a, p, i, l) => inner.hkdfExpand(a, p, i, l),
    createAead: (a, k) => inner.createAead(a, k),
    generateKeyShare: (g) =>
      timedShare(timed((ms) => watch.keyExchange += ms, () => inner.generateKeyShare(g))),
    keyShareFromPrivate: (g, p) => timedShare(inner.keyShareFromPrivate(g, p)),
    generatePrivateKey: (k) => inner.generatePrivateKey(k),
    publicKeyOf: (k) => inner.publicKeyOf(k),
    sign: (k, a, m) => timed((ms) => watch.serverSignature += ms, () => inner.sign(k, a, m)),
    verify: (k, a, m, s) =>
      timed(
        (ms) => {
          if (watch.inPath) {
            watch.pathSignatures += ms;
            watch.pathChecks++;
          } else {
            watch.certificateVerify += ms;
          }
        },
        () => inner.verify(k, a, m, s),
      ),
  };
}

function timingVerifier(inner: ClientCertVerifier, watch: Stopwatch): ClientCertVerifier {
  return {
    authorityNames: inner.authorityNames,
    verify(chain: readonly Uint8Array[]): VerifiedPeer {
      watch.inPath = true;
      try {
        return timed((ms) => watch.path += ms, () => inner.verify(chain));
      } finally {
        watch.inPath = false;
      }
    },
  };
}

const GREETING = new TextEncoder().encode("* OK ready\r\n");

/** One full handshake, until the client has read the server's greeting and close_notify. */
async function oneHandshake(
  port: number,
  caPem: string,
  client: { cert: string; key: string } | undefined,
  buf: Uint8Array,
): Promise<void> {
  const conn = await Deno.connectTls({
    hostname: "127.0.0.1",
    port,
    caCerts: [caPem],
    ...(client ? { cert: client.cert, key: client.key } : {}),
  });
  try {
    await conn.handshake();
    let got = 0;
    for (let reads = 0; reads < 8; reads++) {
      const n = await conn.read(buf);
      if (n === null) break;
      got += n;
    }
    if (got !== GREETING.length) throw new Error(`Greeting was ${got} bytes`);
  } finally {
    conn.close();
  }
}

/**
 * Runs `count` full handshakes, `concurrency` at a time; returns the elapsed seconds.
 * Concurrency hides the ~40 ms each rustls client loses to Nagle's algorithm against delayed
 * ACKs (its last flight leaves in two writes and Deno.connectTls cannot set TCP_NODELAY), so
 * that the figure measures CPU work rather than that timer.
 */
async function handshakeRounds(
  port: number,
  caPem: string,
  count: number,
  concurrency: number,
  client?: { cert: string; key: string },
): Promise<number> {
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    const buf = new Uint8Array(256);
    while (next < count) {
      next++;
      await oneHandshake(port, caPem, client, buf);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return (performance.now() - started) / 1000;
}

/**
 * Measures handshakes per second through our listener with and without a P-256 client
 * certificate (`rounds` handshakes each, after a warm-up), and the server's time by step.
 */
export async function benchMtls(
  pki: OpensslPki,
  rounds: number,
  concurrency = 16,
): Promise<MtlsFigures> {
  const serverCert = await pki.server("ec256");
  const clientCert = await pki.client("ec256", "bench");
  const watch = new Stopwatch();
  const base = buildServerConfig({
    certificatePem: serverCert.certPem + pki.ca.certPem,
    privateKeyPem: serverCert.keyPem,
    clientAuth: "optional",
    clientCaPems: [pki.ca.certPem],
    provider: timingProvider(defaultProvider, watch),
  });
  const auth = base.clientAuth!;
  const config: ServerConfig = {
    ...base,
    clientAuth: { mode: auth.mode, verifier: timingVerifier(auth.verifier, watch) },
  };
  const failures: string[] = [];
  const group = new ListenerGroup({
    tlsConfig: () => config,
    handshakeTimeoutMs: 10_000,
    maxConnectionsPerAddress: 1000,
    application: async (ctx) => {
      await ctx.channel.write(GREETING);
      await ctx.channel.close();
    },
    onAccess: (r) => {
      if (r.closeReason !== "close_notify sent") failures.push(r.closeReason);
    },
    onError: (message) => failures.push(message),
  });
  const [addr] = group.listen([{ hostname: "127.0.0.1", port: 0, tls: "implicit" }]);
  const port = addr!.port;
  const client = { cert: clientCert.certPem, key: clientCert.keyPem };
  try {
    const warmUp = Math.min(20, rounds);
    await handshakeRounds(port, pki.ca.certPem, warmUp, concurrency);
    await handshakeRounds(port, pki.ca.certPem, warmUp, concurrency, client);

    watch.reset();
    const plainSeconds = await handshakeRounds(port, pki.ca.certPem, rounds, concurrency);
    const withoutCert = watch.steps(rounds, plainSeconds);

    watch.reset();
    const certSeconds = await handshakeRounds(
      port,
      pki.ca.certPem,
      rounds,
      concurrency,
      client,
    );
    const withCert = watch.steps(rounds, certSeconds);

    if (failures.length > 0) throw new Error(`Handshakes failed: ${failures[0]}`);
    const candidates = [
      "pathValidationMs",
      "certificateVerifyMs",
      "keyExchangeMs",
      "serverSignatureMs",
    ] as const;
    const dominant = candidates.reduce((a, b) => withCert[a] >= withCert[b] ? a : b);
    return {
      withoutCert: rounds / plainSeconds,
      withCert: rounds / certSeconds,
      breakdown: { withCert, withoutCert, dominant },
    };
  } finally {
    await group.close(2000);
  }
}

/** The figures as a table, for `bench/main.ts` and direct runs. */
export function formatMtls(figures: MtlsFigures): string {
  const { withCert, withoutCert } = figures.breakdown;
  const ms = (v: number) => `${v.toFixed(3).padStart(8)} ms`;
  const line = (label: string, a: number, b: number) => `  ${label.padEnd(38)} ${ms(b)} ${ms(a)}`;
  return [
    `mTLS full handshakes, no client cert   ${figures.withoutCert.toFixed(1).padStart(8)} hs/s`,
    `mTLS full handshakes, P-256 client cert ${figures.withCert.toFixed(1).padStart(7)} hs/s` +
    `  (${(figures.withCert / figures.withoutCert).toFixed(2)}x)`,
    `  server time per handshake               with cert   without`,
    line(
      "path validation (verifier.verify)",
      withoutCert.pathValidationMs,
      withCert.pathValidationMs,
    ),
    line(
      `  of which ${withCert.pathSignatureChecks} certificate signature(s)`,
      withoutCert.pathSignaturesMs,
      withCert.pathSignaturesMs,
    ),
    line(
      "  of which parsing and checks",
      withoutCert.pathValidationMs - withoutCert.pathSignaturesMs,
      withCert.pathValidationMs - withCert.pathSignaturesMs,
    ),
    line(
      "client CertificateVerify check",
      withoutCert.certificateVerifyMs,
      withCert.certificateVerifyMs,
    ),
    line("key exchange (keygen + derive)", withoutCert.keyExchangeMs, withCert.keyExchangeMs),
    line(
      "server CertificateVerify signature",
      withoutCert.serverSignatureMs,
      withCert.serverSignatureMs,
    ),
    line("elapsed / handshakes (1 / throughput)", withoutCert.handshakeMs, withCert.handshakeMs),
    `  dominant step with a client certificate: ${figures.breakdown.dominant}; ` +
    `signature verification is ${signatureShare(figures.breakdown)}% of path validation + ` +
    "CertificateVerify",
  ].join("\n");
}

/** The share of signature verification in the two steps a client certificate adds. */
function signatureShare(b: MtlsBreakdown): string {
  const { pathValidationMs, pathSignaturesMs, certificateVerifyMs } = b.withCert;
  const steps = pathValidationMs + certificateVerifyMs;
  return steps > 0
    ? Math.round((100 * (pathSignaturesMs + certificateVerifyMs)) / steps).toString()
    : "n/a";
}

if (import.meta.main) {
  const rounds = Number(Deno.args[0] ?? 200);
  const pki = await makeOpensslPki();
  try {
    console.log(formatMtls(await benchMtls(pki, rounds)));
  } finally {
    await pki.remove();
  }
}
