/**
 * Real IMAP clients against a whole running Postern on loopback: Python's imaplib over implicit
 * TLS (RFC 8314) and STARTTLS (RFC 9051, Section 6.2.1), IDLE (RFC 2177) across two sessions,
 * curl, mbsync, fetchmail and imapflow. Each test starts its own server and stops it.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type RunningPostern, startPostern } from "../_support/postern.ts";
import { imapflowClient } from "../_support/imapflow.ts";
import {
  describeRun,
  makeMessage,
  RawImap,
  readRaw,
  run,
  runPython,
  writeFetchmailrc,
  writeMbsyncConfig,
} from "../_support/imap_clients.ts";

const USER = { name: "alice", password: "correct horse" } as const;

async function withPostern(fn: (p: RunningPostern) => Promise<void>): Promise<void> {
  const postern = await startPostern({ users: [USER] });
  try {
    await fn(postern);
  } finally {
    await postern.stop();
  }
}

/** Appends messages over a raw TLS session; returns their UIDs. */
async function seed(
  postern: RunningPostern,
  mailbox: string,
  messages: readonly Uint8Array[],
  flags = "",
): Promise<number[]> {
  const imap = await RawImap.tls(postern.implicitPort, postern.caPem);
  try {
    await imap.greeting();
    const login = await imap.command(`LOGIN alice "${USER.password}"`);
    assert.equal(login.status, "OK", login.tagged);
    const uids: number[] = [];
    for (const message of messages) {
      const r = await imap.command(`APPEND ${mailbox}${flags ? ` (${flags})` : ""}`, message);
      assert.equal(r.status, "OK", r.tagged);
      const m = /APPENDUID \d+ (\d+)/.exec(r.tagged);
      assert.ok(m, r.tagged);
      uids.push(Number(m[1]));
    }
    await imap.command("LOGOUT");
    return uids;
  } finally {
    await imap.close();
  }
}

const PYTHON_SESSION = String.raw`
import imaplib, ssl, sys, re, time
port, ca, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)

def ok(r, what):
    typ, data = r
    assert typ == "OK", (what, typ, data)
    return data

def msg(n, subject):
    return (b"From: Bob <bob@example.org>\r\nTo: alice@example.org\r\nSubject: " + subject +
            b"\r\nMessage-ID: <m" + str(n).encode() + b"@postern.test>\r\n\r\nBody " +
            str(n).encode() + b"\r\n")

M = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=ctx)
assert "IMAP4REV1" in M.capabilities, M.capabilities
assert "AUTH=PLAIN" in M.capabilities, M.capabilities
assert "LOGINDISABLED" not in M.capabilities and "STARTTLS" not in M.capabilities
try:
    M.login("alice", "wrong password")
    raise SystemExit("wrong password accepted")
except imaplib.IMAP4.error:
    pass
ok(M.login("alice", password), "login")
ok(M.create("Work"), "create")
ok(M.create("Projects/2026"), "create nested")

m1, m2, m3 = msg(1, b"First"), msg(2, b"Second"), msg(3, b"Third")
d = ok(M.append("INBOX", r"(\Flagged $Label1)", imaplib.Time2Internaldate(1700000000), m1), "append 1")
match = re.search(rb"APPENDUID (\d+) (\d+)", d[0])
assert match, d
uidvalidity, uid1 = int(match.group(1)), int(match.group(2))
d = ok(M.append("INBOX", None, None, m2), "append 2")
uid2 = int(re.search(rb"APPENDUID \d+ (\d+)", d[0]).group(1))
d = ok(M.append("INBOX", r"(\Seen)", None, m3), "append 3")
uid3 = int(re.search(rb"APPENDUID \d+ (\d+)", d[0]).group(1))
assert uid1 < uid2 < uid3, (uid1, uid2, uid3)

assert ok(M.select("INBOX"), "select") == [b"3"]
data = ok(M.fetch("1:*", "(FLAGS UID RFC822.SIZE INTERNALDATE BODY.PEEK[HEADER.FIELDS (Subject)])"), "fetch")
parts = [d for d in data if isinstance(d, tuple)]
assert len(parts) == 3, data
head, subj = parts[0]
assert b"\\Flagged" in head and b"$Label1" in head and b"\\Seen" not in head, head
assert (b"UID %d" % uid1) in head, head
assert (b"RFC822.SIZE %d" % len(m1)) in head, head
assert subj == b"Subject: First\r\n\r\n", subj
when = time.mktime(imaplib.Internaldate2tuple(head))
assert abs(when - 1700000000) < 1, (head, when)
assert (b"RFC822.SIZE %d" % len(m2)) in parts[1][0] and parts[1][1] == b"Subject: Second\r\n\r\n"

# BODY.PEEK left \Seen alone; BODY[] sets it.
data = ok(M.fetch("2", "(FLAGS)"), "flags 2")
assert b"\\Seen" not in data[0], data
data = ok(M.fetch("2", "(BODY[])"), "body 2")
assert data[0][1] == m2, data
data = ok(M.fetch("2", "(FLAGS)"), "flags 2 after")
assert b"\\Seen" in data[0], data

# STORE and its .SILENT form.
data = ok(M.store("3", "+FLAGS", r"(\Answered)"), "store +")
assert b"\\Answered" in data[0] and b"\\Seen" in data[0], data
data = ok(M.store("3", "-FLAGS", r"(\Seen)"), "store -")
assert b"\\Seen" not in data[0] and b"\\Answered" in data[0], data
data = ok(M.store("3", "+FLAGS.SILENT", r"(\Deleted)"), "store silent")
assert data == [None], data
data = ok(M.fetch("3", "(FLAGS)"), "flags 3")
assert b"\\Deleted" in data[0], data

# COPY answers COPYUID (RFC 4315); UID COPY too.
typ, data = M.copy("1", "Work")
assert typ == "OK" and re.search(rb"COPYUID \d+ 1 \d+", data[0]), data
typ, data = M._simple_command("UID", "COPY", str(uid2), "Work")
assert typ == "OK" and re.search(rb"COPYUID \d+ %d \d+" % uid2, data[0]), data

# MOVE (RFC 6851) by UID: the message leaves INBOX with an EXPUNGE.
typ, data = M.uid("MOVE", str(uid1), "Projects/2026")
assert typ == "OK", (typ, data)
assert ok(M.search(None, "ALL"), "search after move") == [b"1 2"]

# EXPUNGE removes the \Deleted third message (now sequence 2). imaplib returns every EXPUNGE
# seen since the last command that collected them: MOVE's "* 1 EXPUNGE", then this one's.
data = ok(M.expunge(), "expunge")
assert data == [b"1", b"2"], data
assert ok(M.search(None, "ALL"), "search after expunge") == [b"1"]
assert ok(M.uid("SEARCH", None, "ALL"), "uid search") == [str(uid2).encode()]

# UID FETCH and UID STORE.
data = ok(M.uid("FETCH", str(uid2), "(UID BODY.PEEK[])"), "uid fetch")
assert data[0][1] == m2 and (b"UID %d" % uid2) in data[0][0], data
data = ok(M.uid("STORE", str(uid2), "+FLAGS", r"(\Flagged)"), "uid store")
assert b"\\Flagged" in data[0] and (b"UID %d" % uid2) in data[0], data

# SEARCH with several keys.
ok(M.select("Work"), "select Work")
assert ok(M.search(None, "ALL"), "search all") == [b"1 2"]
assert ok(M.search(None, "FLAGGED"), "search flagged") == [b"1"]
assert ok(M.search(None, "SEEN"), "search seen") == [b"2"]
assert ok(M.search(None, "SUBJECT", '"Second"'), "search subject") == [b"2"]
assert ok(M.search(None, "BODY", "Body", "NOT", "FLAGGED"), "search body") == [b"2"]
assert ok(M.search(None, "KEYWORD", "$Label1"), "search keyword") == [b"1"]
data = ok(M.fetch("1:2", "(BODY.PEEK[])"), "work bodies")
assert [d[1] for d in data if isinstance(d, tuple)] == [m1, m2], data

# STATUS of a mailbox other than the selected one.
data = ok(M.status("INBOX", "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN)"), "status")
s = data[0]
assert b"MESSAGES 1" in s and (b"UIDNEXT %d" % (uid3 + 1)) in s, s
assert (b"UIDVALIDITY %d" % uidvalidity) in s and b"UNSEEN 0" in s, s
data = ok(M.status("Projects/2026", "(MESSAGES)"), "status moved")
assert b"MESSAGES 1" in data[0], data

# LIST shows the new mailboxes and the special-use ones.
names = b"\n".join(ok(M.list(), "list"))
for name in (b"INBOX", b"Work", b"Projects/2026", b"Sent", b"Trash"):
    assert name in names, names
assert b"\\Sent" in names and b"\\Trash" in names, names
data = ok(M.list('""', "Projects/%"), "list pattern")
assert len(data) == 1 and b"Projects/2026" in data[0], data

typ, _ = M.logout()
assert typ == "BYE", typ
print("ok")
`;

Deno.test("Python imaplib runs a whole session over implicit TLS", async () => {
  await withPostern(async (postern) => {
    const r = await runPython(PYTHON_SESSION, [
      String(postern.implicitPort),
      postern.caPath,
      USER.password,
    ]);
    assert.equal(r.code, 0, describeRun(r));
    assert.equal(r.stdout.trim(), "ok");
  });
});

const PYTHON_IDLE = String.raw`
import imaplib, ssl, sys, time
port, ca, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
A = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=ctx)
A.login("alice", password)
assert A.select("INBOX") == ("OK", [b"2"])
A.send(b"I1 IDLE\r\n")
line = A.readline()
assert line.startswith(b"+"), line
A.sock.settimeout(5)

def wait_for(word, limit):
    start = time.monotonic()
    seen = []
    while True:
        line = A.readline()
        seen.append(line)
        if word in line:
            took = time.monotonic() - start
            assert took < limit, (word, took, seen)
            return line, took
        assert line, seen

B = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=ctx)
B.login("alice", password)
B.append("INBOX", None, None, b"Subject: new\r\n\r\nhello\r\n")
line, took_exists = wait_for(b"EXISTS", 2.0)
assert line == b"* 3 EXISTS\r\n", line

B.select("INBOX")
B.store("1", "+FLAGS.SILENT", r"(\Deleted)")
B.expunge()
line, took_expunge = wait_for(b"EXPUNGE", 2.0)
assert line == b"* 1 EXPUNGE\r\n", line
B.logout()

A.send(b"DONE\r\n")
while True:
    line = A.readline()
    assert line, "closed before IDLE completed"
    if line.startswith(b"I1 "):
        assert line.startswith(b"I1 OK"), line
        break
assert A.search(None, "ALL") == ("OK", [b"1 2"])
A.logout()
print("exists %.3f expunge %.3f" % (took_exists, took_expunge))
`;

Deno.test("an IDLE session sees another session's APPEND and EXPUNGE within two seconds", async () => {
  await withPostern(async (postern) => {
    await seed(postern, "INBOX", [makeMessage("i1", "one"), makeMessage("i2", "two")]);
    const r = await runPython(PYTHON_IDLE, [
      String(postern.implicitPort),
      postern.caPath,
      USER.password,
    ]);
    assert.equal(r.code, 0, describeRun(r));
    assert.match(r.stdout, /^exists [\d.]+ expunge [\d.]+/);
  });
});

const PYTHON_STARTTLS = String.raw`
import imaplib, ssl, sys
port, ca, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
M = imaplib.IMAP4("127.0.0.1", port)
caps = M.capabilities
assert "STARTTLS" in caps and "LOGINDISABLED" in caps, caps
assert "AUTH=PLAIN" not in caps, caps
try:
    M.login("alice", password)
    raise SystemExit("LOGIN accepted in the clear")
except imaplib.IMAP4.error as e:
    pass
typ, data = M.starttls(ssl.create_default_context(cafile=ca))
assert typ == "OK", (typ, data)
caps = M.capabilities
assert "STARTTLS" not in caps and "LOGINDISABLED" not in caps and "AUTH=PLAIN" in caps, caps
assert M.login("alice", password)[0] == "OK"
assert M.select("INBOX")[0] == "OK"
try:
    M.starttls(ssl.create_default_context(cafile=ca))
    raise SystemExit("second STARTTLS accepted")
except imaplib.IMAP4.error:
    pass
M.logout()
print("ok")
`;

Deno.test({
  name: "Python imaplib upgrades with STARTTLS; LOGIN is refused before it",
  fn: async () => {
    await withPostern(async (postern) => {
      const r = await runPython(PYTHON_STARTTLS, [
        String(postern.starttlsPort),
        postern.caPath,
        USER.password,
      ]);
      assert.equal(r.code, 0, describeRun(r));
      assert.equal(r.stdout.trim(), "ok");
    });
  },
});

Deno.test({
  name: "plaintext pipelined after STARTTLS is discarded, not answered",
  fn: async () => {
    await withPostern(async (postern) => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: postern.starttlsPort });
      let tls: Deno.TlsConn | null = null;
      try {
        const greeting = await readRaw(conn, 5000, (t) => t.includes("\r\n"));
        assert.match(greeting, /^\* OK/);
        // One packet: STARTTLS and a LOGIN injected after it (CVE-2011-0411 style).
        await conn.write(
          new TextEncoder().encode(`a STARTTLS\r\nb LOGIN alice "${USER.password}"\r\n`),
        );
        const clear = await readRaw(conn, 5000, (t) => /^a OK.*\r\n/m.test(t));
        assert.match(clear, /^a OK/m);
        assert.doesNotMatch(clear, /^b /m, "answered the injected command in the clear");
        tls = await Deno.startTls(conn, { hostname: "localhost", caCerts: [postern.caPem] });
        const imap = new RawImap(tls);
        const caps = await imap.command("CAPABILITY");
        assert.equal(caps.status, "OK");
        assert.ok(
          caps.untagged.every((r) => !r.text.startsWith("b ")),
          `the injected command ran: ${caps.untagged.map((r) => r.text).join(" | ")}`,
        );
        assert.match(caps.untagged[0]?.text ?? "", /AUTH=PLAIN/);
        assert.doesNotMatch(caps.untagged[0]?.text ?? "", /STARTTLS/);
        // Still not logged in: the injected LOGIN had no effect.
        const select = await imap.command("SELECT INBOX");
        assert.equal(select.status, "BAD", select.tagged);
        await imap.command("LOGOUT");
        await imap.close();
        tls = null;
      } finally {
        try {
          (tls ?? conn).close();
        } catch {
          // Already closed.
        }
      }
    });
  },
});

Deno.test("curl lists mailboxes and fetches a message by UID over imaps://", async () => {
  await withPostern(async (postern) => {
    const message = makeMessage("curl1", "For curl", "Line one\r\nLine two\r\n");
    const [uid] = await seed(postern, "INBOX", [message]);
    const base = `imaps://127.0.0.1:${postern.implicitPort}`;
    const common = [
      "-sS",
      "--max-time",
      "15",
      "--cacert",
      postern.caPath,
      "-u",
      `alice:${USER.password}`,
    ];
    const listed = await run("curl", [...common, `${base}/`]);
    assert.equal(listed.code, 0, describeRun(listed));
    for (const name of ["INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"]) {
      assert.match(listed.stdout, new RegExp(`^\\* LIST \\([^)]*\\) "/" "?${name}"?\\r?$`, "m"));
    }
    const fetched = await run("curl", [...common, `${base}/INBOX;UID=${uid}`]);
    assert.equal(fetched.code, 0, describeRun(fetched));
    assert.equal(fetched.stdout, new TextDecoder().decode(message));
    const wrong = await run("curl", [
      ...common.slice(0, -1),
      "alice:not the password",
      `${base}/`,
    ]);
    assert.notEqual(wrong.code, 0, "curl logged in with a wrong password");
  });
});

/** Message-IDs found in the files of a Maildir folder (cur and new). */
async function maildirIds(folder: string): Promise<{ ids: string[]; names: string[] }> {
  const ids: string[] = [];
  const names: string[] = [];
  for (const sub of ["cur", "new"]) {
    for await (const entry of Deno.readDir(join(folder, sub))) {
      const text = await Deno.readTextFile(join(folder, sub, entry.name));
      const m = /^Message-ID: (<[^>]+>)/im.exec(text);
      ids.push(m ? m[1]! : `(none in ${entry.name})`);
      names.push(entry.name);
    }
  }
  return { ids: ids.sort(), names };
}

/** Message-IDs and flags of every message in a server mailbox, in UID order. */
async function serverIds(
  postern: RunningPostern,
  mailbox: string,
): Promise<{ ids: string[]; flags: Map<string, string> }> {
  const imap = await RawImap.tls(postern.implicitPort, postern.caPem);
  try {
    await imap.greeting();
    await imap.command(`LOGIN alice "${USER.password}"`);
    const sel = await imap.command(`EXAMINE "${mailbox}"`);
    assert.equal(sel.status, "OK", sel.tagged);
    const exists = sel.untagged.some((r) => / [1-9]\d* EXISTS$/.test(r.text));
    const ids: string[] = [];
    const flags = new Map<string, string>();
    if (exists) {
      const r = await imap.command("UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])");
      assert.equal(r.status, "OK", r.tagged);
      for (const f of r.untagged) {
        const id = /Message-ID: (<[^>]+>)/i.exec(f.text)?.[1] ?? "(none)";
        ids.push(id);
        flags.set(id, /FLAGS \(([^)]*)\)/.exec(f.text)?.[1] ?? "");
      }
    }
    await imap.command("LOGOUT");
    return { ids: ids.sort(), flags };
  } finally {
    await imap.close();
  }
}

Deno.test("mbsync syncs both ways twice with nothing lost or duplicated", async () => {
  await withPostern(async (postern) => {
    await seed(postern, "INBOX", [makeMessage("mb1", "one"), makeMessage("mb2", "two")]);
    await seed(postern, "Sent", [makeMessage("mb3", "sent")], "\\Seen");
    const home = await Deno.makeTempDir({ prefix: "postern-mbsync-" });
    try {
      const maildir = join(home, "Mail");
      await Deno.mkdir(maildir);
      const rc = await writeMbsyncConfig(home, {
        port: postern.implicitPort,
        user: USER.name,
        password: USER.password,
        caPath: postern.caPath,
        maildir,
      });
      const sync = () =>
        run("mbsync", ["-c", rc, "-a"], { env: { HOME: home }, cwd: home, timeoutMs: 30_000 });
      const first = await sync();
      assert.equal(first.code, 0, describeRun(first));
      assert.deepEqual((await maildirIds(join(maildir, "INBOX"))).ids, [
        "<mb1@postern.test>",
        "<mb2@postern.test>",
      ]);
      assert.deepEqual((await maildirIds(join(maildir, "Sent"))).ids, ["<mb3@postern.test>"]);

      // A change on each side: a new local message; a new server message and a flag change.
      const local = new TextDecoder().decode(makeMessage("mb-local", "written offline"));
      await Deno.writeTextFile(
        join(maildir, "INBOX", "new", `${Date.now()}.M1P1.postern-test`),
        local.replaceAll("\r\n", "\n"),
      );
      await seed(postern, "INBOX", [makeMessage("mb4", "four")]);
      const imap = await RawImap.tls(postern.implicitPort, postern.caPem);
      await imap.greeting();
      await imap.command(`LOGIN alice "${USER.password}"`);
      await imap.command("SELECT INBOX");
      const store = await imap.command("STORE 1 +FLAGS (\\Flagged)");
      assert.equal(store.status, "OK", store.tagged);
      await imap.command("LOGOUT");
      await imap.close();

      const second = await sync();
      assert.equal(second.code, 0, describeRun(second));
      const expected = [
        "<mb-local@postern.test>",
        "<mb1@postern.test>",
        "<mb2@postern.test>",
        "<mb4@postern.test>",
      ];
      const near = await maildirIds(join(maildir, "INBOX"));
      assert.deepEqual(near.ids, expected);
      const far = await serverIds(postern, "INBOX");
      assert.deepEqual(far.ids, expected);
      // The server-side \Flagged reached the Maildir name (":2,F…").
      const flaggedFiles = near.names.filter((n) => /:2,[A-Z]*F/.test(n));
      assert.equal(flaggedFiles.length, 1, near.names.join(" "));

      // A third run changes nothing.
      const third = await sync();
      assert.equal(third.code, 0, describeRun(third));
      assert.deepEqual((await maildirIds(join(maildir, "INBOX"))).ids, expected);
      assert.deepEqual((await serverIds(postern, "INBOX")).ids, expected);
      assert.deepEqual((await serverIds(postern, "Sent")).ids, ["<mb3@postern.test>"]);
    } finally {
      await Deno.remove(home, { recursive: true }).catch(() => {});
    }
  });
});

Deno.test("fetchmail pulls every message intact over TLS with certificate checks", async () => {
  await withPostern(async (postern) => {
    const messages = [
      makeMessage("fm1", "first", "Plain body.\r\n"),
      makeMessage("fm2", "second", `${"Long line ".repeat(20)}\r\nand more\r\n`),
      makeMessage("fm3", "third", "Third.\r\n"),
    ];
    await seed(postern, "INBOX", messages);
    const home = await Deno.makeTempDir({ prefix: "postern-fetchmail-" });
    try {
      const out = join(home, "out");
      await Deno.mkdir(out);
      const rc = await writeFetchmailrc(home, {
        port: postern.implicitPort,
        user: USER.name,
        password: USER.password,
        caPath: postern.caPath,
        mda: `cat > ${out}/msg.$$`,
      });
      const r = await run("fetchmail", ["-f", rc, "--nosyslog", "-N", "-v"], {
        env: { HOME: home, FETCHMAILHOME: home, PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" },
        cwd: home,
        timeoutMs: 30_000,
      });
      assert.equal(r.code, 0, describeRun(r));
      const delivered: string[] = [];
      for await (const entry of Deno.readDir(out)) {
        delivered.push(await Deno.readTextFile(join(out, entry.name)));
      }
      assert.equal(delivered.length, messages.length, describeRun(r));
      for (const message of messages) {
        // fetchmail hands the MDA LF line ends and prepends its own Received header.
        const text = new TextDecoder().decode(message).replaceAll("\r\n", "\n");
        const matching = delivered.filter((d) => d.replaceAll("\r\n", "\n").endsWith(text));
        assert.equal(matching.length, 1, `not delivered intact:\n${text}`);
      }
    } finally {
      await Deno.remove(home, { recursive: true }).catch(() => {});
    }
  });
});

Deno.test("imapflow lists, opens, fetches structure and downloads a part over TLS", async () => {
  await withPostern(async (postern) => {
    const attachment = new Uint8Array(3000).map((_, i) => (i * 31 + 7) & 0xff);
    const b64 = btoa(String.fromCharCode(...attachment)).replace(/.{76}/g, "$&\r\n");
    const multipart = new TextEncoder().encode(
      [
        "From: Bob <bob@example.org>",
        "To: Alice <alice@example.org>",
        "Subject: With attachment",
        "Message-ID: <flow1@postern.test>",
        "Date: Fri, 27 Nov 2026 12:00:00 +0000",
        "MIME-Version: 1.0",
        'Content-Type: multipart/mixed; boundary="b1"',
        "",
        "--b1",
        "Content-Type: text/plain; charset=utf-8",
        "",
        "See attached.",
        "--b1",
        'Content-Type: application/octet-stream; name="data.bin"',
        'Content-Disposition: attachment; filename="data.bin"',
        "Content-Transfer-Encoding: base64",
        "",
        b64,
        "--b1--",
        "",
      ].join("\r\n"),
    );
    await seed(postern, "INBOX", [makeMessage("flow0", "plain"), multipart]);
    const client = imapflowClient(postern, USER);
    try {
      await client.connect();
      const boxes = await client.list();
      assert.ok(boxes.some((b) => b.path === "Trash" && b.specialUse === "\\Trash"));
      const status = await client.status("INBOX", { messages: true, uidNext: true, unseen: true });
      assert.ok(status !== false);
      assert.equal(status.messages, 2);
      assert.equal(status.uidNext, 3);
      assert.equal(status.unseen, 2);
      const mailbox = await client.mailboxOpen("INBOX");
      assert.equal(mailbox.exists, 2);
      const seen: { subject: string | undefined; type: string | undefined }[] = [];
      for await (
        const msg of client.fetch("1:*", { envelope: true, bodyStructure: true, uid: true })
      ) {
        seen.push({ subject: msg.envelope?.subject, type: msg.bodyStructure?.type });
        if (msg.uid === 2) {
          const parts = msg.bodyStructure?.childNodes ?? [];
          assert.equal(parts.length, 2);
          assert.equal(parts[1]?.type, "application/octet-stream");
          assert.equal(parts[1]?.encoding, "base64");
          assert.equal(parts[1]?.dispositionParameters?.filename, "data.bin");
          assert.equal(msg.envelope?.from?.[0]?.address, "bob@example.org");
        }
      }
      assert.deepEqual(seen, [
        { subject: "plain", type: "text/plain" },
        { subject: "With attachment", type: "multipart/mixed" },
      ]);
      const download = await client.download("2", "2", { uid: true });
      const chunks: Uint8Array[] = [];
      assert.ok(download.content);
      for await (const chunk of download.content) chunks.push(chunk as Uint8Array);
      const got = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
      let off = 0;
      for (const c of chunks) {
        got.set(c, off);
        off += c.length;
      }
      assert.deepEqual(got, attachment);
      await client.logout();
    } finally {
      client.close();
    }
  });
});
