import assert from "node:assert/strict";
import { HandshakeType } from "../../../protocol/tls/wire.ts";
import { CertificateError, type ClientCertVerifier } from "../../../protocol/x509/identity.ts";
import { dec, enc, fatalOf, keyFixture, kinds, makePair, run, stubVerifier } from "./_pair.ts";

const clientKey = keyFixture("P-256");

function auth(
  mode: "none" | "optional" | "required",
  verifier: ClientCertVerifier = stubVerifier([clientKey]),
) {
  return { clientAuth: { mode, verifier } };
}

const withCert = (k = clientKey) => ({ certificate: { chain: k.chain, privateKey: k.privateKey } });

Deno.test("required client auth waits for peer verification and then delivers held data", () => {
  const p = makePair(auth("required"), withCert());
  run(p);
  assert.deepEqual(kinds(p.serverEvents), ["peerVerificationRequired"]);
  assert.equal(p.server.handshakeComplete, false);
  p.client.send(enc("a1 CAPABILITY\r\n"));
  run(p);
  assert.equal(p.server.takePlaintext().length, 0, "no data before verification completes");
  p.server.completePeerVerification({ ok: true });
  assert.deepEqual(kinds(p.server.takeEvents()), ["handshakeComplete"]);
  assert.equal(dec(p.server.takePlaintext()), "a1 CAPABILITY\r\n");
  assert.equal(p.server.info().peer?.identity.subject, "CN=test");
});

Deno.test("a rejected peer verification sends its alert (certificate_revoked)", () => {
  const p = makePair(auth("required"), withCert());
  run(p);
  p.server.completePeerVerification({
    ok: false,
    alert: "certificate_revoked",
    reason: "Not in LDAP",
  });
  assert.equal(fatalOf(p.server.takeEvents()), "certificate_revoked");
  run(p);
  assert.equal(fatalOf(p.clientEvents), "certificate_revoked (received)");
});

Deno.test("an empty Certificate under required client auth is certificate_required", () => {
  const p = makePair(auth("required"));
  run(p);
  assert.equal(fatalOf(p.serverEvents), "certificate_required");
});

Deno.test("an empty Certificate under optional client auth gives an unauthenticated session", () => {
  const p = makePair(auth("optional"));
  run(p);
  assert.deepEqual(kinds(p.serverEvents), ["handshakeComplete"]);
  assert.equal(p.server.info().peer, null);
});

Deno.test("client auth mode none sends no CertificateRequest", () => {
  const v = stubVerifier([clientKey]);
  const p = makePair(auth("none", v), withCert());
  run(p);
  assert.deepEqual(kinds(p.serverEvents), ["handshakeComplete"]);
  assert.equal(v.calls, 0);
});

for (const kind of ["P-384", "ed25519", "rsa2048"] as const) {
  Deno.test(`a ${kind} client certificate is verified`, () => {
    const k = keyFixture(kind);
    const p = makePair(auth("required", stubVerifier([k])), withCert(k));
    run(p);
    assert.deepEqual(kinds(p.serverEvents), ["peerVerificationRequired"]);
  });
}

Deno.test("a verifier rejection passes its alert through", () => {
  const expired: ClientCertVerifier = {
    authorityNames: [],
    verify() {
      throw new CertificateError("certificate_expired", "Expired");
    },
  };
  const p = makePair(auth("required", expired), withCert());
  run(p);
  assert.equal(fatalOf(p.serverEvents), "certificate_expired");
  const unknown = makePair(auth("required", stubVerifier([])), withCert());
  run(unknown);
  assert.equal(fatalOf(unknown.serverEvents), "unknown_ca");
});

function tamperCertificateVerify(edit: (msg: Uint8Array) => Uint8Array) {
  return {
    ...withCert(),
    tamper: (type: number, msg: Uint8Array) =>
      type === HandshakeType.certificate_verify ? edit(msg) : msg,
  };
}

Deno.test("a bad client CertificateVerify signature is decrypt_error", () => {
  const p = makePair(
    auth("required"),
    tamperCertificateVerify((m) => {
      // Flip a bit inside r (the DER header is 4 + 2 bytes in).
      m[12]! ^= 1;
      return m;
    }),
  );
  run(p);
  assert.equal(fatalOf(p.serverEvents), "decrypt_error");
});

Deno.test("an rsa_pkcs1 CertificateVerify is refused with illegal_parameter", () => {
  const p = makePair(
    auth("required"),
    tamperCertificateVerify((m) => {
      m[4] = 0x04;
      m[5] = 0x01;
      return m;
    }),
  );
  run(p);
  assert.equal(fatalOf(p.serverEvents), "illegal_parameter");
});

Deno.test("a CertificateVerify scheme that does not match the key is illegal_parameter", () => {
  const p = makePair(
    auth("required"),
    tamperCertificateVerify((m) => {
      m[4] = 0x08;
      m[5] = 0x07;
      return m;
    }),
  );
  run(p);
  assert.equal(fatalOf(p.serverEvents), "illegal_parameter");
});

const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

function derInt(v: bigint): number[] {
  let h = v.toString(16);
  if (h.length % 2) h = "0" + h;
  const bytes = h.match(/../g)!.map((x) => parseInt(x, 16));
  if (bytes[0]! & 0x80) bytes.unshift(0);
  return [2, bytes.length, ...bytes];
}

function readDerInt(b: Uint8Array, at: number): [bigint, number] {
  const len = b[at + 1]!;
  let v = 0n;
  for (let i = 0; i < len; i++) v = (v << 8n) | BigInt(b[at + 2 + i]!);
  return [v, at + 2 + len];
}

Deno.test("a high-S ECDSA client signature is accepted", () => {
  const p = makePair(
    auth("required"),
    tamperCertificateVerify((m) => {
      const sig = m.subarray(8);
      const [r, next] = readDerInt(sig, 2);
      const [s] = readDerInt(sig, next);
      // Always send the high-S form (s > n/2), whichever form the signer produced.
      const flipped = s > P256_N / 2n ? s : P256_N - s;
      const body = [...derInt(r), ...derInt(flipped)];
      const der = [0x30, body.length, ...body];
      const out = new Uint8Array(8 + der.length);
      out.set([
        HandshakeType.certificate_verify,
        0,
        0,
        4 + der.length,
        m[4]!,
        m[5]!,
        0,
        der.length,
      ]);
      out.set(der, 8);
      return out;
    }),
  );
  run(p);
  assert.deepEqual(kinds(p.serverEvents), ["peerVerificationRequired"]);
});

Deno.test("a client certificate under required auth arrives byte by byte", () => {
  const p = makePair(auth("required"), withCert());
  run(p, { chunk: 1 });
  assert.deepEqual(kinds(p.serverEvents), ["peerVerificationRequired"]);
  p.server.completePeerVerification({ ok: true });
  assert.deepEqual(kinds(p.server.takeEvents()), ["handshakeComplete"]);
});
