/**
 * Two Postern nodes serving the same accounts from one PostgreSQL (issue 16): each runs as a
 * subprocess (`server/main.ts serve`) with `store: { kind: postgres }`, on a throwaway cluster
 * started once for this file.
 *
 * - Python imaplib APPENDs, STOREs and EXPUNGEs on node A while an IDLE session on node B
 *   waits: B hears each change (LISTEN/NOTIFY between the nodes).
 * - Node A is killed with SIGKILL under an APPEND load; every APPEND it acknowledged is read
 *   back byte for byte through node B, which never stopped, and A starts again on the same
 *   database and goes on with higher UIDs.
 * - PostgreSQL stops for a second under load: the nodes recover by themselves and an IDLE
 *   session that lived through it hears every message.
 * - mbsync syncs through node A, then node B, then A again: nothing lost or duplicated.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ensureDevPki } from "../../server/cli/dev_pki.ts";
import {
  describeRun,
  freePort,
  makeMessage,
  RawImap,
  run,
  runPython,
  writeMbsyncConfig,
} from "../_support/imap_clients.ts";
import { killServer, type ServerProcess, spawnServer } from "../_support/server_process.ts";
import { postgresAvailable, type RunningPostgres, startPostgres } from "../_support/postgres.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const MAIN = join(ROOT, "server/main.ts");
const PASSWORD = "two nodes secret";

interface Node {
  readonly port: number;
  readonly config: string;
  server: ServerProcess | null;
}

interface Cluster {
  readonly dir: string;
  readonly caPem: string;
  readonly caPath: string;
  readonly a: Node;
  readonly b: Node;
}

/** Waits until a node answers an IMAP greeting over TLS. */
async function waitReady(node: Node, caPem: string): Promise<void> {
  const server = node.server!;
  const deadline = Date.now() + 30_000;
  let exited = false;
  void server.exited.then(() => exited = true);
  while (Date.now() < deadline && !exited) {
    try {
      const imap = await RawImap.tls(node.port, caPem);
      try {
        if ((await imap.greeting(3000)).startsWith("* OK")) return;
      } finally {
        await imap.close();
      }
    } catch {
      // Not listening yet.
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`Node did not start:\n${server.log()}`);
}

async function start(node: Node, caPem: string): Promise<void> {
  node.server = spawnServer(node.config);
  await waitReady(node, caPem);
}

async function stop(node: Node, signal: Deno.Signal = "SIGTERM"): Promise<void> {
  const server = node.server;
  if (!server) return;
  node.server = null;
  killServer(server, signal);
  const timer = setTimeout(() => killServer(server, "SIGKILL"), 10_000);
  await server.exited;
  clearTimeout(timer);
}

/** Writes two node configs on one database, adds alice, and starts both nodes. */
async function startCluster(
  pg: RunningPostgres,
  database: string,
  extraYaml = "",
): Promise<Cluster> {
  const dir = await Deno.makeTempDir({ prefix: "postern-nodes-e2e-" });
  const pki = await ensureDevPki(join(dir, "certs"));
  const caPem = await Deno.readTextFile(pki.caCertificate);
  const url = (await pg.createDatabase(database)).replace(`:${pg.password}@`, "@");
  const node = async (name: string): Promise<Node> => {
    const port = freePort();
    const config = join(dir, `${name}.yaml`);
    await Deno.writeTextFile(
      config,
      [
        `data_dir: ${join(dir, `data-${name}`)}`,
        "listen:",
        `  - address: 127.0.0.1:${port}`,
        "    tls: implicit",
        "tls:",
        `  certificate: ${pki.serverCertificate}`,
        `  private_key: ${pki.serverKey}`,
        "  client_auth: none",
        "store:",
        "  kind: postgres",
        `  url: ${url}`,
        `  password_file: ${pg.passwordFile}`,
        "  pool_size: 4",
        "log:",
        "  level: warning",
        extraYaml,
        "",
      ].join("\n"),
    );
    return { port, config, server: null };
  };
  const a = await node("a");
  const b = await node("b");
  const added = await run(
    Deno.execPath(),
    ["run", "-A", MAIN, "user", "add", "alice", "--config", a.config],
    { stdin: `${PASSWORD}\n`, cwd: ROOT, timeoutMs: 60_000 },
  );
  assert.equal(added.code, 0, `${added.stdout}\n${added.stderr}`);
  await Promise.all([start(a, caPem), start(b, caPem)]);
  return { dir, caPem, caPath: pki.caCertificate, a, b };
}

async function stopCluster(cluster: Cluster): Promise<void> {
  await Promise.all([stop(cluster.a, "SIGKILL"), stop(cluster.b, "SIGKILL")]);
  await Deno.remove(cluster.dir, { recursive: true }).catch(() => {});
}

function login(port: number, caPem: string): Promise<RawImap> {
  return RawImap.login(port, caPem, "alice", PASSWORD);
}

const available = postgresAvailable();
const pg = available ? await startPostgres() : null;

const PYTHON_IDLE_ACROSS_NODES = String.raw`
import imaplib, ssl, sys, time
port_a, port_b, ca, password = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context(cafile=ca)
B = imaplib.IMAP4_SSL("127.0.0.1", port_b, ssl_context=ctx)
B.login("alice", password)
assert B.select("INBOX") == ("OK", [b"0"])
B.send(b"I1 IDLE\r\n")
line = B.readline()
assert line.startswith(b"+"), line
B.sock.settimeout(10)

def wait_for(word):
    start = time.monotonic()
    seen = []
    while True:
        line = B.readline()
        seen.append(line)
        assert line, seen
        if word in line:
            return line, time.monotonic() - start

A = imaplib.IMAP4_SSL("127.0.0.1", port_a, ssl_context=ctx)
A.login("alice", password)
took = []
for n in (1, 2):
    A.append("INBOX", None, None, b"Subject: from node A %d\r\n\r\nhello\r\n" % n)
    line, t = wait_for(b"EXISTS")
    assert line == b"* %d EXISTS\r\n" % n, line
    took.append(t)
A.select("INBOX")
A.store("1", "+FLAGS.SILENT", r"(\Flagged)")
line, t = wait_for(b"FETCH")
assert b"\\Flagged" in line, line
took.append(t)
A.store("2", "+FLAGS.SILENT", r"(\Deleted)")
A.expunge()
line, t = wait_for(b"EXPUNGE")
assert line == b"* 2 EXPUNGE\r\n", line
took.append(t)
A.logout()

B.send(b"DONE\r\n")
while True:
    line = B.readline()
    assert line, "closed before IDLE completed"
    if line.startswith(b"I1 "):
        assert line.startswith(b"I1 OK"), line
        break
typ, data = B.uid("FETCH", "1:*", "(FLAGS)")
assert typ == "OK" and len([d for d in data if d]) == 1, data
assert b"\\Flagged" in data[0], data
B.logout()
print("latencies " + " ".join("%.3f" % t for t in took))
`;

Deno.test({
  name: "an IDLE session on node B hears APPEND, STORE and EXPUNGE made on node A",
  ignore: !available,
  fn: async () => {
    const cluster = await startCluster(pg!, "idle_nodes");
    try {
      const r = await runPython(PYTHON_IDLE_ACROSS_NODES, [
        String(cluster.a.port),
        String(cluster.b.port),
        cluster.caPath,
        PASSWORD,
      ], 60_000);
      assert.equal(r.code, 0, describeRun(r));
      assert.match(r.stdout, /^latencies( [\d.]+){4}/);
    } finally {
      await stopCluster(cluster);
    }
  },
});

/** A message whose size and content depend on `n`, so a mix-up cannot go unnoticed. */
function message(client: number, n: number): Uint8Array {
  const filler = `c${client} n${n} `.repeat(1 + ((n * 37) % 400));
  return new TextEncoder().encode(
    [
      "From: loop@example.org",
      `Subject: nodes ${client}/${n}`,
      `Message-ID: <n${client}.${n}@postern.test>`,
      "",
      filler,
      "",
    ].join("\r\n"),
  );
}

Deno.test({
  name: "kill -9 of a node under APPEND load loses no acknowledged message on the other node",
  ignore: !available,
  fn: async () => {
    const cluster = await startCluster(pg!, "kill_nodes");
    try {
      const acked = new Map<number, Uint8Array>();
      let uidValidity = 0;
      // Two clients on node A and one on node B append at once until A dies.
      let stopB = false;
      const loop = async (client: number, node: Node) => {
        const imap = await login(node.port, cluster.caPem);
        try {
          for (let n = 0; n < 100_000 && !(node === cluster.b && stopB); n++) {
            const bytes = message(client, n);
            const r = await imap.command("APPEND INBOX", bytes, 15_000);
            assert.equal(r.status, "OK", r.tagged);
            const m = /\[APPENDUID (\d+) (\d+)\]/.exec(r.tagged);
            assert.ok(m, r.tagged);
            assert.ok(uidValidity === 0 || uidValidity === Number(m[1]), "UIDVALIDITY differs");
            uidValidity = Number(m[1]);
            const uid = Number(m[2]);
            assert.ok(!acked.has(uid), `UID ${uid} handed out twice`);
            acked.set(uid, bytes);
          }
        } catch (error) {
          // The expected end on node A: the connection dies with the node.
          if (error instanceof assert.AssertionError) throw error;
        } finally {
          await imap.close();
        }
      };
      const loops = [loop(1, cluster.a), loop(2, cluster.a)].map((p) =>
        p.then(() => null, (e: unknown) => e)
      );
      const onB = loop(3, cluster.b).then(() => null, (e: unknown) => e);
      await new Promise((r) => setTimeout(r, 2000));
      const victim = cluster.a.server!;
      killServer(victim, "SIGKILL");
      assert.equal((await victim.exited).signal, "SIGKILL");
      cluster.a.server = null;
      for (const failure of await Promise.all(loops)) if (failure !== null) throw failure;
      stopB = true;
      const failureB = await onB;
      if (failureB !== null) throw failureB;
      assert.ok(acked.size >= 5, `only ${acked.size} appends acknowledged`);

      // Node B never stopped: it serves every acknowledged message.
      const imap = await login(cluster.b.port, cluster.caPem);
      try {
        const sel = await imap.command("SELECT INBOX");
        assert.equal(sel.status, "OK", sel.tagged);
        const text = sel.untagged.map((r) => r.text).join("\n");
        const exists = Number(/^\* (\d+) EXISTS$/m.exec(text)?.[1]);
        // At most one unacknowledged APPEND per client of A was in flight at the kill.
        assert.ok(exists >= acked.size && exists <= acked.size + 2, `${exists} vs ${acked.size}`);
        const fetched = await imap.command("UID FETCH 1:* (UID BODY.PEEK[])", undefined, 60_000);
        assert.equal(fetched.status, "OK", fetched.tagged);
        const onServer = new Map<number, Uint8Array>();
        for (const r of fetched.untagged) {
          const uid = Number(/UID (\d+)/.exec(r.text)?.[1]);
          if (r.literals.length === 1) onServer.set(uid, r.literals[0]!);
        }
        for (const [uid, bytes] of acked) {
          const stored = onServer.get(uid);
          assert.ok(stored, `acknowledged UID ${uid} is missing`);
          assert.deepEqual(stored, bytes, `UID ${uid} differs`);
        }
        await imap.command("LOGOUT");
      } finally {
        await imap.close();
      }

      // Node A starts again on the same database and goes on above every UID handed out.
      await start(cluster.a, cluster.caPem);
      const again = await login(cluster.a.port, cluster.caPem);
      try {
        const r = await again.command("APPEND INBOX", message(4, 0));
        assert.equal(r.status, "OK", r.tagged);
        const m = /APPENDUID (\d+) (\d+)/.exec(r.tagged);
        assert.equal(Number(m?.[1]), uidValidity);
        assert.ok(Number(m?.[2]) > Math.max(...acked.keys()));
      } finally {
        await again.close();
      }
    } finally {
      await stopCluster(cluster);
    }
  },
});

Deno.test({
  name: "both nodes recover when PostgreSQL restarts under load, IDLE included",
  ignore: !available,
  fn: async () => {
    const cluster = await startCluster(pg!, "restart_nodes");
    try {
      const acked = new Map<number, Uint8Array>();
      const refused: Uint8Array[] = [];
      let stopLoad = false;
      const imap = await login(cluster.a.port, cluster.caPem);
      // An IDLE session on node B that lives through the restart.
      const idle = await login(cluster.b.port, cluster.caPem);
      const sel = await idle.command("SELECT INBOX");
      assert.equal(sel.status, "OK", sel.tagged);
      await idle.write("i1 IDLE\r\n");
      assert.ok(await idle.readUntil((r) => r.text.startsWith("+"), 10_000));
      const load = (async () => {
        for (let n = 0; n < 100_000 && !stopLoad; n++) {
          const bytes = message(5, n);
          const r = await imap.command("APPEND INBOX", bytes, 30_000);
          if (r.status !== "OK") {
            // While the database is down an APPEND is refused, never acknowledged.
            assert.equal(r.status, "NO", r.tagged);
            refused.push(bytes);
            await new Promise((r) => setTimeout(r, 50));
            continue;
          }
          const uid = Number(/APPENDUID \d+ (\d+)/.exec(r.tagged)?.[1]);
          assert.ok(!acked.has(uid), `UID ${uid} handed out twice`);
          acked.set(uid, bytes);
        }
      })().then(() => null, (e: unknown) => e);
      await new Promise((r) => setTimeout(r, 1000));
      await pg!.stopServer();
      await new Promise((r) => setTimeout(r, 1000));
      const before = acked.size;
      await pg!.startServer();
      // The nodes reconnect by themselves: APPENDs are acknowledged again.
      const deadline = Date.now() + 30_000;
      while (acked.size <= before + 5 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
      }
      stopLoad = true;
      const failure = await load;
      if (failure !== null) throw failure;
      assert.ok(acked.size > before + 5, `no APPEND acknowledged after the restart`);
      // APPENDs either waited for the database (the store retries a connection that could not
      // be had) or were refused with NO; none was acknowledged without being stored.

      // The IDLE session on node B hears every message, also those its node may have missed
      // while it listened again.
      try {
        const r = await imap.command("APPEND INBOX", message(6, 0));
        assert.equal(r.status, "OK", r.tagged);
        // An APPEND refused was not stored, also one whose COMMIT's answer the restart cut (the
        // store asks PostgreSQL how that transaction ended): exactly the acknowledged ones and
        // this last one are there.
        const total = acked.size + 1;
        let lastExists = 0;
        const heard = await idle.readUntil((r) => {
          const exists = /^\* (\d+) EXISTS$/.exec(r.text);
          if (exists !== null) lastExists = Number(exists[1]);
          return lastExists === total;
        }, 20_000);
        assert.ok(
          heard,
          `IDLE on node B reached ${lastExists} EXISTS, not ${total} (refused ${refused.length});` +
            ` node A:\n${cluster.a.server?.log()}\nnode B:\n${cluster.b.server?.log()}`,
        );
        await idle.write("DONE\r\n");
        await idle.readUntil((r) => r.text.startsWith("i1 "), 10_000);
        const fetched = await idle.command("UID FETCH 1:* (UID BODY.PEEK[])", undefined, 60_000);
        const onServer = new Map<number, Uint8Array>();
        for (const f of fetched.untagged) {
          const uid = Number(/UID (\d+)/.exec(f.text)?.[1]);
          if (f.literals.length === 1) onServer.set(uid, f.literals[0]!);
        }
        for (const [uid, bytes] of acked) {
          assert.deepEqual(onServer.get(uid), bytes, `acknowledged UID ${uid} lost or changed`);
        }
        const extra = [...onServer].filter(([uid]) => !acked.has(uid));
        assert.deepEqual(
          extra.map(([, bytes]) => new TextDecoder().decode(bytes)),
          [new TextDecoder().decode(message(6, 0))],
          `unacknowledged messages stored (refused: ${refused.length})`,
        );
      } finally {
        await idle.close();
        await imap.close();
      }
    } finally {
      await stopCluster(cluster);
    }
  },
});

Deno.test({
  name: "max_connections_per_user holds across both nodes",
  ignore: !available,
  fn: async () => {
    const cluster = await startCluster(
      pg!,
      "limit_nodes",
      "limits:\n  max_connections_per_user: 2",
    );
    const open: RawImap[] = [];
    try {
      const attempt = async (port: number) => {
        const imap = await RawImap.tls(port, cluster.caPem);
        open.push(imap);
        await imap.greeting();
        return [imap, await imap.command(`LOGIN alice "${PASSWORD}"`, undefined, 15_000)] as const;
      };
      const [, first] = await attempt(cluster.a.port);
      const [onB, second] = await attempt(cluster.b.port);
      assert.equal(first.status, "OK", first.tagged);
      assert.equal(second.status, "OK", second.tagged);
      for (const port of [cluster.a.port, cluster.b.port]) {
        const [, third] = await attempt(port);
        assert.equal(third.status, "NO", third.tagged);
        assert.match(third.tagged, /\[LIMIT\]/);
      }
      await onB.command("LOGOUT");
      await onB.close();
      // The session ended on node B frees a place for node A.
      const deadline = Date.now() + 10_000;
      for (;;) {
        const [, again] = await attempt(cluster.a.port);
        if (again.status === "OK") break;
        assert.ok(Date.now() < deadline, again.tagged);
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      for (const imap of open) await imap.close().catch(() => {});
      await stopCluster(cluster);
    }
  },
});

Deno.test({
  name: "20 clients split over both nodes append, store and fetch at once without a lost UID",
  ignore: !available,
  fn: async () => {
    const cluster = await startCluster(
      pg!,
      "twenty_nodes",
      "limits:\n  max_connections_per_user: 40",
    );
    try {
      const perClient = 8;
      const client = async (i: number) => {
        const node = i % 2 === 0 ? cluster.a : cluster.b;
        const imap = await login(node.port, cluster.caPem);
        try {
          const uids: number[] = [];
          for (let n = 0; n < perClient; n++) {
            const r = await imap.command("APPEND INBOX", message(100 + i, n), 30_000);
            assert.equal(r.status, "OK", r.tagged);
            uids.push(Number(/APPENDUID \d+ (\d+)/.exec(r.tagged)?.[1]));
          }
          const sel = await imap.command("SELECT INBOX", undefined, 30_000);
          assert.equal(sel.status, "OK", sel.tagged);
          const st = await imap.command(
            `UID STORE ${uids.join(",")} +FLAGS (\\Seen)`,
            undefined,
            30_000,
          );
          assert.equal(st.status, "OK", st.tagged);
          const f = await imap.command("UID FETCH 1:* (FLAGS)", undefined, 30_000);
          assert.equal(f.status, "OK", f.tagged);
          await imap.command("LOGOUT");
          return uids;
        } finally {
          await imap.close();
        }
      };
      const all = (await Promise.all(Array.from({ length: 20 }, (_, i) => client(i)))).flat();
      assert.equal(new Set(all).size, 20 * perClient);
      assert.deepEqual(
        [...all].sort((x, y) => x - y),
        Array.from({ length: 20 * perClient }, (_, i) => i + 1),
      );
      const check = await login(cluster.b.port, cluster.caPem);
      try {
        const st = await check.command("STATUS INBOX (MESSAGES UNSEEN UIDNEXT)");
        assert.match(st.untagged[0]?.text ?? "", /MESSAGES 160 UNSEEN 0 UIDNEXT 161/);
      } finally {
        await check.close();
      }
    } finally {
      await stopCluster(cluster);
    }
  },
});

/** Message-IDs of the messages in a Maildir folder (cur and new), sorted. */
async function maildirIds(folder: string): Promise<string[]> {
  const ids: string[] = [];
  for (const sub of ["cur", "new"]) {
    for await (const entry of Deno.readDir(join(folder, sub))) {
      const text = await Deno.readTextFile(join(folder, sub, entry.name));
      ids.push(/Message-ID: (<[^>]+>)/i.exec(text)?.[1] ?? "(none)");
    }
  }
  return ids.sort();
}

/** Message-IDs in a node's INBOX, sorted. */
async function serverIds(port: number, caPem: string): Promise<string[]> {
  const imap = await login(port, caPem);
  try {
    await imap.command("SELECT INBOX");
    const r = await imap.command("UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])");
    const ids = r.untagged.filter((f) => f.literals.length === 1).map((f) =>
      /Message-ID: (<[^>]+>)/i.exec(new TextDecoder().decode(f.literals[0]!))?.[1] ?? "(none)"
    );
    await imap.command("LOGOUT");
    return ids.sort();
  } finally {
    await imap.close();
  }
}

Deno.test({
  name: "mbsync syncs through node A, then through node B, with nothing lost or duplicated",
  ignore: !available,
  fn: async () => {
    const cluster = await startCluster(pg!, "mbsync_nodes");
    const home = await Deno.makeTempDir({ prefix: "postern-nodes-mbsync-" });
    try {
      const append = async (port: number, id: string) => {
        const imap = await login(port, cluster.caPem);
        try {
          const r = await imap.command("APPEND INBOX", makeMessage(id, id));
          assert.equal(r.status, "OK", r.tagged);
        } finally {
          await imap.close();
        }
      };
      await append(cluster.a.port, "n1");
      await append(cluster.b.port, "n2");
      const maildir = join(home, "Mail");
      await Deno.mkdir(maildir);
      const rc = async (node: Node, name: string) => {
        const dir = join(home, name);
        await Deno.mkdir(dir);
        return await writeMbsyncConfig(dir, {
          port: node.port,
          user: "alice",
          password: PASSWORD,
          caPath: cluster.caPath,
          maildir,
        });
      };
      const [rcA, rcB] = [await rc(cluster.a, "a"), await rc(cluster.b, "b")];
      const sync = async (config: string) => {
        const r = await run("mbsync", ["-c", config, "-a"], {
          env: { HOME: home },
          cwd: home,
          timeoutMs: 60_000,
        });
        assert.equal(r.code, 0, describeRun(r));
      };
      await sync(rcA);
      assert.deepEqual(await maildirIds(join(maildir, "INBOX")), [
        "<n1@postern.test>",
        "<n2@postern.test>",
      ]);
      // A message written offline and one delivered through node A; then sync through B,
      // whose UIDVALIDITY and UIDs are the same, so mbsync goes on from its saved state.
      const local = new TextDecoder().decode(makeMessage("n-local", "offline"));
      await Deno.writeTextFile(
        join(maildir, "INBOX", "new", `${Date.now()}.M1P1.postern-test`),
        local.replaceAll("\r\n", "\n"),
      );
      await append(cluster.a.port, "n3");
      await sync(rcB);
      const expected = [
        "<n-local@postern.test>",
        "<n1@postern.test>",
        "<n2@postern.test>",
        "<n3@postern.test>",
      ];
      assert.deepEqual(await maildirIds(join(maildir, "INBOX")), expected);
      assert.deepEqual(await serverIds(cluster.a.port, cluster.caPem), expected);
      // Back through A: nothing changes.
      await sync(rcA);
      assert.deepEqual(await maildirIds(join(maildir, "INBOX")), expected);
      assert.deepEqual(await serverIds(cluster.b.port, cluster.caPem), expected);
    } finally {
      await stopCluster(cluster);
      await Deno.remove(home, { recursive: true }).catch(() => {});
    }
  },
});

// Registered last, so it runs after every case above in this file.
Deno.test({
  name: "two nodes: the throwaway PostgreSQL cluster stops",
  ignore: !available,
  fn: async () => {
    await pg?.stop();
  },
});
