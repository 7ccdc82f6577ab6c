/**
 * Builds the TLS engine's configuration from PEM material: the server chain and key, and the
 * client-certificate policy with its trust anchors.
 */
import type { CryptoProvider } from "../protocol/crypto/provider.ts";
import { defaultProvider } from "../protocol/crypto/mod.ts";
import {
  DEFAULT_SUITES,
  DEFAULT_SUITES12,
  type MinVersion,
  type ServerConfig,
  type ServerOptions,
  type SessionCache,
  suite12ByName,
  type TicketKeys,
  type TicketUses,
} from "../protocol/tls/mod.ts";
import { createClientCertVerifier } from "../protocol/x509/client_verifier.ts";
import { parsePrivateKey } from "../protocol/x509/keys.ts";
import { decodePem } from "../protocol/x509/pem.ts";

export type ClientAuthMode = "none" | "optional" | "required";

export interface TlsMaterial {
  /** PEM chain, leaf first (the default certificate). */
  readonly certificatePem: string;
  readonly privateKeyPem: string;
  /**
   * Every certificate with the names it serves, the default first; chosen per ClientHello by
   * server name and signature algorithms (`protocol/tls/certificate_selection.ts`).
   */
  readonly certificates?: readonly {
    readonly certificatePem: string;
    readonly privateKeyPem: string;
    readonly names: readonly string[];
  }[];
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
  /** The lowest TLS version accepted (default "1.3" here; the config file defaults to "1.2"). */
  readonly minVersion?: MinVersion;
  readonly requireExtendedMasterSecret?: boolean;
  /** Resumption state, shared by every connection and kept across reloads. */
  readonly ticketKeys?: TicketKeys;
  readonly sessionCache?: SessionCache;
  readonly ticketUses?: TicketUses;
  readonly ticketsPerConnection?: number;
  readonly pskModes?: ServerConfig["pskModes"];
}

/** Decodes every CERTIFICATE block of a PEM text; throws if there is none. */
export function certificatesFromPem(pem: string, what = "certificate file"): Uint8Array[] {
  const ders = decodePem(pem).filter((b) => b.label === "CERTIFICATE").map((b) => b.der);
  if (ders.length === 0) throw new Error(`No CERTIFICATE block in ${what}`);
  return ders;
}

export function buildServerConfig(material: TlsMaterial): ServerOptions {
  const provider = material.provider ?? defaultProvider;
  const mode = material.clientAuth ?? "none";
  const anchors = (material.clientCaPems ?? []).flatMap((pem) =>
    certificatesFromPem(pem, "client CA bundle")
  );
  if (mode !== "none" && anchors.length === 0) {
    throw new Error(`client_auth ${mode} needs at least one client CA`);
  }
  const certificates = (material.certificates ?? []).map((c) => ({
    chain: certificatesFromPem(c.certificatePem),
    privateKey: parsePrivateKey(c.privateKeyPem),
    names: c.names,
  }));
  return {
    provider,
    certificateChain: certificates[0]?.chain ?? certificatesFromPem(material.certificatePem),
    privateKey: certificates[0]?.privateKey ?? parsePrivateKey(material.privateKeyPem),
    ...(certificates.length > 1 ? { certificates } : {}),
    alpnProtocols: ["imap"],
    ...(material.minVersion ? { minVersion: material.minVersion } : {}),
    ...(material.requireExtendedMasterSecret !== undefined
      ? { requireExtendedMasterSecret: material.requireExtendedMasterSecret }
      : {}),
    ...(material.ticketKeys ? { ticketKeys: material.ticketKeys } : {}),
    ...(material.sessionCache ? { sessionCache: material.sessionCache } : {}),
    ...(material.ticketUses ? { ticketUses: material.ticketUses } : {}),
    ...(material.ticketsPerConnection !== undefined
      ? { ticketsPerConnection: material.ticketsPerConnection }
      : {}),
    ...(material.pskModes ? { pskModes: material.pskModes } : {}),
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

/**
 * The protocol versions and cipher suites a configuration turns on, for `check-config`. The TLS
 * 1.2 suites depend on the server key (ECDSA suites for EC and Ed25519 keys, RSA suites for RSA
 * keys); without a readable key both families are listed.
 */
export function describeTlsSuites(
  minVersion: MinVersion,
  privateKeyPem: string | null,
): string[] {
  const lines = [`TLS 1.3 suites: ${DEFAULT_SUITES.join(", ")}`];
  if (minVersion === "1.3") {
    lines.push("TLS 1.2: off (tls.min_version is 1.3)");
    return lines;
  }
  let auth: "ecdsa" | "rsa" | null = null;
  if (privateKeyPem !== null) {
    try {
      auth = parsePrivateKey(privateKeyPem).kind === "rsa" ? "rsa" : "ecdsa";
    } catch {
      auth = null;
    }
  }
  const suites = DEFAULT_SUITES12.filter((name) =>
    auth === null || suite12ByName(name).auth === auth
  );
  lines.push(`TLS 1.2 suites: ${suites.join(", ")}`);
  return lines;
}
