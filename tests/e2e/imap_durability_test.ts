/**
 * Crash durability of the whole server: Postern runs as a subprocess (`server/main.ts serve`),
 * clients APPEND in a loop and record every APPEND that got a tagged OK with its APPENDUID
 * (RFC 4315, Section 3), the server is killed with SIGKILL mid-stream, restarted on the same
 * data directory, and every acknowledged message must be there, byte for byte, under its UID,
 * with every acknowledged flag change.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ensureDevPki } from "../../server/cli/dev_pki.ts";
import { freePort, RawImap, run } from "../_support/imap_clients.ts";
import { killServer, type ServerProcess, spawnServer } from "../_support/server_process.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const MAIN = join(ROOT, "server/main.ts");
const PASSWORD = "durable secret";

type Server = ServerProcess;

/** Waits until the server answers an IMAP greeting over TLS. */
async function waitReady(port: number, caPem: string, server: Server): Promise<void> {
  const deadline = Date.now() + 30_000;
  let exited = false;
  void server.exited.then(() => exited = true);
  while (Date.now() < deadline && !exited) {
    try {
      const imap = await RawImap.tls(port, caPem);
      try {
        const greeting = await imap.greeting(3000);
        if (greeting.startsWith("* OK")) return;
      } finally {
        await imap.close();
      }
    } catch {
      // Not listening yet.
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`Server did not start:\n${server.log()}`);
}

const kill = killServer;

/** A message whose size and content depend on `n`, so a mix-up cannot go unnoticed. */
function message(client: number, n: number): Uint8Array {
  const filler = `c${client} n${n} `.repeat(1 + ((n * 37) % 400));
  return new TextEncoder().encode(
    [
      "From: loop@example.org",
      "To: alice@example.org",
      `Subject: durability ${client}/${n}`,
      `Message-ID: <d${client}.${n}@postern.test>`,
      "",
      filler,
      "",
    ].join("\r\n"),
  );
}

function login(port: number, caPem: string): Promise<RawImap> {
  return RawImap.login(port, caPem, "alice", PASSWORD);
}

for (const workers of [1, 2]) {
  Deno.test(
    `every acknowledged APPEND and flag change survives kill -9 of the server (workers: ${workers})`,
    () => killAndCheck(workers),
  );
}

/**
 * Kills the server under `2 × workers` appending clients and checks what it acknowledged. With
 * two Workers, each has its own SQLite connection and group commit over the same database.
 */
async function killAndCheck(workers: number): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "postern-durability-e2e-" });
  const servers: Server[] = [];
  try {
    const pki = await ensureDevPki(join(dir, "certs"));
    const caPem = await Deno.readTextFile(pki.caCertificate);
    const implicitPort = freePort();
    const starttlsPort = freePort();
    const configPath = join(dir, "config.yaml");
    await Deno.writeTextFile(
      configPath,
      [
        `data_dir: ${join(dir, "data")}`,
        "listen:",
        `  - address: 127.0.0.1:${implicitPort}`,
        "    tls: implicit",
        `  - address: 127.0.0.1:${starttlsPort}`,
        "    tls: starttls",
        "tls:",
        `  certificate: ${pki.serverCertificate}`,
        `  private_key: ${pki.serverKey}`,
        "  client_auth: none",
        "log:",
        "  level: warning",
        "server:",
        `  workers: ${workers}`,
        "",
      ].join("\n"),
    );
    await Deno.mkdir(join(dir, "data"));
    const added = await run(
      Deno.execPath(),
      ["run", "-A", MAIN, "user", "add", "alice", "--config", configPath],
      { stdin: `${PASSWORD}\n`, cwd: ROOT, timeoutMs: 30_000 },
    );
    assert.equal(added.code, 0, `${added.stdout}\n${added.stderr}`);

    const first = spawnServer(configPath);
    servers.push(first);
    await waitReady(implicitPort, caPem, first);

    // Two clients append until the server dies under them.
    const acked = new Map<number, Uint8Array>();
    const flagged = new Set<number>();
    let uidValidity = 0;
    const loop = async (client: number) => {
      const imap = await login(implicitPort, caPem);
      try {
        const sel = await imap.command("SELECT INBOX");
        assert.equal(sel.status, "OK", sel.tagged);
        for (let n = 0; n < 100_000; n++) {
          const bytes = message(client, n);
          const r = await imap.command("APPEND INBOX", bytes, 15_000);
          assert.equal(r.status, "OK", r.tagged);
          const m = /\[APPENDUID (\d+) (\d+)\]/.exec(r.tagged);
          assert.ok(m, r.tagged);
          uidValidity = Number(m[1]);
          const uid = Number(m[2]);
          assert.ok(!acked.has(uid), `UID ${uid} acknowledged twice`);
          acked.set(uid, bytes);
          if (n % 3 === 0) {
            const st = await imap.command(`UID STORE ${uid} +FLAGS.SILENT (\\Flagged $Durable)`);
            assert.equal(st.status, "OK", st.tagged);
            flagged.add(uid);
          }
        }
      } catch (error) {
        // The expected end: the connection dies with the server.
        if (error instanceof assert.AssertionError) throw error;
      } finally {
        await imap.close();
      }
    };
    // Caught at once so that a failed assertion is not an unhandled rejection before the kill.
    const clients = Array.from({ length: 2 * workers }, (_, i) => loop(i + 1));
    const loops = clients.map((p) => p.then(() => null, (e: unknown) => e));
    await new Promise((r) => setTimeout(r, 1500));
    kill(first, "SIGKILL");
    const status = await first.exited;
    assert.equal(status.signal, "SIGKILL");
    for (const failure of await Promise.all(loops)) if (failure !== null) throw failure;
    assert.ok(acked.size >= 5, `only ${acked.size} appends acknowledged before the kill`);

    const second = spawnServer(configPath);
    servers.push(second);
    await waitReady(implicitPort, caPem, second);
    const imap = await login(implicitPort, caPem);
    try {
      const sel = await imap.command("SELECT INBOX");
      assert.equal(sel.status, "OK", sel.tagged);
      const text = sel.untagged.map((r) => r.text).join("\n");
      const exists = Number(/^\* (\d+) EXISTS$/m.exec(text)?.[1]);
      const uidNext = Number(/UIDNEXT (\d+)/.exec(text)?.[1]);
      const validity = Number(/UIDVALIDITY (\d+)/.exec(text)?.[1]);
      const maxAcked = Math.max(...acked.keys());
      assert.equal(validity, uidValidity, "UIDVALIDITY changed across the crash");
      assert.ok(uidNext > maxAcked, `UIDNEXT ${uidNext} <= acknowledged UID ${maxAcked}`);
      // At most one unacknowledged APPEND per client was in flight at the kill.
      assert.ok(
        exists >= acked.size && exists <= acked.size + clients.length,
        `${exists} vs ${acked.size}`,
      );

      const fetched = await imap.command(
        "UID FETCH 1:* (UID FLAGS BODY.PEEK[])",
        undefined,
        30_000,
      );
      assert.equal(fetched.status, "OK", fetched.tagged);
      assert.equal(fetched.untagged.length, exists);
      const onServer = new Map<number, Uint8Array>();
      const flagsOnServer = new Map<number, string>();
      for (const r of fetched.untagged) {
        const uid = Number(/UID (\d+)/.exec(r.text)?.[1]);
        assert.ok(r.literals.length === 1, r.text.slice(0, 100));
        onServer.set(uid, r.literals[0]!);
        flagsOnServer.set(uid, /FLAGS \(([^)]*)\)/.exec(r.text)?.[1] ?? "");
      }
      for (const uid of flagged) {
        const flags = flagsOnServer.get(uid) ?? "";
        assert.match(flags, /\\Flagged/, `acknowledged \\Flagged on UID ${uid} was lost`);
        assert.match(flags, /\$Durable/, `acknowledged $Durable on UID ${uid} was lost`);
      }
      for (const [uid, bytes] of acked) {
        const stored = onServer.get(uid);
        assert.ok(stored, `acknowledged UID ${uid} is missing after the crash`);
        assert.deepEqual(stored, bytes, `UID ${uid} differs after the crash`);
      }

      // The store goes on: a new APPEND gets a UID at or above UIDNEXT, STATUS agrees.
      const again = await imap.command("APPEND INBOX", message(99, 0));
      assert.equal(again.status, "OK", again.tagged);
      const newUid = Number(/APPENDUID \d+ (\d+)/.exec(again.tagged)?.[1]);
      assert.ok(newUid >= uidNext, `new UID ${newUid} < UIDNEXT ${uidNext}`);
      const st = await imap.command("STATUS INBOX (MESSAGES UIDNEXT)");
      assert.match(st.untagged[0]?.text ?? "", new RegExp(`MESSAGES ${exists + 1}\\b`));
      assert.match(st.untagged[0]?.text ?? "", new RegExp(`UIDNEXT ${newUid + 1}\\b`));
      await imap.command("LOGOUT");
    } finally {
      await imap.close();
    }
    kill(second, "SIGTERM");
    const timer = setTimeout(() => kill(second, "SIGKILL"), 10_000);
    await second.exited;
    clearTimeout(timer);
  } finally {
    for (const server of servers) {
      kill(server, "SIGKILL");
      await server.exited;
    }
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
