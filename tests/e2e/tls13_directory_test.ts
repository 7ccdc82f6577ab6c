/**
 * The directory check over TLS 1.3 with a real slapd: a certificate stored in the user's entry
 * logs in with AUTHENTICATE EXTERNAL and gets a ticket; once the certificate is removed from
 * the directory, both a new handshake and a resumption with that ticket end with the
 * certificate_revoked alert. A ticket never outlives a revocation.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { certificateChange, directoryYaml } from "../_support/directory_e2e.ts";
import { runPeer } from "../_support/peers.ts";
import { startPostern } from "../_support/postern.ts";
import { startSlapd } from "../_support/slapd.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);
const SCRIPT = enc('a AUTHENTICATE EXTERNAL =\r\nb LIST "" INBOX\r\nc LOGOUT\r\n');

Deno.test("TLS 1.3 certificate logins and resumptions ask the directory each time", async () => {
  const ldap = await startSlapd({ users: [{ uid: "alice", mail: "alice@localhost" }] });
  const work = await Deno.makeTempDir({ prefix: "postern-tls13-dir-" });
  const postern = await startPostern({
    extraYaml: (await directoryYaml(ldap, work)) + "metrics: { listen: 127.0.0.1:0 }\n",
  });
  try {
    const alice = await postern.clientCertificate("alice");
    await ldap.modify(certificateChange(ldap.userDn("alice"), "add", alice.der));
    const session = join(work, "session.pem");
    const connect = (resume: boolean, out = session) =>
      runPeer(
        "openssl",
        [
          "s_client",
          "-connect",
          `127.0.0.1:${postern.implicitPort}`,
          "-tls1_3",
          "-servername",
          "localhost",
          "-alpn",
          "imap",
          "-CAfile",
          postern.caPath,
          "-cert",
          alice.certPath,
          "-key",
          alice.keyPath,
          ...(resume ? ["-sess_in", session] : ["-sess_out", out]),
        ],
        SCRIPT,
        15_000,
      );

    const first = await connect(false);
    const out = dec(first.stdout);
    assert.equal(first.code, 0, first.stderr);
    assert.match(out, /^New, TLSv1\.3/m);
    assert.match(out, /^a OK/m, out.slice(-600));
    assert.match(out, /^\* LIST .* INBOX\r?$/m);

    const resumed = await connect(true);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(dec(resumed.stdout), /^Reused, TLSv1\.3/m);
    assert.match(dec(resumed.stdout), /^a OK/m);

    await ldap.modify(certificateChange(ldap.userDn("alice"), "delete", alice.der));
    await new Promise((r) => setTimeout(r, 1200)); // the directory cache_ttl is 1 s
    for (const resume of [true, false]) {
      const refused = await connect(resume, join(work, "unused.pem"));
      assert.match(refused.stderr, /alert certificate revoked/, `resume ${resume}`);
      assert.doesNotMatch(dec(refused.stdout), /^a OK/m);
      if (resume) assert.match(dec(refused.stdout), /^Reused, TLSv1\.3/m);
    }
    // Each refusal is counted where it happened: one at a resumption, one at a full handshake.
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
    await ldap.stop();
    await Deno.remove(work, { recursive: true });
  }
});
