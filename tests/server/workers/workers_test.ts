/**
 * A whole Postern with two Workers (`server.workers: 2`, SO_REUSEPORT) against real TLS
 * clients (Deno.connectTls through RawImap): mailbox events cross the Workers, the per-user
 * limit holds for both together, and 20 clients on one mailbox see no contradictory state.
 * The ID response names the Worker of a logged-in session, so that a test can place two
 * connections on different Workers.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { callAdmin } from "../../../server/admin/client.ts";
import { LmtpClient, lmtpMessage } from "../../_support/lmtp.ts";
import { openDataStore } from "../../../server/serve/data_dir.ts";
import { hashPassword } from "../../../mailstore/password.ts";
import { loadConfig } from "../../../server/config/mod.ts";
import type { WhoResult } from "../../../server/admin/protocol.ts";
import { describeRun, makeMessage, RawImap, runPython } from "../../_support/imap_clients.ts";
import { startPostern } from "../../_support/postern.ts";
import { rawConnection, runStateChecker } from "../../_support/state_checker.ts";
import { PY_VISIT } from "./_visit.ts";
import { login, onDistinctWorkers, workerOf } from "./_workers.ts";

/**
 * Python's ssl: one full handshake, then reconnections offering its session ticket until one
 * lands on another Worker (bounded); prints each connection's Worker and whether it resumed.
 */
const RESUME_ACROSS_WORKERS = `
import json, re, socket, ssl, sys
port, ca = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=ca)
ctx.minimum_version = ssl.TLSVersion.TLSv1_3
${PY_VISIT}
worker, reused, session = visit(None)
seen = [{"worker": worker, "reused": reused}]
for _ in range(30):
    # The newest ticket each time: one ticket resumes tls.tickets.max_uses connections in all.
    w, r, newer = visit(session)
    session = newer or session
    seen.append({"worker": w, "reused": r})
    if w != worker: break
print(json.dumps(seen))
`;

const USERS = [
  { name: "alice", password: "pw" },
  { name: "bob", password: "pw" },
  { name: "carol", password: "pw" },
];

Deno.test({
  name: "Postern with two Workers",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const socketDir = await Deno.makeTempDir({ prefix: "postern-workers-admin-" });
    const socket = join(socketDir, "admin.sock");
    const postern = await startPostern({
      users: USERS,
      workers: 2,
      extraYaml:
        `metrics: { listen: "127.0.0.1:0" }\nadmin: { enabled: true, socket: ${socket} }\n`,
    });
    try {
      await t.step("IDLE in one Worker hears of an APPEND made in the other", async () => {
        const [idler, writer] = await onDistinctWorkers(postern, "alice", 2);
        try {
          const select = await idler!.command("SELECT INBOX");
          assert.equal(select.status, "OK", select.tagged);
          const before = Number(
            /\* (\d+) EXISTS/.exec(select.untagged.map((r) => r.text).join("\n"))?.[1],
          );
          await idler!.write("I1 IDLE\r\n");
          assert.ok(await idler!.readUntil((r) => r.text.startsWith("+"), 5000));
          const started = performance.now();
          const appended = await writer!.command(
            "APPEND INBOX",
            makeMessage("cross-worker", "Across Workers"),
          );
          assert.equal(appended.status, "OK", appended.tagged);
          const seen = await idler!.readUntil(
            (r) => r.text === `* ${before + 1} EXISTS`,
            5000,
          );
          const latency = performance.now() - started;
          assert.ok(seen, "the IDLE session never heard of the APPEND");
          console.log(`  EXISTS reached the other Worker ${latency.toFixed(1)} ms after APPEND`);
          await idler!.write("DONE\r\n");
          assert.ok(await idler!.readUntil((r) => r.text.startsWith("I1 OK"), 5000));
        } finally {
          await idler!.close();
          await writer!.close();
        }
      });

      await t.step(
        "a new message is \\Recent in exactly one session of either Worker",
        async () => {
          const [writer, reader] = await onDistinctWorkers(postern, "alice", 2);
          try {
            assert.equal((await writer!.command("CREATE Fresh")).status, "OK");
            const appended = await writer!.command("APPEND Fresh", makeMessage("recent", "New"));
            assert.equal(appended.status, "OK", appended.tagged);
            // The first to select it is in the other Worker; it claims the message.
            const first = await reader!.command("SELECT Fresh");
            assert.ok(first.untagged.some((r) => r.text === "* 1 RECENT"), first.tagged);
            const second = await writer!.command("SELECT Fresh");
            assert.ok(second.untagged.some((r) => r.text === "* 0 RECENT"), second.tagged);
          } finally {
            await writer!.close();
            await reader!.close();
          }
        },
      );

      await t.step("/metrics and the admin socket answer for both Workers together", async () => {
        const held = await onDistinctWorkers(postern, "bob", 2);
        try {
          const port = postern.handle.metricsAddress!.port;
          const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
          const open = [...text.matchAll(/^postern_connections_open\{[^}]*\} (\d+)$/gm)]
            .reduce((sum, m) => sum + Number(m[1]), 0);
          assert.equal(open, 2, text.split("\n").filter((l) => l.includes("open")).join("\n"));
          const who = await callAdmin(socket, { cmd: "who" });
          assert.ok(who.ok);
          const users = (who.result as WhoResult).sessions.map((s) => s.user);
          assert.deepEqual(users, ["bob", "bob"]);
          const kick = await callAdmin(socket, { cmd: "kick", user: "bob" });
          assert.deepEqual(kick.ok && kick.result, { kicked: 2 });
          for (const imap of held) {
            assert.ok(await imap.readUntil((r) => r.text.startsWith("* BYE"), 5000));
          }
        } finally {
          for (const imap of held) await imap.close();
        }
      });

      await t.step("a reload reaches every Worker, and one they refuse is an error", async () => {
        await postern.handle.reload();
        const config = await loadConfig(join(postern.dir, "config.yaml"));
        const gone = join(postern.dir, "gone.pem");
        const broken = {
          ...config,
          tls: {
            ...config.tls,
            certificate: gone,
            certificates: config.tls.certificates.map((c) => ({ ...c, certificate: gone })),
            // No material loaded: the Workers read the files, and one is gone.
            material: null,
          },
        };
        await assert.rejects(postern.handle.reload(broken), /gone\.pem/);
        // Both Workers keep serving with the configuration they had.
        const [a, b] = await onDistinctWorkers(postern, "alice", 2);
        await a!.close();
        await b!.close();
      });

      await t.step("a TLS 1.3 ticket from one Worker resumes on the other", async () => {
        const result = await runPython(RESUME_ACROSS_WORKERS, [
          String(postern.implicitPort),
          postern.caPath,
        ]);
        assert.equal(result.code, 0, describeRun(result));
        const seen = JSON.parse(result.stdout) as { worker: string; reused: boolean }[];
        const first = seen[0]!;
        const across = seen.find((s) => s.worker !== first.worker);
        assert.ok(across, `every connection reached Worker ${first.worker}`);
        assert.equal(across.reused, true, result.stdout);
      });

      await t.step("20 clients across both Workers see no contradictory state", async () => {
        const result = await runStateChecker(async () => {
          const imap = await RawImap.tls(postern.implicitPort, postern.caPem);
          await imap.greeting();
          const ok = await imap.command("LOGIN carol pw");
          assert.equal(ok.status, "OK", ok.tagged);
          return rawConnection(imap);
        }, { clients: 20, durationMs: 4000, maxCommands: 60, seed: 15 });
        assert.deepEqual(result.errors, [], result.errors.slice(0, 20).join("\n"));
        assert.ok(result.commands > 20 * 10, `only ${result.commands} commands ran`);
      });
      await t.step(
        "20 clients see no contradictory state while both Workers store multi-MiB APPENDs",
        async () => {
          // Large messages go through each Worker's blob writer; only the primary Worker's
          // store checkpoints the WAL that both write.
          const uploaders = await onDistinctWorkers(postern, "alice", 2);
          const sizes = [1, 5, 6].map((mib) => mib * 1024 * 1024);
          const uploads = uploaders.map(async (imap, u) => {
            const stored: number[] = [];
            for (const size of sizes) {
              const filler = "x".repeat(76) + "\r\n";
              const body = filler.repeat(Math.ceil(size / filler.length)).slice(0, size);
              const raw = makeMessage(`large-${u}-${size}`, `Large ${u} ${size}`, body);
              const r = await imap!.command("APPEND INBOX", raw, 60_000);
              assert.equal(r.status, "OK", r.tagged);
              stored.push(raw.length);
            }
            return stored;
          });
          const [checked, ...stored] = await Promise.all([
            runStateChecker(async () => {
              const imap = await RawImap.tls(postern.implicitPort, postern.caPem);
              await imap.greeting();
              const ok = await imap.command("LOGIN carol pw");
              assert.equal(ok.status, "OK", ok.tagged);
              return rawConnection(imap);
            }, { clients: 20, durationMs: 4000, maxCommands: 60, seed: 23 }),
            ...uploads,
          ]);
          assert.deepEqual(checked.errors, [], checked.errors.slice(0, 20).join("\n"));
          assert.ok(checked.commands > 20 * 10, `only ${checked.commands} commands ran`);
          // Every acknowledged large message is there, whole, seen from either Worker.
          try {
            for (const imap of uploaders) {
              const select = await imap!.command("EXAMINE INBOX");
              assert.equal(select.status, "OK", select.tagged);
              const sizesSeen = await imap!.command("FETCH 1:* (RFC822.SIZE)");
              const all = [
                ...sizesSeen.untagged.map((r) => r.text).join("\n").matchAll(
                  /RFC822\.SIZE (\d+)/g,
                ),
              ].map((m) => Number(m[1]));
              for (const size of stored.flat()) assert.ok(all.includes(size), `${size} missing`);
            }
          } finally {
            for (const imap of uploaders) await imap!.close();
          }
        },
      );
      await t.step(
        "a password changed in the store is refused by both Workers' caches",
        async () => {
          // Both Workers verify bob's password (each caches it, and tells the other).
          const cached = await onDistinctWorkers(postern, "bob", 2);
          for (const imap of cached) await imap.close();
          const store = await openDataStore(join(postern.dir, "data"));
          try {
            await store.setPasswordHash("bob", hashPassword("pw2", { ln: 10, r: 8, p: 1 }));
          } finally {
            await store.close();
          }
          // The old password is refused on a connection, whose Worker the new one then names.
          const refusedOn = new Set<string>();
          for (let i = 0; i < 24 && refusedOn.size < 2; i++) {
            const imap = await RawImap.tls(postern.implicitPort, postern.caPem);
            try {
              await imap.greeting();
              const old = await imap.command("LOGIN bob pw");
              assert.equal(old.status, "NO", old.tagged);
              const fresh = await imap.command("LOGIN bob pw2");
              assert.equal(fresh.status, "OK", fresh.tagged);
              refusedOn.add(await workerOf(imap));
            } finally {
              await imap.close();
            }
          }
          assert.equal(refusedOn.size, 2, "the old password was never tried on both Workers");
        },
      );
      // Last: it puts 127.0.0.1 under back-off.
      await t.step("password failures from one address count in both Workers", async () => {
        // Five wrong passwords at once (three are free) spread over both Workers; then the
        // right one is refused for the back-off whichever Worker takes it.
        await Promise.all(Array.from({ length: 5 }, async (_, i) => {
          const imap = await RawImap.tls(postern.implicitPort, postern.caPem);
          await imap.greeting();
          const wrong = await imap.command(`LOGIN carol wrong${i}`);
          assert.equal(wrong.status, "NO", wrong.tagged);
          await imap.close();
        }));
        // Two tries, at once: each refusal waits out the failure delay, and the back-off
        // (4 s after five failures) must not end in between.
        await Promise.all([0, 1].map(async () => {
          const imap = await RawImap.tls(postern.implicitPort, postern.caPem);
          await imap.greeting();
          const right = await imap.command("LOGIN carol pw");
          await imap.close();
          assert.match(right.tagged, /NO \[UNAVAILABLE\]/, right.tagged);
        }));
      });
    } finally {
      await postern.stop();
      await Deno.remove(socketDir, { recursive: true });
    }
  },
});

Deno.test({
  name: "Postern with two Workers keeps the limits for both together and restarts a failed one",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const limited = await startPostern({
      users: USERS.map((u) => ({ ...u, addresses: [`${u.name}@example.org`] })),
      workers: 2,
      limitsYaml: "  max_connections_per_user: 3\n  max_connections_per_address: 6",
      extraYaml: "lmtp:\n  listen: [127.0.0.1:0]\n",
    });
    try {
      await t.step("the per-user limit counts the sessions of both Workers", async () => {
        // Three sessions of bob, on both Workers; a fourth is refused wherever it lands.
        const open = await onDistinctWorkers(limited, "bob", 2);
        open.push((await login(limited, "bob")).imap);
        for (let i = 0; i < 4; i++) {
          const extra = await RawImap.tls(limited.implicitPort, limited.caPem);
          await extra.greeting();
          const refused = await extra.command("LOGIN bob pw");
          assert.equal(refused.status, "NO", refused.tagged);
          await extra.close();
        }
        const leaving = open.pop()!;
        await leaving.command("LOGOUT");
        await leaving.close();
        // The release reaches the supervisor asynchronously; the next login may race it.
        let again: RawImap | null = null;
        for (let i = 0; i < 50 && again === null; i++) {
          const imap = await RawImap.tls(limited.implicitPort, limited.caPem);
          await imap.greeting();
          if ((await imap.command("LOGIN bob pw")).status === "OK") again = imap;
          else {
            await imap.close();
            await new Promise((r) => setTimeout(r, 20));
          }
        }
        assert.ok(again, "a slot freed by LOGOUT was never given again");
        await again.close();
        for (const imap of open) await imap.close();
      });
      await t.step("a failed Worker is restarted and the other's sessions go on", async () => {
        for (const how of ["throw", "terminate"] as const) {
          const [survivor, victim] = await onDistinctWorkers(limited, "carol", 2);
          const victimId = await workerOf(victim!);
          assert.ok(limited.handle.failWorkerForTest?.(Number(victimId), how));
          // The failed Worker's connection ends; the other's session does not notice.
          assert.equal(await victim!.readUntil(() => false, 5000), null);
          assert.equal((await survivor!.command("NOOP")).status, "OK");
          assert.equal((await survivor!.command("SELECT INBOX")).status, "OK");
          // Both ports serve throughout, and the replacement (same id) takes connections again.
          for (let i = 0; i < 4; i++) {
            const plain = await RawImap.plain(limited.starttlsPort);
            assert.match(await plain.greeting(), /^\* OK/);
            await plain.close();
          }
          let back: RawImap[] = [];
          for (let i = 0; i < 50 && back.length === 0; i++) {
            back = await onDistinctWorkers(limited, "carol", 2).catch(async () => {
              await new Promise((r) => setTimeout(r, 100));
              return [];
            });
          }
          assert.equal(back.length, 2, `Worker ${victimId} (${how}) was never restarted`);
          for (const imap of [survivor!, victim!, ...back]) await imap.close();
        }
        // The first Worker alone runs the LMTP listener: its replacement listens again.
        assert.ok(limited.handle.failWorkerForTest?.(1, "terminate"));
        const lmtp = limited.handle.lmtpAddresses[0] as { port: number };
        let delivered: number[] = [];
        for (let i = 0; i < 50 && delivered[0] !== 250; i++) {
          try {
            const client = await LmtpClient.open({ hostname: "127.0.0.1", port: lmtp.port });
            try {
              const sent = await client.send(
                "sender@example.org",
                ["carol@example.org"],
                lmtpMessage(`restart-${i}`, 512, "carol@example.org"),
              );
              delivered = sent.data.map((r) => r.code);
            } finally {
              await client.close();
            }
          } catch {
            await new Promise((r) => setTimeout(r, 100));
          }
        }
        assert.deepEqual(delivered, [250], "LMTP never came back with the first Worker");
      });
      await t.step("the per-address limit counts the connections of both Workers", async () => {
        // Six at once from 127.0.0.1, spread by the kernel; a seventh is closed unanswered.
        // The server counts a connection until it has seen it close: earlier steps' may linger.
        let open: RawImap[] = [];
        for (let attempt = 0; attempt < 30 && open.length < 6; attempt++) {
          const tries = await Promise.allSettled(Array.from({ length: 6 }, async () => {
            const imap = await RawImap.tls(limited.implicitPort, limited.caPem);
            await imap.greeting().catch(async (e) => {
              await imap.close();
              throw e;
            });
            return imap;
          }));
          open = tries.flatMap((r) => r.status === "fulfilled" ? [r.value] : []);
          if (open.length === 6) break;
          for (const imap of open) await imap.close();
          open = [];
          await new Promise((r) => setTimeout(r, 200));
        }
        assert.equal(open.length, 6, "six connections were never served at once");
        try {
          const extra = await Deno.connect({ hostname: "127.0.0.1", port: limited.implicitPort });
          const read = await extra.read(new Uint8Array(16)).catch(() => null);
          extra.close();
          assert.equal(read, null, "a seventh connection was served");
        } finally {
          for (const imap of open) await imap.close();
        }
      });
    } finally {
      await limited.stop();
    }
  },
});
