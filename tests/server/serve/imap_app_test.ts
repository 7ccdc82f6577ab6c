/**
 * The IMAP driver's timers: a client in IDLE gets keep-alives, a silent client outside IDLE is
 * logged out, and a shutdown says BYE to every session, over real TLS connections to the
 * listener.
 */
import assert from "node:assert/strict";
import { MemoryMailStore } from "../../../mailstore/memory/mod.ts";
import { hashPassword } from "../../../mailstore/password.ts";
import { LocalAuthenticator } from "../../../server/auth/local.ts";
import { ImapApplication } from "../../../server/serve/imap_app.ts";
import { ServerAuthenticator } from "../../../server/auth/imap_auth.ts";
import { makeOpensslPki } from "../../_support/openssl_pki.ts";
import { startTestServer } from "../../_support/test_server.ts";
import { type Metrics, NO_METRICS } from "../../../server/metrics/metrics.ts";
import { EngineConn } from "../../_support/engine_client.ts";
import { defaultProvider } from "../../../protocol/crypto/mod.ts";
import { TicketKeys } from "../../../protocol/tls/mod.ts";

const pki = await makeOpensslPki();
const leaf = await pki.server("ec256");
globalThis.addEventListener("unload", () => Deno.removeSync(pki.dir, { recursive: true }));

async function withImap(
  timers: { idleTimeoutMs: number; idleKeepaliveMs: number },
  body: (port: number, close: () => Promise<void>) => Promise<void>,
  extra: {
    metrics?: Metrics;
    ticketKeys?: TicketKeys;
    halfRtt?: boolean;
    onApp?: (app: ImapApplication) => void;
  } = {},
): Promise<void> {
  const store = new MemoryMailStore();
  await store.createAccount("alice", hashPassword("pw", { ln: 4, r: 8, p: 1 }));
  const auth = new ServerAuthenticator({
    store,
    local: new LocalAuthenticator({ store, failureDelayMs: 0 }),
    directory: null,
  });
  const app = new ImapApplication({ store, auth, maxConnectionsPerUser: 5, ...timers });
  extra.onApp?.(app);
  const server = await startTestServer({
    certPem: leaf.certPem,
    keyPem: leaf.keyPem,
    application: app.application,
    ...(extra.metrics ? { metrics: extra.metrics } : {}),
    ...(extra.ticketKeys ? { ticketKeys: extra.ticketKeys } : {}),
    ...(extra.halfRtt !== undefined ? { halfRtt: extra.halfRtt } : {}),
  });
  let closing: Promise<void> | null = null;
  const close = () => closing ??= server.close();
  try {
    await body(server.port, close);
  } finally {
    await close();
    app.close();
    await store.close();
  }
}

async function client(port: number) {
  const conn = await Deno.connectTls({ hostname: "127.0.0.1", port, caCerts: [pki.ca.certPem] });
  let text = "";
  const buf = new Uint8Array(4096);
  return {
    conn,
    async until(pattern: RegExp, ms = 5000): Promise<string> {
      const deadline = Date.now() + ms;
      while (!pattern.test(text) && Date.now() < deadline) {
        const n = await conn.read(buf);
        if (n === null) break;
        text += new TextDecoder().decode(buf.subarray(0, n));
      }
      return text;
    },
    send: (line: string) => conn.write(new TextEncoder().encode(line + "\r\n")),
  };
}

/**
 * The sizes of the server's writes until the greeting has arrived and until the reply to a
 * first command, and the tickets the client held at each point.
 */
async function firstWrites(halfRtt: boolean) {
  const writes: number[] = [];
  const metrics: Metrics = { ...NO_METRICS, bytesSent: (n) => writes.push(n) };
  const ticketKeys = new TicketKeys({ provider: defaultProvider });
  const seen = { greeting: [] as number[], reply: [] as number[], tickets: [0, 0] };
  await withImap({ idleTimeoutMs: 60_000, idleKeepaliveMs: 60_000 }, async (port) => {
    const c = await EngineConn.connect(port);
    const buf = new Uint8Array(4096);
    let text = "";
    const until = async (pattern: RegExp) => {
      while (!pattern.test(text)) {
        const n = await c.read(buf);
        if (n === null) break;
        text += new TextDecoder().decode(buf.subarray(0, n));
      }
    };
    await until(/\r\n/);
    assert.match(text, /^\* OK \[CAPABILITY /);
    seen.greeting = [...writes];
    seen.tickets[0] = c.tickets.length;
    await c.write(new TextEncoder().encode("a NOOP\r\n"));
    await until(/^a OK/m);
    seen.reply = [...writes];
    seen.tickets[1] = c.tickets.length;
    c.close();
  }, { metrics, ticketKeys, halfRtt });
  return seen;
}

Deno.test("half-RTT: the greeting leaves with the flight, the tickets after the client's Finished", async () => {
  const off = await firstWrites(false);
  // Without half-RTT: the flight, then the NewSessionTickets and the greeting together (not a
  // write each), then the reply.
  assert.equal(off.greeting.length, 2, `writes ${off.greeting}`);
  assert.deepEqual(off.tickets, [2, 2]);
  const on = await firstWrites(true);
  // The flight and the greeting, sealed before the driver's first read (which would flush the
  // flight alone); the tickets, written when the client's Finished arrives, or with the reply
  // when the first command came with the Finished (as this client sends them).
  assert.ok(on.reply.length === 2 || on.reply.length === 3, `writes ${on.reply}`);
  assert.ok(on.reply[0]! > off.reply[0]!, `first write ${on.reply[0]} after ${off.reply[0]}`);
  assert.equal(on.tickets[1], 2);
});

Deno.test("a client in IDLE gets an untagged OK keep-alive", async () => {
  await withImap({ idleTimeoutMs: 60_000, idleKeepaliveMs: 200 }, async (port) => {
    const c = await client(port);
    await c.until(/^\* OK/m);
    await c.send("a LOGIN alice pw");
    await c.until(/^a OK/m);
    await c.send("b SELECT INBOX");
    await c.until(/^b OK/m);
    await c.send("c IDLE");
    await c.until(/^\+ /m);
    assert.match(await c.until(/^\* OK Still here/m, 3000), /^\* OK Still here/m);
    await c.send("DONE");
    assert.match(await c.until(/^c OK/m), /^c OK/m);
    c.conn.close();
  });
});

Deno.test("a silent client outside IDLE is logged out with BYE", async () => {
  await withImap({ idleTimeoutMs: 300, idleKeepaliveMs: 200 }, async (port) => {
    const c = await client(port);
    await c.until(/^\* OK/m);
    assert.match(await c.until(/^\* BYE/m, 3000), /^\* BYE Autologout/m);
    c.conn.close();
  });
});

Deno.test("the sessions' idle timer outlives the last session by one tick, then stops itself", async () => {
  let app: ImapApplication | null = null;
  await withImap({ idleTimeoutMs: 60_000, idleKeepaliveMs: 300 }, async (port) => {
    for (let i = 0; i < 2; i++) {
      const c = await client(port);
      await c.until(/^\* OK/m);
      await c.send("a LOGOUT");
      await c.until(/^a OK/m);
      c.conn.close();
    }
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(app!.idleTimerRunning, true, "kept for the next session");
    // The timer ticks every 300 ms; the first tick without a session ends it.
    await new Promise((r) => setTimeout(r, 700));
    assert.equal(app!.idleTimerRunning, false);
  }, { onApp: (a) => app = a });
});

Deno.test("a shutdown says BYE to every session still open", async () => {
  await withImap({ idleTimeoutMs: 60_000, idleKeepaliveMs: 60_000 }, async (port, close) => {
    const clients = [];
    for (let i = 0; i < 3; i++) {
      const c = await client(port);
      await c.until(/^\* OK/m);
      clients.push(c);
    }
    // A session that ended before the shutdown is not told again.
    clients[1]!.conn.close();
    const closed = close();
    for (const c of [clients[0]!, clients[2]!]) {
      assert.match(await c.until(/^\* BYE/m, 3000), /^\* BYE Server shutting down/m);
      c.conn.close();
    }
    await closed;
  });
});
