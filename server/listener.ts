/**
 * TCP listeners: implicit TLS (RFC 8314) and plaintext-with-STARTTLS. Each accepted connection
 * runs in its own task; nothing one connection does can stop the accept loop or another
 * connection.
 */
import type { ConnectionInfo, ServerOptions } from "../protocol/tls/mod.ts";
import { type ByteChannel, closeQuietly, PlainChannel } from "./channel.ts";
import { HandshakeError, type PeerCheck, TlsChannel } from "./tls_channel.ts";
import { type Metrics, NO_METRICS } from "./metrics/metrics.ts";

export interface ListenerSpec {
  readonly hostname: string;
  readonly port: number;
  readonly tls: "implicit" | "starttls";
}

/** What an application protocol gets for one connection. */
export interface ConnectionContext {
  readonly id: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly listener: ListenerSpec;
  /** The current channel; replaced by `startTls()`. */
  readonly channel: ByteChannel;
  /** Negotiated TLS parameters once TLS is up. */
  readonly tls: ConnectionInfo | null;
  /** Starts TLS on a STARTTLS listener; the plaintext channel must not be used afterwards. */
  startTls(): Promise<ByteChannel>;
  /** Aborted when the server shuts down. */
  readonly shutdown: AbortSignal;
  /** Records the authenticated user for the access log. */
  setUser(name: string): void;
  /** Adds a named figure to the access log line (COMPRESS savings, the client's ID). */
  annotate(key: string, value: string | number): void;
}

/** Runs an application protocol on one connection; resolves when the connection is done. */
export type Application = (context: ConnectionContext) => Promise<void>;

/** One access-log record per connection. */
export interface AccessRecord {
  readonly id: number;
  readonly peer: string;
  readonly listener: string;
  readonly tls: ConnectionInfo | null;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly durationMs: number;
  readonly closeReason: string;
  readonly user?: string | undefined;
  /** Figures the application added with `annotate`. */
  readonly notes?: Readonly<Record<string, string | number>>;
}

export interface ListenerOptions {
  /** Re-read on every handshake so that a reload takes effect for new connections. */
  readonly tlsConfig: () => ServerOptions;
  readonly handshakeTimeoutMs: number;
  readonly checkPeer?: PeerCheck;
  readonly maxConnectionsPerAddress: number;
  readonly application: Application;
  readonly onAccess: (record: AccessRecord) => void;
  readonly onError: (message: string, error: unknown) => void;
  readonly metrics?: Metrics;
  /**
   * Binds with SO_REUSEPORT (Linux), so that the accept loops of several Workers share each
   * port and the kernel spreads connections among them.
   */
  readonly reusePort?: boolean;
  /**
   * Counts connections per client address across every accept loop of the server (Workers);
   * without one, this group counts its own.
   */
  readonly addressGate?: AddressGate;
}

/** Connections per client address, counted where every accept loop can see them. */
export interface AddressGate {
  /** Counts one more connection from `address` unless `limit` are open; false: refused. */
  claim(address: string, limit: number): Promise<boolean>;
  /** Ends one connection counted by `claim`. */
  release(address: string): void;
}

/** The set of running listeners and their live connections. */
export class ListenerGroup {
  readonly #options: ListenerOptions;
  readonly #listeners: Deno.Listener[] = [];
  readonly #loops: Promise<void>[] = [];
  readonly #connections = new Map<number, { conn: Deno.Conn; done: Promise<void> }>();
  readonly #perAddress = new Map<string, number>();
  readonly #shutdown = new AbortController();
  #nextId = 1;
  readonly #metrics: Metrics;

  constructor(options: ListenerOptions) {
    this.#options = options;
    this.#metrics = options.metrics ?? NO_METRICS;
  }

  /** Binds every listener; throws (binding nothing) if any address is unavailable. */
  listen(specs: readonly ListenerSpec[]): Deno.NetAddr[] {
    const bound: Deno.Listener[] = [];
    try {
      for (const spec of specs) {
        bound.push(Deno.listen({
          hostname: spec.hostname,
          port: spec.port,
          transport: "tcp",
          ...(this.#options.reusePort ? { reusePort: true } : {}),
        }));
      }
    } catch (error) {
      for (const l of bound) l.close();
      throw error;
    }
    bound.forEach((listener, i) => {
      const spec = { ...specs[i]!, port: (listener.addr as Deno.NetAddr).port };
      this.#listeners.push(listener);
      this.#loops.push(this.#acceptLoop(listener, spec));
    });
    return bound.map((l) => l.addr as Deno.NetAddr);
  }

  get connectionCount(): number {
    return this.#connections.size;
  }

  /** True while every listener is accepting (for readiness). */
  get listening(): boolean {
    return this.#listeners.length > 0 && !this.#shutdown.signal.aborted;
  }

  get shutdownSignal(): AbortSignal {
    return this.#shutdown.signal;
  }

  /** Stops accepting; signals every session; waits up to `graceMs`, then closes what is left. */
  async close(graceMs: number): Promise<void> {
    for (const listener of this.#listeners) {
      try {
        listener.close();
      } catch {
        // Already closed.
      }
    }
    this.#shutdown.abort();
    await Promise.allSettled(this.#loops);
    const pending = [...this.#connections.values()].map((c) => c.done);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const grace = new Promise<void>((resolve) => timer = setTimeout(resolve, graceMs));
    await Promise.race([Promise.allSettled(pending), grace]);
    clearTimeout(timer);
    for (const { conn } of this.#connections.values()) closeQuietly(conn);
    await Promise.allSettled([...this.#connections.values()].map((c) => c.done));
  }

  async #acceptLoop(listener: Deno.Listener, spec: ListenerSpec): Promise<void> {
    while (!this.#shutdown.signal.aborted) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch (error) {
        if (this.#shutdown.signal.aborted) return;
        if (error instanceof Deno.errors.BadResource) return;
        this.#options.onError("Accept failed", error);
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      // IMAP and TLS flights are small and interactive: don't let Nagle hold them back.
      try {
        (conn as Deno.TcpConn).setNoDelay(true);
      } catch {
        // The socket may already be gone.
      }
      const address = (conn.remoteAddr as Deno.NetAddr).hostname;
      const gate = this.#options.addressGate;
      if (gate !== undefined) {
        this.#admitThrough(gate, conn, address, spec);
        continue;
      }
      const count = this.#perAddress.get(address) ?? 0;
      if (count >= this.#options.maxConnectionsPerAddress) {
        this.#refuse(conn, address, spec);
        continue;
      }
      this.#perAddress.set(address, count + 1);
      const id = this.#nextId++;
      this.#metrics.connectionOpened(listenerLabel(spec));
      const done = this.#serve(id, conn, spec).finally(() => {
        this.#metrics.connectionClosed(listenerLabel(spec));
        this.#connections.delete(id);
        const left = (this.#perAddress.get(address) ?? 1) - 1;
        if (left <= 0) this.#perAddress.delete(address);
        else this.#perAddress.set(address, left);
      });
      this.#connections.set(id, { conn, done });
    }
  }

  /** Closes a connection over the per-address limit, with an access line. */
  #refuse(conn: Deno.Conn, address: string, spec: ListenerSpec): void {
    this.#metrics.connectionRefused(listenerLabel(spec));
    this.#options.onAccess({
      id: 0,
      peer: address,
      listener: `${spec.hostname}:${spec.port}`,
      tls: null,
      bytesIn: 0,
      bytesOut: 0,
      durationMs: 0,
      closeReason: "too many connections from this address",
    });
    closeQuietly(conn);
  }

  /**
   * Serves a connection once the shared gate admits its address. The question runs in the
   * connection's task, so the accept loop never waits for the answer.
   */
  #admitThrough(gate: AddressGate, conn: Deno.Conn, address: string, spec: ListenerSpec): void {
    const id = this.#nextId++;
    const done = (async () => {
      let admitted = false;
      try {
        admitted = await gate.claim(address, this.#options.maxConnectionsPerAddress);
      } catch (error) {
        this.#options.onError("Connection limit check failed", error);
      }
      if (admitted && this.#shutdown.signal.aborted) {
        gate.release(address);
        closeQuietly(conn);
        return;
      }
      if (!admitted) {
        this.#refuse(conn, address, spec);
        return;
      }
      this.#metrics.connectionOpened(listenerLabel(spec));
      try {
        await this.#serve(id, conn, spec);
      } finally {
        this.#metrics.connectionClosed(listenerLabel(spec));
        gate.release(address);
      }
    })().finally(() => this.#connections.delete(id));
    this.#connections.set(id, { conn, done });
  }

  async #serve(id: number, conn: Deno.Conn, spec: ListenerSpec): Promise<void> {
    const started = performance.now();
    const remote = conn.remoteAddr as Deno.NetAddr;
    const peer = `${remote.hostname}:${remote.port}`;
    let channel: ByteChannel | null = null;
    let tlsChannel: TlsChannel | null = null;
    let closeReason = "closed";
    let user: string | undefined;
    const notes: Record<string, string | number> = {};
    const accept = (initialBytes?: Uint8Array) =>
      TlsChannel.accept(conn, this.#options.tlsConfig(), {
        handshakeTimeoutMs: this.#options.handshakeTimeoutMs,
        ...(this.#options.checkPeer ? { checkPeer: this.#options.checkPeer } : {}),
        ...(initialBytes ? { initialBytes } : {}),
        metrics: this.#metrics,
      });
    try {
      if (spec.tls === "implicit") {
        tlsChannel = await accept();
        channel = tlsChannel;
      } else {
        channel = new PlainChannel(conn, this.#metrics);
      }
      const context: ConnectionContext = {
        id,
        remoteAddress: remote.hostname,
        remotePort: remote.port,
        listener: spec,
        get channel() {
          return channel!;
        },
        get tls() {
          return tlsChannel?.info() ?? null;
        },
        startTls: async () => {
          if (tlsChannel) throw new Error("TLS is already active");
          tlsChannel = await accept();
          channel = tlsChannel;
          return tlsChannel;
        },
        shutdown: this.#shutdown.signal,
        setUser: (name) => {
          user = name;
        },
        annotate: (key, value) => {
          notes[key] = value;
        },
      };
      await this.#options.application(context);
      closeReason = tlsChannel?.closeReason ?? "closed";
    } catch (error) {
      if (error instanceof HandshakeError) {
        closeReason = `handshake failed: ${error.alert ? `${error.alert}: ` : ""}${error.message}`;
      } else {
        closeReason = "internal error";
        this.#options.onError(`Connection ${id} failed`, error);
      }
    } finally {
      await channel?.close().catch(() => {});
      closeQuietly(conn);
      this.#options.onAccess({
        id,
        peer,
        listener: listenerLabel(spec),
        tls: tlsChannel?.info() ?? null,
        bytesIn: channel?.bytesIn ?? 0,
        bytesOut: channel?.bytesOut ?? 0,
        durationMs: Math.round(performance.now() - started),
        closeReason,
        user,
        notes,
      });
    }
  }
}

/** How logs and metrics name a listener: `127.0.0.1:9993/implicit`. */
export function listenerLabel(spec: ListenerSpec): string {
  return `${spec.hostname}:${spec.port}/${spec.tls}`;
}
