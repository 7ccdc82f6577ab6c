/**
 * Postern behind Debian's HAProxy in TCP mode with `send-proxy-v2` (issue 16): HAProxy connects
 * from 127.0.0.2, the only trusted proxy; clients reach HAProxy from other loopback addresses.
 *
 * - Python imaplib over implicit TLS and `openssl s_client -starttls imap` log in through
 *   HAProxy; the access line names the client's own address, HAProxy's as proxy=.
 * - HAProxy's health checks (check-send-proxy: a LOCAL header, then the greeting expected) are
 *   served as HAProxy itself.
 * - The login back-off counts failures of the client behind HAProxy, not of HAProxy.
 * - A direct connection from 127.0.0.1 with a forged header, and one from HAProxy's own
 *   address without a header, are refused.
 */
import assert from "node:assert/strict";
import { configure, type LogRecord, reset } from "@logtape/logtape";
import { writeProxyV2 } from "../../protocol/proxy/mod.ts";
import { haproxyPath, type RunningHaproxy, startHaproxy } from "../_support/haproxy.ts";
import { describeRun, run, runPython } from "../_support/imap_clients.ts";
import { type RunningPostern, startPostern } from "../_support/postern.ts";

const available = haproxyPath() !== null;
const PROXY = "127.0.0.2";

const records: LogRecord[] = [];
let postern: RunningPostern | null = null;
let haproxy: RunningHaproxy | null = null;
let caPath = "";

async function setUp(): Promise<{ postern: RunningPostern; haproxy: RunningHaproxy }> {
  if (postern !== null && haproxy !== null) return { postern, haproxy };
  await configure({
    reset: true,
    sinks: { memory: (r: LogRecord) => records.push(r) },
    loggers: [
      { category: ["postern", "access"], sinks: ["memory"], lowestLevel: "info" },
      { category: ["logtape", "meta"], sinks: [], lowestLevel: "warning" },
    ],
  });
  postern = await startPostern({
    users: [{ name: "alice", password: "through the proxy" }],
    trustedProxies: [`${PROXY}/32`],
  });
  caPath = postern.caPath;
  haproxy = await startHaproxy([
    { backendPort: postern.implicitPort, source: PROXY },
    {
      backendPort: postern.starttlsPort,
      source: PROXY,
      // The check sends a LOCAL header and waits for the IMAP greeting.
      serverOptions: "check inter 300ms check-send-proxy",
      backendLines: ["option tcp-check", "tcp-check expect rstring ^\\*.OK"],
    },
  ]);
  return { postern, haproxy };
}

async function tearDown(): Promise<void> {
  await haproxy?.stop();
  await postern?.stop();
  await reset();
}

interface Access {
  readonly peer: string;
  readonly close: string;
  readonly user: string | null;
  readonly notes: string;
}

function accessLines(): Access[] {
  return records.map((r) => ({
    peer: String(r.properties["peer"]),
    close: String(r.properties["close"]),
    user: (r.properties["user"] as string | null) ?? null,
    notes: String(r.properties["notes"] ?? ""),
  }));
}

async function waitFor(what: string, test: (lines: Access[]) => boolean): Promise<Access[]> {
  for (let i = 0; i < 100; i++) {
    if (test(accessLines())) return accessLines();
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`${what}: not in the access log\n${JSON.stringify(accessLines(), null, 1)}`);
}

/** imaplib over implicit TLS from a chosen loopback source address. */
const PYTHON_LOGIN = String.raw`
import imaplib, socket, ssl, sys
port, ca, source, password = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context(cafile=ca)

class FromSource(imaplib.IMAP4_SSL):
    def _create_socket(self, timeout):
        sock = socket.create_connection((self.host, self.port), timeout or 10,
                                        source_address=(source, 0))
        return self.ssl_context.wrap_socket(sock, server_hostname="localhost")

imap = FromSource("127.0.0.1", port, ssl_context=ctx)
print("local", imap.sock.getsockname()[1])
try:
    imap.login("alice", password)
    print("login OK")
    typ, data = imap.select("INBOX")
    assert typ == "OK", data
    typ, data = imap.append("INBOX", None, None, b"Subject: via haproxy\r\n\r\nhello\r\n")
    assert typ == "OK", data
    imap.logout()
except imaplib.IMAP4.error as error:
    print("login NO", error)
`;

function login(port: number, source: string, password: string) {
  return runPython(PYTHON_LOGIN, [String(port), caPath, source, password]);
}

Deno.test({
  name: "imaplib through HAProxy: the access line names the client, HAProxy is noted as proxy",
  ignore: !available,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const { haproxy } = await setUp();
    const r = await login(haproxy.ports[0]!, "127.0.0.3", "through the proxy");
    assert.equal(r.code, 0, describeRun(r));
    assert.match(r.stdout, /login OK/);
    const localPort = /local (\d+)/.exec(r.stdout)![1];
    const lines = await waitFor("alice's session", (ls) => ls.some((l) => l.user === "alice"));
    const line = lines.find((l) => l.user === "alice")!;
    // The client's own source address and port, as HAProxy saw them.
    assert.equal(line.peer, `127.0.0.3:${localPort}`);
    assert.match(line.notes, new RegExp(`proxy="${PROXY.replaceAll(".", "\\.")}:\\d+"`));
  },
});

Deno.test({
  name: "openssl s_client -starttls imap through HAProxy reaches the plaintext listener",
  ignore: !available,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const { haproxy } = await setUp();
    const before = records.length;
    const r = await run("openssl", [
      "s_client",
      "-connect",
      `127.0.0.1:${haproxy.ports[1]}`,
      "-starttls",
      "imap",
      "-servername",
      "localhost",
      "-CAfile",
      caPath,
      "-verify_return_error",
      "-quiet",
    ], { stdin: 'a1 LOGIN alice "through the proxy"\r\na2 LOGOUT\r\n', timeoutMs: 20_000 });
    assert.match(r.stdout, /a1 OK/, describeRun(r));
    const lines = await waitFor(
      "the STARTTLS session",
      (ls) => ls.slice(before).some((l) => l.user === "alice"),
    );
    const line = lines.slice(before).find((l) => l.user === "alice")!;
    assert.match(line.peer, /^127\.0\.0\.1:\d+$/);
    assert.match(line.notes, /proxy="127\.0\.0\.2:\d+"/);
  },
});

Deno.test({
  name: "HAProxy's health checks (LOCAL headers) are accepted as coming from HAProxy",
  ignore: !available,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const { haproxy } = await setUp();
    const lines = await waitFor(
      "a health check",
      (ls) => ls.some((l) => l.peer.startsWith(`${PROXY}:`)),
    );
    for (const line of lines.filter((l) => l.peer.startsWith(`${PROXY}:`))) {
      assert.doesNotMatch(line.close, /PROXY header refused/, JSON.stringify(lines));
      assert.equal(line.notes, "", "no proxy= note: the balancer speaks for itself");
    }
    assert.doesNotMatch(haproxy.output(), /is DOWN/, haproxy.output());
  },
});

Deno.test({
  name: "the login back-off counts the client behind HAProxy, not HAProxy",
  ignore: !available,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const { haproxy } = await setUp();
    const port = haproxy.ports[0]!;
    // Three failures are free; the fourth starts the back-off (2 s, doubling). Each answer
    // comes after the failure delay, so whether a given attempt lands inside a back-off period
    // depends on the machine's speed: keep failing (with new passwords, since a repeated wrong
    // pair does not count) until the server says 127.0.0.4 is backing off.
    let throttled = "";
    for (let i = 0; i < 10 && throttled === ""; i++) {
      const r = await login(port, "127.0.0.4", `wrong ${i}`);
      assert.match(r.stdout, /login NO/, describeRun(r));
      if (/UNAVAILABLE/.test(r.stdout)) throttled = r.stdout;
    }
    assert.match(throttled, /Too many failed logins from your address/);
    // Through the same HAProxy (same socket address), another client is not held back.
    const other = await login(port, "127.0.0.5", "through the proxy");
    assert.match(other.stdout, /login OK/, describeRun(other));
  },
});

/** Sends `bytes` from `source` straight to Postern; true when closed without an answer. */
const PYTHON_DIRECT = String.raw`
import socket, sys
port, source, data = int(sys.argv[1]), sys.argv[2], bytes.fromhex(sys.argv[3])
sock = socket.create_connection(("127.0.0.1", port), 10, source_address=(source, 0))
try:
    sock.sendall(data)
    print("answer", sock.recv(100))
except ConnectionResetError:
    print("answer reset")
`;

Deno.test({
  name: "a forged header from an untrusted address, or no header from HAProxy's, is refused",
  ignore: !available,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const { postern } = await setUp();
    const forged = writeProxyV2({
      source: { address: "203.0.113.66", port: 4444 },
      destination: { address: "127.0.0.1", port: postern.implicitPort },
    });
    const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
    const direct = await runPython(PYTHON_DIRECT, [
      String(postern.implicitPort),
      "127.0.0.1",
      hex(forged),
    ]);
    assert.match(direct.stdout, /answer (b''|reset)/, describeRun(direct));
    const bare = await runPython(PYTHON_DIRECT, [
      String(postern.starttlsPort),
      PROXY,
      hex(new TextEncoder().encode("a1 CAPABILITY\r\n")),
    ]);
    assert.match(bare.stdout, /answer (b''|reset)/, describeRun(bare));
    const lines = await waitFor(
      "both refusals",
      (ls) =>
        ls.some((l) => l.close === "PROXY header refused: address not in trusted_proxies") &&
        ls.some((l) => l.close === "PROXY header refused: Expected a PROXY protocol header"),
    );
    const untrusted = lines.find((l) => l.close.endsWith("not in trusted_proxies"))!;
    assert.match(untrusted.peer, /^127\.0\.0\.1:\d+$/);
    assert.ok(
      !lines.some((l) => l.peer.startsWith("203.0.113.66")),
      "the forged address is unused",
    );
  },
});

Deno.test({
  name: "HAProxy and Postern stop",
  ignore: !available,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: tearDown,
});
