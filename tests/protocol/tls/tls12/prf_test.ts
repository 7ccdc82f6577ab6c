import assert from "node:assert/strict";
import { ascii } from "../../../../protocol/tls/codec.ts";
import {
  extendedMasterSecret,
  finishedVerifyData12,
  keyBlock,
  masterSecret,
  prf,
} from "../../../../protocol/tls/tls12/prf.ts";
import { hex, toHex } from "../_helpers.ts";
import { provider } from "../_pair.ts";

// The TLS 1.2 PRF vectors posted to the IETF TLS working group list
// (https://www.ietf.org/mail-archive/web/tls/current/msg03416.html); RFC 5246 has none itself.
Deno.test("prf() matches the published P_SHA256 vector", () => {
  const out = prf(
    provider,
    "SHA-256",
    hex("9bbe436ba940f017b17652849a71db35"),
    ascii("test label"),
    hex("a0ba9f936cda311827a6f796ffd5198c"),
    100,
  );
  assert.equal(
    toHex(out),
    "e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a" +
      "6b301791e90d35c9c9a46b4e14baf9af0fa022f7077def17abfd3797c0564bab" +
      "4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff701" +
      "87347b66",
  );
});

Deno.test("prf() matches the published P_SHA384 vector", () => {
  const out = prf(
    provider,
    "SHA-384",
    hex("b80b733d6ceefcdc71566ea48e5567df"),
    ascii("test label"),
    hex("cd665cf6a8447dd6ff8b27555edb7465"),
    148,
  );
  assert.equal(
    toHex(out),
    "7b0c18e9ced410ed1804f2cfa34a336a1c14dffb4900bb5fd7942107e81c83cde9ca0faa60be9fe34f82b123" +
      "3c9146a0e534cb400fed2700884f9dc236f80edd8bfa961144c9e8d792eca722a7b32fc3d416d473ebc2c5" +
      "fd4abfdad05d9184259b5bf8cd4d90fa0d31e2dec479e4f1a26066f2eea9a69236a3e52655c9e9aee691c8" +
      "f3a26854308d5eaa3be85e0990703d73e56f",
  );
});

Deno.test("prf() output is a prefix of any longer output, and lengths are bounded", () => {
  const secret = hex("00112233");
  const long = prf(provider, "SHA-256", secret, ascii("x"), hex("01"), 200);
  for (const n of [0, 1, 31, 32, 33, 64, 199]) {
    assert.deepEqual(
      prf(provider, "SHA-256", secret, ascii("x"), hex("01"), n),
      long.subarray(0, n),
    );
  }
  assert.throws(() => prf(provider, "SHA-256", secret, ascii("x"), hex("01"), 4096), RangeError);
});

Deno.test("the derived secrets are the PRF with the RFC 5246 and RFC 7627 labels and seeds", () => {
  const pms = hex("aa".repeat(32));
  const cr = hex("01".repeat(32));
  const sr = hex("02".repeat(32));
  const concat = (a: Uint8Array, b: Uint8Array) => new Uint8Array([...a, ...b]);
  assert.deepEqual(
    masterSecret(provider, "SHA-256", pms, cr, sr),
    prf(provider, "SHA-256", pms, ascii("master secret"), concat(cr, sr), 48),
  );
  const sessionHash = hex("03".repeat(32));
  assert.deepEqual(
    extendedMasterSecret(provider, "SHA-256", pms, sessionHash),
    prf(provider, "SHA-256", pms, ascii("extended master secret"), sessionHash, 48),
  );
  const master = hex("04".repeat(48));
  const kb = keyBlock(provider, "SHA-384", master, cr, sr, 32, 4);
  const raw = prf(provider, "SHA-384", master, ascii("key expansion"), concat(sr, cr), 72);
  assert.deepEqual(kb.clientKey, raw.subarray(0, 32));
  assert.deepEqual(kb.serverKey, raw.subarray(32, 64));
  assert.deepEqual(kb.clientIv, raw.subarray(64, 68));
  assert.deepEqual(kb.serverIv, raw.subarray(68, 72));
  assert.deepEqual(
    finishedVerifyData12(provider, "SHA-256", master, "client", sessionHash),
    prf(provider, "SHA-256", master, ascii("client finished"), sessionHash, 12),
  );
});
