/**
 * LMTP recipients from the directory (slapd): the entry that `lmtp.directory_filter` finds
 * receives the mail, its account is created on first delivery, an ambiguous or unknown address
 * gets 550 5.1.1, address text cannot widen the filter (RFC 4515 escaping), and a directory
 * that is down gets 451 4.4.3 so the MTA retries.
 */
import assert from "node:assert/strict";
import { startSlapd } from "../_support/slapd.ts";
import { directoryYaml } from "../_support/directory_e2e.ts";
import { startPostern } from "../_support/postern.ts";
import { RawImap } from "../_support/imap_clients.ts";
import { LmtpClient, lmtpMessage } from "../_support/lmtp.ts";

Deno.test("LMTP resolves recipients through the directory and defers while it is down", async () => {
  const ldap = await startSlapd({
    users: [
      { uid: "carol", mail: "carol@example.org", password: "carol-pw" },
      {
        uid: "dave",
        mail: ["dave@example.org", "shared@example.org"],
        attributes: { description: ["alias-dave@example.org"] },
      },
      { uid: "erin", mail: "shared@example.org" },
    ],
  });
  const dir = await Deno.makeTempDir({ prefix: "postern-lmtp-ldap-" });
  const postern = await startPostern({
    extraYaml: (await directoryYaml(ldap, dir, { timeout: "1s" })) +
      "lmtp:\n  listen: [127.0.0.1:0]\n" +
      '  directory_filter: "(|(mail={address})(description={address}))"\n',
  });
  try {
    const address = postern.handle.lmtpAddresses[0]!;
    assert.equal(address.transport, "tcp");
    const target = { hostname: "127.0.0.1", port: (address as { port: number }).port };
    const client = await LmtpClient.open(target);
    try {
      const sent = await client.send(
        "sender@example.org",
        [
          "carol@example.org",
          "alias-dave@example.org",
          "carol+inbox@example.org",
          "shared@example.org",
          "*@example.org",
          "nobody@example.org",
        ],
        lmtpMessage("ldap-1"),
      );
      assert.deepEqual(sent.rcpt.map((r) => r.code), [250, 250, 250, 550, 550, 550]);
      assert.match(sent.rcpt[3]!.lines[0]!, /^5\.1\.1 /);
      assert.deepEqual(sent.data.map((r) => r.code), [250, 250, 250]);

      await ldap.kill();
      const down = await client.command("MAIL FROM:<sender@example.org>");
      assert.equal(down.code, 250);
      const rcpt = await client.command("RCPT TO:<carol@example.org>");
      assert.deepEqual([rcpt.code, rcpt.lines[0]], [
        451,
        "4.4.3 Directory unavailable, try again later",
      ]);
      await client.command("RSET");
      await ldap.restart();
      const back = await client.send(
        "sender@example.org",
        ["carol@example.org"],
        lmtpMessage("ldap-2"),
      );
      assert.deepEqual(back.data.map((r) => r.code), [250]);
    } finally {
      await client.close();
    }

    // carol's account was created by the delivery; she reads her mail with her LDAP password.
    const imap = await RawImap.tls(postern.implicitPort, postern.caPem);
    try {
      await imap.greeting();
      assert.equal((await imap.command('LOGIN carol "carol-pw"')).status, "OK");
      const sel = await imap.command("SELECT INBOX");
      assert.match(sel.untagged.map((r) => r.text).join("\n"), /^\* 3 EXISTS$/m);
      const fetched = await imap.command("FETCH 1 BODY.PEEK[HEADER.FIELDS (DELIVERED-TO)]");
      assert.match(
        fetched.untagged[0]?.literals[0]
          ? new TextDecoder().decode(fetched.untagged[0].literals[0])
          : "",
        /Delivered-To: carol@example\.org/,
      );
    } finally {
      await imap.close();
    }
  } finally {
    await postern.stop();
    await ldap.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
