import assert from "node:assert/strict";
import { parseCertificate } from "../../../protocol/x509/certificate.ts";
import { matchesHostname } from "../../../protocol/x509/hostname.ts";
import { issue, root } from "./_fixtures.ts";

const ca = root("CN=Host Root");
const cert = parseCertificate(
  issue("CN=ignored.example.org", ca, {
    sanDns: ["localhost", "*.mail.example.org", "Imap.Example.org"],
    sanIp: ["127.0.0.1", "::1"],
  }).der,
);

Deno.test("matchesHostname() matches dNSName entries with left-most wildcards only", () => {
  assert.ok(matchesHostname(cert, "localhost"));
  assert.ok(matchesHostname(cert, "imap.example.org"));
  assert.ok(matchesHostname(cert, "IMAP.example.org."));
  assert.ok(matchesHostname(cert, "a.mail.example.org"));
  assert.ok(!matchesHostname(cert, "mail.example.org"));
  assert.ok(!matchesHostname(cert, "a.b.mail.example.org"));
  assert.ok(!matchesHostname(cert, "ignored.example.org"));
  assert.ok(!matchesHostname(cert, "example.org"));
});

Deno.test("matchesHostname() matches IP literals against iPAddress entries only", () => {
  assert.ok(matchesHostname(cert, "127.0.0.1"));
  assert.ok(matchesHostname(cert, "::1"));
  assert.ok(matchesHostname(cert, "[::1]"));
  assert.ok(!matchesHostname(cert, "127.0.0.2"));
  assert.ok(!matchesHostname(cert, "999.0.0.1"));
  const wild = parseCertificate(issue("CN=x", ca, { sanDns: ["*.org"] }).der);
  assert.ok(!matchesHostname(wild, "example.org"));
});
