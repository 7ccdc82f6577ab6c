/**
 * The newcomer's path: `serve` on an empty folder makes the data folder, a development CA, a
 * server certificate and a demo account with a client certificate, prints how to connect, and a
 * second start reuses all of it. The PKCS#12 file opens with the printed password in OpenSSL and
 * in NSS (Thunderbird's and Firefox's library), and NSS's tstclnt logs in with it.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { run } from "../_support/command.ts";

const repo = new URL("../..", import.meta.url).pathname;
const decoder = new TextDecoder();

interface Started {
  readonly child: Deno.ChildProcess;
  readonly output: string;
}

/**
 * The permission flags of the `start` task in deno.json, which runs the launcher: it may read
 * and start Deno, nothing more, and gives the server only what the configuration names.
 */
function startTaskFlags(): string[] {
  const tasks = (JSON.parse(Deno.readTextFileSync(join(repo, "deno.json"))) as {
    tasks: Record<string, string>;
  }).tasks;
  const words = tasks.start!.split(/\s+/);
  assert.deepEqual(words.slice(0, 2), ["deno", "run"]);
  assert.deepEqual(words.slice(-1), ["server/launch.ts"]);
  const flags = words.slice(2, -1);
  assert.deepEqual(
    flags,
    ["--allow-read", "--allow-run=deno", "--allow-env=LOG_TOKENS,LOG_STREAM"],
    tasks.start,
  );
  return flags;
}

/** The flags the launcher gives `serve` for a first run in `cwd` (`postern permissions`). */
async function serveFlags(cwd: string): Promise<string[]> {
  const result = await run(Deno.execPath(), [
    "run",
    "-A",
    "--config",
    join(repo, "deno.json"),
    join(repo, "server/main.ts"),
    "permissions",
  ], { cwd });
  assert.equal(result.code, 0, result.stderr);
  return result.stdout.trim().split("\n");
}

/**
 * Starts the server as `deno task start` does, without a config file in `cwd`, and waits for
 * its instructions.
 */
async function startServe(cwd: string): Promise<Started> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...startTaskFlags(),
      "--config",
      join(repo, "deno.json"),
      join(repo, "server/launch.ts"),
    ],
    cwd,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const decoded = child.stderr.pipeThrough(new TextDecoderStream());
  const reader = decoded.getReader();
  let output = "";
  const deadline = Date.now() + 30_000;
  while (!/authentication "Normal password"/.test(output) && Date.now() < deadline) {
    const { value, done } = await reader.read();
    if (done) break;
    output += value;
  }
  reader.releaseLock();
  // Keep draining so the server never blocks on a full pipe.
  decoded.pipeTo(new WritableStream()).catch(() => {});
  assert.match(output, /Postern is running/, output);
  return { child, output };
}

async function stop(started: Started): Promise<void> {
  started.child.kill("SIGTERM");
  const status = await started.child.status;
  assert.equal(status.code, 0);
}

Deno.test("the first run on an empty folder sets everything up and a second start reuses it", async () => {
  const cwd = await Deno.makeTempDir({ prefix: "postern-first-" });
  try {
    const first = await startServe(cwd);
    let password: string, p12Password: string;
    try {
      assert.match(first.output, /postern: serving built-in defaults \(first run\) with/);
      assert.match(
        first.output,
        /--allow-net=127\.0\.0\.1:9993,127\.0\.0\.1:9143,unix:\S+\/data\/admin\.sock(,unix:\S+\/data\/wakeup-\d+\.sock)+\n/,
      );
      assert.match(first.output, /created a development CA/);
      password = /Demo account: demo \/ (\S+)/.exec(first.output)![1]!;
      p12Password = /demo\.p12 \(password: (\S+)\)/.exec(first.output)![1]!;
      for (
        const f of [
          "certs/ca.pem",
          "certs/server.pem",
          "certs/demo.pem",
          "certs/demo.p12",
          "data/postern.db",
        ]
      ) {
        await Deno.stat(join(cwd, f));
      }
      // The printed curl command reads the welcome message.
      const curl = await run("curl", [
        "-s",
        "--cacert",
        join(cwd, "certs/ca.pem"),
        "-u",
        `demo:${password}`,
        "imaps://127.0.0.1:9993/INBOX;UID=1",
      ]);
      assert.equal(curl.code, 0, curl.stderr);
      assert.match(curl.stdout, /Subject: Welcome to Postern/);
    } finally {
      await stop(first);
    }

    // The data folder and database are for the server's user only.
    assert.equal((Deno.statSync(join(cwd, "data")).mode ?? 0) & 0o777, 0o700);
    assert.equal((Deno.statSync(join(cwd, "data/postern.db")).mode ?? 0) & 0o777, 0o600);
    // The serving process may not read the CA key (it signed everything it needed at once).
    const probe = join(cwd, "probe.ts");
    await Deno.writeTextFile(
      probe,
      `for (const f of ["certs/ca.key", "certs/ca.pem", "certs/server.key"]) {
        try { Deno.readTextFileSync(f); console.log(f, "readable"); }
        catch (e) { console.log(f, e instanceof Deno.errors.NotCapable ? "denied" : String(e)); }
      }`,
    );
    const flags = await serveFlags(cwd);
    assert.ok(
      flags.every((f) => f.startsWith("--allow-") || f.startsWith("--deny-")),
      flags.join(" "),
    );
    assert.ok(
      flags.includes(`--allow-write=${join(cwd, "certs")},${join(cwd, "data")}`),
      flags.join(" "),
    );
    const probed = await run(Deno.execPath(), ["run", ...flags, probe], {
      cwd,
    });
    assert.equal(
      probed.stdout.trim(),
      "certs/ca.key denied\ncerts/ca.pem readable\ncerts/server.key readable",
      probed.stderr,
    );

    const second = await startServe(cwd);
    try {
      assert.doesNotMatch(second.output, /created a/);
      assert.match(second.output, new RegExp(`Demo account: demo / ${password}`));
      assert.match(second.output, new RegExp(`password: ${p12Password}`));
    } finally {
      await stop(second);
    }

    // The PKCS#12 file opens with the printed password in OpenSSL and in NSS.
    const p12 = join(cwd, "certs/demo.p12");
    const info = await run("openssl", [
      "pkcs12",
      "-info",
      "-nodes",
      "-in",
      p12,
      "-passin",
      `pass:${p12Password}`,
    ]);
    assert.equal(info.code, 0, info.stderr);
    assert.match(info.stdout, /BEGIN PRIVATE KEY/);
    const db = join(cwd, "nssdb");
    await Deno.mkdir(db);
    assert.equal((await run("certutil", ["-N", "-d", `sql:${db}`, "--empty-password"])).code, 0);
    const imported = await run("pk12util", ["-i", p12, "-d", `sql:${db}`, "-W", p12Password]);
    assert.equal(imported.code, 0, imported.stderr + imported.stdout);
    const wrong = await run("pk12util", ["-i", p12, "-d", `sql:${db}`, "-W", "not-the-password"]);
    assert.notEqual(wrong.code, 0);
    const ca = await run("certutil", [
      "-A",
      "-n",
      "postern-ca",
      "-t",
      "CT,,",
      "-i",
      join(cwd, "certs/ca.pem"),
      "-d",
      `sql:${db}`,
    ]);
    assert.equal(ca.code, 0, ca.stderr);

    // NSS's tstclnt completes a handshake with that certificate and logs in with it.
    const third = await startServe(cwd);
    try {
      const child = new Deno.Command("tstclnt", {
        args: [
          "-h",
          "127.0.0.1",
          "-p",
          "9993",
          "-a",
          "localhost",
          "-d",
          `sql:${db}`,
          "-n",
          "demo",
          "-V",
          "tls1.3:tls1.3",
        ],
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const w = child.stdin.getWriter();
      await w.write(new TextEncoder().encode("a1 AUTHENTICATE EXTERNAL =\r\n"));
      await new Promise((r) => setTimeout(r, 1500));
      await w.write(new TextEncoder().encode("a2 LOGOUT\r\n"));
      await new Promise((r) => setTimeout(r, 500));
      await w.close();
      const killer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      const out = await child.output();
      clearTimeout(killer);
      const text = decoder.decode(out.stdout);
      assert.match(text, /^a1 OK .*Logged in/m, text + decoder.decode(out.stderr));
      assert.match(text, /^a2 OK/m);
    } finally {
      await stop(third);
    }
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
});
