/**
 * TlsChannel over an in-memory connection whose writes are counted: the driver's own choices
 * (how many writes a handshake takes, how a deferred signature is answered).
 */
import assert from "node:assert/strict";
import { type ClientTicket, TlsClientConnection } from "../../../protocol/tls/client.ts";
import { TicketKeys, TicketUses } from "../../../protocol/tls/mod.ts";
import {
  type GateStep,
  HandshakeGate,
  LIGHT_RECORDS,
} from "../../../server/connection/handshake_gate.ts";
import { TlsChannel } from "../../../server/connection/tls_channel.ts";
import { recordBuffer, recycleSealBuffer } from "../../../protocol/tls/seal_buffers.ts";
import { keyFixture, provider } from "../../protocol/tls/_pair.ts";

/** A P-256 server channel over `conn` whose steps go through `gate` until the peer is trusted. */
function acceptGated(
  conn: Parameters<typeof TlsChannel.accept>[0],
  gate: HandshakeGate,
  options: { handshakeTimeoutMs: number; gateUntilTrusted: boolean } = {
    handshakeTimeoutMs: 5000,
    gateUntilTrusted: true,
  },
): Promise<TlsChannel> {
  const key = keyFixture("P-256");
  return TlsChannel.accept(conn, {
    provider,
    certificateChain: key.chain,
    privateKey: key.privateKey,
  }, { ...options, gate });
}

/** A Deno.Conn stand-in wired to an in-memory TLS client; counts the server's writes. */
function memoryConn(client: TlsClientConnection) {
  const writes: number[] = [];
  let inbox: Uint8Array[] = [];
  let wake: (() => void) | null = null;
  let closed = false;
  const pushToServer = () => {
    const out = client.takeOutgoing();
    if (out.length > 0) {
      inbox.push(out);
      wake?.();
    }
  };
  const conn = {
    async read(buffer: Uint8Array): Promise<number | null> {
      while (inbox.length === 0) {
        if (closed) return null;
        await new Promise<void>((r) => (wake = r));
        wake = null;
      }
      const chunk = inbox.shift()!;
      const n = Math.min(chunk.length, buffer.length);
      buffer.set(chunk.subarray(0, n));
      if (n < chunk.length) inbox = [chunk.subarray(n), ...inbox];
      return n;
    },
    write(data: Uint8Array): Promise<number> {
      writes.push(data.length);
      client.receive(data.slice());
      pushToServer();
      return Promise.resolve(data.length);
    },
    close() {
      closed = true;
      wake?.();
    },
  };
  return { conn: conn as unknown as Deno.Conn, writes, start: pushToServer };
}

/**
 * A P-256 server channel accepted over `memoryConn` from a fresh in-memory client; `extra` joins
 * the server options, `options` the accept options (a 5 s handshake timeout by default).
 */
async function acceptInMemory(
  extra: Partial<Parameters<typeof TlsChannel.accept>[1]> = {},
  options: Partial<Parameters<typeof TlsChannel.accept>[2]> = {},
) {
  const key = keyFixture("P-256");
  const client = new TlsClientConnection({ provider, verifyServer: () => key.publicKey });
  const { conn, writes, start } = memoryConn(client);
  start();
  const channel = await TlsChannel.accept(conn, {
    provider,
    certificateChain: key.chain,
    privateKey: key.privateKey,
    ...extra,
  }, { handshakeTimeoutMs: 5000, ...options });
  return { client, conn, writes, channel };
}

for (const signing of ["sync", "async"] as const) {
  Deno.test(`TlsChannel (${signing} signing) sends the TLS 1.3 tickets with the first write: two writes up to the greeting`, async () => {
    const { client, writes, channel } = await acceptInMemory({
      ticketKeys: new TicketKeys({ provider, count: 1, keyLifetimeMs: 60_000 }),
    }, { signing });
    assert.equal(writes.length, 1, "the server flight only");
    await channel.write(new TextEncoder().encode("* OK ready\r\n"));
    assert.equal(writes.length, 2, "the tickets and the greeting together");
    assert.ok(client.handshakeComplete);
    assert.equal(new TextDecoder().decode(client.takePlaintext()), "* OK ready\r\n");
    await channel.close();
  });
}

Deno.test("TlsChannel gives back the buffer of a write queued behind one that failed", async () => {
  const { conn, channel } = await acceptInMemory();
  // The peer is gone: every write from now on fails, as after a reset.
  (conn as { write(d: Uint8Array): Promise<number> }).write = () =>
    Promise.reject(new Deno.errors.ConnectionReset("reset"));
  const first = channel.write(new TextEncoder().encode("* OK ready\r\n"));
  const second = channel.write(new TextEncoder().encode("* second\r\n"));
  await assert.rejects(first);
  await assert.rejects(second);
  // The second write's records never reached the socket; their buffer is the pool's newest.
  // Its record: application_data of 10 bytes of text, its content type and the tag.
  const reused = recordBuffer();
  assert.deepEqual([...reused.subarray(0, 5)], [0x17, 0x03, 0x03, 0, 10 + 1 + 16]);
  recycleSealBuffer(reused);
  await channel.close();
});

Deno.test("TlsChannel: a write that finds the connection reset ends reading without another read (s_time's RST after its Finished)", async () => {
  const { client, conn, channel } = await acceptInMemory({
    ticketKeys: new TicketKeys({ provider, count: 1, keyLifetimeMs: 60_000 }),
    halfRtt: true,
  });
  // Half-RTT: the flight leaves with the greeting, and the client answers with its Finished.
  await channel.write(new TextEncoder().encode("* OK ready\r\n"));
  assert.ok(client.handshakeComplete);
  // Then the client resets the connection: writes fail, and a read would only see the end.
  const socket = conn as {
    read(b: Uint8Array): Promise<number | null>;
    write(d: Uint8Array): Promise<number>;
  };
  const read = socket.read.bind(socket);
  let reset = false;
  let readsAfterReset = 0;
  socket.read = (b) => {
    if (!reset) return read(b);
    readsAfterReset++;
    return Promise.resolve(null);
  };
  socket.write = () => {
    reset = true;
    return Promise.reject(new Deno.errors.ConnectionReset("reset"));
  };
  // The read takes the client's Finished; the tickets' write then fails.
  assert.equal(await channel.read(), null);
  assert.equal(readsAfterReset, 0);
  assert.equal(channel.closeReason, "connection reset");
  await channel.close();
});

Deno.test("TlsChannel reads of an unauthenticated peer wait at the handshake gate; after trust() they do not", async () => {
  const key = keyFixture("P-256");
  const client = new TlsClientConnection({ provider, verifyServer: () => key.publicKey });
  const { conn, start } = memoryConn(client);
  let hold = false;
  const held: (() => void)[] = [];
  // Budget 0: every step waits for a turn, and the test decides when turns run.
  const gate = new HandshakeGate({
    budgetMs: 0,
    defer: (turn) => hold ? void held.push(turn) : void setTimeout(turn, 0),
  });
  start();
  const channel = await acceptGated(conn, gate);
  await channel.write(new TextEncoder().encode("* OK\r\n"));
  await new Promise((r) => setTimeout(r, 10)); // turns already scheduled run out
  hold = true;
  const send = (text: string) => {
    client.send(new TextEncoder().encode(text));
    start();
  };
  send("a1 LOGIN\r\n");
  let got: Uint8Array | null = null;
  const reading = channel.read().then((b) => (got = b));
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(got, null, "the untrusted read waits for a turn of the gate");
  assert.equal(gate.waiting, 1);
  hold = false;
  for (const turn of held.splice(0)) turn();
  await reading;
  assert.equal(new TextDecoder().decode(got!), "a1 LOGIN\r\n");

  channel.trust();
  hold = true;
  send("a2 NOOP\r\n");
  const next = await channel.read();
  assert.equal(new TextDecoder().decode(next!), "a2 NOOP\r\n");
  assert.equal(gate.waiting, 0);
  hold = false;
  await channel.close();
});

Deno.test("TlsChannel drops a ClientHello still waiting at the gate when the handshake times out", async () => {
  const key = keyFixture("P-256");
  const client = new TlsClientConnection({ provider, verifyServer: () => key.publicKey });
  const { conn, writes, start } = memoryConn(client);
  const held: (() => void)[] = [];
  const gate = new HandshakeGate({ budgetMs: 0, defer: (turn) => void held.push(turn) });
  // Budget 0: the ClientHello waits for a turn, and the test decides when turns run.
  start();
  const accepting = acceptGated(conn, gate, { handshakeTimeoutMs: 30, gateUntilTrusted: false });
  const failed = assert.rejects(accepting, /Handshake timed out/);
  await new Promise((r) => setTimeout(r, 60));
  assert.equal(gate.waiting, 1, "the ClientHello waits for a turn");
  for (let i = 0; i < 5 && held.length > 0; i++) for (const turn of held.splice(0)) turn();
  await failed;
  assert.deepEqual(writes, [], "no ServerHello: the step was dropped unrun");
  assert.equal(gate.waiting, 0);
});

Deno.test("TlsChannel passes an unauthenticated peer's first records to the gate as light, the rest as bulk", async () => {
  const key = keyFixture("P-256");
  const client = new TlsClientConnection({ provider, verifyServer: () => key.publicKey });
  const { conn, start } = memoryConn(client);
  const kinds: GateStep[] = [];
  const gate = new class extends HandshakeGate {
    override run<T>(step: () => T, kind: GateStep = "continuing"): Promise<T> {
      kinds.push(kind);
      return super.run(step, kind);
    }
  }();
  start();
  const channel = await acceptGated(conn, gate);
  kinds.length = 0;
  for (let i = 0; i < LIGHT_RECORDS + 2; i++) {
    client.send(new TextEncoder().encode(`a${i} NOOP\r\n`));
    start();
    assert.equal(new TextDecoder().decode((await channel.read())!), `a${i} NOOP\r\n`);
  }
  assert.deepEqual(kinds, [
    ...Array(LIGHT_RECORDS).fill("record"),
    "bulk",
    "bulk",
  ]);
  await channel.close();
});

Deno.test("TlsChannel: after trust() the peer gets a vouched ticket; resuming with it skips the queue of handshakes and the gate", async () => {
  const key = keyFixture("P-256");
  const ticketKeys = new TicketKeys({ provider });
  // One use per ticket: a used-up vouched ticket's full handshake waits like any other.
  const ticketUses = new TicketUses({ maxUses: 1 });
  const kinds: GateStep[] = [];
  const gate = new class extends HandshakeGate {
    override run<T>(step: () => T, kind: GateStep = "continuing"): Promise<T> {
      kinds.push(kind);
      return super.run(step, kind);
    }
  }();
  const encoder = new TextEncoder();
  /** One connection: greeting, a command, and `login` (trust()) before its reply. */
  const connection = async (
    resumeWith: ClientTicket | undefined,
    login: boolean,
  ): Promise<{ client: TlsClientConnection; channel: TlsChannel; kinds: GateStep[] }> => {
    kinds.length = 0;
    const client = new TlsClientConnection({
      provider,
      verifyServer: () => key.publicKey,
      ...(resumeWith ? { resumeWith } : {}),
    });
    const { conn, start } = memoryConn(client);
    start();
    const channel = await TlsChannel.accept(conn, {
      provider,
      certificateChain: key.chain,
      privateKey: key.privateKey,
      ticketKeys,
      ticketUses,
    }, { handshakeTimeoutMs: 5000, gate, gateUntilTrusted: true });
    await channel.write(encoder.encode("* OK\r\n"));
    client.send(encoder.encode("a1 LOGIN u p\r\n"));
    start();
    assert.equal(new TextDecoder().decode((await channel.read())!), "a1 LOGIN u p\r\n");
    if (login) channel.trust();
    await channel.write(encoder.encode("a1 OK\r\n"));
    return { client, channel, kinds: [...kinds] };
  };

  const first = await connection(undefined, true);
  assert.deepEqual(first.kinds, ["fresh", "continuing", "record"]);
  assert.equal(first.client.tickets.length, 3, "two with the handshake, one after the login");
  await first.channel.close();

  const returning = await connection(first.client.tickets.at(-1), false);
  assert.equal(returning.channel.info().resumed, true);
  assert.deepEqual(returning.kinds, ["vouched", "vouched"], "its records skip the gate");
  await returning.channel.close();

  const usedUp = await connection(first.client.tickets.at(-1), false);
  assert.equal(usedUp.channel.info().resumed, false);
  assert.deepEqual(usedUp.kinds, ["fresh", "continuing", "record"], "used up: no lane");
  await usedUp.channel.close();

  const notLoggedIn = await connection(first.client.tickets[0], false);
  assert.equal(notLoggedIn.channel.info().resumed, true);
  assert.deepEqual(notLoggedIn.kinds, ["fresh", "continuing", "record"]);
  assert.equal(notLoggedIn.client.tickets.length, 2, "no login, no vouched ticket");
  await notLoggedIn.channel.close();
});
