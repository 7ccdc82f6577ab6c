/**
 * Interoperability of our TLS 1.3 listener with real clients on loopback: OpenSSL, GnuTLS,
 * Python's ssl and Deno.connectTls (rustls). Each completes a handshake with every suite it
 * supports, with a HelloRetryRequest forced, sends and receives 1 MiB intact, and closes cleanly.
 */
import assert from "node:assert/strict";
import { type KeyType, makeOpensslPki } from "../_support/openssl_pki.ts";
import {
  echoPayload,
  gnutlsArgs,
  opensslArgs,
  PYTHON_ECHO_CLIENT,
  runPeer,
} from "../_support/peers.ts";
import { startTestServer, type TestServer } from "../_support/test_server.ts";

const pki = await makeOpensslPki();
const payload = echoPayload(1024);
globalThis.addEventListener("unload", () => {
  Deno.removeSync(pki.dir, { recursive: true });
});

async function withServer(
  options: {
    key?: KeyType;
    groups?: ("x25519" | "secp256r1" | "secp384r1")[];
    minVersion?: "1.2" | "1.3";
    signing?: "sync" | "async" | "auto";
  },
  body: (server: TestServer) => Promise<void>,
): Promise<void> {
  const leaf = await pki.server(options.key ?? "ec256");
  const server = await startTestServer({
    certPem: leaf.certPem + pki.ca.certPem,
    keyPem: leaf.keyPem,
    ...(options.groups ? { groups: options.groups } : {}),
    ...(options.minVersion ? { minVersion: options.minVersion } : {}),
    ...(options.signing ? { signing: options.signing } : {}),
  });
  try {
    await body(server);
  } finally {
    await server.close();
  }
}

function assertEcho(run: { code: number; stdout: Uint8Array; stderr: string }, label: string) {
  assert.equal(run.code, 0, `${label} exited ${run.code}: ${run.stderr.slice(-800)}`);
  assert.equal(run.stdout.length, payload.length, `${label} echoed ${run.stdout.length} bytes`);
  assert.ok(run.stdout.every((b, i) => b === payload[i]), `${label} echo differs`);
}

function lastAccess(server: TestServer) {
  return server.access.at(-1);
}

const OPENSSL_SUITES = [
  "TLS_AES_128_GCM_SHA256",
  "TLS_AES_256_GCM_SHA384",
  "TLS_CHACHA20_POLY1305_SHA256",
];
for (const suite of OPENSSL_SUITES) {
  Deno.test(`openssl s_client completes ${suite} and echoes 1 MiB`, async () => {
    await withServer({}, async (server) => {
      const run = await runPeer(
        "openssl",
        opensslArgs(server.port, pki.ca.certPath, { suite }),
        payload,
      );
      assertEcho(run, "openssl");
      await waitForAccess(server);
      assert.equal(lastAccess(server)?.tls?.cipherSuite, suite);
      assert.equal(lastAccess(server)?.closeReason, "close_notify sent");
    });
  });
}

for (const group of ["X25519", "P-256", "P-384"]) {
  Deno.test(`openssl s_client agrees on group ${group}`, async () => {
    await withServer({}, async (server) => {
      const run = await runPeer(
        "openssl",
        opensslArgs(server.port, pki.ca.certPath, { groups: group }),
        payload,
      );
      assertEcho(run, "openssl");
    });
  });
}

Deno.test("openssl s_client completes a forced HelloRetryRequest", async () => {
  await withServer({ groups: ["secp384r1"] }, async (server) => {
    const run = await runPeer(
      "openssl",
      opensslArgs(server.port, pki.ca.certPath, { groups: "X25519:P-384" }),
      payload,
    );
    assertEcho(run, "openssl");
    await waitForAccess(server);
    assert.equal(lastAccess(server)?.tls?.helloRetry, true);
  });
});

for (const key of ["ec384", "ed25519", "rsa2048"] as const) {
  Deno.test(`openssl s_client verifies a ${key} server certificate`, async () => {
    await withServer({ key }, async (server) => {
      const run = await runPeer("openssl", opensslArgs(server.port, pki.ca.certPath), payload);
      assertEcho(run, "openssl");
    });
  });
}

Deno.test("with min_version 1.3, a TLS 1.2-only client gets a protocol_version alert", async () => {
  await withServer({ minVersion: "1.3" }, async (server) => {
    const run = await runPeer(
      "openssl",
      opensslArgs(server.port, pki.ca.certPath, { tls12: true }),
      new Uint8Array(),
    );
    assert.notEqual(run.code, 0);
    assert.match(run.stderr, /alert protocol version/);
  });
});

const GNUTLS_CIPHERS = ["AES-128-GCM", "AES-256-GCM", "CHACHA20-POLY1305"];
for (const cipher of GNUTLS_CIPHERS) {
  Deno.test(`gnutls-cli completes ${cipher} and echoes 1 MiB`, async () => {
    await withServer({}, async (server) => {
      const run = await runPeer(
        "gnutls-cli",
        gnutlsArgs(server.port, pki.ca.certPath, { cipher }),
        payload,
      );
      assertEcho(run, "gnutls-cli");
    });
  });
}

Deno.test("gnutls-cli completes a forced HelloRetryRequest", async () => {
  // GnuTLS sends shares for its first two groups; the server only takes the third.
  await withServer({ groups: ["secp384r1"] }, async (server) => {
    const run = await runPeer(
      "gnutls-cli",
      gnutlsArgs(server.port, pki.ca.certPath, {
        group: "GROUP-X25519:+GROUP-SECP256R1:+GROUP-SECP384R1",
      }),
      payload,
    );
    assertEcho(run, "gnutls-cli");
    await waitForAccess(server);
    assert.equal(lastAccess(server)?.tls?.helloRetry, true);
  });
});

for (const groups of [undefined, ["secp256r1" as const]]) {
  Deno.test(`Python ssl echoes 1 MiB${groups ? " after a HelloRetryRequest" : ""}`, async () => {
    await withServer(groups ? { groups } : {}, async (server) => {
      const run = await runPeer(
        "python3",
        ["-c", PYTHON_ECHO_CLIENT, String(server.port), pki.ca.certPath, String(payload.length)],
        payload,
      );
      assertEcho(run, "python");
      assert.match(run.stderr, /TLSv1\.3/);
    });
  });
}

for (const groups of [undefined, ["secp384r1" as const]]) {
  Deno.test(`Deno.connectTls echoes 1 MiB${groups ? " after a HelloRetryRequest" : ""}`, async () => {
    await withServer(groups ? { groups } : {}, async (server) => {
      const conn = await Deno.connectTls({
        hostname: "127.0.0.1",
        port: server.port,
        caCerts: [pki.ca.certPem],
      });
      const writing = (async () => {
        let off = 0;
        while (off < payload.length) off += await conn.write(payload.subarray(off));
      })();
      const received = new Uint8Array(payload.length + 16);
      let got = 0;
      const buf = new Uint8Array(65536);
      while (true) {
        const n = await conn.read(buf);
        if (n === null) break;
        received.set(buf.subarray(0, Math.min(n, received.length - got)), got);
        got += n;
      }
      await writing;
      conn.close();
      assert.equal(got, payload.length);
      assert.ok(received.subarray(0, got).every((b, i) => b === payload[i]));
      if (groups) {
        await waitForAccess(server);
        assert.equal(lastAccess(server)?.tls?.helloRetry, true);
      }
    });
  });
}

/** The access record is written after the connection is torn down; give it a moment. */
async function waitForAccess(server: TestServer): Promise<void> {
  for (let i = 0; i < 50 && server.access.length === 0; i++) {
    await new Promise((r) => setTimeout(r, 20));
  }
}

for (const key of ["ec256", "rsa2048"] as const) {
  Deno.test(`with asynchronous signing, OpenSSL (1.3 and 1.2), GnuTLS and Python complete concurrent handshakes with a ${key} key`, async () => {
    await withServer({ key, signing: "async", minVersion: "1.2" }, async (server) => {
      const runs = await Promise.all([
        runPeer("openssl", opensslArgs(server.port, pki.ca.certPath), payload),
        runPeer("openssl", opensslArgs(server.port, pki.ca.certPath, { tls12: true }), payload),
        runPeer("gnutls-cli", gnutlsArgs(server.port, pki.ca.certPath), payload),
        runPeer(
          "python3",
          ["-c", PYTHON_ECHO_CLIENT, String(server.port), pki.ca.certPath, String(payload.length)],
          payload,
        ),
      ]);
      runs.forEach((run, i) => assertEcho(run, ["openssl", "openssl 1.2", "gnutls", "python"][i]!));
      const versions = server.access.map((a) => a.tls?.version).sort();
      assert.deepEqual(versions, ["TLSv1.2", "TLSv1.3", "TLSv1.3", "TLSv1.3"]);
    });
  });
}
