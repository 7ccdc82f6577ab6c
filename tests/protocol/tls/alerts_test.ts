import assert from "node:assert/strict";
import { TlsAlert } from "../../../protocol/tls/alert.ts";
import { Writer } from "../../../protocol/tls/codec.ts";
import { type ClientHello, parseClientHello } from "../../../protocol/tls/messages/client_hello.ts";
import { writeHandshake } from "../../../protocol/tls/messages/handshake.ts";
import { writePlaintextRecord } from "../../../protocol/tls/record_layer.ts";
import { TlsServerConnection } from "../../../protocol/tls/server.ts";
import { ContentType, ExtensionType, HandshakeType } from "../../../protocol/tls/wire.ts";
import { prng } from "./_helpers.ts";
import { fatalOf, keyFixture, kinds, makePair, provider, run } from "./_pair.ts";

function newServer(): TlsServerConnection {
  const k = keyFixture("P-256");
  return new TlsServerConnection({ provider, certificateChain: k.chain, privateKey: k.privateKey });
}

/** The ClientHello record our test client would send, after `edit`. */
function helloBytes(edit?: (ch: ClientHello) => ClientHello): Uint8Array {
  return makePair({}, edit ? { editClientHello: (ch, n) => n === 1 ? edit(ch) : ch } : {}).client
    .takeOutgoing();
}

/** The ClientHello body our test client would send. */
function helloBody(): Uint8Array {
  return helloBytes().subarray(9);
}

/** Feeds bytes to a fresh server and returns its fatal alert. */
function serverAlert(bytes: Uint8Array): string | null {
  const s = newServer();
  s.receive(bytes);
  return fatalOf(s.takeEvents());
}

function handshakeRecord(type: number, body: Uint8Array): Uint8Array {
  return writePlaintextRecord(
    ContentType.handshake,
    writeHandshake(type as HandshakeType, (w) => w.bytes(body)),
  );
}

const withoutExtension = (type: number) => (ch: ClientHello): ClientHello => ({
  ...ch,
  extensions: ch.extensions.filter((e) => e.type !== type),
});

const replaceExtension = (type: number, data: Uint8Array) => (ch: ClientHello): ClientHello => ({
  ...ch,
  extensions: ch.extensions.map((e) => e.type === type ? { type, data } : e),
});

Deno.test("every truncated prefix of a ClientHello is refused with decode_error", () => {
  const body = helloBody();
  // The one prefix that ends right after the compression methods is a well-formed hello
  // without extensions (a pre-TLS 1.3 client), which is refused with protocol_version.
  const noExtensions = 2 + 32 + 1 + body[34]! + 2 + ((body[35 + body[34]!]! << 8) |
    body[36 + body[34]!]!) +
    2;
  for (let n = 0; n < body.length; n++) {
    const expected = n === noExtensions ? "protocol_version" : "decode_error";
    assert.equal(serverAlert(handshakeRecord(1, body.subarray(0, n))), expected, `prefix ${n}`);
    if (n !== noExtensions) {
      assert.throws(
        () => parseClientHello(body.subarray(0, n)),
        (e) => e instanceof TlsAlert && e.alert === "decode_error",
      );
    }
  }
});

Deno.test("random bytes never throw out of receive() and always end in an alert or a wait", () => {
  const rand = prng(12345);
  for (let i = 0; i < 300; i++) {
    const s = newServer();
    const chunk = rand(1 + (rand(1)[0]! % 64));
    if (i % 2 === 0) chunk[0] = 22;
    s.receive(chunk);
    for (const e of s.takeEvents()) assert.equal(e.kind, "fatal");
  }
});

Deno.test("a ClientHello with random byte flips never throws out of receive()", () => {
  const hello = helloBytes();
  const rand = prng(99);
  for (let i = 0; i < 300; i++) {
    const bytes = hello.slice();
    const [a, b] = rand(2);
    const at = 5 + ((a! << 8 | b!) % (bytes.length - 5));
    bytes[at]! ^= rand(1)[0]! | 1;
    const s = newServer();
    s.receive(bytes);
    const events = s.takeEvents();
    for (const e of events) assert.equal(e.kind, "fatal");
  }
});

Deno.test("a TLS 1.2-only ClientHello gets a plaintext protocol_version alert in a TLS 1.2 record", () => {
  const s = newServer();
  s.receive(helloBytes(withoutExtension(ExtensionType.supported_versions)));
  assert.equal(fatalOf(s.takeEvents()), "protocol_version");
  assert.deepEqual(Array.from(s.takeOutgoing()), [21, 3, 3, 0, 2, 2, 70]);
  assert.equal(s.closed, true);
});

Deno.test("supported_versions without TLS 1.3 is refused with protocol_version", () => {
  const only12 = new Uint8Array([2, 3, 3]);
  assert.equal(
    serverAlert(helloBytes(replaceExtension(ExtensionType.supported_versions, only12))),
    "protocol_version",
  );
});

Deno.test("a missing key_share, supported_groups or signature_algorithms is missing_extension", () => {
  for (
    const t of [
      ExtensionType.key_share,
      ExtensionType.supported_groups,
      ExtensionType.signature_algorithms,
    ]
  ) {
    assert.equal(serverAlert(helloBytes(withoutExtension(t))), "missing_extension", `type ${t}`);
  }
});

Deno.test("readClientHello() rejects duplicate extensions with illegal_parameter", () => {
  assert.equal(
    serverAlert(helloBytes((ch) => ({ ...ch, extensions: [...ch.extensions, ch.extensions[0]!] }))),
    "illegal_parameter",
  );
});

Deno.test("pre_shared_key that is not the last extension is illegal_parameter", () => {
  const psk = { type: ExtensionType.pre_shared_key, data: new Uint8Array([0, 0, 0, 0]) };
  assert.equal(
    serverAlert(helloBytes((ch) => ({ ...ch, extensions: [psk, ...ch.extensions] }))),
    "illegal_parameter",
  );
});

Deno.test("legacy_compression_methods other than [0] is illegal_parameter", () => {
  assert.equal(
    serverAlert(helloBytes((ch) => ({ ...ch, legacyCompressionMethods: new Uint8Array([1, 0]) }))),
    "illegal_parameter",
  );
});

Deno.test("a corrupted extension length in the ClientHello is decode_error", () => {
  const bytes = helloBytes();
  // The supported_versions body [len=2, 0x03, 0x04]: claim 3 bytes of versions instead.
  const at = bytes.findIndex((_, i) =>
    bytes[i] === 0 && bytes[i + 1] === 43 && bytes[i + 2] === 0 && bytes[i + 3] === 3
  );
  bytes[at + 4] = 3;
  assert.equal(serverAlert(bytes), "decode_error");
});

Deno.test("GREASE suites, extensions, groups and key shares are ignored", () => {
  const p = makePair({}, {
    editClientHello: (ch) => {
      const exts = ch.extensions.map((e) => {
        if (e.type === ExtensionType.supported_groups) {
          return { type: e.type, data: new Uint8Array([0, 4, 0x2a, 0x2a, 0, 0x1d]) };
        }
        if (e.type === ExtensionType.key_share) {
          const data = new Writer().u16(e.data.length + 3).u16(0x2a2a).u16(1).u8(0).bytes(
            e.data.subarray(2),
          ).finish();
          return { type: e.type, data };
        }
        return e;
      });
      return {
        ...ch,
        cipherSuites: [0x0a0a, ...ch.cipherSuites, 0xc02f],
        extensions: [{ type: 0x1a1a, data: new Uint8Array(0) }, ...exts, {
          type: 0xfafa,
          data: new Uint8Array([1]),
        }],
      };
    },
  });
  run(p);
  assert.deepEqual(kinds(p.serverEvents), ["handshakeComplete"]);
});

Deno.test("no common cipher suite, group or signature scheme is handshake_failure", () => {
  assert.equal(
    serverAlert(helloBytes((ch) => ({ ...ch, cipherSuites: [0xc02f] }))),
    "handshake_failure",
  );
  const groups = new Uint8Array([0, 2, 0x01, 0x04]); // ffdhe8192, not implemented
  assert.equal(
    serverAlert(helloBytes((ch) => ({
      ...replaceExtension(ExtensionType.supported_groups, groups)(ch),
      extensions: replaceExtension(ExtensionType.supported_groups, groups)(ch).extensions.map((e) =>
        e.type === ExtensionType.key_share ? { type: e.type, data: new Uint8Array([0, 0]) } : e
      ),
    }))),
    "handshake_failure",
  );
  const pssOnly = new Uint8Array([0, 2, 0x08, 0x04]);
  assert.equal(
    serverAlert(helloBytes(replaceExtension(ExtensionType.signature_algorithms, pssOnly))),
    "handshake_failure",
  );
});

Deno.test("an invalid peer key share is illegal_parameter", () => {
  const cases: [string, Uint8Array][] = [
    ["all-zero x25519", new Writer().u16(36).u16(0x1d).u16(32).bytes(new Uint8Array(32)).finish()],
    [
      "short x25519",
      new Writer().u16(35).u16(0x1d).u16(31).bytes(new Uint8Array(31).fill(9)).finish(),
    ],
    [
      "compressed P-256",
      new Writer().u16(37).u16(0x17).u16(33).u8(2).bytes(new Uint8Array(32).fill(1)).finish(),
    ],
    [
      "off-curve P-256",
      new Writer().u16(69).u16(0x17).u16(65).u8(4).bytes(new Uint8Array(64).fill(1)).finish(),
    ],
  ];
  for (const [name, data] of cases) {
    assert.equal(
      serverAlert(helloBytes(replaceExtension(ExtensionType.key_share, data))),
      "illegal_parameter",
      name,
    );
  }
});

Deno.test("two key shares for one group are illegal_parameter", () => {
  const p = makePair({}, { groups: ["x25519"], keyShares: ["x25519", "x25519"] });
  run(p);
  assert.equal(fatalOf(p.serverEvents), "illegal_parameter");
});

Deno.test("a record longer than 2^14+256 bytes is record_overflow", () => {
  assert.equal(serverAlert(new Uint8Array([22, 3, 1, 0x41, 0x01])), "record_overflow");
});

Deno.test("a plaintext record longer than 2^14 bytes is record_overflow", () => {
  const bytes = new Uint8Array(5 + 2 ** 14 + 1);
  bytes.set([22, 3, 1, 0x40, 0x01]);
  assert.equal(serverAlert(bytes), "record_overflow");
});

Deno.test("a handshake message over the size limit is refused before it is buffered", () => {
  assert.equal(
    serverAlert(writePlaintextRecord(ContentType.handshake, new Uint8Array([1, 0x10, 0, 0]))),
    "decode_error",
  );
});

Deno.test("a message other than ClientHello first is unexpected_message", () => {
  assert.equal(
    serverAlert(handshakeRecord(HandshakeType.finished, new Uint8Array(32))),
    "unexpected_message",
  );
  assert.equal(
    serverAlert(writePlaintextRecord(ContentType.application_data, new Uint8Array([1]))),
    "unexpected_message",
  );
  assert.equal(
    serverAlert(writePlaintextRecord(ContentType.handshake, new Uint8Array(0))),
    "unexpected_message",
  );
});

Deno.test("change_cipher_spec before the ClientHello is unexpected_message", () => {
  assert.equal(
    serverAlert(writePlaintextRecord(ContentType.change_cipher_spec, new Uint8Array([1]))),
    "unexpected_message",
  );
});

Deno.test("a ClientHello followed by more handshake data in the same record is unexpected_message", () => {
  const hello = helloBytes();
  const body = hello.subarray(5);
  const joined = writePlaintextRecord(ContentType.handshake, new Uint8Array([...body, 20, 0]));
  assert.equal(serverAlert(joined), "unexpected_message");
});

Deno.test("a second change_cipher_spec is unexpected_message", () => {
  const p = makePair();
  const ccs = writePlaintextRecord(ContentType.change_cipher_spec, new Uint8Array([1]));
  run(p, { toServer: (b, round) => round === 2 ? new Uint8Array([...ccs, ...b]) : b });
  assert.equal(fatalOf(p.serverEvents), "unexpected_message");
});

Deno.test("a change_cipher_spec with a byte other than 0x01 is unexpected_message", () => {
  const p = makePair({}, { legacySessionId: new Uint8Array(0) });
  const ccs = writePlaintextRecord(ContentType.change_cipher_spec, new Uint8Array([2]));
  run(p, { toServer: (b, round) => round === 2 ? new Uint8Array([...ccs, ...b]) : b });
  assert.equal(fatalOf(p.serverEvents), "unexpected_message");
});

Deno.test("a change_cipher_spec after the handshake is unexpected_message", () => {
  const p = makePair();
  run(p);
  p.server.receive(writePlaintextRecord(ContentType.change_cipher_spec, new Uint8Array([1])));
  assert.equal(fatalOf(p.server.takeEvents()), "unexpected_message");
});

Deno.test("a tampered client Finished is decrypt_error", () => {
  const p = makePair({}, {
    tamper: (type, msg) => {
      if (type === HandshakeType.finished) msg[msg.length - 1]! ^= 1;
      return msg;
    },
  });
  run(p);
  assert.equal(fatalOf(p.serverEvents), "decrypt_error");
  assert.equal(p.server.handshakeComplete, false);
});

Deno.test("a flipped bit in a protected record is bad_record_mac", () => {
  const p = makePair();
  run(p, {
    toServer: (b, round) => {
      if (round === 2) b[b.length - 1]! ^= 0x80;
      return b;
    },
  });
  assert.equal(fatalOf(p.serverEvents), "bad_record_mac");
  assert.equal(fatalOf(p.clientEvents), "bad_record_mac (received)");
});

Deno.test("a truncated Finished is decode_error", () => {
  const p = makePair({}, {
    tamper: (type, msg) => {
      if (type !== HandshakeType.finished) return msg;
      const short = msg.slice(0, msg.length - 1);
      short[3] = short.length - 4;
      return short;
    },
  });
  run(p);
  assert.equal(fatalOf(p.serverEvents), "decode_error");
});

Deno.test("a ClientHello where Finished is expected is unexpected_message", () => {
  const p = makePair({}, {
    tamper: (type, msg) => {
      if (type === HandshakeType.finished) msg[0] = HandshakeType.client_hello;
      return msg;
    },
  });
  run(p);
  assert.equal(fatalOf(p.serverEvents), "unexpected_message");
});

Deno.test("an application data record the server cannot open during the handshake is bad_record_mac", () => {
  const p = makePair();
  p.server.receive(p.client.takeOutgoing());
  p.server.receive(writePlaintextRecord(ContentType.application_data, new Uint8Array(40)));
  assert.equal(fatalOf(p.server.takeEvents()), "bad_record_mac");
});

Deno.test("an inconsistent second ClientHello is illegal_parameter", () => {
  const edits: [string, (ch: ClientHello) => ClientHello][] = [
    ["suites", (ch) => ({ ...ch, cipherSuites: ch.cipherSuites.slice(1) })],
    ["session id", (ch) => ({ ...ch, legacySessionId: new Uint8Array(32).fill(1) })],
    ["random", (ch) => ({ ...ch, random: new Uint8Array(32).fill(1) })],
    [
      "extensions",
      (ch) => ({
        ...ch,
        extensions: [...ch.extensions, { type: 0x1234, data: new Uint8Array(0) }],
      }),
    ],
    [
      "early_data",
      (ch) => ({
        ...ch,
        extensions: [...ch.extensions, { type: ExtensionType.early_data, data: new Uint8Array(0) }],
      }),
    ],
    [
      "no share",
      (ch) => ({
        ...ch,
        extensions:
          replaceExtension(ExtensionType.key_share, new Uint8Array([0, 0]))(ch).extensions,
      }),
    ],
  ];
  for (const [name, edit] of edits) {
    const p = makePair({}, {
      groups: ["x25519", "secp256r1"],
      keyShares: [],
      editClientHello: (ch, n) => n === 2 ? edit(ch) : ch,
    });
    run(p);
    assert.equal(fatalOf(p.serverEvents), "illegal_parameter", name);
  }
});

Deno.test("an unknown or warning-level alert from the peer is fatal; user_canceled is not", () => {
  const unknown = serverAlertEvents(new Uint8Array([21, 3, 3, 0, 2, 1, 200]));
  assert.deepEqual(unknown, [{
    kind: "fatal",
    alert: "internal_error",
    sentByUs: false,
    reason: "Peer sent unknown alert 200",
  }]);
  const warning = serverAlertEvents(new Uint8Array([21, 3, 3, 0, 2, 1, 40]));
  assert.equal(fatalOf(warning), "handshake_failure (received)");
  assert.deepEqual(serverAlertEvents(new Uint8Array([21, 3, 3, 0, 2, 1, 90])), []);
});

Deno.test("an alert record that is not two bytes is decode_error", () => {
  assert.equal(serverAlert(new Uint8Array([21, 3, 3, 0, 3, 1, 0, 0])), "decode_error");
});

function serverAlertEvents(bytes: Uint8Array) {
  const s = newServer();
  s.receive(bytes);
  return s.takeEvents();
}

Deno.test("a HelloRetryRequest carries the special random, the selected group and a CCS", () => {
  const p = makePair({}, { groups: ["x25519", "secp256r1"], keyShares: [] });
  p.server.receive(p.client.takeOutgoing());
  const out = p.server.takeOutgoing();
  assert.equal(out[0], ContentType.handshake);
  const len = (out[3]! << 8) | out[4]!;
  const hrr = out.subarray(5, 5 + len);
  assert.equal(hrr[0], HandshakeType.server_hello);
  assert.deepEqual(Array.from(hrr.subarray(6, 10)), [0xcf, 0x21, 0xad, 0x74]);
  // key_share with the selected group x25519 (0x001d), then supported_versions 0x0304.
  const tail = Array.from(hrr.subarray(hrr.length - 12));
  assert.deepEqual(tail, [0, 51, 0, 2, 0, 0x1d, 0, 43, 0, 2, 3, 4]);
  assert.deepEqual(Array.from(out.subarray(5 + len)), [20, 3, 3, 0, 1, 1]);
});

Deno.test("a change_cipher_spec inside a fragmented handshake message is unexpected_message", () => {
  const p = makePair();
  const ccs = writePlaintextRecord(ContentType.change_cipher_spec, new Uint8Array([1]));
  const hello = p.client.takeOutgoing();
  const body = hello.subarray(5);
  const first = writePlaintextRecord(ContentType.handshake, body.subarray(0, 10));
  const rest = writePlaintextRecord(ContentType.handshake, body.subarray(10));
  p.server.receive(new Uint8Array([...first, ...ccs, ...rest]));
  assert.equal(fatalOf(p.server.takeEvents()), "unexpected_message");
});

Deno.test("a plaintext alert from the client during the handshake is reported as received", () => {
  const p = makePair();
  p.server.receive(p.client.takeOutgoing());
  p.server.takeOutgoing();
  p.server.receive(new Uint8Array([21, 3, 3, 0, 2, 2, 42]));
  assert.equal(fatalOf(p.server.takeEvents()), "bad_certificate (received)");
  assert.equal(p.server.closed, true);
  assert.equal(p.server.takeOutgoing().length, 0, "no alert is sent back");
});

Deno.test("a plaintext handshake record after the ServerHello is unexpected_message", () => {
  const p = makePair();
  p.server.receive(p.client.takeOutgoing());
  p.server.receive(handshakeRecord(HandshakeType.finished, new Uint8Array(32)));
  assert.equal(fatalOf(p.server.takeEvents()), "unexpected_message");
});

Deno.test("a client that sees a second HelloRetryRequest ends with unexpected_message", () => {
  const p = makePair({ groups: ["secp384r1"] }, { groups: ["x25519", "secp384r1"] });
  const hello = p.client.takeOutgoing();
  p.server.receive(hello);
  const hrr = p.server.takeOutgoing();
  p.client.receive(hrr);
  p.client.takeOutgoing();
  // Replay the same HelloRetryRequest (without its CCS) as if the server retried again.
  const len = (hrr[3]! << 8) | hrr[4]!;
  p.client.receive(hrr.subarray(0, 5 + len));
  assert.equal(fatalOf(p.client.takeEvents()), "unexpected_message");
});

Deno.test("rejected 0-RTT records are skipped when the client offered early_data", () => {
  const early = { type: ExtensionType.early_data, data: new Uint8Array(0) };
  const junk = new Uint8Array([23, 3, 3, 0, 50, ...new Uint8Array(50).fill(7)]);
  const p = makePair({}, {
    editClientHello: (ch) => ({ ...ch, extensions: [...ch.extensions, early] }),
  });
  run(p, { toServer: (b, round) => round === 0 ? new Uint8Array([...b, ...junk, ...junk]) : b });
  assert.deepEqual(kinds(p.serverEvents), ["handshakeComplete"]);
});

Deno.test("undecryptable records without an early_data offer are bad_record_mac", () => {
  const junk = new Uint8Array([23, 3, 3, 0, 50, ...new Uint8Array(50).fill(7)]);
  const p = makePair();
  run(p, { toServer: (b, round) => round === 0 ? new Uint8Array([...b, ...junk]) : b });
  assert.equal(fatalOf(p.serverEvents), "bad_record_mac");
});

/** Offsets of the legacy_record_version bytes, which RFC 8446 (Section 5.1) says to ignore. */
function versionOffsets(flight: Uint8Array): Set<number> {
  const out = new Set<number>();
  for (let at = 0; at + 5 <= flight.length; at += 5 + ((flight[at + 3]! << 8) | flight[at + 4]!)) {
    out.add(at + 1).add(at + 2);
  }
  return out;
}

for (const side of ["client's second flight", "server's flight"] as const) {
  Deno.test(`random byte flips in the ${side} never throw and only an ignored byte lets the handshake complete`, () => {
    const rand = prng(side.length * 31);
    for (let i = 0; i < 40; i++) {
      const p = makePair();
      let ignorable = false;
      const flip = (b: Uint8Array) => {
        const [x, y, v] = rand(3);
        const at = ((x! << 8) | y!) % b.length;
        ignorable = versionOffsets(b).has(at);
        b[at]! ^= v! | 1;
        return b;
      };
      run(
        p,
        side === "server's flight"
          ? { toClient: (b, round) => round === 1 ? flip(b) : b }
          : { toServer: (b, round) => round === 2 ? flip(b) : b },
      );
      const done = p.client.handshakeComplete && p.server.handshakeComplete;
      // A protected record's version is authenticated (it is in the AAD), so only a plaintext
      // record's version byte may change without effect.
      assert.ok(!done || ignorable, `case ${i}`);
    }
  });
}
