/**
 * Running Postern: reload without dropping sessions, a failed reload keeps the old
 * configuration, graceful shutdown with BYE, SIGTERM and SIGHUP on the real process, and the
 * access log line.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { parseConfig } from "../../server/config/mod.ts";
import { ensureDevPki } from "../../server/cli/dev_pki.ts";
import { setupLogging } from "../../server/log.ts";
import { startPostern } from "../_support/postern.ts";
import { freePort } from "../_support/ports.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A minimal line-oriented IMAP client over TLS. */
async function imapConnect(port: number, caPem: string) {
  const conn = await Deno.connectTls({ hostname: "127.0.0.1", port, caCerts: [caPem] });
  let buffer = "";
  const buf = new Uint8Array(16384);
  const readUntil = async (pattern: RegExp, ms = 5000): Promise<string> => {
    const deadline = Date.now() + ms;
    while (!pattern.test(buffer)) {
      if (Date.now() > deadline) throw new Error(`Timed out waiting for ${pattern}: ${buffer}`);
      const n = await conn.read(buf);
      if (n === null) break;
      buffer += decoder.decode(buf.subarray(0, n));
    }
    const text = buffer;
    buffer = "";
    return text;
  };
  return {
    conn,
    readUntil,
    async command(line: string, tag: string): Promise<string> {
      await conn.write(encoder.encode(`${tag} ${line}\r\n`));
      return await readUntil(new RegExp(`^${tag} (OK|NO|BAD)`, "m"));
    },
  };
}

Deno.test("reload swaps the server certificate for new connections and keeps open sessions", async () => {
  const p = await startPostern({ users: [{ name: "alice", password: "pw" }] });
  try {
    const old = await imapConnect(p.implicitPort, p.caPem);
    await old.readUntil(/^\* OK/m);
    assert.match(await old.command("LOGIN alice pw", "a1"), /^a1 OK/m);

    const otherDir = join(p.dir, "other-certs");
    await Deno.mkdir(otherDir);
    const other = await ensureDevPki(otherDir);
    const text = (await Deno.readTextFile(join(p.dir, "config.yaml")))
      .replace(/certificate: .*/, `certificate: ${other.serverCertificate}`)
      .replace(/private_key: .*/, `private_key: ${other.serverKey}`);
    const configPath = join(p.dir, "config2.yaml");
    await Deno.writeTextFile(configPath, text);
    await p.handle.reload(parseConfig(text, configPath));

    await assert.rejects(() =>
      Deno.connectTls({ hostname: "127.0.0.1", port: p.implicitPort, caCerts: [p.caPem] })
        .then(async (c) => {
          try {
            await c.handshake();
          } finally {
            c.close();
          }
        })
    );
    const fresh = await imapConnect(p.implicitPort, await Deno.readTextFile(other.caCertificate));
    await fresh.readUntil(/^\* OK/m);
    fresh.conn.close();
    // The session opened before the reload goes on.
    assert.match(await old.command("NOOP", "a2"), /^a2 OK/m);
    old.conn.close();
  } finally {
    await p.stop();
  }
});

Deno.test("a reload with a broken key is refused and the old configuration stays", async () => {
  const p = await startPostern();
  try {
    const badKey = join(p.dir, "bad.key");
    await Deno.writeTextFile(
      badKey,
      "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    );
    const text = (await Deno.readTextFile(join(p.dir, "config.yaml")))
      .replace(/private_key: .*/, `private_key: ${badKey}`);
    await assert.rejects(() =>
      p.handle.reload(parseConfig(text, join(p.dir, "config.yaml"), { checkFiles: false }))
    );
    const c = await imapConnect(p.implicitPort, p.caPem);
    assert.match(await c.readUntil(/^\* OK/m), /Postern ready/);
    c.conn.close();
  } finally {
    await p.stop();
  }
});

Deno.test("shutdown sends BYE to open sessions and finishes within its grace period", async () => {
  const p = await startPostern({ users: [{ name: "alice", password: "pw" }] });
  const c = await imapConnect(p.implicitPort, p.caPem);
  await c.readUntil(/^\* OK/m);
  assert.match(await c.command("LOGIN alice pw", "a1"), /^a1 OK/m);
  const started = performance.now();
  const stopping = p.stop();
  assert.match(await c.readUntil(/^\* BYE/m), /\* BYE/);
  await stopping;
  assert.ok(performance.now() - started < 5000);
  c.conn.close();
});

Deno.test("each connection gets one JSON access line without secrets", async () => {
  const lines: string[] = [];
  setupLogging({ level: "info", format: "json", write: (line) => lines.push(line) });
  const p = await startPostern({ users: [{ name: "alice", password: "s3cret-pw" }] });
  try {
    const c = await imapConnect(p.implicitPort, p.caPem);
    await c.readUntil(/^\* OK/m);
    await c.command("LOGIN alice s3cret-pw", "a1");
    await c.command("LOGOUT", "a2");
    c.conn.close();
    for (let i = 0; i < 50 && !lines.some((l) => l.includes("postern.access")); i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    await p.stop();
    setupLogging({ level: "error", format: "text" });
  }
  const access = lines.filter((l) => l.includes("postern.access")).map((l) => JSON.parse(l));
  assert.equal(access.length, 1);
  const props = access[0].properties;
  assert.equal(props.user, "alice");
  assert.match(props.peer, /^127\.0\.0\.1:\d+$/);
  assert.match(props.tls, /^TLSv1\.3 TLS_/);
  assert.ok(props.bytesIn > 0 && props.bytesOut > 0);
  assert.equal(typeof props.durationMs, "number");
  assert.ok(typeof props.close === "string");
  // A session that left no notes (no COMPRESS, no ID) ends its line at the sync time.
  assert.match(access[0].message, /synced=\S+$/, access[0].message);
  assert.ok(!lines.some((l) => l.includes("s3cret-pw")), "the password reached the log");
});

Deno.test("the server process exits cleanly on SIGTERM and survives a bad SIGHUP reload", async () => {
  const dir = await Deno.makeTempDir({ prefix: "postern-proc-" });
  try {
    const pki = await ensureDevPki(join(dir, "certs"));
    const port = freePort();
    const configPath = join(dir, "config.yaml");
    const yaml = [
      `data_dir: ${join(dir, "data")}`,
      "listen:",
      `  - address: 127.0.0.1:${port}`,
      "    tls: implicit",
      "tls:",
      `  certificate: ${pki.serverCertificate}`,
      `  private_key: ${pki.serverKey}`,
      "  client_auth: none",
      "log:",
      "  level: info",
    ].join("\n");
    await Deno.writeTextFile(configPath, yaml);
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("../../server/main.ts", import.meta.url).pathname,
        "serve",
        "--config",
        configPath,
      ],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const stderr = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
    let log = "";
    const waitLog = async (pattern: RegExp) => {
      const deadline = Date.now() + 15000;
      while (!pattern.test(log) && Date.now() < deadline) {
        const { value, done } = await stderr.read();
        if (done) break;
        log += value;
      }
      assert.match(log, pattern);
    };
    await waitLog(/Listening on/);
    const caPem = await Deno.readTextFile(pki.caCertificate);
    const c = await imapConnect(port, caPem);
    await c.readUntil(/^\* OK/m);

    await Deno.writeTextFile(configPath, yaml + "\nlisten_typo: 1\n");
    child.kill("SIGHUP");
    await waitLog(/Reload failed/);
    await Deno.writeTextFile(configPath, yaml);
    assert.match(await c.command("NOOP", "a1"), /^a1 OK/m);

    child.kill("SIGTERM");
    assert.match(await c.readUntil(/^\* BYE/m), /\* BYE/);
    const status = await child.status;
    assert.equal(status.code, 0);
    c.conn.close();
    await stderr.cancel();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("shutdown during an APPEND load keeps every acknowledged message", async () => {
  const p = await startPostern({ users: [{ name: "alice", password: "pw" }] });
  const c = await imapConnect(p.implicitPort, p.caPem);
  await c.readUntil(/^\* OK/m);
  assert.match(await c.command("LOGIN alice pw", "a0"), /^a0 OK/m);
  const body = "x".repeat(200_000);
  const message = (i: number) => `Subject: load ${i}\r\n\r\n${body}\r\n`;
  // Pipeline APPENDs with LITERAL+ and start the shutdown while they are in flight.
  const sending = (async () => {
    for (let i = 1; i <= 40; i++) {
      const m = message(i);
      const bytes = encoder.encode(`p${i} APPEND INBOX {${m.length}+}\r\n${m}\r\n`);
      // Conn.write may write only part of a buffer.
      for (let off = 0; off < bytes.length;) {
        const n = await c.conn.write(bytes.subarray(off)).catch(() => 0);
        if (n === 0) return;
        off += n;
      }
    }
  })();
  const head = await c.readUntil(/^p2 OK/m, 10_000);
  const stopping = p.handle.shutdown();
  const transcript = head + await c.readUntil(/^\* BYE/m, 10_000).catch((e) => String(e));
  await stopping;
  await sending;
  c.conn.close();
  const acknowledged = [...transcript.matchAll(/^p(\d+) OK \[APPENDUID \d+ (\d+)\]/gm)]
    .map((m) => ({ n: Number(m[1]), uid: Number(m[2]) }));
  assert.match(transcript, /\* BYE/);
  assert.ok(acknowledged.length > 0, "no APPEND completed before the shutdown");

  const { openDataStore } = await import("../../server/serve/data_dir.ts");
  const store = await openDataStore(join(p.dir, "data"));
  try {
    const account = (await store.getAccount("alice"))!;
    const inbox = (await store.getMailbox(account.id, "INBOX"))!;
    for (const { n, uid } of acknowledged) {
      const raw = await store.getRaw(inbox.id, uid);
      assert.ok(raw, `acknowledged APPEND p${n} (UID ${uid}) is missing`);
      assert.equal(decoder.decode(raw), message(n));
    }
    assert.ok(inbox.messages >= acknowledged.length);
  } finally {
    await store.close();
    await Deno.remove(p.dir, { recursive: true }).catch(() => {});
  }
});
