import assert from "node:assert/strict";
import {
  type Envelope,
  formatMailbox,
  type LmtpBackend,
  type LmtpLimits,
  type LmtpReply,
  LmtpSession,
  type Mailbox,
  reply,
} from "../../../protocol/lmtp/mod.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

interface Delivered {
  readonly sender: string;
  readonly recipients: readonly string[];
  readonly message: string;
  readonly envelope: Envelope;
}

/** A backend with fixed recipients: `known` accept, `down@…` fails temporarily. */
function backend(
  delivered: Delivered[],
  perRecipient: (address: string) => LmtpReply = () => reply(250, "2.0.0", "Delivered"),
): LmtpBackend<string> {
  return {
    recipient(to: Mailbox) {
      const address = formatMailbox(to);
      if (to.localPart.startsWith("down")) {
        return Promise.resolve({ accept: false, reply: reply(451, "4.4.3", "Directory down") });
      }
      if (to.localPart.startsWith("throw")) return Promise.reject(new Error("boom"));
      if (to.localPart.startsWith("nobody")) {
        return Promise.resolve({ accept: false, reply: reply(550, "5.1.1", "No such user") });
      }
      return Promise.resolve({ accept: true, recipient: address });
    },
    deliver(envelope, recipients, message) {
      delivered.push({
        sender: envelope.sender === null ? "" : formatMailbox(envelope.sender),
        recipients: [...recipients],
        message: dec.decode(message),
        envelope,
      });
      return Promise.resolve(recipients.map(perRecipient));
    },
  };
}

interface Run {
  readonly output: string;
  readonly delivered: Delivered[];
  readonly closed: boolean;
}

/** Runs a transcript fed in the given chunks; every chunk is awaited like the driver does. */
async function run(
  chunks: readonly (string | Uint8Array)[],
  limits: Partial<LmtpLimits> = {},
  perRecipient?: (address: string) => LmtpReply,
  now?: () => number,
): Promise<Run> {
  const delivered: Delivered[] = [];
  const session = new LmtpSession({
    backend: backend(delivered, perRecipient),
    hostname: "mx.test",
    limits,
    ...(now ? { now } : {}),
  });
  let output = "";
  let closed = false;
  session.onOutput = (data) => output += dec.decode(data);
  session.onClose = () => closed = true;
  output += dec.decode(session.greeting());
  for (const chunk of chunks) {
    await session.receive(typeof chunk === "string" ? enc.encode(chunk) : chunk);
  }
  return { output, delivered, closed };
}

/** Runs `script` whole, byte by byte, and split in two at every offset: all must agree. */
async function runEverySplit(
  script: string,
  limits: Partial<LmtpLimits> = {},
  perRecipient?: (address: string) => LmtpReply,
): Promise<Run> {
  const whole = await run([script], limits, perRecipient);
  const bytes = enc.encode(script);
  const single = await run([...bytes].map((b) => Uint8Array.of(b)), limits, perRecipient);
  assert.equal(single.output, whole.output, "byte by byte");
  assert.deepEqual(single.delivered, whole.delivered, "byte by byte");
  for (let i = 1; i < bytes.length; i++) {
    const split = await run([bytes.slice(0, i), bytes.slice(i)], limits, perRecipient);
    assert.equal(split.output, whole.output, `split at ${i}`);
    assert.deepEqual(split.delivered, whole.delivered, `split at ${i}`);
  }
  return whole;
}

function codes(output: string): string[] {
  return output.split("\r\n").filter((l) => l !== "").map((l) => l.slice(0, 4).trimEnd());
}

const GREETING = "220 mx.test LMTP Postern ready\r\n";
const LHLO_REPLY = "250-mx.test\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n" +
  "250-SIZE 52428800\r\n250-CHUNKING\r\n250 SMTPUTF8\r\n";

Deno.test("LmtpSession greets and answers LHLO with the extensions", async () => {
  const r = await run(["LHLO client.test\r\n"]);
  assert.equal(r.output, GREETING + LHLO_REPLY);
});

Deno.test("LmtpSession answers one reply per accepted recipient after DATA, at every split", async () => {
  const script = "LHLO client.test\r\n" +
    "MAIL FROM:<sender@example.org> SIZE=40 BODY=8BITMIME\r\n" +
    "RCPT TO:<alice@example.org>\r\n" +
    "RCPT TO:<nobody@example.org>\r\n" +
    "RCPT TO:<down@example.org>\r\n" +
    "RCPT TO:<bob@example.org>\r\n" +
    "DATA\r\n" +
    "Subject: hi\r\n\r\n..dot\r\n.\r\n" +
    "QUIT\r\n";
  const r = await runEverySplit(
    script,
    {},
    (a) =>
      a.startsWith("bob")
        ? reply(452, "4.2.2", "Mailbox full")
        : reply(250, "2.0.0", `Delivered to ${a}`),
  );
  assert.equal(
    r.output,
    GREETING + LHLO_REPLY +
      "250 2.1.0 Sender OK\r\n" +
      "250 2.1.5 Recipient OK\r\n" +
      "550 5.1.1 No such user\r\n" +
      "451 4.4.3 Directory down\r\n" +
      "250 2.1.5 Recipient OK\r\n" +
      "354 Start mail input; end with <CRLF>.<CRLF>\r\n" +
      "250 2.0.0 Delivered to alice@example.org\r\n" +
      "452 4.2.2 Mailbox full\r\n" +
      "221 2.0.0 mx.test closing connection\r\n",
  );
  assert.equal(r.closed, true);
  assert.equal(r.delivered.length, 1);
  assert.deepEqual(r.delivered[0]!.recipients, ["alice@example.org", "bob@example.org"]);
  assert.equal(r.delivered[0]!.message, "Subject: hi\r\n\r\n.dot\r\n");
  assert.equal(r.delivered[0]!.envelope.body, "8BITMIME");
  assert.equal(r.delivered[0]!.envelope.declaredSize, 40);
});

Deno.test("LmtpSession delivers BDAT chunks as one message, at every split", async () => {
  const script = "LHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<a@x.test>\r\nRCPT TO:<b@x.test>\r\n" +
    "BDAT 5\r\nA\r\n.\r" + "BDAT 0\r\n" + "BDAT 4 LAST\r\n\nB\r\n" + "NOOP\r\n";
  const r = await runEverySplit(script);
  assert.deepEqual(codes(r.output).slice(-8), [
    "250",
    "250",
    "250",
    "250",
    "250",
    "250",
    "250",
    "250",
  ]);
  assert.match(r.output, /250 2\.0\.0 5 octets received\r\n250 2\.0\.0 5 octets received\r\n/);
  assert.equal(r.delivered.length, 1);
  // BDAT data is not dot-stuffed: the lone dot line stays.
  assert.equal(r.delivered[0]!.message, "A\r\n.\r\nB\r\n");
  assert.equal(r.delivered[0]!.sender, "");
});

Deno.test("LmtpSession handles a pipelined batch of transactions in order", async () => {
  const tx = (n: number) =>
    `MAIL FROM:<s${n}@x.test>\r\nRCPT TO:<r${n}@x.test>\r\nDATA\r\nmessage ${n}\r\n.\r\n`;
  const r = await run(["LHLO c\r\n" + tx(1) + tx(2) + "RSET\r\n" + tx(3) + "QUIT\r\n"]);
  assert.deepEqual(r.delivered.map((d) => d.message), [
    "message 1\r\n",
    "message 2\r\n",
    "message 3\r\n",
  ]);
  assert.deepEqual(codes(r.output).slice(-6), ["250", "250", "250", "354", "250", "221"]);
});

Deno.test("LmtpSession undoes dot-stuffing and ends data only at CRLF.CRLF", async () => {
  const body = "a\r\n..\r\n...x\r\n.\nnot end\r\nLF\n.\r\nstill\r\n.\r\n";
  const r = await runEverySplit(
    `LHLO c\r\nMAIL FROM:<s@x.test>\r\nRCPT TO:<r@x.test>\r\nDATA\r\n${body}`,
  );
  assert.equal(r.delivered[0]!.message, "a\r\n.\r\n..x\r\n\nnot end\r\nLF\n.\r\nstill\r\n");
});

Deno.test("LmtpSession accepts an empty message", async () => {
  const r = await run(["LHLO c\r\nMAIL FROM:<s@x.test>\r\nRCPT TO:<r@x.test>\r\nDATA\r\n.\r\n"]);
  assert.equal(r.delivered[0]!.message, "");
});

Deno.test("LmtpSession refuses an oversized message per recipient and reads it to its end", async () => {
  const big = "x".repeat(100) + "\r\n";
  const script = "LHLO c\r\nMAIL FROM:<s@x.test>\r\nRCPT TO:<a@x.test>\r\nRCPT TO:<b@x.test>\r\n" +
    `DATA\r\n${big.repeat(20)}.\r\nNOOP\r\n`;
  const r = await run([script], { maxMessageSize: 1000 });
  assert.equal(r.delivered.length, 0);
  assert.deepEqual(codes(r.output).slice(-3), ["552", "552", "250"]);
  assert.match(r.output, /552 5\.3\.4 Message size exceeds fixed maximum/);
});

Deno.test("LmtpSession refuses an announced SIZE above the limit at MAIL", async () => {
  const r = await run(["LHLO c\r\nMAIL FROM:<s@x.test> SIZE=1001\r\n"], { maxMessageSize: 1000 });
  assert.match(r.output, /552 5\.3\.4 Message size exceeds fixed maximum\r\n$/);
});

Deno.test("LmtpSession refuses an oversized BDAT transaction and keeps the stream in step", async () => {
  const script = "LHLO c\r\nMAIL FROM:<s@x.test>\r\nRCPT TO:<a@x.test>\r\nRCPT TO:<b@x.test>\r\n" +
    `BDAT 600\r\n${"y".repeat(600)}BDAT 600 LAST\r\n${"z".repeat(600)}NOOP\r\n`;
  const r = await runEverySplit(script, { maxMessageSize: 1000 });
  assert.equal(r.delivered.length, 0);
  assert.deepEqual(codes(r.output).slice(-5), ["250", "250", "552", "552", "250"]);
});

Deno.test("LmtpSession refuses a message line over the limit", async () => {
  const long = "x".repeat(50);
  for (const data of [`DATA\r\n${long}\r\n.\r\n`, `BDAT 52 LAST\r\n${long}\r\n`]) {
    const r = await run(
      [`LHLO c\r\nMAIL FROM:<s@x.test>\r\nRCPT TO:<a@x.test>\r\n${data}NOOP\r\n`],
      { maxLineLength: 49 },
    );
    assert.equal(r.delivered.length, 0, data);
    assert.match(r.output, /554 5\.6\.0 Message has a line longer than 49 octets\r\n250 /);
  }
  const ok = await run(
    [`LHLO c\r\nMAIL FROM:<s@x.test>\r\nRCPT TO:<a@x.test>\r\nDATA\r\n${long}\r\n.\r\n`],
    { maxLineLength: 50 },
  );
  assert.equal(ok.delivered.length, 1);
});

Deno.test("LmtpSession caps the number of recipients with 452 4.5.3", async () => {
  const rcpts = Array.from({ length: 4 }, (_, i) => `RCPT TO:<u${i}@x.test>\r\n`).join("");
  const r = await run(
    [`LHLO c\r\nMAIL FROM:<s@x.test>\r\n${rcpts}DATA\r\nm\r\n.\r\n`],
    { maxRecipients: 3 },
  );
  assert.match(r.output, /452 4\.5\.3 Too many recipients/);
  assert.deepEqual(r.delivered[0]!.recipients, ["u0@x.test", "u1@x.test", "u2@x.test"]);
});

Deno.test("LmtpSession enforces command order", async () => {
  const table: [string, string][] = [
    ["MAIL FROM:<s@x.test>\r\n", "503 5.5.1 Send LHLO first"],
    ["LHLO c\r\nRCPT TO:<a@x.test>\r\n", "503 5.5.1 Send MAIL first"],
    ["LHLO c\r\nDATA\r\n", "503 5.5.1 Send MAIL first"],
    ["LHLO c\r\nMAIL FROM:<s@x.test>\r\nMAIL FROM:<s@x.test>\r\n", "503 5.5.1 Nested MAIL command"],
    ["LHLO c\r\nMAIL FROM:<s@x.test>\r\nDATA\r\n", "503 5.5.1 No valid recipients"],
    [
      "LHLO c\r\nMAIL FROM:<s@x.test>\r\nRCPT TO:<nobody@x.test>\r\nDATA\r\n",
      "503 5.5.1 No valid recipients",
    ],
    [
      "LHLO c\r\nMAIL FROM:<s@x.test>\r\nRCPT TO:<a@x.test>\r\nBDAT 1\r\nxDATA\r\n",
      "503 5.5.1 DATA cannot follow BDAT",
    ],
    [
      "LHLO c\r\nMAIL FROM:<s@x.test>\r\nRSET\r\nRCPT TO:<a@x.test>\r\n",
      "503 5.5.1 Send MAIL first",
    ],
    ["HELO c\r\n", "500 5.5.1 This is LMTP: say LHLO (RFC 2033)"],
    ["EHLO c\r\n", "500 5.5.1 This is LMTP: say LHLO (RFC 2033)"],
    ["LHLO\r\n", "501 5.5.4 LHLO needs a domain"],
    ["VRFY alice\r\n", "252 2.5.2 Cannot VRFY user, but will accept message for delivery"],
    ["EXPN list\r\n", "502 5.5.1 EXPN is not supported"],
    ["STARTTLS\r\n", "502 5.5.1 STARTTLS is not offered"],
    ["FOO bar\r\n", "500 5.5.2 Unrecognized command"],
    ["NOOP\r\n", "250 2.0.0 OK"],
    ["noop\n", "250 2.0.0 OK"],
    ["LHLO c\r\nBDAT 3\r\nabcNOOP\r\n", "503 5.5.1 Send MAIL first\r\n250 2.0.0 OK"],
    [
      "LHLO c\r\nMAIL FROM:<s@x.test>\r\nBDAT 2 LAST\r\nabRCPT TO:<a@x.test>\r\n",
      "503 5.5.1 Send MAIL first",
    ],
  ];
  for (const [input, expected] of table) {
    const r = await run([input]);
    assert.ok(r.output.endsWith(`${expected}\r\n`), `${JSON.stringify(input)} gave ${r.output}`);
  }
});

Deno.test("LmtpSession checks MAIL and RCPT syntax and parameters", async () => {
  const table: [string, string][] = [
    ["MAIL FROM:sender@x.test", "501 5.5.4 Address must be in angle brackets"],
    ["MAIL FROM:<sender@x.test", "501 5.5.4 Missing closing angle bracket"],
    ["MAIL TO:<s@x.test>", "501 5.5.4 Syntax: MAIL FROM:<address>"],
    ["MAIL FROM:<s@x.test> SIZE=abc", "501 5.5.4 Malformed SIZE parameter"],
    ["MAIL FROM:<s@x.test> BODY=BINARYMIME", "501 5.5.4 BODY must be 7BIT or 8BITMIME"],
    ["MAIL FROM:<s@x.test> RET=HDRS", "555 5.5.4 Unsupported parameter RET"],
    ["MAIL FROM:<s@x.test> SIZE=1 SIZE=2", "501 5.5.4 Malformed MAIL parameters"],
    ["MAIL FROM:<s@x.test> SMTPUTF8=yes", "501 5.5.4 SMTPUTF8 takes no value"],
    ["MAIL FROM:<bad@@x.test>", "501 5.1.3 Malformed address"],
    ["MAIL FROM:<a..b@x.test>", "501 5.1.3 Malformed address"],
    ["MAIL FROM:<a@-x.test>", "501 5.1.3 Malformed address"],
    ["MAIL FROM:<noat>", "501 5.1.3 Address needs a domain"],
    [`MAIL FROM:<${"a".repeat(65)}@x.test>`, "501 5.1.3 Malformed address"],
    [`MAIL FROM:<a@${"b".repeat(260)}.test>`, "501 5.1.3 Address too long"],
    ["MAIL FROM:<jörg@x.test>", "553 5.6.7 Non-ASCII sender needs SMTPUTF8"],
    ["MAIL FROM:<s@x.test>\r\nRCPT TO:<>", "501 5.1.3 The null path is not a recipient"],
    [
      "MAIL FROM:<s@x.test>\r\nRCPT TO:<a@x.test> NOTIFY=NEVER",
      "555 5.5.4 Unsupported parameter NOTIFY",
    ],
    [
      "MAIL FROM:<s@x.test>\r\nRCPT TO:<jörg@x.test>",
      "553 5.6.7 Non-ASCII recipient needs SMTPUTF8",
    ],
    [
      "MAIL FROM:<s@x.test>\r\nRCPT TO:<throw@x.test>",
      "451 4.3.0 Temporary failure, try again later",
    ],
    ["MAIL FROM:<s@x.test> SMTPUTF8\r\nRCPT TO:<jörg@bücher.test>", "250 2.1.5 Recipient OK"],
    ["MAIL FROM:<s@x.test>\r\nRCPT TO:<Postmaster>", "250 2.1.5 Recipient OK"],
    ["MAIL FROM:<s@x.test>\r\nRCPT TO:<@relay.test,@r2.test:a@x.test>", "250 2.1.5 Recipient OK"],
    ['MAIL FROM:<"a b"@x.test>', "250 2.1.0 Sender OK"],
    ["MAIL FROM: <s@x.test>", "250 2.1.0 Sender OK"],
    ["mail from:<s@[127.0.0.1]> body=7bit", "250 2.1.0 Sender OK"],
  ];
  for (const [input, expected] of table) {
    const r = await run([`LHLO c\r\n${input}\r\n`]);
    assert.ok(r.output.endsWith(`${expected}\r\n`), `${JSON.stringify(input)} gave ${r.output}`);
  }
});

Deno.test("LmtpSession refuses an over-long command line and resynchronises", async () => {
  const r = await runEverySplit(`LHLO c\r\nNOOP ${"x".repeat(200)}\r\nNOOP\r\n`, {
    maxCommandLength: 64,
  });
  assert.ok(r.output.endsWith("500 5.5.2 Line too long\r\n250 2.0.0 OK\r\n"), r.output);
});

Deno.test("LmtpSession refuses invalid UTF-8 in a command", async () => {
  const r = await run([Uint8Array.of(0x4e, 0x4f, 0xff, 0x0d, 0x0a)]);
  assert.ok(r.output.endsWith("500 5.5.2 Command is not valid UTF-8\r\n"));
});

Deno.test("LmtpSession closes after too many errors", async () => {
  const r = await run(["FOO\r\n".repeat(10) + "NOOP\r\n"], { maxErrors: 3 });
  assert.equal(r.closed, true);
  assert.ok(r.output.endsWith("421 4.7.0 mx.test Too many errors, closing\r\n"));
  assert.doesNotMatch(r.output, /250 2\.0\.0 OK/);
});

Deno.test("LmtpSession answers 451 4.3.0 to every recipient when delivery throws", async () => {
  const delivered: Delivered[] = [];
  const failing = backend(delivered);
  const session = new LmtpSession({
    backend: { ...failing, deliver: () => Promise.reject(new Error("disk full")) },
    hostname: "mx.test",
  });
  let output = "";
  session.onOutput = (d) => output += dec.decode(d);
  await session.receive(
    enc.encode(
      "LHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\nm\r\n.\r\n",
    ),
  );
  assert.ok(output.endsWith("451 4.3.0 Temporary failure, try again later\r\n".repeat(2)));
});

Deno.test("LmtpSession ends a transaction that runs past its time limit", async () => {
  let now = 0;
  const delivered: Delivered[] = [];
  const session = new LmtpSession({
    backend: backend(delivered),
    hostname: "mx.test",
    limits: { transactionTimeoutMs: 1000 },
    now: () => now,
  });
  let output = "";
  let closed = false;
  session.onOutput = (d) => output += dec.decode(d);
  session.onClose = () => closed = true;
  await session.receive(enc.encode("LHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<a@x.test>\r\nDATA\r\npart"));
  now = 1000;
  assert.equal(session.checkTimeout(), false);
  now = 1001;
  assert.equal(session.checkTimeout(), true);
  assert.equal(closed, true);
  assert.ok(output.endsWith("421 4.4.2 mx.test Transaction took too long, closing\r\n"));
  await session.receive(enc.encode("\r\n.\r\n"));
  assert.equal(delivered.length, 0);
});

Deno.test("LmtpSession shutdown waits for a delivery in progress", async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  const session = new LmtpSession<string>({
    backend: {
      recipient: (to) => Promise.resolve({ accept: true, recipient: formatMailbox(to) }),
      deliver: async (_e, recipients) => {
        await gate;
        return recipients.map(() => reply(250, "2.0.0", "Delivered"));
      },
    },
    hostname: "mx.test",
  });
  let output = "";
  session.onOutput = (d) => output += dec.decode(d);
  const receiving = session.receive(
    enc.encode("LHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<a@x.test>\r\nDATA\r\nm\r\n.\r\n"),
  );
  await new Promise((r) => setTimeout(r, 0));
  session.shutdown();
  assert.equal(session.closed, false);
  release();
  await receiving;
  assert.ok(output.endsWith("250 2.0.0 Delivered\r\n421 4.3.2 mx.test Service shutting down\r\n"));
  assert.equal(session.closed, true);
});

Deno.test("LmtpSession survives random input without throwing", async () => {
  let seed = 17;
  const random = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  const pieces = [
    "LHLO c\r\n",
    "MAIL FROM:<a@b.c>\r\n",
    "RCPT TO:<d@e.f>\r\n",
    "DATA\r\n",
    ".\r\n",
    "BDAT 3\r\n",
    "BDAT 2 LAST\r\n",
    "\r\n",
    "RSET\r\n",
    "x",
    "\n",
    ".",
    "\r",
    "\xff",
  ];
  for (let round = 0; round < 200; round++) {
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < 30; i++) {
      if (random() < 0.2) {
        chunks.push(Uint8Array.from({ length: 8 }, () => Math.floor(random() * 256)));
      } else {
        chunks.push(enc.encode(pieces[Math.floor(random() * pieces.length)]!));
      }
    }
    await run(chunks, { maxCommandLength: 64, maxMessageSize: 100 });
  }
});
