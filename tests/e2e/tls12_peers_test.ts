/**
 * TLS 1.2 with real clients forced to it, against a whole running Postern (min_version "1.2", the
 * default): OpenSSL with each suite (ECDSA and RSA server keys), session resumption by ticket and
 * by session ID, refused renegotiation; GnuTLS without 1.3; Python ssl with maximum_version
 * TLSv1_2; curl --tls-max 1.2, also with a client certificate and AUTHENTICATE EXTERNAL; NSS
 * tstclnt with the demo PKCS#12, also with EXTERNAL. Each logs in and FETCHes a message. The same peers without the cap still get TLS 1.3.
 * OpenSSL also presents client certificates of every key type over TLS 1.2: the driver's peer
 * check runs before the server's Finished, and its refusal reaches the client as its alert.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { issueClientCertificate, issueServerCertificate } from "../../server/cli/dev_pki.ts";
import { defaultProvider } from "../../protocol/crypto/mod.ts";
import { setupLogging } from "../../server/log.ts";
import { Tls12ClientConnection } from "../../protocol/tls/tls12/client12.ts";
import { HandshakeType12 } from "../../protocol/tls/tls12/wire12.ts";
import { makeMessage, RawImap, run } from "../_support/imap_clients.ts";
import { makeOpensslPki } from "../_support/openssl_pki.ts";
import { echoPayload, runPeer } from "../_support/peers.ts";
import { startTestServer } from "../_support/test_server.ts";
import { type RunningPostern, startPostern } from "../_support/postern.ts";

const USER = { name: "alice", password: "correct horse" } as const;
const SUBJECT = "TLS 1.2 probe";
const MESSAGE = makeMessage("tls12", SUBJECT, "Hello over TLS 1.2.\r\n");
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

/** LOGIN, SELECT, FETCH and LOGOUT, pipelined; the server closes after LOGOUT. */
const IMAP_SCRIPT = enc(
  `a LOGIN alice "${USER.password}"\r\nb SELECT INBOX\r\nc FETCH 1 (BODY[HEADER.FIELDS (SUBJECT)])\r\nd LOGOUT\r\n`,
);

async function withPostern(fn: (p: RunningPostern) => Promise<void>): Promise<void> {
  // Room for 20 sessions of one user beside the one that seeds the mailbox.
  const postern = await startPostern({
    users: [USER],
    limitsYaml: "  max_connections_per_user: 40",
  });
  try {
    const imap = await RawImap.tls(postern.implicitPort, postern.caPem);
    try {
      await imap.greeting();
      assert.equal((await imap.command(`LOGIN alice "${USER.password}"`)).status, "OK");
      assert.equal((await imap.command("APPEND INBOX", MESSAGE)).status, "OK");
      await imap.command("LOGOUT");
    } finally {
      await imap.close();
    }
    await fn(postern);
  } finally {
    await postern.stop();
  }
}

/** The session transcript shows a successful login and the fetched Subject. */
function assertFetched(stdout: string, label: string): void {
  assert.match(stdout, /^a OK/m, `${label}: LOGIN failed\n${stdout.slice(-800)}`);
  assert.match(stdout, new RegExp(`Subject: ${SUBJECT}`), `${label}: FETCH failed`);
  assert.match(stdout, /^c OK/m, `${label}: FETCH not OK`);
}

function opensslArgs(port: number, ca: string, extra: string[]): string[] {
  return [
    "s_client",
    "-connect",
    `127.0.0.1:${port}`,
    "-servername",
    "localhost",
    "-CAfile",
    ca,
    "-verify_return_error",
    ...extra,
  ];
}

const ECDSA_SUITES = [
  ["ECDHE-ECDSA-CHACHA20-POLY1305", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"],
  ["ECDHE-ECDSA-AES128-GCM-SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"],
  ["ECDHE-ECDSA-AES256-GCM-SHA384", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"],
] as const;
const RSA_SUITES = [
  ["ECDHE-RSA-CHACHA20-POLY1305", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"],
  ["ECDHE-RSA-AES128-GCM-SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"],
  ["ECDHE-RSA-AES256-GCM-SHA384", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"],
] as const;

async function opensslFetch(postern: RunningPostern, extra: string[]) {
  const r = await runPeer(
    "openssl",
    opensslArgs(postern.implicitPort, postern.caPath, ["-brief", ...extra]),
    IMAP_SCRIPT,
    15_000,
  );
  return { ...r, out: dec(r.stdout) };
}

Deno.test("openssl s_client -tls1_2 logs in and fetches with each ECDSA and RSA suite", async () => {
  await withPostern(async (postern) => {
    for (const [cipher] of ECDSA_SUITES) {
      const r = await opensslFetch(postern, ["-tls1_2", "-cipher", cipher]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /Protocol version: TLSv1\.2/);
      assert.match(r.stderr, new RegExp(`Ciphersuite: ${cipher}`));
      assertFetched(r.out, cipher);
    }
    // An RSA server key (RSA-PSS signatures on the ServerKeyExchange), through a reload.
    await issueServerCertificate(postern.certsDir, { keyType: "rsa2048", force: true });
    await postern.handle.reload();
    for (const [cipher] of RSA_SUITES) {
      const r = await opensslFetch(postern, ["-tls1_2", "-cipher", cipher]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, new RegExp(`Ciphersuite: ${cipher}`));
      assert.match(r.stderr, /Signature type: RSA-PSS/);
      assertFetched(r.out, cipher);
    }
    // Without the cap the same client still gets TLS 1.3.
    const r = await opensslFetch(postern, []);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /Protocol version: TLSv1\.3/);
    assertFetched(r.out, "openssl 1.3");
  });
});

Deno.test("openssl s_client -tls1_2 -reconnect resumes by ticket and by session ID", async () => {
  await withPostern(async (postern) => {
    for (const extra of [[], ["-no_ticket"]]) {
      const r = await runPeer(
        "openssl",
        opensslArgs(postern.implicitPort, postern.caPath, ["-tls1_2", "-reconnect", ...extra]),
        IMAP_SCRIPT,
        15_000,
      );
      const out = dec(r.stdout);
      assert.equal(r.code, 0, r.stderr);
      assert.equal((out.match(/^New, TLSv1\.2/gm) ?? []).length, 1, out);
      assert.equal((out.match(/^Reused, TLSv1\.2/gm) ?? []).length, 5, `${extra}: ${out}`);
      assert.match(out, /Extended master secret: yes/);
      assertFetched(out, `reconnect ${extra}`);
    }
  });
});

/**
 * Runs s_client and types `R` (renegotiate) once the IMAP greeting has arrived, so that the
 * greeting cannot cross the renegotiation handshake; ends when s_client does (bounded).
 */
async function renegotiate(args: string[]): Promise<{ code: number; stderr: string }> {
  const child = new Deno.Command("openssl", {
    args,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.getReader();
  let seen = "";
  while (!seen.includes("* OK")) {
    const { value, done } = await reader.read();
    if (done) break;
    seen += dec(value);
  }
  const writer = child.stdin.getWriter();
  await writer.write(enc("R\n")).catch(() => {});
  while (!(await reader.read()).done) {
    // Drain until s_client exits.
  }
  const status = await child.status;
  await writer.close().catch(() => {});
  clearTimeout(timer);
  return { code: status.code, stderr: await stderr };
}

Deno.test("openssl s_client renegotiation is refused and the server keeps serving", async () => {
  await withPostern(async (postern) => {
    for (const extra of [[], ["-legacy_renegotiation"]]) {
      const r = await renegotiate(opensslArgs(postern.implicitPort, postern.caPath, [
        "-tls1_2",
        ...extra,
      ]));
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /RENEGOTIATING/);
      assert.match(r.stderr, /no renegotiation/);
    }
    const r = await opensslFetch(postern, ["-tls1_2"]);
    assertFetched(r.out, "after renegotiation attempts");
  });
});

Deno.test("gnutls-cli without TLS 1.3 logs in and fetches over TLS 1.2 with EMS, and resumes", async () => {
  await withPostern(async (postern) => {
    for (const cipher of ["AES-128-GCM", "AES-256-GCM", "CHACHA20-POLY1305"]) {
      const r = await runPeer(
        "gnutls-cli",
        [
          `--x509cafile=${postern.caPath}`,
          `--port=${postern.implicitPort}`,
          `--priority=NORMAL:-VERS-TLS1.3:-CIPHER-ALL:+${cipher}`,
          "--sni-hostname=localhost",
          "127.0.0.1",
        ],
        IMAP_SCRIPT,
        15_000,
      );
      const out = dec(r.stdout);
      assert.equal(r.code, 0, r.stderr);
      assert.match(out, new RegExp(`\\(TLS1\\.2-X\\.509\\).*\\(${cipher}\\)`));
      assert.match(out, /extended master secret, safe renegotiation/);
      assertFetched(out, `gnutls ${cipher}`);
    }
    // --resume: a second connection resumes by ticket, or by session ID with %NO_TICKETS.
    for (const priority of ["NORMAL:-VERS-TLS1.3", "NORMAL:-VERS-TLS1.3:%NO_TICKETS"]) {
      const r = await runPeer(
        "gnutls-cli",
        [
          `--x509cafile=${postern.caPath}`,
          `--port=${postern.implicitPort}`,
          `--priority=${priority}`,
          "--resume",
          "--sni-hostname=localhost",
          "127.0.0.1",
        ],
        IMAP_SCRIPT,
        15_000,
      );
      const out = dec(r.stdout);
      assert.equal(r.code, 0, r.stderr);
      assert.match(out, /\*\*\* This is a resumed session/, priority);
      assertFetched(out, `gnutls --resume ${priority}`);
    }
  });
});

const PYTHON_IMAP = `
import imaplib, ssl, sys
port, cafile, cap = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=cafile)
if cap == "1.2":
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
M = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=ctx)
print(M.sock.version(), M.sock.cipher()[0])
M.login("alice", sys.argv[4])
M.select("INBOX")
typ, data = M.fetch("1", "(BODY[HEADER.FIELDS (SUBJECT)])")
print(typ, data[0][1].decode().strip())
M.logout()
`;

Deno.test("Python ssl with maximum_version TLSv1_2 gets 1.2; without it, 1.3", async () => {
  await withPostern(async (postern) => {
    for (const [cap, version] of [["1.2", "TLSv1.2"], ["none", "TLSv1.3"]] as const) {
      const r = await run("python3", [
        "-c",
        PYTHON_IMAP,
        String(postern.implicitPort),
        postern.caPath,
        cap,
        USER.password,
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^${version.replace(".", "\\.")} `, "m"));
      assert.match(r.stdout, new RegExp(`OK Subject: ${SUBJECT}`));
    }
  });
});

Deno.test("curl --tls-max 1.2 fetches with a password and with AUTHENTICATE EXTERNAL", async () => {
  await withPostern(async (postern) => {
    const base = `imaps://127.0.0.1:${postern.implicitPort}`;
    const common = [
      "-sS",
      "-v",
      "--max-time",
      "15",
      "--cacert",
      postern.caPath,
      "--tls-max",
      "1.2",
    ];
    const fetched = await run("curl", [
      ...common,
      "-u",
      `alice:${USER.password}`,
      `${base}/INBOX;UID=1`,
    ]);
    assert.equal(fetched.code, 0, fetched.stderr);
    assert.match(fetched.stderr, /SSL connection using TLSv1\.2/);
    assert.match(fetched.stdout, new RegExp(`Subject: ${SUBJECT}`));
    const cert = await postern.clientCertificate("alice");
    const external = await run("curl", [
      ...common,
      "--cert",
      cert.certPath,
      "--key",
      cert.keyPath,
      "--login-options",
      "AUTH=EXTERNAL",
      "-u",
      "alice:",
      `${base}/INBOX;UID=1`,
    ]);
    assert.equal(external.code, 0, external.stderr.slice(-1500));
    assert.match(external.stderr, /SSL connection using TLSv1\.2/);
    assert.match(external.stderr, /AUTHENTICATE EXTERNAL/);
    assert.match(external.stdout, new RegExp(`Subject: ${SUBJECT}`));
    const latest = await run("curl", [
      ...common.filter((a) => a !== "--tls-max" && a !== "1.2"),
      "-u",
      `alice:${USER.password}`,
      `${base}/INBOX;UID=1`,
    ]);
    assert.equal(latest.code, 0, latest.stderr);
    assert.match(latest.stderr, /SSL connection using TLSv1\.3/);
  });
});

Deno.test("NSS tstclnt -V tls1.2:tls1.2 with the demo PKCS#12 logs in with EXTERNAL and fetches", async () => {
  await withPostern(async (postern) => {
    const db = join(postern.dir, "nssdb");
    await Deno.mkdir(db);
    const init = await run("certutil", ["-N", "-d", `sql:${db}`, "--empty-password"]);
    assert.equal(init.code, 0, init.stderr);
    const add = await run("certutil", [
      "-A",
      "-d",
      `sql:${db}`,
      "-n",
      "postern-ca",
      "-t",
      "C,,",
      "-i",
      postern.caPath,
    ]);
    assert.equal(add.code, 0, add.stderr);
    const demo = await issueClientCertificate(postern.certsDir, "alice", {
      p12Password: "demo",
      force: true,
    });
    const imported = await run("pk12util", [
      "-i",
      demo.p12!,
      "-d",
      `sql:${db}`,
      "-W",
      "demo",
      "-K",
      "",
    ]);
    assert.equal(imported.code, 0, imported.stderr);
    // tstclnt does not exit when the server closes (with TLS 1.3 too): it is stopped after 5 s
    // and judged by what it printed.
    const r = await runPeer(
      "tstclnt",
      [
        "-h",
        "127.0.0.1",
        "-p",
        String(postern.implicitPort),
        "-a",
        "localhost",
        "-d",
        `sql:${db}`,
        "-V",
        "tls1.2:tls1.2",
        "-n",
        "alice",
      ],
      enc(
        "a AUTHENTICATE EXTERNAL =\r\nb SELECT INBOX\r\n" +
          "c FETCH 1 (BODY[HEADER.FIELDS (SUBJECT)])\r\nd LOGOUT\r\n",
      ),
      5_000,
    );
    const out = dec(r.stdout);
    assert.match(r.stderr + out, /TLS 1\.2|TLSv1\.2|version: 3\.3/i, r.stderr);
    assertFetched(out, "tstclnt");
  });
});

Deno.test("TLS 1.2 client certificates of each key type pass the peer check, or get its alert", async () => {
  const pki = await makeOpensslPki();
  try {
    const leaf = await pki.server("ec256");
    for (const verdict of ["ok", "revoked"] as const) {
      const checked: string[] = [];
      const server = await startTestServer({
        certPem: leaf.certPem + pki.ca.certPem,
        keyPem: leaf.keyPem,
        clientAuth: "required",
        clientCaPems: [pki.ca.certPem],
        minVersion: "1.2",
        checkPeer: (peer) => {
          checked.push(peer.identity.subject);
          return Promise.resolve(
            verdict === "ok"
              ? { ok: true }
              : { ok: false, alert: "certificate_revoked", reason: "Removed from the directory" },
          );
        },
      });
      try {
        for (const key of ["ec256", "ec384", "ed25519", "rsa2048"] as const) {
          const client = await pki.client(key, `user-${key}`);
          const r = await runPeer(
            "openssl",
            [
              ...opensslArgs(server.port, pki.ca.certPath, ["-tls1_2", "-quiet"]),
              "-cert",
              client.certPath,
              "-key",
              client.keyPath,
            ],
            echoPayload(2),
            15_000,
          );
          if (verdict === "ok") {
            assert.equal(r.code, 0, `${key}: ${r.stderr}`);
            assert.equal(r.stdout.length, echoPayload(2).length, key);
          } else {
            assert.notEqual(r.code, 0, key);
            assert.match(r.stderr, /alert certificate revoked/, key);
          }
        }
        assert.equal(checked.length, 4);
        for (let i = 0; i < 50 && server.access.length < 4; i++) {
          await new Promise((r) => setTimeout(r, 20));
        }
        assert.ok(
          server.access.every((a) => verdict === "revoked" || a.tls?.version === "TLSv1.2"),
        );
      } finally {
        await server.close();
      }
    }
  } finally {
    await pki.remove();
  }
});

const PYTHON_CONCURRENT = `
import imaplib, ssl, sys, threading
port, cafile, password, n = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
ctx = ssl.create_default_context(cafile=cafile)
ctx.maximum_version = ssl.TLSVersion.TLSv1_2
results = []
# The handshakes and sessions run at once; LOGIN goes two at a time, because the server limits
# concurrent password checks per address (and refuses the excess) against guessing.
logins = threading.Semaphore(2)
def one():
    try:
        M = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=ctx, timeout=20)
        with logins:
            M.login("alice", password)
        M.select("INBOX")
        typ, data = M.fetch("1", "(BODY[HEADER.FIELDS (SUBJECT)])")
        results.append((M.sock.version(), typ, data[0][1].decode().strip()))
        M.logout()
    except Exception as e:
        results.append(("error", repr(e), ""))
threads = [threading.Thread(target=one) for _ in range(n)]
for t in threads: t.start()
for t in threads: t.join()
for r in results: print(*r)
`;

/**
 * A hostile TLS 1.2 client over a real socket: a correct ClientHello from our test client, then
 * an empty Certificate and a bad ClientKeyExchange (the given body) and change_cipher_spec once the server has answered.
 * Returns the alert description the server sends, or null if it sends none.
 */
async function hostileKeyExchange(port: number, body: Uint8Array): Promise<number | null> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const hello = new Tls12ClientConnection({
    provider: defaultProvider,
    verifyServer: () => {
      throw new Error("unused");
    },
  }).takeOutgoing();
  const buf = new Uint8Array(16384);
  const timer = setTimeout(() => conn.close(), 5000);
  try {
    await conn.write(hello);
    let sent = false;
    while (true) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) return null;
      const at = buf.subarray(0, n).indexOf(21);
      if (sent && at >= 0 && buf[at + 1] === 3) return buf[at + 6] ?? null;
      if (!sent) {
        sent = true;
        // An empty Certificate (the server asks for one: client_auth is optional), then the
        // ClientKeyExchange, in one record, then change_cipher_spec.
        const flight = [11, 0, 0, 3, 0, 0, 0, HandshakeType12.client_key_exchange, 0, 0];
        flight.push(body.length, ...body);
        await conn.write(
          new Uint8Array([22, 3, 3, 0, flight.length, ...flight, 20, 3, 3, 0, 1, 1]),
        );
      }
    }
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // Closed by the timer.
    }
  }
}

Deno.test("20 concurrent TLS 1.2 clients log in and fetch while hostile peers send bad key exchanges", async () => {
  await withPostern(async (postern) => {
    const good = run("python3", [
      "-c",
      PYTHON_CONCURRENT,
      String(postern.implicitPort),
      postern.caPath,
      USER.password,
      "20",
    ], { timeoutMs: 60_000 });
    const bad = [
      new Uint8Array([32, ...new Uint8Array(32)]),
      new Uint8Array([5, 1, 2, 3, 4, 5]),
      new Uint8Array([40, 1, 2]),
    ];
    const alerts = await Promise.all(bad.map((b) => hostileKeyExchange(postern.implicitPort, b)));
    assert.deepEqual(alerts, [47, 47, 50]);
    const r = await good;
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split("\n");
    assert.equal(lines.length, 20);
    for (const line of lines) assert.equal(line, `TLSv1.2 OK Subject: ${SUBJECT}`);
  });
});

Deno.test("curl --tls-max 1.2 upgrades with STARTTLS and fetches", async () => {
  await withPostern(async (postern) => {
    const r = await run("curl", [
      "-sS",
      "-v",
      "--max-time",
      "15",
      "--ssl-reqd",
      "--tls-max",
      "1.2",
      "--cacert",
      postern.caPath,
      "-u",
      `alice:${USER.password}`,
      `imap://127.0.0.1:${postern.starttlsPort}/INBOX;UID=1`,
    ]);
    assert.equal(r.code, 0, r.stderr.slice(-1500));
    assert.match(r.stderr, /STARTTLS/);
    assert.match(r.stderr, /SSL connection using TLSv1\.2/);
    assert.match(r.stdout, new RegExp(`Subject: ${SUBJECT}`));
  });
});

Deno.test("openssl s_client -tls1_2 echoes 1 MiB intact with each ECDSA suite (AES-GCM records of 16 KiB composed)", async () => {
  // Records of 4 KiB and more take the AES-GCM composed of ECB and GMAC (protocol/crypto/
  // _gcm_composed.ts) both ways: with TLS 1.2's 13-byte additional data and explicit nonces.
  const pki = await makeOpensslPki();
  const leaf = await pki.server("ec256");
  const server = await startTestServer({
    certPem: leaf.certPem + pki.ca.certPem,
    keyPem: leaf.keyPem,
    minVersion: "1.2",
  });
  const payload = echoPayload(1024);
  try {
    for (const [cipher] of ECDSA_SUITES) {
      const r = await runPeer(
        "openssl",
        opensslArgs(server.port, pki.ca.certPath, ["-tls1_2", "-quiet", "-cipher", cipher]),
        payload,
        30_000,
      );
      assert.equal(r.code, 0, `${cipher}: ${r.stderr.slice(-800)}`);
      assert.equal(r.stdout.length, payload.length, `${cipher} echoed ${r.stdout.length} bytes`);
      assert.ok(r.stdout.every((b, i) => b === payload[i]), `${cipher}: the echo differs`);
    }
  } finally {
    await server.close();
    await pki.remove();
  }
});

Deno.test("openssl s_client -tls1_2 sees PKCS#1 only when offered nothing better, and the refusals", async () => {
  const pki = await makeOpensslPki();
  const leaf = await pki.server("rsa2048");
  const server = await startTestServer({
    certPem: leaf.certPem + pki.ca.certPem,
    keyPem: leaf.keyPem,
    minVersion: "1.2",
  });
  const s = (extra: string[]) =>
    runPeer(
      "openssl",
      opensslArgs(server.port, pki.ca.certPath, ["-tls1_2", "-brief", ...extra]),
      echoPayload(1),
      15_000,
    );
  try {
    const pkcs1 = await s(["-sigalgs", "RSA+SHA256:RSA+SHA1"]);
    assert.equal(pkcs1.code, 0, pkcs1.stderr);
    assert.match(pkcs1.stderr, /Signature type: RSA\n/);
    const pss = await s(["-sigalgs", "RSA+SHA256:RSA-PSS+SHA256"]);
    assert.match(pss.stderr, /Signature type: RSA-PSS/);
    const p384 = await s(["-groups", "P-384"]);
    assert.match(p384.stderr, /Server Temp Key: ECDH, secp384r1/);
    // SECLEVEL=0 lets OpenSSL offer SHA-1 alone at all.
    const sha1 = await s(["-sigalgs", "RSA+SHA1:ECDSA+SHA1", "-cipher", "DEFAULT:@SECLEVEL=0"]);
    assert.notEqual(sha1.code, 0);
    assert.match(sha1.stderr, /alert handshake failure/);
    const fallback = await s(["-fallback_scsv"]);
    assert.notEqual(fallback.code, 0);
    assert.match(fallback.stderr, /alert inappropriate fallback/);
  } finally {
    await server.close();
    await pki.remove();
  }
});

Deno.test("the access line names TLSv1.2 and its suite, and says when a session was resumed", async () => {
  const lines: string[] = [];
  setupLogging({ level: "info", format: "json", write: (line) => lines.push(line) });
  try {
    await withPostern(async (postern) => {
      const r = await runPeer(
        "openssl",
        opensslArgs(postern.implicitPort, postern.caPath, ["-tls1_2", "-reconnect"]),
        IMAP_SCRIPT,
        15_000,
      );
      assert.equal(r.code, 0, r.stderr);
      for (let i = 0; i < 50 && lines.filter((l) => l.includes("postern.access")).length < 7; i++) {
        await new Promise((r) => setTimeout(r, 20));
      }
    });
  } finally {
    setupLogging({ level: "error", format: "text" });
  }
  const tls = lines.filter((l) => l.includes("postern.access"))
    .map((l) => JSON.parse(l).properties.tls as string);
  // The seeding session (TLS 1.3), the full 1.2 handshake, then five resumptions.
  assert.equal(tls.length, 7, tls.join("\n"));
  assert.match(tls[0]!, /^TLSv1\.3 TLS_/);
  assert.equal(tls[1], "TLSv1.2 TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256");
  for (const line of tls.slice(2)) {
    assert.equal(line, "TLSv1.2 TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 resumed");
  }
});
