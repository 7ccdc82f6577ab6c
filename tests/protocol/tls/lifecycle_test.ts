import assert from "node:assert/strict";
import type { CryptoProvider, KeyExchangeGroup } from "../../../protocol/crypto/provider.ts";
import { TlsServerConnection } from "../../../protocol/tls/server.ts";
import { MAX_KEY_UPDATES_WITHOUT_DATA } from "../../../protocol/tls/_connection.ts";
import { RECORD_BUFFER, recycleSealBuffer } from "../../../protocol/tls/seal_buffers.ts";
import { dec, enc, fatalOf, keyFixture, kinds, makePair, provider, run } from "./_pair.ts";
import { hex, toHex } from "./_helpers.ts";
import { RFC8448 } from "./_rfc8448.ts";

function countRecords(bytes: Uint8Array): number {
  let n = 0;
  for (let at = 0; at + 5 <= bytes.length; at += 5 + ((bytes[at + 3]! << 8) | bytes[at + 4]!)) n++;
  return n;
}

Deno.test("a client-initiated KeyUpdate is answered once and data keeps flowing both ways", () => {
  const p = makePair();
  run(p);
  p.client.requestKeyUpdate();
  p.client.send(enc("after update"));
  p.server.receive(p.client.takeOutgoing());
  assert.equal(dec(p.server.takePlaintext()), "after update");
  const answer = p.server.takeOutgoing();
  assert.equal(countRecords(answer), 1, "exactly one KeyUpdate in reply");
  p.client.receive(answer);
  assert.equal(p.client.takeOutgoing().length, 0, "update_not_requested is not answered");
  p.server.send(enc("server after update"));
  p.client.receive(p.server.takeOutgoing());
  assert.equal(dec(p.client.takePlaintext()), "server after update");
  assert.equal(fatalOf([...p.client.takeEvents(), ...p.server.takeEvents()]), null);
});

Deno.test("several update_requested KeyUpdates in one batch get a single KeyUpdate in reply", () => {
  const p = makePair();
  run(p);
  for (let i = 0; i < 5; i++) p.client.requestKeyUpdate();
  p.client.send(enc("after five updates"));
  p.server.receive(p.client.takeOutgoing());
  assert.equal(dec(p.server.takePlaintext()), "after five updates");
  const answer = p.server.takeOutgoing();
  assert.equal(countRecords(answer), 1, "one KeyUpdate answers the whole batch");
  p.client.receive(answer);
  p.server.send(enc("still in step"));
  p.client.receive(p.server.takeOutgoing());
  assert.equal(dec(p.client.takePlaintext()), "still in step");
  assert.equal(fatalOf([...p.client.takeEvents(), ...p.server.takeEvents()]), null);
});

Deno.test("a run of KeyUpdates without application data ends with unexpected_message", () => {
  const p = makePair();
  run(p);
  for (let i = 0; i < MAX_KEY_UPDATES_WITHOUT_DATA; i++) {
    p.client.requestKeyUpdate();
    p.server.receive(p.client.takeOutgoing());
    p.client.receive(p.server.takeOutgoing());
  }
  assert.equal(fatalOf(p.server.takeEvents()), null, "the bound itself is tolerated");
  p.client.requestKeyUpdate();
  p.server.receive(p.client.takeOutgoing());
  assert.equal(fatalOf(p.server.takeEvents()), "unexpected_message");
});

Deno.test("application data resets the count of KeyUpdates in a row", () => {
  const p = makePair();
  run(p);
  for (let i = 0; i < 3 * MAX_KEY_UPDATES_WITHOUT_DATA; i++) {
    p.client.requestKeyUpdate();
    if (i % 10 === 9) p.client.send(enc("x"));
    p.server.receive(p.client.takeOutgoing());
    if (i % 10 === 9) p.server.send(enc("y"));
    p.client.receive(p.server.takeOutgoing());
  }
  assert.equal(fatalOf([...p.client.takeEvents(), ...p.server.takeEvents()]), null);
});

Deno.test("a server-initiated KeyUpdate is answered and data keeps flowing both ways", () => {
  const p = makePair();
  run(p);
  p.server.requestKeyUpdate();
  p.server.send(enc("s"));
  run(p);
  p.client.send(enc("c"));
  run(p);
  assert.equal(dec(p.client.takePlaintext()), "s");
  assert.equal(dec(p.server.takePlaintext()), "c");
  assert.equal(fatalOf([...p.clientEvents, ...p.serverEvents]), null);
});

Deno.test("the engine sends KeyUpdate by itself at the per-key record limit", () => {
  const p = makePair({ keyUpdateAfterRecords: 3 });
  run(p);
  for (let i = 0; i < 10; i++) p.server.send(enc(`${i}`));
  const out = p.server.takeOutgoing();
  // 10 data records and a KeyUpdate before the 4th, 7th and 10th.
  assert.equal(countRecords(out), 13);
  p.client.receive(out);
  assert.equal(dec(p.client.takePlaintext()), "0123456789");
  assert.equal(p.client.takeOutgoing().length, 0);
  assert.equal(fatalOf(p.client.takeEvents()), null);
});

Deno.test("close_notify from the client closes the server's input and is reported", () => {
  const p = makePair();
  run(p);
  p.client.send(enc("bye"));
  p.client.close();
  assert.throws(() => p.client.send(enc("more")));
  run(p);
  assert.equal(dec(p.server.takePlaintext()), "bye");
  assert.deepEqual(kinds(p.serverEvents), ["handshakeComplete", "peerClosed"]);
  assert.equal(p.server.closed, true);
  p.server.close();
  run(p);
  assert.deepEqual(kinds(p.clientEvents), ["handshakeComplete", "peerClosed"]);
});

Deno.test("close_notify from the server is reported to the client", () => {
  const p = makePair();
  run(p);
  p.server.close();
  run(p);
  assert.deepEqual(kinds(p.clientEvents), ["handshakeComplete", "peerClosed"]);
  assert.equal(p.client.closed, true);
});

Deno.test("send() before the handshake is a driver error, not a protocol event", () => {
  const p = makePair();
  assert.throws(() => p.server.send(enc("x")));
});

Deno.test("the server answers the RFC 8448 ClientHello with the trace's ServerHello", () => {
  const fixed: CryptoProvider = {
    ...provider,
    randomBytes: (n: number) => n === 32 ? hex(RFC8448.serverRandom) : provider.randomBytes(n),
    generateKeyShare: (g: KeyExchangeGroup) =>
      provider.keyShareFromPrivate(g, hex(RFC8448.serverPrivateKey)),
  };
  const k = keyFixture("P-256");
  const s = new TlsServerConnection({
    provider: fixed,
    certificateChain: k.chain,
    privateKey: k.privateKey,
    // The trace's server picked TLS_AES_128_GCM_SHA256 from the client's list.
    cipherSuites: ["TLS_AES_128_GCM_SHA256", "TLS_CHACHA20_POLY1305_SHA256"],
  });
  const ch = hex(RFC8448.clientHello);
  s.receive(new Uint8Array([22, 3, 1, ch.length >> 8, ch.length & 0xff, ...ch]));
  const out = s.takeOutgoing();
  const sh = hex(RFC8448.serverHello);
  assert.equal(toHex(out.subarray(0, 5 + sh.length)), "160303005a" + RFC8448.serverHello);
  assert.equal(s.info().cipherSuite, "TLS_AES_128_GCM_SHA256");
  assert.equal(s.info().sni, "server");
  assert.equal(fatalOf(s.takeEvents()), null);
});

Deno.test("a large send is sealed as 16 KiB records in one buffer and reads back intact", () => {
  const p = makePair();
  run(p);
  const data = provider.randomBytes(5 * 16384 + 100);
  p.server.send(data);
  const out = p.server.takeOutgoing();
  assert.equal(countRecords(out), 6);
  assert.equal(out.length, 6 * (5 + 1 + 16) + data.length);
  p.client.receive(out);
  assert.equal(toHex(p.client.takePlaintext()), toHex(data));
  assert.equal(fatalOf(p.client.takeEvents()), null);
});

Deno.test("a recycled buffer of sealed records serves the next large send, which reads back intact", () => {
  const p = makePair();
  run(p);
  const first = provider.randomBytes(16 * 16384);
  p.server.send(first);
  const out = p.server.takeOutgoing();
  const sealed = out.slice();
  p.client.receive(out);
  assert.equal(toHex(p.client.takePlaintext()), toHex(first));
  // The socket has taken it: the next send of the same size seals into the same buffer.
  recycleSealBuffer(out);
  recycleSealBuffer(out);
  recycleSealBuffer(new Uint8Array(out.length)); // not handed out by sealBuffer: ignored
  const second = new Uint8Array(16 * 16384).fill(0x42);
  p.server.send(second);
  const again = p.server.takeOutgoing();
  assert.equal(again, out);
  assert.notEqual(toHex(again), toHex(sealed));
  p.client.receive(again);
  assert.equal(toHex(p.client.takePlaintext()), toHex(second));
  assert.equal(fatalOf(p.client.takeEvents()), null);
  // Taken once: a third send gets a buffer of its own.
  p.server.send(second);
  assert.notEqual(p.server.takeOutgoing(), out);
});

Deno.test("small records are sealed one after another into a pooled record buffer", () => {
  const p = makePair();
  run(p);
  p.server.send(enc("one"));
  p.server.requestKeyUpdate();
  p.server.send(enc("two"));
  const out = p.server.takeOutgoing();
  assert.equal(countRecords(out), 3, "data, KeyUpdate, data, in order");
  assert.equal(out.byteOffset, 0);
  assert.equal(out.buffer.byteLength, RECORD_BUFFER, "a view of one record buffer, not a copy");
  p.client.receive(out);
  assert.equal(dec(p.client.takePlaintext()), "onetwo");
  // The transport gives back the view it wrote, here twice: the buffer is kept once.
  recycleSealBuffer(out);
  recycleSealBuffer(out);
  p.server.send(enc("three"));
  const again = p.server.takeOutgoing();
  assert.equal(again.buffer, out.buffer, "the next write reuses it");
  p.server.send(enc("four"));
  const other = p.server.takeOutgoing();
  assert.notEqual(other.buffer, out.buffer, "and only one write at a time has it");
  p.client.receive(again);
  p.client.receive(other);
  assert.equal(dec(p.client.takePlaintext()), "threefour");
  assert.equal(fatalOf([...p.client.takeEvents(), ...p.server.takeEvents()]), null);
});

Deno.test("a large send across the per-key record limit still rotates the key in time", () => {
  const p = makePair({ keyUpdateAfterRecords: 3 });
  run(p);
  p.server.send(enc("a"));
  const data = provider.randomBytes(4 * 16384);
  p.server.send(data);
  const out = p.server.takeOutgoing();
  // 5 data records and a KeyUpdate before the 4th.
  assert.equal(countRecords(out), 6);
  p.client.receive(out);
  assert.equal(toHex(p.client.takePlaintext()), toHex(new Uint8Array([97, ...data])));
  assert.equal(fatalOf(p.client.takeEvents()), null);
});
