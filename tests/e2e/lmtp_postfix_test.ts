/**
 * Postfix delivers into Postern over LMTP, the way deployments set it up:
 * `virtual_transport = lmtp:unix:…`. The test runs a private Postfix instance from a
 * temporary directory (its own main.cf, master.cf, queue and data directories; no network
 * listener), submits mail with Postfix's `sendmail -C DIR`, and reads it back over IMAP.
 * Postfix's master must start as root, so the test is skipped otherwise.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { startPostern } from "../_support/postern.ts";
import { describeRun, RawImap, run } from "../_support/imap_clients.ts";

const PASSWORD = "correct horse";
const POSTFIX = "/usr/sbin/postfix";
const SENDMAIL = "/usr/sbin/sendmail";

function postfixSkipReason(): string | null {
  if (Deno.uid() !== 0) return "the Postfix test needs root (postfix start runs master as root)";
  try {
    Deno.statSync(POSTFIX);
    Deno.statSync("/usr/lib/postfix/sbin/lmtp");
  } catch {
    return "Postfix is not installed (Debian package postfix)";
  }
  const passwd = Deno.readTextFileSync("/etc/passwd");
  if (!/^postfix:/m.test(passwd)) return "the postfix user does not exist";
  return null;
}

const skip = postfixSkipReason();
if (skip !== null) console.log(`Skipping the Postfix LMTP test: ${skip}`);

/** A master.cf with only what local submission and LMTP delivery need; nothing chrooted. */
const MASTER_CF = [
  "pickup    unix  n       -       n       60      1       pickup",
  "cleanup   unix  n       -       n       -       0       cleanup",
  "qmgr      unix  n       -       n       300     1       qmgr",
  "rewrite   unix  -       -       n       -       -       trivial-rewrite",
  "bounce    unix  -       -       n       -       0       bounce",
  "defer     unix  -       -       n       -       0       bounce",
  "trace     unix  -       -       n       -       0       bounce",
  "verify    unix  -       -       n       -       1       verify",
  "flush     unix  n       -       n       1000?   0       flush",
  "proxymap  unix  -       -       n       -       -       proxymap",
  "showq     unix  n       -       n       -       -       showq",
  "error     unix  -       -       n       -       -       error",
  "retry     unix  -       -       n       -       -       error",
  "discard   unix  -       -       n       -       -       discard",
  "lmtp      unix  -       -       n       -       -       lmtp",
  "anvil     unix  -       -       n       -       1       anvil",
  "scache    unix  -       -       n       -       1       scache",
  "postlog   unix-dgram n  -       n       -       1       postlogd",
  "",
].join("\n");

Deno.test({
  name: "Postfix delivers through virtual_transport = lmtp:unix: into the IMAP INBOX",
  ignore: skip !== null,
  async fn() {
    const postern = await startPostern({
      users: [
        { name: "alice", password: PASSWORD, addresses: ["alice@example.org"] },
        { name: "bob", password: PASSWORD, addresses: ["bob@example.org"] },
      ],
      extraYaml: "lmtp:\n  listen: [unix:lmtp/lmtp.sock]\n  socket_owner: postfix",
    });
    const dir = await Deno.makeTempDir({ prefix: "postern-postfix-" });
    let started = false;
    try {
      const socket = postern.handle.lmtpAddresses[0];
      assert.ok(socket?.transport === "unix");
      // The lmtp client runs as the postfix user: it must reach the socket.
      await Deno.chmod(postern.dir, 0o755);
      const info = await Deno.stat(socket.path);
      assert.equal(
        info.uid,
        Number(
          /^postfix:[^:]*:(\d+):/m.exec(
            await Deno.readTextFile("/etc/passwd"),
          )?.[1],
        ),
      );
      assert.equal(info.mode! & 0o777, 0o660);
      const mainCf = [
        "compatibility_level = 3.6",
        `queue_directory = ${join(dir, "queue")}`,
        `data_directory = ${join(dir, "data")}`,
        "mail_owner = postfix",
        "setgid_group = postdrop",
        "myhostname = mx.postern.test",
        "mydomain = postern.test",
        "mydestination =",
        "inet_interfaces = loopback-only",
        "inet_protocols = ipv4",
        "virtual_mailbox_domains = example.org",
        `virtual_transport = lmtp:unix:${socket.path}`,
        "lmtp_destination_recipient_limit = 10",
        `maillog_file = ${join(dir, "maillog")}`,
        `maillog_file_prefixes = ${dir}`,
        "alias_maps =",
        "alias_database =",
        "smtputf8_enable = no",
        "",
      ].join("\n");
      await Deno.writeTextFile(join(dir, "main.cf"), mainCf);
      await Deno.writeTextFile(join(dir, "master.cf"), MASTER_CF);
      await Deno.chmod(dir, 0o755);
      // postfix start creates the queue's subdirectories, but not the directories themselves.
      await Deno.mkdir(join(dir, "queue"), { mode: 0o755 });
      await Deno.mkdir(join(dir, "data"), { mode: 0o700 });
      const postfixUid = Number(
        /^postfix:[^:]*:(\d+):/m.exec(
          await Deno.readTextFile("/etc/passwd"),
        )?.[1],
      );
      await Deno.chown(join(dir, "data"), postfixUid, null);
      const start = await run(POSTFIX, ["-c", dir, "start"], { timeoutMs: 60_000 });
      assert.equal(start.code, 0, describeRun(start));
      started = true;

      const message = (subject: string) =>
        `From: sender@example.org\nTo: alice@example.org, bob@example.org\nSubject: ${subject}\n` +
        `Message-ID: <${subject.replaceAll(" ", "-")}@postern.test>\n\nDelivered by Postfix.\n` +
        ".a line with a dot\n";
      const sent = await run(
        SENDMAIL,
        ["-C", dir, "-f", "sender@example.org", "alice@example.org", "bob@example.org"],
        { stdin: message("via postfix"), timeoutMs: 30_000 },
      );
      assert.equal(sent.code, 0, describeRun(sent));
      const unknown = await run(
        SENDMAIL,
        ["-C", dir, "-f", "", "alice@example.org", "nobody@example.org"],
        { stdin: message("mixed recipients"), timeoutMs: 30_000 },
      );
      assert.equal(unknown.code, 0, describeRun(unknown));

      for (const user of ["alice", "bob"]) {
        const expected = user === "alice" ? 2 : 1;
        const texts = await waitForMessages(postern.implicitPort, postern.caPem, user, expected);
        const postfixed = texts.find((t) => t.includes("Subject: via postfix"));
        assert.ok(postfixed, texts.join("\n----\n"));
        assert.match(postfixed, /^Return-Path: <sender@example\.org>\r\n/);
        assert.match(postfixed, new RegExp(`Delivered-To: ${user}@example\\.org\\r\\n`));
        assert.match(postfixed, /Received: from mx\.postern\.test \(local\)/);
        // Postfix's own Received line comes after ours.
        assert.match(postfixed, /by mx\.postern\.test \(Postfix, from userid 0\)/);
        assert.match(postfixed, /\r\n\r\nDelivered by Postfix\.\r\n\.a line with a dot\r\n$/);
      }
      // Postfix read one reply per recipient: sent for alice, bounced for nobody.
      const log = await waitForLog(
        join(dir, "maillog"),
        /to=<nobody@example\.org>.*status=bounced/,
      );
      assert.match(log, /to=<nobody@example\.org>.*relay=.*lmtp.*550 5\.1\.1 No such user here/);
      assert.match(
        log,
        /to=<alice@example\.org>.*status=sent \(250 2\.0\.0 <alice@example\.org> Saved\)/,
      );
      assert.match(log, /to=<bob@example\.org>.*status=sent/);
    } finally {
      if (started) {
        const stop = await run(POSTFIX, ["-c", dir, "stop"], { timeoutMs: 60_000 });
        if (stop.code !== 0) await run(POSTFIX, ["-c", dir, "abort"], { timeoutMs: 30_000 });
      }
      await postern.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

/** Polls the user's INBOX over IMAP until it holds `count` messages (30 s deadline). */
async function waitForMessages(
  port: number,
  caPem: string,
  user: string,
  count: number,
): Promise<string[]> {
  const deadline = Date.now() + 30_000;
  let texts: string[] = [];
  while (Date.now() < deadline) {
    const imap = await RawImap.tls(port, caPem);
    try {
      await imap.greeting();
      assert.equal((await imap.command(`LOGIN ${user} "${PASSWORD}"`)).status, "OK");
      assert.equal((await imap.command("SELECT INBOX")).status, "OK");
      const fetched = await imap.command("UID FETCH 1:* (BODY.PEEK[])");
      texts = fetched.untagged.filter((r) => r.literals.length === 1).map((r) =>
        new TextDecoder().decode(r.literals[0]!)
      );
    } finally {
      await imap.close();
    }
    if (texts.length >= count) return texts;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${user} has ${texts.length} of ${count} messages:\n${texts.join("\n----\n")}`);
}

/** Polls Postfix's log file until it matches `pattern` (30 s deadline). */
async function waitForLog(path: string, pattern: RegExp): Promise<string> {
  const deadline = Date.now() + 30_000;
  let text = "";
  while (Date.now() < deadline) {
    text = await Deno.readTextFile(path).catch(() => "");
    if (pattern.test(text)) return text;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`Postfix log does not match ${pattern}:\n${text}`);
}
