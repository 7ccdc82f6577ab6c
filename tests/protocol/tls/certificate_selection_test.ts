/** Several server certificates chosen by server name and signature algorithms (RFC 6066). */
import assert from "node:assert/strict";
import { acceptTls } from "../../../protocol/tls/acceptor.ts";
import {
  nameMatches,
  type ServerCertificate,
} from "../../../protocol/tls/certificate_selection.ts";
import { TlsClientConnection } from "../../../protocol/tls/client.ts";
import { Tls12ClientConnection } from "../../../protocol/tls/tls12/client12.ts";
import { TicketKeys } from "../../../protocol/tls/ticket_keys.ts";
import { SignatureScheme } from "../../../protocol/tls/wire.ts";
import type { PrivateKeyKind } from "../../../protocol/crypto/provider.ts";
import { dec, keyFixture, kinds, type PairLike, provider, run } from "./_pair.ts";

function cert(kind: PrivateKeyKind, names: string[]): ServerCertificate {
  const k = keyFixture(kind);
  return { chain: k.chain, privateKey: k.privateKey, names };
}

const CERTIFICATES = [
  cert("P-256", ["mail.example.org"]),
  cert("rsa2048", ["mail.example.org"]),
  cert("ed25519", ["*.example.net"]),
];

/** Handshakes and returns the name in the certificate the client saw (its key kind). */
function presented(
  client: { version: "1.2" | "1.3"; serverName?: string; schemes?: number[]; suites12?: string[] },
  options: { ticketKeys?: TicketKeys } = {},
): string {
  let seen = "";
  const verifyServer = (chain: readonly Uint8Array[]) => {
    seen = dec(chain[0]!).replace("certificate for a ", "").replace(" key", "");
    return keyFixture(seen as PrivateKeyKind).publicKey;
  };
  const server = acceptTls({
    provider,
    certificateChain: CERTIFICATES[0]!.chain,
    privateKey: CERTIFICATES[0]!.privateKey,
    certificates: CERTIFICATES,
    minVersion: "1.2",
    ...options,
  });
  const c = client.version === "1.3"
    ? new TlsClientConnection({
      provider,
      verifyServer,
      ...(client.serverName ? { serverName: client.serverName } : {}),
      ...(client.schemes ? { signatureSchemes: client.schemes } : {}),
    })
    : new Tls12ClientConnection({
      provider,
      verifyServer,
      ...(client.serverName ? { serverName: client.serverName } : {}),
      ...(client.schemes ? { signatureSchemes: client.schemes } : {}),
      ...(client.suites12 ? { cipherSuites: client.suites12 as never } : {}),
    });
  const p: PairLike = { client: c, server, clientEvents: [], serverEvents: [] };
  run(p);
  assert.deepEqual(kinds(p.serverEvents), ["handshakeComplete"], JSON.stringify(client));
  assert.equal(server.info().sni, client.serverName ?? null);
  return seen;
}

Deno.test("nameMatches() matches exact names and one-label wildcards", () => {
  assert.equal(nameMatches("mail.example.org", "mail.example.org"), true);
  assert.equal(nameMatches("*.example.net", "imap.example.net"), true);
  assert.equal(nameMatches("*.example.net", "example.net"), false);
  assert.equal(nameMatches("*.example.net", "a.b.example.net"), false);
  assert.equal(nameMatches("mail.example.org", "other.example.org"), false);
});

Deno.test("TLS 1.3 picks the certificate by server name, then by signature_algorithms", () => {
  const S = SignatureScheme;
  assert.equal(presented({ version: "1.3", serverName: "mail.example.org" }), "P-256");
  assert.equal(
    presented({
      version: "1.3",
      serverName: "mail.example.org",
      schemes: [S.rsa_pss_rsae_sha256, S.rsa_pss_rsae_sha384],
    }),
    "rsa2048",
  );
  assert.equal(presented({ version: "1.3", serverName: "imap.example.net" }), "ed25519");
  assert.equal(presented({ version: "1.3", serverName: "unknown.example" }), "P-256");
  assert.equal(presented({ version: "1.3" }), "P-256");
  assert.equal(
    presented({ version: "1.3", schemes: [S.ed25519] }),
    "ed25519",
    "no name: the first certificate the client can verify",
  );
});

Deno.test("TLS 1.2 picks the certificate by server name, then by the suites offered", () => {
  assert.equal(presented({ version: "1.2", serverName: "mail.example.org" }), "P-256");
  assert.equal(
    presented({
      version: "1.2",
      serverName: "mail.example.org",
      suites12: ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"],
    }),
    "rsa2048",
  );
  assert.equal(presented({ version: "1.2", serverName: "imap.example.net" }), "ed25519");
});
