/**
 * The pending-signature state (`deferSigning`): the server flight waits for the driver's
 * signature, TLS 1.3 and TLS 1.2, with signatures that arrive late, out of order, never, or
 * as failures.
 */
import assert from "node:assert/strict";
import { webCryptoSigner } from "../../../protocol/crypto/mod.ts";
import type { SignatureRequest, SignatureResult, TlsEvent } from "../../../protocol/tls/mod.ts";
import {
  dec,
  enc,
  fatalOf,
  keyFixture,
  kinds,
  makePair,
  type PairLike,
  provider,
  run,
  stubVerifier,
} from "./_pair.ts";
import { makePair12 } from "./tls12/_pair12.ts";

const signer = webCryptoSigner(provider);

interface Deferred extends PairLike {
  server: PairLike["server"] & {
    completeSignature(r: SignatureResult): void;
    completePeerVerification(r: { ok: true }): void;
    takePlaintext(): Uint8Array;
    info(): { peer: { identity: { subject: string } } | null };
  };
  client: PairLike["client"] & { send(b: Uint8Array): void };
}

/** The requests the server has raised so far and not yet seen here. */
function takeRequests(p: PairLike, seen: Set<TlsEvent>): SignatureRequest[] {
  const out: SignatureRequest[] = [];
  for (const e of p.serverEvents) {
    if (e.kind === "signatureRequired" && !seen.has(e)) {
      seen.add(e);
      out.push(e.request);
    }
  }
  return out;
}

/** Runs a pair to the end, answering each signature request with `answer`. */
async function runDeferred(
  p: Deferred,
  answer: (r: SignatureRequest) => Promise<SignatureResult>,
): Promise<number> {
  const seen = new Set<TlsEvent>();
  let requests = 0;
  for (let i = 0; i < 5; i++) {
    run(p);
    const pending = takeRequests(p, seen);
    if (pending.length === 0) break;
    for (const r of pending) {
      requests++;
      p.server.completeSignature(await answer(r));
    }
  }
  return requests;
}

const webcrypto = async (r: SignatureRequest): Promise<SignatureResult> => ({
  ok: true,
  signature: await signer.sign(r.key, r.algorithm, r.message),
});

for (const key of ["P-256", "P-384", "rsa2048", "ed25519"] as const) {
  Deno.test(`a TLS 1.3 server with a ${key} key waits for its deferred signature, then completes`, async () => {
    const p = makePair({ deferSigning: true }, {}, keyFixture(key));
    run(p);
    assert.deepEqual(kinds(p.serverEvents), ["signatureRequired"]);
    assert.deepEqual(kinds(p.clientEvents), []);
    assert.equal(p.server.handshakeComplete, false);
    assert.equal(await runDeferred(p, webcrypto), 1);
    assert.deepEqual(kinds(p.clientEvents), ["handshakeComplete"]);
    assert.ok(p.server.handshakeComplete);
    p.client.send(enc("a1 NOOP\r\n"));
    run(p);
    assert.equal(dec(p.server.takePlaintext()), "a1 NOOP\r\n");
  });
}

for (
  const [suite, key] of [
    ["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "P-256"],
    ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "rsa2048"],
  ] as const
) {
  Deno.test(`a TLS 1.2 server with ${suite} waits for its deferred ServerKeyExchange signature`, async () => {
    const p = makePair12({ deferSigning: true }, { cipherSuites: [suite] }, keyFixture(key));
    run(p);
    assert.deepEqual(kinds(p.serverEvents), ["signatureRequired"]);
    assert.equal(p.server.takeOutgoing().length, 0);
    assert.equal(await runDeferred(p, webcrypto), 1);
    assert.deepEqual(kinds(p.clientEvents), ["handshakeComplete"]);
    assert.equal(p.server.info().version, "TLSv1.2");
    p.server.send(enc("* OK\r\n"));
    run(p);
    assert.equal(dec(p.client.takePlaintext()), "* OK\r\n");
  });
}

Deno.test("many deferred TLS 1.3 and 1.2 handshakes interleave, signatures answered out of order", async () => {
  const pairs: Deferred[] = [];
  for (let i = 0; i < 24; i++) {
    pairs.push(
      i % 3 === 2
        ? makePair12({ deferSigning: true }, {}, keyFixture("P-256"))
        : makePair({ deferSigning: true }, {}, keyFixture(i % 2 ? "P-256" : "rsa2048")),
    );
  }
  const waiting: { p: Deferred; r: SignatureRequest }[] = [];
  for (const p of pairs) {
    run(p);
    const [r] = takeRequests(p, new Set());
    assert.ok(r !== undefined);
    waiting.push({ p, r });
  }
  // All signatures in flight at once; they are applied last-first.
  const results = await Promise.all(waiting.map(({ r }) => webcrypto(r)));
  for (let i = waiting.length - 1; i >= 0; i--) waiting[i]!.p.server.completeSignature(results[i]!);
  pairs.forEach((p, i) => {
    run(p);
    assert.deepEqual(kinds(p.clientEvents), ["handshakeComplete"], `pair ${i}`);
    p.client.send(enc(`a${i} NOOP\r\n`));
    run(p);
    assert.equal(dec(p.server.takePlaintext()), `a${i} NOOP\r\n`);
  });
});

Deno.test("a signature that belongs to another handshake fails the client's check", async () => {
  const a = makePair({ deferSigning: true });
  const b = makePair({ deferSigning: true });
  run(a);
  run(b);
  const [ra] = takeRequests(a, new Set());
  const [rb] = takeRequests(b, new Set());
  a.server.completeSignature(await webcrypto(rb!));
  b.server.completeSignature(await webcrypto(ra!));
  run(a);
  run(b);
  assert.equal(fatalOf(a.clientEvents), "decrypt_error");
  assert.equal(fatalOf(b.clientEvents), "decrypt_error");
});

Deno.test("a failed signature ends the handshake with internal_error (TLS 1.3 and 1.2)", async () => {
  for (const p of [makePair({ deferSigning: true }), makePair12({ deferSigning: true })]) {
    await runDeferred(p, () => Promise.resolve({ ok: false, reason: "key unavailable" }));
    assert.equal(fatalOf(p.serverEvents), "internal_error");
    assert.equal(fatalOf(p.clientEvents), "internal_error (received)");
    assert.ok(p.server.closed);
  }
});

Deno.test("a connection closed while its signature is pending sends no more of its flight", async () => {
  for (const p of [makePair({ deferSigning: true }), makePair12({ deferSigning: true })]) {
    run(p);
    const [r] = takeRequests(p, new Set());
    const before = p.server.takeOutgoing();
    p.client.receive(before);
    p.server.close();
    const closing = p.server.takeOutgoing();
    p.server.completeSignature(await webcrypto(r!));
    assert.equal(p.server.takeOutgoing().length, 0);
    assert.equal(p.server.handshakeComplete, false);
    p.client.receive(closing);
    assert.ok(!kinds(p.client.takeEvents()).includes("handshakeComplete"));
  }
});

Deno.test("a late signature after a fatal error is ignored", async () => {
  for (const p of [makePair({ deferSigning: true }), makePair12({ deferSigning: true })]) {
    run(p);
    const [r] = takeRequests(p, new Set());
    p.server.takeOutgoing();
    // More held input than the engine keeps while it waits: the connection fails at once.
    const record = new Uint8Array(5 + 16_384);
    record.set([23, 3, 3, 0x40, 0x00]);
    for (let i = 0; i < 70 && !p.server.closed; i++) p.server.receive(record);
    assert.equal(fatalOf(p.server.takeEvents()), "internal_error");
    p.server.takeOutgoing();
    p.server.completeSignature(await webcrypto(r!));
    assert.equal(p.server.takeOutgoing().length, 0);
    assert.equal(p.server.handshakeComplete, false);
  }
});

Deno.test("input that arrives while the signature is pending is held, then judged in order", async () => {
  const p = makePair({ deferSigning: true });
  const hello = p.client.takeOutgoing();
  // A second handshake record right after the ClientHello: nothing may follow it yet.
  const extra = new Uint8Array([22, 3, 3, 0, 8, 20, 0, 0, 4, 1, 2, 3, 4]);
  p.server.receive(hello);
  p.server.receive(extra);
  p.serverEvents.push(...p.server.takeEvents());
  const [r] = takeRequests(p, new Set());
  assert.ok(r !== undefined);
  assert.equal(fatalOf(p.serverEvents), null);
  p.server.completeSignature(await webcrypto(r));
  p.serverEvents.push(...p.server.takeEvents());
  assert.equal(fatalOf(p.serverEvents), "unexpected_message");
});

Deno.test("a deferred signature signs exactly what an inline one would", () => {
  const p = makePair({ deferSigning: true });
  run(p);
  const [r] = takeRequests(p, new Set());
  const key = keyFixture("P-256");
  const signature = provider.sign(r!.key, r!.algorithm, r!.message);
  assert.ok(provider.verify(key.publicKey, r!.algorithm, r!.message, signature));
  assert.equal(dec(r!.message.subarray(0, 64)), " ".repeat(64));
  assert.equal(dec(r!.message.subarray(64, 97)), "TLS 1.3, server CertificateVerify");
  p.server.completeSignature({ ok: true, signature });
  run(p);
  assert.deepEqual(kinds(p.clientEvents), ["handshakeComplete"]);
});

Deno.test("with client certificates, the deferred signature comes first, then the peer check (TLS 1.3 and 1.2)", async () => {
  const clientKey = keyFixture("P-384");
  const options = {
    deferSigning: true,
    clientAuth: { mode: "required" as const, verifier: stubVerifier([clientKey]) },
  };
  const certificate = { chain: clientKey.chain, privateKey: clientKey.privateKey };
  for (const p of [makePair(options, { certificate }), makePair12(options, { certificate })]) {
    await runDeferred(p, webcrypto);
    assert.deepEqual(kinds(p.serverEvents), ["signatureRequired", "peerVerificationRequired"]);
    p.server.completePeerVerification({ ok: true });
    run(p);
    assert.deepEqual(kinds(p.clientEvents), ["handshakeComplete"]);
    assert.equal(p.server.info().peer?.identity.subject, "CN=test");
  }
});
