/**
 * The `postern` command line. Most cases call `main()` in-process with captured streams; a few
 * run `server/main.ts` as a subprocess, the way `deno task postern …` does, to check exit codes
 * and real stdin/stderr.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { verifyPassword } from "../../../mailstore/password.ts";
import { openDataStore } from "../../../server/serve/data_dir.ts";
import { main } from "../../../server/main.ts";

const ROOT = new URL("../../../", import.meta.url).pathname;
const MAIN = join(ROOT, "server/main.ts");
const dec = new TextDecoder();

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the CLI in-process with captured output. */
async function postern(cwd: string, args: string[], stdin = ""): Promise<Run> {
  let stdout = "";
  let stderr = "";
  const code = await main(args, {
    cwd,
    out: (text) => stdout += text,
    err: (text) => stderr += text,
    stdin: new Blob([stdin]).stream(),
  });
  return { code, stdout, stderr };
}

/** Runs the CLI as a subprocess. */
async function posternProcess(cwd: string, args: string[], stdin = ""): Promise<Run> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", "--config", join(ROOT, "deno.json"), MAIN, ...args],
    cwd,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(stdin));
  await writer.close();
  const out = await child.output();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

function tempDir(): string {
  return Deno.makeTempDirSync({ prefix: "postern-cli-" });
}

/** A mistake is one line on stderr with no stack trace. */
function assertOneLine(run: Run, code: number, pattern: RegExp): void {
  assert.equal(run.code, code, run.stderr);
  assert.equal(run.stdout, "");
  const lines = run.stderr.split("\n").filter((l) => l !== "");
  assert.equal(lines.length, 1, run.stderr);
  assert.match(lines[0]!, pattern);
  assert.doesNotMatch(run.stderr, /\n\s+at |Stack backtrace|\.ts:\d+:\d+\)/);
}

Deno.test("postern prints help for the program, a group and a command", async () => {
  const dir = tempDir();
  try {
    const [top, group, command] = await Promise.all([
      postern(dir, ["--help"]),
      postern(dir, ["certs", "--help"]),
      postern(dir, ["user", "add", "--help"]),
    ]);
    assert.equal(top.code, 0);
    assert.match(top.stdout, /^Usage: postern COMMAND \[options\]/);
    for (const name of ["serve", "check-config", "certs", "user", "import"]) {
      assert.match(top.stdout, new RegExp(`\\n  ${name} `));
    }
    assert.equal(group.code, 0);
    assert.match(group.stdout, /certs issue-client NAME/);
    assert.equal(command.code, 0);
    assert.match(command.stdout, /^Usage: postern user add NAME \[options\]/);
    assert.match(command.stdout, /-c, --config FILE/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("postern answers command-line mistakes with one line and exit code 2", async () => {
  const dir = tempDir();
  try {
    const [none, unknown, option, missing] = await Promise.all([
      postern(dir, []),
      postern(dir, ["serv"]),
      postern(dir, ["check-config", "--confg", "x.yaml"]),
      postern(dir, ["certs", "issue-client"]),
    ]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /^Usage: postern/);
    assertOneLine(
      unknown,
      2,
      /^postern: unknown command "serv" \(did you mean "serve"\?\) \(see "postern --help"\)$/,
    );
    assertOneLine(option, 2, /^postern: unknown option "--confg" for check-config/);
    assertOneLine(missing, 2, /^postern: certs issue-client needs NAME/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("postern certs writes a CA, a server chain and a client certificate", async () => {
  const dir = tempDir();
  try {
    const certs = join(dir, "pki");
    assert.equal((await postern(dir, ["certs", "init-ca", "--dir", certs])).code, 0);
    const [server, client] = await Promise.all([
      postern(dir, ["certs", "issue-server", "--dir", certs]),
      postern(dir, ["certs", "issue-client", "alice", "--dir", certs, "--p12"], "p12 pw\n"),
    ]);
    assert.equal(server.code, 0, server.stderr);
    assert.equal(client.code, 0, client.stderr);
    assert.equal(
      client.stdout,
      `wrote ${certs}/alice.pem, ${certs}/alice.key and ${certs}/alice.p12\n`,
    );
    const p12 = new Deno.Command("openssl", {
      args: ["pkcs12", "-in", join(certs, "alice.p12"), "-passin", "pass:p12 pw", "-nodes"],
      stdout: "piped",
      stderr: "piped",
    }).outputSync();
    assert.ok(p12.success, dec.decode(p12.stderr));
    assert.match(dec.decode(p12.stdout), /subject=CN\s?=\s?alice[\s\S]*PRIVATE KEY/);
    for (const key of ["ca.key", "server.key", "alice.key", "alice.p12"]) {
      assert.equal(Deno.statSync(join(certs, key)).mode! & 0o777, 0o600, key);
    }
    const chain = Deno.readTextFileSync(join(certs, "server.pem"));
    assert.equal(chain.match(/BEGIN CERTIFICATE/g)?.length, 2);
    const verify = new Deno.Command("openssl", {
      args: [
        "verify",
        "-CAfile",
        join(certs, "ca.pem"),
        "-purpose",
        "sslclient",
        join(certs, "alice.pem"),
      ],
      stdout: "piped",
      stderr: "piped",
    }).outputSync();
    assert.ok(verify.success, dec.decode(verify.stderr));
    const show = await postern(dir, ["certs", "show", join(certs, "alice.pem")]);
    assert.equal(show.code, 0);
    assert.match(show.stdout, /Subject: +CN=alice\n/);
    assert.match(show.stdout, /Alt names: +email:alice@localhost\n/);
    assert.match(show.stdout, /Ext\. key usage: +clientAuth\n/);
    const again = await postern(dir, ["certs", "init-ca", "--dir", certs]);
    assertOneLine(again, 1, /already exists \(use --force to replace it\)$/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

const TLS13_SUITES =
  "TLS 1.3 suites: TLS_CHACHA20_POLY1305_SHA256, TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384\n";
const TLS12_ECDSA = "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, " +
  "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384";
const TLS12_RSA = "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, " +
  "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384";

Deno.test("postern check-config prints config OK and the suites, or the positioned errors", async () => {
  const dir = tempDir();
  try {
    const defaults = await postern(dir, ["check-config"]);
    assert.equal(
      defaults.stdout,
      "config OK (no config.yaml: built-in defaults; serve creates the development certificates)\n" +
        TLS13_SUITES + `TLS 1.2 suites: ${TLS12_ECDSA}, ${TLS12_RSA}\n`,
    );
    assert.equal((await postern(dir, ["certs", "init-ca"])).code, 0);
    assert.equal((await postern(dir, ["certs", "issue-server"])).code, 0);
    const ready = await postern(dir, ["check-config"]);
    assert.equal(
      ready.stdout,
      `config OK (no config.yaml: built-in defaults)\n${TLS13_SUITES}TLS 1.2 suites: ${TLS12_ECDSA}\n`,
    );
    Deno.writeTextFileSync(join(dir, "config.yaml"), "log:\n  level: debug\n");
    Deno.writeTextFileSync(join(dir, "bad.yaml"), "lissten: []\nlog:\n  level: loud\n");
    const [ok, bad] = await Promise.all([
      postern(dir, ["check-config"]),
      postern(dir, ["check-config", "--config", "bad.yaml"]),
    ]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, `config OK\n${TLS13_SUITES}TLS 1.2 suites: ${TLS12_ECDSA}\n`);
    Deno.writeTextFileSync(join(dir, "strict.yaml"), 'tls:\n  min_version: "1.3"\n');
    const strict = await postern(dir, ["check-config", "--config", "strict.yaml"]);
    assert.equal(
      strict.stdout,
      `config OK\n${TLS13_SUITES}TLS 1.2: off (tls.min_version is 1.3)\n`,
    );
    assert.equal(bad.code, 1);
    assert.equal(bad.stdout, "");
    assert.equal(
      bad.stderr,
      'bad.yaml:1:1: unknown key "lissten" (did you mean "listen"?)\n' +
        'bad.yaml:3:10: log.level: invalid value "loud" (expected debug, info, warning or ' +
        "error)\n",
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("postern user add reads the password from stdin and stores a hash", async () => {
  const dir = tempDir();
  try {
    const added = await postern(dir, ["user", "add", "alice"], "correct horse\n");
    assert.equal(added.code, 0, added.stderr);
    assert.equal(added.stdout, 'user "alice" added\n');
    const [again, empty, listed] = await Promise.all([
      postern(dir, ["user", "add", "alice"], "x\n"),
      postern(dir, ["user", "add", "bob"], "\n"),
      postern(dir, ["user", "list"]),
    ]);
    assertOneLine(again, 1, /^postern: user "alice" already exists$/);
    assertOneLine(empty, 1, /^postern: the password is empty$/);
    assert.equal(listed.stdout, "alice\tpassword\n");
    const store = await openDataStore(join(dir, "data"));
    try {
      const account = await store.getAccount("alice");
      assert.ok(account?.passwordHash);
      assert.ok(verifyPassword("correct horse", account.passwordHash));
      assert.ok(!verifyPassword("correct horse\n", account.passwordHash));
    } finally {
      await store.close();
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("postern user add --address records delivery addresses, repeatable", async () => {
  const dir = tempDir();
  try {
    const added = await postern(dir, [
      "user",
      "add",
      "alice",
      "--no-password",
      "--address",
      "alice@example.org",
      "--address=Alice.Smith@Example.org",
    ]);
    assert.equal(added.code, 0, added.stderr);
    const [taken, invalid] = [
      await postern(dir, ["user", "add", "bob", "--no-password", "--address", "ALICE@example.org"]),
      await postern(dir, ["user", "add", "carol", "--no-password", "--address", "carol"]),
    ];
    assertOneLine(
      taken,
      1,
      /^postern: address "ALICE@example.org" already belongs to user "alice"$/,
    );
    assertOneLine(invalid, 1, /^postern: "carol" is not a mail address \(local@domain\)$/);
    const listed = await postern(dir, ["user", "list"]);
    assert.equal(
      listed.stdout,
      "alice\tcertificate only\talice.smith@example.org,alice@example.org\n",
    );
    const changed = await postern(dir, [
      "user",
      "address",
      "alice",
      "--add",
      "a@example.net",
      "--remove",
      "Alice.Smith@example.org",
    ]);
    assert.equal(changed.code, 0, changed.stderr);
    assert.equal(changed.stdout, "a@example.net\nalice@example.org\n");
    assertOneLine(
      await postern(dir, ["user", "address", "alice", "--remove", "zz@example.org"]),
      1,
      /^postern: user "alice" has no address "zz@example.org"$/,
    );
    assertOneLine(
      await postern(dir, ["user", "address", "nobody", "--add", "x@example.org"]),
      1,
      /^postern: no user "nobody"$/,
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("postern import appends an mbox and a Maildir with flags", async () => {
  const dir = tempDir();
  try {
    assert.equal((await postern(dir, ["user", "add", "carol", "--no-password"])).code, 0);
    Deno.writeTextFileSync(
      join(dir, "mail.mbox"),
      "From a@example.org Fri Jul  8 12:08:34 2011\nStatus: RO\nSubject: one\n\n>From here\n\n" +
        "From b@example.org Sat Jul  9 10:00:00 2011\nSubject: two\n\nsecond\n",
    );
    for (const sub of ["cur", "new", "tmp"]) {
      Deno.mkdirSync(join(dir, "md", sub), { recursive: true });
    }
    Deno.writeTextFileSync(join(dir, "md/cur/1600000000.1.host:2,FS"), "Subject: three\n\n3\n");
    const mbox = await postern(dir, ["import", "carol", "mail.mbox"]);
    assert.equal(mbox.code, 0, mbox.stderr);
    assert.equal(mbox.stdout, "imported 2 messages into carol/INBOX\n");
    const maildir = await postern(dir, ["import", "carol", "md", "--mailbox", "Archive"]);
    assert.equal(maildir.stdout, "imported 1 messages into carol/Archive\n");
    const notMail = await postern(dir, ["import", "carol", "md/cur/1600000000.1.host:2,FS"]);
    assertOneLine(notMail, 1, /^postern: not an mbox file/);

    const store = await openDataStore(join(dir, "data"));
    try {
      const account = (await store.getAccount("carol"))!;
      const inbox = (await store.getMailbox(account.id, "INBOX"))!;
      const messages = await store.listMessages(inbox.id);
      assert.deepEqual(messages.map((m) => m.flags), [["\\Seen"], []]);
      assert.equal(messages[0]!.internalDate, Date.UTC(2011, 6, 8, 12, 8, 34));
      const raw = await store.getRaw(inbox.id, messages[0]!.uid);
      assert.equal(dec.decode(raw!), "Status: RO\r\nSubject: one\r\n\r\nFrom here\r\n");
      assert.ok(await store.getSummary(inbox.id, messages[0]!.uid));
      const archive = (await store.getMailbox(account.id, "Archive"))!;
      const archived = await store.listMessages(archive.id);
      assert.deepEqual(archived.map((m) => [...m.flags].sort()), [["\\Flagged", "\\Seen"]]);
    } finally {
      await store.close();
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("postern runs as a process: exit codes, real stdin, errors without stack traces", async () => {
  const dir = tempDir();
  try {
    Deno.writeTextFileSync(join(dir, "bad.yaml"), "log: [\n");
    const [help, unknown, bad, ok, added] = await Promise.all([
      posternProcess(dir, ["--help"]),
      posternProcess(dir, ["frobnicate", "--now"]),
      posternProcess(dir, ["check-config", "--config", "bad.yaml"]),
      posternProcess(dir, ["check-config"]),
      posternProcess(dir, ["user", "add", "dave"], "pw from a pipe\n"),
    ]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /^config OK \(no config\.yaml: built-in defaults/);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^Usage: postern COMMAND/);
    assertOneLine(unknown, 2, /^postern: unknown command "frobnicate" \(see "postern --help"\)$/);
    assertOneLine(
      bad,
      1,
      /^bad\.yaml:2:1: YAML syntax error: Flow sequence in block collection/,
    );
    assert.equal(added.code, 0, added.stderr);
    const store = await openDataStore(join(dir, "data"));
    try {
      const account = await store.getAccount("dave");
      assert.ok(verifyPassword("pw from a pipe", account!.passwordHash!));
    } finally {
      await store.close();
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("each subcommand keeps only the network and write access it uses", async () => {
  const tasks = (JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json"))) as {
    tasks: Record<string, string>;
  }).tasks;
  const words = tasks.postern!.split(/\s+/);
  assert.deepEqual(words.slice(-1), ["server/main.ts"]);
  const flags = words.slice(2, -1);
  assert.ok(!flags.includes("--allow-run") && !flags.includes("--allow-env"), tasks.postern);
  const dir = await Deno.makeTempDir({ prefix: "postern-perms-" });
  try {
    const probe = join(dir, "probe.ts");
    await Deno.writeTextFile(
      probe,
      `import { narrowPermissions } from ${JSON.stringify(`file://${MAIN}`)};
      await narrowPermissions(Deno.args);
      const net = (await Deno.permissions.query({ name: "net" })).state;
      const write = (await Deno.permissions.query({ name: "write" })).state;
      console.log(net === "granted" ? "net" : "-", write === "granted" ? "write" : "-");`,
    );
    const cases: [string[], string][] = [
      [["serve"], "net write"],
      [["check-config"], "- -"],
      [["certs", "issue-client", "bob"], "- write"],
      [["certs", "list"], "- -"],
      // Commands that open the mail store keep the network: it may be a PostgreSQL server.
      [["user", "add", "bob"], "net write"],
      [["user", "list"], "net write"],
      [["import", "bob", "mbox"], "net write"],
      [["--help"], "- -"],
    ];
    for (const [args, expected] of cases) {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", ...flags, "--quiet", "--config", join(ROOT, "deno.json"), probe, ...args],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(
        dec.decode(out.stdout).trim(),
        expected,
        `${args.join(" ")}: ${dec.decode(out.stderr)}`,
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
