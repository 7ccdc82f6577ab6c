import assert from "node:assert/strict";
import { dec, enc, fatalOf, kinds, run } from "../_pair.ts";
import { makePair12 } from "./_pair12.ts";
import type { CipherSuite12Name } from "../../../../protocol/tls/tls12/wire12.ts";

const ECDSA_SUITES: CipherSuite12Name[] = [
  "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
  "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
  "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
];

for (const suite of ECDSA_SUITES) {
  Deno.test(`a TLS 1.2 handshake with ${suite} carries data both ways`, () => {
    const p = makePair12({}, { cipherSuites: [suite] });
    run(p);
    assert.deepEqual(kinds(p.serverEvents), ["handshakeComplete"]);
    assert.deepEqual(kinds(p.clientEvents), ["handshakeComplete"]);
    assert.equal(p.server.info().version, "TLSv1.2");
    assert.equal(p.server.info().cipherSuite, suite);
    p.client.send(enc("a1 NOOP\r\n"));
    p.server.send(enc("* OK\r\n"));
    run(p);
    assert.equal(dec(p.server.takePlaintext()), "a1 NOOP\r\n");
    assert.equal(dec(p.client.takePlaintext()), "* OK\r\n");
    assert.equal(fatalOf(p.serverEvents), null);
  });
}
