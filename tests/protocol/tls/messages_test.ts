import assert from "node:assert/strict";
import { TlsAlert } from "../../../protocol/tls/alert.ts";
import { encode, Reader } from "../../../protocol/tls/codec.ts";
import { parseCertificate, writeCertificate } from "../../../protocol/tls/messages/certificate.ts";
import {
  parseCertificateRequest,
  writeCertificateRequest,
} from "../../../protocol/tls/messages/certificate_request.ts";
import {
  parseCertificateVerify,
  signedContent,
  writeCertificateVerify,
} from "../../../protocol/tls/messages/certificate_verify.ts";
import { parseClientHello, writeClientHello } from "../../../protocol/tls/messages/client_hello.ts";
import {
  findExtension,
  parseBody,
  readAlpn,
  readCertificateAuthorities,
  readExtensions,
  readServerName,
  writeAlpn,
  writeCertificateAuthorities,
  writeServerName,
} from "../../../protocol/tls/messages/extensions.ts";
import { parseFinished } from "../../../protocol/tls/messages/finished.ts";
import { HandshakeJoiner, writeHandshake } from "../../../protocol/tls/messages/handshake.ts";
import { parseKeyUpdate } from "../../../protocol/tls/messages/key_update.ts";
import {
  isHelloRetryRequest,
  parseServerHello,
  serverHello,
  writeServerHello,
} from "../../../protocol/tls/messages/server_hello.ts";
import { ExtensionType, HELLO_RETRY_REQUEST_RANDOM } from "../../../protocol/tls/wire.ts";
import { alertOf, hex, prng, toHex } from "./_helpers.ts";
import { RFC8448 } from "./_rfc8448.ts";

Deno.test("readClientHello() and writeClientHello() round-trip the RFC 8448 ClientHello", () => {
  const msg = hex(RFC8448.clientHello);
  const ch = parseClientHello(msg.subarray(4));
  assert.deepEqual(ch.cipherSuites, [0x1301, 0x1303, 0x1302]);
  const sni = findExtension(ch.extensions, ExtensionType.server_name)!;
  assert.equal(
    toHex(parseBody(sni, "server_name", readServerName)!),
    toHex(new TextEncoder().encode("server")),
  );
  assert.equal(toHex(encode(writeClientHello, ch)), toHex(msg.subarray(4)));
});

Deno.test("readServerHello() round-trips the RFC 8448 ServerHello and spots a HelloRetryRequest", () => {
  const body = hex(RFC8448.serverHello).subarray(4);
  const sh = parseServerHello(body);
  assert.equal(sh.cipherSuite, 0x1301);
  assert.equal(isHelloRetryRequest(sh), false);
  assert.equal(toHex(encode(writeServerHello, sh)), toHex(body));
  const hrr = serverHello(HELLO_RETRY_REQUEST_RANDOM, new Uint8Array(0), 0x1301, []);
  assert.equal(isHelloRetryRequest(parseServerHello(encode(writeServerHello, hrr))), true);
});

Deno.test("readCertificate() parses the RFC 8448 server Certificate", () => {
  const c = parseCertificate(hex(RFC8448.certificate).subarray(4));
  assert.equal(c.entries.length, 1);
  assert.equal(c.entries[0]!.data.length, 0x1b0);
  assert.equal(toHex(encode(writeCertificate, c)), RFC8448.certificate.slice(8));
});

Deno.test("readCertificateVerify() parses the RFC 8448 CertificateVerify", () => {
  const cv = parseCertificateVerify(hex(RFC8448.certificateVerify).subarray(4));
  assert.equal(cv.scheme, 0x0804);
  assert.equal(cv.signature.length, 128);
  assert.equal(toHex(encode(writeCertificateVerify, cv)), RFC8448.certificateVerify.slice(8));
});

Deno.test("signedContent() prefixes 64 spaces, the context string and a zero byte", () => {
  const c = signedContent("client", new Uint8Array([0xaa]));
  assert.equal(c.length, 64 + 33 + 1 + 1);
  assert.equal(c[0], 0x20);
  assert.equal(c[64], "T".charCodeAt(0));
  assert.equal(c[64 + 33], 0);
});

Deno.test("CertificateRequest with certificate_authorities round-trips", () => {
  const names = [new Uint8Array([0x30, 1, 2]), new Uint8Array([0x30, 0])];
  const cr = {
    context: new Uint8Array(0),
    extensions: [{
      type: ExtensionType.certificate_authorities,
      data: encode(writeCertificateAuthorities, names),
    }],
  };
  const back = parseCertificateRequest(encode(writeCertificateRequest, cr));
  const got = parseBody(back.extensions[0]!.data, "ca", readCertificateAuthorities);
  assert.deepEqual(got.map(toHex), names.map(toHex));
});

Deno.test("ALPN and server_name bodies round-trip and refuse empty names", () => {
  const alpn = encode(writeAlpn, [new TextEncoder().encode("imap")]);
  assert.equal(parseBody(alpn, "alpn", readAlpn).length, 1);
  assert.equal(
    alertOf(() => parseBody(new Uint8Array([0, 1, 0]), "alpn", readAlpn)),
    "decode_error",
  );
  const sni = encode(writeServerName, new TextEncoder().encode("a"));
  assert.equal(parseBody(sni, "sni", readServerName)?.length, 1);
  assert.equal(
    alertOf(() => parseBody(new Uint8Array([0, 3, 0, 0, 0]), "sni", readServerName)),
    "decode_error",
  );
});

Deno.test("parseFinished() and parseKeyUpdate() check their exact sizes and values", () => {
  assert.equal(alertOf(() => parseFinished(new Uint8Array(31), 32)), "decode_error");
  assert.equal(alertOf(() => parseFinished(new Uint8Array(33), 32)), "decode_error");
  assert.equal(parseFinished(new Uint8Array(48), 48).verifyData.length, 48);
  assert.equal(parseKeyUpdate(new Uint8Array([1])).updateRequested, true);
  assert.equal(alertOf(() => parseKeyUpdate(new Uint8Array([2]))), "illegal_parameter");
  assert.equal(alertOf(() => parseKeyUpdate(new Uint8Array([0, 0]))), "decode_error");
});

Deno.test("HandshakeJoiner reassembles fragmented and coalesced messages", () => {
  const a = writeHandshake(20, (w) => w.bytes(new Uint8Array(300).fill(1)));
  const b = writeHandshake(24, (w) => w.u8(0));
  const stream = new Uint8Array([...a, ...b, ...a]);
  const j = new HandshakeJoiner();
  const types: number[] = [];
  for (const byte of stream) {
    j.push(new Uint8Array([byte]));
    for (let m = j.next(); m !== null; m = j.next()) types.push(m.type);
  }
  assert.deepEqual(types, [20, 24, 20]);
  assert.equal(j.pending, false);
  const k = new HandshakeJoiner();
  k.push(stream);
  assert.equal(k.next()?.body.length, 300);
  assert.equal(k.next()?.body.length, 1);
  assert.equal(k.pending, true);
});

Deno.test("random ClientHello mutations either parse or fail with a TLS alert", () => {
  const body = hex(RFC8448.clientHello).subarray(4);
  const rand = prng(7);
  for (let i = 0; i < 500; i++) {
    const m = body.slice();
    for (let k = 0; k < 3; k++) {
      const [x, y, v] = rand(3);
      m[((x! << 8) | y!) % m.length] = v!;
    }
    try {
      parseClientHello(m);
    } catch (e) {
      assert.ok(e instanceof TlsAlert, String(e));
    }
  }
  assert.ok(new Reader(body).remaining > 0);
});

Deno.test("readExtensions: duplicates refused, the largest list read in linear time, no state kept", () => {
  // A list of `types` (empty bodies) with its 2-byte length prefix.
  const list = (types: readonly number[]) => {
    const out = new Uint8Array(2 + 4 * types.length);
    out[0] = (4 * types.length) >> 8;
    out[1] = (4 * types.length) & 0xff;
    types.forEach((t, i) => {
      out[2 + 4 * i] = t >> 8;
      out[3 + 4 * i] = t & 0xff;
    });
    return out;
  };
  const read = (bytes: Uint8Array) => readExtensions(new Reader(bytes, "test"), "test");
  const most = Array.from({ length: 16383 }, (_, i) => (i * 7919) & 0xffff);
  assert.equal(new Set(most).size, most.length);
  assert.equal(read(list(most)).length, most.length);
  const duplicate = [...most.slice(0, 16382), most[100]!];
  assert.throws(
    () => read(list(duplicate)),
    (e) => e instanceof TlsAlert && e.alert === "illegal_parameter",
  );
  // The third extension's body runs past the list, after two types were read: a decode_error.
  const cut = new Uint8Array([0, 12, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 5]);
  assert.throws(() => read(cut), (e) => e instanceof TlsAlert && e.alert === "decode_error");
  assert.equal(read(list([1, 2, 3])).length, 3);
  // Neither failure leaves a type behind as seen.
  assert.deepEqual(read(list([most[100]!, 1, 2, 3, 0, 0xffff])).map((e) => e.type), [
    most[100],
    1,
    2,
    3,
    0,
    0xffff,
  ]);
  assert.throws(() => read(list([0xffff, 5, 0xffff])), TlsAlert);
  assert.equal(read(list([0xffff])).length, 1);
});
