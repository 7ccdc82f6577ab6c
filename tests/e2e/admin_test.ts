/**
 * The admin socket against a running server: `postern who`, `stats`, `reload` and `kick` run
 * through the real command line while Python's imaplib holds sessions open; a kicked session
 * gets BYE and the others go on.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { main } from "../../server/main.ts";
import { startPostern } from "../_support/postern.ts";
import { parseConfig } from "../../server/config/mod.ts";
import { adminSocketWanted } from "../../server/serve/mod.ts";

/** Opens alice, alice and bob, SELECTs INBOX in the first; NOOPs each after a stdin line. */
const HOLD_SESSIONS = `
import imaplib, json, ssl, sys
port, ca = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=ca)
sessions = []
for user in ("alice", "alice", "bob"):
    m = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=ctx, timeout=10)
    m.login(user, "pw-" + user)
    sessions.append(m)
sessions[0].select("INBOX")
print(json.dumps([m.sock.getsockname()[1] for m in sessions]), flush=True)
sys.stdin.readline()
out = []
for m in sessions:
    try:
        out.append(m.noop()[0])
    except imaplib.IMAP4.abort as e:
        out.append("abort: " + str(e))
print(json.dumps(out), flush=True)
for m in sessions:
    try:
        m.logout()
    except Exception:
        pass
`;

/** Runs `postern ARGS` in-process and returns its exit code and output. */
async function postern(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(args, {
    cwd: Deno.cwd(),
    out: (t) => out += t,
    err: (t) => err += t,
  });
  return { code, out, err };
}

/** Reads stdout of a child line by line. */
function lines(stream: ReadableStream<Uint8Array>): () => Promise<string> {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  return async () => {
    while (!buffer.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`stream ended: ${buffer}`);
      buffer += value;
    }
    const at = buffer.indexOf("\n");
    const line = buffer.slice(0, at);
    buffer = buffer.slice(at + 1);
    return line;
  };
}

Deno.test("who, stats, reload and kick work on a running server; kicked sessions get BYE", async () => {
  const socketDir = await Deno.makeTempDir({ prefix: "postern-admin-" });
  const socket = join(socketDir, "admin.sock");
  const p = await startPostern({
    users: [{ name: "alice", password: "pw-alice" }, { name: "bob", password: "pw-bob" }],
    extraYaml: `admin: { enabled: true, socket: ${socket} }\n`,
  });
  const configFile = join(p.dir, "config.yaml");
  const child = new Deno.Command("python3", {
    args: ["-c", HOLD_SESSIONS, String(p.implicitPort), p.caPath],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(60_000),
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const stdin = child.stdin.getWriter();
  try {
    assert.equal(p.handle.adminSocket, socket);
    assert.equal((await Deno.stat(socket)).mode! & 0o777, 0o600);
    const next = lines(child.stdout);
    const ports = JSON.parse(await next()) as number[];

    const who = await postern(["who", "--config", configFile]);
    assert.equal(who.code, 0, who.err);
    const rows = who.out.trimEnd().split("\n");
    assert.match(rows[0]!, /^USER\s+PEER\s+LISTENER\s+TLS\s+CERTIFICATE\s+SINCE\s+MAILBOX$/);
    assert.equal(rows.length, 4, who.out);
    const listener = `127.0.0.1:${p.implicitPort}/implicit`;
    const row = (port: number) => rows.find((r) => r.includes(`127.0.0.1:${port} `)) ?? "";
    assert.match(
      row(ports[0]!),
      new RegExp(
        `^alice\\s+127\\.0\\.0\\.1:${
          ports[0]
        }\\s+${listener}\\s+TLSv1\\.3 TLS_\\w+\\s+-\\s+\\d{4}-\\d\\d-\\d\\dT[\\d:]+Z\\s+INBOX$`,
      ),
    );
    assert.match(row(ports[1]!), /^alice\s.*\s-$/);
    assert.match(row(ports[2]!), /^bob\s/);
    const json = await postern(["who", "--json", "--config", configFile]);
    const sessions = JSON.parse(json.out).sessions as { user: string; peer: string }[];
    assert.deepEqual(sessions.map((s) => s.user).sort(), ["alice", "alice", "bob"]);

    const stats = await postern(["stats", "--json", "--config", configFile]);
    const counters = JSON.parse(stats.out).counters as Record<string, number>;
    assert.equal(counters.sessionsAuthenticated, 3);
    assert.ok(counters.authenticationsOk! >= 3 && counters.handshakesOk! >= 3, stats.out);
    assert.match((await postern(["stats", "--config", configFile])).out, /^commands\s+\d+$/m);

    // reload takes a good configuration and refuses a broken one, keeping the old. Broken
    // where the command line reads it too, the new file is refused before the server is asked.
    const good = await postern(["reload", "--config", configFile]);
    assert.deepEqual([good.code, good.out], [0, "new configuration taken\n"]);
    const text = await Deno.readTextFile(configFile);
    await Deno.writeTextFile(
      configFile,
      text.replace("handshake_timeout: 5s", "handshake_timeout: 5"),
    );
    const bad = await postern(["reload", "--config", configFile]);
    assert.equal(bad.code, 1);
    assert.match(
      bad.err,
      /^new configuration refused, the old one still runs:\n.*config\.yaml:\d+:\d+: tls\.handshake_timeout: invalid duration "5": a unit is required/,
    );
    // Broken only in what the server checks (the files it names): the server refuses it.
    await Deno.writeTextFile(
      configFile,
      text.replace(/certificate: .*/, `certificate: ${join(p.dir, "gone.pem")}`),
    );
    const refused = await postern(["reload", "--config", configFile]);
    assert.equal(refused.code, 1);
    assert.match(
      refused.err,
      /^new configuration refused, the old one still runs:\n.*config\.yaml:\d+:\d+: tls\.certificate: cannot read .*gone\.pem.*no such file/,
    );
    await Deno.writeTextFile(configFile, text);

    const kickBob = await postern(["kick", "bob", "--config", configFile]);
    assert.deepEqual([kickBob.code, kickBob.out], [0, "1 session ended\n"]);
    const kickPeer = await postern([
      "kick",
      "--peer",
      `127.0.0.1:${ports[1]}`,
      "--config",
      configFile,
    ]);
    assert.deepEqual([kickPeer.code, kickPeer.out], [0, "1 session ended\n"]);
    const nobody = await postern(["kick", "carol", "--config", configFile]);
    assert.deepEqual([nobody.code, nobody.out], [1, "0 sessions ended\n"]);
    const usage = await postern(["kick", "--config", configFile]);
    assert.equal(usage.code, 2);
    assert.match(usage.err, /kick needs a USER or --peer ADDR/);

    await stdin.write(new TextEncoder().encode("go\n"));
    const results = JSON.parse(await next()) as string[];
    assert.equal(results[0], "OK", JSON.stringify(results));
    for (const kicked of results.slice(1)) {
      assert.match(kicked, /^abort: .*Disconnected by the administrator/);
    }
    const after = await postern(["who", "--json", "--config", configFile]);
    const left = JSON.parse(after.out).sessions as { user: string }[];
    assert.ok(left.length <= 1 && left.every((s) => s.user === "alice"), after.out);
  } finally {
    await stdin.close().catch(() => {});
    await child.status;
    await stderr;
    await p.stop();
    await Deno.remove(socketDir, { recursive: true }).catch(() => {});
  }
  // The socket goes away with the server, and the CLI says so plainly.
  const gone = await postern(["who", "--config", join(p.dir, "missing.yaml")]);
  assert.equal(gone.code, 1);
});

Deno.test("the admin socket opens by default only in a private folder", async () => {
  const dir = await Deno.makeTempDir({ prefix: "postern-admin-auto-" });
  try {
    const config = (yaml: string) =>
      parseConfig(yaml, join(dir, "config.yaml"), { checkFiles: false });
    const shared = join(dir, "shared");
    await Deno.mkdir(shared, { mode: 0o755 });
    await Deno.chmod(shared, 0o755);
    const privateDir = join(dir, "private");
    await Deno.mkdir(privateDir, { mode: 0o700 });
    assert.equal(await adminSocketWanted(config(`data_dir: ${privateDir}\n`)), true);
    assert.equal(await adminSocketWanted(config(`data_dir: ${shared}\n`)), false);
    assert.equal(await adminSocketWanted(config(`data_dir: ${join(dir, "absent")}\n`)), false);
    assert.equal(
      await adminSocketWanted(config(`data_dir: ${privateDir}\nadmin: { enabled: false }\n`)),
      false,
    );
    await assert.rejects(
      () => adminSocketWanted(config(`data_dir: ${shared}\nadmin: { enabled: true }\n`)),
      /admin\.enabled is true but .*shared is not private to this user/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
