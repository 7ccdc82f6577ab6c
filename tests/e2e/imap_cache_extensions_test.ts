/**
 * The small extensions clients cache by, with real peers over implicit TLS on 127.0.0.1:
 * OBJECTID (RFC 8474), SAVEDATE (RFC 8514) and PREVIEW (RFC 8970) through Python imaplib;
 * SAVEDATE's response shapes and the PREVIEW of every fixture of tests/fixtures/mail against
 * Dovecot 2.3 (which has SAVEDATE and PREVIEW but no OBJECTID, so OBJECTID has no
 * differential). One Postern serves the whole file; each differential starts one Dovecot.
 */
import assert from "node:assert/strict";
import { describeRun, RawImap, runPython } from "../_support/imap_clients.ts";
import { type RunningPostern, startPostern } from "../_support/postern.ts";
import { dovecotAvailable, type RunningDovecot, startDovecot } from "../_support/dovecot.ts";
import { ensureDevPki } from "../../server/cli/dev_pki.ts";

const USER = { name: "alice", password: "cache-pw" };
const DIFF_USER = { name: "dora", password: "dora-pw" };
const PREVIEW_USER = { name: "erin", password: "erin-pw" };

let shared: Promise<RunningPostern> | null = null;
function postern(): Promise<RunningPostern> {
  shared ??= startPostern({ users: [USER, DIFF_USER, PREVIEW_USER] });
  return shared;
}

const OBJECTID_PY = String.raw`
import imaplib, re, ssl, sys
port, ca, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
M = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=ssl.create_default_context(cafile=ca))
ok = lambda r, what: (r[0] == "OK" or sys.exit("%s: %r" % (what, r))) and r[1]
ok(M.login("alice", password), "login")
caps = ok(M.capability(), "capability")[0].decode().split()
assert "OBJECTID" in caps and "SAVEDATE" in caps and "PREVIEW" in caps, caps
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
print("preview", ok(M.fetch("2", "(PREVIEW)"), "preview")[0].decode())
print("lazy", ok(M.fetch("3", "(PREVIEW (LAZY))"), "lazy")[0].decode())
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
      'preview 2 (PREVIEW "Body")',
      'lazy 3 (PREVIEW "Body")',
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

const FIXTURES = new URL("../fixtures/mail/", import.meta.url);

/**
 * Fixtures whose PREVIEW differs from Dovecot 2.3's, and why. Each must still differ (a stale
 * entry fails the test).
 */
const PREVIEW_DIFFERENCES: Record<string, string> = {
  "26-malformed-boundary.eml":
    "The MIME parsers split a delimiter with trailing text differently (as in BODYSTRUCTURE)",
  "28-boundary-never-appears.eml":
    "A multipart whose boundary never appears: Postern reads the body as text, Dovecot finds no part",
  "41-digest.eml":
    "Digest parts are message/rfc822 (RFC 2046, 5.1.5): Postern skips them for the first real text part, Dovecot reads the first one's header as text",
  "46-multipart-no-boundary-param.eml":
    "A multipart without a boundary parameter: Postern reads the body as text, Dovecot finds no part",
  "62-qp-long-lines.eml":
    "Dovecot cuts previews at 200 characters; Postern at the 256 RFC 8970 allows",
  "68-not-a-message.eml":
    "Invalid UTF-8 octets: Dovecot shows U+FFFD, Postern reads them as Latin-1 and drops the C1 controls",
};

/** The PREVIEW of each message, by fixture name, from `FETCH 1:* (PREVIEW)`. */
async function previews(imap: RawImap, names: readonly string[]): Promise<Map<string, string>> {
  const r = await imap.command("FETCH 1:* (PREVIEW)");
  assert.equal(r.status, "OK", r.tagged);
  const out = new Map<string, string>();
  const dec = new TextDecoder();
  for (const u of r.untagged) {
    const m = /^\* (\d+) FETCH \(PREVIEW (.*)\)$/s.exec(u.text);
    if (m === null) continue;
    const v = m[2]!;
    const text = v === "NIL"
      ? "NIL"
      : v.startsWith('"')
      ? v.slice(1, -1).replace(/\\(.)/g, "$1")
      : dec.decode(u.literals[0]!);
    out.set(names[Number(m[1]) - 1]!, text);
  }
  return out;
}

Deno.test({
  name: "PREVIEW of the fixture corpus matches Dovecot's, apart from listed differences",
  ignore: !dovecotAvailable(),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const p = await postern();
    const pki = await ensureDevPki(p.certsDir);
    const dovecot = await startDovecot({
      user: "erin",
      password: "erin-pw",
      certificatePath: pki.serverCertificate,
      keyPath: pki.serverKey,
      maxConnections: 2,
    });
    try {
      const names = [...Deno.readDirSync(FIXTURES)].map((e) => e.name)
        .filter((n) => n.endsWith(".eml")).sort();
      const got: Map<string, string>[] = [];
      for (const port of [p.implicitPort, dovecot.port]) {
        const imap = await RawImap.tls(port, p.caPem);
        await imap.greeting();
        assert.equal((await imap.command("LOGIN erin erin-pw")).status, "OK");
        for (const n of names) {
          const r = await imap.command("APPEND INBOX", await Deno.readFile(new URL(n, FIXTURES)));
          assert.equal(r.status, "OK", `${n}: ${r.tagged}`);
        }
        assert.equal((await imap.command("SELECT INBOX")).status, "OK");
        got.push(await previews(imap, names));
        await imap.command("LOGOUT");
      }
      for (const n of names) {
        const [ours, theirs] = [got[0]!.get(n), got[1]!.get(n)];
        assert.ok(ours !== undefined && theirs !== undefined, n);
        if (PREVIEW_DIFFERENCES[n] === undefined) assert.equal(ours, theirs, n);
        else assert.notEqual(ours, theirs, `${n} agrees now: drop it from PREVIEW_DIFFERENCES`);
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
