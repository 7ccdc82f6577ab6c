/**
 * Helpers for the end-to-end directory tests and benchmark: the `directory:` YAML section for a
 * test slapd, reloading a running Postern with another directory section, LDIF change sets for
 * certificate values, a Python imaplib client driven by a JSON spec, and a small IMAP line
 * client over Deno.connectTls for sessions the test holds open.
 */
import { join } from "node:path";
import { defaultProvider } from "../../protocol/crypto/mod.ts";
import { encodePrivateKeyPem } from "../../protocol/x509/keys.ts";
import { issueCertificate, toPem } from "../../protocol/x509/writer.ts";
import { loadCa } from "../../server/cli/dev_pki.ts";
import { parseConfig } from "../../server/config/mod.ts";
import type { RunningPostern } from "./postern.ts";
import { connectTlsNoDelay } from "./imap_clients.ts";
import { ldifBase64, type Slapd } from "./slapd.ts";

/** How Postern reaches the test slapd. */
export interface DirectoryYamlOptions {
  readonly transport?: "ldap" | "ldaps" | "starttls";
  /** Path of the CA file for ldaps:// or StartTLS (defaults to slapd's own CA). */
  readonly caPath?: string;
  readonly certificateLookup?: string;
  readonly cacheTtl?: string;
  readonly recheckInterval?: string;
  readonly onError?: "deny" | "cached";
  readonly timeout?: string;
  /** `directory.sync`; left out (auto) unless given. */
  readonly sync?: "auto" | "content_sync" | "persistent_search" | "poll";
}

/**
 * Writes the service password (and slapd's CA, when it has one) next to `dir` and returns the
 * `directory:` YAML section pointing at `slapd`.
 */
export async function directoryYaml(
  slapd: Slapd,
  dir: string,
  options: DirectoryYamlOptions = {},
): Promise<string> {
  const passwordFile = join(dir, "ldap.pw");
  await Deno.writeTextFile(passwordFile, slapd.servicePassword + "\n", { mode: 0o600 });
  const transport = options.transport ?? "ldap";
  let caPath = options.caPath;
  if (caPath === undefined && transport !== "ldap" && slapd.caPem !== undefined) {
    caPath = join(dir, "ldap-ca.pem");
    await Deno.writeTextFile(caPath, slapd.caPem);
  }
  const url = transport === "ldaps" ? slapd.ldapsUrl : slapd.url;
  if (url === undefined) throw new Error("slapd was started without TLS");
  const lines = [
    "directory:",
    `  url: ${url}`,
    ...(transport === "starttls" ? ["  starttls: true"] : []),
    ...(caPath !== undefined && transport !== "ldap" ? [`  ca: ${caPath}`] : []),
    `  bind_dn: ${slapd.serviceDn}`,
    `  bind_password_file: ${passwordFile}`,
    `  base_dn: ${slapd.baseDn}`,
    `  certificate_lookup: ${
      JSON.stringify(options.certificateLookup ?? "(mail={cert.san.email})")
    }`,
    "  username_attribute: uid",
    `  cache_ttl: ${options.cacheTtl ?? "1s"}`,
    `  recheck_interval: ${options.recheckInterval ?? "1s"}`,
    `  on_error: ${options.onError ?? "deny"}`,
    `  timeout: ${options.timeout ?? "2s"}`,
    ...(options.sync !== undefined ? [`  sync: ${options.sync}`] : []),
  ];
  return lines.join("\n") + "\n";
}

/**
 * Reloads a running Postern with `section` (a `directory:` section, or "" for none) in place of
 * the directory section of its config file. The new directory starts with an empty cache.
 */
export async function reloadDirectory(postern: RunningPostern, section: string): Promise<void> {
  const path = join(postern.dir, "config.yaml");
  const text = await Deno.readTextFile(path);
  const at = text.search(/^directory:/m);
  const base = at === -1 ? text : text.slice(0, at);
  const next = base.replace(/\n*$/, "\n") + section;
  await Deno.writeTextFile(path, next);
  await postern.handle.reload(parseConfig(next, path));
}

/**
 * Issues a client certificate from the dev CA in `certsDir` with a subject CN and email SAN
 * given verbatim (no CLI-style name checks), written as `file.pem`/`file.key` there.
 */
export async function issueRawClientCertificate(
  certsDir: string,
  file: string,
  subjectCn: string,
  email: string,
  /** A whole subject in DER order, instead of `CN=subjectCn`. */
  subject?: readonly (readonly { type: string; value: string }[])[],
): Promise<{ certPath: string; keyPath: string; der: Uint8Array }> {
  const ca = await loadCa(certsDir);
  const key = defaultProvider.generatePrivateKey("P-256");
  const now = Date.now();
  const der = issueCertificate({
    subject: subject ?? [[{ type: "CN", value: subjectCn }]],
    issuer: { certificate: ca.der, key: ca.key },
    key,
    notBefore: new Date(now - 3_600_000),
    notAfter: new Date(now + 86_400_000),
    extKeyUsage: ["clientAuth"],
    sanEmail: [email],
  }, defaultProvider);
  const certPath = join(certsDir, `${file}.pem`);
  const keyPath = join(certsDir, `${file}.key`);
  await Deno.writeTextFile(certPath, toPem(der));
  await Deno.writeTextFile(keyPath, encodePrivateKeyPem(key), { mode: 0o600 });
  return { certPath, keyPath, der };
}

/** An LDIF change set that adds (or deletes) one `userCertificate;binary` value of an entry. */
export function certificateChange(
  dn: string,
  op: "add" | "delete",
  der: Uint8Array,
): string {
  return [
    `dn: ${dn}`,
    "changetype: modify",
    `${op}: userCertificate;binary`,
    `userCertificate;binary:: ${ldifBase64(der)}`,
    "",
  ].join("\n");
}

/** What the Python client is asked to do. */
export interface PythonImapSpec {
  readonly port: number;
  readonly ca: string;
  readonly cert?: string;
  readonly key?: string;
  /** `greet` only connects; `external` runs AUTHENTICATE EXTERNAL; `login` runs LOGIN. */
  readonly action: "greet" | "external" | "login";
  /** Connect in plaintext to a STARTTLS listener and upgrade with STARTTLS. */
  readonly starttls?: boolean;
  readonly user?: string;
  readonly password?: string;
  /**
   * Local address to connect from (e.g. `127.0.0.7`), so that password failures of one test
   * do not put another under the server's per-address back-off.
   */
  readonly source?: string;
}

/** What the Python client saw. */
export interface PythonImapResult {
  readonly welcome?: string;
  readonly state?: string;
  /** After STARTTLS, the capabilities once TLS is up; before, see `plainCapabilities`. */
  readonly capabilities?: string[];
  readonly plainCapabilities?: string[];
  /** `OK`, or `NO` with `authError`. */
  readonly auth?: string;
  readonly authError?: string;
  /** Lines of the LIST response, when authenticated. */
  readonly list?: string[];
  /** An `ssl.SSLError` (e.g. the alert the server sent). */
  readonly sslError?: string;
  /** Any other exception. */
  readonly error?: string;
}

const PYTHON_IMAP = `
import imaplib, json, socket, ssl, sys
from concurrent.futures import ThreadPoolExecutor

def tcp(spec):
    source = (spec["source"], 0) if spec.get("source") else None
    return socket.create_connection(("127.0.0.1", spec["port"]), 10, source_address=source)

class Plain(imaplib.IMAP4):
    def __init__(self, spec):
        self.spec = spec
        super().__init__("127.0.0.1", spec["port"], timeout=10)
    def _create_socket(self, timeout):
        return tcp(self.spec)

class Implicit(imaplib.IMAP4_SSL):
    def __init__(self, spec, ctx):
        self.spec = spec
        super().__init__("127.0.0.1", spec["port"], ssl_context=ctx, timeout=10)
    def _create_socket(self, timeout):
        return self.ssl_context.wrap_socket(tcp(self.spec), server_hostname=self.host)

def run(spec):
    out = {}
    try:
        ctx = ssl.create_default_context(cafile=spec["ca"])
        if spec.get("cert"):
            ctx.load_cert_chain(spec["cert"], spec["key"])
        if spec.get("starttls"):
            m = Plain(spec)
            out["welcome"] = m.welcome.decode()
            out["plainCapabilities"] = list(m.capabilities)
            m.starttls(ssl_context=ctx)
        else:
            m = Implicit(spec, ctx)
            out["welcome"] = m.welcome.decode()
        out["capabilities"] = list(m.capabilities)
        if spec["action"] == "external":
            try:
                out["auth"] = m.authenticate("EXTERNAL", lambda _: b"")[0]
            except imaplib.IMAP4.error as e:
                out["auth"], out["authError"] = "NO", str(e)
        elif spec["action"] == "login":
            try:
                out["auth"] = m.login(spec["user"], spec["password"])[0]
            except imaplib.IMAP4.error as e:
                out["auth"], out["authError"] = "NO", str(e)
        out["state"] = m.state
        if m.state in ("AUTH", "SELECTED"):
            out["list"] = [d.decode() for d in m.list()[1] if d]
        m.logout()
    except ssl.SSLError as e:
        out["sslError"] = str(e)
    except Exception as e:
        out["error"] = type(e).__name__ + ": " + str(e)
    return out

results = []
for group in json.loads(sys.argv[1]):
    with ThreadPoolExecutor(max_workers=len(group)) as pool:
        results.append(list(pool.map(run, group)))
print(json.dumps(results))
`;

/** Runs Python's imaplib against Postern as `spec` says. */
export async function pythonImap(spec: PythonImapSpec): Promise<PythonImapResult> {
  const [result] = await pythonImapAll([spec]);
  return result!;
}

/**
 * Runs several imaplib clients at once in one Python process (a thread each), which saves the
 * interpreter's start-up per client; results are in the order of `specs`.
 */
export async function pythonImapAll(
  specs: readonly PythonImapSpec[],
): Promise<PythonImapResult[]> {
  const [results] = await pythonImapGroups([specs]);
  return results!;
}

/**
 * Runs groups of imaplib clients one group after another in one Python process; the clients of
 * a group run at once. Results are grouped and ordered as `groups`.
 */
export async function pythonImapGroups(
  groups: readonly (readonly PythonImapSpec[])[],
): Promise<PythonImapResult[][]> {
  const out = await new Deno.Command("python3", {
    args: ["-c", PYTHON_IMAP, JSON.stringify(groups)],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(30_000),
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  if (!out.success || text === "") {
    throw new Error(`python3 failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  const results = JSON.parse(text) as PythonImapResult[][];
  if (results.length !== groups.length || results.some((r, i) => r.length !== groups[i]!.length)) {
    throw new Error("python3 answered the wrong count");
  }
  return results;
}

/** Runs a command to completion within `timeoutMs`, returning its exit code and output. */
export async function runTool(
  cmd: string,
  args: string[],
  timeoutMs = 15_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(cmd, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(timeoutMs),
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** A line-oriented IMAP client over Deno.connectTls (rustls), for sessions a test holds open. */
export class ImapLines {
  readonly #conn: Deno.TlsConn;
  readonly #decoder = new TextDecoder();
  readonly #chunk = new Uint8Array(16 * 1024);
  #pending: Promise<number | null> | null = null;
  #buffer = "";

  private constructor(conn: Deno.TlsConn) {
    this.#conn = conn;
  }

  static async connect(
    port: number,
    caPem: string,
    client?: { readonly certPem: string; readonly keyPem: string },
  ): Promise<ImapLines> {
    const conn = await connectTlsNoDelay(port, caPem, client);
    await conn.handshake();
    return new ImapLines(conn);
  }

  /** The next line without its CRLF, or null at end of stream or after `timeoutMs`. */
  async readLine(timeoutMs = 5000): Promise<string | null> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const end = this.#buffer.indexOf("\r\n");
      if (end !== -1) {
        const line = this.#buffer.slice(0, end);
        this.#buffer = this.#buffer.slice(end + 2);
        return line;
      }
      const left = deadline - performance.now();
      if (left <= 0) return null;
      // A read that lost the race stays pending and is awaited by the next call.
      this.#pending ??= this.#conn.read(this.#chunk).catch(() => null);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const n = await Promise.race([
        this.#pending,
        new Promise<"timeout">((r) => timer = setTimeout(() => r("timeout"), left)),
      ]);
      clearTimeout(timer);
      if (n === "timeout") return null;
      this.#pending = null;
      if (n === null) return null;
      this.#buffer += this.#decoder.decode(this.#chunk.subarray(0, n), { stream: true });
    }
  }

  /** Sends `tag command` and returns every line up to the tagged answer. */
  async command(tag: string, command: string, timeoutMs = 5000): Promise<string[]> {
    await this.#conn.write(new TextEncoder().encode(`${tag} ${command}\r\n`));
    const lines: string[] = [];
    for (;;) {
      const line = await this.readLine(timeoutMs);
      if (line === null) throw new Error(`No answer to ${tag} ${command}: ${lines.join(" | ")}`);
      lines.push(line);
      if (line.startsWith(`${tag} `)) return lines;
    }
  }

  /** Sends raw bytes. */
  async write(text: string): Promise<void> {
    await this.#conn.write(new TextEncoder().encode(text));
  }

  close(): void {
    try {
      this.#conn.close();
    } catch {
      // Already closed by the server.
    }
  }
}
