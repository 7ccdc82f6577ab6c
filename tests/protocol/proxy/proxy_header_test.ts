import assert from "node:assert/strict";
import {
  MAX_V1_LENGTH,
  PROXY_V2_SIGNATURE,
  type ProxyHeader,
  ProxyHeaderError,
  readProxyHeader,
  writeProxyV2,
} from "../../../protocol/proxy/mod.ts";

const enc = new TextEncoder();

function complete(input: Uint8Array, maxLength?: number): { header: ProxyHeader; length: number } {
  const result = readProxyHeader(input, maxLength);
  assert.equal(result.kind, "complete");
  if (result.kind !== "complete") throw new Error("unreachable");
  return { header: result.header, length: result.length };
}

function rejects(input: Uint8Array, pattern: RegExp, maxLength?: number): void {
  assert.throws(() => readProxyHeader(input, maxLength), (error: unknown) => {
    assert.ok(error instanceof ProxyHeaderError, String(error));
    assert.match(error.message, pattern);
    return true;
  });
}

const v4 = {
  source: { address: "203.0.113.7", port: 51234 },
  destination: { address: "192.0.2.1", port: 993 },
};

Deno.test("readProxyHeader() reads a v2 PROXY header for TCP over IPv4", () => {
  const bytes = writeProxyV2(v4);
  assert.equal(bytes.length, 28);
  const { header, length } = complete(bytes);
  assert.equal(length, 28);
  assert.deepEqual(header, {
    version: 2,
    command: "proxy",
    family: "inet",
    source: v4.source,
    destination: v4.destination,
    tlvCount: 0,
  });
});

Deno.test("readProxyHeader() reads a v2 header for IPv6 in canonical text (RFC 5952)", () => {
  const bytes = writeProxyV2({
    source: { address: "2001:DB8:0:0:0:0:0:1", port: 40000 },
    destination: { address: "2001:db8:0:0:1:0:0:1", port: 993 },
  });
  assert.equal(bytes.length, 16 + 36);
  const { header } = complete(bytes);
  assert.equal(header.family, "inet6");
  assert.deepEqual(header.source, { address: "2001:db8::1", port: 40000 });
  assert.deepEqual(header.destination, { address: "2001:db8::1:0:0:1", port: 993 });
});

Deno.test("readProxyHeader() gives an IPv4-mapped IPv6 client as IPv4", () => {
  const { header } = complete(writeProxyV2({
    source: { address: "::ffff:198.51.100.9", port: 1 },
    destination: { address: "::1", port: 993 },
  }));
  assert.equal(header.source?.address, "198.51.100.9");
  assert.equal(header.destination?.address, "::1");
});

Deno.test("readProxyHeader() leaves the bytes after the header to the application", () => {
  const header = writeProxyV2(v4);
  const clientHello = Uint8Array.of(0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5);
  const input = new Uint8Array(header.length + clientHello.length);
  input.set(header);
  input.set(clientHello, header.length);
  const { length } = complete(input);
  assert.deepEqual(input.subarray(length), clientHello);
});

Deno.test("readProxyHeader() takes LOCAL as the socket's own endpoints, ignoring the block", () => {
  // A health check: the family byte and the block are to be ignored, whatever they hold.
  const bytes = writeProxyV2({
    command: "local",
    familyByte: 0xff,
    addressBlock: Uint8Array.of(9, 9, 9),
  });
  const { header, length } = complete(bytes);
  assert.equal(length, 19);
  assert.equal(header.command, "local");
  assert.equal(header.source, null);
});

Deno.test("readProxyHeader() reads UNSPEC and UNIX families without IP endpoints", () => {
  const unspec = complete(writeProxyV2({ familyByte: 0x00 })).header;
  assert.equal(unspec.family, "unspec");
  assert.equal(unspec.source, null);
  const unix = complete(writeProxyV2({ familyByte: 0x31, addressBlock: new Uint8Array(216) }))
    .header;
  assert.equal(unix.family, "unix");
  assert.equal(unix.source, null);
  rejects(
    writeProxyV2({ familyByte: 0x31, addressBlock: new Uint8Array(215) }),
    /address block too short for unix/,
  );
});

Deno.test("readProxyHeader() skips TLVs and checks that they fill the block exactly", () => {
  const tlvs = [
    { type: 0x01, value: enc.encode("imap") }, // PP2_TYPE_ALPN
    { type: 0x04, value: new Uint8Array(0) }, // PP2_TYPE_NOOP
    { type: 0xe0, value: new Uint8Array(200) }, // a custom type
  ];
  const { header, length } = complete(writeProxyV2({ ...v4, tlvs }));
  assert.equal(header.tlvCount, 3);
  assert.equal(length, 28 + 7 + 3 + 203);

  // A TLV whose length runs past the header's.
  const bad = writeProxyV2({ ...v4, tlvs: [{ type: 0x01, value: enc.encode("imap") }] });
  bad[28 + 2] = 5;
  rejects(bad, /TLV of type 1 overruns the header/);
  // Two bytes left over: not even a TLV's type and length.
  const block = new Uint8Array(14);
  const short = writeProxyV2({ familyByte: 0x11, addressBlock: block });
  rejects(short, /Truncated PROXY v2 TLV/);
});

Deno.test("readProxyHeader() rejects bad versions, commands, families and transports", () => {
  const cases: [(b: Uint8Array) => void, RegExp][] = [
    [(b) => b[12] = 0x11, /Unsupported PROXY protocol version 1/],
    [(b) => b[12] = 0x31, /Unsupported PROXY protocol version 3/],
    [(b) => b[12] = 0x22, /Unknown PROXY v2 command 2/],
    [(b) => b[13] = 0x41, /Unknown PROXY v2 address family 4/],
    [(b) => b[13] = 0x13, /Unknown PROXY v2 transport 3/],
    [(b) => b[13] = 0x12, /Unsupported PROXY v2 transport dgram/],
    [(b) => b[13] = 0x10, /Unsupported PROXY v2 transport unspec/],
    [(b) => b[13] = 0x21, /address block too short for inet6: 12 bytes/],
  ];
  for (const [tamper, pattern] of cases) {
    const bytes = writeProxyV2(v4);
    tamper(bytes);
    rejects(bytes, pattern);
  }
});

Deno.test("readProxyHeader() refuses a v2 header over the cap as soon as its length is known", () => {
  const fixed = writeProxyV2(v4).subarray(0, 16);
  fixed[14] = 0xff;
  fixed[15] = 0xff;
  // Only the 16 fixed bytes have arrived: the declared length alone is enough to refuse.
  rejects(fixed, /too long: 65551 bytes \(at most 1024\)/);
  const big = writeProxyV2({ ...v4, tlvs: [{ type: 0xe0, value: new Uint8Array(100) }] });
  assert.equal(complete(big).length, 131);
  rejects(big, /too long: 131 bytes \(at most 130\)/, 130);
});

Deno.test("readProxyHeader() asks for more on every proper prefix of a header", () => {
  const inputs = [
    writeProxyV2(v4),
    writeProxyV2({ ...v4, tlvs: [{ type: 1, value: enc.encode("imap") }] }),
    writeProxyV2({ command: "local" }),
    enc.encode("PROXY TCP4 203.0.113.7 192.0.2.1 51234 993\r\n"),
    enc.encode("PROXY UNKNOWN\r\n"),
  ];
  for (const input of inputs) {
    for (let n = 0; n < input.length; n++) {
      assert.equal(readProxyHeader(input.subarray(0, n)).kind, "incomplete", `prefix ${n}`);
    }
    assert.equal(readProxyHeader(input).kind, "complete");
  }
});

Deno.test("readProxyHeader() refuses a connection that starts with anything else at once", () => {
  const starts = [
    Uint8Array.of(0x16, 0x03, 0x01), // a TLS ClientHello
    enc.encode("a001 LOGIN"), // IMAP
    enc.encode("GET / HTTP/1.1\r\n"),
    enc.encode("PROXY\r\n"),
    enc.encode("proxy TCP4"),
    PROXY_V2_SIGNATURE.map((b, i) => i === 11 ? 0x0b : b),
    Uint8Array.of(0x0d, 0x0a, 0x0d, 0x0a, 0x01),
  ];
  for (const start of starts) rejects(start, /Expected a PROXY protocol header/);
});

Deno.test("readProxyHeader() reads v1 TCP4, TCP6 and UNKNOWN lines", () => {
  const tcp4 = complete(enc.encode("PROXY TCP4 203.0.113.7 192.0.2.1 51234 993\r\nA1 NOOP"));
  assert.equal(tcp4.length, 44);
  assert.deepEqual(tcp4.header, {
    version: 1,
    command: "proxy",
    family: "inet",
    source: v4.source,
    destination: v4.destination,
    tlvCount: 0,
  });
  const tcp6 = complete(enc.encode("PROXY TCP6 2001:db8:0::1 ::1 65535 0\r\n")).header;
  assert.deepEqual(tcp6.source, { address: "2001:db8::1", port: 65535 });
  assert.deepEqual(tcp6.destination, { address: "::1", port: 0 });
  const unknown = complete(enc.encode("PROXY UNKNOWN ffff::1 whatever\r\n")).header;
  assert.equal(unknown.family, "unspec");
  assert.equal(unknown.source, null);
});

Deno.test("readProxyHeader() rejects malformed v1 lines with a precise reason", () => {
  const cases: [string, RegExp][] = [
    ["PROXY TCP4 203.0.113.7 192.0.2.1 51234\r\n", /expected 6 fields, got 5/],
    ["PROXY TCP4 203.0.113.7  192.0.2.1 51234 993\r\n", /expected 6 fields, got 7/],
    ["PROXY TCP4 203.0.113.7 192.0.2.1 51234 993 \r\n", /expected 6 fields, got 7/],
    ["PROXY UDP4 203.0.113.7 192.0.2.1 51234 993\r\n", /unknown protocol/],
    ["PROXY TCP4 ::1 192.0.2.1 51234 993\r\n", /invalid TCP4 address/],
    ["PROXY TCP6 203.0.113.7 ::1 51234 993\r\n", /invalid TCP6 address/],
    ["PROXY TCP4 203.0.113.256 192.0.2.1 51234 993\r\n", /invalid TCP4 address/],
    ["PROXY TCP4 203.0.113.7 192.0.2.1 65536 993\r\n", /invalid port/],
    ["PROXY TCP4 203.0.113.7 192.0.2.1 0993 993\r\n", /invalid port/],
    ["PROXY TCP4 203.0.113.7 192.0.2.1 -1 993\r\n", /invalid port/],
    ["PROXY TCP4 203.0.113.7 192.0.2.1 1 993\rX", /CR without LF/],
    ["PROXY TCP4 203.0.113.7\n", /control or non-ASCII/],
    ["PROXY TCP4 203.0.113.7\u00e9", /control or non-ASCII/],
  ];
  for (const [line, pattern] of cases) rejects(enc.encode(line), pattern);
});

Deno.test("readProxyHeader() caps a v1 line at 107 bytes", () => {
  // The specification's worst case: UNKNOWN followed by two full IPv6 addresses and ports.
  const longest = `PROXY UNKNOWN ${"ffff:".repeat(7)}ffff ${"ffff:".repeat(7)}ffff 65535 65535\r\n`;
  assert.equal(longest.length, MAX_V1_LENGTH);
  assert.equal(complete(enc.encode(longest)).length, MAX_V1_LENGTH);
  const endless = enc.encode(`PROXY UNKNOWN ${"x".repeat(200)}`);
  assert.equal(readProxyHeader(endless.subarray(0, 106)).kind, "incomplete");
  rejects(endless.subarray(0, 107), /too long \(at most 107 bytes\)/);
  rejects(endless, /too long/);
});

Deno.test("readProxyHeader() never throws anything but ProxyHeaderError on random input", () => {
  const random = (n: number) => crypto.getRandomValues(new Uint8Array(n));
  for (let i = 0; i < 3000; i++) {
    const input = random(1 + (i % 300));
    // Half of the inputs start with a valid signature, so that the later checks are reached.
    if (i % 2 === 0) input.set(PROXY_V2_SIGNATURE.subarray(0, Math.min(12, input.length)));
    if (i % 4 === 1) input.set(enc.encode("PROXY ").subarray(0, Math.min(6, input.length)));
    try {
      const result = readProxyHeader(input);
      if (result.kind === "complete") assert.ok(result.length <= input.length);
    } catch (error) {
      assert.ok(error instanceof ProxyHeaderError, String(error));
    }
  }
});
