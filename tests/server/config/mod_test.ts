import assert from "node:assert/strict";
import { join } from "node:path";
import {
  type Config,
  ConfigError,
  defaultConfig,
  directoryConfigInput,
  loadConfig,
  parseConfig,
  parseDuration,
  workerCount,
} from "../../../server/config/mod.ts";
import { parseAddress, parseSize } from "../../../server/config/values.ts";
import { editDistance, suggest } from "../../../server/config/suggest.ts";

const ROOT = new URL("../../../", import.meta.url).pathname;

/** Runs `parseConfig` and returns the error lines, or fails when it succeeds. */
function errorsOf(text: string, checkFiles = false): string[] {
  try {
    parseConfig(text, "config.yaml", { checkFiles });
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${error}`);
    assert.equal(error.name, "ConfigError");
    return error.message.split("\n");
  }
  assert.fail("expected a ConfigError");
}

function openssl(args: string[], cwd: string): void {
  const out = new Deno.Command("openssl", { args, cwd, stdout: "null", stderr: "piped" })
    .outputSync();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
}

/** A temp dir with certs/server.pem, certs/server.key, certs/ca.pem and an unrelated key. */
function makePki(): string {
  const dir = Deno.makeTempDirSync({ prefix: "postern-config-" });
  Deno.mkdirSync(join(dir, "certs"));
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  openssl(
    ["req", "-x509", ...ec, "-keyout", "certs/server.key", "-out", "certs/server.pem"]
      .concat(["-subj", "/CN=localhost", "-days", "1"]),
    dir,
  );
  openssl(
    ["req", "-x509", ...ec, "-keyout", "certs/ca.key", "-out", "certs/ca.pem"]
      .concat(["-subj", "/CN=Test CA", "-days", "1"]),
    dir,
  );
  openssl(["genpkey", "-algorithm", "ed25519", "-out", "certs/other.key"], dir);
  return dir;
}

Deno.test("parseConfig() reports an unknown key with a did-you-mean suggestion", () => {
  const text = "data_dir: ./data\nlissten:\n  - address: 127.0.0.1:993\n    tls: implicit\n";
  assert.deepEqual(errorsOf(text), [
    'config.yaml:2:1: unknown key "lissten" (did you mean "listen"?)',
  ]);
});

Deno.test("parseConfig() reports an unknown nested key at its own position", () => {
  const text = "tls:\n  client_auth: none\n  certficate: a.pem\nlog:\n  colour: red\n";
  assert.deepEqual(errorsOf(text), [
    'config.yaml:3:3: unknown key "certficate" in tls (did you mean "certificate"?)',
    'config.yaml:5:3: unknown key "colour" in log',
  ]);
});

Deno.test("parseConfig() reports YAML syntax errors with their position", () => {
  const lines = errorsOf("log:\n  level: info\n   format: json\n");
  assert.deepEqual(lines, [
    "config.yaml:2:10: YAML syntax error: Nested mappings are not allowed in compact mappings",
    "config.yaml:2:10: YAML syntax error: Implicit keys need to be on a single line",
  ]);
  assert.deepEqual(errorsOf("listen: [\n"), [
    "config.yaml:2:1: YAML syntax error: Flow sequence in block collection must be " +
    "sufficiently indented and end with a ]",
  ]);
});

Deno.test("parseConfig() rejects duplicate keys", () => {
  const lines = errorsOf("log:\n  level: info\n  level: debug\n");
  assert.equal(lines.length, 1);
  assert.match(lines[0]!, /^config\.yaml:3:3: YAML syntax error: Map keys must be unique/);
});

Deno.test("parseConfig() reports wrong types", () => {
  const text = [
    "data_dir: 12",
    "listen: 127.0.0.1:993",
    "imap:",
    "  preauth_with_certificate: yes",
    "limits:",
    "  max_connections_per_user: ten",
    "  max_connections_per_address: 0",
    "tls: [a]",
    "",
  ].join("\n");
  assert.deepEqual(errorsOf(text), [
    "config.yaml:1:11: data_dir: expected text, got number 12",
    'config.yaml:2:9: listen: expected a list of {address, tls} entries, got "127.0.0.1:993"',
    'config.yaml:4:29: imap.preauth_with_certificate: expected true or false, got "yes"',
    'config.yaml:6:29: limits.max_connections_per_user: expected a number, got "ten"',
    "config.yaml:7:32: limits.max_connections_per_address: expected a whole number from 1 to " +
    `${Number.MAX_SAFE_INTEGER}, got 0`,
    "config.yaml:8:6: tls must be a mapping of keys, got a list",
  ]);
});

Deno.test("parseConfig() reads server.workers: auto, a count, or an error at its position", () => {
  const at = (text: string) => parseConfig(text, "/srv/config.yaml", { checkFiles: false });
  assert.equal(at("server:\n  workers: auto\n").server.workers, "auto");
  assert.equal(at("server:\n  workers: 3\n").server.workers, 3);
  assert.equal(workerCount(at("server:\n  workers: 1\n")), 1);
  assert.ok(workerCount(at("")) >= 1);
  assert.deepEqual(errorsOf("server:\n  workers: many\n"), [
    'config.yaml:2:12: server.workers: expected auto or a whole number, got "many"',
  ]);
  assert.deepEqual(errorsOf("server:\n  workers: 0\n"), [
    "config.yaml:2:12: server.workers: expected a whole number from 1 to 256, got 0",
  ]);
});

Deno.test("parseConfig() reports bad enum values, suggesting the closest", () => {
  const text = [
    "listen:",
    "  - address: 127.0.0.1:993",
    "    tls: implict",
    "tls:",
    "  client_auth: sometimes",
    "log: {level: verbose, format: json}",
    "",
  ].join("\n");
  assert.deepEqual(errorsOf(text), [
    'config.yaml:3:10: listen[0].tls: invalid value "implict" (expected implicit or starttls); ' +
    'did you mean "implicit"?',
    'config.yaml:5:16: tls.client_auth: invalid value "sometimes" (expected none, optional or ' +
    "required)",
    'config.yaml:6:14: log.level: invalid value "verbose" (expected debug, info, warning or error)',
  ]);
});

Deno.test("parseConfig() reports bad durations and durations below their minimum", () => {
  const text = [
    "tls:",
    "  handshake_timeout: 10",
    "limits:",
    "  idle_timeout: 5m",
    "directory:",
    "  url: ldap://127.0.0.1:389",
    "  bind_dn: cn=postern",
    "  bind_password_file: pw",
    "  base_dn: dc=example",
    "  cache_ttl: soon",
    "",
  ].join("\n");
  assert.deepEqual(errorsOf(text), [
    'config.yaml:2:22: tls.handshake_timeout: invalid duration "10": a unit is required ' +
    "(ms, s, m, h or d)",
    "config.yaml:4:17: limits.idle_timeout: must be at least 30m, got 5m",
    'config.yaml:10:14: directory.cache_ttl: invalid duration "soon": expected a number with a ' +
    "unit, such as 250ms, 10s, 5m or 1h",
  ]);
});

Deno.test("parseConfig() reads the auth section and reports bad costs at their position", () => {
  const good = parseConfig(
    "auth:\n  cache_ttl: 0s\n  cache_negative_ttl: 10s\n  scrypt_cost: { ln: 17, r: 8, p: 1 }\n",
    "/x/config.yaml",
    { checkFiles: false },
  );
  assert.deepEqual(good.auth, {
    cacheTtlMs: 0,
    cacheNegativeTtlMs: 10_000,
    scryptCost: { ln: 17, r: 8, p: 1 },
  });
  const text = [
    "auth:",
    "  cache_ttl: forever",
    "  scrypt_cost:",
    "    ln: 30",
    "    n: 8",
    "",
  ].join("\n");
  assert.deepEqual(errorsOf(text), [
    'config.yaml:2:14: auth.cache_ttl: invalid duration "forever": expected a number with a ' +
    "unit, such as 250ms, 10s, 5m or 1h",
    "config.yaml:4:9: auth.scrypt_cost.ln: expected a whole number from 10 to 20, got 30",
    'config.yaml:5:5: unknown key "n" in auth.scrypt_cost (did you mean "ln"?)',
  ]);
  assert.deepEqual(errorsOf("auth:\n  scrypt_cost: { ln: 18, r: 8 }\n"), [
    "config.yaml:2:16: auth.scrypt_cost: needs more than 128 MiB per check (128 * 2^ln * r bytes)",
  ]);
});

Deno.test("parseConfig() reports bad addresses and missing listener keys", () => {
  const text = [
    "listen:",
    "  - address: localhost",
    "    tls: implicit",
    "  - address: 127.0.0.1:70000",
    "    tls: starttls",
    "  - tls: implicit",
    "  - address: 127.0.0.1:993",
    "",
  ].join("\n");
  assert.deepEqual(errorsOf(text), [
    'config.yaml:2:14: listen[0].address: invalid address "localhost": expected host:port, ' +
    "such as 127.0.0.1:993",
    'config.yaml:4:14: listen[1].address: invalid address "127.0.0.1:70000": port 70000 is out ' +
    "of range (0-65535)",
    'config.yaml:6:5: missing required key "address" in listen[2]',
    'config.yaml:7:5: missing required key "tls" in listen[3]',
  ]);
});

Deno.test("parseConfig() reports missing required directory keys at the section key", () => {
  const text = "directory:\n  url: https://ldap.example.org\n  starttls: true\n";
  assert.deepEqual(errorsOf(text), [
    'config.yaml:1:1: missing required key "bind_dn" in directory',
    'config.yaml:1:1: missing required key "bind_password_file" in directory',
    'config.yaml:1:1: missing required key "base_dn" in directory',
    'config.yaml:2:8: directory.url: invalid URL "https://ldap.example.org" (expected ' +
    "ldap://host:port or ldaps://host:port)",
  ]);
});

Deno.test("parseConfig() checks the directory's certificate mapping settings", () => {
  const base = "directory:\n  url: ldaps://ldap:636\n  base_dn: dc=x\n  bind_dn: cn=p\n" +
    "  bind_password_file: pw\n";
  assert.deepEqual(errorsOf(base + "  certificate_mapping: attribute\n"), [
    'config.yaml:6:24: directory.certificate_mapping: the "attribute" mapping needs ' +
    "subject_dn_attribute",
  ]);
  assert.deepEqual(errorsOf(base + "  certificate_lookup: 'mail={cert.san.email}'\n"), [
    "config.yaml:6:23: directory.certificate_lookup: filter template must be a parenthesised " +
    "filter (RFC 4515)",
  ]);
  assert.deepEqual(errorsOf(base + "  certificate_lookup: '(mail={san.email})'\n"), [
    "config.yaml:6:23: directory.certificate_lookup: unknown placeholder {san.email} in filter " +
    "template",
  ]);
  assert.deepEqual(errorsOf(base + "  starttls: true\n  on_error: cached\n  cache_ttl: 0s\n"), [
    "config.yaml:6:13: directory.starttls: cannot be used with an ldaps:// URL, which is " +
    "already encrypted",
    "config.yaml:7:13: directory.on_error: cached needs a cache_ttl above zero",
  ]);
  // The rules the directory client also enforces, reported here at their position.
  const plain = base.replace("ldaps://ldap:636", "ldap://ldap:389");
  assert.deepEqual(errorsOf(plain + "  ca: ldap-ca.pem\n  recheck_interval: 5ms\n"), [
    "config.yaml:6:7: directory.ca: is only used over TLS: use an ldaps:// URL or starttls",
    "config.yaml:7:21: directory.recheck_interval: must be 0s (off) or at least 10ms",
  ]);
  const parse = (extra: string) =>
    parseConfig(base + extra, "c.yaml", { checkFiles: false }).directory!;
  const byDefault = parse("");
  assert.equal(byDefault.certificateMapping, "filter");
  assert.equal(byDefault.certificateLookup, "(mail={cert.san.email})");
  assert.equal(byDefault.usernameAttribute, "uid");
  assert.equal(byDefault.cacheTtlMs, 60_000);
  assert.equal(byDefault.onError, "deny");
  const byAttribute = parse("  certificate_lookup: attribute:seeAlso\n");
  assert.equal(byAttribute.certificateMapping, "attribute");
  assert.equal(byAttribute.subjectDnAttribute, "seeAlso");
  assert.equal(parse("  certificate_mapping: subject_dn\n").certificateLookup, null);
});

Deno.test("directoryConfigInput() reads the bind password and maps the settings", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "postern-config-" });
  try {
    Deno.writeTextFileSync(join(dir, "ldap.pw"), "s3cret\n");
    const text = "directory:\n  url: ldap://127.0.0.1:389\n  starttls: true\n" +
      "  base_dn: ou=people,dc=x\n  bind_dn: cn=p\n  bind_password_file: ldap.pw\n" +
      "  certificate_mapping: subject_dn\n  recheck_interval: 0s\n";
    const config = parseConfig(text, join(dir, "config.yaml"), { checkFiles: false });
    assert.deepEqual(await directoryConfigInput(config.directory!), {
      url: "ldap://127.0.0.1:389",
      starttls: true,
      bindDn: "cn=p",
      bindPassword: "s3cret",
      baseDn: "ou=people,dc=x",
      mapping: { kind: "subject_dn" },
      usernameAttribute: "uid",
      cacheTtlMs: 60_000,
      onError: "deny",
      timeoutMs: 5_000,
      maxConcurrency: 4,
      recheckIntervalMs: 0,
      sync: "auto",
    });
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("parseConfig() collects several errors in file order", () => {
  const text = "log:\n  level: loud\nlisten: []\ndata_dirr: x\n";
  assert.deepEqual(errorsOf(text), [
    'config.yaml:2:10: log.level: invalid value "loud" (expected debug, info, warning or error)',
    "config.yaml:3:9: listen: at least one listener is required",
    'config.yaml:4:1: unknown key "data_dirr" (did you mean "data_dir"?)',
  ]);
});

Deno.test("parseConfig() reports missing files, resolved against the config directory", () => {
  const dir = Deno.makeTempDirSync({ prefix: "postern-config-" });
  try {
    const file = join(dir, "config.yaml");
    const text = "tls:\n  certificate: certs/missing.pem\n  client_auth: none\n  client_ca: []\n" +
      "  private_key: /nonexistent/server.key\n";
    let message = "";
    try {
      parseConfig(text, file);
    } catch (error) {
      assert.ok(error instanceof ConfigError);
      message = error.message;
      assert.equal(error.issues.length, 2);
    }
    assert.equal(
      message,
      `${file}:2:16: tls.certificate: cannot read "certs/missing.pem" at ` +
        `${dir}/certs/missing.pem: no such file\n` +
        `${file}:5:16: tls.private_key: cannot read "/nonexistent/server.key" at ` +
        "/nonexistent/server.key: no such file",
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("parseConfig() accepts a matching key pair and refuses a mismatched one", () => {
  const dir = makePki();
  try {
    const file = join(dir, "config.yaml");
    const good = parseConfig("tls:\n  client_ca: [certs/ca.pem]\n", file);
    assert.equal(good.tls.certificate, join(dir, "certs/server.pem"));
    assert.deepEqual(good.tls.clientCa, [join(dir, "certs/ca.pem")]);
    // Read and parsed once, here: serve builds the TLS engine from this.
    assert.equal(good.tls.material?.certificates.length, 1);
    assert.equal(good.tls.material?.certificates[0]?.chain.length, 1);
    assert.equal(good.tls.material?.certificates[0]?.privateKey.kind, "ec");
    assert.equal(good.tls.material?.clientCas.length, 1);
    assert.throws(
      () => parseConfig("tls:\n  private_key: certs/other.key\n", file),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.equal(
          error.message,
          `${file}:2:16: tls.private_key: the private key does not match the certificate in ` +
            `${dir}/certs/server.pem`,
        );
        return true;
      },
    );
    assert.throws(
      () => parseConfig("tls:\n  client_ca: [certs/server.key]\n", file),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.equal(
          error.message,
          `${file}:2:15: tls.client_ca[0]: cannot read "certs/server.key" at ` +
            `${dir}/certs/server.key: no PEM certificate found`,
        );
        return true;
      },
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("parseConfig() asks for no client CA when client_auth is none", () => {
  const dir = makePki();
  try {
    const file = join(dir, "config.yaml");
    Deno.removeSync(join(dir, "certs/ca.pem"));
    const config = parseConfig("tls:\n  client_auth: none\n", file);
    assert.deepEqual(config.tls.clientCa, []);
    assert.throws(() => parseConfig("tls:\n  client_auth: optional\n", file), ConfigError);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("parseConfig() fills in the documented defaults", () => {
  const config: Config = parseConfig("", "/srv/postern/config.yaml", { checkFiles: false });
  assert.deepEqual(config, {
    source: "/srv/postern/config.yaml",
    baseDir: "/srv/postern",
    dataDir: "/srv/postern/data",
    listen: [
      {
        address: "127.0.0.1:9993",
        hostname: "127.0.0.1",
        port: 9993,
        tls: "implicit",
        proxyProtocol: false,
        trustedProxies: [],
      },
      {
        address: "127.0.0.1:9143",
        hostname: "127.0.0.1",
        port: 9143,
        tls: "starttls",
        proxyProtocol: false,
        trustedProxies: [],
      },
    ],
    tls: {
      certificate: "/srv/postern/certs/server.pem",
      privateKey: "/srv/postern/certs/server.key",
      certificates: [{
        certificate: "/srv/postern/certs/server.pem",
        privateKey: "/srv/postern/certs/server.key",
        names: [],
      }],
      clientAuth: "optional",
      clientCa: ["/srv/postern/certs/ca.pem"],
      handshakeTimeoutMs: 10_000,
      maxChainDepth: 8,
      certificateUsername: "cn",
      minVersion: "1.2",
      requireExtendedMasterSecret: false,
      signing: "auto",
      halfRtt: true,
      tickets: {
        count: 2,
        keyLifetimeMs: 12 * 3600_000,
        perConnection: 2,
        maxUses: 8,
        pskKe: false,
      },
      crl: [],
      crlPolicy: "soft",
      material: null,
    },
    directory: null,
    limits: {
      maxConnectionsPerUser: 20,
      maxConnectionsPerAddress: 50,
      idleTimeoutMs: 30 * 60_000,
      maxLineLength: 65536,
      maxLiteralSize: 50 * 1024 * 1024,
      maxMessageSize: 50 * 1024 * 1024,
    },
    imap: { preauthWithCertificate: false },
    log: { level: "info", format: "text" },
    auth: {
      cacheTtlMs: 3_600_000,
      cacheNegativeTtlMs: 60_000,
      scryptCost: { ln: 15, r: 8, p: 1 },
    },
    lmtp: null,
    quota: { default: { storage: null, messages: null }, accounts: new Map() },
    metrics: null,
    admin: { enabled: "auto", socket: "/srv/postern/data/admin.sock" },
    store: { kind: "sqlite", path: null, listingCache: 400_000 },
    server: { workers: "auto" },
  });
  assert.deepEqual(defaultConfig("/srv/postern"), { ...config, source: null });
});

Deno.test("config.example.yaml validates with its referenced files in place", async () => {
  const dir = makePki();
  try {
    Deno.copyFileSync(join(ROOT, "config.example.yaml"), join(dir, "config.yaml"));
    Deno.copyFileSync(join(dir, "certs/ca.pem"), join(dir, "certs/ldap-ca.pem"));
    Deno.mkdirSync(join(dir, "secrets"));
    Deno.writeTextFileSync(join(dir, "secrets/ldap.pw"), "secret\n");
    const config = await loadConfig(join(dir, "config.yaml"));
    assert.equal(config.listen.length, 2);
    assert.equal(config.directory?.url, "ldap://127.0.0.1:389");
    assert.equal(config.directory?.bindPasswordFile, join(dir, "secrets/ldap.pw"));
    assert.equal(config.limits.maxLineLength, 64 * 1024);
    assert.equal(config.log.format, "text");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("loadConfig() reports an unreadable file as a ConfigError", async () => {
  await assert.rejects(loadConfig("/nonexistent/config.yaml"), (error: unknown) => {
    assert.ok(error instanceof ConfigError);
    assert.equal(error.message, "/nonexistent/config.yaml:1:1: no such file");
    return true;
  });
});

Deno.test("parseDuration() accepts units and sums and refuses bare numbers", () => {
  const table: [string, number][] = [
    ["250ms", 250],
    ["10s", 10_000],
    ["5m", 300_000],
    ["1h", 3_600_000],
    ["1d", 86_400_000],
    ["1h30m", 5_400_000],
    ["0s", 0],
  ];
  for (const [text, ms] of table) assert.deepEqual(parseDuration(text), { ok: true, value: ms });
  for (const bad of ["", "10", "s", "1.5s", "10 s", "-1s", "10sec", "30d"]) {
    assert.equal(parseDuration(bad).ok, false, bad);
  }
});

Deno.test("parseSize() reads bytes with binary and decimal units", () => {
  assert.deepEqual(parseSize(65536), { ok: true, value: 65536 });
  assert.deepEqual(parseSize("64KiB"), { ok: true, value: 65536 });
  assert.deepEqual(parseSize("50MB"), { ok: true, value: 50_000_000 });
  assert.deepEqual(parseSize("1G"), { ok: true, value: 1024 ** 3 });
  assert.equal(parseSize("12x").ok, false);
  assert.equal(parseSize(1.5).ok, false);
});

Deno.test("parseAddress() reads host:port, IPv6 in brackets and refuses the rest", () => {
  assert.deepEqual(parseAddress("0.0.0.0:993"), {
    ok: true,
    value: { hostname: "0.0.0.0", port: 993 },
  });
  assert.deepEqual(parseAddress("[::1]:143"), { ok: true, value: { hostname: "::1", port: 143 } });
  assert.deepEqual(parseAddress("mail.example.org:0"), {
    ok: true,
    value: { hostname: "mail.example.org", port: 0 },
  });
  for (const bad of ["localhost", "::1:993", "1.2.3.256:1", "a b:1", ":993", "host:", "h:99999"]) {
    assert.equal(parseAddress(bad).ok, false, bad);
  }
});

Deno.test("suggest() finds close keys only", () => {
  assert.equal(editDistance("lissten", "listen"), 1);
  assert.equal(editDistance("lsiten", "listen"), 1);
  assert.equal(suggest("private-key", ["certificate", "private_key"]), "private_key");
  assert.equal(suggest("colour", ["level", "format"]), undefined);
});

Deno.test("parseConfig() reads tls.certificate_username and names a bad value's position", () => {
  const base = "tls:\n  client_auth: none\n";
  for (const mode of ["cn", "email-localpart", "email"]) {
    const config = parseConfig(`${base}  certificate_username: ${mode}\n`, "c.yaml", {
      checkFiles: false,
    });
    assert.equal(config.tls.certificateUsername, mode);
  }
  assert.deepEqual(errorsOf(`${base}  certificate_username: uid\n`), [
    'config.yaml:3:25: tls.certificate_username: invalid value "uid" (expected cn, email-localpart or email)',
  ]);
});

Deno.test("parseConfig() reads tls.min_version quoted or bare, and reports bad values", () => {
  const ok = (v: string) =>
    parseConfig(`tls:\n  min_version: ${v}\n`, "config.yaml", { checkFiles: false }).tls
      .minVersion;
  assert.equal(ok('"1.3"'), "1.3");
  assert.equal(ok("1.3"), "1.3");
  assert.equal(ok("1.2"), "1.2");
  assert.deepEqual(
    errorsOf("tls:\n  min_version: 1.1\n  require_extended_master_secret: yes\n"),
    [
      "config.yaml:2:16: tls.min_version: invalid value number 1.1 (expected 1.2 or 1.3)",
      'config.yaml:3:35: tls.require_extended_master_secret: expected true or false, got "yes"',
    ],
  );
});

Deno.test("parseConfig() reads tls.half_rtt (default true) and reports a bad value at its position", () => {
  const halfRtt = (yaml: string) =>
    parseConfig(yaml, "config.yaml", { checkFiles: false }).tls.halfRtt;
  assert.equal(halfRtt("tls: {}\n"), true);
  assert.equal(halfRtt("tls:\n  half_rtt: false\n"), false);
  assert.deepEqual(errorsOf("tls:\n  half_rtt: 1\n"), [
    "config.yaml:2:13: tls.half_rtt: expected true or false, got number 1",
  ]);
});

Deno.test("parseConfig() reads tls.tickets and reports bad values at their position", () => {
  const tickets = parseConfig("tls:\n  tickets: {count: 3, key_lifetime: 1h}\n", "config.yaml", {
    checkFiles: false,
  }).tls.tickets;
  assert.deepEqual(tickets, {
    count: 3,
    keyLifetimeMs: 3600_000,
    perConnection: 2,
    maxUses: 8,
    pskKe: false,
  });
  const t13 = parseConfig(
    "tls:\n  tickets: {per_connection: 0, max_uses: 3, psk_ke: true}\n",
    "config.yaml",
    { checkFiles: false },
  ).tls.tickets;
  assert.deepEqual([t13.perConnection, t13.maxUses, t13.pskKe], [0, 3, true]);
  assert.match(
    errorsOf("tls:\n  tickets:\n    per_connection: 11\n")[0]!,
    /^config\.yaml:3:21: tls\.tickets\.per_connection: expected a whole number from 0 to 10/,
  );
  assert.deepEqual(errorsOf("tls:\n  tickets:\n    count: 0\n    lifetime: 1h\n"), [
    "config.yaml:3:12: tls.tickets.count: expected a whole number from 1 to 16, got 0",
    'config.yaml:4:5: unknown key "lifetime" in tls.tickets (did you mean "key_lifetime"?)',
  ]);
});

Deno.test("parseConfig() reads tls.certificates and reports bad entries at their position", () => {
  const tls = parseConfig(
    [
      "tls:",
      "  certificates:",
      "    - {certificate: a.pem, private_key: a.key, names: [Mail.Example.org]}",
      "    - certificate: b.pem",
      "      private_key: b.key",
      "      names: ['*.example.net']",
    ].join("\n"),
    "/etc/postern/config.yaml",
    { checkFiles: false },
  ).tls;
  assert.deepEqual(tls.certificates, [
    {
      certificate: "/etc/postern/a.pem",
      privateKey: "/etc/postern/a.key",
      names: ["mail.example.org"],
    },
    {
      certificate: "/etc/postern/b.pem",
      privateKey: "/etc/postern/b.key",
      names: ["*.example.net"],
    },
  ]);
  assert.equal(tls.certificate, "/etc/postern/a.pem");
  assert.deepEqual(
    errorsOf(
      [
        "tls:",
        "  certificate: x.pem",
        "  certificates:",
        "    - {certificate: a.pem, names: [bad_name!]}",
      ].join("\n"),
    ),
    [
      "config.yaml:4:5: tls.certificates: replaces certificate and private_key; give one or the other",
      'config.yaml:4:7: missing required key "private_key" in tls.certificates[0]',
    ],
  );
  assert.deepEqual(errorsOf("tls:\n  certificates: []\n"), [
    "config.yaml:2:17: tls.certificates: expected a non-empty list of entries, got an empty list",
  ]);
});

Deno.test("parseConfig() reports a file that is not a mapping, and keys that are not names", () => {
  assert.deepEqual(errorsOf("- a\n- b\n"), [
    "config.yaml:1:1: the configuration must be a mapping of keys, got a list",
  ]);
  assert.deepEqual(errorsOf("log:\n  1: x\n  ? [a]\n  : y\n"), [
    "config.yaml:2:3: keys in log must be plain names",
    "config.yaml:3:5: keys in log must be plain names",
  ]);
  assert.deepEqual(errorsOf("limits: 5\n"), [
    "config.yaml:1:9: limits must be a mapping of keys, got number 5",
  ]);
});

Deno.test("parseConfig() takes an empty key as its default and follows YAML aliases", () => {
  const config = parseConfig(
    "limits:\n  idle_timeout:\n  max_line_length: &big 128KiB\nlmtp:\n  listen: unix:/x\n" +
      "  max_line_length: *big\n",
    "/srv/postern/config.yaml",
    { checkFiles: false },
  );
  assert.equal(config.limits.idleTimeoutMs, 30 * 60_000);
  assert.equal(config.limits.maxLineLength, 128 * 1024);
  assert.equal(config.lmtp?.maxLineLength, 128 * 1024);
});
