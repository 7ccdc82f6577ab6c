/**
 * The TLS listener under hostile or broken peers: a handshake that never finishes is closed,
 * garbage gets an alert, a peer that stops reading cannot make the server buffer without bound,
 * and none of it affects other connections.
 */
import assert from "node:assert/strict";
import { makeOpensslPki } from "../_support/openssl_pki.ts";
import { startTestServer } from "../_support/test_server.ts";

const pki = await makeOpensslPki();
const leaf = await pki.server("ec256");
globalThis.addEventListener("unload", () => Deno.removeSync(pki.dir, { recursive: true }));

async function readAll(conn: Deno.Conn, limitMs: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const buf = new Uint8Array(4096);
  const timer = setTimeout(() => conn.close(), limitMs);
  try {
    while (true) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) break;
      chunks.push(buf.slice(0, n));
    }
  } finally {
    clearTimeout(timer);
  }
  const out = new Uint8Array(chunks.reduce((a, c) => a + c.length, 0));
  let off = 0;
  for (const c of chunks) out.set(c, (off += c.length) - c.length);
  return out;
}

async function echoOnce(port: number): Promise<string> {
  const conn = await Deno.connectTls({ hostname: "127.0.0.1", port, caCerts: [pki.ca.certPem] });
  await conn.write(new TextEncoder().encode("ping\nQUIT\n"));
  const text = new TextDecoder().decode(await readAll(conn, 5000));
  try {
    conn.close();
  } catch {
    // Closed by the timer.
  }
  return text;
}

Deno.test("a handshake that does not finish in time is closed while others proceed", async () => {
  const server = await startTestServer({
    certPem: leaf.certPem,
    keyPem: leaf.keyPem,
    // Long enough for the honest client's handshake on a loaded 2-core machine.
    handshakeTimeoutMs: 1500,
  });
  try {
    const silent = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    const started = performance.now();
    // Another client completes while the silent one holds its connection open.
    assert.equal(await echoOnce(server.port), "ping\nQUIT\n");
    const rest = await readAll(silent, 10_000);
    const waited = performance.now() - started;
    silent.close();
    assert.equal(rest.length, 0);
    // Closed by the handshake timer, not by the end of the read above.
    assert.ok(waited < 9000, `closed after ${waited} ms`);
    assert.ok(server.access.some((r) => /timed out/.test(r.closeReason)));
  } finally {
    await server.close();
  }
});

Deno.test("garbage instead of a ClientHello gets a fatal alert, not a silent close", async () => {
  const server = await startTestServer({ certPem: leaf.certPem, keyPem: leaf.keyPem });
  try {
    for (
      const garbage of [
        "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        "\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00",
        "\x16\x03\x03\xff\xff" + "A".repeat(100),
      ]
    ) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
      await conn.write(Uint8Array.from(garbage, (c) => c.charCodeAt(0)));
      const reply = await readAll(conn, 3000);
      conn.close();
      assert.ok(reply.length >= 7, `no alert for ${JSON.stringify(garbage.slice(0, 10))}`);
      assert.equal(reply[0], 21, "an alert record");
      assert.equal(reply[5], 2, "a fatal alert");
    }
    assert.equal(await echoOnce(server.port), "ping\nQUIT\n");
  } finally {
    await server.close();
  }
});

Deno.test("a peer that stops reading is throttled by TCP, not buffered by the server", async () => {
  const server = await startTestServer({ certPem: leaf.certPem, keyPem: leaf.keyPem });
  try {
    const conn = await Deno.connectTls({
      hostname: "127.0.0.1",
      port: server.port,
      caCerts: [pki.ca.certPem],
    });
    await conn.handshake();
    const chunk = new Uint8Array(256 * 1024).fill(0x61);
    let written = 0;
    const deadline = performance.now() + 3000;
    // The echo service writes everything back; since we never read, its writes block, it stops
    // reading, and our writes must stall well before 256 MiB.
    while (performance.now() < deadline && written < 256 * 1024 * 1024) {
      const write = conn.write(chunk).then((n) => n);
      const timeout = new Promise<null>((r) => setTimeout(() => r(null), 500));
      const n = await Promise.race([write, timeout]);
      if (n === null) break;
      written += n;
    }
    assert.ok(written < 64 * 1024 * 1024, `wrote ${written} bytes without being throttled`);
    assert.equal(await echoOnce(server.port), "ping\nQUIT\n");
    conn.close();
  } finally {
    await server.close();
  }
});
