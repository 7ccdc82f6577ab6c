/**
 * Helpers for driving real IMAP clients against a running Postern: a bounded subprocess runner
 * (Python imaplib, curl, mbsync, fetchmail), config-file writers for mbsync and fetchmail, and
 * a minimal raw IMAP client over `Deno.connect`/`Deno.connectTls` that understands literals
 * (RFC 9051, Section 4.3) so tests can send exact bytes and read exact answers.
 */
import { join } from "node:path";

const encoder = new TextEncoder();

export { run, type RunOptions, type RunResult } from "./command.ts";
import { run, type RunResult } from "./command.ts";
export { freePort } from "./ports.ts";

/** Runs a Python 3 script given as text, with `args` as `sys.argv[1:]`. */
export function runPython(
  script: string,
  args: readonly string[],
  timeoutMs = 30_000,
): Promise<RunResult> {
  return run("python3", ["-c", script, ...args], { timeoutMs });
}

/** Formats a failed run for an assertion message. */
export function describeRun(result: RunResult): string {
  return `exit ${result.code}${result.timedOut ? " (timed out)" : ""}\n--- stdout\n${
    result.stdout.slice(-4000)
  }\n--- stderr\n${result.stderr.slice(-4000)}`;
}

/** A loopback port that was free a moment ago. */
export interface MbsyncOptions {
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly caPath: string;
  /** Directory that holds the Maildir tree (with a trailing slash added here). */
  readonly maildir: string;
}

/** Writes a throwaway .mbsyncrc for a full two-way sync over implicit TLS; returns its path. */
export async function writeMbsyncConfig(dir: string, o: MbsyncOptions): Promise<string> {
  const text = [
    "IMAPAccount postern",
    // The dev certificate names "localhost" only, and mbsync checks DNS names.
    "Host localhost",
    `Port ${o.port}`,
    `User ${o.user}`,
    `Pass "${o.password.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`,
    // isync 1.4 spells it SSLType; 1.5 renamed it TLSType and still accepts the old name.
    "SSLType IMAPS",
    `CertificateFile ${o.caPath}`,
    "",
    "IMAPStore postern-remote",
    "Account postern",
    "",
    "MaildirStore postern-local",
    `Path ${o.maildir.endsWith("/") ? o.maildir : `${o.maildir}/`}`,
    `Inbox ${join(o.maildir, "INBOX")}`,
    "SubFolders Verbatim",
    "",
    "Channel postern",
    "Far :postern-remote:",
    "Near :postern-local:",
    "Patterns *",
    "Create Both",
    "Expunge Both",
    "Sync All",
    "SyncState *",
    "",
  ].join("\n");
  const path = join(dir, "mbsyncrc");
  await Deno.writeTextFile(path, text, { mode: 0o600 });
  return path;
}

export interface FetchmailOptions {
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly caPath: string;
  /** Shell command fetchmail pipes each message into. */
  readonly mda: string;
  readonly folder?: string;
}

/** Writes a 0600 fetchmailrc that polls over implicit TLS with certificate checks. */
export async function writeFetchmailrc(dir: string, o: FetchmailOptions): Promise<string> {
  const text = [
    `poll 127.0.0.1 protocol IMAP port ${o.port} timeout 15`,
    `  user "${o.user}" password "${o.password}"`,
    // fetchmail matches only DNS names, and the dev certificate names "localhost".
    `  ssl sslcertck sslcertfile "${o.caPath}" sslcommonname localhost`,
    ...(o.folder ? [`  folder "${o.folder}"`] : []),
    "  keep fetchall",
    `  mda "${o.mda}"`,
    "",
  ].join("\n");
  const path = join(dir, "fetchmailrc");
  await Deno.writeTextFile(path, text, { mode: 0o600 });
  await Deno.chmod(path, 0o600);
  return path;
}

/** One server response: its text with each literal inlined, and the literals' raw bytes. */
export interface ImapResponse {
  /** The response as latin1 text, literals included, without the final CRLF. */
  readonly text: string;
  readonly literals: readonly Uint8Array[];
}

/** The tagged completion of a command and the untagged responses that came before it. */
export interface ImapResult {
  readonly untagged: readonly ImapResponse[];
  readonly tagged: string;
  readonly status: "OK" | "NO" | "BAD" | "UNKNOWN";
}

/**
 * Reads raw bytes from `conn` until `done(text)` holds for all read so far (as latin1 text),
 * the stream ends, or `ms` pass; returns all read as latin1 text.
 */
export async function readRaw(
  conn: Deno.Conn,
  ms: number,
  done: (text: string) => boolean = () => false,
): Promise<string> {
  const deadline = Date.now() + ms;
  const buf = new Uint8Array(4096);
  let text = "";
  while (!done(text) && Date.now() < deadline) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const n = await Promise.race([
      conn.read(buf).catch(() => null),
      new Promise<"t">((r) => timer = setTimeout(() => r("t"), deadline - Date.now())),
    ]);
    clearTimeout(timer);
    if (n === "t" || n === null) break;
    text += String.fromCharCode(...buf.subarray(0, n));
  }
  return text;
}

/** Largest response this client buffers: a bound against a runaway server. */
const MAX_BUFFER = 64 * 1024 * 1024;

/**
 * Deno's TLS client (rustls) over a TCP connection with TCP_NODELAY, as interactive clients set
 * it. Deno's TLS client writes its second flight in more than one write; with Nagle the last
 * part waits for the server's delayed ACK of the first, about 40 ms on Linux, in every
 * connection (45-50 ms to the greeting here; 2.5-6 ms with TCP_NODELAY). `Deno.startTls` takes
 * no client certificate, so a client with one connects through `Deno.connectTls`, Nagle and all.
 */
export async function connectTlsNoDelay(
  port: number,
  caPem: string,
  client?: { readonly certPem: string; readonly keyPem: string },
): Promise<Deno.TlsConn> {
  if (client) {
    return await Deno.connectTls({
      hostname: "127.0.0.1",
      port,
      caCerts: [caPem],
      cert: client.certPem,
      key: client.keyPem,
    });
  }
  const tcp = await Deno.connect({ hostname: "127.0.0.1", port });
  tcp.setNoDelay(true);
  return await Deno.startTls(tcp, { hostname: "127.0.0.1", caCerts: [caPem] });
}

/** What `RawImap` reads and writes: a `Deno.Conn`, or our own TLS client (`EngineConn`). */
export type ByteConn = Pick<Deno.Conn, "read" | "write" | "close">;

/**
 * A deliberately small IMAP client that writes exact bytes and parses responses with literals.
 * Every read has a deadline so a silent server fails the test instead of hanging it.
 */
export class RawImap {
  readonly #conn: ByteConn;
  #store = new Uint8Array(64 * 1024);
  #start = 0;
  #end = 0;
  #received = 0;
  #closed = false;
  #tag = 0;

  #pumping: Promise<void> | null = null;

  /** With `paused`, nothing is read from the socket until `resume()` (a client that never reads). */
  constructor(conn: ByteConn, options: { paused?: boolean } = {}) {
    this.#conn = conn;
    if (!options.paused) this.resume();
  }

  /** Starts reading the socket in the background. */
  resume(): void {
    this.#pumping ??= this.#pump();
  }

  /** Connects over implicit TLS, trusting `caPem`, with a client certificate when given. */
  static async tls(
    port: number,
    caPem: string,
    options: { paused?: boolean; cert?: string; key?: string } = {},
  ): Promise<RawImap> {
    const client = options.cert && options.key
      ? { certPem: options.cert, keyPem: options.key }
      : undefined;
    const conn = await connectTlsNoDelay(port, caPem, client);
    return new RawImap(conn, options.paused === undefined ? {} : { paused: options.paused });
  }

  /** Connects over implicit TLS and logs in with LOGIN, which must succeed. */
  static async login(
    port: number,
    caPem: string,
    user: string,
    password: string,
  ): Promise<RawImap> {
    const imap = await RawImap.tls(port, caPem);
    await imap.greeting();
    const r = await imap.command(`LOGIN ${user} "${password}"`, undefined, 15_000);
    if (r.status !== "OK") {
      await imap.close();
      throw new Error(`LOGIN ${user} failed: ${r.tagged}`);
    }
    return imap;
  }

  /** Connects in plaintext (a STARTTLS listener). */
  static async plain(port: number): Promise<RawImap> {
    return new RawImap(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  get conn(): ByteConn {
    return this.#conn;
  }

  /** True once the server closed its side (a read returned end of stream). */
  get closed(): boolean {
    return this.#closed;
  }

  async write(data: string | Uint8Array): Promise<void> {
    const bytes = typeof data === "string" ? encoder.encode(data) : data;
    let off = 0;
    while (off < bytes.length) off += await this.#conn.write(bytes.subarray(off));
  }

  /** Waits for more bytes from the pump; false on end of stream or deadline. */
  async #fill(deadline: number): Promise<boolean> {
    const before = this.#received;
    while (this.#received === before) {
      if (this.#closed) return false;
      const left = deadline - Date.now();
      if (left <= 0) return false;
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
    }
    return true;
  }

  /** Reads the socket in the background so that a timed-out wait loses no bytes. */
  async #pump(): Promise<void> {
    const chunk = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await this.#conn.read(chunk);
        if (n === null) break;
        this.#append(chunk.subarray(0, n));
        this.#wake();
      }
    } catch {
      // Reset or closed locally: the end of the stream either way.
    }
    this.#closed = true;
    this.#wake();
  }

  #wake: () => void = () => {};

  #append(bytes: Uint8Array): void {
    const live = this.#end - this.#start;
    if (live + bytes.length > MAX_BUFFER) throw new Error("Response too large");
    if (this.#end + bytes.length > this.#store.length) {
      let size = this.#store.length;
      while (size < live + bytes.length) size *= 2;
      const next = size === this.#store.length ? this.#store : new Uint8Array(size);
      next.set(this.#store.subarray(this.#start, this.#end));
      this.#store = next;
      this.#start = 0;
      this.#end = live;
    }
    this.#store.set(bytes, this.#end);
    this.#end += bytes.length;
    this.#received += bytes.length;
  }

  /** Reads one whole response (with literals) or null on end of stream or timeout. */
  async readResponse(timeoutMs = 5000): Promise<ImapResponse | null> {
    const deadline = Date.now() + timeoutMs;
    let text = "";
    const literals: Uint8Array[] = [];
    let pos = 0;
    for (;;) {
      const buffer = this.#store.subarray(this.#start, this.#end);
      const lf = buffer.indexOf(0x0a, pos);
      if (lf < 0) {
        if (!(await this.#fill(deadline))) return null;
        continue;
      }
      const line = latin1(buffer.subarray(pos, lf + 1));
      const m = /\{(\d+)\}\r\n$/.exec(line);
      if (!m) {
        text += line.replace(/\r?\n$/, "");
        this.#start += lf + 1;
        return { text, literals };
      }
      const size = Number(m[1]);
      while (this.#end - this.#start < lf + 1 + size) {
        if (!(await this.#fill(deadline))) return null;
      }
      const literal = this.#store.slice(this.#start + lf + 1, this.#start + lf + 1 + size);
      literals.push(literal);
      text += line + latin1(literal);
      pos = lf + 1 + size;
    }
  }

  /** Reads responses until one matches, returning all read; null if none matched in time. */
  async readUntil(
    match: (r: ImapResponse) => boolean,
    timeoutMs = 5000,
  ): Promise<ImapResponse[] | null> {
    const deadline = Date.now() + timeoutMs;
    const seen: ImapResponse[] = [];
    for (;;) {
      const r = await this.readResponse(deadline - Date.now());
      if (r === null) return null;
      seen.push(r);
      if (match(r)) return seen;
    }
  }

  /** A fresh command tag. */
  nextTag(): string {
    return `t${++this.#tag}`;
  }

  /**
   * Sends `TAG command` (with `literal` appended as a non-synchronizing literal when given) and
   * collects responses up to the tagged one.
   */
  async command(command: string, literal?: Uint8Array, timeoutMs = 10_000): Promise<ImapResult> {
    const tag = this.nextTag();
    if (literal) {
      const head = encoder.encode(`${tag} ${command} {${literal.length}+}\r\n`);
      const all = new Uint8Array(head.length + literal.length + 2);
      all.set(head);
      all.set(literal, head.length);
      all.set([0x0d, 0x0a], head.length + literal.length);
      await this.write(all);
    } else {
      await this.write(`${tag} ${command}\r\n`);
    }
    const responses = await this.readUntil((r) => r.text.startsWith(`${tag} `), timeoutMs);
    if (responses === null) throw new Error(`No tagged answer to ${tag} ${command.slice(0, 40)}`);
    const tagged = responses.pop()!.text;
    const word = tagged.slice(tag.length + 1).split(" ")[0];
    const status = word === "OK" || word === "NO" || word === "BAD" ? word : "UNKNOWN";
    return { untagged: responses, tagged, status };
  }

  /** Reads the greeting. */
  async greeting(timeoutMs = 5000): Promise<string> {
    const r = await this.readResponse(timeoutMs);
    if (r === null) throw new Error("No greeting");
    return r.text;
  }

  /** Closes the socket and waits for the background reader to stop. */
  async close(): Promise<void> {
    try {
      this.#conn.close();
    } catch {
      // Already closed.
    }
    await this.#pumping;
  }
}

function latin1(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    s += String.fromCharCode(...bytes.subarray(i, i + 8192));
  }
  return s;
}

/** Builds a small RFC 5322 message with a unique Message-ID. */
export function makeMessage(id: string, subject: string, body = "Hello.\r\n"): Uint8Array {
  return encoder.encode(
    [
      "From: Bob <bob@example.org>",
      "To: Alice <alice@example.org>",
      `Subject: ${subject}`,
      `Message-ID: <${id}@postern.test>`,
      "Date: Fri, 27 Nov 2026 12:00:00 +0000",
      "MIME-Version: 1.0",
      "Content-Type: text/plain; charset=utf-8",
      "",
      body,
    ].join("\r\n"),
  );
}
