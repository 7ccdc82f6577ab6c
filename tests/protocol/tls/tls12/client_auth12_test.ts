import assert from "node:assert/strict";
import { CertificateError } from "../../../../protocol/x509/identity.ts";
import { HandshakeType12 } from "../../../../protocol/tls/tls12/wire12.ts";
import { fatalOf, keyFixture, kinds, run, stubVerifier } from "../_pair.ts";
import { makePair12 } from "./_pair12.ts";
import type { PrivateKeyKind } from "../../../../protocol/crypto/provider.ts";

function auth(mode: "optional" | "required", kinds: PrivateKeyKind[] = ["P-256"]) {
  const verifier = stubVerifier(kinds.map(keyFixture));
  return { clientAuth: { mode, verifier }, verifier };
}

for (const kind of ["P-256", "P-384", "ed25519", "rsa2048"] as PrivateKeyKind[]) {
  Deno.test(`a ${kind} client certificate is verified, then waits for the peer check`, () => {
    const k = keyFixture(kind);
    const { clientAuth } = auth("required", [kind]);
    const p = makePair12({ clientAuth }, {
      certificate: { chain: k.chain, privateKey: k.privateKey },
    });
    run(p);
    assert.deepEqual(kinds(p.serverEvents), ["peerVerificationRequired"]);
    assert.equal(p.server.handshakeComplete, false);
    assert.equal(p.client.handshakeComplete, false);
    p.server.completePeerVerification({ ok: true });
    run(p);
    assert.deepEqual(kinds(p.serverEvents), ["peerVerificationRequired", "handshakeComplete"]);
    assert.equal(p.client.handshakeComplete, true);
    assert.equal(p.server.info().peer?.identity.subject, "CN=test");
  });
}

Deno.test("the directory's refusal is sent as its alert before the server's Finished", () => {
  const k = keyFixture("P-256");
  const { clientAuth } = auth("optional");
  const p = makePair12({ clientAuth }, {
    certificate: { chain: k.chain, privateKey: k.privateKey },
  });
  run(p);
  p.server.completePeerVerification({ ok: false, alert: "certificate_revoked", reason: "removed" });
  run(p);
  assert.equal(fatalOf(p.serverEvents), "certificate_revoked");
  assert.equal(fatalOf(p.clientEvents), "certificate_revoked (received)");
  assert.equal(p.client.handshakeComplete, false);
});

Deno.test("client_auth optional accepts an empty Certificate; required answers handshake_failure", () => {
  const optional = makePair12(auth("optional"));
  run(optional);
  assert.deepEqual(kinds(optional.serverEvents), ["handshakeComplete"]);
  assert.equal(optional.server.info().peer, null);
  const required = makePair12(auth("required"));
  run(required);
  assert.equal(fatalOf(required.serverEvents), "handshake_failure");
});

Deno.test("an unknown certificate gets the verifier's alert", () => {
  const stranger = keyFixture("P-384");
  const p = makePair12(auth("optional", ["P-256"]), {
    certificate: { chain: stranger.chain, privateKey: stranger.privateKey },
  });
  run(p);
  assert.equal(fatalOf(p.serverEvents), "unknown_ca");
  const bad = makePair12({
    clientAuth: {
      mode: "optional",
      verifier: {
        authorityNames: [],
        verify: () => {
          throw new CertificateError("certificate_expired", "Expired");
        },
      },
    },
  }, { certificate: { chain: stranger.chain, privateKey: stranger.privateKey } });
  run(bad);
  assert.equal(fatalOf(bad.serverEvents), "certificate_expired");
});

Deno.test("a bad CertificateVerify is decrypt_error; a wrong or SHA-1 scheme is illegal_parameter", () => {
  const k = keyFixture("P-256");
  const certificate = { chain: k.chain, privateKey: k.privateKey };
  const cv = (edit: (body: Uint8Array) => Uint8Array) => {
    const p = makePair12(auth("optional"), {
      certificate,
      tamper: (type, encoded) => {
        if (type !== HandshakeType12.certificate_verify) return encoded;
        const body = edit(encoded.slice(4));
        return new Uint8Array([type, 0, body.length >> 8, body.length & 0xff, ...body]);
      },
    });
    run(p);
    return fatalOf(p.serverEvents);
  };
  assert.equal(
    cv((b) => {
      b[b.length - 1]! ^= 1;
      return b;
    }),
    "decrypt_error",
  );
  assert.equal(cv((b) => (b.set([0x08, 0x04]), b)), "illegal_parameter");
  assert.equal(cv((b) => (b.set([0x02, 0x03]), b)), "illegal_parameter");
  assert.equal(cv((b) => b.subarray(0, 3)), "decode_error");
  const skipped = makePair12(auth("optional"), {
    certificate,
    tamper: (t, e) => t === HandshakeType12.certificate_verify ? null : e,
  });
  run(skipped);
  assert.equal(fatalOf(skipped.serverEvents), "unexpected_message");
});
