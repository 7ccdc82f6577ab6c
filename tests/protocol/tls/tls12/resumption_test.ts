import assert from "node:assert/strict";
import { TicketKeys } from "../../../../protocol/tls/ticket_keys.ts";
import { SessionCache } from "../../../../protocol/tls/tls12/session_cache.ts";
import type { ClientSession12 } from "../../../../protocol/tls/tls12/client12.ts";
import type { ServerOptions } from "../../../../protocol/tls/acceptor.ts";
import { decodeSession12, encodeSession12 } from "../../../../protocol/tls/tls12/session.ts";
import { dec, enc, fatalOf, keyFixture, kinds, provider, run, stubVerifier } from "../_pair.ts";
import { makePair12 } from "./_pair12.ts";
import type { Client12Config } from "../../../../protocol/tls/tls12/client12.ts";

function stores(now = () => Date.now()) {
  return {
    ticketKeys: new TicketKeys({ provider, now }),
    sessionCache: new SessionCache({ now }),
    now,
  };
}

function handshake(server: Partial<ServerOptions>, client: Partial<Client12Config>) {
  const p = makePair12(server, client);
  run(p);
  return p;
}

function firstSession(
  server: Partial<ServerOptions>,
  client: Partial<Client12Config>,
): ClientSession12 {
  const p = handshake(server, client);
  assert.equal(fatalOf(p.serverEvents), null);
  return p.client.session()!;
}

Deno.test("a session ticket resumes with an abbreviated handshake (RFC 5077)", () => {
  const s = stores();
  const session = firstSession(s, { offerTicket: true });
  assert.ok(session.ticket !== null && session.ticket.length > 0);
  const p = handshake(s, { offerTicket: true, resume: session });
  assert.equal(fatalOf(p.serverEvents), null);
  assert.equal(p.client.resumed, true);
  assert.equal(p.server.info().resumed, true);
  assert.equal(p.server.info().cipherSuite, "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256");
  p.client.send(enc("a1 NOOP\r\n"));
  run(p);
  assert.equal(dec(p.server.takePlaintext()), "a1 NOOP\r\n");
});

Deno.test("a client without tickets resumes from the session-ID cache", () => {
  const s = stores();
  const session = firstSession(s, {});
  assert.equal(session.ticket, null);
  assert.equal(session.sessionId.length, 32);
  assert.equal(s.sessionCache.size, 1);
  const p = handshake(s, { resume: session });
  assert.equal(p.server.info().resumed, true);
  assert.deepEqual(kinds(p.serverEvents), ["handshakeComplete"]);
});

Deno.test("a session without EMS gets no ticket and no session ID (RFC 7627, 5.3)", () => {
  const s = stores();
  const session = firstSession(s, { offerTicket: true, extendedMasterSecret: false });
  assert.equal(session.ticket, null);
  assert.equal(session.sessionId.length, 0);
  assert.equal(s.sessionCache.size, 0);
});

Deno.test("resuming an EMS session without EMS is handshake_failure", () => {
  const s = stores();
  const session = firstSession(s, { offerTicket: true });
  const p = handshake(s, { offerTicket: true, resume: session, extendedMasterSecret: false });
  assert.equal(fatalOf(p.serverEvents), "handshake_failure");
  const q = handshake(s, { resume: { ...session, ticket: null }, extendedMasterSecret: false });
  // Resumed by ID: the cache holds no session for this ID (a ticket was issued instead).
  assert.equal(fatalOf(q.serverEvents), null);
  assert.equal(q.server.info().resumed, false);
});

Deno.test("an unknown, forged or expired ticket falls back to a full handshake", () => {
  const t = { now: 1_700_000_000_000 };
  const s = stores(() => t.now);
  const session = firstSession(s, { offerTicket: true });
  const forged = session.ticket!.slice();
  forged[40]! ^= 1;
  for (const ticket of [forged, new Uint8Array(100)]) {
    const p = handshake(s, { offerTicket: true, resume: { ...session, ticket } });
    assert.equal(fatalOf(p.serverEvents), null);
    assert.equal(p.server.info().resumed, false);
  }
  t.now += 25 * 3600_000;
  const late = handshake(s, { offerTicket: true, resume: session });
  assert.equal(late.server.info().resumed, false);
  assert.equal(late.server.handshakeComplete, true);
});

Deno.test("a session is not resumed with a suite the client no longer offers", () => {
  const s = stores();
  const session = firstSession(s, { offerTicket: true });
  const p = handshake(s, {
    offerTicket: true,
    resume: session,
    cipherSuites: ["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"],
  });
  assert.equal(p.server.info().resumed, false);
  assert.equal(p.server.info().cipherSuite, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256");
});

Deno.test("a resumed session keeps its client certificate and the peer check runs again", () => {
  const clientKey = keyFixture("P-256");
  const verifier = stubVerifier([clientKey]);
  const s = { ...stores(), clientAuth: { mode: "optional" as const, verifier } };
  const certificate = { chain: clientKey.chain, privateKey: clientKey.privateKey };
  const first = makePair12(s, { offerTicket: true, certificate });
  run(first);
  assert.deepEqual(kinds(first.serverEvents), ["peerVerificationRequired"]);
  first.server.completePeerVerification({ ok: true });
  run(first);
  assert.equal(first.server.info().peer?.identity.subject, "CN=test");
  const session = first.client.session()!;
  assert.equal(verifier.calls, 1);

  const again = makePair12(s, { offerTicket: true, resume: session });
  run(again);
  assert.equal(verifier.calls, 2);
  assert.deepEqual(kinds(again.serverEvents), ["peerVerificationRequired"]);
  again.server.completePeerVerification({ ok: true });
  run(again);
  assert.deepEqual(kinds(again.serverEvents), ["peerVerificationRequired", "handshakeComplete"]);
  assert.equal(again.server.info().resumed, true);
  assert.equal(again.server.info().peer?.identity.subject, "CN=test");

  const revoked = makePair12(s, { offerTicket: true, resume: session });
  run(revoked);
  revoked.server.completePeerVerification({
    ok: false,
    alert: "certificate_revoked",
    reason: "gone",
  });
  run(revoked);
  assert.equal(fatalOf(revoked.serverEvents), "certificate_revoked");
  assert.equal(fatalOf(revoked.clientEvents), "certificate_revoked (received)");
});

Deno.test("a session with a certificate is not resumed once client_auth is none", () => {
  const clientKey = keyFixture("P-256");
  const verifier = stubVerifier([clientKey]);
  const base = stores();
  const s = { ...base, clientAuth: { mode: "optional" as const, verifier } };
  const first = makePair12(s, {
    offerTicket: true,
    certificate: { chain: clientKey.chain, privateKey: clientKey.privateKey },
  });
  run(first);
  first.server.completePeerVerification({ ok: true });
  run(first);
  const p = handshake(base, { offerTicket: true, resume: first.client.session()! });
  assert.equal(p.server.info().resumed, false);
  assert.equal(p.server.info().peer, null);
});

Deno.test("session states round-trip and anything else decodes to null", () => {
  const s = {
    suite: 0xc02b,
    masterSecret: new Uint8Array(48).fill(5),
    extendedMasterSecret: true,
    peerChain: [new Uint8Array([1, 2]), new Uint8Array([3])],
    serverName: new TextEncoder().encode("mail.example.org"),
    createdAt: 1_700_000_000_123,
  };
  assert.deepEqual(decodeSession12(encodeSession12(s)), s);
  const bytes = encodeSession12(s);
  for (let n = 0; n < bytes.length; n++) assert.equal(decodeSession12(bytes.subarray(0, n)), null);
  assert.equal(decodeSession12(new Uint8Array([0x13, 3, 3])), null);
});

Deno.test("the session-ID cache is bounded and expires entries", () => {
  const t = { now: 0 };
  const cache = new SessionCache({ maxEntries: 2, lifetimeMs: 1000, now: () => t.now });
  const session = (n: number) => ({
    suite: 0xc02b,
    masterSecret: new Uint8Array(48).fill(n),
    extendedMasterSecret: true,
    peerChain: [],
    serverName: new Uint8Array(0),
    createdAt: t.now,
  });
  const id = (n: number) => new Uint8Array(32).fill(n);
  cache.put(id(1), session(1));
  cache.put(id(2), session(2));
  cache.put(id(3), session(3));
  assert.equal(cache.size, 2);
  assert.equal(cache.get(id(1)), null);
  assert.equal(cache.get(id(3))?.masterSecret[0], 3);
  t.now = 1000;
  assert.equal(cache.get(id(3)), null);
  assert.equal(cache.get(new Uint8Array(0)), null);
});

Deno.test("a ticket under a retiring key resumes and is replaced by a fresh one", () => {
  const t = { now: 1_700_000_000_000 };
  const ticketKeys = new TicketKeys({ provider, now: () => t.now, keyLifetimeMs: 3600_000 });
  const s = { ticketKeys, now: () => t.now };
  const session = firstSession(s, { offerTicket: true });
  const fresh = handshake(s, { offerTicket: true, resume: session });
  assert.equal(fresh.server.info().resumed, true);
  assert.deepEqual(fresh.client.session()!.ticket, session.ticket);
  t.now += 3600_000;
  const renewed = handshake(s, { offerTicket: true, resume: session });
  assert.equal(fatalOf(renewed.serverEvents), null);
  assert.equal(renewed.server.info().resumed, true);
  const next = renewed.client.session()!;
  assert.notDeepEqual(next.ticket, session.ticket);
  assert.equal(ticketKeys.open(next.ticket!)!.stale, false);
  t.now += 3600_000;
  assert.equal(handshake(s, { offerTicket: true, resume: session }).server.info().resumed, false);
  assert.equal(handshake(s, { offerTicket: true, resume: next }).server.info().resumed, true);
});

Deno.test("a session is not resumed under another server name (RFC 6066, Section 3)", () => {
  const s = stores();
  const session = firstSession(s, { offerTicket: true, serverName: "mail.example.org" });
  const same = handshake(s, { offerTicket: true, resume: session, serverName: "mail.example.org" });
  assert.equal(same.server.info().resumed, true);
  const other = handshake(s, {
    offerTicket: true,
    resume: session,
    serverName: "imap.example.org",
  });
  assert.equal(fatalOf(other.serverEvents), null);
  assert.equal(other.server.info().resumed, false);
  const none = handshake(s, { offerTicket: true, resume: session });
  assert.equal(none.server.info().resumed, false);
});

Deno.test("a session with an oversized client chain gets an empty ticket and no cache entry", () => {
  const clientKey = keyFixture("P-256");
  const big = { ...clientKey, chain: [clientKey.chain[0]!, new Uint8Array(20_000)] };
  const verifier = stubVerifier([clientKey]);
  for (const offerTicket of [true, false]) {
    const s = { ...stores(), clientAuth: { mode: "optional" as const, verifier } };
    const p = makePair12(s, {
      offerTicket,
      certificate: { chain: big.chain, privateKey: clientKey.privateKey },
    });
    run(p);
    p.server.completePeerVerification({ ok: true });
    run(p);
    assert.equal(fatalOf(p.serverEvents), null);
    assert.equal(p.client.handshakeComplete, true);
    if (offerTicket) assert.equal(p.client.session()!.ticket!.length, 0);
    assert.equal(s.sessionCache.size, 0);
  }
});

Deno.test("the session-ID cache also bounds the bytes it holds", () => {
  const cache = new SessionCache({ maxBytes: 10_000 });
  const session = (chainBytes: number) => ({
    suite: 0xc02b,
    masterSecret: new Uint8Array(48),
    extendedMasterSecret: true,
    peerChain: [new Uint8Array(chainBytes)],
    serverName: new Uint8Array(0),
    createdAt: Date.now(),
  });
  const id = (n: number) => new Uint8Array(32).fill(n);
  for (let i = 1; i <= 5; i++) cache.put(id(i), session(3000));
  assert.equal(cache.size, 3);
  assert.ok(cache.bytes <= 10_000);
  assert.equal(cache.get(id(2)), null);
  assert.ok(cache.get(id(5)) !== null);
  cache.put(id(9), session(20_000));
  assert.equal(cache.get(id(9)), null);
  cache.delete(id(5));
  assert.equal(cache.size, 2);
});
