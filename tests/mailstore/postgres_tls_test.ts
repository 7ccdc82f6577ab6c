/**
 * TLS between Postern and PostgreSQL (`store.tls`), against a throwaway cluster started with
 * `ssl=on`, a server certificate from a test CA (made with the openssl CLI), and pg_hba.conf
 * allowing TCP clients only over TLS (`hostssl`), so that a store that opens at all did use TLS.
 * The store is opened from a parsed config file, as `postern serve` opens it.
 *
 * - `verify-full` with `ca:` the test CA works, by IP address (the certificate's IP SAN).
 * - `disable` is refused by the server; `verify-full` against another CA is refused by us.
 * - A certificate for another host name: refused by `verify-full`, accepted by `require`.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { parseConfig } from "../../server/config/mod.ts";
import { openConfiguredStore } from "../../server/serve/store.ts";
import { issueWithOpenssl, makeOpensslPki } from "../_support/openssl_pki.ts";
import { postgresAvailable, type RunningPostgres, startPostgres } from "../_support/postgres.ts";

const available = postgresAvailable();
const pki = available ? await makeOpensslPki() : null;
const otherPki = available ? await makeOpensslPki() : null;
const leaf = pki ? await pki.server("ec256") : null;
const pg: RunningPostgres | null = available
  ? await startPostgres({
    tls: { certificatePem: leaf!.certPem, keyPem: leaf!.keyPem, only: true },
  })
  : null;
globalThis.addEventListener("unload", () => {
  for (const p of [pki, otherPki]) if (p) Deno.removeSync(p.dir, { recursive: true });
});

/** Opens the store that a config with this `store.tls` and `store.ca` names. */
async function openWith(tls: string, ca: string | null, host = "127.0.0.1") {
  const yaml = [
    `data_dir: ${pki!.dir}`,
    "tls:",
    `  certificate: ${leaf!.certPath}`,
    `  private_key: ${leaf!.keyPath}`,
    "  client_auth: none",
    "store:",
    "  kind: postgres",
    `  url: postgres://postern@${host}:${pg!.port}/postern`,
    `  password_file: ${pg!.passwordFile}`,
    "  pool_size: 2",
    `  tls: ${tls}`,
    ...(ca === null ? [] : [`  ca: ${ca}`]),
    "  connect_timeout: 5s",
    "",
  ].join("\n");
  const config = parseConfig(yaml, join(pki!.dir, "config.yaml"), { checkFiles: true });
  return await openConfiguredStore(config);
}

const enc = new TextEncoder();

Deno.test({
  name: "store.tls verify-full with the CA of the server's certificate opens the store",
  ignore: !available,
  fn: async () => {
    const store = await openWith("verify-full", pki!.ca.certPath);
    try {
      const account = await store.getAccount("tls") ?? await store.createAccount("tls", null);
      const inbox = await store.getMailbox(account.id, "INBOX") ??
        await store.createMailbox(account.id, "INBOX");
      await store.append(inbox.id, { raw: enc.encode("Subject: over TLS\r\n\r\nhello\r\n") });
      assert.ok((await store.listMessages(inbox.id)).length >= 1);
    } finally {
      await store.close();
    }
  },
});

Deno.test({
  name: "store.tls disable is refused by a server that takes TCP clients over TLS only",
  ignore: !available,
  fn: async () => {
    await assert.rejects(openWith("disable", null), /pg_hba\.conf|no encryption|SSL off/i);
  },
});

Deno.test({
  name: "store.tls verify-full refuses a server certificate from another CA",
  ignore: !available,
  fn: async () => {
    await assert.rejects(
      openWith("verify-full", otherPki!.ca.certPath),
      /certificate|self.signed|unable to (get|verify)|UnknownIssuer/i,
    );
  },
});

Deno.test({
  name: "a certificate for another host name: verify-full refuses it, require accepts it",
  ignore: !available,
  fn: async () => {
    const wrong = await issueWithOpenssl(
      pki!.dir,
      "db-example",
      "ec256",
      "/CN=db.example.org",
      "basicConstraints = CA:FALSE\nkeyUsage = critical,digitalSignature\n" +
        "extendedKeyUsage = serverAuth\nsubjectAltName = DNS:db.example.org\n",
      pki!.ca,
    );
    const files = pg!.tlsFiles!;
    await pg!.stopServer();
    await Deno.writeTextFile(files.certificate, wrong.certPem);
    await Deno.writeTextFile(files.key, wrong.keyPem);
    await pg!.startServer();
    try {
      await assert.rejects(
        openWith("verify-full", pki!.ca.certPath),
        /host|name|altname|IP|NotValidForName/i,
      );
      const store = await openWith("require", null);
      await store.close();
    } finally {
      await pg!.stopServer();
      await Deno.writeTextFile(files.certificate, leaf!.certPem);
      await Deno.writeTextFile(files.key, leaf!.keyPem);
      await pg!.startServer();
    }
  },
});

/** Puts `issued` in place of the server's certificate for `body`, then restores the first. */
async function withServerCertificate(
  issued: { certPem: string; keyPem: string },
  body: () => Promise<void>,
): Promise<void> {
  const files = pg!.tlsFiles!;
  await pg!.stopServer();
  await Deno.writeTextFile(files.certificate, issued.certPem);
  await Deno.writeTextFile(files.key, issued.keyPem);
  await pg!.startServer();
  try {
    await body();
  } finally {
    await pg!.stopServer();
    await Deno.writeTextFile(files.certificate, leaf!.certPem);
    await Deno.writeTextFile(files.key, leaf!.keyPem);
    await pg!.startServer();
  }
}

Deno.test({
  name: "verify-full checks an IP address URL against the certificate's IP SANs, not localhost",
  ignore: !available,
  fn: async () => {
    const san = (name: string, altNames: string) =>
      issueWithOpenssl(
        pki!.dir,
        name,
        "ec256",
        `/CN=${name}`,
        "basicConstraints = CA:FALSE\nkeyUsage = critical,digitalSignature\n" +
          `extendedKeyUsage = serverAuth\nsubjectAltName = ${altNames}\n`,
        pki!.ca,
      );
    // The address alone: accepted by IP, refused by a name the certificate lacks.
    await withServerCertificate(await san("ip-only", "IP:127.0.0.1"), async () => {
      const store = await openWith("verify-full", pki!.ca.certPath);
      await store.close();
      await assert.rejects(
        openWith("verify-full", pki!.ca.certPath, "localhost"),
        /altnames/,
      );
    });
    // "localhost" alone: refused for 127.0.0.1 (the driver's default name must not count).
    await withServerCertificate(await san("name-only", "DNS:localhost"), async () => {
      await assert.rejects(openWith("verify-full", pki!.ca.certPath), /altnames/);
      const store = await openWith("verify-full", pki!.ca.certPath, "localhost");
      await store.close();
    });
  },
});

Deno.test({
  name: "the TLS cluster stops",
  ignore: !available,
  fn: async () => {
    await pg!.stop();
  },
});
