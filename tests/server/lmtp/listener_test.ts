import assert from "node:assert/strict";
import { join } from "node:path";
import { MemoryMailStore } from "../../../mailstore/memory/mod.ts";
import { parseConfig } from "../../../server/config/mod.ts";
import { LmtpDelivery, LmtpServer } from "../../../server/lmtp/mod.ts";
import { LmtpClient, lmtpMessage } from "../../_support/lmtp.ts";
import { run } from "../../_support/command.ts";

async function start(dir: string, extra: Partial<Record<string, unknown>> = {}) {
  const config = parseConfig(
    `lmtp:\n  listen: [unix:${join(dir, "s", "lmtp.sock")}]\n`,
    "/x.yaml",
    {
      checkFiles: false,
    },
  );
  const lmtp = { ...config.lmtp!, ...extra };
  const store = new MemoryMailStore();
  const alice = await store.createAccount("alice", null);
  await store.addAddress(alice.id, "alice@example.org");
  const delivery = new LmtpDelivery({
    store,
    directory: () => null,
    settings: () => ({ lmtp, quota: config.quota }),
    hostname: "mx.test",
  });
  const server = await LmtpServer.listen({ config: lmtp, delivery, hostname: "mx.test" });
  return { server, store, path: join(dir, "s", "lmtp.sock") };
}

Deno.test("LmtpServer binds a Unix socket with its mode, delivers, and removes it at close", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { server, path } = await start(dir, { socketMode: 0o600 });
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    const client = await LmtpClient.open({ path });
    const sent = await client.send("s@example.org", ["alice@example.org"], lmtpMessage("l1"));
    assert.deepEqual(sent.data.map((r) => r.code), [250]);
    // Shutdown answers an idle session with 421 and closes it.
    await server.close(1000);
    const bye = await client.reply();
    assert.deepEqual([bye.code, bye.lines[0]], [421, "4.3.2 mx.test Service shutting down"]);
    await client.close();
    await assert.rejects(Deno.stat(path), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("LmtpServer replaces a stale socket but never a live one or another file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "s", "lmtp.sock");
    await Deno.mkdir(join(dir, "s"));
    // A socket file left behind by a process that died (Deno's own listeners remove theirs).
    const made = await run("python3", [
      "-c",
      "import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])",
      path,
    ]);
    assert.equal(made.code, 0, made.stderr);
    assert.ok((await Deno.lstat(path)).isSocket);
    const { server } = await start(dir);
    await assert.rejects(start(dir), /Another process is listening on/);
    await server.close(0);
    await Deno.writeTextFile(path, "not a socket");
    await assert.rejects(start(dir), /exists and is not a socket; not replacing it/);
    assert.equal(await Deno.readTextFile(path), "not a socket");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("LmtpServer refuses connections over max_connections and closes idle ones", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { server, path } = await start(dir, { maxConnections: 1, idleTimeoutMs: 300 });
    try {
      const first = await LmtpClient.connect({ path });
      assert.equal((await first.reply()).code, 220);
      const second = await LmtpClient.connect({ path });
      const refused = await second.reply();
      assert.deepEqual([refused.code, refused.lines[0]], [
        421,
        "4.3.2 Too many connections, try again later",
      ]);
      await second.close();
      // Nothing sent: the idle timer closes the first connection.
      const idle = await first.reply(10_000);
      assert.deepEqual([idle.code, idle.lines[0]], [
        421,
        "4.4.2 mx.test Idle for too long, closing",
      ]);
      await first.close();
    } finally {
      await server.close(0);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
