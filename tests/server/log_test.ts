import assert from "node:assert/strict";
import { resetSync } from "@logtape/logtape";
import { getLogger, isSecretName, redact, renderValue, setupLogging } from "../../server/log.ts";

function capture(format: "text" | "json", level: "debug" | "info" | "warning" | "error") {
  const lines: string[] = [];
  setupLogging({ level, format, color: false, write: (line) => lines.push(line) });
  return lines;
}

Deno.test("setupLogging() writes one JSON object per line with a stable shape", () => {
  const lines = capture("json", "info");
  try {
    getLogger("imap").info("Login by {user}", { user: "alice", peer: "127.0.0.1:4000" });
    getLogger(["tls", "handshake"]).error("Handshake failed: {alert}", { alert: "unknown_ca" });
    getLogger("imap").debug("Below the level");
  } finally {
    resetSync();
  }
  assert.equal(lines.length, 2);
  for (const line of lines) assert.ok(line.endsWith("\n") && !line.slice(0, -1).includes("\n"));
  const first = JSON.parse(lines[0]!);
  assert.deepEqual(Object.keys(first).sort(), [
    "@timestamp",
    "level",
    "logger",
    "message",
    "properties",
  ]);
  assert.match(first["@timestamp"], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.equal(first.level, "INFO");
  assert.equal(first.logger, "postern.imap");
  assert.equal(first.message, 'Login by "alice"');
  assert.deepEqual(first.properties, { user: "alice", peer: "127.0.0.1:4000" });
  const second = JSON.parse(lines[1]!);
  assert.equal(second.level, "ERROR");
  assert.equal(second.logger, "postern.tls.handshake");
});

Deno.test("setupLogging() never lets secret properties through, in JSON or text", () => {
  for (const format of ["json", "text"] as const) {
    const lines = capture(format, "debug");
    try {
      getLogger("auth").warn("Bind as {dn} with {password} failed", {
        dn: "cn=postern",
        password: "hunter2",
        request: { headers: { Authorization: "Basic aHVudGVyMg==" }, bindSecret: "s3" },
        private_key: "-----BEGIN PRIVATE KEY-----",
      });
    } finally {
      resetSync();
    }
    assert.equal(lines.length, 1);
    const line = lines[0]!;
    for (const secret of ["hunter2", "aHVudGVyMg", 's3"', "BEGIN PRIVATE KEY"]) {
      assert.ok(!line.includes(secret), `${format} line leaks ${secret}: ${line}`);
    }
    assert.ok(line.includes("cn=postern"));
    assert.ok(line.includes("[redacted]"));
  }
});

Deno.test("setupLogging() writes readable text lines with level, category and extra fields", () => {
  const lines = capture("text", "warning");
  try {
    getLogger("listener").info("Hidden at warning level");
    getLogger("listener").warning("Connection limit reached for {address}", {
      address: "10.0.0.1",
      count: 50,
    });
  } finally {
    resetSync();
  }
  assert.equal(lines.length, 1);
  assert.match(
    lines[0]!,
    /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \+00 \[WRN\] postern\.listener: Connection limit reached for "10\.0\.0\.1" count=50\n$/,
  );
});

Deno.test("redact() replaces secret-named keys at any depth and keeps the rest", () => {
  assert.deepEqual(
    redact({
      user: "bob",
      password: "x",
      nested: [{ apiKey: "k", keyboard: "qwerty" }],
      authorization: "Bearer t",
      bytes: new Uint8Array(3),
    }),
    {
      user: "bob",
      password: "[redacted]",
      nested: [{ apiKey: "[redacted]", keyboard: "qwerty" }],
      authorization: "[redacted]",
      bytes: "[3 bytes]",
    },
  );
  const cyclic: Record<string, unknown> = { name: "c" };
  cyclic.self = cyclic;
  assert.deepEqual(redact(cyclic), { name: "c", self: "[circular]" });
  assert.equal(redact("plain"), "plain");
});

Deno.test("isSecretName() judges names by their words, the same when it answers again", () => {
  for (let round = 0; round < 2; round++) {
    for (const name of ["password", "bindPassword", "private_key", "Authorization", "x-api-key"]) {
      assert.equal(isSecretName(name), true, name);
    }
    for (const name of ["keyboard", "user", "monkey", "passwordless_flow_id"]) {
      assert.equal(isSecretName(name), false, name);
    }
  }
  // Past the names it remembers, it still judges each one.
  for (let i = 0; i < 3000; i++) assert.equal(isSecretName(`field${i}Token`), true);
  assert.equal(isSecretName("field2999"), false);
});

Deno.test("text lines render values as Deno.inspect does, the common ones without it", () => {
  const samples: unknown[] = [
    "",
    "127.0.0.1:4000",
    "CN=Alice Example,O=Postern",
    'say "hi"',
    "back\\slash",
    "it's",
    "two\nlines",
    "tab\there",
    "\u001b[31mred",
    "é",
    "\u0000",
    0,
    -0,
    7,
    -5,
    1.5,
    1e21,
    2 ** 53,
    NaN,
    Infinity,
    -Infinity,
    null,
    undefined,
    true,
    false,
    10n,
    ["a", 1],
    { peer: "x", n: 2 },
    new Date(0),
  ];
  const reference = (v: unknown) =>
    Deno.inspect(v, { strAbbreviateSize: Infinity, iterableLimit: Infinity });
  let inspected = 0;
  const counting = (v: unknown) => {
    inspected++;
    return reference(v);
  };
  for (const v of samples) assert.equal(renderValue(v, counting), reference(v), String(v));
  const direct = samples.length - inspected;
  assert.equal(direct, 14, "plain strings, finite numbers, null, undefined and booleans");
});
