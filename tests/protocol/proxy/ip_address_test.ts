import assert from "node:assert/strict";
import {
  formatIpAddress,
  inRanges,
  parseCidr,
  parseIpAddress,
} from "../../../protocol/proxy/mod.ts";

Deno.test("formatIpAddress() writes RFC 5952 text and round-trips through parseIpAddress()", () => {
  const cases: [string, string][] = [
    ["127.0.0.1", "127.0.0.1"],
    ["::1", "::1"],
    ["::", "::"],
    ["2001:DB8:0:0:0:0:2:1", "2001:db8::2:1"],
    ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"], // a single zero group stays
    ["2001:0:0:1:0:0:0:1", "2001:0:0:1::1"], // the longest run is shortened
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"], // the first of equal runs
    ["::ffff:192.0.2.1", "192.0.2.1"], // IPv4-mapped comes out as IPv4
    ["fe80::1:2", "fe80::1:2"],
  ];
  for (const [input, expected] of cases) {
    const bytes = parseIpAddress(input);
    assert.ok(bytes, input);
    assert.equal(formatIpAddress(bytes), expected, input);
  }
});

Deno.test("parseIpAddress() rejects what is not an address", () => {
  for (
    const text of [
      "",
      "1.2.3",
      "1.2.3.4.5",
      "01.2.3.4",
      "256.0.0.1",
      "1:2:3:4:5:6:7",
      "1::2::3",
      "1:2:3:4:5:6:7:8:9",
      "12345::1",
      "::g",
      "example.org",
      "::1%eth0",
    ]
  ) {
    assert.equal(parseIpAddress(text), null, text);
  }
});

Deno.test("inRanges() matches IPv4, IPv6 and IPv4-mapped addresses against CIDRs", () => {
  const ranges = ["10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "172.16.0.0/12"].map((c) => {
    const parsed = parseCidr(c);
    assert.ok(parsed, c);
    return parsed;
  });
  const yes = ["10.1.2.3", "192.0.2.7", "2001:db8:ffff::1", "::ffff:10.9.9.9", "172.31.255.255"];
  const no = ["11.0.0.1", "192.0.2.8", "2001:db9::1", "::1", "172.32.0.0", "::a00:1"];
  for (const a of yes) assert.ok(inRanges(parseIpAddress(a)!, ranges), a);
  for (const a of no) assert.ok(!inRanges(parseIpAddress(a)!, ranges), a);
  assert.ok(inRanges(parseIpAddress("203.0.113.1")!, [parseCidr("0.0.0.0/0")!]));
  assert.ok(!inRanges(parseIpAddress("::1")!, [parseCidr("0.0.0.0/0")!]));
});

Deno.test("parseCidr() rejects bad prefixes and addresses", () => {
  for (const text of ["10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/08", "10.0.0.0/-1", "x/8"]) {
    assert.equal(parseCidr(text), null, text);
  }
  assert.deepEqual(parseCidr("10.1.2.3/8"), { network: Uint8Array.of(10, 0, 0, 0), prefix: 8 });
});
