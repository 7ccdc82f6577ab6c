/**
 * The extensions of issue 18 with real clients over implicit TLS on 127.0.0.1: Python imaplib
 * for SORT, THREAD and QUOTA (its `sort`, `thread`, `getquotaroot` and `getquota` methods), and
 * Thunderbird's and K-9 Mail's command sequences for QUOTA replayed byte for byte. One Postern
 * with a quota of 6 messages serves the whole file. COMPRESS=DEFLATE (RFC 4978) with imaplib
 * plus zlib over implicit TLS and STARTTLS, and replayed as Thunderbird and K-9 send it; MULTIAPPEND (RFC 3502) is sent raw, as
 * mbsync and imapsync pipeline it.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { constants, createDeflateRaw, inflateRawSync } from "node:zlib";
import { describeRun, RawImap, runPython } from "../_support/imap_clients.ts";
import { type RunningPostern, startPostern } from "../_support/postern.ts";

const USER = { name: "alice", password: "extensions-pw" };
const BOB = { name: "bob", password: "bob-pw" };
/** One fresh account per COMPRESS run, each within the quota. */
const COMPRESS_USERS = {
  implicit: { name: "carol", password: "carol-pw" },
  starttls: { name: "dave", password: "dave-pw" },
};
const QUOTA_YAML = "quota:\n  default:\n    storage: 1048576\n    messages: 6\n";

let shared: Promise<RunningPostern> | null = null;
function postern(): Promise<RunningPostern> {
  shared ??= startPostern({
    users: [USER, BOB, COMPRESS_USERS.implicit, COMPRESS_USERS.starttls],
    extraYaml: QUOTA_YAML,
  });
  return shared;
}

const PYTHON = String.raw`
import imaplib, ssl, sys
port, ca, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)

def ok(r, what):
    typ, data = r
    assert typ == "OK", (what, typ, data)
    return data

def msg(n, subject, date, refs=b""):
    return (b"From: Bob <bob@example.org>\r\nTo: alice@example.org\r\nSubject: " + subject +
            b"\r\nDate: " + date + b"\r\nMessage-ID: <p" + str(n).encode() + b"@postern.test>\r\n" +
            refs + b"\r\nBody " + str(n).encode() + b"\r\n")

M = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=ctx)
for cap in ["SORT", "SORT=DISPLAY", "ESORT", "THREAD=REFERENCES", "THREAD=ORDEREDSUBJECT"]:
    assert cap in M.capabilities, (cap, M.capabilities)
ok(M.login("alice", password), "login")
for cap in ["QUOTA", "QUOTA=RES-STORAGE", "QUOTA=RES-MESSAGE"]:
    assert cap in M.capabilities or cap in ok(M.capability(), "capability")[0].decode(), cap
ok(M.append("INBOX", None, None, msg(1, b"Plans", b"Tue, 3 Mar 2026 10:00:00 +0000")), "append 1")
ok(M.append("INBOX", None, None, msg(2, b"Re: Plans", b"Tue, 3 Mar 2026 12:00:00 +0000",
   b"References: <p1@postern.test>\r\n")), "append 2")
ok(M.append("INBOX", None, None, msg(3, b"Another", b"Mon, 2 Mar 2026 09:00:00 +0000")), "append 3")
ok(M.select("INBOX"), "select")
print("sort", ok(M.sort("(REVERSE DATE)", "UTF-8", "ALL"), "sort")[0].decode())
print("subject", ok(M.sort("(SUBJECT)", "UTF-8", "ALL"), "sort subject")[0].decode())
print("thread", ok(M.thread("REFERENCES", "UTF-8", "ALL"), "thread")[0].decode())
typ, data = M.getquotaroot("INBOX")
assert typ == "OK", (typ, data)
print("quotaroot", [d.decode() for d in data[0]], [d.decode() for d in data[1]])
print("quota", ok(M.getquota('"User quota"'), "getquota")[0].decode())
for n in range(4, 7):
    ok(M.append("INBOX", None, None, msg(n, b"Filler", b"Mon, 2 Mar 2026 09:00:00 +0000")), "fill")
typ, data = M.append("INBOX", None, None, msg(7, b"Too many", b"Mon, 2 Mar 2026 09:00:00 +0000"))
print("over", typ, data[0].decode())
M.logout()
`;

Deno.test({
  name: "Python imaplib sorts, threads and reads the quota, and is refused over it",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const p = await postern();
    const r = await runPython(PYTHON, [String(p.implicitPort), p.caPath, USER.password]);
    assert.equal(r.code, 0, describeRun(r));
    const lines = r.stdout.trim().split("\n");
    assert.deepEqual(lines.slice(0, 3), ["sort 2 1 3", "subject 3 1 2", "thread (3)(1 2)"]);
    assert.match(lines[3]!, /^quotaroot \['"?INBOX"? "User quota"'\]/);
    assert.match(lines[3]!, /\(STORAGE 1 1024 MESSAGE 3 6\)/);
    assert.equal(lines[4], 'quota "User quota" (STORAGE 1 1024 MESSAGE 3 6)');
    assert.match(lines[5]!, /^over NO \[OVERQUOTA\]/);
  },
});

/**
 * Thunderbird 128 opening INBOX with the quota shown in the status bar (mailnews/imap
 * nsImapProtocol: ID, then SELECT, then GETQUOTAROOT of the folder), and K-9 Mail / FairEmail
 * asking for the quota root of INBOX right after login, before any SELECT.
 */
const REPLAYS: Record<string, readonly string[]> = {
  thunderbird: [
    "CAPABILITY",
    `LOGIN "alice" "${USER.password}"`,
    'ID ("name" "Thunderbird" "version" "128.5.0")',
    'SELECT "INBOX" (CONDSTORE)',
    'GETQUOTAROOT "INBOX"',
    "UID FETCH 1:* (FLAGS)",
  ],
  k9: [
    "CAPABILITY",
    `LOGIN "alice" "${USER.password}"`,
    'GETQUOTAROOT "INBOX"',
    'GETQUOTA "User quota"',
    'EXAMINE "INBOX"',
  ],
};

for (const [client, commands] of Object.entries(REPLAYS)) {
  Deno.test({
    name: `${client}'s QUOTA command sequence gets the quota root and both resources`,
    sanitizeResources: false,
    sanitizeOps: false,
    async fn() {
      const p = await postern();
      const imap = await RawImap.tls(p.implicitPort, p.caPem);
      try {
        await imap.greeting();
        const quotas: string[] = [];
        for (const command of commands) {
          const r = await imap.command(command);
          assert.equal(r.status, "OK", `${command}: ${r.tagged}`);
          for (const u of r.untagged) if (/^\* QUOTA(ROOT)? /.test(u.text)) quotas.push(u.text);
        }
        assert.ok(quotas.includes('* QUOTAROOT INBOX "User quota"'), quotas.join("\n"));
        assert.ok(
          quotas.some((q) => /^\* QUOTA "User quota" \(STORAGE \d+ 1024 MESSAGE \d+ 6\)$/.test(q)),
          quotas.join("\n"),
        );
      } finally {
        await imap.close();
      }
    },
  });
}

/** imaplib with COMPRESS=DEFLATE (RFC 4978) added by hand: raw deflate via zlib, sync flushes. */
const PYTHON_COMPRESS = String.raw`
import imaplib, ssl, sys, zlib, socket
mode, port, ca, password, user = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[6]
ctx = ssl.create_default_context(cafile=ca)
imaplib.Commands["COMPRESS"] = ("AUTH", "SELECTED")

class Compressing:
    compressing = False
    def start_compress(self):
        typ, data = self._simple_command("COMPRESS", "DEFLATE")
        assert typ == "OK", (typ, data)
        self._c = zlib.compressobj(6, zlib.DEFLATED, -15)
        self._d = zlib.decompressobj(-15)
        self._buf = b""
        self.wire = 0
        self.compressing = True
    def send(self, data):
        if self.compressing:
            data = self._c.compress(data) + self._c.flush(zlib.Z_SYNC_FLUSH)
        self.sock.sendall(data)
    def _fill(self):
        raw = self.sock.recv(65536)
        if not raw:
            raise imaplib.IMAP4.abort("socket closed")
        self.wire += len(raw)
        self._buf += self._d.decompress(raw)
    def read(self, size):
        if not self.compressing:
            return super().read(size)
        while len(self._buf) < size:
            self._fill()
        out, self._buf = self._buf[:size], self._buf[size:]
        return out
    def readline(self):
        if not self.compressing:
            return super().readline()
        while b"\n" not in self._buf:
            self._fill()
        i = self._buf.index(b"\n") + 1
        out, self._buf = self._buf[:i], self._buf[i:]
        return out

class TLS(Compressing, imaplib.IMAP4_SSL): pass
class Plain(Compressing, imaplib.IMAP4): pass

if mode == "implicit":
    A = TLS("127.0.0.1", port, ssl_context=ctx)
else:
    A = Plain("127.0.0.1", port)
    A.starttls(ssl_context=ctx)
assert "COMPRESS=DEFLATE" not in A.capabilities
A.login(user, password)
assert "COMPRESS=DEFLATE" in A.capability()[1][0].decode().split(), A.capability()
A.start_compress()
typ, data = A._simple_command("COMPRESS", "DEFLATE")
assert typ == "NO" and b"COMPRESSIONACTIVE" in data[0], (typ, data)
body = b"All work and no play makes Jack a dull boy.\r\n" * 2000
assert A.append("Drafts", None, None, b"Subject: big\r\n\r\n" + body)[0] == "OK"
assert A.select("Drafts")[0] == "OK"
typ, data = A.fetch("1", "(BODY.PEEK[TEXT])")
assert typ == "OK" and data[0][1] == body, typ
# IDLE stays live: another session's APPEND must reach us through the compressed stream.
A.send(b"I1 IDLE\r\n")
assert A.readline().startswith(b"+")
B = imaplib.IMAP4_SSL("127.0.0.1", int(sys.argv[5]), ssl_context=ctx)
B.login(user, password)
B.append("Drafts", None, None, b"Subject: ping\r\n\r\nping\r\n")
B.logout()
A.sock.settimeout(20)
line = A.readline()
while b"EXISTS" not in line:
    line = A.readline()
assert line == b"* 2 EXISTS\r\n", line
A.send(b"DONE\r\n")
while not line.startswith(b"I1 "):
    line = A.readline()
assert line.startswith(b"I1 OK"), line
A.logout()
print("ok", A.wire < len(body) // 10)
`;

for (const mode of ["implicit", "starttls"] as const) {
  Deno.test({
    name: `Python imaplib with zlib compresses over ${mode} TLS, with IDLE updates flushed`,
    sanitizeResources: false,
    sanitizeOps: false,
    async fn() {
      const p = await postern();
      const port = mode === "implicit" ? p.implicitPort : p.starttlsPort;
      const r = await runPython(PYTHON_COMPRESS, [
        mode,
        String(port),
        p.caPath,
        COMPRESS_USERS[mode].password,
        String(p.implicitPort),
        COMPRESS_USERS[mode].name,
      ]);
      assert.equal(r.code, 0, describeRun(r));
      assert.equal(r.stdout.trim(), "ok True");
    },
  });
}

/**
 * Thunderbird (mail.server.default.use_compress_deflate) and K-9 Mail send COMPRESS DEFLATE
 * right after authenticating, before SELECT; the answer is the last uncompressed line.
 */
Deno.test({
  name: "Thunderbird's and K-9's COMPRESS DEFLATE after LOGIN is answered, then deflated",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const p = await postern();
    const conn = await Deno.connectTls({
      hostname: "127.0.0.1",
      port: p.implicitPort,
      caCerts: [p.caPem],
    });
    const buf = new Uint8Array(65536);
    /** Reads until `done` holds for what was read (bounded by a 10 s deadline). */
    const readUntil = async (done: (bytes: Uint8Array) => boolean): Promise<Uint8Array> => {
      let got = new Uint8Array(0);
      const deadline = Date.now() + 10_000;
      while (!done(got) && Date.now() < deadline) {
        const n = await conn.read(buf);
        if (n === null) break;
        got = new Uint8Array([...got, ...buf.subarray(0, n)]);
      }
      return got;
    };
    const text = (b: Uint8Array) => new TextDecoder().decode(b);
    const sync = { finishFlush: constants.Z_SYNC_FLUSH };
    try {
      await readUntil((b) => text(b).includes("\r\n"));
      await conn.write(new TextEncoder().encode(`t1 LOGIN "alice" "${USER.password}"\r\n`));
      await readUntil((b) => /t1 OK/.test(text(b)));
      await conn.write(new TextEncoder().encode("t2 COMPRESS DEFLATE\r\n"));
      assert.match(text(await readUntil((b) => /t2 /.test(text(b)))), /t2 OK DEFLATE active\r\n$/);
      // From here on both directions are one raw DEFLATE stream each.
      const deflate = createDeflateRaw();
      const packed = await new Promise<Uint8Array>((resolve) => {
        const chunks: Uint8Array[] = [];
        deflate.on("data", (c: Uint8Array) => chunks.push(c));
        deflate.write(new TextEncoder().encode('t3 NOOP\r\nt4 GETQUOTAROOT "INBOX"\r\n'));
        deflate.flush(constants.Z_SYNC_FLUSH, () => resolve(new Uint8Array(Buffer.concat(chunks))));
      });
      await conn.write(packed);
      const reply = await readUntil((b) => {
        try {
          return /t4 OK/.test(text(inflateRawSync(b, sync)));
        } catch {
          return false;
        }
      });
      const plain = text(inflateRawSync(reply, sync));
      assert.match(plain, /^t3 OK/);
      assert.match(plain, /\* QUOTAROOT INBOX "User quota"\r\n/);
      deflate.destroy();
    } finally {
      conn.close();
    }
  },
});

function multiappend(tag: string, count: number): Uint8Array {
  const enc = new TextEncoder();
  let text = `${tag} APPEND Archive`;
  for (let i = 0; i < count; i++) {
    const msg = `From: bob@example.org\r\nSubject: batch ${i}\r\n\r\nBody ${i}\r\n`;
    text += ` (\\Seen) {${enc.encode(msg).length}+}\r\n${msg}`;
  }
  return enc.encode(text + "\r\n");
}

Deno.test({
  name: "MULTIAPPEND over TLS to the SQLite store is all or none, also at the quota",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const p = await postern();
    const imap = await RawImap.tls(p.implicitPort, p.caPem);
    try {
      await imap.greeting();
      assert.equal((await imap.command(`LOGIN bob ${BOB.password}`)).status, "OK");
      const answer = async (tag: string, count: number) => {
        await imap.write(multiappend(tag, count));
        const r = await imap.readUntil((x) => x.text.startsWith(`${tag} `), 10_000);
        return r?.at(-1)?.text ?? "";
      };
      assert.match(await answer("M1", 4), /^M1 OK \[APPENDUID \d+ 1:4\]/);
      assert.match(await answer("M2", 3), /^M2 NO \[OVERQUOTA\]/);
      const status = await imap.command("STATUS Archive (MESSAGES)");
      assert.equal(status.untagged[0]?.text, "* STATUS Archive (MESSAGES 4)");
    } finally {
      await imap.close();
    }
  },
});

Deno.test({
  name: "stop the shared Postern",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    if (shared !== null) await (await shared).stop();
  },
});
