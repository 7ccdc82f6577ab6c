/**
 * Revocation with two Workers, against a real slapd: a client certificate removed from the
 * user's LDAP entry closes that user's sessions on both Workers, and new connections get
 * certificate_revoked whichever Worker takes them, resumptions too (openssl s_client with a
 * TLS 1.2 session ID and a TLS 1.3 ticket saved before, both Workers sharing them).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runPeer } from "../../_support/peers.ts";
import { startSlapd } from "../../_support/slapd.ts";
import { startPostern } from "../../_support/postern.ts";
import {
  certificateChange,
  directoryYaml,
  ImapLines,
  pythonImap,
} from "../../_support/directory_e2e.ts";

/**
 * The login's tagged OK in s_client's output, anywhere on a line: the server sends a TLS 1.3
 * ticket with the reply to a login (a vouched ticket), and s_client prints that ticket through
 * buffered stdout while it writes the reply straight to the file descriptor. A ticket that
 * carries the client's certificate chain prints more than stdio's buffer holds, so the reply
 * can land in the middle of the ticket's hex dump.
 */
const LOGGED_IN = /a OK \[CAPABILITY|a OK .*[Ll]ogged in/;

/** Reads until `* BYE` and then the end of the stream; false if either does not come. */
async function awaitBye(session: ImapLines, withinMs: number): Promise<boolean> {
  for (let i = 0; i < 10; i++) {
    const line = await session.readLine(withinMs);
    if (line === null) return false;
    if (line.startsWith("* BYE")) return (await session.readLine(2000)) === null;
  }
  return false;
}

Deno.test({
  name: "a certificate removed from the directory closes its sessions on both Workers",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const ldap = await startSlapd({ users: [{ uid: "alice", mail: "alice@localhost" }] });
    const work = await Deno.makeTempDir({ prefix: "postern-workers-ldap-" });
    const postern = await startPostern({
      workers: 2,
      extraYaml: await directoryYaml(ldap, work, { recheckInterval: "1s", cacheTtl: "1s" }),
    });
    const sessions = new Map<string, ImapLines>();
    try {
      const alice = await postern.clientCertificate("alice");
      await ldap.modify(certificateChange(ldap.userDn("alice"), "add", alice.der));
      const pems = {
        certPem: await Deno.readTextFile(alice.certPath),
        keyPem: await Deno.readTextFile(alice.keyPath),
      };
      // Sessions of alice's certificate until both Workers hold one (bounded).
      for (let i = 0; i < 64 && sessions.size < 2; i++) {
        const session = await ImapLines.connect(postern.implicitPort, postern.caPem, pems);
        assert.match((await session.readLine()) ?? "", /^\* OK /);
        const auth = await session.command("a1", "AUTHENTICATE EXTERNAL =");
        assert.match(auth.at(-1) ?? "", /^a1 OK/, auth.join(" | "));
        const id = (await session.command("a2", "ID NIL")).join("\n");
        const worker = /"x-postern-worker" "(\d+)"/.exec(id)?.[1] ?? "";
        assert.notEqual(worker, "", id);
        if (sessions.has(worker)) session.close();
        else sessions.set(worker, session);
      }
      assert.equal(sessions.size, 2, "sessions never reached both Workers");

      // Sessions to resume: a TLS 1.2 one by its ID (no ticket), a TLS 1.3 ticket.
      const script = new TextEncoder().encode("a AUTHENTICATE EXTERNAL =\r\nc LOGOUT\r\n");
      const connect = (version: "1.2" | "1.3", resume: boolean) =>
        runPeer(
          "openssl",
          [
            "s_client",
            "-connect",
            `127.0.0.1:${postern.implicitPort}`,
            ...(version === "1.2" ? ["-tls1_2", "-no_ticket"] : ["-tls1_3"]),
            "-servername",
            "localhost",
            "-CAfile",
            postern.caPath,
            "-cert",
            alice.certPath,
            "-key",
            alice.keyPath,
            ...(resume ? ["-sess_in", join(work, `s${version}.pem`)] : [
              "-sess_out",
              join(work, `s${version}.pem`),
            ]),
          ],
          script,
          15_000,
        );
      for (const version of ["1.2", "1.3"] as const) {
        const saved = await connect(version, false);
        assert.match(new TextDecoder().decode(saved.stdout), LOGGED_IN, saved.stderr);
        const resumed = await connect(version, true);
        assert.match(new TextDecoder().decode(resumed.stdout), /^Reused, /m);
      }

      await ldap.modify(certificateChange(ldap.userDn("alice"), "delete", alice.der));
      for (const [worker, session] of sessions) {
        assert.ok(await awaitBye(session, 10_000), `no BYE on Worker ${worker}`);
      }
      const again = await pythonImap({
        port: postern.implicitPort,
        ca: postern.caPath,
        cert: alice.certPath,
        key: alice.keyPath,
        action: "external",
      });
      assert.match(JSON.stringify(again), /CERTIFICATE_REVOKED/, JSON.stringify(again));
      // Whichever Worker takes them (four tries each), resumptions are refused too.
      for (const version of ["1.2", "1.3"] as const) {
        for (let i = 0; i < 4; i++) {
          const refused = await connect(version, true);
          assert.match(refused.stderr, /alert certificate revoked/, `TLS ${version}`);
          assert.doesNotMatch(new TextDecoder().decode(refused.stdout), LOGGED_IN);
        }
      }
    } finally {
      for (const session of sessions.values()) session.close();
      await postern.stop();
      await ldap.stop();
      await Deno.remove(work, { recursive: true });
    }
  },
});
