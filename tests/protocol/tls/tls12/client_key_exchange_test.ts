/**
 * ClientKeyExchange points: Wycheproof's ECDH vectors (copied into tests/fixtures/wycheproof)
 * through the server's point check, and fuzzed ClientKeyExchange messages through a handshake.
 */
import assert from "node:assert/strict";
import type { KeyExchangeGroup } from "../../../../protocol/crypto/provider.ts";
import { agree } from "../../../../protocol/tls/tls12/server12.ts";
import { HandshakeType12 } from "../../../../protocol/tls/tls12/wire12.ts";
import { alertOf, hex, prng, toHex } from "../_helpers.ts";
import { fatalOf, provider, run } from "../_pair.ts";
import { makePair12 } from "./_pair12.ts";

interface Vector {
  tcId: number;
  flags: string[];
  public: string;
  private: string;
  shared: string;
  result: "valid" | "acceptable" | "invalid";
}

function load(name: string): Vector[] {
  const url = new URL(`../../../fixtures/wycheproof/${name}`, import.meta.url);
  const json = JSON.parse(Deno.readTextFileSync(url));
  return json.testGroups.flatMap((g: { tests: Vector[] }) => g.tests);
}

/** A big-endian scalar of exactly `n` bytes (Wycheproof may add a sign byte). */
function scalar(h: string, n: number): Uint8Array {
  const b = hex(h);
  if (b.length === n) return b;
  if (b.length > n) return b.subarray(b.length - n);
  const out = new Uint8Array(n);
  out.set(b, n - b.length);
  return out;
}

const CASES: [string, KeyExchangeGroup, number][] = [
  ["ecdh_secp256r1_ecpoint_test.json", "secp256r1", 32],
  ["x25519_test.json", "x25519", 32],
];

for (const [file, group, size] of CASES) {
  Deno.test(`Wycheproof ${file}: valid points agree, invalid ones are illegal_parameter`, () => {
    let checked = 0;
    for (const v of load(file)) {
      const ours = provider.keyShareFromPrivate(group, scalar(v.private, size));
      const alert = alertOf(() => {
        const secret = agree(group, ours, hex(v.public));
        assert.equal(toHex(secret), v.shared, `tcId ${v.tcId}`);
      });
      if (v.result === "valid") assert.equal(alert, "none", `tcId ${v.tcId} ${v.flags}`);
      else if (v.result === "invalid") assert.equal(alert, "illegal_parameter", `tcId ${v.tcId}`);
      else if (v.flags.includes("ZeroSharedSecret") || v.flags.includes("CompressedPoint")) {
        // Compressed points are not allowed in TLS (RFC 8422, Section 5.1.2); an all-zero
        // X25519 result must be refused (RFC 7748, Section 6.1).
        assert.equal(alert, "illegal_parameter", `tcId ${v.tcId} ${v.flags}`);
      }
      checked++;
    }
    assert.ok(checked > 100);
  });
}

function cke(point: Uint8Array): Uint8Array {
  return new Uint8Array([
    HandshakeType12.client_key_exchange,
    0,
    0,
    point.length + 1,
    point.length,
    ...point,
  ]);
}

function serverAlertWithKeyExchange(
  body: Uint8Array,
  groups: KeyExchangeGroup[] = ["x25519"],
): string | null {
  const p = makePair12({}, {
    groups,
    tamper: (type, encoded) =>
      type === HandshakeType12.client_key_exchange
        ? new Uint8Array([
          type,
          body.length >> 16,
          (body.length >> 8) & 0xff,
          body.length & 0xff,
          ...body,
        ])
        : encoded,
  });
  run(p);
  return fatalOf(p.serverEvents);
}

Deno.test("a ClientKeyExchange point of the wrong form gets illegal_parameter", () => {
  const p256 = provider.generateKeyShare("secp256r1").publicKey;
  const compressed = new Uint8Array([2 + (p256[64]! & 1), ...p256.subarray(1, 33)]);
  const offCurve = p256.slice();
  offCurve[64]! ^= 1;
  for (
    const [what, point, group] of [
      ["x25519 of 31 bytes", new Uint8Array(31).fill(9), "x25519"],
      ["x25519 of 33 bytes", new Uint8Array(33).fill(9), "x25519"],
      ["all-zero x25519 (low order)", new Uint8Array(32), "x25519"],
      ["compressed P-256", compressed, "secp256r1"],
      ["P-256 off the curve", offCurve, "secp256r1"],
      [
        "P-256 with a P-384 length",
        new Uint8Array([4, ...new Uint8Array(96).fill(1)]),
        "secp256r1",
      ],
      ["P-256 point at infinity", new Uint8Array([0]), "secp256r1"],
    ] as [string, Uint8Array, KeyExchangeGroup][]
  ) {
    assert.equal(
      serverAlertWithKeyExchange(cke(point).subarray(4), [group]),
      "illegal_parameter",
      what,
    );
  }
});

Deno.test("a malformed ClientKeyExchange vector gets decode_error", () => {
  const good = provider.generateKeyShare("x25519").publicKey;
  const body = new Uint8Array([32, ...good]);
  for (let n = 0; n < body.length; n++) {
    assert.equal(serverAlertWithKeyExchange(body.subarray(0, n)), "decode_error", `prefix ${n}`);
  }
  assert.equal(serverAlertWithKeyExchange(new Uint8Array([...body, 0])), "decode_error");
  assert.equal(serverAlertWithKeyExchange(new Uint8Array([0])), "decode_error");
});

Deno.test("fuzzed ClientKeyExchange bodies always end in a precise alert", () => {
  const rand = prng(1312);
  for (let i = 0; i < 200; i++) {
    const len = rand(1)[0]! % 80;
    const body = rand(len);
    if (i % 2 === 0 && len > 0) body[0] = len - 1;
    const alert = serverAlertWithKeyExchange(body, [i % 3 === 0 ? "secp256r1" : "x25519"]);
    assert.ok(
      alert === "decode_error" || alert === "illegal_parameter" || alert === "bad_record_mac",
      `case ${i}: ${alert}`,
    );
  }
});
