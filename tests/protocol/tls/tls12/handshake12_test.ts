import assert from "node:assert/strict";
import type { KeyExchangeGroup, PrivateKeyKind } from "../../../../protocol/crypto/provider.ts";
import { TlsClientConnection } from "../../../../protocol/tls/client.ts";
import { acceptTls } from "../../../../protocol/tls/acceptor.ts";
import { findExtension } from "../../../../protocol/tls/messages/extensions.ts";
import { parseServerKeyExchange } from "../../../../protocol/tls/tls12/messages/server_key_exchange.ts";
import {
  type CipherSuite12Name,
  DOWNGRADE_TLS12,
  ExtensionType12,
  HandshakeType12,
  Scsv,
} from "../../../../protocol/tls/tls12/wire12.ts";
import { SignatureScheme, TLS12, TLS13 } from "../../../../protocol/tls/wire.ts";
import { dec, enc, fatalOf, keyFixture, kinds, provider, run } from "../_pair.ts";
import { makePair12 } from "./_pair12.ts";

const SUITES: [CipherSuite12Name, PrivateKeyKind][] = [
  ["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "P-256"],
  ["TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "P-384"],
  ["TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "ed25519"],
  ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "rsa2048"],
  ["TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "rsa2048"],
  ["TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "rsa2048"],
];

for (const [suite, key] of SUITES) {
  Deno.test(`a TLS 1.2 handshake with ${suite} and a ${key} key carries data both ways`, () => {
    const p = makePair12({}, { cipherSuites: [suite] }, keyFixture(key));
    run(p);
    assert.deepEqual(kinds(p.serverEvents), ["handshakeComplete"]);
    assert.deepEqual(kinds(p.clientEvents), ["handshakeComplete"]);
    const info = p.server.info();
    assert.equal(info.version, "TLSv1.2");
    assert.equal(info.cipherSuite, suite);
    assert.equal(info.extendedMasterSecret, true);
    assert.equal(info.resumed, false);
    const big = new Uint8Array(40_000).map((_, i) => i & 0xff);
    p.client.send(enc("a1 NOOP\r\n"));
    p.server.send(big);
    run(p);
    assert.equal(dec(p.server.takePlaintext()), "a1 NOOP\r\n");
    assert.deepEqual(p.client.takePlaintext(), big);
    p.client.close();
    run(p);
    assert.deepEqual(kinds(p.serverEvents), ["handshakeComplete", "peerClosed"]);
  });
}

Deno.test("the server picks its own suite order, not the client's", () => {
  const p = makePair12({}, {
    cipherSuites: [
      "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
      "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
      "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    ],
  });
  run(p);
  assert.equal(p.server.info().cipherSuite, "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256");
  const q = makePair12({ cipherSuites12: ["TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"] });
  run(q);
  assert.equal(q.server.info().cipherSuite, "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384");
});

for (const group of ["x25519", "secp256r1", "secp384r1"] as KeyExchangeGroup[]) {
  Deno.test(`the ECDHE group ${group} is used when it is the client's only one`, () => {
    const p = makePair12({}, { groups: [group] });
    run(p);
    assert.equal(fatalOf(p.serverEvents), null);
    assert.equal(p.server.info().group, group);
  });
}

Deno.test("without supported_groups the server uses secp256r1 (RFC 8422, Section 4)", () => {
  const p = makePair12({}, {
    editClientHello: (ch) => ({ ...ch, extensions: ch.extensions.filter((e) => e.type !== 10) }),
  });
  run(p);
  assert.equal(p.server.info().group, "secp256r1");
});

Deno.test("ServerHello.random ends with the TLS 1.2 downgrade sentinel (RFC 8446, 4.1.3)", () => {
  const p = makePair12();
  run(p);
  assert.deepEqual(p.client.serverHello!.random.subarray(24), DOWNGRADE_TLS12);
  assert.equal(p.client.serverHello!.legacyVersion, TLS12);
});

Deno.test("a client offering TLS 1.3 gets TLS 1.3 without the sentinel, even with min_version 1.2", () => {
  const k = keyFixture("P-256");
  const server = acceptTls({
    provider,
    certificateChain: k.chain,
    privateKey: k.privateKey,
    minVersion: "1.2",
  });
  const client = new TlsClientConnection({ provider, verifyServer: () => k.publicKey });
  const p = { client, server, clientEvents: [], serverEvents: [] };
  run(p);
  assert.equal(fatalOf(p.serverEvents), null);
  assert.equal(server.info().version, "TLSv1.3");
});

Deno.test("supported_versions without 1.3 but with 1.2 negotiates TLS 1.2", () => {
  const p = makePair12({}, { supportedVersions: [TLS12], legacyVersion: 0x0301 });
  run(p);
  assert.equal(fatalOf(p.serverEvents), null);
  assert.equal(p.server.info().version, "TLSv1.2");
});

Deno.test("with min_version 1.3 a TLS 1.2 client gets protocol_version", () => {
  const p = makePair12({ minVersion: "1.3" });
  run(p);
  assert.equal(fatalOf(p.serverEvents), "protocol_version");
  assert.equal(fatalOf(p.clientEvents), "protocol_version (received)");
});

Deno.test("extended_master_secret is echoed when offered, and left out when not", () => {
  const p = makePair12();
  run(p);
  assert.ok(
    findExtension(p.client.serverHello!.extensions, ExtensionType12.extended_master_secret),
  );
  const q = makePair12({}, { extendedMasterSecret: false });
  run(q);
  assert.equal(fatalOf(q.serverEvents), null);
  assert.equal(q.server.info().extendedMasterSecret, false);
  assert.equal(
    findExtension(q.client.serverHello!.extensions, ExtensionType12.extended_master_secret),
    undefined,
  );
});

Deno.test("require_extended_master_secret refuses a client without EMS with handshake_failure", () => {
  const p = makePair12({ requireExtendedMasterSecret: true }, { extendedMasterSecret: false });
  run(p);
  assert.equal(fatalOf(p.serverEvents), "handshake_failure");
  const q = makePair12({ requireExtendedMasterSecret: true });
  run(q);
  assert.equal(fatalOf(q.serverEvents), null);
  assert.equal(q.server.info().extendedMasterSecret, true);
});

Deno.test("secure renegotiation is answered for the extension and the SCSV, and only then", () => {
  for (const mode of ["extension", "scsv"] as const) {
    const p = makePair12({}, { renegotiationInfo: mode });
    run(p);
    assert.deepEqual(
      findExtension(p.client.serverHello!.extensions, ExtensionType12.renegotiation_info),
      new Uint8Array([0]),
      mode,
    );
  }
  const q = makePair12({}, { renegotiationInfo: "none" });
  run(q);
  assert.equal(fatalOf(q.serverEvents), null);
  assert.equal(
    findExtension(q.client.serverHello!.extensions, ExtensionType12.renegotiation_info),
    undefined,
  );
});

Deno.test("ec_point_formats is answered with uncompressed only", () => {
  const p = makePair12({}, { pointFormats: [1, 2, 0] });
  run(p);
  assert.deepEqual(
    findExtension(p.client.serverHello!.extensions, ExtensionType12.ec_point_formats),
    new Uint8Array([1, 0]),
  );
});

Deno.test("ALPN picks imap; TLS_EMPTY_RENEGOTIATION_INFO_SCSV is not a suite", () => {
  const p = makePair12({ alpnProtocols: ["imap"] }, {
    alpnProtocols: ["h2", "imap"],
    serverName: "mail.example.org",
    cipherSuites: [Scsv.empty_renegotiation_info, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"],
  });
  run(p);
  assert.equal(p.server.info().alpn, "imap");
  assert.equal(p.server.info().sni, "mail.example.org");
  assert.equal(p.server.info().cipherSuite, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256");
});

function skeScheme(offered: number[], key: PrivateKeyKind): number | string {
  const p = makePair12({}, { signatureSchemes: offered }, keyFixture(key));
  run(p);
  const ske = p.client.received.find((m) => m.type === HandshakeType12.server_key_exchange);
  return ske ? parseServerKeyExchange(ske.body).scheme : fatalOf(p.serverEvents) ?? "none";
}

Deno.test("ServerKeyExchange signature schemes follow the TLS 1.2 rules", () => {
  const S = SignatureScheme;
  assert.equal(
    skeScheme([S.ecdsa_secp384r1_sha384, S.ecdsa_secp256r1_sha256], "P-256"),
    S.ecdsa_secp256r1_sha256,
  );
  assert.equal(skeScheme([S.ecdsa_secp521r1_sha512], "P-256"), S.ecdsa_secp521r1_sha512);
  assert.equal(
    skeScheme([S.ecdsa_secp256r1_sha256, S.ecdsa_secp384r1_sha384], "P-384"),
    S.ecdsa_secp384r1_sha384,
  );
  assert.equal(skeScheme([S.ed25519], "ed25519"), S.ed25519);
  assert.equal(
    skeScheme([S.rsa_pkcs1_sha256, S.rsa_pss_rsae_sha256], "rsa2048"),
    S.rsa_pss_rsae_sha256,
  );
  assert.equal(skeScheme([S.rsa_pkcs1_sha384, S.rsa_pkcs1_sha256], "rsa2048"), S.rsa_pkcs1_sha256);
  assert.equal(skeScheme([S.rsa_pkcs1_sha1, S.ecdsa_sha1], "rsa2048"), "handshake_failure");
  assert.equal(skeScheme([S.ecdsa_sha1], "P-256"), "handshake_failure");
  const none = makePair12({}, { signatureSchemes: null });
  run(none);
  assert.equal(fatalOf(none.serverEvents), "handshake_failure");
});

Deno.test("every client-to-server byte split still completes the handshake", () => {
  const p = makePair12();
  run(p, { chunk: 1 });
  assert.equal(fatalOf(p.serverEvents), null);
  assert.equal(p.server.handshakeComplete, true);
});

Deno.test("TLS_FALLBACK_SCSV with a TLS 1.3-capable server gets inappropriate_fallback", () => {
  const p = makePair12({}, { fallbackScsv: true });
  run(p);
  assert.equal(fatalOf(p.serverEvents), "inappropriate_fallback");
  // A client that offers 1.3 is not falling back; the SCSV is ignored there.
  const k = keyFixture("P-256");
  const server = acceptTls({
    provider,
    certificateChain: k.chain,
    privateKey: k.privateKey,
    minVersion: "1.2",
  });
  const client = new TlsClientConnection({
    provider,
    verifyServer: () => k.publicKey,
    editClientHello: (ch) => ({ ...ch, cipherSuites: [...ch.cipherSuites, Scsv.fallback] }),
  });
  const q = { client, server, clientEvents: [], serverEvents: [] };
  run(q);
  assert.equal(fatalOf(q.serverEvents), null);
  assert.equal(server.info().version, "TLSv1.3");
  assert.equal(TLS13, 0x0304);
});
