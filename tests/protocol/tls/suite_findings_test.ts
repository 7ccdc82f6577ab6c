/**
 * One test per behaviour an external TLS test suite saw wrong (issue 14), each asserting the
 * exact alert.
 */
import assert from "node:assert/strict";
import { acceptTls } from "../../../protocol/tls/acceptor.ts";
import { Tls12ClientConnection } from "../../../protocol/tls/tls12/client12.ts";
import { Writer } from "../../../protocol/tls/codec.ts";
import type { ClientHello } from "../../../protocol/tls/messages/client_hello.ts";
import { writePlaintextRecord } from "../../../protocol/tls/record_layer.ts";
import { TlsServerConnection } from "../../../protocol/tls/server.ts";
import {
  ContentType,
  ExtensionType,
  HandshakeType,
  MAX_CLIENT_HELLO,
  MAX_PLAINTEXT,
} from "../../../protocol/tls/wire.ts";
import { fatalOf, keyFixture, kinds, makePair, type PairLike, provider, run } from "./_pair.ts";

const withExtensions = (edit: (e: ClientHello["extensions"]) => ClientHello["extensions"]) =>
(
  ch: ClientHello,
): ClientHello => ({ ...ch, extensions: edit(ch.extensions) });

const replaceExtension = (type: number, data: Uint8Array) =>
  withExtensions((es) => es.map((e) => e.type === type ? { type, data } : e));

/** A pair whose server is the version acceptor, as the listener runs it. */
function acceptorPair(edit: (ch: ClientHello, attempt: 1 | 2) => ClientHello): PairLike {
  const k = keyFixture("P-256");
  const server = acceptTls({
    provider,
    certificateChain: k.chain,
    privateKey: k.privateKey,
    minVersion: "1.2",
  });
  const { client } = makePair({}, { editClientHello: edit });
  return { client, server, clientEvents: [], serverEvents: [] };
}

Deno.test("a ClientHello with legacy_version 0x0300 or below is protocol_version", () => {
  for (const v of [0x0300, 0x0200, 0x0100, 0x0000]) {
    const p = makePair({}, { editClientHello: (ch) => ({ ...ch, legacyVersion: v }) });
    run(p);
    assert.equal(fatalOf(p.serverEvents), "protocol_version", v.toString(16));
    const a = acceptorPair((ch) => ({ ...ch, legacyVersion: v }));
    run(a);
    assert.equal(fatalOf(a.serverEvents), "protocol_version", `acceptor ${v.toString(16)}`);
  }
  const ok = makePair({}, { editClientHello: (ch) => ({ ...ch, legacyVersion: 0x0301 }) });
  run(ok);
  assert.deepEqual(kinds(ok.serverEvents), ["handshakeComplete"]);
});

Deno.test("a ClientHello with 16,167+ bytes of padding over two records completes", () => {
  const pad = withExtensions((es) => [
    ...es,
    { type: ExtensionType.padding, data: new Uint8Array(16_167 + 300) },
  ]);
  const p = acceptorPair((ch) => pad(ch));
  let records = 0;
  run(p, {
    toServer: (b, round) => {
      if (round === 0) records = countRecords(b);
      return b;
    },
  });
  assert.equal(records, 2);
  assert.deepEqual(kinds(p.serverEvents), ["handshakeComplete"]);
});

Deno.test("a ClientHello with 32,715 signature schemes (a 64 KiB list) completes", () => {
  const schemes = new Writer().u16(32_715 * 2).u16(0x0403);
  for (let i = 1; i < 32_715; i++) schemes.u16(0x0a0a + (i % 200) * 0x100);
  const sigs = replaceExtension(ExtensionType.signature_algorithms, schemes.finish());
  const p = acceptorPair((ch) =>
    sigs({
      ...ch,
      extensions: ch.extensions.filter((e) =>
        e.type !== ExtensionType.server_name &&
        e.type !== ExtensionType.application_layer_protocol_negotiation
      ),
    })
  );
  run(p);
  assert.deepEqual(kinds(p.serverEvents), ["handshakeComplete"]);
});

Deno.test("a ClientHello over 131,396 bytes is decode_error before it is buffered", () => {
  const s = new TlsServerConnection({
    provider,
    certificateChain: keyFixture("P-256").chain,
    privateKey: keyFixture("P-256").privateKey,
  });
  const n = MAX_CLIENT_HELLO + 1;
  s.receive(writePlaintextRecord(ContentType.handshake, new Uint8Array([1, n >> 16, n >> 8, n])));
  assert.equal(fatalOf(s.takeEvents()), "decode_error");
});

Deno.test("other handshake messages keep tight limits: an oversized Finished is decode_error", () => {
  for (const pad of [1, 32, 128 * 1024, 2 ** 20]) {
    const p = makePair({}, {
      tamper: (type, encoded) => {
        if (type !== HandshakeType.finished) return encoded;
        const n = encoded.length - 4 + pad;
        const out = new Uint8Array(4 + Math.min(n, 200_000));
        out.set(encoded);
        out.set([type, n >> 16, n >> 8, n], 0);
        return out.subarray(0, Math.min(out.length, encoded.length + pad));
      },
    });
    run(p);
    assert.equal(fatalOf(p.serverEvents), "decode_error", `padding ${pad}`);
  }
});

Deno.test("handshake data after the client Finished is unexpected_message, whatever its size", () => {
  for (const [byte, pad] of [[0, 1], [0, 128 * 1024], [0xff, 4], [0xff, 128 * 1024 + 1]]) {
    const p = makePair({}, {
      tamper: (type, encoded) => {
        if (type !== HandshakeType.finished) return encoded;
        const out = new Uint8Array(encoded.length + pad!).fill(byte!);
        out.set(encoded);
        return out;
      },
    });
    run(p);
    assert.equal(fatalOf(p.serverEvents), "unexpected_message", `${byte} x ${pad}`);
  }
});

Deno.test("a Certificate where Finished is expected is unexpected_message even if huge", () => {
  const p = makePair({}, {
    tamper: (type, encoded) =>
      type === HandshakeType.finished ? new Uint8Array([11, 0xff, 0xff, 0xff]) : encoded,
  });
  run(p);
  assert.equal(fatalOf(p.serverEvents), "unexpected_message");
});

Deno.test("an empty alert record is unexpected_message, in plaintext and under every key", () => {
  const plain = new TlsServerConnection({
    provider,
    certificateChain: keyFixture("P-256").chain,
    privateKey: keyFixture("P-256").privateKey,
  });
  plain.receive(writePlaintextRecord(ContentType.alert, new Uint8Array(0)));
  assert.equal(fatalOf(plain.takeEvents()), "unexpected_message", "plaintext");

  for (const padding of [0, 1, 100]) {
    const hs = makePair({}, {
      tamper: (type, encoded) => {
        if (type === HandshakeType.finished) {
          hs.client.sendRaw(ContentType.alert, new Uint8Array(0), padding);
        }
        return encoded;
      },
    });
    run(hs);
    assert.equal(fatalOf(hs.serverEvents), "unexpected_message", `handshake keys, ${padding}`);

    const app = makePair();
    run(app);
    app.client.sendRaw(ContentType.alert, new Uint8Array(0), padding);
    run(app);
    assert.equal(fatalOf(app.serverEvents), "unexpected_message", `application keys, ${padding}`);
  }
});

Deno.test("empty, truncated and oversized key shares are illegal_parameter", () => {
  const share = (group: number, length: number) => {
    const w = new Writer().u16(4 + length).u16(group).u16(length);
    return w.bytes(new Uint8Array(length).fill(length === 65 ? 4 : 9)).finish();
  };
  const cases: [string, number, number][] = [
    ["empty x25519", 0x1d, 0],
    ["truncated x25519", 0x1d, 31],
    ["oversized x25519", 0x1d, 33],
    ["empty P-256", 0x17, 0],
    ["truncated P-256", 0x17, 64],
    ["oversized P-256", 0x17, 66],
  ];
  for (const [name, group, length] of cases) {
    const p = makePair({}, {
      groups: [group === 0x1d ? "x25519" : "secp256r1"],
      editClientHello: replaceExtension(ExtensionType.key_share, share(group, length)),
    });
    run(p);
    assert.equal(fatalOf(p.serverEvents), "illegal_parameter", name);
  }
});

Deno.test("a key share for a group missing from supported_groups is illegal_parameter", () => {
  const p = makePair({}, {
    groups: ["x25519", "secp256r1"],
    keyShares: ["x25519"],
    editClientHello: replaceExtension(
      ExtensionType.supported_groups,
      new Writer().u16(2).u16(0x17).finish(),
    ),
  });
  run(p);
  assert.equal(fatalOf(p.serverEvents), "illegal_parameter");
});

Deno.test("a second ClientHello may list its extensions in another order", () => {
  const p = makePair({ groups: ["secp256r1"] }, {
    groups: ["x25519", "secp256r1"],
    keyShares: ["x25519"],
    editClientHello: (ch, attempt) => {
      if (attempt === 1) return ch;
      const psk = ch.extensions.filter((e) => e.type === ExtensionType.pre_shared_key);
      const rest = ch.extensions.filter((e) => e.type !== ExtensionType.pre_shared_key);
      return { ...ch, extensions: [...rest.reverse(), ...psk] };
    },
  });
  run(p);
  assert.deepEqual(kinds(p.serverEvents), ["handshakeComplete"]);
});

const earlyData = { type: ExtensionType.early_data, data: new Uint8Array(0) };
const junk = (n: number) => new Uint8Array([23, 3, 3, n >> 8, n & 0xff, ...new Uint8Array(n)]);

Deno.test("0-RTT records after a first ClientHello that gets a HelloRetryRequest are skipped", () => {
  const p = makePair({ groups: ["secp256r1"] }, {
    groups: ["x25519", "secp256r1"],
    keyShares: ["x25519"],
    editClientHello: (ch, attempt) =>
      attempt === 1 ? { ...ch, extensions: [...ch.extensions, earlyData] } : ch,
  });
  run(p, {
    toServer: (b, round) => round === 0 ? new Uint8Array([...b, ...junk(100), ...junk(500)]) : b,
  });
  assert.deepEqual(kinds(p.serverEvents), ["handshakeComplete"]);
});

Deno.test("early data beyond the limit after a HelloRetryRequest is unexpected_message", () => {
  const p = makePair({ groups: ["secp256r1"] }, {
    groups: ["x25519", "secp256r1"],
    keyShares: ["x25519"],
    editClientHello: (ch, attempt) =>
      attempt === 1 ? { ...ch, extensions: [...ch.extensions, earlyData] } : ch,
  });
  const flood: number[] = [];
  for (let i = 0; i < 5; i++) flood.push(...junk(MAX_PLAINTEXT + 256));
  run(p, { toServer: (b, round) => round === 0 ? new Uint8Array([...b, ...flood]) : b });
  assert.equal(fatalOf(p.serverEvents), "unexpected_message");
});

Deno.test("after a HelloRetryRequest, undecryptable records after the second ClientHello are bad_record_mac", () => {
  const p = makePair({ groups: ["secp256r1"] }, {
    groups: ["x25519", "secp256r1"],
    keyShares: ["x25519"],
    editClientHello: (ch, attempt) =>
      attempt === 1 ? { ...ch, extensions: [...ch.extensions, earlyData] } : ch,
  });
  // Round 0 carries the first ClientHello, round 2 the second.
  run(p, { toServer: (b, round) => round === 2 ? new Uint8Array([...b, ...junk(50)]) : b });
  assert.equal(fatalOf(p.serverEvents), "bad_record_mac");
});

Deno.test("early_data in the second ClientHello is illegal_parameter", () => {
  const p = makePair({ groups: ["secp256r1"] }, {
    groups: ["x25519", "secp256r1"],
    keyShares: ["x25519"],
    editClientHello: (ch) => ({ ...ch, extensions: [...ch.extensions, earlyData] }),
  });
  run(p);
  assert.equal(fatalOf(p.serverEvents), "illegal_parameter");
});

function countRecords(flight: Uint8Array): number {
  let n = 0;
  for (let at = 0; at + 5 <= flight.length; at += 5 + ((flight[at + 3]! << 8) | flight[at + 4]!)) {
    if (flight[at] === ContentType.handshake) n++;
  }
  return n;
}

Deno.test("secp521r1, x448, ffdhe2048 and ffdhe3072 complete, with and without a retry", () => {
  for (const group of ["secp521r1", "x448", "ffdhe2048", "ffdhe3072"] as const) {
    const direct = makePair({}, { groups: [group] });
    run(direct);
    assert.deepEqual(kinds(direct.serverEvents), ["handshakeComplete"], group);
    assert.equal(direct.server.info().group, group);
    const retried = makePair({}, { groups: ["x25519", group], keyShares: [] });
    run(retried);
    assert.deepEqual(kinds(retried.serverEvents), ["handshakeComplete"], `${group} retry`);
  }
});

Deno.test("x25519 stays first: a client offering every group gets x25519", () => {
  const p = makePair({}, {
    groups: ["ffdhe2048", "x448", "secp521r1", "x25519"],
    keyShares: ["ffdhe2048", "x25519"],
  });
  run(p);
  assert.equal(p.server.info().group, "x25519");
  const ffOnly = makePair({}, { groups: ["ffdhe2048", "ffdhe3072"], keyShares: [] });
  run(ffOnly);
  assert.equal(ffOnly.server.info().group, "ffdhe2048", "a client that offers only FFDHE");
});

Deno.test("empty, truncated, oversized and out-of-range shares of the new groups are illegal_parameter", () => {
  const cases: [string, number, Uint8Array][] = [
    ["empty x448", 0x1e, new Uint8Array(0)],
    ["truncated x448", 0x1e, new Uint8Array(55).fill(9)],
    ["low-order x448", 0x1e, new Uint8Array(56)],
    ["empty P-521", 0x19, new Uint8Array(0)],
    ["oversized P-521", 0x19, new Uint8Array(134).fill(4)],
    ["off-curve P-521", 0x19, new Uint8Array(133).fill(4)],
    ["empty ffdhe2048", 0x100, new Uint8Array(0)],
    ["truncated ffdhe2048", 0x100, new Uint8Array(255).fill(7)],
    ["ffdhe2048 of one", 0x100, Uint8Array.from({ length: 256 }, (_, i) => i === 255 ? 1 : 0)],
    ["ffdhe2048 above p", 0x100, new Uint8Array(256).fill(0xff)],
  ];
  const names = { 0x1e: "x448", 0x19: "secp521r1", 0x100: "ffdhe2048" } as const;
  for (const [name, group, share] of cases) {
    const data = new Writer().u16(4 + share.length).u16(group).u16(share.length).bytes(share)
      .finish();
    const p = makePair({}, {
      groups: [names[group as keyof typeof names]],
      editClientHello: replaceExtension(ExtensionType.key_share, data),
    });
    run(p);
    assert.equal(fatalOf(p.serverEvents), "illegal_parameter", name);
  }
});

Deno.test("a TLS 1.2 ClientHello over 64 KiB completes through the acceptor", () => {
  const k = keyFixture("P-256");
  const server = acceptTls({
    provider,
    certificateChain: k.chain,
    privateKey: k.privateKey,
    minVersion: "1.2",
  });
  const client = new Tls12ClientConnection({
    provider,
    verifyServer: () => k.publicKey,
    // 20,000 unknown suites (40 KB) and 3,000 ALPN names (about 30 KB), then a real suite.
    cipherSuites: [
      ...Array.from({ length: 20_000 }, (_, i) => 0x5a00 + (i % 200)),
      "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    ],
    alpnProtocols: Array.from({ length: 3000 }, (_, i) => `proto-${i}`),
  });
  const p: PairLike = { client, server, clientEvents: [], serverEvents: [] };
  let helloBytes = 0;
  run(p, {
    toServer: (b, round) => {
      if (round === 0) helloBytes = b.length;
      return b;
    },
  });
  assert.ok(helloBytes > 64 * 1024, `ClientHello of ${helloBytes} bytes`);
  assert.deepEqual(kinds(p.serverEvents), ["handshakeComplete"]);
  assert.equal(server.info().version, "TLSv1.2");
});
