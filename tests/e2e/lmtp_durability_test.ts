/**
 * Crash durability of LMTP delivery: Postern runs as a subprocess, LMTP clients deliver to
 * two recipients per message in a loop, and the server is killed with SIGKILL mid-stream.
 * Then, like an MTA whose replies were lost, the clients send every message again to the
 * restarted server. Every message that got a 250 must be in its recipient's mailbox exactly
 * once, and so must every message sent again: the dedup record makes the resend harmless.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ensureDevPki } from "../../server/cli/dev_pki.ts";
import { openDataStore } from "../../server/serve/data_dir.ts";
import { freePort } from "../_support/imap_clients.ts";
import { LmtpClient, lmtpMessage } from "../_support/lmtp.ts";
import {
  killServer,
  posternCommand,
  type ServerProcess,
  spawnServer,
} from "../_support/server_process.ts";

const RECIPIENTS = ["alice@example.org", "bob@example.org"] as const;
const ACCOUNTS = { "alice@example.org": "alice", "bob@example.org": "bob" } as const;

/** Waits until the LMTP socket greets. */
async function waitReady(path: string, server: ServerProcess): Promise<void> {
  const deadline = Date.now() + 30_000;
  let exited = false;
  void server.exited.then(() => exited = true);
  while (Date.now() < deadline && !exited) {
    try {
      const client = await LmtpClient.connect({ path });
      try {
        if ((await client.reply(3000)).code === 220) return;
      } finally {
        await client.close();
      }
    } catch {
      // Not listening yet.
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`Server did not start:\n${server.log()}`);
}

function id(client: number, n: number): string {
  return `crash-${client}-${n}`;
}

Deno.test("every LMTP delivery answered 250 survives kill -9 exactly once, resends included", async () => {
  const dir = await Deno.makeTempDir({ prefix: "postern-lmtp-durability-" });
  const servers: ServerProcess[] = [];
  try {
    const pki = await ensureDevPki(join(dir, "certs"));
    const socket = join(dir, "run", "lmtp.sock");
    const configPath = join(dir, "config.yaml");
    await Deno.writeTextFile(
      configPath,
      [
        `data_dir: ${join(dir, "data")}`,
        "listen:",
        `  - address: 127.0.0.1:${freePort()}`,
        "    tls: implicit",
        "tls:",
        `  certificate: ${pki.serverCertificate}`,
        `  private_key: ${pki.serverKey}`,
        "  client_auth: none",
        "lmtp:",
        `  listen: [unix:${socket}]`,
        "log:",
        "  level: warning",
        "",
      ].join("\n"),
    );
    for (const [address, name] of Object.entries(ACCOUNTS)) {
      await posternCommand([
        "user",
        "add",
        name,
        "--no-password",
        "--address",
        address,
        "--config",
        configPath,
      ]);
    }

    const first = spawnServer(configPath);
    servers.push(first);
    await waitReady(socket, first);

    // Four clients deliver until the server dies under them.
    const acked = new Map<string, Set<string>>(RECIPIENTS.map((r) => [r, new Set()]));
    const attempted: [number, number][] = [];
    const loop = async (client: number) => {
      const lmtp = await LmtpClient.open({ path: socket });
      try {
        for (let n = 0; n < 100_000; n++) {
          attempted.push([client, n]);
          const sent = await lmtp.send(
            "sender@example.org",
            RECIPIENTS,
            lmtpMessage(id(client, n), 512 + ((n * 97) % 4000)),
          );
          assert.deepEqual(sent.rcpt.map((r) => r.code), [250, 250]);
          sent.data.forEach((r, i) => {
            assert.equal(r.code, 250, r.lines.join(" "));
            acked.get(RECIPIENTS[i]!)!.add(id(client, n));
          });
        }
      } catch (error) {
        // The expected end: the connection dies with the server.
        if (error instanceof assert.AssertionError) throw error;
      } finally {
        await lmtp.close();
      }
    };
    const loops = [1, 2, 3, 4].map((c) => loop(c).then(() => null, (e: unknown) => e));
    await new Promise((r) => setTimeout(r, 1500));
    killServer(first, "SIGKILL");
    assert.equal((await first.exited).signal, "SIGKILL");
    for (const failure of await Promise.all(loops)) if (failure !== null) throw failure;
    const ackedCount = [...acked.values()].reduce((s, set) => s + set.size, 0);
    assert.ok(ackedCount >= 10, `only ${ackedCount} deliveries acknowledged before the kill`);

    // The restarted server gets every message again, as an MTA retries after lost replies.
    const second = spawnServer(configPath);
    servers.push(second);
    await waitReady(socket, second);
    const resend = await LmtpClient.open({ path: socket });
    try {
      for (const [client, n] of attempted) {
        const sent = await resend.send(
          "sender@example.org",
          RECIPIENTS,
          lmtpMessage(id(client, n), 512 + ((n * 97) % 4000)),
        );
        assert.deepEqual(sent.data.map((r) => r.code), [250, 250]);
      }
      await resend.command("QUIT");
    } finally {
      await resend.close();
    }
    killServer(second, "SIGTERM");
    const timer = setTimeout(() => killServer(second, "SIGKILL"), 10_000);
    await second.exited;
    clearTimeout(timer);

    const store = await openDataStore(join(dir, "data"));
    try {
      for (const recipient of RECIPIENTS) {
        const account = await store.getAccount(ACCOUNTS[recipient]);
        const inbox = await store.getMailbox(account!.id, "INBOX");
        const counts = new Map<string, number>();
        for (const m of await store.listMessages(inbox!.id)) {
          const raw = new TextDecoder().decode((await store.getRaw(inbox!.id, m.uid))!);
          assert.match(
            raw,
            new RegExp(`^Return-Path: <sender@example\\.org>\\r\\nDelivered-To: ${recipient}`),
          );
          const messageId = /^Message-ID: <([^@>]+)@/m.exec(raw)?.[1] ?? "";
          counts.set(messageId, (counts.get(messageId) ?? 0) + 1);
        }
        for (const messageId of acked.get(recipient)!) {
          assert.equal(counts.get(messageId), 1, `${messageId} for ${recipient}`);
        }
        for (const [client, n] of attempted) {
          assert.equal(counts.get(id(client, n)), 1, `resent ${id(client, n)} for ${recipient}`);
        }
        assert.equal(counts.size, attempted.length);
      }
    } finally {
      await store.close();
    }
  } finally {
    for (const server of servers) {
      killServer(server, "SIGKILL");
      await server.exited;
    }
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
