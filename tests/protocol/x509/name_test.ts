import assert from "node:assert/strict";
import { DerError, DerWriter } from "../../../protocol/x509/der.ts";
import {
  encodeName,
  nameAttributes,
  namesEqual,
  nameToString,
  nameWithinSubtree,
  parseDnString,
  parseName,
} from "../../../protocol/x509/name.ts";

Deno.test("encodeName() and nameToString() round-trip through parseDnString()", () => {
  const dn = "CN=alice \\+ bob,OU=Mail\\, Ops,O=Example,DC=example,DC=org,C=DE";
  const name = parseName(encodeName(parseDnString(dn)));
  assert.equal(nameToString(name), dn);
  assert.deepEqual(nameAttributes(name)[0], { type: "C", oid: "2.5.4.6", value: "DE" });
});

Deno.test("nameToString() escapes RFC 4514 special characters and multi-valued RDNs", () => {
  const name = parseName(encodeName([[{ type: "O", value: "#x" }], [
    { type: "CN", value: " a;b " },
    { type: "UID", value: "u=1" },
  ]]));
  assert.equal(nameToString(name), "CN=\\ a\\;b\\ +UID=u\\=1,O=\\#x");
});

Deno.test("namesEqual() folds case and whitespace across string types (RFC 5280, Section 7.1)", () => {
  const printable = new DerWriter().sequence((w) =>
    w.setOf((s) => s.sequence((a) => a.oid("2.5.4.3").printable("Alice  Smith")))
  ).bytes();
  const utf8 = new DerWriter().sequence((w) =>
    w.setOf((s) => s.sequence((a) => a.oid("2.5.4.3").utf8(" alice smith ")))
  ).bytes();
  assert.ok(namesEqual(parseName(printable), parseName(utf8)));
  assert.ok(
    !namesEqual(parseName(printable), parseName(encodeName([[{ type: "CN", value: "alice" }]]))),
  );
  const a = parseName(encodeName([[{ type: "CN", value: "x" }, { type: "UID", value: "1" }]]));
  const b = parseName(encodeName([[{ type: "UID", value: "1" }, { type: "CN", value: "X" }]]));
  assert.ok(namesEqual(a, b));
});

Deno.test("nameWithinSubtree() matches on leading RDNs only", () => {
  const base = parseName(encodeName(parseDnString("O=Example,C=DE")));
  assert.ok(nameWithinSubtree(parseName(encodeName(parseDnString("CN=a,O=example,C=DE"))), base));
  assert.ok(!nameWithinSubtree(parseName(encodeName(parseDnString("CN=a,O=Other,C=DE"))), base));
  assert.ok(!nameWithinSubtree(parseName(encodeName(parseDnString("C=DE"))), base));
});

Deno.test("parseName() rejects empty RDNs and bad strings", () => {
  assert.throws(() => parseName(Uint8Array.of(0x30, 0x02, 0x31, 0x00)), DerError);
  const badPrintable = Uint8Array.of(
    0x30,
    0x0c,
    0x31,
    0x0a,
    0x30,
    0x08,
    0x06,
    0x03,
    0x55,
    4,
    3,
    0x13,
    1,
    0x2a,
  );
  assert.throws(() => parseName(badPrintable), DerError);
  assert.throws(() => parseDnString("CN"), DerError);
  assert.throws(() => parseDnString("XX=1"), DerError);
});

Deno.test("parseDnString() decodes hex escapes as UTF-8", () => {
  assert.deepEqual(parseDnString("CN=J\\C3\\BCrgen\\2c x"), [[{ type: "CN", value: "Jürgen, x" }]]);
  assert.throws(() => parseDnString("CN=\\C3"), DerError);
});
