/** The TLS engine configuration built from PEM material and the config file's limits. */
import assert from "node:assert/strict";
import { CertificateError } from "../../../protocol/x509/identity.ts";
import { buildServerConfig, certificatesFromPem } from "../../../server/connection/tls_config.ts";
import { parseConfig } from "../../../server/config/mod.ts";
import { makeIntermediateClient } from "../../_support/mtls.ts";
import { makeOpensslPki } from "../../_support/openssl_pki.ts";

Deno.test("tls.max_chain_depth limits the client certificate path", async () => {
  const pki = await makeOpensslPki();
  try {
    const server = await pki.server("ec256");
    const client = await makeIntermediateClient(pki, "deep");
    const chain = certificatesFromPem(client.chainPem);
    const verifierFor = (maxChainDepth: number) =>
      buildServerConfig({
        certificatePem: server.certPem,
        privateKeyPem: server.keyPem,
        clientAuth: "required",
        clientCaPems: [pki.ca.certPem],
        maxChainDepth,
      }).clientAuth!.verifier;
    // Leaf and intermediate: two certificates below the trusted root.
    assert.equal(verifierFor(2).verify(chain).path.length, 3);
    assert.throws(
      () => verifierFor(1).verify(chain),
      (e) => e instanceof CertificateError && e.alert === "bad_certificate",
    );
  } finally {
    await pki.remove();
  }
});

Deno.test("tls.max_chain_depth is read with its default and its range checked", () => {
  const base = "tls:\n  client_auth: none\n";
  assert.equal(parseConfig(base, "c.yaml", { checkFiles: false }).tls.maxChainDepth, 8);
  assert.equal(
    parseConfig(base + "  max_chain_depth: 3\n", "c.yaml", { checkFiles: false }).tls.maxChainDepth,
    3,
  );
  assert.throws(
    () => parseConfig(base + "  max_chain_depth: 40\n", "c.yaml", { checkFiles: false }),
    /c\.yaml:3:\d+: .*max_chain_depth/,
  );
});
