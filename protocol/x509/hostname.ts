/**
 * Server identity checks for TLS clients (RFC 6125, Section 6; RFC 9525): DNS names match
 * dNSName entries of subjectAltName, with a wildcard allowed only as the whole left-most
 * label; IP literals match iPAddress entries. The subject CN is never consulted.
 */
import type { Certificate } from "./certificate.ts";
import { bytesEqual } from "./der.ts";
import { parseIp } from "./_ip.ts";

function isIpLiteral(host: string): boolean {
  return /^[0-9.]+$/.test(host) || host.includes(":");
}

function dnsNameMatches(pattern: string, host: string): boolean {
  const p = pattern.toLowerCase().replace(/\.$/, "");
  const h = host.toLowerCase().replace(/\.$/, "");
  if (p === "" || h === "") return false;
  if (!p.startsWith("*.")) return p === h;
  const suffix = p.slice(1);
  // "*.example.org" needs at least two labels after the wildcard and matches one label only.
  if (suffix.split(".").length < 3) return false;
  if (!h.endsWith(suffix)) return false;
  const label = h.slice(0, h.length - suffix.length);
  return label.length > 0 && !label.includes(".");
}

/** True when `cert` is valid for `host` (a DNS name or an IP address literal). */
export function matchesHostname(cert: Certificate, host: string): boolean {
  const san = cert.extensions.subjectAltName ?? [];
  if (isIpLiteral(host)) {
    let ip: Uint8Array;
    try {
      ip = parseIp(host.replace(/^\[|\]$/g, ""));
    } catch {
      return false;
    }
    return san.some((n) => n.kind === "iPAddress" && bytesEqual(n.value, ip));
  }
  return san.some((n) => n.kind === "dNSName" && dnsNameMatches(n.value, host));
}
