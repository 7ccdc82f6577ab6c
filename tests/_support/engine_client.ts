/**
 * Our own TLS 1.3 client engine driven over a real TCP socket, for tests that must send what
 * off-the-shelf clients never send: a hostile client certificate chain, a flood of KeyUpdates.
 * The server's chain is not validated (these tests are about what the client does to the
 * server); its leaf key still checks the server's CertificateVerify.
 */
import { defaultProvider } from "../../protocol/crypto/mod.ts";
import type { PrivateKey } from "../../protocol/crypto/provider.ts";
import { type ClientConfig, TlsClientConnection, type TlsEvent } from "../../protocol/tls/mod.ts";
import type { ClientTicket } from "../../protocol/tls/client.ts";
import { parseCertificate } from "../../protocol/x509/certificate.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export interface EngineClientOptions {
  /** A client certificate chain (leaf first) and a key, sent when the server asks. */
  readonly certificate?: { readonly chain: readonly Uint8Array[]; readonly privateKey: PrivateKey };
  readonly engine?: Partial<ClientConfig>;
}

/** A TLS connection made of `TlsClientConnection` and `Deno.connect`. */
export class EngineClient {
  readonly #conn: Deno.Conn;
  readonly #tls: TlsClientConnection;
  readonly #events: TlsEvent[] = [];
  #text = "";
  #eof = false;
  #pump: Promise<void>;
  #wake: () => void = () => {};

  private constructor(conn: Deno.Conn, tls: TlsClientConnection) {
    this.#conn = conn;
    this.#tls = tls;
    this.#pump = this.#run();
  }

  static async connect(port: number, options: EngineClientOptions = {}): Promise<EngineClient> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const tls = new TlsClientConnection({
      provider: defaultProvider,
      verifyServer: (chain) => parseCertificate(chain[0]!).publicKeyInfo.key!,
      serverName: "localhost",
      ...(options.certificate ? { certificate: options.certificate } : {}),
      ...options.engine,
    });
    const client = new EngineClient(conn, tls);
    await client.#flush();
    return client;
  }

  /** Every event the engine reported so far. */
  get events(): readonly TlsEvent[] {
    return this.#events;
  }

  /** The alert that ended the connection, if one did (ours or the server's). */
  get fatal(): { alert: string; sentByUs: boolean } | null {
    const e = this.#events.find((x) => x.kind === "fatal");
    return e?.kind === "fatal" ? { alert: e.alert, sentByUs: e.sentByUs } : null;
  }

  /** Application data received so far. */
  get text(): string {
    return this.#text;
  }

  get established(): boolean {
    return this.#tls.handshakeComplete;
  }

  /** True once the server closed the TCP connection. */
  get ended(): boolean {
    return this.#eof;
  }

  /** Waits until `done()` holds, the connection ends, or `timeoutMs` passes; returns done(). */
  async waitFor(done: () => boolean, timeoutMs = 10_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!done() && !this.#eof && Date.now() < deadline) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        timer = setTimeout(resolve, Math.max(1, deadline - Date.now()));
      });
      clearTimeout(timer);
    }
    return done();
  }

  /** Waits for a line of application data matching `pattern`; returns the text so far. */
  async waitForText(pattern: RegExp, timeoutMs = 10_000): Promise<string> {
    await this.waitFor(() => pattern.test(this.#text), timeoutMs);
    return this.#text;
  }

  /** Sends application data (after the handshake). */
  async send(text: string | Uint8Array): Promise<void> {
    this.#tls.send(typeof text === "string" ? encoder.encode(text) : text);
    await this.#flush();
  }

  /** Queues `count` KeyUpdates with update_requested, then writes them in one go. */
  async keyUpdates(count: number, thenText?: string): Promise<void> {
    for (let i = 0; i < count; i++) this.#tls.requestKeyUpdate();
    if (thenText !== undefined) this.#tls.send(encoder.encode(thenText));
    await this.#flush();
  }

  close(): void {
    try {
      this.#conn.close();
    } catch {
      // Already closed.
    }
  }

  /** Closes and waits for the read loop to stop. */
  async dispose(): Promise<void> {
    this.close();
    await this.#pump;
  }

  async #flush(): Promise<void> {
    const out = this.#tls.takeOutgoing();
    let at = 0;
    try {
      while (at < out.length) at += await this.#conn.write(out.subarray(at));
    } catch {
      // The server closed first; its alert is read by the pump.
    }
  }

  async #run(): Promise<void> {
    const buf = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await this.#conn.read(buf);
        if (n === null) break;
        this.#tls.receive(buf.subarray(0, n));
        this.#events.push(...this.#tls.takeEvents());
        this.#text += decoder.decode(this.#tls.takePlaintext());
        await this.#flush();
        this.#wake();
      }
    } catch {
      // Reset or closed locally.
    }
    this.#eof = true;
    this.#wake();
  }
}

/**
 * Our TLS 1.3 client engine as a byte stream (read, write, close) for `RawImap`, with
 * TCP_NODELAY: a client that keeps the server's tickets and resumes with one (`resumeWith`),
 * which Deno's own TLS client cannot. The server's chain is not validated; its leaf key still
 * checks the server's CertificateVerify.
 */
export class EngineConn {
  readonly #conn: Deno.Conn;
  readonly #tls: TlsClientConnection;
  readonly #buffer = new Uint8Array(64 * 1024);
  #plain: Uint8Array = new Uint8Array(0);

  private constructor(conn: Deno.Conn, tls: TlsClientConnection) {
    this.#conn = conn;
    this.#tls = tls;
  }

  /** Connects and completes the handshake, offering `resumeWith` when given. */
  static async connect(
    port: number,
    options: { readonly resumeWith?: ClientTicket } = {},
  ): Promise<EngineConn> {
    const now = () => performance.timeOrigin + performance.now();
    const start = now();
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const tcpAt = now();
    conn.setNoDelay(true);
    const tls = new TlsClientConnection({
      provider: defaultProvider,
      verifyServer: (chain) => parseCertificate(chain[0]!).publicKeyInfo.key!,
      serverName: "localhost",
      ...(options.resumeWith ? { resumeWith: options.resumeWith } : {}),
    });
    const c = new EngineConn(conn, tls);
    try {
      await c.#flush();
      const helloAt = now();
      let firstReadAt = 0;
      while (!tls.handshakeComplete) {
        if (!(await c.#pull())) throw new Error("Server closed during the handshake");
        firstReadAt ||= now();
      }
      c.timeline = {
        port: (conn.localAddr as Deno.NetAddr).port,
        start,
        tcpAt,
        helloAt,
        firstReadAt,
        doneAt: now(),
      };
    } catch (e) {
      c.close();
      throw e;
    }
    return c;
  }

  /**
   * When the connection's handshake went where, in epoch ms, for the hostile bench: the connect
   * started, TCP was established, the ClientHello was written, the server's first bytes were
   * read and processed, the handshake was complete.
   */
  timeline: Record<string, number> = {};

  /** The tickets the server has sent so far, oldest first. */
  get tickets(): readonly ClientTicket[] {
    return this.#tls.tickets;
  }

  /** The handshake resumed a ticket. */
  get resumed(): boolean {
    return this.#tls.info().resumed === true;
  }

  async read(into: Uint8Array): Promise<number | null> {
    while (this.#plain.length === 0) {
      if (!(await this.#pull())) return null;
    }
    const n = Math.min(into.length, this.#plain.length);
    into.set(this.#plain.subarray(0, n));
    this.#plain = this.#plain.subarray(n);
    return n;
  }

  async write(data: Uint8Array): Promise<number> {
    this.#tls.send(data);
    await this.#flush();
    return data.length;
  }

  close(): void {
    try {
      this.#conn.close();
    } catch {
      // Already closed.
    }
  }

  /** Reads once from the socket into the engine; false at the end of the stream. */
  async #pull(): Promise<boolean> {
    const n = await this.#conn.read(this.#buffer);
    if (n === null) return false;
    this.#tls.receive(this.#buffer.subarray(0, n));
    const fatal = this.#tls.takeEvents().find((e) => e.kind === "fatal");
    if (fatal?.kind === "fatal") throw new Error(`TLS alert ${fatal.alert}`);
    const plain = this.#tls.takePlaintext();
    if (plain.length > 0) {
      const joined = new Uint8Array(this.#plain.length + plain.length);
      joined.set(this.#plain);
      joined.set(plain, this.#plain.length);
      this.#plain = joined;
    }
    await this.#flush();
    return true;
  }

  async #flush(): Promise<void> {
    const out = this.#tls.takeOutgoing();
    let at = 0;
    while (at < out.length) at += await this.#conn.write(out.subarray(at));
  }
}
