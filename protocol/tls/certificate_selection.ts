/**
 * Several server certificates (RFC 6066, Section 3): the one to present is chosen from the
 * ClientHello's server_name, then from what the client can verify (its signature_algorithms,
 * and for TLS 1.2 the authentication of the suites it offers), so that one name can have an
 * ECDSA, an RSA and an Ed25519 certificate. The first certificate is the default.
 */
import type { PrivateKey } from "../crypto/provider.ts";
import type { ClientHello } from "./messages/client_hello.ts";
import { findExtension, parseBody, readServerName, readU16List } from "./messages/extensions.ts";
import { chooseSigningScheme } from "./signature_scheme.ts";
import { chooseSigningScheme12, suiteAuthOf } from "./tls12/signature12.ts";
import { type CipherSuite12Name, DEFAULT_SUITES12, suite12ByName } from "./tls12/wire12.ts";
import { ExtensionType } from "./wire.ts";

/** One server certificate chain with its key and the names it serves. */
export interface ServerCertificate {
  /** DER certificates, leaf first. */
  readonly chain: readonly Uint8Array[];
  readonly privateKey: PrivateKey;
  /** Host names, lower case; `*.example.org` matches exactly one more label. */
  readonly names: readonly string[];
}

/** Whether `host` (lower case) matches the configured `pattern` (RFC 6125, Section 6.4.3). */
export function nameMatches(pattern: string, host: string): boolean {
  if (pattern.startsWith("*.")) {
    const dot = host.indexOf(".");
    return dot > 0 && host.slice(dot + 1) === pattern.slice(2);
  }
  return pattern === host;
}

/**
 * The certificate for a ClientHello: among those named for its server_name (or, when none is,
 * all of them), the first whose key the client can verify for `version`. When none fits the
 * client, the first candidate is returned and the engine refuses with its usual alert.
 */
export function selectCertificate(
  certificates: readonly ServerCertificate[],
  ch: ClientHello | null,
  version: "1.2" | "1.3",
  suites12: readonly CipherSuite12Name[] = DEFAULT_SUITES12,
): ServerCertificate {
  const first = certificates[0];
  if (first === undefined) throw new Error("No server certificate");
  if (ch === null || certificates.length === 1) return first;
  const sni = serverNameOf(ch);
  const named = sni === null
    ? []
    : certificates.filter((c) => c.names.some((n) => nameMatches(n, sni)));
  const candidates = named.length > 0 ? named : certificates;
  const schemes = signatureSchemesOf(ch);
  const usable = (c: ServerCertificate): boolean => {
    if (version === "1.3") {
      return schemes !== null && chooseSigningScheme(c.privateKey, schemes) !== null;
    }
    const auth = suiteAuthOf(c.privateKey);
    return chooseSigningScheme12(c.privateKey, schemes) !== null &&
      suites12.some((s) => {
        const suite = suite12ByName(s);
        return suite.auth === auth && ch.cipherSuites.includes(suite.code);
      });
  };
  return candidates.find(usable) ?? candidates[0]!;
}

/** The host_name of server_name, lower case; null when absent or unreadable. */
export function serverNameOf(ch: ClientHello): string | null {
  const body = findExtension(ch.extensions, ExtensionType.server_name);
  if (body === undefined) return null;
  try {
    const name = parseBody(body, "server_name", readServerName);
    return name === null ? null : String.fromCharCode(...name).toLowerCase();
  } catch {
    return null;
  }
}

function signatureSchemesOf(ch: ClientHello): number[] | null {
  const body = findExtension(ch.extensions, ExtensionType.signature_algorithms);
  if (body === undefined) return null;
  try {
    return parseBody(body, "signature_algorithms", (r) => readU16List(r, 2));
  } catch {
    return null;
  }
}
