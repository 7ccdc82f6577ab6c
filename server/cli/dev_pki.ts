/**
 * A development PKI: one local CA, a server certificate for localhost, and client certificates
 * with an email SAN and the clientAuth EKU (RFC 5280, Section 4.2.1.12). `ensureDevPki` creates
 * what is missing on a first run and reuses what is there. Private keys are written 0600.
 */
import { join } from "node:path";
import { defaultProvider } from "../../protocol/crypto/mod.ts";
import type { CryptoProvider, PrivateKey, PrivateKeyKind } from "../../protocol/crypto/provider.ts";
import { parseCertificate } from "../../protocol/x509/certificate.ts";
import { encodePrivateKeyPem, parsePrivateKey } from "../../protocol/x509/keys.ts";
import { decodePem } from "../../protocol/x509/pem.ts";
import { encodePkcs12 } from "../../protocol/x509/pkcs12.ts";
import { issueCertificate, toPem } from "../../protocol/x509/writer.ts";
import { CliError } from "./args.ts";

/** The files of the development PKI inside a certificate directory. */
export interface DevPkiPaths {
  readonly caCertificate: string;
  readonly caKey: string;
  readonly serverCertificate: string;
  readonly serverKey: string;
}

export interface IssueOptions {
  /** Default P-256. */
  readonly keyType?: PrivateKeyKind;
  /** Validity in days from now. Defaults: CA 3650, leaf certificates 397. */
  readonly days?: number;
  /** Replace existing files. Default false. */
  readonly force?: boolean;
  /** For tests: the current time. */
  readonly now?: Date;
  readonly provider?: CryptoProvider;
  /**
   * The issuing CA when the caller already holds it (the first run, which just made it);
   * otherwise `ca.pem` and `ca.key` are read from the folder.
   */
  readonly ca?: DevCa;
}

export interface ServerCertificateOptions extends IssueOptions {
  /** dNSName SANs; the first is also the CN. Default `["localhost"]`. */
  readonly dnsNames?: readonly string[];
  /** iPAddress SANs. Default `["127.0.0.1", "::1"]`. */
  readonly ipAddresses?: readonly string[];
}

export interface ClientCertificateOptions extends IssueOptions {
  /** rfc822Name SAN. Default `NAME@localhost`. */
  readonly email?: string;
  /** When set, also write `NAME.p12` (PKCS#12, RFC 7292) protected by this password. */
  readonly p12Password?: string;
}

/** The files `issueClientCertificate` wrote. */
export interface ClientCertificateFiles {
  readonly certificate: string;
  readonly key: string;
  /** Null unless a PKCS#12 password was given. */
  readonly p12: string | null;
  readonly der: Uint8Array;
  readonly privateKey: PrivateKey;
}

/** A CA certificate and its private key. */
export interface DevCa {
  readonly der: Uint8Array;
  readonly key: PrivateKey;
}

/** What `ensureDevPki` did. */
export interface DevPkiResult extends DevPkiPaths {
  readonly createdCa: boolean;
  readonly createdServer: boolean;
  /** The CA it just created, kept in memory so that nothing has to read `ca.key` back. */
  readonly ca?: DevCa;
}

export const CA_SUBJECT = "CN=Postern Development CA,O=Postern";
const DAY_MS = 86_400_000;
/** Backdating absorbs small clock differences between machines. */
const BACKDATE_MS = 3_600_000;
const CLIENT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function devPkiPaths(certsDir: string): DevPkiPaths {
  return {
    caCertificate: join(certsDir, "ca.pem"),
    caKey: join(certsDir, "ca.key"),
    serverCertificate: join(certsDir, "server.pem"),
    serverKey: join(certsDir, "server.key"),
  };
}

/**
 * Makes sure `certsDir` holds a development CA and a server certificate signed by it, creating
 * whichever is missing. Existing files are reused untouched.
 */
export async function ensureDevPki(certsDir: string): Promise<DevPkiResult> {
  const paths = devPkiPaths(certsDir);
  let ca: DevCa | undefined;
  let createdServer = false;
  // `ca.key` may be unreadable on purpose (the start task denies reading it): it is then
  // present, not missing, and only a missing server certificate would need it.
  if (!(await present(paths.caCertificate)) || !(await present(paths.caKey))) {
    ca = await createCaInMemory(certsDir, { force: true });
  }
  if (!(await present(paths.serverCertificate)) || !(await present(paths.serverKey))) {
    await issueServerCertificate(certsDir, { force: true, ...(ca ? { ca } : {}) });
    createdServer = true;
  }
  return { ...paths, createdCa: ca !== undefined, createdServer, ...(ca ? { ca } : {}) };
}

/** Creates a self-signed CA (`ca.pem`, `ca.key`) in `certsDir`. */
export async function createCa(certsDir: string, options: IssueOptions = {}): Promise<DevPkiPaths> {
  await createCaInMemory(certsDir, options);
  return devPkiPaths(certsDir);
}

/** Creates the CA files and returns the CA too. */
async function createCaInMemory(certsDir: string, options: IssueOptions): Promise<DevCa> {
  const paths = devPkiPaths(certsDir);
  await refuseOverwrite(options, paths.caCertificate, paths.caKey);
  const provider = options.provider ?? defaultProvider;
  const key = provider.generatePrivateKey(options.keyType ?? "P-256");
  const der = issueCertificate({
    subject: CA_SUBJECT,
    key,
    ...validity(options, 3650),
    isCa: true,
    pathLen: 0,
  }, provider);
  await Deno.mkdir(certsDir, { recursive: true });
  await writePrivateKey(paths.caKey, key);
  await Deno.writeTextFile(paths.caCertificate, toPem(der));
  return { der, key };
}

/** Issues `server.pem` (leaf then CA) and `server.key` from the CA in `certsDir`. */
export async function issueServerCertificate(
  certsDir: string,
  options: ServerCertificateOptions = {},
): Promise<DevPkiPaths> {
  const paths = devPkiPaths(certsDir);
  await refuseOverwrite(options, paths.serverCertificate, paths.serverKey);
  const ca = options.ca ?? await loadCa(certsDir);
  const provider = options.provider ?? defaultProvider;
  const dnsNames = options.dnsNames ?? ["localhost"];
  const key = provider.generatePrivateKey(options.keyType ?? "P-256");
  const der = issueCertificate({
    subject: `CN=${dnsNames[0] ?? "localhost"}`,
    issuer: { certificate: ca.der, key: ca.key },
    key,
    ...validity(options, 397),
    extKeyUsage: ["serverAuth"],
    sanDns: dnsNames,
    sanIp: options.ipAddresses ?? ["127.0.0.1", "::1"],
  }, provider);
  await writePrivateKey(paths.serverKey, key);
  await Deno.writeTextFile(paths.serverCertificate, toPem(der) + toPem(ca.der));
  return paths;
}

/** Issues `NAME.pem` and `NAME.key` (0600) for a client, signed by the CA in `certsDir`. */
export async function issueClientCertificate(
  certsDir: string,
  name: string,
  options: ClientCertificateOptions = {},
): Promise<ClientCertificateFiles> {
  if (!CLIENT_NAME.test(name) || ["ca", "server"].includes(name)) {
    throw new CliError(
      `invalid client name "${name}" (letters, digits, ".", "_" and "-"; not ca or server)`,
    );
  }
  const certificate = join(certsDir, `${name}.pem`);
  const keyFile = join(certsDir, `${name}.key`);
  const p12 = options.p12Password === undefined ? null : join(certsDir, `${name}.p12`);
  await refuseOverwrite(options, certificate, keyFile, ...(p12 === null ? [] : [p12]));
  const ca = options.ca ?? await loadCa(certsDir);
  const provider = options.provider ?? defaultProvider;
  const key = provider.generatePrivateKey(options.keyType ?? "P-256");
  const der = issueCertificate({
    subject: `CN=${name}`,
    issuer: { certificate: ca.der, key: ca.key },
    key,
    ...validity(options, 397),
    extKeyUsage: ["clientAuth"],
    sanEmail: [options.email ?? `${name}@localhost`],
  }, provider);
  await writePrivateKey(keyFile, key);
  await Deno.writeTextFile(certificate, toPem(der));
  if (p12 !== null) {
    const bundle = encodePkcs12({
      certificates: [der, ca.der],
      key,
      password: options.p12Password!,
      friendlyName: name,
    }, provider);
    await Deno.writeFile(p12, bundle, { mode: 0o600 });
    await Deno.chmod(p12, 0o600);
  }
  return { certificate, key: keyFile, p12, der, privateKey: key };
}

/** Reads the CA certificate and key of `certsDir`. */
export async function loadCa(certsDir: string): Promise<DevCa> {
  const paths = devPkiPaths(certsDir);
  let certText: string;
  let keyText: string;
  try {
    certText = await Deno.readTextFile(paths.caCertificate);
    keyText = await Deno.readTextFile(paths.caKey);
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied) {
      throw new CliError(
        `cannot read ${paths.caKey}: this process may not read the CA key (the start task ` +
          `denies it); issue certificates with "deno task postern certs ..." instead`,
      );
    }
    throw new CliError(`no CA in ${certsDir} (run "postern certs init-ca" first)`);
  }
  try {
    const block = decodePem(certText).find((b) => b.label === "CERTIFICATE");
    if (block === undefined) throw new Error("No certificate");
    parseCertificate(block.der);
    return { der: block.der, key: parsePrivateKey(keyText) };
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new CliError(`cannot use the CA in ${certsDir}: ${reason}`);
  }
}

function validity(options: IssueOptions, defaultDays: number): { notBefore: Date; notAfter: Date } {
  const now = options.now ?? new Date();
  const days = options.days ?? defaultDays;
  return {
    notBefore: new Date(now.getTime() - BACKDATE_MS),
    notAfter: new Date(now.getTime() + days * DAY_MS),
  };
}

async function writePrivateKey(path: string, key: PrivateKey): Promise<void> {
  await Deno.writeTextFile(path, encodePrivateKeyPem(key), { mode: 0o600 });
  await Deno.chmod(path, 0o600);
}

async function refuseOverwrite(options: IssueOptions, ...paths: string[]): Promise<void> {
  if (options.force) return;
  for (const path of paths) {
    if (await exists(path)) {
      throw new CliError(`${path} already exists (use --force to replace it)`);
    }
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/** True unless the file is known to be missing (an unreadable file is present). */
async function present(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    if (error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied) {
      return true;
    }
    throw error;
  }
}
