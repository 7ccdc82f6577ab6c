/**
 * Client behaviour over implicit TLS against a whole Postern (startPostern) holding the fixture
 * corpus: the FETCH patterns Thunderbird and Apple Mail send when they open a folder and then a
 * message (PITFALLS.md, "IMAP clients"). Expected bytes come from the corpus files themselves,
 * cut by the small independent MIME splitter below, not from the server's MIME code.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { describeRun, type ImapResponse, RawImap, runPython } from "../_support/imap_clients.ts";
import { startPostern } from "../_support/postern.ts";

const FIXTURES = fileURLToPath(new URL("../fixtures/mail/", import.meta.url));
const enc = new TextEncoder();
const latin1 = new TextDecoder("latin1");

const THUNDERBIRD_FIELDS = [
  "From",
  "To",
  "Cc",
  "Subject",
  "Date",
  "Message-ID",
  "Priority",
  "X-Priority",
  "References",
  "Newsgroups",
  "In-Reply-To",
  "Content-Type",
  "Reply-To",
];

function indexOf(hay: Uint8Array, needle: Uint8Array, from = 0): number {
  outer: for (let i = from; i <= hay.length - needle.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/** Splits a CRLF entity into its header (with the blank line) and its body. */
function splitEntity(raw: Uint8Array): { header: Uint8Array; body: Uint8Array } {
  const end = indexOf(raw, enc.encode("\r\n\r\n"));
  assert.ok(end >= 0, "entity without a blank line");
  return { header: raw.subarray(0, end + 4), body: raw.subarray(end + 4) };
}

/** The body parts of a multipart body (RFC 2046, 5.1.1): the CRLF before a delimiter is its own. */
function splitMultipart(body: Uint8Array, boundary: string): Uint8Array[] {
  const delimiter = enc.encode(`\r\n--${boundary}`);
  const first = indexOf(body, enc.encode(`--${boundary}`));
  assert.ok(first >= 0);
  const parts: Uint8Array[] = [];
  let pos = indexOf(body, enc.encode("\r\n"), first) + 2;
  for (;;) {
    const next = indexOf(body, delimiter, pos - 2);
    assert.ok(next >= 0, "missing delimiter");
    parts.push(body.subarray(pos, next));
    const after = next + delimiter.length;
    if (body[after] === 0x2d && body[after + 1] === 0x2d) return parts;
    pos = indexOf(body, enc.encode("\r\n"), after) + 2;
  }
}

/** Header fields named in `names`, each with its folded lines, then the blank line (6.4.5). */
function headerFields(raw: Uint8Array, names: readonly string[]): string {
  const { header } = splitEntity(raw);
  const lines = latin1.decode(header).split("\r\n").slice(0, -2);
  const wanted = new Set(names.map((n) => n.toLowerCase()));
  let out = "";
  let keep = false;
  for (const line of lines) {
    if (!/^[ \t]/.test(line)) keep = wanted.has(line.slice(0, line.indexOf(":")).toLowerCase());
    if (keep) out += line + "\r\n";
  }
  return out + "\r\n";
}

/** Whether a file is a plain CRLF message with a header/body separator (the splitter's input). */
function simpleCrlf(raw: Uint8Array): boolean {
  const text = latin1.decode(raw);
  return /\r\n\r\n/.test(text) && !/[^\r]\n/.test(text) && !text.includes("\0") &&
    /^[A-Za-z-]+:/.test(text);
}

/** The fetch data of one untagged FETCH: its text and literals, keyed by UID. */
function byUid(responses: readonly ImapResponse[]): Map<number, ImapResponse> {
  const out = new Map<number, ImapResponse>();
  for (const r of responses) {
    const m = /^\* \d+ FETCH \(.*?\bUID (\d+)/s.exec(r.text);
    if (m) out.set(Number(m[1]), r);
  }
  return out;
}

function bytesEqual(a: Uint8Array | undefined, b: Uint8Array, what: string): void {
  assert.ok(a !== undefined, `${what}: no literal`);
  assert.equal(latin1.decode(a), latin1.decode(b), what);
}

Deno.test({
  name: "Thunderbird and Apple Mail fetch patterns get corpus-exact answers over TLS",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const postern = await startPostern({ users: [{ name: "alice", password: "pw" }] });
    const imap = await RawImap.tls(postern.implicitPort, postern.caPem);
    try {
      await imap.greeting();
      assert.equal((await imap.command("LOGIN alice pw")).status, "OK");
      const names = [...Deno.readDirSync(FIXTURES)].map((e) => e.name)
        .filter((n) => n.endsWith(".eml")).sort();
      const files = new Map<number, { name: string; raw: Uint8Array }>();
      for (const [i, name] of names.entries()) {
        const raw = await Deno.readFile(FIXTURES + name);
        const r = await imap.command("APPEND INBOX", raw);
        assert.equal(r.status, "OK", `${name}: ${r.tagged}`);
        files.set(i + 1, { name, raw });
      }
      const uidOf = (prefix: string) => [...files].find(([, f]) => f.name.startsWith(prefix))![0];

      // Apple Mail opens with CONDSTORE.
      const select = await imap.command("SELECT INBOX (CONDSTORE)");
      assert.equal(select.status, "OK");
      const highest = /HIGHESTMODSEQ (\d+)/.exec(select.untagged.map((u) => u.text).join("\n"));
      assert.ok(highest, "SELECT (CONDSTORE) reports HIGHESTMODSEQ");
      assert.ok(select.untagged.some((u) => u.text === `* ${names.length} EXISTS`));

      // Thunderbird's folder open.
      const list = await imap.command(
        `UID FETCH 1:* (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (${
          THUNDERBIRD_FIELDS.join(" ")
        })])`,
      );
      assert.equal(list.status, "OK", list.tagged);
      const rows = byUid(list.untagged);
      assert.equal(rows.size, names.length);
      let checkedHeaders = 0;
      for (const [uid, f] of files) {
        const row = rows.get(uid)!;
        const size = /RFC822\.SIZE (\d+)/.exec(row.text);
        assert.equal(Number(size?.[1]), f.raw.length, `${f.name} RFC822.SIZE`);
        // Just appended: no stored flags, and \Recent in this IMAP4rev1 session.
        assert.match(row.text, /FLAGS \((\\Recent)?\)/, `${f.name} has no flags yet`);
        assert.match(row.text, /BODY\[HEADER\.FIELDS \(FROM TO CC SUBJECT DATE MESSAGE-ID /i);
        if (simpleCrlf(f.raw)) {
          assert.equal(
            latin1.decode(row.literals[0]),
            headerFields(f.raw, THUNDERBIRD_FIELDS),
            `${f.name} header fields`,
          );
          checkedHeaders++;
        }
      }
      assert.ok(checkedHeaders >= 60, `checked ${checkedHeaders} header blocks`);

      // Opening a message with an attachment: structure, then the parts on demand.
      const pdf = uidOf("08-");
      const pdfFile = files.get(pdf)!;
      const pdfParts = splitMultipart(splitEntity(pdfFile.raw).body, "mix-08");
      const structure = await imap.command(`UID FETCH ${pdf} (UID RFC822.SIZE BODYSTRUCTURE)`);
      const st = structure.untagged[0]!.text;
      assert.match(st, new RegExp(`RFC822\\.SIZE ${pdfFile.raw.length}`));
      const attachment = splitEntity(pdfParts[1]!);
      assert.match(
        st,
        new RegExp(
          `"application" "pdf" \\("name" "report\\.pdf"\\) NIL NIL "base64" ${attachment.body.length}`,
          "i",
        ),
      );
      assert.match(st, /"mixed" \("boundary" "mix-08"\)/i);

      const mime = await imap.command(`UID FETCH ${pdf} (BODY.PEEK[1.MIME] BODY.PEEK[2.MIME])`);
      bytesEqual(mime.untagged[0]!.literals[0], splitEntity(pdfParts[0]!).header, "1.MIME");
      bytesEqual(mime.untagged[0]!.literals[1], attachment.header, "2.MIME");

      const partial = await imap.command(`UID FETCH ${pdf} (BODY.PEEK[1]<0.393216>)`);
      assert.match(partial.untagged[0]!.text, /BODY\[1\]<0> \{/);
      bytesEqual(partial.untagged[0]!.literals[0], splitEntity(pdfParts[0]!).body, "1<0.393216>");
      const slice = await imap.command(`UID FETCH ${pdf} (BODY.PEEK[2]<100.50>)`);
      assert.match(slice.untagged[0]!.text, /BODY\[2\]<100> \{50\}/);
      bytesEqual(slice.untagged[0]!.literals[0], attachment.body.subarray(100, 150), "2<100.50>");
      const beyond = await imap.command(`UID FETCH ${pdf} (BODY.PEEK[1]<100000.10>)`);
      assert.match(beyond.untagged[0]!.text, /BODY\[1\]<100000> (""|\{0\}\r\n)/);

      // Nothing so far may have set \Seen.
      const flags = await imap.command("UID FETCH 1:* (FLAGS)");
      assert.ok(
        flags.untagged.every((u) => /FLAGS \((\\Recent)?\)/.test(u.text)),
        "PEEK keeps \\Seen off",
      );

      // BODY[2.TEXT] of a forwarded message (no PEEK) returns the inner body and sets \Seen.
      const fwd = uidOf("14-");
      const fwdParts = splitMultipart(splitEntity(files.get(fwd)!.raw).body, "fwd-14");
      const inner = splitEntity(splitEntity(fwdParts[1]!).body);
      const text = await imap.command(`UID FETCH ${fwd} (BODY[2.TEXT])`);
      assert.equal(text.status, "OK");
      bytesEqual(text.untagged[0]!.literals[0], inner.body, "2.TEXT");
      assert.match(text.untagged[0]!.text, /FLAGS \(\\Seen( \\Recent)?\)/);
      const header = await imap.command(`UID FETCH ${fwd} (BODY.PEEK[2.HEADER])`);
      bytesEqual(header.untagged[0]!.literals[0], inner.header, "2.HEADER");
      const seen = await imap.command("UID SEARCH SEEN");
      assert.equal(seen.untagged[0]!.text, `* SEARCH ${fwd}`);

      // A whole message (Thunderbird's BODY[] when a small message is opened).
      const plain = uidOf("01-");
      const whole = await imap.command(`UID FETCH ${plain} (UID BODY.PEEK[])`);
      bytesEqual(whole.untagged[0]!.literals[0], files.get(plain)!.raw, "BODY[]");

      // Apple Mail's resync: only what changed since its last HIGHESTMODSEQ, with MODSEQ.
      const since = Number(
        /MODSEQ \((\d+)\)/.exec(
          (await imap.command(`UID FETCH ${fwd} (MODSEQ)`)).untagged[0]!.text,
        )?.[1],
      );
      assert.equal(
        (await imap.command(`UID STORE ${plain} +FLAGS.SILENT (\\Flagged)`)).status,
        "OK",
      );
      const changed = await imap.command(`UID FETCH 1:* (FLAGS) (CHANGEDSINCE ${since})`);
      assert.equal(changed.status, "OK", changed.tagged);
      assert.equal(changed.untagged.length, 1, changed.untagged.map((u) => u.text).join("\n"));
      assert.match(
        changed.untagged[0]!.text,
        new RegExp(`UID ${plain}\\b.*FLAGS \\(\\\\Flagged( \\\\Recent)?\\).*MODSEQ \\((\\d+)\\)`),
      );
      const none = await imap.command(`UID FETCH 1:* (FLAGS) (CHANGEDSINCE ${since + 10})`);
      assert.deepEqual(none.untagged, []);
    } finally {
      await imap.close();
      await postern.stop();
    }
  },
});

/**
 * Python's imaplib as the peer for LIST-EXTENDED, CREATE-SPECIAL-USE, APPENDLIMIT and the
 * IMAP4rev2 switch (ESEARCH, LIST on SELECT, no RECENT, UTF-8 names, UID in unsolicited FETCH),
 * with a second IMAP4rev1 session that keeps the rev1 forms.
 */
const PYTHON_EXTENSIONS = String.raw`
import imaplib, ssl, sys
port, ca, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
def connect():
    c = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=ctx)
    c.login("alice", password)
    return c
M = connect()
caps = M.capabilities
for cap in ("LIST-EXTENDED", "LIST-STATUS", "CREATE-SPECIAL-USE", "SPECIAL-USE", "IMAP4REV2"):
    assert cap in caps, caps
limit = [c for c in caps if c.startswith("APPENDLIMIT=")]
assert len(limit) == 1, caps
limit = int(limit[0].split("=")[1])

def untagged(typ, dat, name):
    return M._untagged_response(typ, dat, name)[1]

typ, dat = M._simple_command("CREATE", "MySent", "(USE (\\Sent))")
assert typ == "OK", dat
typ, dat = M._simple_command("CREATE", "Odd", "(USE (\\Important))")
assert typ == "NO" and b"[USEATTR]" in dat[0], (typ, dat)
for box in ("Foo/Bar", "Foo/Baz", "Moo"):
    assert M.create(box)[0] == "OK"
for box in ("Foo/Bar", "Moo"):
    assert M.subscribe(box)[0] == "OK"
typ, dat = M._simple_command("LIST", "(SPECIAL-USE)", '""', '"My*"')
assert untagged(typ, dat, "LIST") == [b'(\\HasNoChildren \\Sent) "/" MySent'], dat
typ, dat = M._simple_command("LIST", "(SUBSCRIBED RECURSIVEMATCH)", '""', '("F%" "M%")')
got = untagged(typ, dat, "LIST")
assert got == [
    b'(\\HasChildren) "/" Foo ("CHILDINFO" ("SUBSCRIBED"))',
    b'(\\HasNoChildren \\Subscribed) "/" Moo',
], got
typ, dat = M._simple_command("LIST", '""', '("Moo" "MySent")', "RETURN", "(STATUS (MESSAGES APPENDLIMIT))")
got = untagged(typ, dat, "STATUS")
assert got == [b"Moo (MESSAGES 0 APPENDLIMIT %d)" % limit, b"MySent (MESSAGES 0 APPENDLIMIT %d)" % limit], got
typ, dat = M.status("INBOX", "(APPENDLIMIT)")
assert dat == [b"INBOX (APPENDLIMIT %d)" % limit], dat
M.append("INBOX", None, None, b"Subject: one\r\n\r\nbody\r\n")
M.append("INBOX", None, None, b"Subject: two\r\n\r\nbody\r\n")

# IMAP4rev1: RECENT on SELECT, SEARCH, modified UTF-7.
R = connect()
R.select("INBOX")
assert "RECENT" in R.untagged_responses and "LIST" not in R.untagged_responses, R.untagged_responses
assert R.search(None, "ALL") == ("OK", [b"1 2"])

typ, dat = M.enable("IMAP4rev2")
assert typ == "OK", dat
M._encoding = "utf-8"
typ, dat = M.select("INBOX")
assert typ == "OK" and "RECENT" not in M.untagged_responses, M.untagged_responses
assert M.untagged_responses.pop("LIST", None) == [b'(\\HasNoChildren) "/" INBOX'], M.untagged_responses
typ, dat = M._simple_command("SEARCH", "ALL")
got = untagged(typ, dat, "ESEARCH")
assert len(got) == 1 and got[0].endswith(b") ALL 1:2"), got
typ, dat = M._simple_command("CREATE", '"Entwürfe"')
assert typ == "OK", dat
typ, dat = M._simple_command("LIST", '""', '"Entw*"')
got = untagged(typ, dat, "LIST")
assert got == ['(\\HasNoChildren) "/" "Entwürfe"'.encode()], got
typ, dat = R.list('""', '"Entw*"')
assert dat == [b'(\\HasNoChildren) "/" Entw&APw-rfe'], dat

# The FLAGS a body fetch implies, and a change from another session, carry UID.
typ, dat = M.fetch("1", "(BODY[TEXT])")
assert dat[0][0].startswith(b"1 (UID 1 BODY[TEXT]"), dat
assert b"FLAGS (\\Seen)" in dat[1], dat
assert R.store("2", "+FLAGS", "\\Flagged")[0] == "OK"
typ, dat = M.noop()
fetches = M.untagged_responses.get("FETCH", [])
assert any(f.startswith(b"2 (UID 2 FLAGS") for f in fetches), (fetches, M.untagged_responses)
R.logout()
M.logout()
print("ok")
`;

Deno.test({
  name: "imaplib sees LIST-EXTENDED, CREATE-SPECIAL-USE, APPENDLIMIT and IMAP4rev2 replies",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const postern = await startPostern({ users: [{ name: "alice", password: "pw" }] });
    try {
      const r = await runPython(PYTHON_EXTENSIONS, [
        String(postern.implicitPort),
        postern.caPath,
        "pw",
      ]);
      assert.equal(r.code, 0, describeRun(r));
      assert.equal(r.stdout.trim(), "ok");
    } finally {
      await postern.stop();
    }
  },
});
