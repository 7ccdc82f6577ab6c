/**
 * Builds the TLS engine's configuration from the material the configuration read and parsed
 * once (server chains and keys, client CAs) and its client-certificate policy.
 */
import type { CryptoProvider, PrivateKey } from "../../protocol/crypto/provider.ts";
import { defaultProvider } from "../../protocol/crypto/mod.ts";
import {
  DEFAULT_SUITES,
  DEFAULT_SUITES12,
  type MinVersion,
  type ServerConfig,
  type ServerOptions,
  type SessionStore12,
  suite12ByName,
  type TicketKeys,
  type TicketUseCounter,
} from "../../protocol/tls/mod.ts";
import { createClientCertVerifier } from "../../protocol/x509/client_verifier.ts";
import { parsePrivateKey } from "../../protocol/x509/keys.ts";
import { decodePem } from "../../protocol/x509/pem.ts";
import { type ClientAuthMode, clientAuthProblem, type TlsMaterial } from "../config/tls.ts";

export type { ClientAuthMode } from "../config/tls.ts";

/** What the engine needs beyond the certificates: the client-certificate policy and limits. */
export interface TlsEngineSettings {
  readonly clientAuth?: ClientAuthMode;
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
  readonly sessionCache?: SessionStore12;
  readonly ticketUses?: TicketUseCounter;
  readonly ticketsPerConnection?: number;
  readonly pskModes?: ServerConfig["pskModes"];
  /**
   * The server's first data (the IMAP greeting) in the same write as its reply to the
   * ClientHello when no client certificate takes part (`ServerConfig.halfRtt`; default true).
   */
  readonly halfRtt?: boolean;
}

/** PEM texts in place of parsed material, for tests and benchmarks that hold PEM strings. */
export interface PemTlsInput extends TlsEngineSettings {
  /** PEM chain, leaf first (the default certificate). */
  readonly certificatePem: string;
  readonly privateKeyPem: string;
  /** PEM bundles of CAs trusted for client certificates. */
  readonly clientCaPems?: readonly string[];
}

/** Decodes every CERTIFICATE block of a PEM text; throws if there is none. */
export function certificatesFromPem(pem: string, what = "certificate file"): Uint8Array[] {
  const ders = decodePem(pem).filter((b) => b.label === "CERTIFICATE").map((b) => b.der);
  if (ders.length === 0) throw new Error(`No CERTIFICATE block in ${what}`);
  return ders;
}

/** The engine configuration from PEM texts (parsed here); see `serverOptions`. */
export function buildServerConfig(input: PemTlsInput): ServerOptions {
  const material: TlsMaterial = {
    certificates: [{
      chain: certificatesFromPem(input.certificatePem),
      privateKey: parsePrivateKey(input.privateKeyPem),
      names: [],
    }],
    clientCas: (input.clientCaPems ?? []).flatMap((pem) =>
      certificatesFromPem(pem, "client CA bundle")
    ),
  };
  return serverOptions(material, input);
}

/**
 * The TLS engine's configuration from material the configuration has already read and parsed:
 * nothing is read or decoded again.
 */
export function serverOptions(material: TlsMaterial, settings: TlsEngineSettings): ServerOptions {
  const provider = settings.provider ?? defaultProvider;
  const mode = settings.clientAuth ?? "none";
  const problem = clientAuthProblem(mode, material.clientCas.length);
  if (problem !== null) throw new Error(`tls.client_ca: ${problem}`);
  const [first] = material.certificates;
  if (first === undefined) throw new Error("No server certificate");
  return {
    provider,
    certificateChain: [...first.chain],
    privateKey: first.privateKey,
    ...(material.certificates.length > 1
      ? {
        certificates: material.certificates.map((c) => ({
          chain: [...c.chain],
          privateKey: c.privateKey,
          names: c.names,
        })),
      }
      : {}),
    alpnProtocols: ["imap"],
    halfRtt: settings.halfRtt ?? true,
    ...(settings.minVersion ? { minVersion: settings.minVersion } : {}),
    ...(settings.requireExtendedMasterSecret !== undefined
      ? { requireExtendedMasterSecret: settings.requireExtendedMasterSecret }
      : {}),
    ...(settings.ticketKeys ? { ticketKeys: settings.ticketKeys } : {}),
    ...(settings.sessionCache ? { sessionCache: settings.sessionCache } : {}),
    ...(settings.ticketUses ? { ticketUses: settings.ticketUses } : {}),
    ...(settings.ticketsPerConnection !== undefined
      ? { ticketsPerConnection: settings.ticketsPerConnection }
      : {}),
    ...(settings.pskModes ? { pskModes: settings.pskModes } : {}),
    ...(settings.groups ? { groups: settings.groups } : {}),
    ...(settings.cipherSuites ? { cipherSuites: settings.cipherSuites } : {}),
    ...(mode === "none" ? {} : {
      clientAuth: {
        mode,
        verifier: createClientCertVerifier({
          anchors: [...material.clientCas],
          provider,
          ...(settings.clock ? { clock: settings.clock } : {}),
          ...(settings.maxChainDepth ? { maxDepth: settings.maxChainDepth } : {}),
        }),
      },
    }),
  };
}

/**
 * The protocol versions and cipher suites a configuration turns on, for `check-config`. The TLS
 * 1.2 suites depend on the server key (ECDSA suites for EC and Ed25519 keys, RSA suites for RSA
 * keys); without a key both families are listed.
 */
export function describeTlsSuites(minVersion: MinVersion, privateKey: PrivateKey | null): string[] {
  const lines = [`TLS 1.3 suites: ${DEFAULT_SUITES.join(", ")}`];
  if (minVersion === "1.3") {
    lines.push("TLS 1.2: off (tls.min_version is 1.3)");
    return lines;
  }
  const auth = privateKey === null ? null : privateKey.kind === "rsa" ? "rsa" : "ecdsa";
  const suites = DEFAULT_SUITES12.filter((name) =>
    auth === null || suite12ByName(name).auth === auth
  );
  lines.push(`TLS 1.2 suites: ${suites.join(", ")}`);
  return lines;
}
