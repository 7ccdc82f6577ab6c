/**
 * `deno task start` with a configuration whose files all live outside the checkout: the
 * launcher derives the server's permissions from it (the config file, the certificates, the
 * data folder, the listeners; never the CA key), prints them, serves an IMAP login, and stops
 * on SIGTERM with the server's exit code. `postern permissions` prints the same flags.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { createCa, issueServerCertificate } from "../../server/cli/dev_pki.ts";
import { freePort, RawImap, run } from "../_support/imap_clients.ts";
import { openssl } from "../_support/openssl_pki.ts";
import { posternCommand } from "../_support/server_process.ts";

const repo = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");

/** Everything a process writes to `stream`, and a way to wait (at most 30 s) for a pattern. */
function watch(stream: ReadableStream<Uint8Array>) {
  let text = "";
  const done = (async () => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) text += chunk;
  })();
  return {
    get text(): string {
      return text;
    },
    async waitFor(pattern: RegExp): Promise<string> {
      const deadline = Date.now() + 30_000;
      while (!pattern.test(text) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
      }
      return text;
    },
    done,
  };
}

Deno.test("deno task start serves a configuration whose files live outside the checkout", async () => {
  const root = await Deno.makeTempDir({ prefix: "postern-start-" });
  try {
    const certs = join(root, "etc/certs");
    const data = join(root, "var/lib/postern");
    const config = join(root, "etc/config.yaml");
    await Deno.mkdir(certs, { recursive: true });
    await createCa(certs);
    await issueServerCertificate(certs);
    const [implicit, starttls] = [freePort(), freePort()];
    await Deno.writeTextFile(
      config,
      [
        `data_dir: ${data}`,
        "listen:",
        `  - { address: 127.0.0.1:${implicit}, tls: implicit }`,
        `  - { address: 127.0.0.1:${starttls}, tls: starttls }`,
        "tls:",
        "  certificate: certs/server.pem",
        "  private_key: certs/server.key",
        "  client_auth: optional",
        "  client_ca: [certs/ca.pem]",
        "",
      ].join("\n"),
    );
    await posternCommand(["user", "add", "alice", "--config", config], "secret\n");
    // An imported SHA512-CRYPT hash is checked on a Worker, which loads its modules from the
    // checkout: the derived permissions must let it.
    const users = join(root, "users.txt");
    await Deno.writeTextFile(
      users,
      `carol:{SHA512-CRYPT}${(await openssl(["passwd", "-6", "pw"])).trim()}\n`,
    );
    await posternCommand(["user", "import", users, "--config", config]);

    const expected = [
      `--allow-read=${
        [
          config,
          join(certs, "ca.pem"),
          join(certs, "server.key"),
          join(certs, "server.pem"),
          join(repo, "mailstore"),
          join(repo, "protocol"),
          join(repo, "server"),
          data,
        ].sort().join(",")
      }`,
      `--allow-write=${data}`,
      `--allow-net=127.0.0.1:${implicit},127.0.0.1:${starttls},unix:${join(data, "admin.sock")}`,
      "--allow-env=LOG_TOKENS,LOG_STREAM,NO_COLOR,TERM",
      "--allow-sys=uid,setPriority",
    ];
    // Each server thread's wakeup socket (server/connection/wakeup.ts): one per Worker and one
    // for the main thread, so their number follows the machine's cores under `workers: auto`.
    const wakeups = new RegExp(`,unix:${join(data, "wakeup-")}\\d+\\.sock`, "g");
    const printed = await run(Deno.execPath(), [
      "task",
      "--quiet",
      "--config",
      join(repo, "deno.json"),
      "postern",
      "permissions",
      "--config",
      config,
    ]);
    assert.equal(printed.code, 0, printed.stderr);
    assert.match(printed.stdout, new RegExp(`unix:${join(data, "wakeup-0.sock")}`));
    const lines = printed.stdout.trim().replace(wakeups, "").split("\n");
    assert.deepEqual(lines.sort(), [...expected].sort());
    assert.doesNotMatch(printed.stdout, /ca\.key/);

    const child = new Deno.Command(Deno.execPath(), {
      args: ["task", "--quiet", "--config", join(repo, "deno.json"), "start", "--config", config],
      cwd: root,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const output = watch(child.stderr);
    try {
      await output.waitFor(/Listening on "127\.0\.0\.1:\d+" \("starttls"\)/);
      assert.match(output.text, new RegExp(`postern: serving ${config} with\n`));
      const shown = output.text.replace(wakeups, "");
      for (const flag of expected) assert.ok(shown.includes(`  ${flag}\n`), output.text);
      const ca = await Deno.readTextFile(join(certs, "ca.pem"));
      const imap = await RawImap.tls(implicit, ca);
      try {
        assert.match(await imap.greeting(), /^\* OK/);
        const login = await imap.command("LOGIN alice secret");
        assert.equal(login.status, "OK", login.tagged);
        assert.equal((await imap.command("SELECT INBOX")).status, "OK");
        await imap.command("LOGOUT");
      } finally {
        await imap.close();
      }
      const legacy = await RawImap.tls(implicit, ca);
      try {
        await legacy.greeting();
        const login = await legacy.command("LOGIN carol pw");
        assert.equal(login.status, "OK", `${login.tagged}\n${output.text}`);
      } finally {
        await legacy.close();
      }
      // SIGHUP passes through the launcher: the server reloads its configuration.
      child.kill("SIGHUP");
      assert.match(await output.waitFor(/Configuration reloaded/), /Configuration reloaded/);
    } finally {
      child.kill("SIGTERM");
    }
    const status = await child.status;
    await output.done;
    assert.equal(status.code, 0, output.text);

    // A configuration naming a file that is not there stops the server with exit code 1.
    await Deno.writeTextFile(config, `data_dir: ${data}\ntls: { certificate: /nonexistent.pem }\n`);
    const failed = await run(Deno.execPath(), [
      "task",
      "--quiet",
      "--config",
      join(repo, "deno.json"),
      "start",
      "--config",
      config,
    ]);
    assert.equal(failed.code, 1, failed.stderr);
    assert.match(failed.stderr, /config\.yaml:2:\d+: .*cannot read "\/nonexistent\.pem"/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
