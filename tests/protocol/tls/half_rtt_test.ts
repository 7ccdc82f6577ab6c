/**
 * Half-RTT (`ServerConfig.halfRtt`, RFC 8446 Section 2) and early tickets (Section 4.6.1), in
 * memory: without a client certificate the server may send data before the client's Finished,
 * and sends its tickets as soon as the client's change_cipher_spec arrives alone; the client's
 * Finished is still verified before its data is accepted, and anything that involves a client
 * certificate waits for the full handshake as before.
 */
import assert from "node:assert/strict";
import type { ServerConfig } from "../../../protocol/tls/server.ts";
import { TicketUses } from "../../../protocol/tls/session13.ts";
import { TicketKeys } from "../../../protocol/tls/ticket_keys.ts";
import { HandshakeType } from "../../../protocol/tls/wire.ts";
import {
  dec,
  enc,
  fatalOf,
  keyFixture,
  kinds,
  makePair,
  type Pair,
  provider,
  run,
  stubVerifier,
} from "./_pair.ts";

function halfRtt(extra: Partial<ServerConfig> = {}): Partial<ServerConfig> {
  return {
    ticketKeys: new TicketKeys({ provider }),
    ticketUses: new TicketUses(),
    halfRtt: true,
    ...extra,
  };
}

/** Delivers the ClientHello to the server and keeps its events. */
function afterHello(p: Pair): void {
  p.server.receive(p.client.takeOutgoing());
  p.serverEvents.push(...p.server.takeEvents());
}

/** Both tickets of `p`'s client resume, each again half-RTT. */
function assertTicketsResume(server: Partial<ServerConfig>, p: Pair): void {
  assert.equal(p.client.tickets.length, 2);
  for (const ticket of p.client.tickets) {
    const again = makePair(server, { resumeWith: ticket });
    afterHello(again);
    assert.equal(again.server.canSend, true);
    again.server.send(enc("* OK again\r\n"));
    run(again);
    assert.deepEqual(kinds(again.serverEvents), ["handshakeComplete"]);
    assert.equal(again.server.info().resumed, true);
    assert.equal(dec(again.client.takePlaintext()), "* OK again\r\n");
  }
}

Deno.test("half-RTT: data reaches the client before its Finished, the tickets follow its Finished", () => {
  const server = halfRtt();
  const p = makePair(server);
  afterHello(p);
  assert.equal(p.server.canSend, true);
  assert.equal(p.server.handshakeComplete, false);
  p.server.send(enc("* OK ready\r\n"));
  // One delivery: the flight and the data.
  p.client.receive(p.server.takeOutgoing());
  assert.deepEqual(kinds(p.client.takeEvents()), ["handshakeComplete"]);
  assert.equal(dec(p.client.takePlaintext()), "* OK ready\r\n");
  assert.equal(p.client.tickets.length, 0);
  // The client's change_cipher_spec, Finished and first command, in one delivery: the tickets
  // answer at once (that write also acknowledges the client's flight).
  p.client.send(enc("a LOGIN x y\r\n"));
  p.server.receive(p.client.takeOutgoing());
  assert.deepEqual(kinds(p.server.takeEvents()), ["handshakeComplete"]);
  assert.equal(dec(p.server.takePlaintext()), "a LOGIN x y\r\n");
  p.client.receive(p.server.takeOutgoing());
  assertTicketsResume(server, p);
});

Deno.test("half-RTT: a change_cipher_spec alone brings the tickets at once, from the predicted Finished", () => {
  const server = halfRtt();
  const p = makePair(server);
  afterHello(p);
  p.server.send(enc("* OK ready\r\n"));
  p.client.receive(p.server.takeOutgoing());
  const second = p.client.takeOutgoing();
  // The client's change_cipher_spec record (6 bytes), then its Finished, as a client whose
  // Nagle's algorithm holds the Finished sends them.
  assert.deepEqual([...second.subarray(0, 6)], [20, 3, 3, 0, 1, 1]);
  p.server.receive(second.subarray(0, 6));
  assert.equal(p.server.handshakeComplete, false);
  p.client.receive(p.server.takeOutgoing());
  assert.equal(p.client.tickets.length, 2, "the tickets answer the change_cipher_spec");
  p.server.receive(second.subarray(6));
  assert.deepEqual(kinds(p.server.takeEvents()), ["handshakeComplete"]);
  p.server.send(enc("x"));
  p.client.receive(p.server.takeOutgoing());
  assert.equal(p.client.tickets.length, 2, "no second round of tickets");
  assertTicketsResume(server, p);
});

Deno.test("half-RTT keeps the resumption secret for one vouched ticket, after early tickets too", () => {
  for (const early of [false, true]) {
    const p = makePair(halfRtt());
    afterHello(p);
    p.client.receive(p.server.takeOutgoing());
    const second = p.client.takeOutgoing();
    if (early) p.server.receive(second.subarray(0, 6));
    p.server.receive(second.subarray(early ? 6 : 0));
    assert.equal(p.server.handshakeComplete, true);
    run(p);
    assert.equal(p.client.tickets.length, 2);
    p.server.vouch();
    run(p);
    assert.equal(p.client.tickets.length, 3);
    p.server.vouch();
    run(p);
    assert.equal(p.client.tickets.length, 3, "one vouched ticket per connection");
  }
});

Deno.test("without half-RTT nothing can be sent before the client's Finished", () => {
  const p = makePair(halfRtt({ halfRtt: false }));
  afterHello(p);
  assert.equal(p.server.canSend, false);
  assert.throws(() => p.server.send(enc("early")), /before the handshake/);
  p.client.receive(p.server.takeOutgoing());
  assert.equal(p.client.tickets.length, 0, "the tickets wait for the client's Finished");
  run(p);
  assert.equal(p.client.tickets.length, 2);
});

Deno.test("half-RTT: a tampered client Finished is decrypt_error, and nothing of the client's is accepted", () => {
  const p = makePair(halfRtt(), {
    tamper: (type, msg) => {
      if (type === HandshakeType.finished) msg[msg.length - 1]! ^= 1;
      return msg;
    },
  });
  afterHello(p);
  p.server.send(enc("* OK ready\r\n"));
  run(p);
  assert.equal(fatalOf(p.serverEvents), "decrypt_error");
  assert.equal(p.server.handshakeComplete, false);
  assert.equal(p.server.takePlaintext().length, 0);
});

Deno.test("half-RTT waits for the full handshake when a client certificate is requested or resumed", () => {
  const clientKey = keyFixture("P-256");
  const verifier = stubVerifier([clientKey]);
  const server = halfRtt({ clientAuth: { mode: "optional", verifier } });
  // Requested, and not sent: the client's Finished follows a Certificate message.
  const none = makePair(server);
  afterHello(none);
  assert.equal(none.server.canSend, false);
  run(none);
  assert.deepEqual(kinds(none.serverEvents), ["handshakeComplete"]);
  assert.equal(none.client.tickets.length, 2);

  // A ticket that carries a client certificate: the resumption is checked again first.
  const certificate = { chain: clientKey.chain, privateKey: clientKey.privateKey };
  const first = makePair(server, { certificate });
  run(first);
  first.server.completePeerVerification({ ok: true });
  run(first);
  const again = makePair(server, { resumeWith: first.client.tickets[0]! });
  afterHello(again);
  assert.equal(again.server.canSend, false);
  run(again);
  assert.deepEqual(kinds(again.serverEvents), ["peerVerificationRequired"]);
  again.server.completePeerVerification({ ok: true });
  run(again);
  assert.equal(again.server.info().resumed, true);

  // A ticket from the handshake without a certificate resumes half-RTT.
  const plain = makePair(server, { resumeWith: none.client.tickets[0]! });
  afterHello(plain);
  assert.equal(plain.server.canSend, true);
});

Deno.test("without half-RTT a change_cipher_spec alone still brings the tickets at once", () => {
  const server = halfRtt({ halfRtt: false });
  const p = makePair(server);
  afterHello(p);
  assert.equal(p.server.canSend, false);
  p.client.receive(p.server.takeOutgoing());
  const second = p.client.takeOutgoing();
  p.server.receive(second.subarray(0, 6));
  p.client.receive(p.server.takeOutgoing());
  assert.equal(p.client.tickets.length, 2);
  p.server.receive(second.subarray(6));
  assert.deepEqual(kinds(p.server.takeEvents()), ["handshakeComplete"]);
  assert.equal(p.server.takeOutgoing().length, 0, "no second round of tickets");
  // The same ticket keys, now with half-RTT.
  assertTicketsResume({ ...server, halfRtt: true }, p);
});
