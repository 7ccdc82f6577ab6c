/**
 * The HTTPS metrics listener's small HTTP/1.1 reader against raw requests over a real TLS
 * connection with a client certificate: good requests, HEAD, a bad request line, a head too
 * large, and requests split across records.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ensureDevPki, issueClientCertificate } from "../../../server/cli/dev_pki.ts";
import { buildServerConfig } from "../../../server/connection/tls_config.ts";
import { startMetricsTlsServer } from "../../../server/metrics/http.ts";
import { PrometheusMetrics } from "../../../server/metrics/prometheus.ts";

const dir = await Deno.makeTempDir({ prefix: "postern-metrics-http-" });
const pki = await ensureDevPki(dir);
const scraper = await issueClientCertificate(dir, "scraper");
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));

async function exchange(port: number, parts: readonly string[]): Promise<string> {
  const conn = await Deno.connectTls({
    hostname: "127.0.0.1",
    port,
    caCerts: [await Deno.readTextFile(pki.caCertificate)],
    cert: await Deno.readTextFile(scraper.certificate),
    key: await Deno.readTextFile(scraper.key),
    alpnProtocols: ["http/1.1"],
  });
  try {
    for (const part of parts) {
      await conn.write(new TextEncoder().encode(part));
      await new Promise((r) => setTimeout(r, 10));
    }
    let out = "";
    const buf = new Uint8Array(64 * 1024);
    for (;;) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) return out;
      out += new TextDecoder().decode(buf.subarray(0, n));
    }
  } finally {
    conn.close();
  }
}

Deno.test("the HTTPS metrics listener answers raw HTTP/1.1 and refuses malformed heads", async () => {
  const metrics = new PrometheusMetrics();
  const tls = {
    ...buildServerConfig({
      certificatePem: await Deno.readTextFile(pki.serverCertificate),
      privateKeyPem: await Deno.readTextFile(join(dir, "server.key")),
      clientAuth: "required",
      clientCaPems: [await Deno.readTextFile(pki.caCertificate)],
    }),
    alpnProtocols: ["http/1.1"],
  };
  const errors: unknown[] = [];
  const server = startMetricsTlsServer({
    hostname: "127.0.0.1",
    port: 0,
    metrics,
    readiness: () => Promise.resolve("store: gone"),
    onError: (e) => errors.push(e),
    tlsConfig: () => tls,
    handshakeTimeoutMs: 5000,
    requestTimeoutMs: 300,
  });
  const port = server.addr.port;
  try {
    const metricsAnswer = await exchange(port, [
      "GET /metr",
      "ics HTTP/1.1\r\nHost: x\r\n",
      "\r\n",
    ]);
    assert.match(metricsAnswer, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(metricsAnswer, /\r\ncontent-type: text\/plain; version=0\.0\.4/);
    assert.match(metricsAnswer, /\r\nconnection: close\r\n\r\n# HELP /);
    const length = Number(/\r\ncontent-length: (\d+)\r\n/.exec(metricsAnswer)?.[1]);
    assert.equal(length, new TextEncoder().encode(metricsAnswer.split("\r\n\r\n")[1]!).length);

    const head = await exchange(port, ["HEAD /healthz HTTP/1.0\r\n\r\n"]);
    assert.match(head, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(head, /\r\ncontent-length: 3\r\n/);
    assert.ok(head.endsWith("\r\n\r\n"), JSON.stringify(head));

    assert.match(
      await exchange(port, ["GET /readyz HTTP/1.1\r\n\r\n"]),
      /^HTTP\/1\.1 503 Service Unavailable\r\n[^]*\r\n\r\nnot ready: store: gone\n$/,
    );
    assert.match(await exchange(port, ["GET /x HTTP/1.1\r\n\r\n"]), /^HTTP\/1\.1 404 /);
    assert.match(
      await exchange(port, ["PUT /metrics HTTP/1.1\r\n\r\n"]),
      /^HTTP\/1\.1 405 [^]*\r\nallow: GET, HEAD\r\n/,
    );
    assert.match(await exchange(port, ["GET metrics HTTP/1.1\r\n\r\n"]), /^HTTP\/1\.1 400 /);
    assert.match(await exchange(port, ["\x00\x01\x02\r\n\r\n"]), /^HTTP\/1\.1 400 /);
    assert.match(
      await exchange(port, ["GET / HTTP/1.1\r\n", `X: ${"a".repeat(9000)}\r\n\r\n`]),
      /^HTTP\/1\.1 431 /,
    );
    // A peer that never finishes its head is closed after the request timeout, unanswered.
    assert.equal(await exchange(port, ["GET /metrics HTTP/1.1\r\n"]), "");
    assert.deepEqual(errors, []);
  } finally {
    await server.close();
    metrics.close();
  }
});
