/** Each TLS 1.2 failure gets the alert that the table in server12.ts names. */
import assert from "node:assert/strict";
import { writeHandshake } from "../../../../protocol/tls/messages/handshake.ts";
import { writePlaintextRecord } from "../../../../protocol/tls/record_layer.ts";
import { ExtensionType12, HandshakeType12 } from "../../../../protocol/tls/tls12/wire12.ts";
import { ContentType, ExtensionType, type HandshakeType } from "../../../../protocol/tls/wire.ts";
import { dec, enc, fatalOf, keyFixture, kinds, run } from "../_pair.ts";
import { makePair12 } from "./_pair12.ts";
import type { ClientHello } from "../../../../protocol/tls/messages/client_hello.ts";
import type { Client12Config } from "../../../../protocol/tls/tls12/client12.ts";
import type { ServerOptions } from "../../../../protocol/tls/acceptor.ts";

function serverAlert(
  client: Partial<Client12Config>,
  server: Partial<ServerOptions> = {},
  opts: Parameters<typeof run>[1] = {},
): string | null {
  const p = makePair12(server, client);
  run(p, opts);
  return fatalOf(p.serverEvents);
}

const editHello = (edit: (ch: ClientHello) => ClientHello) => ({ editClientHello: edit });
const replaceExtension = (type: number, data: Uint8Array) =>
  editHello((ch) => ({
    ...ch,
    extensions: [...ch.extensions.filter((e) => e.type !== type), { type, data }],
  }));

/** Offsets of the records of `type` in a byte stream of records. */
function recordsOf(bytes: Uint8Array, type: number): number[] {
  const out: number[] = [];
  for (let at = 0; at + 5 <= bytes.length; at += 5 + ((bytes[at + 3]! << 8) | bytes[at + 4]!)) {
    if (bytes[at] === type) out.push(at);
  }
  return out;
}

function indexOfBytes(haystack: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/** Splits plaintext handshake records into records of at most `size` bytes. */
function refragment(bytes: Uint8Array, size: number): Uint8Array {
  const out: number[] = [];
  for (let at = 0; at < bytes.length;) {
    const type = bytes[at]!;
    const len = (bytes[at + 3]! << 8) | bytes[at + 4]!;
    const body = bytes.subarray(at + 5, at + 5 + len);
    if (type === ContentType.handshake) {
      for (let i = 0; i < body.length; i += size) {
        out.push(...writePlaintextRecord(ContentType.handshake, body.subarray(i, i + size)));
      }
    } else {
      out.push(...bytes.subarray(at, at + 5 + len));
    }
    at += 5 + len;
  }
  return new Uint8Array(out);
}

Deno.test("the alert table: ClientHello conditions", () => {
  const cases: [string, Partial<Client12Config>, Partial<ServerOptions>, string][] = [
    ["TLS 1.1 client", { legacyVersion: 0x0302 }, {}, "protocol_version"],
    ["supported_versions with only 1.1", { supportedVersions: [0x0302] }, {}, "protocol_version"],
    ["fallback SCSV", { fallbackScsv: true }, {}, "inappropriate_fallback"],
    ["no common suite", { cipherSuites: [0xc013, 0x009c] }, {}, "handshake_failure"],
    [
      "RSA suites only for an EC key",
      { cipherSuites: ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"] },
      {},
      "handshake_failure",
    ],
    ["no common group", { groups: ["secp384r1"] }, { groups: ["x25519"] }, "handshake_failure"],
    ["no signature_algorithms", { signatureSchemes: null }, {}, "handshake_failure"],
    ["SHA-1 only", { signatureSchemes: [0x0203, 0x0201] }, {}, "handshake_failure"],
    ["EMS required, not offered", { extendedMasterSecret: false }, {
      requireExtendedMasterSecret: true,
    }, "handshake_failure"],
    ["compressed points only", { pointFormats: [1] }, {}, "illegal_parameter"],
    [
      "no null compression",
      editHello((ch) => ({ ...ch, legacyCompressionMethods: new Uint8Array([1]) })),
      {},
      "illegal_parameter",
    ],
    [
      "renegotiation_info not empty",
      replaceExtension(ExtensionType12.renegotiation_info, new Uint8Array([2, 1, 2])),
      {},
      "handshake_failure",
    ],
    [
      "renegotiation_info malformed",
      replaceExtension(ExtensionType12.renegotiation_info, new Uint8Array([5])),
      {},
      "decode_error",
    ],
    [
      "extended_master_secret with a body",
      replaceExtension(ExtensionType12.extended_master_secret, new Uint8Array([0])),
      {},
      "decode_error",
    ],
    [
      "ec_point_formats empty",
      replaceExtension(ExtensionType12.ec_point_formats, new Uint8Array([0])),
      {},
      "decode_error",
    ],
    [
      "supported_groups odd",
      replaceExtension(ExtensionType.supported_groups, new Uint8Array([0, 3, 0, 29, 0])),
      {},
      "decode_error",
    ],
    [
      "no common ALPN",
      { alpnProtocols: ["h2"] },
      { alpnProtocols: ["imap"] },
      "no_application_protocol",
    ],
    [
      "duplicate extension",
      editHello((ch) => ({ ...ch, extensions: [...ch.extensions, ch.extensions[0]!] })),
      {},
      "illegal_parameter",
    ],
  ];
  for (const [what, client, server, alert] of cases) {
    assert.equal(serverAlert(client, server), alert, what);
  }
});

Deno.test("every truncated prefix of a TLS 1.2 ClientHello gets decode_error or protocol_version", () => {
  const hello = makePair12().client.takeOutgoing();
  const body = hello.subarray(9);
  // The prefix that ends right after the compression methods is a well-formed hello without
  // extensions, so without signature_algorithms: handshake_failure (SHA-1 would be implied).
  const sid = body[34]!;
  const suitesLength = (body[35 + sid]! << 8) | body[36 + sid]!;
  const noExtensions = 35 + sid + 2 + suitesLength + 2;
  for (let n = 0; n < body.length; n++) {
    const msg = writeHandshake(
      HandshakeType12.client_hello as HandshakeType,
      (w) => w.bytes(body.subarray(0, n)),
    );
    const p = makePair12();
    p.server.receive(writePlaintextRecord(ContentType.handshake, msg));
    const alert = fatalOf(p.server.takeEvents());
    const expected = n === noExtensions ? "handshake_failure" : "decode_error";
    assert.equal(alert, expected, `prefix ${n}`);
  }
});

Deno.test("messages skipped or reordered get unexpected_message", () => {
  const auth = {
    clientAuth: {
      mode: "optional" as const,
      verifier: {
        authorityNames: [],
        verify: () => {
          throw new Error("unused");
        },
      },
    },
  };
  const cases: [string, Partial<Client12Config>, Partial<ServerOptions>][] = [
    ["ClientKeyExchange skipped", {
      tamper: (t, e) => t === HandshakeType12.client_key_exchange ? null : e,
    }, {}],
    ["Certificate skipped when requested", {
      tamper: (t, e) => t === HandshakeType12.certificate ? null : e,
    }, auth],
    ["ClientKeyExchange before Certificate", { reorder: (types) => [...types].reverse() }, auth],
    ["Finished without change_cipher_spec", { skipChangeCipherSpec: true }, {}],
    ["ClientHello twice", {
      tamper: (t, e) =>
        t === HandshakeType12.client_key_exchange ? new Uint8Array([1, 0, 0, 0]) : e,
    }, {}],
    ["ServerHello from the client", {
      tamper: (t, e) =>
        t === HandshakeType12.client_key_exchange ? new Uint8Array([2, 0, 0, 0]) : e,
    }, {}],
  ];
  for (const [what, client, server] of cases) {
    assert.equal(serverAlert(client, server), "unexpected_message", what);
  }
});

Deno.test("a change_cipher_spec out of place or malformed gets unexpected_message", () => {
  const p = makePair12();
  p.server.receive(writePlaintextRecord(ContentType.change_cipher_spec, new Uint8Array([1])));
  assert.equal(fatalOf(p.server.takeEvents()), "unexpected_message");
  const q = makePair12();
  run(q, {
    toServer: (b, round) => {
      if (round !== 2) return b;
      const out = b.slice();
      out[recordsOf(out, ContentType.change_cipher_spec)[0]! + 5] = 2;
      return out;
    },
  });
  assert.equal(fatalOf(q.serverEvents), "unexpected_message");
});

Deno.test("a tampered encrypted Finished is bad_record_mac; a wrong verify_data is decrypt_error", () => {
  const p = makePair12();
  run(p, {
    toServer: (b, round) => {
      if (round !== 2) return b;
      const out = b.slice();
      out[out.length - 1]! ^= 1;
      return out;
    },
  });
  assert.equal(fatalOf(p.serverEvents), "bad_record_mac");
  // Without EMS the keys do not depend on the transcript: a changed SNI byte in the
  // ClientHello leaves the keys alone but breaks the Finished hash.
  const q = makePair12({}, { extendedMasterSecret: false, serverName: "localhost" });
  run(q, {
    toServer: (b, round) => {
      if (round !== 0) return b;
      const out = b.slice();
      out[indexOfBytes(out, enc("localhost"))] = 0x4c;
      return out;
    },
  });
  assert.equal(fatalOf(q.serverEvents), "decrypt_error");
});

Deno.test("handshake messages fragmented over one-byte records and coalesced in one record work", () => {
  const p = makePair12();
  run(p, { toServer: (b, round) => round <= 1 ? refragment(b, 1) : b });
  assert.equal(fatalOf(p.serverEvents), null);
  assert.equal(p.server.handshakeComplete, true);
});

Deno.test("an alert inside a fragmented handshake message is unexpected_message", () => {
  const p = makePair12();
  const hello = refragment(p.client.takeOutgoing(), 10);
  p.server.receive(hello.subarray(0, 15));
  p.server.receive(writePlaintextRecord(ContentType.alert, new Uint8Array([1, 90])));
  assert.equal(fatalOf(p.server.takeEvents()), "unexpected_message");
});

Deno.test("a plaintext record over 2^14 bytes is record_overflow", () => {
  const p = makePair12();
  const big = new Uint8Array(5 + 2 ** 14 + 1);
  big.set([ContentType.handshake, 3, 3, (2 ** 14 + 1) >> 8, (2 ** 14 + 1) & 0xff]);
  p.server.receive(big);
  assert.equal(fatalOf(p.server.takeEvents()), "record_overflow");
});

Deno.test("application data before the handshake ends is unexpected_message", () => {
  const p = makePair12();
  p.server.receive(writePlaintextRecord(ContentType.application_data, new Uint8Array([1])));
  assert.equal(fatalOf(p.server.takeEvents()), "unexpected_message");
});

Deno.test("zero-length application data and warnings are tolerated, within a bound", () => {
  const p = makePair12();
  run(p);
  p.client.sendEmptyRecord();
  p.client.sendWarning("user_canceled");
  p.client.send(enc("a1 NOOP\r\n"));
  run(p);
  assert.equal(dec(p.server.takePlaintext()), "a1 NOOP\r\n");
  assert.equal(fatalOf(p.serverEvents), null);
  for (let i = 0; i < 40; i++) p.client.sendEmptyRecord();
  run(p);
  assert.equal(fatalOf(p.serverEvents), "unexpected_message");
});

Deno.test("renegotiation gets a no_renegotiation warning, then the connection goes on", () => {
  const p = makePair12();
  run(p);
  p.client.renegotiate();
  const before = p.server.takeOutgoing();
  assert.equal(before.length, 0);
  p.server.receive(p.client.takeOutgoing());
  const warning = p.server.takeOutgoing();
  assert.equal(warning[0], ContentType.alert);
  assert.equal(fatalOf(p.server.takeEvents()), null);
  p.server.send(enc("* OK still here\r\n"));
  p.client.receive(warning);
  p.client.receive(p.server.takeOutgoing());
  assert.equal(dec(p.client.takePlaintext()), "* OK still here\r\n");
  assert.deepEqual(kinds(p.client.takeEvents()), []);
  assert.deepEqual(kinds(p.clientEvents), ["handshakeComplete"]);
});

Deno.test("a client that insists on renegotiating is cut off with unexpected_message", () => {
  const p = makePair12();
  run(p);
  p.client.renegotiate();
  run(p);
  p.client.renegotiate();
  run(p);
  assert.equal(fatalOf(p.serverEvents), "unexpected_message");
});

Deno.test("fatal alerts from the client end the handshake and are reported as received", () => {
  const p = makePair12();
  p.server.receive(p.client.takeOutgoing());
  p.server.receive(writePlaintextRecord(ContentType.alert, new Uint8Array([2, 40])));
  assert.equal(fatalOf(p.server.takeEvents()), "handshake_failure (received)");
});

Deno.test("server keys of every kind sign a ServerKeyExchange the client accepts", () => {
  for (const kind of ["P-256", "P-384", "ed25519", "rsa2048"] as const) {
    const p = makePair12({}, {}, keyFixture(kind));
    run(p);
    assert.equal(fatalOf(p.clientEvents), null, kind);
  }
});

Deno.test("a Finished of the wrong length is decode_error; a wrong one is decrypt_error", () => {
  const finished = (edit: (verifyData: Uint8Array) => Uint8Array) =>
    serverAlert({
      tamper: (type, encoded) => {
        if (type !== HandshakeType12.finished) return encoded;
        const body = edit(encoded.slice(4));
        return new Uint8Array([type, 0, 0, body.length, ...body]);
      },
    });
  assert.equal(finished((v) => v.subarray(0, 11)), "decode_error");
  assert.equal(finished((v) => new Uint8Array([...v, 0])), "decode_error");
  assert.equal(finished(() => new Uint8Array(0)), "decode_error");
  assert.equal(finished((v) => (v[0]! ^= 1, v)), "decrypt_error");
});
