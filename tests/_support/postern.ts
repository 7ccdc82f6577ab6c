/**
 * Starts a whole Postern server in-process on free loopback ports, from a YAML config written to
 * a temporary directory, with the development PKI and local users made for the test.
 */
import { join } from "node:path";
import { hashPassword } from "../../mailstore/password.ts";
import { openSqliteMailStore } from "../../mailstore/sqlite/mod.ts";
import { parseConfig } from "../../server/config.ts";
import { ensureDevPki, issueClientCertificate } from "../../server/cli/dev_pki.ts";
import { serve, type ServeHandle } from "../../server/serve.ts";
import type { PrivateKeyKind } from "../../protocol/crypto/provider.ts";

export interface PosternOptions {
  readonly users?: readonly { readonly name: string; readonly password?: string }[];
  readonly clientAuth?: "none" | "optional" | "required";
  /** Extra top-level YAML (e.g. a `directory:` section), appended verbatim. */
  readonly extraYaml?: string;
  /** YAML lines inside `imap:`. */
  readonly imapYaml?: string;
  /** YAML lines inside `tls:` beyond the defaults (e.g. `  crl: [...]`). */
  readonly tlsYaml?: string;
  readonly limitsYaml?: string;
}

export interface RunningPostern {
  readonly dir: string;
  readonly certsDir: string;
  readonly caPath: string;
  readonly caPem: string;
  readonly implicitPort: number;
  readonly starttlsPort: number;
  readonly handle: ServeHandle;
  /** Issues a client certificate `NAME.pem`/`NAME.key` (CN=NAME, email NAME@localhost). */
  clientCertificate(
    name: string,
    options?: { keyType?: PrivateKeyKind; email?: string },
  ): Promise<{ certPath: string; keyPath: string; der: Uint8Array }>;
  stop(): Promise<void>;
}

/** Low scrypt cost keeps tests fast; the verifier reads the cost from the hash itself. */
const TEST_COST = { ln: 10, r: 8, p: 1 } as const;

export async function startPostern(options: PosternOptions = {}): Promise<RunningPostern> {
  const dir = await Deno.makeTempDir({ prefix: "postern-e2e-" });
  const certsDir = join(dir, "certs");
  await Deno.mkdir(certsDir);
  const pki = await ensureDevPki(certsDir);
  const dataDir = join(dir, "data");
  await Deno.mkdir(dataDir);
  const store = await openSqliteMailStore(join(dataDir, "postern.db"));
  for (const user of options.users ?? []) {
    await store.createAccount(
      user.name,
      user.password === undefined ? null : hashPassword(user.password, TEST_COST),
    );
  }
  await store.close();
  const yaml = [
    `data_dir: ${dataDir}`,
    "listen:",
    "  - address: 127.0.0.1:0",
    "    tls: implicit",
    "  - address: 127.0.0.1:0",
    "    tls: starttls",
    "tls:",
    `  certificate: ${pki.serverCertificate}`,
    `  private_key: ${pki.serverKey}`,
    `  client_auth: ${options.clientAuth ?? "optional"}`,
    `  client_ca: [${pki.caCertificate}]`,
    "  handshake_timeout: 5s",
    ...(options.tlsYaml ? [options.tlsYaml] : []),
    ...(options.imapYaml ? ["imap:", options.imapYaml] : []),
    ...(options.limitsYaml ? ["limits:", options.limitsYaml] : []),
    "log:",
    "  level: error",
    options.extraYaml ?? "",
  ].join("\n");
  const configPath = join(dir, "config.yaml");
  await Deno.writeTextFile(configPath, yaml);
  const config = parseConfig(yaml, configPath);
  const handle = await serve(config, { shutdownGraceMs: 1000 });
  const [implicit, starttls] = handle.addresses;
  return {
    dir,
    certsDir,
    caPath: pki.caCertificate,
    caPem: await Deno.readTextFile(pki.caCertificate),
    implicitPort: implicit!.port,
    starttlsPort: starttls!.port,
    handle,
    async clientCertificate(name, certOptions = {}) {
      const files = await issueClientCertificate(certsDir, name, {
        ...(certOptions.keyType ? { keyType: certOptions.keyType } : {}),
        ...(certOptions.email ? { email: certOptions.email } : {}),
        force: true,
      });
      return { certPath: files.certificate, keyPath: files.key, der: files.der };
    },
    async stop() {
      await handle.shutdown();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
