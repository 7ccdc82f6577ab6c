import assert from "node:assert/strict";
import { append, fakeIdentity, message, newStore, TestClient, wrapStore } from "./_harness.ts";

Deno.test("ImapSession greets with capabilities that reflect TLS", async () => {
  const store = await newStore();
  const tls = new TestClient(store);
  const greeting = tls.take();
  assert.match(
    greeting,
    /^\* OK \[CAPABILITY IMAP4rev1 IMAP4rev2 .*AUTH=PLAIN.*\] Postern ready\r\n$/,
  );
  assert.doesNotMatch(greeting, /STARTTLS|LOGINDISABLED|AUTH=EXTERNAL/);
  const plain = new TestClient(store, { tls: false, starttlsAvailable: true });
  const g2 = plain.take();
  assert.match(g2, /STARTTLS/);
  assert.match(g2, /LOGINDISABLED/);
  assert.doesNotMatch(g2, /AUTH=PLAIN/);
});

Deno.test("ImapSession's greeting is the same text each time, in an array of its own", async () => {
  const store = await newStore();
  const dec = new TextDecoder();
  const first = new TestClient(store).session.greeting();
  const text = dec.decode(first);
  first.fill(0); // a driver may encrypt it in place
  assert.equal(dec.decode(new TestClient(store).session.greeting()), text);
  // What the greeting says still follows each session's settings.
  const named = dec.decode(new TestClient(store, { serverName: "mx1" }).session.greeting());
  assert.match(named, /\] mx1 ready\r\n$/);
  const small = dec.decode(
    new TestClient(store, { limits: { maxLiteral: 1000 } }).session.greeting(),
  );
  assert.match(small, / APPENDLIMIT=1000 /);
  const certified = new TestClient(store, {
    peer: { address: "127.0.0.1:1", identity: fakeIdentity("alice@example.org") },
  });
  assert.match(dec.decode(certified.session.greeting()), /AUTH=EXTERNAL/);
  assert.doesNotMatch(text, /AUTH=EXTERNAL/);
});

Deno.test("ImapSession refuses LOGIN without TLS and allows it after STARTTLS", async () => {
  const store = await newStore();
  const c = new TestClient(store, { tls: false, starttlsAvailable: true });
  c.take();
  assert.deepEqual(await c.cmd("a1 LOGIN alice secret"), [
    "a1 NO [PRIVACYREQUIRED] Encryption is required to log in",
  ]);
  assert.deepEqual(await c.cmd("a2 AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA=="), [
    "a2 NO [PRIVACYREQUIRED] Encryption is required to log in",
  ]);
  // Pipelined plaintext after STARTTLS must be discarded.
  assert.equal(
    await c.raw("a3 STARTTLS\r\na4 LOGIN alice secret\r\n"),
    "a3 OK Begin TLS negotiation now\r\n",
  );
  await Promise.resolve();
  assert.equal(c.startTlsCalls, 1);
  assert.equal(await c.raw("ignored NOOP\r\n"), "");
  c.session.tlsStarted(null);
  const caps = await c.cmd("a5 CAPABILITY");
  assert.match(caps[0]!, /AUTH=PLAIN/);
  assert.doesNotMatch(caps[0]!, /STARTTLS|LOGINDISABLED/);
  assert.match(
    (await c.cmd("a6 LOGIN alice secret")).at(-1)!,
    /^a6 OK \[CAPABILITY .*\] Logged in$/,
  );
  assert.deepEqual(await c.cmd("a7 STARTTLS"), ["a7 BAD STARTTLS is not allowed in this state"]);
});

Deno.test("ImapSession refuses STARTTLS where it is not offered", async () => {
  const store = await newStore();
  const c = new TestClient(store, { tls: false, starttlsAvailable: false });
  c.take();
  assert.deepEqual(await c.cmd("a1 STARTTLS"), ["a1 BAD STARTTLS is not available"]);
  const t = new TestClient(store);
  t.take();
  assert.deepEqual(await t.cmd("a1 STARTTLS"), ["a1 BAD TLS is already active"]);
});

Deno.test("ImapSession authenticates PLAIN with SASL-IR and with a continuation", async () => {
  const store = await newStore();
  const c = new TestClient(store);
  c.take();
  const ir = btoa("\0alice\0secret");
  assert.match((await c.cmd(`a1 AUTHENTICATE PLAIN ${ir}`)).at(-1)!, /^a1 OK \[CAPABILITY/);
  const d = new TestClient(store);
  d.take();
  assert.deepEqual(await d.cmd("a1 AUTHENTICATE PLAIN"), ["+ "]);
  assert.match((await d.cmd(btoa("alice\0alice\0secret"))).at(-1)!, /^a1 OK/);
  const e = new TestClient(store);
  e.take();
  assert.deepEqual(await e.cmd("a1 AUTHENTICATE PLAIN"), ["+ "]);
  assert.deepEqual(await e.cmd("*"), ["a1 BAD Authentication cancelled"]);
  assert.deepEqual(await e.cmd(`a2 AUTHENTICATE PLAIN ${btoa("\0alice\0wrong")}`), [
    "a2 NO [AUTHENTICATIONFAILED] Authentication failed",
  ]);
  assert.deepEqual(await e.cmd(`a3 AUTHENTICATE PLAIN ${btoa("bob\0alice\0secret")}`), [
    "a3 NO [AUTHORIZATIONFAILED] Authorization identity not permitted",
  ]);
  assert.deepEqual(await e.cmd("a4 AUTHENTICATE PLAIN !!!!"), [
    "a4 BAD Invalid base64 in SASL response",
  ]);
  assert.deepEqual(await e.cmd("a5 AUTHENTICATE CRAM-MD5"), [
    "a5 NO [CANNOT] Unsupported authentication mechanism",
  ]);
});

Deno.test("ImapSession authenticates EXTERNAL only with a verified certificate", async () => {
  const store = await newStore();
  const none = new TestClient(store);
  assert.doesNotMatch(none.take(), /AUTH=EXTERNAL/);
  assert.deepEqual(await none.cmd("a1 AUTHENTICATE EXTERNAL ="), [
    "a1 NO [AUTHENTICATIONFAILED] No verified client certificate",
  ]);
  const peer = { address: "127.0.0.1:2", identity: fakeIdentity("alice@example.org") };
  const c = new TestClient(store, { peer });
  assert.match(c.take(), /AUTH=EXTERNAL/);
  assert.match((await c.cmd("a1 AUTHENTICATE EXTERNAL =")).at(-1)!, /^a1 OK/);
  const d = new TestClient(store, { peer });
  assert.match((await d.cmd(`a1 AUTHENTICATE EXTERNAL ${btoa("alice")}`)).at(-1)!, /^a1 OK/);
  const e = new TestClient(store, { peer });
  e.take();
  assert.deepEqual(await e.cmd(`a1 AUTHENTICATE EXTERNAL ${btoa("bob")}`), [
    "a1 NO [AUTHENTICATIONFAILED] Certificate is not valid for this account",
  ]);
  assert.deepEqual(await e.cmd("a2 AUTHENTICATE EXTERNAL"), ["+ "]);
  assert.match((await e.cmd("")).at(-1)!, /^a2 OK/);
  const f = new TestClient(store, { tls: false, starttlsAvailable: true });
  await f.raw("s STARTTLS\r\n");
  f.session.tlsStarted(fakeIdentity("bob@example.org"));
  assert.match((await f.cmd("a1 CAPABILITY"))[0]!, /AUTH=EXTERNAL/);
  assert.match((await f.cmd("a2 AUTHENTICATE EXTERNAL =")).at(-1)!, /^a2 OK/);
  assert.equal(f.session.stateKind, "authenticated");
});

Deno.test("ImapSession says BYE after too many unknown commands before login", async () => {
  const store = await newStore();
  const c = new TestClient(store, { limits: { maxUnknownBeforeLogin: 3 } });
  c.take();
  assert.deepEqual(await c.cmd("a1 FOO"), ["a1 BAD Unknown command"]);
  assert.deepEqual(await c.cmd("a2 SELECT INBOX"), ["a2 BAD SELECT is not allowed in this state"]);
  assert.equal(c.closed, false);
  assert.deepEqual(await c.cmd("a3 BAR"), [
    "a3 BAD Unknown command",
    "* BYE Too many invalid commands",
  ]);
  assert.equal(c.closed, true);
  assert.equal(await c.raw("a4 NOOP\r\n"), "");
});

Deno.test("ImapSession says BYE after too many commands of any kind before login", async () => {
  const store = await newStore();
  const c = new TestClient(store, { limits: { maxCommandsBeforeLogin: 3 } });
  c.take();
  const out = await c.raw("a1 NOOP\r\na2 CAPABILITY\r\na3 NOOP\r\na4 NOOP\r\na5 NOOP\r\n");
  assert.match(out, /a3 OK NOOP completed\r\n\* BYE Too many commands before login\r\n$/);
  assert.equal(c.closed, true);
  const after = new TestClient(store, { limits: { maxCommandsBeforeLogin: 3 } });
  await after.login();
  for (let i = 0; i < 5; i++) {
    assert.deepEqual(await after.cmd(`n${i} NOOP`), [`n${i} OK NOOP completed`]);
  }
});

Deno.test("ImapSession answers malformed commands with BAD and continues", async () => {
  const store = await newStore();
  const c = new TestClient(store);
  await c.login();
  const cases: [string, string][] = [
    ["b1 LOGIN", "b1 BAD LOGIN is not allowed in this state"],
    ["b2 SELECT", "b2 BAD Expected space"],
    ['b3 SELECT "INBOX', "b3 BAD Unterminated quoted string"],
    ["b4 FETCH 1 FLAGS", "b4 BAD FETCH is not allowed in this state"],
    ["b5 CAPABILITY extra", "b5 BAD Unexpected extra arguments"],
    ["+bad NOOP", "* BAD Missing or invalid tag"],
    ["b6", "b6 BAD Expected space"],
  ];
  for (const [line, want] of cases) assert.deepEqual(await c.cmd(line), [want], line);
  assert.deepEqual(await c.cmd("b7 NOOP"), ["b7 OK NOOP completed"]);
  assert.equal(c.closed, false);
});

Deno.test("ImapSession answers a handler exception with NO [SERVERBUG] and logs it", async () => {
  const store = await newStore();
  const broken = wrapStore(store, {
    listMailboxes: () => Promise.reject(new Error("disk on fire at /secret/path")),
  });
  const c = new TestClient(broken);
  await c.login();
  assert.deepEqual(await c.cmd('x LIST "" *'), ["x NO [SERVERBUG] Internal server error"]);
  assert.equal(c.errors.length, 1);
  assert.deepEqual(await c.cmd("y NOOP"), ["y OK NOOP completed"]);
});

Deno.test("ImapSession answers an oversized literal with NO [TOOBIG] before it is sent", async () => {
  const store = await newStore();
  const c = new TestClient(store, { limits: { maxLiteral: 100 } });
  await c.login();
  assert.deepEqual(await c.cmd("a1 APPEND INBOX {101}"), ["a1 NO [TOOBIG] Literal too large"]);
  assert.deepEqual(await c.cmd("a2 APPEND INBOX {5}"), ["+ Ready for literal data"]);
  assert.match((await c.cmd("hello")).at(-1)!, /^a2 OK \[APPENDUID \d+ 1\] APPEND completed$/);
  const pre = new TestClient(store);
  pre.take();
  assert.deepEqual(await pre.cmd("a1 LOGIN {100000}"), ["a1 NO [TOOBIG] Literal too large"]);
});

Deno.test("ImapSession caps a command's size and literals before login, and literals after", async () => {
  const store = await newStore();
  const pre = new TestClient(store);
  pre.take();
  // 999 small literals used to be accepted before login; now the fifth is refused.
  const many = "a1 LOGIN " + "{1+}\r\nx ".repeat(5) + "\r\n";
  assert.deepEqual(await pre.cmd(many), ["a1 BAD Too many literals"]);
  // Two literals of 7 KiB each pass the literal limit but not the 16 KiB command limit.
  const big = "y".repeat(7 * 1024);
  const out = await pre.cmd(`a2 LOGIN {7168+}\r\n${big} {7168+}\r\n${big} {7168+}\r\n${big}`);
  assert.deepEqual(out, ["a2 NO [TOOBIG] Command too large"]);
  assert.deepEqual(await pre.cmd(`a3 NOOP ${"z".repeat(17 * 1024)}`), [
    "a3 BAD Command line too long",
  ]);
  assert.match((await pre.cmd("a4 LOGIN {5+}\r\nalice {6+}\r\nsecret")).at(-1)!, /^a4 OK/);
  assert.match((await pre.cmd("a5 SELECT INBOX")).at(-1)!, /^a5 OK/);
  // After login the per-command cap is higher but still there.
  const search = "s1 SEARCH " + "TEXT {1+}\r\nx ".repeat(101) + "ALL";
  assert.deepEqual(await pre.cmd(search), ["s1 BAD Too many literals"]);
  const fine = "s2 SEARCH " + "TEXT {1+}\r\nx ".repeat(10) + "ALL";
  assert.match((await pre.cmd(fine)).at(-1)!, /^s2 OK/);
});

Deno.test("ImapSession answers LOGOUT with BYE and closes", async () => {
  const store = await newStore();
  const c = new TestClient(store);
  c.take();
  assert.deepEqual(await c.cmd("a LOGOUT"), ["* BYE Logging out", "a OK LOGOUT completed"]);
  assert.equal(c.closed, true);
});

Deno.test("ImapSession sends a PREAUTH greeting when configured", async () => {
  const store = await newStore();
  const c = new TestClient(store, { preauth: "alice" });
  assert.match(c.take(), /^\* PREAUTH \[CAPABILITY /);
  assert.match((await c.cmd("a SELECT INBOX")).at(-1)!, /^a OK \[READ-WRITE\]/);
});

Deno.test("ImapSession appends and fetches a message end to end", async () => {
  const store = await newStore();
  const c = new TestClient(store);
  await c.login();
  assert.match(await append(c, "INBOX", message("One"), "\\Flagged"), /^AP OK \[APPENDUID \d+ 1\]/);
  assert.deepEqual(await append(c, "Nope", message("x")), "AP NO [TRYCREATE] No such mailbox");
  const sel = await c.cmd("s SELECT INBOX");
  assert.ok(sel.includes("* 1 EXISTS"), sel.join("\n"));
  assert.ok(sel.includes("* OK [UIDNEXT 2] Predicted next UID"));
  assert.ok(sel.includes("* OK [UNSEEN 1] First unseen message"));
  assert.equal(sel.at(-1), "s OK [READ-WRITE] SELECT completed");
  const f = await c.raw("f FETCH 1 (UID FLAGS BODY.PEEK[HEADER.FIELDS (Subject)])\r\n");
  assert.equal(
    f,
    "* 1 FETCH (UID 1 FLAGS (\\Flagged \\Recent) BODY[HEADER.FIELDS (Subject)] {16}\r\nSubject: One\r\n\r\n)\r\n" +
      "f OK FETCH completed\r\n",
  );
});

Deno.test("ImapSession settles receive() of STARTTLS only after the driver's upgrade", async () => {
  const store = await newStore();
  const c = new TestClient(store, { tls: false, starttlsAvailable: true });
  c.take();
  const steps: string[] = [];
  c.session.onStartTls = async () => {
    steps.push("upgrade start");
    await new Promise((r) => setTimeout(r, 5));
    c.session.tlsStarted(null);
    steps.push("upgrade done");
  };
  await c.session.receive(new TextEncoder().encode("a STARTTLS\r\n"));
  steps.push("receive settled");
  assert.deepEqual(steps, ["upgrade start", "upgrade done", "receive settled"]);
  assert.match((await c.cmd("b LOGIN alice secret")).at(-1)!, /^b OK/);
});

Deno.test("ImapSession closes when the STARTTLS upgrade fails", async () => {
  const store = await newStore();
  const c = new TestClient(store, { tls: false, starttlsAvailable: true });
  c.take();
  c.session.onStartTls = () => Promise.reject(new Error("handshake failed"));
  await c.raw("a STARTTLS\r\n");
  assert.equal(c.closed, true);
});

Deno.test("ImapSession produces the same transcript wherever the input is split", async () => {
  const script = "a LOGIN alice secret\r\nb APPEND INBOX (\\Seen) {11}\r\nSubject: x\n\r\n" +
    "c SELECT INBOX\r\nd UID FETCH 1:* (FLAGS BODY.PEEK[HEADER])\r\ne LOGOUT\r\n";
  const transcript = async (chunks: string[]) => {
    const store = await newStore();
    const c = new TestClient(store);
    c.take();
    let out = "";
    for (const chunk of chunks) out += await c.raw(chunk);
    return out.replace(/UIDVALIDITY \d+|APPENDUID \d+|MAILBOXID \(\w+\)/g, "V");
  };
  const whole = await transcript([script]);
  assert.match(whole, /e OK LOGOUT completed\r\n$/);
  assert.match(whole, /\+ Ready for literal data\r\n/);
  for (let i = 1; i < script.length; i++) {
    assert.equal(await transcript([script.slice(0, i), script.slice(i)]), whole, `split at ${i}`);
  }
});

Deno.test("ImapSession creates the store account of a directory user on first login", async () => {
  const store = await newStore();
  const a = new TestClient(store);
  const b = new TestClient(store);
  a.take();
  b.take();
  const [ra, rb] = await Promise.all([
    a.cmd("x LOGIN carol secret"),
    b.cmd("y LOGIN carol secret"),
  ]);
  assert.match(ra.at(-1)!, /^x OK/);
  assert.match(rb.at(-1)!, /^y OK/);
  assert.notEqual(await store.getAccount("carol"), null);
});
