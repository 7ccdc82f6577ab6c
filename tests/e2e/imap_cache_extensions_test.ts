/**
 * The small extensions clients cache by, with real peers over implicit TLS on 127.0.0.1:
 * OBJECTID (RFC 8474) and SAVEDATE (RFC 8514) through Python imaplib, and SAVEDATE's response
 * shapes against Dovecot 2.3 (which has SAVEDATE but no OBJECTID, so OBJECTID has no
 * differential). One Postern and, where installed, one Dovecot serve the whole file.
 */
import assert from "node:assert/strict";
import { describeRun, RawImap, runPython } from "../_support/imap_clients.ts";
import { type RunningPostern, startPostern } from "../_support/postern.ts";
import { dovecotAvailable, type RunningDovecot, startDovecot } from "../_support/dovecot.ts";
import { ensureDevPki } from "../../server/cli/dev_pki.ts";

const USER = { name: "alice", password: "cache-pw" };
const DIFF_USER = { name: "dora", password: "dora-pw" };

let shared: Promise<RunningPostern> | null = null;
function postern(): Promise<RunningPostern> {
  shared ??= startPostern({ users: [USER, DIFF_USER] });
  return shared;
}

const OBJECTID_PY = String.raw`
import imaplib, re, ssl, sys
port, ca, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
M = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=ssl.create_default_context(cafile=ca))
ok = lambda r, what: (r[0] == "OK" or sys.exit("%s: %r" % (what, r))) and r[1]
ok(M.login("alice", password), "login")
caps = ok(M.capability(), "capability")[0].decode().split()
assert "OBJECTID" in caps and "SAVEDATE" in caps, caps
created = ok(M.create("Projects"), "create")[0].decode()
box = re.match(r"\[MAILBOXID \(([A-Za-z0-9_-]+)\)\]", created).group(1)
ok(M.rename("Projects", "Work"), "rename")
status = ok(M.status("Work", "(MAILBOXID MESSAGES)"), "status")[0].decode()
assert "MAILBOXID (%s)" % box in status, (status, box)
def msg(n, extra=b""):
    return (b"From: Bob <bob@example.org>\r\nSubject: m" + str(n).encode() +
            b"\r\nMessage-ID: <c" + str(n).encode() + b"@postern.test>\r\n" + extra +
            b"\r\nBody\r\n")
ok(M.append("Work", None, '"01-Jan-2001 00:00:00 +0000"', msg(1)), "append 1")
ok(M.append("Work", None, None, msg(2, b"In-Reply-To: <c1@postern.test>\r\n")), "append 2")
ok(M.append("Work", None, None, msg(3)), "append 3")
ok(M.select("Work"), "select")
typ, data = M.response("MAILBOXID")
assert data == [("(%s)" % box).encode()], data
rows = {}
for line in ok(M.fetch("1:3", "(EMAILID THREADID SAVEDATE)"), "fetch"):
    m = re.match(rb'(\d+) \(EMAILID \((\S+)\) THREADID \((\S+)\) SAVEDATE "([^"]+)"\)', line)
    assert m, line
    rows[int(m.group(1))] = (m.group(2).decode(), m.group(3).decode(), m.group(4).decode())
assert rows[1][1] == rows[2][1] != rows[3][1], rows
assert not rows[1][2].startswith("01-Jan-2001"), rows
print("thread", ok(M.search(None, "THREADID", rows[1][1]), "search thread")[0].decode())
print("email", ok(M.uid("SEARCH", "EMAILID", rows[3][0]), "search email")[0].decode())
print("savedold", ok(M.search(None, "SAVEDBEFORE", "1-Jan-2002"), "savedbefore")[0].decode())
print("old", ok(M.search(None, "BEFORE", "1-Jan-2002"), "before")[0].decode())
print("supported", ok(M.search(None, "SAVEDATESUPPORTED"), "supported")[0].decode())
ok(M.copy("1", "Archive"), "copy")
ok(M.select("Archive"), "select archive")
line = ok(M.fetch("1", "(EMAILID THREADID)"), "fetch copy")[0].decode()
assert "EMAILID (%s)" % rows[1][0] in line and "THREADID (%s)" % rows[1][1] in line, line
M.logout()
print("done")
`;

Deno.test({
  name: "Python imaplib reads MAILBOXID, EMAILID, THREADID and SAVEDATE and searches by them",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const p = await postern();
    const r = await runPython(OBJECTID_PY, [String(p.implicitPort), p.caPath, USER.password]);
    assert.equal(r.code, 0, describeRun(r));
    assert.deepEqual(r.stdout.trim().split("\n"), [
      "thread 1 2",
      "email 3",
      "savedold ",
      "old 1",
      "supported 1 2 3",
      "done",
    ]);
  },
});

/** SAVEDATE commands whose answers must have the same shape on both servers. */
const SAVEDATE_STEPS = [
  "FETCH 1:2 (SAVEDATE)",
  "UID FETCH 1:* (UID SAVEDATE)",
  "SEARCH SAVEDATESUPPORTED",
  "SEARCH SAVEDBEFORE 1-Jan-2002",
  "SEARCH SAVEDSINCE 1-Jan-2002",
  "SEARCH SAVEDON 1-Jan-2001",
  "SEARCH NOT SAVEDBEFORE 1-Jan-2002 BEFORE 1-Jan-2002",
  "SEARCH SAVEDON bogus",
];

/** Dates become placeholders (each server saved at its own moment); texts and tags go. */
function shape(lines: readonly string[], tagged: string): string[] {
  return [...lines, tagged.replace(/^\S+ /, "").replace(/^(OK|NO|BAD).*$/, "$1")]
    .map((l) => l.replace(/"\d{2}-[A-Z][a-z]{2}-\d{4} \d{2}:\d{2}:\d{2} [+-]\d{4}"/g, "<date>"));
}

Deno.test({
  name: "SAVEDATE answers have Dovecot's shape (FETCH SAVEDATE, SEARCH SAVED*)",
  ignore: !dovecotAvailable(),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const p = await postern();
    const pki = await ensureDevPki(p.certsDir);
    const dovecot: RunningDovecot = await startDovecot({
      user: DIFF_USER.name,
      password: DIFF_USER.password,
      certificatePath: pki.serverCertificate,
      keyPath: pki.serverKey,
      maxConnections: 2,
    });
    try {
      const answers: string[][][] = [];
      for (const port of [p.implicitPort, dovecot.port]) {
        const imap = await RawImap.tls(port, p.caPem);
        await imap.greeting();
        assert.equal(
          (await imap.command(`LOGIN ${DIFF_USER.name} ${DIFF_USER.password}`)).status,
          "OK",
        );
        const m = "From: a@example.org\r\nSubject: s\r\n\r\nBody\r\n";
        for (const date of ['"01-Jan-2001 00:00:00 +0000" ', ""]) {
          const r = await imap.command(`APPEND INBOX ${date}{${m.length}+}\r\n${m}`);
          assert.equal(r.status, "OK", r.tagged);
        }
        assert.equal((await imap.command("SELECT INBOX")).status, "OK");
        const out: string[][] = [];
        for (const step of SAVEDATE_STEPS) {
          const r = await imap.command(step);
          out.push(shape(r.untagged.map((u) => u.text), r.tagged));
        }
        answers.push(out);
        await imap.command("LOGOUT");
      }
      for (const [i, step] of SAVEDATE_STEPS.entries()) {
        assert.deepEqual(answers[0]![i], answers[1]![i], step);
      }
    } finally {
      await dovecot.stop();
    }
  },
});

Deno.test({
  name: "the shared Postern stops",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    if (shared !== null) await (await shared).stop();
  },
});
