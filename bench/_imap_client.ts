/**
 * A small, fast IMAP client for the benchmarks: pipelined commands (RFC 9051, Section 5.5),
 * APPEND with non-synchronizing literals (LITERAL+, RFC 7888), and server literals read as
 * part of their response line. Untagged responses are attributed to the oldest command still
 * waiting, which is exact when commands are issued one at a time and good enough for counting
 * under pipelining.
 */

import { concatBytes } from "../protocol/bytes.ts";

/** How to reach the server. */
export interface ImapConnectOptions {
  readonly port: number;
  readonly hostname?: string;
  /** Implicit TLS (RFC 8314) trusting this CA; plaintext when absent. */
  readonly caPem?: string;
  /** The name the server certificate must carry (default "localhost"). */
  readonly serverName?: string;
  /** A client certificate (PEM chain and key) for mutual TLS. */
  readonly clientCertificate?: { readonly cert: string; readonly key: string };
}

/** A tagged completion and the untagged responses received while it was the oldest command. */
export interface ImapReply {
  readonly status: "OK" | "NO" | "BAD";
  readonly text: string;
  readonly untagged: string[];
}

/** A server answer the benchmark did not expect. */
export class ImapClientError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ImapClientError";
  }
}

interface Pending {
  readonly tag: string;
  readonly untagged: string[];
  readonly collect: boolean;
  resolve(reply: ImapReply): void;
  reject(error: Error): void;
}

const CR = 0x0d;
const LF = 0x0a;
const encoder = new TextEncoder();
const latin1 = new TextDecoder("latin1");
/** Largest server literal this client buffers (the benchmark fetches no bodies). */
const MAX_LITERAL = 64 * 1024 * 1024;

/** One IMAP connection with a background reader. */
export class ImapClient {
  readonly #conn: Deno.Conn;
  readonly #pending = new Map<string, Pending>();
  #nextTag = 1;
  #buf = new Uint8Array(256 * 1024);
  #start = 0;
  #end = 0;
  #greeting: ((line: string) => void) | null = null;
  #closed: Error | null = null;
  #writing: Promise<void> = Promise.resolve();
  readonly #reading: Promise<void>;

  private constructor(conn: Deno.Conn) {
    this.#conn = conn;
    this.#reading = this.#readLoop();
  }

  /** Connects and waits for the greeting. */
  static async connect(options: ImapConnectOptions): Promise<ImapClient> {
    const hostname = options.hostname ?? "127.0.0.1";
    const conn = options.caPem === undefined
      ? await Deno.connect({ hostname, port: options.port })
      : await Deno.connectTls({
        hostname,
        port: options.port,
        caCerts: [options.caPem],
        serverName: options.serverName ?? "localhost",
        ...options.clientCertificate,
      } as Deno.ConnectTlsOptions);
    const client = new ImapClient(conn);
    const greeting = await new Promise<string>((resolve, reject) => {
      client.#greeting = resolve;
      client.#reading.then(() => reject(client.#closed ?? new ImapClientError("Closed")));
    });
    if (!greeting.startsWith("* OK")) {
      client.close();
      throw new ImapClientError(`Unexpected greeting: ${greeting.slice(0, 80)}`);
    }
    return client;
  }

  /** Connects, logs in and fails unless the login succeeded. */
  static async login(
    options: ImapConnectOptions,
    user: string,
    password: string,
  ): Promise<ImapClient> {
    const client = await ImapClient.connect(options);
    await client.ok(`LOGIN ${quote(user)} ${quote(password)}`);
    return client;
  }

  /** Sends one command (without tag and CRLF) and waits for its completion. */
  command(text: string, collect = true): Promise<ImapReply> {
    return this.pipeline([text], collect).then((r) => r[0]!);
  }

  /** Like `command`, but rejects unless the status is OK. */
  async ok(text: string, collect = true): Promise<ImapReply> {
    const reply = await this.command(text, collect);
    if (reply.status !== "OK") {
      throw new ImapClientError(
        `${text.slice(0, 40)} failed: ${reply.status} ${reply.text.slice(0, 120)}`,
      );
    }
    return reply;
  }

  /**
   * Sends several commands in one write and waits for all of them. Each item is the command
   * text or, for APPEND, its already-encoded bytes after the tag (see `appendBytes`).
   */
  pipeline(items: readonly (string | Uint8Array)[], collect = true): Promise<ImapReply[]> {
    if (this.#closed !== null) return Promise.reject(this.#closed);
    const parts: Uint8Array[] = [];
    const waits: Promise<ImapReply>[] = [];
    for (const item of items) {
      const tag = `b${this.#nextTag++}`;
      waits.push(
        new Promise<ImapReply>((resolve, reject) => {
          this.#pending.set(tag, { tag, untagged: [], collect, resolve, reject });
        }),
      );
      if (typeof item === "string") parts.push(encoder.encode(`${tag} ${item}\r\n`));
      else parts.push(encoder.encode(`${tag} `), item);
    }
    this.#write(concat(parts));
    return Promise.all(waits);
  }

  /** Closes the connection at once (no LOGOUT). */
  close(): void {
    try {
      this.#conn.close();
    } catch {
      // Already closed.
    }
  }

  /** Sends LOGOUT, waits for the server to answer, and closes. */
  async logout(): Promise<void> {
    try {
      await this.command("LOGOUT");
    } catch {
      // The server may close first.
    }
    this.close();
    await this.#reading;
  }

  #write(bytes: Uint8Array): void {
    this.#writing = this.#writing.then(async () => {
      let off = 0;
      while (off < bytes.length) off += await this.#conn.write(bytes.subarray(off));
    }).catch((e) => {
      this.#fail(e instanceof Error ? e : new ImapClientError(String(e)));
    });
  }

  #fail(error: Error): void {
    if (this.#closed === null) this.#closed = error;
    for (const p of this.#pending.values()) p.reject(this.#closed);
    this.#pending.clear();
  }

  async #readLoop(): Promise<void> {
    try {
      for (;;) {
        if (this.#end === this.#buf.length) this.#compact();
        const n = await this.#conn.read(this.#buf.subarray(this.#end));
        if (n === null) break;
        this.#end += n;
        this.#drain();
      }
      this.#fail(new ImapClientError("Connection closed by the server"));
    } catch (e) {
      this.#fail(e instanceof Error ? e : new ImapClientError(String(e)));
    }
  }

  /** Makes room at the end of the buffer, growing it when it is mostly in use. */
  #compact(): void {
    const used = this.#end - this.#start;
    if (used > this.#buf.length / 2) {
      const bigger = new Uint8Array(this.#buf.length * 2);
      bigger.set(this.#buf.subarray(this.#start, this.#end));
      this.#buf = bigger;
    } else {
      this.#buf.copyWithin(0, this.#start, this.#end);
    }
    this.#start = 0;
    this.#end = used;
  }

  /**
   * Consumes every complete response line (with its literals) in the buffer. The complete
   * responses are decoded in one call: windows-1252 ("latin1") maps each byte to one UTF-16 code
   * unit, so string offsets are byte offsets. (Decoding each line on its own cost an op per line,
   * 9-10 ms of this client's CPU for the 10,000 lines of a FETCH 1:*, more than either server
   * spent on the command.)
   */
  #drain(): void {
    const from = this.#start;
    const ends: number[] = [];
    for (;;) {
      const end = this.#responseEnd();
      if (end < 0) break;
      ends.push(end);
      this.#start = end;
    }
    if (ends.length === 0) return;
    const text = latin1.decode(this.#buf.subarray(from, this.#start));
    let at = 0;
    for (const end of ends) {
      this.#dispatch(text.slice(at, end - from - 2));
      at = end - from;
    }
  }

  /** The offset after the CRLF that ends the response at `#start`, or -1 when incomplete. */
  #responseEnd(): number {
    const buf = this.#buf;
    let i = this.#start;
    for (;;) {
      const lf = buf.indexOf(LF, i);
      if (lf < 0 || lf >= this.#end) return -1;
      const size = literalSize(buf, lf);
      if (size === null) return lf + 1;
      if (size > MAX_LITERAL) throw new ImapClientError("Server literal too large");
      i = lf + 1 + size;
      if (i > this.#end) return -1;
    }
  }

  #dispatch(line: string): void {
    const first = this.#pending.values().next();
    if (line[0] === "*" || line[0] === "+") {
      if (this.#greeting !== null) {
        const g = this.#greeting;
        this.#greeting = null;
        g(line);
        return;
      }
      if (!first.done && first.value.collect) first.value.untagged.push(line);
      return;
    }
    const sp = line.indexOf(" ");
    const tag = sp < 0 ? line : line.slice(0, sp);
    const p = this.#pending.get(tag);
    if (p === undefined) return;
    this.#pending.delete(tag);
    const rest = sp < 0 ? "" : line.slice(sp + 1);
    const sp2 = rest.indexOf(" ");
    const status = sp2 < 0 ? rest : rest.slice(0, sp2);
    const text = sp2 < 0 ? "" : rest.slice(sp2 + 1);
    if (status !== "OK" && status !== "NO" && status !== "BAD") {
      p.reject(new ImapClientError(`Bad completion: ${rest.slice(0, 80)}`));
      return;
    }
    p.resolve({ status, text, untagged: p.untagged });
  }
}

/** The octet count of a `{n}` or `~{n}` literal announced just before the LF at `lf`. */
function literalSize(buf: Uint8Array, lf: number): number | null {
  let i = lf - 1;
  if (buf[i] === CR) i--;
  if (buf[i] !== 0x7d) return null;
  i--;
  let n = 0;
  let scale = 1;
  const stop = Math.max(0, i - 12);
  for (; i >= stop; i--) {
    const c = buf[i]!;
    if (c === 0x7b) return scale === 1 ? null : n;
    if (c === 0x2b && scale === 1) continue;
    if (c < 0x30 || c > 0x39) return null;
    n += (c - 0x30) * scale;
    scale *= 10;
  }
  return null;
}

/** The bytes after the tag of `APPEND mailbox (flags) {n+}` with the message (RFC 7888). */
export function appendBytes(
  mailbox: string,
  message: Uint8Array,
  flags: readonly string[] = [],
): Uint8Array {
  const flagList = flags.length > 0 ? ` (${flags.join(" ")})` : "";
  const head = encoder.encode(`APPEND ${quote(mailbox)}${flagList} {${message.length}+}\r\n`);
  const out = new Uint8Array(head.length + message.length + 2);
  out.set(head);
  out.set(message, head.length);
  out[out.length - 2] = CR;
  out[out.length - 1] = LF;
  return out;
}

/** An IMAP quoted string (RFC 9051, Section 4.3). */
export function quote(s: string): string {
  return `"${s.replace(/[\\"]/g, (c) => "\\" + c)}"`;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  return parts.length === 1 ? parts[0]! : concatBytes(parts);
}
