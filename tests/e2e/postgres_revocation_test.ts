/**
 * Revocation with two Postern nodes on one PostgreSQL (issue 16): each node runs its own
 * directory watcher against the same slapd (LDAP Content Synchronization, RFC 4533). A
 * certificate removed from the user's entry closes the sessions it opened on both nodes, and
 * both refuse it afterwards with certificate_revoked; put back, both accept it again.
 *
 * The nodes run in this process (two `serve()` calls on one config but their own ports), on a
 * throwaway cluster and a real slapd; clients are Deno.connectTls (rustls) sessions held open
 * and Python imaplib for new connections.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ensureDevPki, issueClientCertificate } from "../../server/cli/dev_pki.ts";
import { parseConfig } from "../../server/config/mod.ts";
import { serve, type ServeHandle } from "../../server/serve/mod.ts";
import {
  certificateChange,
  directoryYaml,
  ImapLines,
  pythonImap,
  type PythonImapResult,
} from "../_support/directory_e2e.ts";
import { postgresAvailable, startPostgres } from "../_support/postgres.ts";
import { startSlapd } from "../_support/slapd.ts";

const available = postgresAvailable();

/** Reads until `* BYE` and then the end of the stream; false if either does not come. */
async function awaitBye(session: ImapLines, withinMs: number): Promise<boolean> {
  for (let i = 0; i < 10; i++) {
    const line = await session.readLine(withinMs);
    if (line === null) return false;
    if (line.startsWith("* BYE")) return (await session.readLine(2000)) === null;
  }
  return false;
}

async function until(what: string, test: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!test()) {
    if (Date.now() > deadline) assert.fail(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

Deno.test({
  name: "a certificate removed from LDAP closes its sessions on both nodes and is refused by both",
  ignore: !available,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const ldap = await startSlapd({ users: [{ uid: "alice", mail: "alice@localhost" }] });
    const pg = await startPostgres();
    const dir = await Deno.makeTempDir({ prefix: "postern-revoke-nodes-" });
    const nodes: ServeHandle[] = [];
    const sessions: ImapLines[] = [];
    try {
      const certs = join(dir, "certs");
      const pki = await ensureDevPki(certs);
      const caPem = await Deno.readTextFile(pki.caCertificate);
      const alice = await issueClientCertificate(certs, "alice", { email: "alice@localhost" });
      const alicePems = {
        certPem: await Deno.readTextFile(alice.certificate),
        keyPem: await Deno.readTextFile(alice.key),
      };
      await ldap.modify(certificateChange(ldap.userDn("alice"), "add", alice.der));
      const url = (await pg.createDatabase("revocation")).replace(`:${pg.password}@`, "@");
      const yaml = [
        `data_dir: ${join(dir, "data")}`,
        "listen:",
        "  - address: 127.0.0.1:0",
        "    tls: implicit",
        "tls:",
        `  certificate: ${pki.serverCertificate}`,
        `  private_key: ${pki.serverKey}`,
        "  client_auth: optional",
        `  client_ca: [${pki.caCertificate}]`,
        "store:",
        "  kind: postgres",
        `  url: ${url}`,
        `  password_file: ${pg.passwordFile}`,
        "  pool_size: 2",
        "log:",
        "  level: error",
        await directoryYaml(ldap, dir, { recheckInterval: "1s", cacheTtl: "1s" }),
      ].join("\n");
      const config = parseConfig(yaml, join(dir, "config.yaml"));
      for (let i = 0; i < 2; i++) nodes.push(await serve(config, { shutdownGraceMs: 1000 }));
      const ports = nodes.map((n) => n.addresses[0]!.port);
      // Each node's own watcher is in sync with slapd by push, not by polling.
      await until(
        "both watchers in content_sync mode",
        () => nodes.every((n) => n.revocation().revocation === "content_sync"),
      );

      const external = (port: number): Promise<PythonImapResult> =>
        pythonImap({
          port,
          ca: pki.caCertificate,
          cert: alice.certificate,
          key: alice.key,
          action: "external",
        });
      for (const port of ports) {
        const session = await ImapLines.connect(port, caPem, alicePems);
        sessions.push(session);
        assert.match((await session.readLine()) ?? "", /^\* OK /);
        const auth = await session.command("a1", "AUTHENTICATE EXTERNAL =");
        assert.match(auth.at(-1) ?? "", /^a1 OK/, auth.join(" | "));
        const idle = await session.command("a2", "SELECT INBOX");
        assert.match(idle.at(-1) ?? "", /^a2 OK/, idle.join(" | "));
      }

      await ldap.modify(certificateChange(ldap.userDn("alice"), "delete", alice.der));
      const closed = await Promise.all(sessions.map((s) => awaitBye(s, 5000)));
      assert.deepEqual(closed, [true, true], "a BYE and a close on each node");
      for (const port of ports) {
        const refused = await external(port);
        assert.equal(refused.auth, undefined, JSON.stringify(refused));
        assert.match(refused.sslError ?? "", /CERTIFICATE_REVOKED/, JSON.stringify(refused));
      }

      // Put back, the certificate is good again on both nodes.
      await ldap.modify(certificateChange(ldap.userDn("alice"), "add", alice.der));
      for (const port of ports) {
        let result = await external(port);
        for (let i = 0; i < 40 && result.auth !== "OK"; i++) {
          await new Promise((r) => setTimeout(r, 250));
          result = await external(port);
        }
        assert.equal(result.auth, "OK", JSON.stringify(result));
      }
    } finally {
      for (const s of sessions) s.close();
      await Promise.all(nodes.map((n) => n.shutdown()));
      await pg.stop();
      await ldap.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
