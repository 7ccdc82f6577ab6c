/**
 * Real IMAP clients (Python imaplib, imapflow) against the session over a loopback socket with
 * a minimal in-test driver. The connection is plaintext but the session is told it is
 * encrypted, so LOGIN is allowed; TLS itself is tested elsewhere.
 */
import assert from "node:assert/strict";
import { ImapSession } from "../../protocol/imap/mod.ts";
import { authenticator, newStore } from "../protocol/imap/_harness.ts";
import type { MailStore } from "../../mailstore/mail_store.ts";

function serve(store: MailStore): { port: number; stop: () => Promise<void> } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const loop = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      void (async () => {
        const session = new ImapSession({
          store,
          authenticator,
          tls: true,
          starttlsAvailable: false,
          peer: { address: "127.0.0.1", identity: null },
        });
        let writing = Promise.resolve();
        session.onOutput = (bytes) => {
          writing = writing.then(async () => {
            let off = 0;
            while (off < bytes.length) off += await conn.write(bytes.subarray(off));
          }).catch(() => {});
        };
        let closed = false;
        session.onClose = () => {
          closed = true;
          void writing.then(() => conn.close()).catch(() => {});
        };
        await conn.write(session.greeting());
        const buf = new Uint8Array(65536);
        try {
          while (!closed) {
            const n = await conn.read(buf);
            if (n === null) break;
            await session.receive(buf.slice(0, n));
          }
        } catch {
          // Connection reset by the client.
        } finally {
          session.dispose();
          conns.delete(conn);
          if (!closed) {
            try {
              conn.close();
            } catch { /* already closed */ }
          }
        }
      })();
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    stop: async () => {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      await loop.catch(() => {});
    },
  };
}

const PYTHON = String.raw`
import imaplib, sys, time
port = int(sys.argv[1])
M = imaplib.IMAP4("127.0.0.1", port)
assert "IMAP4REV1" in M.capabilities, M.capabilities
M.login("alice", "secret")
typ, data = M.list()
assert typ == "OK" and any(b'"INBOX"' in d or b" INBOX" in d for d in data), data
M.create("Work")
msg = b"From: a@example.org\r\nSubject: Hello imaplib\r\n\r\nBody text here\r\n"
typ, data = M.append("INBOX", r"(\Flagged)", imaplib.Time2Internaldate(time.time()), msg)
assert typ == "OK" and b"APPENDUID" in data[0], data
typ, data = M.select("INBOX")
assert typ == "OK" and data[0] == b"1", data
typ, data = M.fetch("1", "(UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
assert typ == "OK" and b"Hello imaplib" in data[0][1], data
typ, data = M.fetch("1", "(RFC822)")
assert data[0][1] == msg, data
typ, data = M.search(None, "FLAGGED", "SEEN")
assert data == [b"1"], data
typ, data = M.uid("SEARCH", None, "ALL")
assert data == [b"1"], data
typ, data = M.store("1", "+FLAGS", r"(\Deleted)")
assert typ == "OK", data
typ, data = M.copy("1", "Work")
assert typ == "OK", data
typ, data = M.expunge()
assert data == [b"1"], data
typ, data = M.status("Work", "(MESSAGES UIDNEXT)")
assert b"MESSAGES 1" in data[0], data
M.close()
M.logout()
print("python ok")
`;

Deno.test("Python imaplib runs a full session against ImapSession", async () => {
  const store = await newStore();
  const server = serve(store);
  try {
    const out = await new Deno.Command("python3", {
      args: ["-c", PYTHON, String(server.port)],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, text);
    assert.match(text, /python ok/);
  } finally {
    await server.stop();
  }
});

Deno.test("imapflow lists, appends, fetches, searches and moves against ImapSession", async () => {
  const { ImapFlow } = await import("imapflow");
  const store = await newStore();
  const server = serve(store);
  const client = new ImapFlow({
    host: "127.0.0.1",
    port: server.port,
    secure: false,
    doSTARTTLS: false,
    auth: { user: "alice", pass: "secret" },
    logger: false,
  });
  try {
    await client.connect();
    const boxes = await client.list();
    assert.ok(boxes.some((b) => b.path === "Sent" && b.specialUse === "\\Sent"));
    const raw = "From: a@example.org\r\nSubject: Hi flow\r\n\r\nHello\r\n";
    const appended = await client.append("INBOX", raw, ["\\Seen"]);
    assert.ok(appended !== false);
    assert.equal(appended.uid, 1);
    const lock = await client.getMailboxLock("INBOX");
    try {
      const msg = await client.fetchOne("1", {
        envelope: true,
        source: true,
        flags: true,
        uid: true,
      });
      assert.ok(msg !== false && msg.envelope && msg.source && msg.flags);
      assert.equal(msg.envelope.subject, "Hi flow");
      assert.equal(new TextDecoder().decode(msg.source), raw);
      assert.ok(msg.flags.has("\\Seen"));
      const uids = await client.search({ subject: "flow" }, { uid: true });
      assert.deepEqual(uids, [1]);
      await client.messageMove("1", "Archive");
      const status = await client.status("Archive", { messages: true });
      assert.ok(status !== false);
      assert.equal(status.messages, 1);
    } finally {
      lock.release();
    }
    await client.logout();
  } finally {
    client.close();
    await server.stop();
  }
});

async function run(cmd: string, args: string[], cwd?: string): Promise<string> {
  const out = await new Deno.Command(cmd, {
    args,
    stdout: "piped",
    stderr: "piped",
    ...(cwd ? { cwd } : {}),
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, `${cmd} failed: ${text}`);
  return text;
}

Deno.test("curl, mbsync and fetchmail work against ImapSession", async () => {
  const store = await newStore();
  const server = serve(store);
  const dir = await Deno.makeTempDir({ prefix: "postern-imap-clients-" });
  try {
    const base = `imap://127.0.0.1:${server.port}`;
    // mbsync pushes two local messages up (APPEND with APPENDUID) and pulls the folder list.
    for (const sub of ["cur", "new", "tmp"]) {
      await Deno.mkdir(`${dir}/mail/inbox/${sub}`, { recursive: true });
    }
    await Deno.writeTextFile(
      `${dir}/mail/inbox/new/1.local`,
      "From: x@example.org\r\nSubject: one\r\n\r\nhi\r\n",
    );
    await Deno.writeTextFile(
      `${dir}/mail/inbox/new/2.local`,
      "From: y@example.org\r\nSubject: two\r\n\r\nho\r\n",
    );
    await Deno.writeTextFile(
      `${dir}/mbsyncrc`,
      `IMAPAccount t\nHost 127.0.0.1\nPort ${server.port}\nUser alice\nPass secret\nSSLType None\n` +
        `AuthMechs LOGIN\n\nIMAPStore r\nAccount t\n\nMaildirStore l\nPath ${dir}/mail/\n` +
        `Inbox ${dir}/mail/inbox\nSubFolders Verbatim\n\nChannel c\nFar :r:\nNear :l:\n` +
        `Patterns *\nCreate Both\nExpunge Both\nSyncState *\n`,
    );
    await run("mbsync", ["-c", `${dir}/mbsyncrc`, "-a"]);
    await run("mbsync", ["-c", `${dir}/mbsyncrc`, "-a"]);
    const acct = (await store.getAccount("alice"))!;
    assert.equal((await store.getMailbox(acct.id, "INBOX"))?.messages, 2);
    assert.match(
      await run("curl", ["-s", "-u", "alice:secret", `${base}/INBOX;UID=2`]),
      /Subject: two/,
    );
    assert.equal(
      await run("curl", ["-s", "-u", "alice:secret", `${base}/INBOX?SUBJECT%20one`]),
      "* SEARCH 1\r\n",
    );
    await Deno.writeTextFile(
      `${dir}/fetchmailrc`,
      `poll 127.0.0.1 port ${server.port} protocol IMAP user "alice" password "secret" keep ` +
        `fetchall mda "cat >> ${dir}/fetched.mbox"\n`,
    );
    await Deno.chmod(`${dir}/fetchmailrc`, 0o600);
    await run("fetchmail", ["-f", `${dir}/fetchmailrc`, "--nosslcertck"]);
    const fetched = await Deno.readTextFile(`${dir}/fetched.mbox`);
    assert.match(fetched, /Subject: one/);
    assert.match(fetched, /Subject: two/);
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
