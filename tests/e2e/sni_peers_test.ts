/**
 * Several server certificates (RFC 6066, Section 3) with OpenSSL doing IMAP: the certificate is
 * chosen by -servername and, for one name, by the client's signature algorithms (ECDSA or RSA),
 * in TLS 1.3 and 1.2; a session resumes only under its own name; SIGHUP reloads them all.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runPeer } from "../_support/peers.ts";
import { startPostern } from "../_support/postern.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);
const SCRIPT = enc("a LOGIN alice secret\r\nb LOGOUT\r\n");

/** A self-signed server certificate for `name` (its own trust anchor in the test). */
async function selfSigned(dir: string, file: string, name: string, key: string, org: string) {
  const certificate = join(dir, `${file}.pem`);
  const privateKey = join(dir, `${file}.key`);
  const args = [
    "req",
    "-x509",
    "-newkey",
    key,
    ...(key === "ec" ? ["-pkeyopt", "ec_paramgen_curve:P-256"] : []),
    "-nodes",
    "-days",
    "2",
    "-subj",
    `/O=${org}/CN=${name}`,
    "-addext",
    `subjectAltName=DNS:${name}`,
    "-keyout",
    privateKey,
    "-out",
    certificate,
  ];
  const out = await new Deno.Command("openssl", { args, stderr: "piped" }).output();
  assert.equal(out.code, 0, dec(out.stderr));
  return { certificate, privateKey };
}

Deno.test("openssl gets the certificate of its server name and signature algorithms", async (t) => {
  const work = await Deno.makeTempDir({ prefix: "postern-sni-" });
  const other = await selfSigned(work, "other", "imap.other.test", "ec", "v1");
  const rsa = await selfSigned(work, "rsa", "localhost", "rsa:2048", "rsa");
  const postern = await startPostern({
    users: [{ name: "alice", password: "secret" }],
    extraCertificates: [
      { ...other, names: ["imap.other.test"] },
      { ...rsa, names: ["localhost"] },
    ],
  });
  const connect = (name: string, caFile: string, extra: string[] = []) =>
    runPeer(
      "openssl",
      [
        "s_client",
        "-connect",
        `127.0.0.1:${postern.implicitPort}`,
        "-servername",
        name,
        "-verify_hostname",
        name,
        "-CAfile",
        caFile,
        "-verify_return_error",
        ...extra,
      ],
      SCRIPT,
      15_000,
    );
  const ok = (run: { code: number; stdout: Uint8Array; stderr: string }, subject: RegExp) => {
    const out = dec(run.stdout);
    assert.equal(run.code, 0, run.stderr.slice(-600));
    assert.match(out, subject);
    assert.match(out, /^a OK/m);
  };
  try {
    for (const version of ["-tls1_3", "-tls1_2"]) {
      await t.step(`${version}: two names, two certificates`, async () => {
        ok(
          await connect("localhost", postern.caPath, [version]),
          /subject=.*CN ?= ?localhost[\s\S]*Peer signature type: ECDSA/,
        );
        ok(
          await connect("imap.other.test", other.certificate, [version]),
          /subject=O ?= ?v1, CN ?= ?imap\.other\.test/,
        );
      });
    }

    await t.step("one name: RSA for a client that only verifies RSA", async () => {
      ok(
        await connect("localhost", rsa.certificate, [
          "-tls1_3",
          "-sigalgs",
          "rsa_pss_rsae_sha256:rsa_pss_rsae_sha384",
        ]),
        /subject=O ?= ?rsa, CN ?= ?localhost[\s\S]*Peer signature type: RSA-PSS/,
      );
      ok(
        await connect("localhost", rsa.certificate, [
          "-tls1_2",
          "-cipher",
          "ECDHE-RSA-AES128-GCM-SHA256",
        ]),
        /subject=O ?= ?rsa, CN ?= ?localhost/,
      );
    });

    await t.step("a session resumes only under the name it was made for", async () => {
      for (const version of ["-tls1_3", "-tls1_2"]) {
        const session = join(work, `session${version}.pem`);
        ok(
          await connect("localhost", postern.caPath, [version, "-sess_out", session]),
          /^New, /m,
        );
        ok(
          await connect("localhost", postern.caPath, [version, "-sess_in", session]),
          /^Reused, /m,
        );
        ok(
          await connect("imap.other.test", other.certificate, [version, "-sess_in", session]),
          /^New, /m,
        );
      }
    });

    await t.step("SIGHUP reloads every certificate", async () => {
      const renewed = await selfSigned(work, "other", "imap.other.test", "ec", "v2");
      await postern.handle.reload();
      ok(
        await connect("imap.other.test", renewed.certificate, ["-tls1_3"]),
        /subject=O ?= ?v2, CN ?= ?imap\.other\.test/,
      );
    });
  } finally {
    await postern.stop();
    await Deno.remove(work, { recursive: true });
  }
});
