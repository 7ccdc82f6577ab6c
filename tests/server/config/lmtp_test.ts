import assert from "node:assert/strict";
import { errorsOf, parse } from "./_parse.ts";
import { quotaLimits } from "../../../server/config/quota.ts";
import { lmtpMaxMessageSize } from "../../../server/serve/mod.ts";

Deno.test("parseConfig() has no LMTP listener and no quota by default", () => {
  const config = parse("");
  assert.equal(config.lmtp, null);
  assert.deepEqual(config.quota, {
    default: { storage: null, messages: null },
    accounts: new Map(),
  });
});

Deno.test("parseConfig() reads the lmtp section with its defaults", () => {
  const config = parse(
    "limits:\n  max_message_size: 20MiB\nlmtp:\n  listen: [unix:data/lmtp.sock, 127.0.0.1:24]\n",
  );
  assert.equal(lmtpMaxMessageSize(config), 20 * 1024 * 1024);
  assert.deepEqual(config.lmtp, {
    listen: [
      { transport: "unix", path: "/etc/postern/data/lmtp.sock" },
      { transport: "tcp", hostname: "127.0.0.1", port: 24 },
    ],
    socketMode: 0o660,
    socketOwner: null,
    hostname: null,
    maxMessageSize: null,
    maxRecipients: 100,
    maxLineLength: 64 * 1024,
    transactionTimeoutMs: 600_000,
    idleTimeoutMs: 300_000,
    dedupWindowMs: 86_400_000,
    recipientDelimiter: "+",
    saveToDetailMailbox: true,
    directoryFilter: "(mail={address})",
    maxConnections: 100,
  });
});

Deno.test("parseConfig() reads every lmtp setting and the quota", () => {
  const config = parse(
    [
      "lmtp:",
      "  listen: unix:/run/postern/lmtp",
      "  socket_mode: 0600",
      "  socket_owner: postfix:postfix",
      "  hostname: mail.example.org",
      "  max_message_size: 1MiB",
      "  max_recipients: 500",
      "  max_line_length: 998",
      "  transaction_timeout: 1m",
      "  idle_timeout: 30s",
      "  dedup_window: 0s",
      '  recipient_delimiter: "-"',
      "  save_to_detail_mailbox: false",
      '  directory_filter: "(|(mail={address})(mailAlternateAddress={address}))"',
      "  max_connections: 10",
      "quota:",
      "  default: { storage: 10GiB, messages: 1000000 }",
    ].join("\n"),
  );
  const lmtp = config.lmtp!;
  assert.equal(lmtp.socketMode, 0o600);
  assert.equal(lmtp.socketOwner, "postfix:postfix");
  assert.equal(lmtp.maxMessageSize, 1024 * 1024);
  assert.equal(lmtp.maxLineLength, 998);
  assert.equal(lmtp.dedupWindowMs, 0);
  assert.equal(lmtp.recipientDelimiter, "-");
  assert.equal(lmtp.saveToDetailMailbox, false);
  assert.deepEqual(config.quota.default, { storage: 10 * 1024 ** 3, messages: 1_000_000 });
  assert.equal(lmtpMaxMessageSize(config), 1024 * 1024);
  assert.equal(parse('lmtp:\n  listen: unix:/x\n  socket_mode: "0640"\n').lmtp!.socketMode, 0o640);
  assert.equal(parse("lmtp:\n  listen: unix:/x\n  socket_mode: 0o644\n").lmtp!.socketMode, 0o644);
});

Deno.test("parseConfig() reads per-account quota overrides that LMTP and IMAP share", () => {
  const config = parse(
    "quota:\n  default: { storage: 1GiB }\n  accounts:\n    alice: { messages: 10 }\n" +
      "    bob: { storage: 64KiB, messages: 5 }\n",
  );
  assert.deepEqual(quotaLimits(config, "alice"), { storage: null, messages: 10 });
  assert.deepEqual(quotaLimits(config, "bob"), { storage: 64 * 1024, messages: 5 });
  assert.deepEqual(quotaLimits(config, "carol"), { storage: 1024 ** 3, messages: null });
  assert.deepEqual(errorsOf("quota:\n  accounts:\n    alice: { size: 1 }\n"), [
    'config.yaml:3:14: unknown key "size" in quota.accounts.alice',
  ]);
  assert.equal(errorsOf("quota:\n  accounts: [alice]\n").length, 1);
});

Deno.test("parseConfig() refuses a non-loopback LMTP address and allow_remote", () => {
  assert.deepEqual(errorsOf("lmtp:\n  listen: [0.0.0.0:24]\n  allow_remote: true\n"), [
    'config.yaml:2:12: lmtp.listen[0]: "0.0.0.0:24" is not a loopback address; LMTP is ' +
    "unauthenticated and Postern does not offer it over TLS, so use a Unix socket or 127.0.0.1",
    "config.yaml:3:17: lmtp.allow_remote: LMTP over TLS is not implemented, so remote LMTP " +
    "cannot be allowed",
  ]);
});

Deno.test("parseConfig() reports bad lmtp and quota values at their position", () => {
  assert.deepEqual(
    errorsOf(
      [
        "lmtp:",
        "  listen: [unix:, nonsense]",
        "  socket_mode: rw",
        "  max_recipients: 0",
        "  max_line_length: 100",
        "  recipient_delimiter: ++",
        '  directory_filter: "(uid=x)"',
        "  lisen: x",
        "quota:",
        "  default: { storage: lots }",
      ].join("\n"),
    ),
    [
      "config.yaml:2:12: lmtp.listen[0]: expected unix:PATH or HOST:PORT",
      'config.yaml:2:19: lmtp.listen[1]: invalid address "nonsense": expected host:port, such as 127.0.0.1:993',
      'config.yaml:3:16: lmtp.socket_mode: expected an octal mode such as "0660", got "rw"',
      "config.yaml:4:19: lmtp.max_recipients: expected a whole number from 1 to 10000, got 0",
      "config.yaml:5:20: lmtp.max_line_length: must be at least 998 bytes, got 100",
      "config.yaml:6:24: lmtp.recipient_delimiter: expected one character such as + or -, " +
      "or an empty string",
      'config.yaml:7:21: lmtp.directory_filter: expected an LDAP filter with {address}, e.g. "(mail={address})"',
      'config.yaml:8:3: unknown key "lisen" in lmtp (did you mean "listen"?)',
      'config.yaml:10:23: quota.default.storage: invalid size "lots": expected a size such as 65536, 64KiB or 50MiB',
    ],
  );
  assert.deepEqual(errorsOf('lmtp:\n  listen: "unix:"\n'), [
    "config.yaml:2:11: lmtp.listen[0]: the Unix socket path is empty",
  ]);
  assert.deepEqual(errorsOf("lmtp:\n  socket_mode: 0660\n"), [
    'config.yaml:1:1: missing required key "listen" in lmtp',
  ]);
});

Deno.test("parseConfig() reads quota.directory_attribute, whose entry value replaces the storage figure", () => {
  const directory = "directory:\n  url: ldap://127.0.0.1:389\n  bind_dn: cn=x\n" +
    "  bind_password_file: /p\n  base_dn: dc=example\n";
  const config = parse(
    directory + "quota:\n  default: { storage: 1GiB, messages: 7 }\n" +
      "  directory_attribute: mailQuota\n",
  );
  assert.equal(config.quota.directoryAttribute, "mailQuota");
  assert.deepEqual(quotaLimits(config, "alice", 2048), { storage: 2048, messages: 7 });
  // No value in the entry (null) or no lookup yet (undefined): the configured figures.
  assert.deepEqual(quotaLimits(config, "alice", null), { storage: 1024 ** 3, messages: 7 });
  assert.deepEqual(quotaLimits(config, "alice"), { storage: 1024 ** 3, messages: 7 });
  assert.deepEqual(errorsOf(directory + "quota:\n  directory_attribute: mail quota\n"), [
    "config.yaml:7:24: quota.directory_attribute: must be an LDAP attribute name",
  ]);
  assert.deepEqual(errorsOf("quota:\n  directory_attribute: mailQuota\n"), [
    "config.yaml:2:24: quota.directory_attribute: needs a directory: section",
  ]);
});

Deno.test("parseConfig() reads quota.directory_message_attribute, whose entry value replaces the message figure", () => {
  const directory = "directory:\n  url: ldap://127.0.0.1:389\n  bind_dn: cn=x\n" +
    "  bind_password_file: /p\n  base_dn: dc=example\n";
  const config = parse(
    directory + "quota:\n  default: { storage: 1GiB, messages: 7 }\n" +
      "  directory_message_attribute: mailQuotaMessages\n",
  );
  assert.equal(config.quota.directoryMessageAttribute, "mailQuotaMessages");
  assert.deepEqual(quotaLimits(config, "alice", null, 30), { storage: 1024 ** 3, messages: 30 });
  assert.deepEqual(quotaLimits(config, "alice", 2048, 30), { storage: 2048, messages: 30 });
  assert.deepEqual(quotaLimits(config, "alice", undefined, null), {
    storage: 1024 ** 3,
    messages: 7,
  });
  assert.deepEqual(errorsOf("quota:\n  directory_message_attribute: n\n"), [
    "config.yaml:2:32: quota.directory_message_attribute: needs a directory: section",
  ]);
});
