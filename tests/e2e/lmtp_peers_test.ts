/**
 * LMTP delivery against real clients: Python's smtplib.LMTP (mixed recipient results, per
 * recipient replies after DATA, an oversized message), raw pipelining and BDAT, swaks over a
 * Unix socket and TCP, and IMAP reading what was delivered, including an IDLE session that
 * sees a delivery as it happens. One Postern serves the whole file.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { parseConfig } from "../../server/config/mod.ts";
import { type RunningPostern, startPostern } from "../_support/postern.ts";
import { describeRun, RawImap, run, runPython } from "../_support/imap_clients.ts";
import { LmtpClient, lmtpMessage, type LmtpTarget } from "../_support/lmtp.ts";

const PASSWORD = "correct horse";
const MAX_SIZE = 64 * 1024;

async function login(postern: RunningPostern, user: string): Promise<RawImap> {
  const imap = await RawImap.tls(postern.implicitPort, postern.caPem);
  await imap.greeting();
  const r = await imap.command(`LOGIN ${user} "${PASSWORD}"`, undefined, 15_000);
  assert.equal(r.status, "OK", r.tagged);
  return imap;
}

/** Every message of a mailbox, as text. */
async function messages(postern: RunningPostern, user: string, mailbox: string) {
  const imap = await login(postern, user);
  try {
    const sel = await imap.command(`SELECT "${mailbox}"`);
    assert.equal(sel.status, "OK", sel.tagged);
    const fetched = await imap.command("UID FETCH 1:* (BODY.PEEK[])");
    assert.equal(fetched.status, "OK", fetched.tagged);
    return fetched.untagged.filter((r) => r.literals.length === 1).map((r) =>
      new TextDecoder().decode(r.literals[0]!)
    );
  } finally {
    await imap.close();
  }
}

const SMTPLIB = `
import smtplib, sys, json
target, port = sys.argv[1], int(sys.argv[2])
s = smtplib.LMTP(target, port) if port else smtplib.LMTP(target)
out = {}
code, text = s.ehlo()  # LMTP says LHLO here
out["lhlo"] = [code, sorted(s.esmtp_features.keys())]
msg = (b"From: sender@example.org\\r\\nTo: alice@example.org\\r\\nSubject: smtplib mixed\\r\\n"
       b"Message-ID: <smtplib-1@postern.test>\\r\\n\\r\\nHello from smtplib.\\r\\n.starts with a dot\\r\\n")
s.mail("sender@example.org")
rcpts = ["alice@example.org", "nobody@example.org", "alice+work@example.org", "bob@example.org",
         "alice+nofolder@example.org"]
out["rcpt"] = [s.rcpt(r)[0] for r in rcpts]
accepted = sum(1 for c in out["rcpt"] if c == 250)
# smtplib reads one reply after DATA; LMTP sends one per accepted recipient (RFC 2033, 4.2).
first = s.data(msg)
out["data"] = [first[0]] + [s.getreply()[0] for _ in range(accepted - 1)]
# An oversized message: smtplib announces SIZE=, which is refused at MAIL.
try:
    s.sendmail("sender@example.org", ["alice@example.org"], b"Subject: big\\r\\n\\r\\n" + b"x" * 70 + b"\\r\\n" * 0 + (b"y" * 78 + b"\\r\\n") * ${
  Math.ceil(MAX_SIZE / 80) + 10
})
    out["big"] = "accepted"
except smtplib.SMTPSenderRefused as e:
    out["big"] = [e.smtp_code, e.smtp_error.decode()]
s.rset()
out["noop"] = s.noop()[0]
out["vrfy"] = s.verify("alice@example.org")[0]
s.quit()
# Python's smtplib neither pipelines nor speaks BDAT: a raw socket sends one pipelined batch.
import socket
raw = socket.socket(socket.AF_UNIX) if not port else socket.create_connection((target, port))
if not port:
    raw.connect(target)
part1 = b"Subject: python bdat\\r\\n\\r\\nfirst chunk\\r\\n"
part2 = b"second chunk\\r\\n"
raw.sendall(b"LHLO py.test\\r\\nMAIL FROM:<py@example.org>\\r\\nRCPT TO:<alice@example.org>\\r\\n"
            b"RCPT TO:<nobody@example.org>\\r\\nRCPT TO:<bob@example.org>\\r\\n"
            + b"BDAT %d\\r\\n" % len(part1) + part1 + b"BDAT %d LAST\\r\\n" % len(part2) + part2
            + b"QUIT\\r\\n")
data = b""
while True:
    chunk = raw.recv(65536)
    if not chunk:
        break
    data += chunk
raw.close()
out["raw"] = [int(l[:3]) for l in data.decode().split("\\r\\n") if l[3:4] == " "]
print(json.dumps(out))
`;

Deno.test("LMTP delivery with Python smtplib, raw pipelining and BDAT, swaks and IMAP", async (t) => {
  const postern = await startPostern({
    users: [
      { name: "alice", password: PASSWORD, addresses: ["alice@example.org"] },
      { name: "bob", password: PASSWORD, addresses: ["bob@example.org", "robert@example.org"] },
    ],
    extraYaml: [
      "lmtp:",
      "  listen: [unix:lmtp/lmtp.sock, 127.0.0.1:0]",
      "  socket_mode: 0666",
      "  hostname: mx.postern.test",
      `  max_message_size: ${MAX_SIZE}`,
      "  max_recipients: 10",
      "metrics: { listen: 127.0.0.1:0 }",
    ].join("\n"),
  });
  try {
    const [unix, tcp] = postern.handle.lmtpAddresses;
    assert.ok(unix?.transport === "unix" && tcp?.transport === "tcp");
    const socket: LmtpTarget = { path: unix.path };
    const loopback: LmtpTarget = { hostname: tcp.hostname, port: tcp.port };
    assert.equal((await Deno.stat(unix.path)).mode! & 0o777, 0o666);
    {
      const imap = await login(postern, "alice");
      assert.equal((await imap.command('CREATE "work"')).status, "OK");
      await imap.close();
    }

    await t.step("smtplib.LMTP gets one reply per recipient with mixed results", async () => {
      for (const [target, port] of [[unix.path, "0"], [tcp.hostname, String(tcp.port)]]) {
        const result = await runPython(SMTPLIB, [target!, port!]);
        assert.equal(result.code, 0, describeRun(result));
        const out = JSON.parse(result.stdout);
        assert.equal(out.lhlo[0], 250);
        for (const ext of ["pipelining", "enhancedstatuscodes", "8bitmime", "size", "chunking"]) {
          assert.ok(out.lhlo[1].includes(ext), `${ext} in ${out.lhlo[1]}`);
        }
        assert.deepEqual(out.rcpt, [250, 550, 250, 250, 250]);
        assert.deepEqual(out.data, [250, 250, 250, 250]);
        assert.equal(out.big[0], 552);
        assert.match(out.big[1], /^5\.3\.4 /);
        assert.equal(out.noop, 250);
        assert.equal(out.vrfy, 252);
        // Greeting, LHLO, MAIL, three RCPT, two BDAT chunks (the last answered per recipient), QUIT.
        assert.deepEqual(out.raw, [220, 250, 250, 250, 550, 250, 250, 250, 250, 221]);
      }
      // The second run was the same message: the dedup record kept it from being stored twice.
      const inbox = await messages(postern, "alice", "INBOX");
      const mixed = inbox.filter((m) => m.includes("Subject: smtplib mixed"));
      // alice@ and alice+nofolder@ both land in INBOX: two distinct recipients, two copies.
      assert.equal(mixed.length, 2, inbox.join("\n----\n"));
      const first = mixed.find((m) => m.includes("Delivered-To: alice@example.org\r\n"))!;
      assert.match(
        first,
        /^Return-Path: <sender@example\.org>\r\nDelivered-To: alice@example\.org\r\n/,
      );
      assert.match(
        first,
        /Received: from \S+ \(local\)\r\n\tby mx\.postern\.test \(Postern\) with LMTP id /,
      );
      assert.match(first, /\r\n\r\nHello from smtplib\.\r\n\.starts with a dot\r\n$/);
      const work = await messages(postern, "alice", "work");
      assert.equal(work.length, 1);
      assert.match(work[0]!, /Delivered-To: alice\+work@example\.org/);
      const bob = await messages(postern, "bob", "INBOX");
      assert.equal(bob.length, 2);
      assert.ok(bob.some((m) => m.endsWith("\r\n\r\nfirst chunk\r\nsecond chunk\r\n")));
    });

    await t.step("a pipelined batch of transactions gets every reply in order", async () => {
      const client = await LmtpClient.connect(loopback);
      try {
        await client.reply();
        const tx = (n: number) =>
          `MAIL FROM:<p${n}@example.org>\r\nRCPT TO:<robert@example.org>\r\n` +
          `RCPT TO:<nobody@example.org>\r\nDATA\r\nSubject: pipelined ${n}\r\n\r\nbody ${n}\r\n.\r\n`;
        await client.write(`LHLO pipeline.test\r\n${tx(1)}${tx(2)}${tx(3)}QUIT\r\n`);
        const replies = await client.replies(1 + 3 * 5 + 1);
        assert.deepEqual(
          replies.map((r) => r.code),
          [250, ...[250, 250, 550, 354, 250], ...[250, 250, 550, 354, 250], ...[
            250,
            250,
            550,
            354,
            250,
          ], 221],
        );
      } finally {
        await client.close();
      }
      const bob = await messages(postern, "bob", "INBOX");
      assert.equal(bob.filter((m) => m.includes("Subject: pipelined")).length, 3);
      assert.match(
        bob.at(-1)!,
        /Delivered-To: robert@example\.org\r\nReceived: from pipeline\.test \(\[127\.0\.0\.1\]\)/,
      );
    });

    await t.step("BDAT chunks over a raw socket, and an oversized BDAT refused", async () => {
      const client = await LmtpClient.open(socket);
      try {
        const part1 = "Subject: chunked\r\n\r\n.line starting with a dot\r\n";
        const part2 = "second chunk\r\n";
        await client.write(
          "MAIL FROM:<c@example.org> BODY=8BITMIME\r\nRCPT TO:<alice@example.org>\r\n" +
            `RCPT TO:<bob@example.org>\r\nBDAT ${part1.length}\r\n${part1}` +
            `BDAT ${part2.length} LAST\r\n${part2}`,
        );
        const r = await client.replies(6);
        assert.deepEqual(r.map((x) => x.code), [250, 250, 250, 250, 250, 250]);
        const big = "z".repeat(MAX_SIZE + 1);
        await client.write(
          `MAIL FROM:<c@example.org>\r\nRCPT TO:<alice@example.org>\r\nBDAT ${big.length} LAST\r\n${big}NOOP\r\n`,
        );
        const refused = await client.replies(4);
        assert.deepEqual(refused.map((x) => x.code), [250, 250, 552, 250]);
        assert.match(refused[2]!.lines[0]!, /^5\.3\.4 /);
      } finally {
        await client.close();
      }
      const inbox = await messages(postern, "alice", "INBOX");
      const chunked = inbox.find((m) => m.includes("Subject: chunked"));
      assert.ok(chunked?.endsWith("\r\n\r\n.line starting with a dot\r\nsecond chunk\r\n"));
    });

    await t.step("an IDLE session sees a delivery at once", async () => {
      const imap = await login(postern, "alice");
      try {
        const sel = await imap.command("SELECT INBOX");
        const exists = Number(
          /^\* (\d+) EXISTS$/m.exec(sel.untagged.map((r) => r.text).join("\n"))?.[1],
        );
        await imap.write("i1 IDLE\r\n");
        assert.match((await imap.readResponse())?.text ?? "", /^\+ /);
        const client = await LmtpClient.open(loopback);
        const sent = await client.send(
          "s@example.org",
          ["alice@example.org"],
          lmtpMessage("idle1"),
        );
        assert.deepEqual(sent.data.map((r) => r.code), [250]);
        await client.close();
        const seen = await imap.readResponse(10_000);
        assert.equal(seen?.text, `* ${exists + 1} EXISTS`);
        await imap.write("DONE\r\n");
      } finally {
        await imap.close();
      }
    });

    await t.step("swaks --protocol LMTP delivers over the Unix socket and TCP", async () => {
      if (!(await hasCommand("swaks"))) {
        console.log("swaks is not installed (Debian package swaks): skipping this step");
        return;
      }
      const common = ["--protocol", "LMTP", "--from", "swaks@example.org", "--helo", "swaks.test"];
      const viaSocket = await run("swaks", [
        ...common,
        "--socket",
        unix.path,
        "--to",
        "alice@example.org,bob@example.org,nobody@example.org",
        "--header",
        "Subject: swaks socket",
      ], { timeoutMs: 30_000 });
      // swaks exits non-zero when a recipient is refused; the accepted ones were delivered.
      assert.match(
        viaSocket.stdout,
        /<\*\*\s+550 5\.1\.1 No such user here/,
        describeRun(viaSocket),
      );
      const viaTcp = await run("swaks", [
        ...common,
        "--server",
        tcp.hostname,
        "--port",
        String(tcp.port),
        "--pipeline",
        "--to",
        "robert@example.org",
        "--header",
        "Subject: swaks tcp",
      ], { timeoutMs: 30_000 });
      assert.equal(viaTcp.code, 0, describeRun(viaTcp));
      assert.match(viaTcp.stdout, /250 2\.0\.0 <robert@example\.org> Saved/);
      const alice = await messages(postern, "alice", "INBOX");
      assert.equal(alice.filter((m) => m.includes("Subject: swaks socket")).length, 1);
      const bob = await messages(postern, "bob", "INBOX");
      assert.equal(bob.filter((m) => m.includes("Subject: swaks socket")).length, 1);
      assert.equal(bob.filter((m) => m.includes("Subject: swaks tcp")).length, 1);
    });

    await t.step("hostile clients stall nobody and get precise refusals", async () => {
      // A silent client, a megabyte without a line end, a BDAT that promises more than the
      // limit, and a flood of bad commands, all while a normal client delivers.
      const silent = await LmtpClient.connect(loopback);
      const longLine = await LmtpClient.connect(loopback);
      const promiser = await LmtpClient.open(socket);
      const flood = await LmtpClient.connect(socket);
      try {
        await longLine.reply();
        await longLine.write("NOOP " + "x".repeat(1024 * 1024));
        await longLine.write("\r\nNOOP\r\n");
        assert.deepEqual((await longLine.replies(2)).map((r) => r.code), [500, 250]);
        await promiser.write(
          "MAIL FROM:<h@example.org>\r\nRCPT TO:<alice@example.org>\r\nBDAT 1000000000 LAST\r\n",
        );
        await promiser.write("y".repeat(100_000));
        await flood.reply();
        await flood.write("BOGUS\r\n".repeat(50));
        const refusals = await flood.replies(21);
        assert.equal(refusals.at(-1)!.code, 421);
        const normal = await LmtpClient.open(loopback);
        const sent = await normal.send("n@example.org", ["bob@example.org"], lmtpMessage("calm"));
        assert.deepEqual(sent.data.map((r) => r.code), [250]);
        await normal.close();
        assert.deepEqual((await promiser.replies(2)).map((r) => r.code), [250, 250]);
      } finally {
        await Promise.all([silent, longLine, promiser, flood].map((c) => c.close()));
      }
    });

    await t.step("twenty concurrent clients each deliver to both users", async () => {
      const before = (await messages(postern, "bob", "INBOX")).length;
      await Promise.all(Array.from({ length: 20 }, async (_, c) => {
        const client = await LmtpClient.open(c % 2 === 0 ? socket : loopback);
        try {
          for (let n = 0; n < 5; n++) {
            const sent = await client.send(
              "load@example.org",
              ["alice@example.org", "bob@example.org"],
              lmtpMessage(`load-${c}-${n}`, 2048),
            );
            assert.deepEqual(sent.data.map((r) => r.code), [250, 250]);
          }
        } finally {
          await client.close();
        }
      }));
      assert.equal((await messages(postern, "bob", "INBOX")).length, before + 100);
    });

    await t.step("a reload changes the limits of new connections and the quota", async () => {
      const path = join(postern.dir, "config.yaml");
      const text =
        (await Deno.readTextFile(path)).replace("  max_recipients: 10", "  max_recipients: 1") +
        "\nquota:\n  default: { messages: 1 }\n";
      await postern.handle.reload(parseConfig(text, path));
      const client = await LmtpClient.open(loopback);
      try {
        const sent = await client.send(
          "r@example.org",
          ["alice@example.org", "bob@example.org"],
          lmtpMessage("reloaded"),
        );
        assert.deepEqual(sent.rcpt.map((r) => r.code), [250, 452]);
        assert.deepEqual(sent.data.map((r) => [r.code, r.lines[0]]), [
          [552, "5.2.2 <alice@example.org> Mailbox is over quota"],
        ]);
      } finally {
        await client.close();
      }
    });

    await t.step("Prometheus counts each recipient's answer by reply class", async () => {
      const port = postern.handle.metricsAddress!.port;
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      const count = (result: string) =>
        Number(
          new RegExp(`^postern_lmtp_deliveries_total\\{result="${result}"\\} (\\d+)$`, "m")
            .exec(text)?.[1] ?? 0,
        );
      assert.ok(count("ok") >= 40, text);
      // The over-quota answer of the reload step, at least.
      assert.ok(count("permanent") >= 1, text);
    });
  } finally {
    await postern.stop();
  }
});

async function hasCommand(name: string): Promise<boolean> {
  const r = await run("sh", ["-c", `command -v ${name}`]).catch(() => null);
  return r !== null && r.code === 0;
}
