import assert from "node:assert/strict";
import { errorsOf, parse } from "./_parse.ts";
import { sqlitePath } from "../../../server/serve/store.ts";

Deno.test("parseConfig() keeps mail in SQLite in the data directory by default", () => {
  const config = parse("data_dir: /var/lib/postern\n");
  assert.deepEqual(config.store, { kind: "sqlite", path: null, listingCache: 400_000 });
  assert.equal(sqlitePath(config), "/var/lib/postern/postern.db");
  const moved = parse("store:\n  kind: sqlite\n  path: mail/store.db\n  listing_cache: 2000000\n");
  assert.deepEqual(moved.store, {
    kind: "sqlite",
    path: "/etc/postern/mail/store.db",
    listingCache: 2_000_000,
  });
  assert.equal(sqlitePath(moved), "/etc/postern/mail/store.db");
});

Deno.test("parseConfig() reads a postgres store with its defaults", () => {
  const local = parse(
    "store:\n  kind: postgres\n  url: postgres://postern@127.0.0.1:5432/postern\n",
  );
  assert.deepEqual(local.store, {
    kind: "postgres",
    url: "postgres://postern@127.0.0.1:5432/postern",
    passwordFile: null,
    poolSize: 10,
    tls: "disable",
    ca: null,
    connectTimeoutMs: 10_000,
  });
  assert.equal(sqlitePath(local), null);
  const remote = parse(
    [
      "store:",
      "  kind: postgres",
      "  url: postgresql://postern@db.example.org/mail",
      "  password_file: secrets/db",
      "  pool_size: 25",
      "  ca: certs/db-ca.pem",
      "  connect_timeout: 3s",
      "",
    ].join("\n"),
  );
  assert.deepEqual(remote.store, {
    kind: "postgres",
    url: "postgresql://postern@db.example.org/mail",
    passwordFile: "/etc/postern/secrets/db",
    poolSize: 25,
    tls: "verify-full",
    ca: "/etc/postern/certs/db-ca.pem",
    connectTimeoutMs: 3000,
  });
});

Deno.test("parseConfig() reports store mistakes with their line and column", () => {
  assert.deepEqual(errorsOf("store:\n  kind: mysql\n"), [
    'config.yaml:2:9: store.kind: invalid value "mysql" (expected sqlite or postgres)',
  ]);
  assert.deepEqual(errorsOf("store:\n  kind: postgres\n"), [
    'config.yaml:1:1: missing required key "url" in store',
  ]);
  assert.deepEqual(errorsOf("store:\n  kind: postgres\n  url: postgres://u:secret@h/db\n"), [
    "config.yaml:3:8: store.url: must not hold a password: put it in password_file",
  ]);
  assert.deepEqual(errorsOf("store:\n  kind: postgres\n  url: mysql://u@h/db\n"), [
    "config.yaml:3:8: store.url: expected a postgres:// URL, got mysql://",
  ]);
  assert.deepEqual(errorsOf("store:\n  kind: postgres\n  url: not a url\n"), [
    'config.yaml:3:8: store.url: "not a url" is not a URL such as postgres://postern@db.example.org/postern',
  ]);
  assert.deepEqual(
    errorsOf(
      "store:\n  kind: postgres\n  url: postgres://u@h/db\n  pool_size: 0\n  tls: on\n  path: x\n" +
        "  listing_cache: 10\n",
    ),
    [
      "config.yaml:4:14: store.pool_size: expected a whole number from 1 to 1000, got 0",
      'config.yaml:5:8: store.tls: invalid value "on" (expected disable, require or verify-full)',
      "config.yaml:6:9: store.path: does not apply to kind postgres",
      "config.yaml:7:18: store.listing_cache: does not apply to kind postgres",
    ],
  );
  assert.deepEqual(errorsOf("store:\n  listing_cache: -1\n"), [
    "config.yaml:2:18: store.listing_cache: expected a whole number from 0 to 100000000, got -1",
  ]);
  assert.deepEqual(errorsOf("store:\n  url: postgres://u@h/db\n  pol_size: 3\n"), [
    "config.yaml:2:8: store.url: does not apply to kind sqlite",
    'config.yaml:3:3: unknown key "pol_size" in store (did you mean "pool_size"?)',
  ]);
});
