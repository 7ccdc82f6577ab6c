/**
 * TLS 1.3 resumption with real clients, each doing IMAP: OpenSSL (`-sess_out`/`-sess_in`, with
 * SNI and ALPN), GnuTLS (`--resume`) and Python's ssl (a saved session); and OpenSSL on each of
 * the groups P-521, X448, ffdhe2048 and ffdhe3072. One Postern serves every step.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runPeer } from "../_support/peers.ts";
import { startPostern } from "../_support/postern.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);
const SCRIPT = enc('a LOGIN alice secret\r\nb LIST "" INBOX\r\nc LOGOUT\r\n');

const PYTHON_RESUME = `
import socket, ssl, sys
port, cafile = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=cafile)
ctx.minimum_version = ssl.TLSVersion.TLSv1_3
ctx.set_alpn_protocols(["imap"])
def session(saved):
    with socket.create_connection(("127.0.0.1", port)) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost", session=saved) as s:
            f = s.makefile("rwb")
            assert f.readline().startswith(b"* OK")
            f.write(b"a LOGIN alice secret\\r\\n"); f.flush()
            line = f.readline()
            assert line.startswith(b"a OK"), line
            f.write(b"b LOGOUT\\r\\n"); f.flush()
            while not f.readline().startswith(b"b OK"):
                pass
            print(s.version(), s.session_reused, s.selected_alpn_protocol())
            return s.session
first = session(None)
session(first)
`;

/** 20 threads resume one saved session at once; each logs in. Prints "LOGINS REUSED". */
const PYTHON_CONCURRENT = `
import socket, ssl, sys, threading
port, cafile = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=cafile)
ctx.minimum_version = ssl.TLSVersion.TLSv1_3
def imap(saved):
    with socket.create_connection(("127.0.0.1", port), timeout=20) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost", session=saved) as s:
            f = s.makefile("rwb")
            assert f.readline().startswith(b"* OK")
            f.write(b"a LOGIN alice secret\\r\\nb LOGOUT\\r\\n"); f.flush()
            ok = False
            for line in iter(f.readline, b""):
                ok = ok or line.startswith(b"a OK")
                if line.startswith(b"b OK"):
                    break
            return ok, s.session_reused, s.session
first = imap(None)[2]
results = []
def run():
    ok, reused, _ = imap(first)
    results.append((ok, reused))
threads = [threading.Thread(target=run) for _ in range(20)]
for t in threads: t.start()
for t in threads: t.join()
print(sum(ok for ok, _ in results), sum(r for _, r in results))
`;

Deno.test("real TLS 1.3 clients resume sessions and do IMAP", async (t) => {
  const postern = await startPostern({ users: [{ name: "alice", password: "secret" }] });
  const work = await Deno.makeTempDir({ prefix: "postern-tls13-resume-" });
  const port = postern.implicitPort;
  try {
    const openssl = (extra: string[]) =>
      runPeer(
        "openssl",
        [
          "s_client",
          "-connect",
          `127.0.0.1:${port}`,
          "-tls1_3",
          "-CAfile",
          postern.caPath,
          "-verify_return_error",
          ...extra,
        ],
        SCRIPT,
        15_000,
      );

    await t.step("openssl s_client -sess_out/-sess_in shows Reused, TLSv1.3", async () => {
      const session = join(work, "openssl.pem");
      const first = await openssl(["-servername", "localhost", "-sess_out", session]);
      assert.equal(first.code, 0, first.stderr);
      assert.match(dec(first.stdout), /^New, TLSv1\.3/m);
      assert.match(dec(first.stdout), /^a OK/m);
      const again = await openssl(["-servername", "localhost", "-sess_in", session]);
      assert.equal(again.code, 0, again.stderr);
      assert.match(dec(again.stdout), /^Reused, TLSv1\.3/m);
      assert.match(dec(again.stdout), /^a OK/m);
      assert.match(dec(again.stdout), /^\* LIST .* INBOX\r?$/m);
    });

    await t.step(
      "-alpn imap is accepted and -alpn h2 refused, with SNI and resumption",
      async () => {
        const session = join(work, "alpn.pem");
        const first = await openssl([
          "-servername",
          "localhost",
          "-alpn",
          "imap",
          "-sess_out",
          session,
        ]);
        assert.equal(first.code, 0, first.stderr);
        assert.match(dec(first.stdout), /ALPN protocol: imap/);
        const resumed = await openssl([
          "-servername",
          "localhost",
          "-alpn",
          "imap",
          "-sess_in",
          session,
        ]);
        assert.match(dec(resumed.stdout), /^Reused, TLSv1\.3/m);
        assert.match(dec(resumed.stdout), /ALPN protocol: imap/);
        assert.match(dec(resumed.stdout), /^a OK/m);
        for (const resume of [false, true]) {
          const h2 = await openssl([
            "-servername",
            "localhost",
            "-alpn",
            "h2",
            ...(resume ? ["-sess_in", session] : []),
          ]);
          assert.notEqual(h2.code, 0);
          assert.match(h2.stderr, /no application protocol/, `resume ${resume}`);
          assert.doesNotMatch(dec(h2.stdout), /^a OK/m);
        }
      },
    );

    await t.step("a ticket is not resumed under another server name", async () => {
      const session = join(work, "sni.pem");
      await openssl(["-servername", "localhost", "-sess_out", session]);
      const other = await openssl(["-servername", "other.localhost", "-sess_in", session]);
      assert.match(dec(other.stdout), /^New, TLSv1\.3/m);
      assert.match(dec(other.stdout), /^a OK/m);
    });

    const TEMP_KEY: Record<string, RegExp> = {
      "P-521": /Server Temp Key: ECDH, secp521r1, 521 bits/,
      X448: /Server Temp Key: X448, 448 bits/,
      ffdhe2048: /Server Temp Key: DH, 2048 bits/,
      ffdhe3072: /Server Temp Key: DH, 3072 bits/,
    };
    for (const group of Object.keys(TEMP_KEY)) {
      await t.step(`openssl -groups ${group} agrees on it and does IMAP`, async () => {
        const run = await openssl(["-servername", "localhost", "-groups", group]);
        assert.equal(run.code, 0, run.stderr);
        const out = dec(run.stdout);
        assert.match(out, TEMP_KEY[group]!);
        assert.match(out, /^a OK/m);
      });
    }

    await t.step("gnutls-cli --resume resumes", async () => {
      const run = await runPeer(
        "gnutls-cli",
        [
          `--x509cafile=${postern.caPath}`,
          `--port=${port}`,
          "--priority=NORMAL:-VERS-ALL:+VERS-TLS1.3",
          "--sni-hostname=localhost",
          "--alpn=imap",
          "--resume",
          "127.0.0.1",
        ],
        SCRIPT,
        15_000,
      );
      const out = dec(run.stdout);
      // Its status lines go to the log file; without one they are in stdout.
      assert.match(out, /This is a resumed session/, out.slice(-1500) + run.stderr.slice(-800));
      assert.match(out, /Application protocol: imap/);
      assert.match(out, /^a OK/m);
    });

    await t.step("20 concurrent resumptions of one ticket: all log in, 8 resume", async () => {
      const run = await runPeer(
        "python3",
        ["-c", PYTHON_CONCURRENT, String(port), postern.caPath],
        new Uint8Array(0),
        30_000,
      );
      assert.equal(run.code, 0, run.stderr);
      // tls.tickets.max_uses defaults to 8: the other 12 fall back to full handshakes.
      assert.equal(dec(run.stdout).trim(), "20 8");
    });

    await t.step("Python ssl resumes with a saved session", async () => {
      const run = await runPeer(
        "python3",
        ["-c", PYTHON_RESUME, String(port), postern.caPath],
        new Uint8Array(0),
        15_000,
      );
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual(dec(run.stdout).trim().split("\n"), [
        "TLSv1.3 False imap",
        "TLSv1.3 True imap",
      ]);
    });
  } finally {
    await postern.stop();
    await Deno.remove(work, { recursive: true });
  }
});
