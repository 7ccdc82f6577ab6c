/**
 * The extensions of issue 18 with real clients over implicit TLS on 127.0.0.1: Python imaplib
 * for SORT, THREAD and QUOTA (its `sort`, `thread`, `getquotaroot` and `getquota` methods), and
 * Thunderbird's and K-9 Mail's command sequences for QUOTA replayed byte for byte. One Postern
 * with a quota of 6 messages serves the whole file; MULTIAPPEND (RFC 3502) is sent raw, as
 * mbsync and imapsync pipeline it.
 */
import assert from "node:assert/strict";
import { describeRun, RawImap, runPython } from "../_support/imap_clients.ts";
import { type RunningPostern, startPostern } from "../_support/postern.ts";

const USER = { name: "alice", password: "extensions-pw" };
const BOB = { name: "bob", password: "bob-pw" };
const QUOTA_YAML = "quota:\n  default:\n    storage: 1048576\n    messages: 6\n";

let shared: Promise<RunningPostern> | null = null;
function postern(): Promise<RunningPostern> {
  shared ??= startPostern({ users: [USER, BOB], extraYaml: QUOTA_YAML });
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
