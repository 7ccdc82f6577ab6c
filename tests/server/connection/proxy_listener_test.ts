/**
 * A PROXY protocol listener over real loopback sockets: the header is read before TLS (Deno's
 * rustls client then handshakes over the same socket) and before a plaintext greeting; the
 * client it names is what the access log and the per-address limit see. Untrusted senders,
 * missing, oversized and slow headers are refused, and do not hold up other connections.
 */
import assert from "node:assert/strict";
import { makeOpensslPki } from "../../_support/openssl_pki.ts";
import { startTestServer, type TestServer } from "../../_support/test_server.ts";
import { parseCidr, writeProxyV2 } from "../../../protocol/proxy/mod.ts";
import type { Application } from "../../../server/connection/listener.ts";
import { type Metrics, NO_METRICS } from "../../../server/metrics/metrics.ts";

const pki = await makeOpensslPki();
const leaf = await pki.server("ec256");
globalThis.addEventListener("unload", () => Deno.removeSync(pki.dir, { recursive: true }));

const enc = new TextEncoder();
const dec = new TextDecoder();
const LOOPBACK = { trusted: [parseCidr("127.0.0.1/32")!] };

/** Says which client the server believes it talks to, then echoes lines until the peer leaves. */
const whoAmI: Application = async (context) => {
  await context.channel.write(
    enc.encode(`you are ${context.remoteAddress} ${context.remotePort}\n`),
  );
  while (true) {
    const data = await context.channel.read();
    if (data === null) break;
    await context.channel.write(data);
  }
  await context.channel.close();
};

function header(address: string, port: number): Uint8Array {
  return writeProxyV2({
    source: { address, port },
    destination: { address: "127.0.0.1", port: 993 },
  });
}

/** Reads until `pattern` shows up in what was received, or the peer closes. */
async function readUntil(conn: Deno.Conn | Deno.TlsConn, pattern: RegExp): Promise<string> {
  let text = "";
  const buffer = new Uint8Array(4096);
  while (!pattern.test(text)) {
    const n = await conn.read(buffer).catch(() => null);
    if (n === null) break;
    text += dec.decode(buffer.subarray(0, n));
  }
  return text;
}

/** True when the server closed the connection (end of stream or reset) without a word. */
async function closedByServer(conn: Deno.Conn): Promise<boolean> {
  const n = await conn.read(new Uint8Array(16)).catch(() => null);
  conn.close();
  return n === null;
}

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 250 && !condition(); i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(condition(), "condition not met within 5 s");
}

async function withServer(
  options: Partial<Parameters<typeof startTestServer>[0]>,
  body: (server: TestServer) => Promise<void>,
): Promise<void> {
  const server = await startTestServer({
    certPem: leaf.certPem,
    keyPem: leaf.keyPem,
    application: whoAmI,
    proxy: LOOPBACK,
    ...options,
  });
  try {
    await body(server);
  } finally {
    await server.close();
  }
  assert.deepEqual(server.errors, []);
}

Deno.test("a v2 header before TLS names the client to the application and the access log", async () => {
  await withServer({}, async (server) => {
    const tcp = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    const local = (tcp.localAddr as Deno.NetAddr).port;
    await tcp.write(header("203.0.113.7", 51234));
    const tls = await Deno.startTls(tcp, { hostname: "localhost", caCerts: [pki.ca.certPem] });
    assert.equal(await readUntil(tls, /\n/), "you are 203.0.113.7 51234\n");
    await tls.write(enc.encode("ping\n"));
    assert.equal(await readUntil(tls, /ping\n/), "ping\n");
    tls.close();
    await until(() => server.access.length === 1);
    const record = server.access[0]!;
    assert.equal(record.peer, "203.0.113.7:51234");
    assert.deepEqual(record.notes, { proxy: `127.0.0.1:${local}` });
    assert.ok(record.tls !== null);
  });
});

Deno.test("an IPv6 client is logged in brackets; a v1 line works on a plaintext listener", async () => {
  await withServer({ tls: "starttls" }, async (server) => {
    const v2 = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    await v2.write(header("2001:db8::7", 40000));
    assert.equal(await readUntil(v2, /\n/), "you are 2001:db8::7 40000\n");
    v2.close();
    // Header and the first application bytes in one segment: the bytes after it are kept.
    const v1 = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    await v1.write(enc.encode("PROXY TCP4 198.51.100.2 127.0.0.1 6000 143\r\nhello\n"));
    assert.equal(await readUntil(v1, /hello\n/), "you are 198.51.100.2 6000\nhello\n");
    v1.close();
    await until(() => server.access.length === 2);
    assert.deepEqual(server.access.map((r) => r.peer).sort(), [
      "198.51.100.2:6000",
      "[2001:db8::7]:40000",
    ]);
  });
});

Deno.test("a LOCAL header (a balancer's health check) keeps the socket's address", async () => {
  await withServer({ tls: "starttls" }, async (server) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    const local = (conn.localAddr as Deno.NetAddr).port;
    await conn.write(writeProxyV2({ command: "local" }));
    assert.equal(await readUntil(conn, /\n/), `you are 127.0.0.1 ${local}\n`);
    conn.close();
  });
});

Deno.test("a PROXY header from an address outside trusted_proxies is refused unread", async () => {
  await withServer(
    { proxy: { trusted: [parseCidr("10.0.0.0/8")!, parseCidr("::1")!] } },
    async (server) => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
      await conn.write(header("203.0.113.7", 1));
      assert.ok(await closedByServer(conn));
      await until(() => server.access.length === 1);
      assert.match(server.access[0]!.peer, /^127\.0\.0\.1:\d+$/);
      assert.equal(
        server.access[0]!.closeReason,
        "PROXY header refused: address not in trusted_proxies",
      );
    },
  );
});

Deno.test("a connection without a header is refused at its first byte, a TLS client included", async () => {
  const refused: string[] = [];
  const metrics: Metrics = { ...NO_METRICS, connectionRefused: (l) => refused.push(l) };
  await withServer({ metrics }, async (server) => {
    await assert.rejects(
      Deno.connectTls({ hostname: "127.0.0.1", port: server.port, caCerts: [pki.ca.certPem] })
        .then((c) => c.handshake().finally(() => c.close())),
    );
    await until(() => server.access.length === 1);
    assert.equal(
      server.access[0]!.closeReason,
      "PROXY header refused: Expected a PROXY protocol header",
    );
    assert.equal(refused.length, 1);
  });
});

Deno.test("oversized, malformed and cut-off headers are refused with their reason", async () => {
  await withServer({}, async (server) => {
    const huge = header("203.0.113.7", 1).subarray(0, 16);
    huge[14] = 0x40; // 16 + 16384 bytes declared
    huge[15] = 0x00;
    const dgram = header("203.0.113.7", 1);
    dgram[13] = 0x12;
    const cases: [Uint8Array, string][] = [
      [huge, "PROXY v2 header too long: 16400 bytes (at most 1024)"],
      [dgram, "Unsupported PROXY v2 transport dgram"],
      [
        enc.encode("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"),
        "PROXY v1 line: unexpected control or non-ASCII byte",
      ],
      [header("203.0.113.7", 1).subarray(0, 20), "Closed within the PROXY header"],
    ];
    for (const [bytes, reason] of cases) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
      await conn.write(bytes);
      // The cut-off case ends from our side: half-close so that the server sees the end.
      if (reason.startsWith("Closed")) await conn.closeWrite();
      assert.ok(await closedByServer(conn), reason);
    }
    await until(() => server.access.length === cases.length);
    assert.deepEqual(
      server.access.map((r) => r.closeReason),
      cases.map(([, reason]) => `PROXY header refused: ${reason}`),
    );
  });
});

Deno.test("a header trickled byte by byte is cut off at the deadline (slowloris)", async () => {
  await withServer({ tls: "starttls", proxyHeaderTimeoutMs: 400 }, async (server) => {
    const bytes = header("203.0.113.7", 1);
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    let sent = 0;
    const trickle = (async () => {
      // One byte per 100 ms: each read makes progress, but the whole header would take 2.8 s.
      for (; sent < bytes.length; sent++) {
        await conn.write(bytes.subarray(sent, sent + 1)).catch(() => {});
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    // Meanwhile another client gets through untroubled.
    const other = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    await other.write(header("198.51.100.9", 9));
    assert.equal(await readUntil(other, /\n/), "you are 198.51.100.9 9\n");
    other.close();
    assert.ok(await closedByServer(conn));
    assert.ok(sent < bytes.length, `sent ${sent} of ${bytes.length}`);
    sent = bytes.length;
    await trickle;
    await until(() => server.access.length === 2);
    assert.ok(
      server.access.some((r) =>
        r.closeReason === "PROXY header refused: No complete PROXY header within 400 ms"
      ),
    );
  });
});

Deno.test("the per-address limit counts the clients behind the balancer, not the balancer", async () => {
  await withServer({ tls: "starttls", maxConnectionsPerAddress: 2 }, async (server) => {
    const open = async (address: string) => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
      await conn.write(header(address, 1000));
      return conn;
    };
    const a1 = await open("203.0.113.1");
    const a2 = await open("203.0.113.1");
    assert.match(await readUntil(a1, /\n/), /203\.0\.113\.1/);
    assert.match(await readUntil(a2, /\n/), /203\.0\.113\.1/);
    const a3 = await open("203.0.113.1");
    assert.ok(await closedByServer(a3));
    // Another client behind the same balancer (same socket address) is not affected.
    const b1 = await open("203.0.113.2");
    assert.match(await readUntil(b1, /\n/), /203\.0\.113\.2/);
    for (const c of [a1, a2, b1]) c.close();
    await until(() => server.access.length === 4);
    const refusal = server.access.find((r) => r.closeReason.startsWith("too many"))!;
    assert.equal(refusal.peer, "203.0.113.1:1000");
  });
});

Deno.test("20 proxied TLS clients and hostile peers at once: every good client is served", async () => {
  await withServer({ proxyHeaderTimeoutMs: 1000 }, async (server) => {
    const good = Array.from({ length: 20 }, async (_, i) => {
      const tcp = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
      await tcp.write(header(`198.51.100.${i + 1}`, 2000 + i));
      const tls = await Deno.startTls(tcp, { hostname: "localhost", caCerts: [pki.ca.certPem] });
      const greeting = await readUntil(tls, /\n/);
      await tls.write(enc.encode(`line ${i}\n`));
      const echo = await readUntil(tls, /line \d+\n/);
      tls.close();
      return `${greeting}${echo}`;
    });
    const hostile = Array.from({ length: 10 }, async (_, i) => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
      // Garbage, a stalled partial header, or an oversized one.
      const bytes = i % 3 === 0
        ? crypto.getRandomValues(new Uint8Array(64))
        : i % 3 === 1
        ? header("203.0.113.66", 1).subarray(0, 10)
        : Uint8Array.of(...header("203.0.113.66", 1).subarray(0, 14), 0xff, 0xff);
      await conn.write(bytes);
      return await closedByServer(conn);
    });
    const served = await Promise.all(good);
    served.forEach((text, i) => {
      assert.equal(text, `you are 198.51.100.${i + 1} ${2000 + i}\nline ${i}\n`);
    });
    assert.deepEqual(await Promise.all(hostile), new Array(10).fill(true));
    await until(() => server.access.length === 30);
  });
});

Deno.test("connections reset before the accept are skipped without an error or a pause", async () => {
  await withServer({ tls: "starttls" }, async (server) => {
    // SO_LINGER 0: close() sends RST, often before the listener has accepted the connection.
    const script = [
      "import socket, struct, sys",
      "for _ in range(50):",
      "    s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))",
      "    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))",
      "    s.close()",
    ].join("\n");
    const out = await new Deno.Command("python3", { args: ["-c", script, String(server.port)] })
      .output();
    assert.equal(out.code, 0, dec.decode(out.stderr));
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    await conn.write(header("198.51.100.3", 3));
    assert.equal(await readUntil(conn, /\n/), "you are 198.51.100.3 3\n");
    conn.close();
  });
});
