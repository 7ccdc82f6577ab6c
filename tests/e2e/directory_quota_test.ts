/**
 * Quota from directory attributes (`quota.directory_attribute`, `directory_message_attribute`)
 * with slapd: the attributes are read with the user lookup (LMTP recipient, password login) and,
 * where the entry has a usable value, replace the configured STORAGE and MESSAGE limits; LMTP
 * delivery refuses mail over them (552 5.2.2) and IMAP GETQUOTAROOT (RFC 9208) reports them,
 * through Python imaplib.
 */
import assert from "node:assert/strict";
import { startSlapd } from "../_support/slapd.ts";
import { directoryYaml } from "../_support/directory_e2e.ts";
import { startPostern } from "../_support/postern.ts";
import { describeRun, runPython } from "../_support/imap_clients.ts";
import { LmtpClient, lmtpMessage } from "../_support/lmtp.ts";

const PYTHON = String.raw`
import imaplib, ssl, sys
port, ca = int(sys.argv[1]), sys.argv[2]
for user in ["alice", "bob", "carol", "dave"]:
    M = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=ssl.create_default_context(cafile=ca))
    typ, _ = M.login(user, user + "-pw")
    assert typ == "OK", user
    typ, data = M.getquotaroot("INBOX")
    assert typ == "OK", (user, typ, data)
    print(user, data[1][0].decode())
    M.logout()
`;

Deno.test("a quota attribute in the directory entry sets the storage limit LMTP and IMAP use", async () => {
  const ldap = await startSlapd({
    users: [
      // employeeNumber stands in for a site's quota attribute (e.g. mailQuota).
      {
        uid: "alice",
        mail: "alice@example.org",
        password: "alice-pw",
        attributes: { employeeNumber: ["4096"] },
      },
      { uid: "bob", mail: "bob@example.org", password: "bob-pw" },
      {
        uid: "carol",
        mail: "carol@example.org",
        password: "carol-pw",
        attributes: { employeeNumber: ["lots"], roomNumber: ["many"] },
      },
      // roomNumber stands in for a message-count attribute; a storage figure with a unit.
      {
        uid: "dave",
        mail: "dave@example.org",
        password: "dave-pw",
        attributes: { employeeNumber: ["2M"], roomNumber: ["1"] },
      },
    ],
  });
  const dir = await Deno.makeTempDir({ prefix: "postern-ldap-quota-" });
  const postern = await startPostern({
    extraYaml: (await directoryYaml(ldap, dir)) +
      "lmtp:\n  listen: [127.0.0.1:0]\n" +
      "quota:\n  default: { storage: 1MiB, messages: 100 }\n" +
      "  directory_attribute: employeeNumber\n" +
      "  directory_message_attribute: roomNumber\n",
  });
  try {
    const address = postern.handle.lmtpAddresses[0]! as { port: number };
    const client = await LmtpClient.open({ hostname: "127.0.0.1", port: address.port });
    try {
      // 6 KiB: over alice's 4096 octets, within the 1 MiB others get.
      const sent = await client.send(
        "sender@example.org",
        ["alice@example.org", "bob@example.org", "carol@example.org"],
        lmtpMessage("quota-1", 6 * 1024),
      );
      assert.deepEqual(sent.rcpt.map((r) => r.code), [250, 250, 250]);
      assert.deepEqual(sent.data.map((r) => r.code), [552, 250, 250]);
      assert.match(sent.data[0]!.lines[0]!, /^5\.2\.2 /);
      const small = await client.send(
        "sender@example.org",
        ["alice@example.org"],
        lmtpMessage("quota-2", 1024),
      );
      assert.deepEqual(small.data.map((r) => r.code), [250]);
      // dave may hold one message: the second is refused.
      const first = await client.send(
        "sender@example.org",
        ["dave@example.org"],
        lmtpMessage("quota-3", 512),
      );
      assert.deepEqual(first.data.map((r) => r.code), [250]);
      const second = await client.send(
        "sender@example.org",
        ["dave@example.org"],
        lmtpMessage("quota-4", 512),
      );
      assert.deepEqual(second.data.map((r) => r.code), [552]);
      assert.match(second.data[0]!.lines[0]!, /^5\.2\.2 /);
    } finally {
      await client.close();
    }
    // The login reads the entry again: a raised quota counts from the next lookup on.
    await ldap.modify(
      `dn: ${ldap.userDn("alice")}\nchangetype: modify\nreplace: employeeNumber\n` +
        "employeeNumber: 8192\n",
    );
    const r = await runPython(PYTHON, [String(postern.implicitPort), postern.caPath]);
    assert.equal(r.code, 0, describeRun(r));
    const lines = r.stdout.trim().split("\n");
    assert.equal(lines.length, 4, r.stdout);
    // STORAGE in units of 1024 octets (RFC 9208, Section 5.1): alice 8192 octets since her
    // entry changed, bob and carol (no usable value) the configured 1 MiB.
    assert.match(lines[0]!, /^alice "User quota" \(STORAGE \d+ 8 MESSAGE 1 100\)$/);
    assert.match(lines[1]!, /^bob "User quota" \(STORAGE \d+ 1024 MESSAGE 1 100\)$/);
    assert.match(lines[2]!, /^carol "User quota" \(STORAGE \d+ 1024 MESSAGE 1 100\)$/);
    // dave: 2M is 2 MiB (2048 units), and one message.
    assert.match(lines[3]!, /^dave "User quota" \(STORAGE \d+ 2048 MESSAGE 1 1\)$/);
  } finally {
    await postern.stop();
    await ldap.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
