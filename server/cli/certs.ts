/** `postern certs list` and `postern certs show`: human-readable certificate summaries. */
import { join } from "node:path";
import { defaultProvider } from "../../protocol/crypto/mod.ts";
import {
  type Certificate,
  type GeneralName,
  KeyUsage,
  parseCertificate,
} from "../../protocol/x509/certificate.ts";
import { nameToString } from "../../protocol/x509/name.ts";
import { Oid } from "../../protocol/x509/oid.ts";
import { decodePem } from "../../protocol/x509/pem.ts";
import { CliError } from "./args.ts";

const EKU_NAMES: Record<string, string> = {
  [Oid.serverAuth]: "serverAuth",
  [Oid.clientAuth]: "clientAuth",
};

/** The certificates of a PEM file (or of a DER file), parsed. */
export async function readCertificates(path: string): Promise<Certificate[]> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (error) {
    throw new CliError(`cannot read ${path}: ${reason(error)}`);
  }
  try {
    if (bytes[0] === 0x30) return [parseCertificate(bytes)];
    const blocks = decodePem(new TextDecoder().decode(bytes))
      .filter((b) => b.label === "CERTIFICATE");
    if (blocks.length === 0) throw new Error("No PEM certificate found");
    return blocks.map((b) => parseCertificate(b.der));
  } catch (error) {
    throw new CliError(`cannot parse ${path}: ${reason(error)}`);
  }
}

/** A multi-line description of every certificate in `path`, for `certs show`. */
export async function describeCertificateFile(path: string, now = new Date()): Promise<string> {
  const certs = await readCertificates(path);
  return certs.map((cert, i) => {
    const header = certs.length > 1 ? `Certificate ${i + 1} of ${certs.length}\n` : "";
    return header + describeCertificate(cert, now);
  }).join("\n");
}

/** One certificate as aligned `field: value` lines. */
export function describeCertificate(cert: Certificate, now = new Date()): string {
  const ext = cert.extensions;
  const rows: [string, string][] = [
    ["Subject", nameToString(cert.subject) || "(empty)"],
    ["Issuer", nameToString(cert.issuer) || "(empty)"],
    ["Serial", cert.serialHex],
    ["Valid from", cert.notBefore.toISOString()],
    ["Valid until", `${cert.notAfter.toISOString()}${status(cert, now)}`],
    ["Key", keyDescription(cert)],
    ["Signature", cert.signatureAlgorithm.name],
  ];
  if (ext.subjectAltName !== undefined) {
    rows.push(["Alt names", ext.subjectAltName.map(generalName).join(", ")]);
  }
  if (ext.basicConstraints?.ca) {
    const pathLen = ext.basicConstraints.pathLen;
    rows.push(["CA", pathLen === undefined ? "yes" : `yes, path length ${pathLen}`]);
  }
  if (ext.keyUsage !== undefined) {
    const names = Object.entries(KeyUsage).filter(([, bit]) => (ext.keyUsage! & (1 << bit)) !== 0)
      .map(([name]) => name);
    rows.push(["Key usage", names.join(", ")]);
  }
  if (ext.extKeyUsage !== undefined) {
    rows.push(["Ext. key usage", ext.extKeyUsage.map((oid) => EKU_NAMES[oid] ?? oid).join(", ")]);
  }
  rows.push(["SHA-256", hex(defaultProvider.hash("SHA-256", cert.der), ":")]);
  const width = Math.max(...rows.map(([k]) => k.length)) + 2;
  return rows.map(([k, v]) => `${`${k}:`.padEnd(width)}${v}`).join("\n") + "\n";
}

/** One line per certificate file in `dir`: file, subject, expiry and role. */
export async function listCertificates(dir: string, now = new Date()): Promise<string> {
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (entry.isFile && /\.(pem|crt)$/.test(entry.name)) names.push(entry.name);
    }
  } catch (error) {
    throw new CliError(`cannot list ${dir}: ${reason(error)}`);
  }
  names.sort();
  const rows: string[][] = [];
  for (const name of names) {
    let leaf: Certificate | undefined;
    try {
      leaf = (await readCertificates(join(dir, name)))[0];
    } catch {
      rows.push([name, "(not a certificate)", "", ""]);
      continue;
    }
    if (leaf === undefined) continue;
    rows.push([
      name,
      nameToString(leaf.subject),
      `until ${leaf.notAfter.toISOString().slice(0, 10)}${status(leaf, now)}`,
      role(leaf),
    ]);
  }
  if (rows.length === 0) return `no certificates in ${dir}\n`;
  const widths = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => i < 3 ? cell.padEnd(widths[i]!) : cell).join("  "))
    .map((line) => line.trimEnd()).join("\n") + "\n";
}

function role(cert: Certificate): string {
  if (cert.extensions.basicConstraints?.ca) return "CA";
  const eku = cert.extensions.extKeyUsage ?? [];
  const roles = [];
  if (eku.includes(Oid.serverAuth)) roles.push("server");
  if (eku.includes(Oid.clientAuth)) roles.push("client");
  return roles.join("+");
}

function status(cert: Certificate, now: Date): string {
  if (now < cert.notBefore) return " (not yet valid)";
  if (now > cert.notAfter) return " (EXPIRED)";
  return "";
}

function keyDescription(cert: Certificate): string {
  const key = cert.publicKeyInfo.key;
  if (key === undefined) return `unsupported (${cert.publicKeyInfo.algorithm})`;
  switch (key.kind) {
    case "ec":
      return `ECDSA ${key.curve}`;
    case "ed25519":
      return "Ed25519";
    case "rsa":
      return `RSA ${key.bits} bits`;
    default: {
      const unreachable: never = key;
      return String(unreachable);
    }
  }
}

function generalName(name: GeneralName): string {
  switch (name.kind) {
    case "rfc822Name":
      return `email:${name.value}`;
    case "dNSName":
      return `DNS:${name.value}`;
    case "uri":
      return `URI:${name.value}`;
    case "directoryName":
      return `DirName:${nameToString(name.value)}`;
    case "iPAddress":
      return `IP:${ipString(name.value)}`;
    case "other":
      return `other:${hex(name.value, "")}`;
    default: {
      const unreachable: never = name;
      return String(unreachable);
    }
  }
}

function ipString(bytes: Uint8Array): string {
  if (bytes.length === 4) return [...bytes].join(".");
  if (bytes.length !== 16) return hex(bytes, "");
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return groups.join(":").replace(/\b(?:0:){2,}0?\b/, ":").replace(/:{3,}/, "::");
}

function hex(bytes: Uint8Array, separator: string): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join(separator);
}

function reason(error: unknown): string {
  if (error instanceof Deno.errors.NotFound) return "no such file";
  if (error instanceof Error) return error.message.charAt(0).toLowerCase() + error.message.slice(1);
  return String(error);
}
