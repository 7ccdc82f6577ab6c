/**
 * A throwaway OpenLDAP `slapd` for tests: a temporary slapd.conf (mdb backend, core, cosine and
 * inetorgperson schemas), data loaded offline with `slapadd -q`, and the daemon run in the
 * foreground on free 127.0.0.1 ports. With `tls: true` it also listens on ldaps:// and accepts
 * StartTLS, with a server certificate from a throwaway CA made by the `openssl` CLI.
 *
 * ```ts
 * const ldap = await startSlapd({ users: [{ uid: "alice", mail: "alice@example.org" }] });
 * try { ... } finally { await ldap.stop(); }
 * ```
 */
import { run as runCommand } from "./command.ts";
import { issueWithOpenssl } from "./openssl_pki.ts";
import { freePort } from "./ports.ts";

/** An inetOrgPerson entry under `ou=people`. */
export interface SlapdUser {
  readonly uid: string;
  /** Defaults to the uid. */
  readonly cn?: string;
  /** Defaults to the uid. */
  readonly sn?: string;
  readonly mail?: string | readonly string[];
  /** Stored as given (plain text), for simple binds. */
  readonly password?: string;
  /** DER certificates, stored as `userCertificate;binary` values. */
  readonly certificates?: readonly Uint8Array[];
  /** Further attributes (e.g. `seeAlso`, `description`), each with its values. */
  readonly attributes?: Readonly<Record<string, readonly string[]>>;
}

export interface SlapdOptions {
  readonly users: readonly SlapdUser[];
  /** Also listen on ldaps:// and enable StartTLS with a throwaway CA. */
  readonly tls?: boolean;
  /**
   * Load the syncprov overlay, so that LDAP Content Synchronization (RFC 4533) is offered.
   * Default true.
   */
  readonly syncprov?: boolean;
  /** Write slapd's access log (`loglevel stats`) to `logPath`, to count operations. */
  readonly accessLog?: boolean;
}

export interface Slapd {
  /** `ldap://127.0.0.1:PORT` */
  readonly url: string;
  /** `ldaps://127.0.0.1:PORT2`, when started with `tls: true`. */
  readonly ldapsUrl?: string;
  readonly port: number;
  /** `dc=example,dc=org` */
  readonly suffix: string;
  /** `ou=people,dc=example,dc=org`: where users live, and the base DN to search. */
  readonly baseDn: string;
  /** The rootdn and its password. */
  readonly adminDn: string;
  readonly adminPassword: string;
  /** A read-only service account (`cn=postern,...`) that may search and read certificates. */
  readonly serviceDn: string;
  readonly servicePassword: string;
  /** PEM of the CA that issued slapd's server certificate, when started with `tls: true`. */
  readonly caPem?: string;
  /** DN of a user entry. */
  userDn(uid: string): string;
  /** Kills slapd and removes its files. */
  stop(): Promise<void>;
  /** Kills slapd (keeping its data) without starting it again. */
  kill(): Promise<void>;
  /** Kills slapd if it runs and starts it again on the same ports with the same data. */
  restart(): Promise<void>;
  /** Applies an LDIF change set with `ldapmodify` as the rootdn. */
  modify(ldif: string): Promise<void>;
  /** slapd's stderr log when started with `accessLog: true`. */
  readonly logPath?: string;
}

const SUFFIX = "dc=example,dc=org";
const BASE_DN = `ou=people,${SUFFIX}`;
const ADMIN_DN = `cn=admin,${SUFFIX}`;
const SERVICE_DN = `cn=postern,${SUFFIX}`;
const SCHEMAS = ["core", "cosine", "inetorgperson"];

/** Starts a slapd loaded with `users`; call `stop()` in a `finally`. */
export async function startSlapd(options: SlapdOptions): Promise<Slapd> {
  const dir = await Deno.makeTempDir({ prefix: "postern-slapd-" });
  const adminPassword = randomToken();
  const servicePassword = randomToken();
  let child: Deno.ChildProcess | undefined;
  const kill = async (): Promise<void> => {
    const c = child;
    if (c === undefined) return;
    child = undefined;
    try {
      c.kill("SIGTERM");
    } catch {
      // Already gone.
    }
    await c.status;
  };
  try {
    let caPem: string | undefined;
    if (options.tls) caPem = await makeServerCertificate(dir);
    await Deno.mkdir(`${dir}/db`);
    await Deno.writeTextFile(
      `${dir}/slapd.conf`,
      slapdConf(dir, adminPassword, options.tls === true, options.syncprov ?? true),
    );
    await Deno.writeTextFile(
      `${dir}/data.ldif`,
      initialLdif(options.users, servicePassword),
    );
    await run("slapadd", ["-q", "-f", `${dir}/slapd.conf`, "-l", `${dir}/data.ldif`]);

    let port = 0;
    let tlsPort: number | undefined;
    const start = async (): Promise<void> => {
      const urls = [`ldap://127.0.0.1:${port}/`];
      if (tlsPort !== undefined) urls.push(`ldaps://127.0.0.1:${tlsPort}/`);
      const logFile = options.accessLog
        ? await Deno.open(`${dir}/slapd.log`, { append: true, create: true })
        : null;
      child = new Deno.Command(sbin("slapd"), {
        args: [
          "-d",
          options.accessLog ? "256" : "0",
          "-f",
          `${dir}/slapd.conf`,
          "-h",
          urls.join(" "),
        ],
        stdin: "null",
        stdout: "null",
        stderr: logFile === null ? "null" : "piped",
      }).spawn();
      if (logFile !== null) void child.stderr.pipeTo(logFile.writable).catch(() => {});
      try {
        await waitForPort(port, child);
      } catch (e) {
        await kill();
        throw e;
      }
    };
    // A free port can be taken by someone else before slapd binds it: try fresh ones.
    for (let attempt = 1;; attempt++) {
      port = freePort();
      tlsPort = options.tls ? freePort() : undefined;
      try {
        await start();
        break;
      } catch (e) {
        if (attempt >= 3) throw e;
      }
    }

    const slapd: Slapd = {
      url: `ldap://127.0.0.1:${port}`,
      ...(tlsPort !== undefined ? { ldapsUrl: `ldaps://127.0.0.1:${tlsPort}` } : {}),
      port,
      suffix: SUFFIX,
      baseDn: BASE_DN,
      adminDn: ADMIN_DN,
      adminPassword,
      serviceDn: SERVICE_DN,
      servicePassword,
      ...(caPem !== undefined ? { caPem } : {}),
      userDn: (uid) => `uid=${uid},${BASE_DN}`,
      ...(options.accessLog ? { logPath: `${dir}/slapd.log` } : {}),
      stop: async () => {
        await kill();
        await Deno.remove(dir, { recursive: true }).catch(() => {});
      },
      kill,
      restart: async () => {
        await kill();
        await start();
      },
      modify: async (ldif) => {
        await run(
          "ldapmodify",
          ["-x", "-H", `ldap://127.0.0.1:${port}/`, "-D", ADMIN_DN, "-w", adminPassword],
          ldif,
        );
      },
    };
    return slapd;
  } catch (e) {
    await kill();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw e;
  }
}

/** Base64 of DER bytes, for `userCertificate;binary::` lines in LDIF. */
export function ldifBase64(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

/** An LDIF value line, base64 when the value is not a safe string (RFC 2849). */
export function ldifLine(attribute: string, value: string | Uint8Array): string {
  if (typeof value !== "string") return `${attribute}:: ${ldifBase64(value)}`;
  // deno-lint-ignore no-control-regex
  const safe = /^[\x01-\x09\x0b\x0c\x0e-\x1f\x21-\x39\x3b\x3d-\x7f][\x01-\x09\x0b\x0c\x0e-\x7f]*$/
    .test(value) && !value.endsWith(" ");
  return safe || value === ""
    ? `${attribute}: ${value}`
    : `${attribute}:: ${ldifBase64(new TextEncoder().encode(value))}`;
}

/** The LDIF of one user entry, as `ldapadd` or `slapadd` take it. */
export function userLdif(user: SlapdUser): string {
  const lines = [
    ldifLine("dn", `uid=${user.uid},${BASE_DN}`),
    "objectClass: inetOrgPerson",
    ldifLine("uid", user.uid),
    ldifLine("cn", user.cn ?? user.uid),
    ldifLine("sn", user.sn ?? user.uid),
  ];
  const mails = user.mail === undefined
    ? []
    : typeof user.mail === "string"
    ? [user.mail]
    : user.mail;
  for (const m of mails) lines.push(ldifLine("mail", m));
  if (user.password !== undefined) lines.push(ldifLine("userPassword", user.password));
  for (const der of user.certificates ?? []) lines.push(ldifLine("userCertificate;binary", der));
  for (const [name, values] of Object.entries(user.attributes ?? {})) {
    for (const v of values) lines.push(ldifLine(name, v));
  }
  return lines.join("\n") + "\n";
}

function initialLdif(users: readonly SlapdUser[], servicePassword: string): string {
  const parts = [
    `dn: ${SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n`,
    `dn: ${BASE_DN}\nobjectClass: organizationalUnit\nou: people\n`,
    `dn: ${SERVICE_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n` +
    `cn: postern\n${ldifLine("userPassword", servicePassword)}\n`,
    ...users.map(userLdif),
  ];
  return parts.join("\n");
}

function slapdConf(dir: string, adminPassword: string, tls: boolean, syncprov: boolean): string {
  const lines = [
    ...SCHEMAS.map((s) => `include /etc/ldap/schema/${s}.schema`),
    `pidfile ${dir}/slapd.pid`,
    `argsfile ${dir}/slapd.args`,
    "modulepath /usr/lib/ldap",
    "moduleload back_mdb",
    ...(syncprov ? ["moduleload syncprov"] : []),
  ];
  if (tls) {
    lines.push(
      `TLSCACertificateFile ${dir}/ca.pem`,
      `TLSCertificateFile ${dir}/server.pem`,
      `TLSCertificateKeyFile ${dir}/server.key`,
    );
  }
  lines.push(
    "database mdb",
    "maxsize 16777216",
    `suffix "${SUFFIX}"`,
    `rootdn "${ADMIN_DN}"`,
    `rootpw ${adminPassword}`,
    `directory ${dir}/db`,
    "index objectClass eq",
    "index uid,mail,cn eq",
    // Passwords are only usable for binds; the service account may read everything else.
    "access to attrs=userPassword by anonymous auth by * none",
    "access to * by users read by * none",
    // The service account's content-sync refresh lists every entry with a certificate.
    `limits dn.exact="${SERVICE_DN}" size=unlimited time=unlimited`,
    ...(syncprov ? ["index entryCSN,entryUUID eq", "overlay syncprov"] : []),
  );
  return lines.join("\n") + "\n";
}

/** A throwaway CA and a server certificate for localhost and 127.0.0.1; returns the CA PEM. */
async function makeServerCertificate(dir: string): Promise<string> {
  const ca = await issueWithOpenssl(
    dir,
    "ca",
    "ec256",
    "/CN=Postern test LDAP CA",
    "basicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\n",
    null,
  );
  await issueWithOpenssl(
    dir,
    "server",
    "ec256",
    "/CN=localhost",
    "subjectAltName = IP:127.0.0.1,DNS:localhost\nextendedKeyUsage = serverAuth\n",
    ca,
  );
  return ca.certPem;
}

function sbin(name: string): string {
  for (const d of ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]) {
    try {
      Deno.statSync(`${d}/${name}`);
      return `${d}/${name}`;
    } catch {
      // Try the next directory.
    }
  }
  return name;
}

async function run(cmd: string, args: string[], stdin?: string): Promise<void> {
  const result = await runCommand(sbin(cmd), args, stdin === undefined ? {} : { stdin });
  if (result.code !== 0) {
    throw new Error(`${cmd} failed with code ${result.code}: ${result.stderr.trim()}`);
  }
}

async function waitForPort(port: number, child: Deno.ChildProcess): Promise<void> {
  let exited = false;
  child.status.then(() => exited = true);
  for (let i = 0; i < 200; i++) {
    if (exited) throw new Error("slapd exited during startup");
    try {
      const c = await Deno.connect({ hostname: "127.0.0.1", port });
      c.close();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  throw new Error(`slapd did not listen on port ${port} within 5 s`);
}

function randomToken(): string {
  const b = crypto.getRandomValues(new Uint8Array(12));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}
