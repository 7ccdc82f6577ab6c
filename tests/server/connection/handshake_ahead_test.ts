/** The server's thread of handshake work done ahead, following its keys (handshake_ahead.ts). */
import assert from "node:assert/strict";
import { join } from "node:path";
import { defaultProvider, nobleProvider } from "../../../protocol/crypto/mod.ts";
import { ensureDevPki } from "../../../server/cli/dev_pki.ts";
import { ServerAhead } from "../../../server/connection/handshake_ahead.ts";
import { buildServerConfig } from "../../../server/connection/tls_config.ts";

async function devConfig(dir: string) {
  const pki = await ensureDevPki(join(dir, "certs"));
  return buildServerConfig({
    certificatePem: await Deno.readTextFile(pki.serverCertificate),
    privateKeyPem: await Deno.readTextFile(pki.serverKey),
  });
}

Deno.test("with auto signing one thread serves the P-256 key, and a new key gets a new thread", async () => {
  const dir = await Deno.makeTempDir();
  const ahead = new ServerAhead("auto");
  try {
    const config = await devConfig(dir);
    assert.equal(config.privateKey.kind, "ec");
    ahead.follow(config);
    const first = ahead.work;
    assert.ok(first !== null);
    // The same keys (a reload that changed nothing): the same thread.
    ahead.follow({ ...config });
    assert.equal(ahead.work, first);
    const message = new TextEncoder().encode("CertificateVerify content");
    const algorithm = { kind: "ecdsa", hash: "SHA-256" } as const;
    for (let i = 0; i < 100 && first.ready(0) === 0; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    // The server's signatures (the default provider) take the thread's nonces.
    const sig = defaultProvider.sign(config.privateKey, algorithm, message);
    assert.equal(first.used(0), 1);
    assert.ok(
      nobleProvider.verify(nobleProvider.publicKeyOf(config.privateKey), algorithm, message, sig),
    );
    // A new key (a reload with a new certificate): a new thread.
    ahead.follow({ ...config, privateKey: nobleProvider.generatePrivateKey("P-256") });
    assert.ok(ahead.work !== null && ahead.work !== first);
  } finally {
    await ahead.close();
    await Deno.remove(dir, { recursive: true });
  }
  assert.equal(ahead.work, null);
});

Deno.test("sync and async signing make nothing ahead", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const config = await devConfig(dir);
    for (const mode of ["sync", "async"] as const) {
      const ahead = new ServerAhead(mode);
      ahead.follow(config);
      assert.equal(ahead.work, null);
      await ahead.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
