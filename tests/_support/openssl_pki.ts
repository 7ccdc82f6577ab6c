/**
 * Throwaway certificates made with the `openssl` CLI, for interoperability tests: a CA, and
 * server and client leaves of each key type. Independent of our own X.509 writer on purpose.
 */

import { run } from "./command.ts";

export type KeyType = "ec256" | "ec384" | "ed25519" | "rsa2048";

export interface Issued {
  readonly certPath: string;
  readonly keyPath: string;
  readonly certPem: string;
  readonly keyPem: string;
}

export interface OpensslPki {
  readonly dir: string;
  readonly ca: Issued;
  server(type: KeyType): Promise<Issued>;
  client(type: KeyType, name: string): Promise<Issued>;
  remove(): Promise<void>;
}

const KEY_ARGS: Record<KeyType, string[]> = {
  ec256: ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
  ec384: ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
  ed25519: ["-algorithm", "ED25519"],
  rsa2048: ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
};

const decoder = new TextDecoder();

const REQ = "[req]\ndistinguished_name = dn\n[dn]\n";

/** Runs openssl with `args`; returns its stdout, or throws with its stderr on failure. */
export async function openssl(args: string[], stdin?: string): Promise<string> {
  const result = await run("openssl", args, stdin === undefined ? {} : { stdin });
  if (result.code !== 0) throw new Error(`openssl ${args.join(" ")} failed: ${result.stderr}`);
  return result.stdout;
}

/**
 * Runs openssl with `args` in `cwd` synchronously (for fixtures made at module load); returns
 * its stdout, or throws with its stderr on failure.
 */
export function opensslSync(args: string[], cwd: string): string {
  const result = opensslTry(args, cwd);
  if (!result.ok) throw new Error(`openssl ${args.join(" ")} failed: ${result.stderr}`);
  return result.stdout;
}

/** Like `opensslSync`, but reports failure instead of throwing. */
export function opensslTry(
  args: string[],
  cwd: string,
): { ok: boolean; stdout: string; stderr: string; output: string } {
  const out = new Deno.Command("openssl", {
    args,
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  })
    .outputSync();
  const stdout = decoder.decode(out.stdout);
  const stderr = decoder.decode(out.stderr);
  return { ok: out.success, stdout, stderr, output: stdout + stderr };
}

/**
 * Issues `name.pem`/`name.key` in `dir` with the openssl CLI: self-signed when `ca` is null.
 * `extensions` is the body of the `[ext]` section (e.g. `basicConstraints = CA:FALSE\n…`).
 */
export async function issueWithOpenssl(
  dir: string,
  name: string,
  type: KeyType,
  subject: string,
  extensions: string,
  ca: Issued | null,
): Promise<Issued> {
  const keyPath = `${dir}/${name}.key`;
  const certPath = `${dir}/${name}.pem`;
  const extPath = `${dir}/${name}.ext`;
  await openssl(["genpkey", ...KEY_ARGS[type], "-out", keyPath]);
  await Deno.writeTextFile(extPath, `${REQ}[ext]\n${extensions}`);
  if (ca === null) {
    await openssl([
      "req",
      "-new",
      "-x509",
      "-key",
      keyPath,
      "-out",
      certPath,
      "-days",
      "30",
      "-subj",
      subject,
      "-extensions",
      "ext",
      "-config",
      extPath,
    ]);
  } else {
    const csrPath = `${dir}/${name}.csr`;
    await openssl([
      "req",
      "-new",
      "-key",
      keyPath,
      "-out",
      csrPath,
      "-subj",
      subject,
      "-config",
      extPath,
    ]);
    await openssl([
      "x509",
      "-req",
      "-in",
      csrPath,
      "-CA",
      ca.certPath,
      "-CAkey",
      ca.keyPath,
      "-CAcreateserial",
      "-out",
      certPath,
      "-days",
      "30",
      "-extfile",
      extPath,
      "-extensions",
      "ext",
    ]);
  }
  return {
    certPath,
    keyPath,
    certPem: await Deno.readTextFile(certPath),
    keyPem: await Deno.readTextFile(keyPath),
  };
}

/** Makes a P-256 CA in a temporary directory; leaves are issued on demand and cached. */
export async function makeOpensslPki(): Promise<OpensslPki> {
  const dir = await Deno.makeTempDir({ prefix: "postern-pki-" });
  const ca = await issueWithOpenssl(
    dir,
    "ca",
    "ec256",
    "/CN=Postern Test CA",
    `basicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\nsubjectKeyIdentifier = hash\n`,
    null,
  );
  const cache = new Map<string, Promise<Issued>>();
  const cached = (key: string, make: () => Promise<Issued>) => {
    let p = cache.get(key);
    if (!p) cache.set(key, p = make());
    return p;
  };
  return {
    dir,
    ca,
    server: (type) =>
      cached(`server-${type}`, () =>
        issueWithOpenssl(
          dir,
          `server-${type}`,
          type,
          "/CN=localhost",
          `basicConstraints = CA:FALSE\nkeyUsage = critical,digitalSignature\nextendedKeyUsage = serverAuth\nsubjectAltName = DNS:localhost,IP:127.0.0.1\n`,
          ca,
        )),
    client: (type, name) =>
      cached(`client-${type}-${name}`, () =>
        issueWithOpenssl(
          dir,
          `client-${name}-${type}`,
          type,
          `/CN=${name}/emailAddress=${name}@example.org`,
          `basicConstraints = CA:FALSE\nkeyUsage = critical,digitalSignature\nextendedKeyUsage = clientAuth\nsubjectAltName = email:${name}@example.org\n`,
          ca,
        )),
    remove: () => Deno.remove(dir, { recursive: true }),
  };
}

/** How long a CRL made by `opensslCrl` stays current. */
export interface CrlValidity {
  readonly days?: number;
  readonly hours?: number;
  readonly seconds?: number;
}

/**
 * Issues a CRL from `ca` with `openssl ca -gencrl`, listing the certificates in `revokedPaths`
 * (revoked with `openssl ca -revoke` in a fresh database). Returns the PEM text.
 */
export async function opensslCrl(
  ca: Issued,
  revokedPaths: readonly string[],
  validity: CrlValidity = { days: 1 },
): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "postern-crl-" });
  try {
    await Deno.writeTextFile(`${dir}/index.txt`, "");
    await Deno.writeTextFile(`${dir}/crlnumber`, "01\n");
    const conf = `${dir}/ca.cnf`;
    await Deno.writeTextFile(
      conf,
      [
        "[ca]",
        "default_ca = CA_default",
        "[CA_default]",
        `database = ${dir}/index.txt`,
        `crlnumber = ${dir}/crlnumber`,
        `certificate = ${ca.certPath}`,
        `private_key = ${ca.keyPath}`,
        "default_md = sha256",
        "default_crl_days = 1",
        "",
      ].join("\n"),
    );
    for (const path of revokedPaths) {
      await openssl([
        "ca",
        "-config",
        conf,
        "-batch",
        "-revoke",
        path,
        "-crl_reason",
        "keyCompromise",
      ]);
    }
    await openssl([
      "ca",
      "-config",
      conf,
      "-batch",
      "-gencrl",
      "-out",
      `${dir}/crl.pem`,
      // openssl refuses a zero for any of these: pass only the ones given.
      ...(validity.days ? ["-crldays", String(validity.days)] : []),
      ...(validity.hours ? ["-crlhours", String(validity.hours)] : []),
      ...(validity.seconds ? ["-crlsec", String(validity.seconds)] : []),
    ]);
    return await Deno.readTextFile(`${dir}/crl.pem`);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
