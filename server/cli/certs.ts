/** `postern certs list` and `postern certs show`: human-readable certificate summaries. */
import { dirname, join, resolve } from "node:path";
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
import { CliError, type OptionSpec, type OptionValues, UsageError } from "./args.ts";
import { type CliIo, type Command, resolveConfig } from "./command.ts";
import { createCa, issueClientCertificate, issueServerCertificate } from "./dev_pki.ts";
import { readPassword } from "./password_prompt.ts";

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

const FORCE = {
  type: "boolean",
  description: "replace existing files",
} as const satisfies OptionSpec;
const DIR = {
  type: "string",
  value: "DIR",
  description: "certificate directory (default: the directory of tls.certificate)",
} as const satisfies OptionSpec;
const DAYS = {
  type: "string",
  value: "N",
  description: "validity in days",
} as const satisfies OptionSpec;
const KEY_TYPE = {
  type: "string",
  value: "TYPE",
  description: "key type: P-256 (default), P-384, ed25519, rsa2048, rsa3072 or rsa4096",
} as const satisfies OptionSpec;

const KEY_TYPES = ["P-256", "P-384", "ed25519", "rsa2048", "rsa3072", "rsa4096"] as const;

/** `postern certs …`: the development PKI. */
export const certsCommands: readonly Command[] = [
  {
    name: "certs init-ca",
    uses: ["write"],
    summary: "Create a development CA: ca.pem and ca.key (mode 0600).",
    positionals: [],
    options: { dir: DIR, days: DAYS, "key-type": KEY_TYPE, force: FORCE },
    async run({ values, io }) {
      const dir = await certsDir(io, values);
      const paths = await createCa(dir, issueOptions(values));
      io.out(`wrote ${paths.caCertificate} and ${paths.caKey}\n`);
      return 0;
    },
  },
  {
    name: "certs issue-server",
    uses: ["write"],
    summary: "Issue server.pem (leaf then CA) and server.key from the CA.",
    positionals: [],
    options: {
      dir: DIR,
      dns: {
        type: "string",
        value: "NAMES",
        description: "comma-separated DNS names (default localhost)",
      },
      ip: {
        type: "string",
        value: "ADDRESSES",
        description: "comma-separated IP addresses (default 127.0.0.1,::1)",
      },
      days: DAYS,
      "key-type": KEY_TYPE,
      force: FORCE,
    },
    async run({ values, io }) {
      const dir = await certsDir(io, values);
      const dnsNames = list(values.dns);
      const ipAddresses = list(values.ip);
      const paths = await issueServerCertificate(dir, {
        ...issueOptions(values),
        ...(dnsNames === undefined ? {} : { dnsNames }),
        ...(ipAddresses === undefined ? {} : { ipAddresses }),
      });
      io.out(`wrote ${paths.serverCertificate} and ${paths.serverKey}\n`);
      return 0;
    },
  },
  {
    name: "certs issue-client",
    uses: ["write"],
    summary: "Issue NAME.pem and NAME.key: email SAN NAME@localhost, clientAuth EKU.",
    positionals: [{ name: "NAME" }],
    options: {
      dir: DIR,
      email: {
        type: "string",
        value: "ADDRESS",
        description: "email SAN (default NAME@localhost)",
      },
      p12: {
        type: "boolean",
        description: "also write NAME.p12 (PKCS#12) for mail clients; asks for its password",
      },
      days: DAYS,
      "key-type": KEY_TYPE,
      force: FORCE,
    },
    async run({ values, positionals, io }) {
      const name = positionals[0]!;
      const dir = await certsDir(io, values);
      const email = typeof values.email === "string" ? { email: values.email } : {};
      const p12Password = values.p12 === true
        ? { p12Password: await readPassword(`Export password for ${name}.p12: `, true, io.stdin) }
        : {};
      const issued = await issueClientCertificate(dir, name, {
        ...issueOptions(values),
        ...email,
        ...p12Password,
      });
      const p12 = issued.p12 === null ? "" : ` and ${issued.p12}`;
      io.out(`wrote ${issued.certificate}, ${issued.key}${p12}\n`);
      return 0;
    },
  },
  {
    name: "certs list",
    uses: [],
    summary: "List the certificates in the certificate directory.",
    positionals: [],
    options: { dir: DIR },
    async run({ values, io }) {
      io.out(await listCertificates(await certsDir(io, values)));
      return 0;
    },
  },
  {
    name: "certs show",
    uses: [],
    summary: "Show the certificates in a PEM or DER file.",
    positionals: [{ name: "FILE" }],
    options: {},
    async run({ positionals, io }) {
      io.out(await describeCertificateFile(resolve(io.cwd, positionals[0]!)));
      return 0;
    },
  },
];

async function certsDir(io: CliIo, values: OptionValues): Promise<string> {
  if (typeof values.dir === "string") return resolve(io.cwd, values.dir);
  const config = await resolveConfig(io, values, { checkFiles: false });
  return dirname(config.tls.certificate);
}

function issueOptions(values: OptionValues): {
  force: boolean;
  days?: number;
  keyType?: (typeof KEY_TYPES)[number];
} {
  const result: { force: boolean; days?: number; keyType?: (typeof KEY_TYPES)[number] } = {
    force: values.force === true,
  };
  if (typeof values.days === "string") {
    const days = Number(values.days);
    if (!/^\d+$/.test(values.days) || days < 1 || days > 36500) {
      throw new UsageError(`--days must be a whole number from 1 to 36500, got "${values.days}"`);
    }
    result.days = days;
  }
  if (typeof values["key-type"] === "string") {
    const keyType = KEY_TYPES.find((k) =>
      k.toLowerCase() === (values["key-type"] as string).toLowerCase()
    );
    if (keyType === undefined) {
      throw new UsageError(`unknown key type "${values["key-type"]}" (${KEY_TYPES.join(", ")})`);
    }
    result.keyType = keyType;
  }
  return result;
}

function list(value: string | boolean | undefined): string[] | undefined {
  if (typeof value !== "string") return undefined;
  return value.split(",").map((s) => s.trim()).filter((s) => s !== "");
}
