/**
 * The listener and TLS channel hooks over real sockets: a completed handshake with its
 * version, suite and group; a timeout, garbage (an alert sent) and a peer that leaves; the
 * listener's open/closed pairs, bytes and close_notify both ways.
 */
import assert from "node:assert/strict";
import { makeOpensslPki } from "../../_support/openssl_pki.ts";
import { startTestServer } from "../../_support/test_server.ts";
import { defaultProvider } from "../../../protocol/crypto/mod.ts";
import { TlsClientConnection } from "../../../protocol/tls/client.ts";
import { HandshakeType } from "../../../protocol/tls/wire.ts";
import { parseCertificate } from "../../../protocol/x509/certificate.ts";
import {
  type HandshakeObservation,
  type Metrics,
  NO_METRICS,
} from "../../../server/metrics/metrics.ts";

const pki = await makeOpensslPki();
const leaf = await pki.server("ec256");
globalThis.addEventListener("unload", () => Deno.removeSync(pki.dir, { recursive: true }));

function recorder() {
  const events = {
    handshakes: [] as HandshakeObservation[],
    alerts: [] as string[],
    opened: [] as string[],
    closed: [] as string[],
    bytesIn: 0,
    bytesOut: 0,
  };
  const metrics: Metrics = {
    ...NO_METRICS,
    handshake: (o) => events.handshakes.push(o),
    tlsAlert: (d, n) => events.alerts.push(`${d} ${n}`),
    connectionOpened: (l) => events.opened.push(l),
    connectionClosed: (l) => events.closed.push(l),
    bytesReceived: (n) => events.bytesIn += n,
    bytesSent: (n) => events.bytesOut += n,
  };
  return { events, metrics };
}

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !condition(); i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(condition(), "condition not met within 2 s");
}

Deno.test("a completed handshake is counted with its version, suite and group", async () => {
  const { events, metrics } = recorder();
  const server = await startTestServer({ certPem: leaf.certPem, keyPem: leaf.keyPem, metrics });
  try {
    const conn = await Deno.connectTls({
      hostname: "127.0.0.1",
      port: server.port,
      caCerts: [pki.ca.certPem],
    });
    await conn.write(new TextEncoder().encode("ping\nQUIT\n"));
    const buf = new Uint8Array(64);
    while ((await conn.read(buf).catch(() => null)) !== null) {
      // Until the echo service closes.
    }
    conn.close();
    await until(() => events.closed.length === 1);
    const label = `127.0.0.1:${server.port}/implicit`;
    assert.deepEqual(events.opened, [label]);
    assert.deepEqual(events.closed, [label]);
    assert.equal(events.handshakes.length, 1);
    const [h] = events.handshakes;
    assert.equal(h!.result, "ok");
    assert.equal(h!.version, "TLSv1.3");
    assert.match(
      h!.suite,
      /^TLS_(AES_128_GCM_SHA256|AES_256_GCM_SHA384|CHACHA20_POLY1305_SHA256)$/,
    );
    assert.match(h!.group, /^(x25519|secp256r1|secp384r1)$/);
    assert.ok(h!.seconds > 0 && h!.seconds < 10);
    assert.ok(events.alerts.includes("sent close_notify"), events.alerts.join());
    assert.ok(
      events.bytesIn > 200 && events.bytesOut > 500,
      `${events.bytesIn} ${events.bytesOut}`,
    );
  } finally {
    await server.close();
  }
});

/** A test server with a 300 ms handshake timeout, and what its metrics hooks recorded. */
async function recordingServer() {
  const { events, metrics } = recorder();
  const server = await startTestServer({
    certPem: leaf.certPem,
    keyPem: leaf.keyPem,
    handshakeTimeoutMs: 300,
    metrics,
  });
  return { events, server };
}

Deno.test("failed handshakes are counted as timeout, alert or closed", async () => {
  const { events, server } = await recordingServer();
  try {
    const silent = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    await until(() => events.handshakes.length === 1);
    silent.close();
    const garbage = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    await garbage.write(new TextEncoder().encode("GET / HTTP/1.0\r\n\r\n"));
    await until(() => events.handshakes.length === 2);
    garbage.close();
    const leaving = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    leaving.close();
    await until(() => events.handshakes.length === 3);
    assert.deepEqual(events.handshakes.map((h) => [h.result, h.version, h.suite, h.group]), [
      ["timeout", "none", "none", "none"],
      ["alert", "none", "none", "none"],
      ["closed", "none", "none", "none"],
    ]);
    assert.equal(events.alerts.length, 1, events.alerts.join());
    assert.match(events.alerts[0]!, /^sent (decode_error|unexpected_message|protocol_version)$/);
    await until(() => events.closed.length === 3);
  } finally {
    await server.close();
  }
});

/**
 * A client that reads the server's half-RTT flight and then sends nothing more, a Finished
 * that does not verify, or closes. Returns once it has done so.
 */
async function stopAfterFlight(
  port: number,
  then: "silent" | "tampered" | "leave",
): Promise<Deno.Conn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const tls = new TlsClientConnection({
    provider: defaultProvider,
    verifyServer: (chain) => parseCertificate(chain[0]!).publicKeyInfo.key!,
    serverName: "localhost",
    tamper: (type, msg) => {
      if (then === "tampered" && type === HandshakeType.finished) msg[msg.length - 1]! ^= 1;
      return msg;
    },
  });
  await conn.write(tls.takeOutgoing());
  const buf = new Uint8Array(16384);
  while (!tls.handshakeComplete) {
    const n = await conn.read(buf);
    assert.ok(n !== null, "the server's flight");
    tls.receive(buf.subarray(0, n));
  }
  if (then === "tampered") await conn.write(tls.takeOutgoing());
  if (then === "leave") conn.close();
  return conn;
}

Deno.test("a half-RTT handshake left unfinished times out, fails or ends closed, and is counted so", async () => {
  const { events, server } = await recordingServer();
  try {
    const silent = await stopAfterFlight(server.port, "silent");
    await until(() => events.handshakes.length === 1);
    silent.close();
    const tampered = await stopAfterFlight(server.port, "tampered");
    await until(() => events.handshakes.length === 2);
    tampered.close();
    await stopAfterFlight(server.port, "leave");
    await until(() => events.handshakes.length === 3);
    assert.deepEqual(events.handshakes.map((h) => h.result), ["timeout", "alert", "closed"]);
    assert.ok(events.alerts.includes("sent decrypt_error"), events.alerts.join());
    await until(() => server.access.length === 3);
    assert.deepEqual(server.access.map((a) => a.closeReason), [
      "handshake failed: Handshake timed out",
      "handshake failed: decrypt_error: Client Finished does not verify",
      "handshake failed: Peer closed during handshake",
    ]);
    assert.equal(server.errors.length, 0);
  } finally {
    await server.close();
  }
});
