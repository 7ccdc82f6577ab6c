/**
 * Builds the TLS engine's configuration from PEM material: the server chain and key, and the
 * client-certificate policy with its trust anchors.
 */
import type { CryptoProvider } from "../protocol/crypto/provider.ts";
import { defaultProvider } from "../protocol/crypto/mod.ts";
import type { ServerConfig } from "../protocol/tls/mod.ts";
import { createClientCertVerifier } from "../protocol/x509/client_verifier.ts";
import { parsePrivateKey } from "../protocol/x509/keys.ts";
import { decodePem } from "../protocol/x509/pem.ts";

export type ClientAuthMode = "none" | "optional" | "required";

export interface TlsMaterial {
  /** PEM chain, leaf first. */
  readonly certificatePem: string;
  readonly privateKeyPem: string;
  readonly clientAuth?: ClientAuthMode;
  /** PEM bundles of CAs trusted for client certificates. */
  readonly clientCaPems?: readonly string[];
  readonly provider?: CryptoProvider;
  readonly groups?: ServerConfig["groups"];
  readonly cipherSuites?: ServerConfig["cipherSuites"];
  /** The clock for certificate validity (tests). */
  readonly clock?: () => Date;
  /** Most certificates in a client path: the leaf and intermediates, not the anchor. */
  readonly maxChainDepth?: number;
}

/** Decodes every CERTIFICATE block of a PEM text; throws if there is none. */
export function certificatesFromPem(pem: string, what = "certificate file"): Uint8Array[] {
  const ders = decodePem(pem).filter((b) => b.label === "CERTIFICATE").map((b) => b.der);
  if (ders.length === 0) throw new Error(`No CERTIFICATE block in ${what}`);
  return ders;
}

export function buildServerConfig(material: TlsMaterial): ServerConfig {
  const provider = material.provider ?? defaultProvider;
  const mode = material.clientAuth ?? "none";
  const anchors = (material.clientCaPems ?? []).flatMap((pem) =>
    certificatesFromPem(pem, "client CA bundle")
  );
  if (mode !== "none" && anchors.length === 0) {
    throw new Error(`client_auth ${mode} needs at least one client CA`);
  }
  return {
    provider,
    certificateChain: certificatesFromPem(material.certificatePem),
    privateKey: parsePrivateKey(material.privateKeyPem),
    alpnProtocols: ["imap"],
    ...(material.groups ? { groups: material.groups } : {}),
    ...(material.cipherSuites ? { cipherSuites: material.cipherSuites } : {}),
    ...(mode === "none" ? {} : {
      clientAuth: {
        mode,
        verifier: createClientCertVerifier({
          anchors,
          provider,
          ...(material.clock ? { clock: material.clock } : {}),
          ...(material.maxChainDepth ? { maxDepth: material.maxChainDepth } : {}),
        }),
      },
    }),
  };
}
