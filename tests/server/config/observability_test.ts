import assert from "node:assert/strict";
import { ConfigError, parseConfig } from "../../../server/config/mod.ts";

const parse = (text: string) =>
  parseConfig(text, "/srv/postern/config.yaml", { checkFiles: false });

function errors(text: string): string[] {
  try {
    parse(text);
  } catch (error) {
    if (error instanceof ConfigError) return error.message.split("\n");
    throw error;
  }
  assert.fail("expected a ConfigError");
}

Deno.test("parseConfig() reads metrics.listen in block and flow style", () => {
  assert.deepEqual(parse("metrics:\n  listen: 127.0.0.1:9154\n").metrics, {
    address: "127.0.0.1:9154",
    hostname: "127.0.0.1",
    port: 9154,
    clientCa: [],
  });
  assert.equal(parse("metrics: { listen: 127.0.0.1:9154 }\n").metrics?.port, 9154);
  assert.equal(parse("").metrics, null);
  assert.deepEqual(
    parse("metrics: { listen: 0.0.0.0:9154, client_ca: certs/scrapers.pem }\n").metrics?.clientCa,
    ["/srv/postern/certs/scrapers.pem"],
  );
});

Deno.test("parseConfig() points at bad metrics and admin settings", () => {
  assert.deepEqual(
    errors("metrics:\n  listen: nowhere\n"),
    [
      'config.yaml:2:11: metrics.listen: invalid address "nowhere": expected host:port, such as 127.0.0.1:993',
    ].map((l) => `/srv/postern/${l}`),
  );
  assert.deepEqual(
    errors("metrics:\n  lisen: 127.0.0.1:1\n"),
    [
      '/srv/postern/config.yaml:2:3: unknown key "lisen" in metrics (did you mean "listen"?)',
      '/srv/postern/config.yaml:1:1: missing required key "listen" in metrics',
    ].sort((a, b) => a.localeCompare(b)),
  );
  assert.deepEqual(errors("admin:\n  enabled: yes\n"), [
    '/srv/postern/config.yaml:2:12: admin.enabled: expected true, false or auto, got "yes"',
  ]);
  const long = `/srv/${"x".repeat(120)}/admin.sock`;
  assert.match(
    errors(`admin:\n  socket: ${long}\n`)[0]!,
    /^\/srv\/postern\/config.yaml:2:11: admin.socket: the socket path .* is longer than 107 bytes/,
  );
});

Deno.test("parseConfig() puts the admin socket in data_dir unless told otherwise", () => {
  assert.deepEqual(parse("data_dir: /var/lib/postern\n").admin, {
    enabled: "auto",
    socket: "/var/lib/postern/admin.sock",
  });
  assert.deepEqual(parse("admin: { enabled: false, socket: run/admin.sock }\n").admin, {
    enabled: false,
    socket: "/srv/postern/run/admin.sock",
  });
  // A default path too long for a socket turns auto off at start instead of failing here.
  const deep = `/srv/${"x".repeat(120)}`;
  assert.equal(parse(`data_dir: ${deep}\n`).admin.enabled, "auto");
});
