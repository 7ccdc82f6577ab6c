/**
 * The directory check over TLS 1.2 and TLS 1.3 with a real slapd (started once for the file):
 * a certificate stored in the user's entry logs in with AUTHENTICATE EXTERNAL and gets a
 * session to resume (a TLS 1.2 session ID, a TLS 1.3 ticket); once the certificate is removed
 * from the directory, both a new handshake and a resumption end with the certificate_revoked
 * alert. A resumable session never outlives a revocation, and each refusal is counted where it
 * happened.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { certificateChange, directoryYaml } from "../_support/directory_e2e.ts";
import { runPeer } from "../_support/peers.ts";
import { startPostern } from "../_support/postern.ts";
import { startSlapd } from "../_support/slapd.ts";

/**
 * The login's tagged OK in s_client's output, anywhere on a line: the server sends a TLS 1.3
 * ticket with the reply to a login (a vouched ticket), and s_client prints that ticket through
 * buffered stdout while it writes the reply straight to the file descriptor. A ticket that
 * carries the client's certificate chain prints more than stdio's buffer holds, so the reply
 * can land in the middle of the ticket's hex dump.
 */
const LOGGED_IN = /a OK \[CAPABILITY|a OK .*[Ll]ogged in/;

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);
const SCRIPT = enc('a AUTHENTICATE EXTERNAL =\r\nb LIST "" INBOX\r\nc LOGOUT\r\n');

const ldap = await startSlapd({
  users: [{ uid: "alice", mail: "alice@localhost" }, { uid: "bob", mail: "bob@localhost" }],
});

for (const [version, user] of [["1.2", "alice"], ["1.3", "bob"]] as const) {
  Deno.test({
    name: `TLS ${version} certificate logins and resumptions ask the directory each time`,
    sanitizeResources: false,
    async fn() {
      const work = await Deno.makeTempDir({ prefix: `postern-tls${version}-dir-` });
      const postern = await startPostern({
        extraYaml: (await directoryYaml(ldap, work)) + "metrics: { listen: 127.0.0.1:0 }\n",
      });
      try {
        const cert = await postern.clientCertificate(user);
        await ldap.modify(certificateChange(ldap.userDn(user), "add", cert.der));
        const session = join(work, "session.pem");
        const connect = (resume: boolean) =>
          runPeer(
            "openssl",
            [
              "s_client",
              "-connect",
              `127.0.0.1:${postern.implicitPort}`,
              version === "1.2" ? "-tls1_2" : "-tls1_3",
              "-servername",
              "localhost",
              "-CAfile",
              postern.caPath,
              "-cert",
              cert.certPath,
              "-key",
              cert.keyPath,
              // A refused attempt must not overwrite the session saved by the first login.
              ...(resume ? ["-sess_in", session] : ["-sess_out", session]),
            ],
            SCRIPT,
            15_000,
          );
        const label = `TLSv${version.replace(".", "\\.")}`;

        const first = await connect(false);
        const out = dec(first.stdout);
        assert.equal(first.code, 0, first.stderr);
        assert.match(out, new RegExp(`^New, ${label}`, "m"));
        assert.match(out, LOGGED_IN, out.slice(-600));
        assert.match(out, /^\* LIST .* INBOX\r?$/m);

        const resumed = await connect(true);
        assert.equal(resumed.code, 0, resumed.stderr);
        assert.match(dec(resumed.stdout), new RegExp(`^Reused, ${label}`, "m"));
        assert.match(dec(resumed.stdout), LOGGED_IN);

        await ldap.modify(certificateChange(ldap.userDn(user), "delete", cert.der));
        await new Promise((r) => setTimeout(r, 1200)); // the directory cache_ttl is 1 s
        for (const resume of [true, false]) {
          const refused = await connect(resume);
          assert.match(refused.stderr, /alert certificate revoked/, `resume ${resume}`);
          assert.doesNotMatch(dec(refused.stdout), LOGGED_IN);
          // TLS 1.3 checks the resumed identity after the ticket was accepted; TLS 1.2 before
          // its abbreviated Finished.
          if (resume && version === "1.3") {
            assert.match(dec(refused.stdout), new RegExp(`^Reused, ${label}`, "m"));
          }
        }
        const metrics = await (await fetch(
          `http://127.0.0.1:${postern.handle.metricsAddress!.port}/metrics`,
        )).text();
        for (const point of ["resumption", "handshake"]) {
          assert.match(
            metrics,
            new RegExp(`^postern_directory_revocations_total\\{point="${point}"\\} 1$`, "m"),
            metrics,
          );
        }
      } finally {
        await postern.stop();
        await Deno.remove(work, { recursive: true });
      }
    },
  });
}

Deno.test("stop slapd", async () => {
  await ldap.stop();
});
