/**
 * Vouched tickets, in memory: the ticket a server sends when the application vouches for the
 * peer (a login), and spotting one in a ClientHello before the handshake runs.
 */
import assert from "node:assert/strict";
import type { ClientTicket } from "../../../protocol/tls/client.ts";
import type { ServerConfig } from "../../../protocol/tls/server.ts";
import { TicketUses } from "../../../protocol/tls/session13.ts";
import { TicketKeys } from "../../../protocol/tls/ticket_keys.ts";
import { offersVouchedTicket } from "../../../protocol/tls/vouched_ticket.ts";
import { kinds, makePair, type Pair, provider, run } from "./_pair.ts";

function resumption(): Pick<ServerConfig, "ticketKeys" | "ticketUses"> {
  return { ticketKeys: new TicketKeys({ provider }), ticketUses: new TicketUses() };
}

/** A full handshake, then the server vouches for the peer; the client's tickets so far. */
function vouchedConnection(server: Partial<ServerConfig>): { pair: Pair; tickets: ClientTicket[] } {
  const pair = makePair(server);
  run(pair);
  assert.deepEqual(kinds(pair.serverEvents), ["handshakeComplete"]);
  pair.server.vouch();
  run(pair);
  return { pair, tickets: pair.client.tickets };
}

/** The ClientHello a client resuming with `ticket` sends first. */
function helloWith(ticket: ClientTicket | undefined): Uint8Array {
  return makePair({}, ticket === undefined ? {} : { resumeWith: ticket }).client.takeOutgoing();
}

Deno.test("vouch sends one more ticket, once, and only that one is spotted as vouched", () => {
  const server = resumption();
  const { pair, tickets } = vouchedConnection(server);
  assert.equal(tickets.length, 3, "two after the handshake, one after vouch()");
  pair.server.vouch();
  run(pair);
  assert.equal(pair.client.tickets.length, 3, "a second vouch() sends nothing");
  const keys = server.ticketKeys!;
  assert.equal(offersVouchedTicket(helloWith(tickets[2]), keys), true);
  assert.equal(offersVouchedTicket(helloWith(tickets[0]), keys), false, "a handshake's ticket");
  assert.equal(offersVouchedTicket(helloWith(undefined), keys), false, "no ticket");
  // The application data still flows after the extra ticket.
  pair.server.send(new TextEncoder().encode("* OK\r\n"));
  run(pair);
  assert.equal(new TextDecoder().decode(pair.client.takePlaintext()), "* OK\r\n");
});

Deno.test("a resumption with a vouched ticket is reported as vouched, with a handshake's is not", () => {
  const server = resumption();
  const { tickets } = vouchedConnection(server);
  const vouched = makePair(server, { resumeWith: tickets[2]! });
  run(vouched);
  assert.equal(vouched.server.info().resumed, true);
  assert.equal(vouched.server.info().vouched, true);
  assert.equal(vouched.client.tickets.length, 2, "the resumed connection's own tickets are not");
  assert.equal(
    offersVouchedTicket(helloWith(vouched.client.tickets[0]), server.ticketKeys!),
    false,
  );
  const plain = makePair(server, { resumeWith: tickets[0]! });
  run(plain);
  assert.equal(plain.server.info().resumed, true);
  assert.equal(plain.server.info().vouched, false);
});

Deno.test("forged, tampered, foreign, expired or split vouched tickets are not spotted", () => {
  const server = resumption();
  const { tickets } = vouchedConnection(server);
  const keys = server.ticketKeys!;
  const t = tickets[2]!;
  const forged = { ...t, ticket: provider.randomBytes(t.ticket.length) };
  assert.equal(offersVouchedTicket(helloWith(forged), keys), false, "random bytes");
  const tampered = t.ticket.slice();
  tampered[tampered.length - 1]! ^= 1;
  assert.equal(offersVouchedTicket(helloWith({ ...t, ticket: tampered }), keys), false);
  assert.equal(
    offersVouchedTicket(helloWith(t), new TicketKeys({ provider })),
    false,
    "another server's keys",
  );
  const lifetimeMs = keys.ticketLifetimeSeconds * 1000;
  assert.equal(
    offersVouchedTicket(helloWith(t), keys, { now: Date.now() + lifetimeMs + 60_000 }),
    false,
  );
  const hello = helloWith(t);
  assert.equal(offersVouchedTicket(hello.subarray(0, hello.length - 1), keys), false, "cut short");
  assert.equal(offersVouchedTicket(new Uint8Array(0), keys), false);
  assert.equal(offersVouchedTicket(new TextEncoder().encode("a LOGIN x y\r\n"), keys), false);
});

Deno.test("a used-up vouched ticket is not spotted when the use counter is given", () => {
  const server = {
    ticketKeys: new TicketKeys({ provider }),
    ticketUses: new TicketUses({ maxUses: 1 }),
  };
  const { tickets } = vouchedConnection(server);
  const keys = server.ticketKeys;
  const uses = server.ticketUses;
  const hello = helloWith(tickets[2]);
  assert.equal(offersVouchedTicket(hello, keys, { uses }), true, "one use left");
  assert.equal(offersVouchedTicket(hello, keys, { uses }), true, "spotting records no use");
  const first = makePair(server, { resumeWith: tickets[2]! });
  run(first);
  assert.equal(first.server.info().vouched, true);
  assert.equal(offersVouchedTicket(hello, keys, { uses }), false, "used up");
  assert.equal(offersVouchedTicket(hello, keys), true, "without the counter, only the seal");
  // The used-up ticket's connection falls back to a full handshake, not a vouched one.
  const again = makePair(server, { resumeWith: tickets[2]! });
  run(again);
  assert.equal(again.server.info().resumed, false);
  assert.equal(again.server.info().vouched, false);
});

Deno.test("TicketUses.usable peeks without counting a use", () => {
  const uses = new TicketUses({ maxUses: 2, capacity: 1 });
  const id = new Uint8Array(16).fill(7);
  const now = Date.now();
  assert.equal(uses.usable(id, now), true);
  assert.equal(uses.take(id, now + 60_000, now), true);
  assert.equal(uses.usable(id, now), true, "one use left");
  assert.equal(uses.take(id, now + 60_000, now), true);
  assert.equal(uses.usable(id, now), false, "used up");
  assert.equal(uses.usable(new Uint8Array(16).fill(8), now), false, "full table");
});

Deno.test("no vouched ticket without ticket keys, with tickets off, or for a client that takes none", () => {
  const off = vouchedConnection({ ...resumption(), ticketsPerConnection: 0 });
  assert.equal(off.tickets.length, 0);
  const none = vouchedConnection({});
  assert.equal(none.tickets.length, 0);
  const server = resumption();
  const pair = makePair(server, { offerTickets: false });
  run(pair);
  pair.server.vouch();
  run(pair);
  assert.equal(pair.client.tickets.length, 0);
});
