/**
 * TCP listeners: implicit TLS (RFC 8314) and plaintext-with-STARTTLS. Each accepted connection
 * runs in its own task; nothing one connection does can stop the accept loop or another
 * connection.
 */
import type { ConnectionInfo, ServerOptions } from "../../protocol/tls/mod.ts";
import { type ByteChannel, closeQuietly, isConnectionGone, PlainChannel } from "./channel.ts";
import { HandshakeGate } from "./handshake_gate.ts";
import { SlotSet } from "../slot_set.ts";
import { HandshakeError, type PeerCheck, type SigningMode, TlsChannel } from "./tls_channel.ts";
import { type Metrics, NO_METRICS } from "../metrics/metrics.ts";
import type { TlsMode } from "../config/listen.ts";
import { type Cidr, inRanges, parseIpAddress, ProxyHeaderError } from "../../protocol/proxy/mod.ts";
import { PROXY_HEADER_TIMEOUT_MS, readProxyFrom } from "./proxy_reader.ts";
import { epochMs, type StepMark, stepProbe } from "../serve/step_probe.ts";

export interface ListenerSpec {
  readonly hostname: string;
  readonly port: number;
  readonly tls: TlsMode;
  /**
   * Set when every connection starts with a PROXY protocol header (v2 or v1): only from these
   * balancers, and required from them.
   */
  readonly proxy?: { readonly trusted: readonly Cidr[] };
}

/** A connection's endpoints as the access log and the limits see them. */
interface Endpoint {
  readonly hostname: string;
  readonly port: number;
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
  /**
   * Records the authenticated user for the access log; from then on the connection's records
   * no longer wait at the handshake gate.
   */
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
  /** Where handshake signatures are made (`tls.signing`; default "sync"). */
  readonly signing?: SigningMode;
  /**
   * The application logs peers in (`setUser`): until then their records pass the handshake
   * gate too (default false).
   */
  readonly gateUntilLogin?: boolean;
  readonly checkPeer?: PeerCheck;
  readonly maxConnectionsPerAddress: number;
  readonly application: Application;
  readonly onAccess: (record: AccessRecord) => void;
  readonly onError: (message: string, error: unknown) => void;
  readonly metrics?: Metrics;
  /** How long a balancer may take to send the PROXY header. Default 5 s. */
  readonly proxyHeaderTimeoutMs?: number;
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

/** An open connection, and what settles when its work is done. */
interface Tracked {
  readonly conn: Deno.Conn;
  done: Promise<void>;
}

/** The set of running listeners and their live connections. */
export class ListenerGroup {
  readonly #options: ListenerOptions;
  readonly #listeners: Deno.Listener[] = [];
  readonly #loops: Promise<void>[] = [];
  /** Open connections until their work settles; array-backed, see slot_set.ts. */
  readonly #connections = new SlotSet<Tracked>();
  readonly #perAddress = new Map<string, number>();
  /** Handshake steps of all these listeners share one budget per event-loop turn. */
  readonly #gate = new HandshakeGate();
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
    const pending = this.#connections.items().map((c) => c.done);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const grace = new Promise<void>((resolve) => timer = setTimeout(resolve, graceMs));
    await Promise.race([Promise.allSettled(pending), grace]);
    clearTimeout(timer);
    for (const { conn } of this.#connections.items()) closeQuietly(conn);
    await Promise.allSettled(this.#connections.items().map((c) => c.done));
  }

  /**
   * The bench's probe: for each accepted connection, the time since the loop's accept before,
   * and the thread's wait for a core in it (a long gap with as long a wait: the thread did not
   * run; a long gap without: it ran other work; a short one: the queue was long).
   */
  readonly #acceptGaps = new WeakMap<Deno.Conn, Record<string, number>>();

  async #acceptLoop(listener: Deno.Listener, spec: ListenerSpec): Promise<void> {
    let lastAccept = stepProbe?.mark();
    /** The probe's: the times of the loop's last accepts, newest last. */
    const recent: number[] = [];
    while (!this.#shutdown.signal.aborted) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
        if (lastAccept !== undefined) {
          const now = stepProbe!.mark();
          recent.push(now.at);
          while (recent[0]! < now.at - 400) recent.shift();
          // Accepts in the last 50, 100, 200 and 400 ms: a busy accept loop behind a long
          // queue, or one that did not run.
          const within = (ms: number) => recent.filter((t) => t >= now.at - ms).length;
          this.#acceptGaps.set(conn, {
            gapMs: Math.round((now.at - lastAccept.at) * 10) / 10,
            gapWaitMs: Math.round((now.waitMs - lastAccept.waitMs) * 10) / 10,
            in50: within(50),
            in100: within(100),
            in200: within(200),
            in400: recent.length,
          });
          lastAccept = now;
        }
      } catch (error) {
        if (this.#shutdown.signal.aborted) return;
        if (error instanceof Deno.errors.BadResource) return;
        // A peer that reset its connection before the accept (a balancer's connect-only health
        // check, a port scan) is no fault of the listener: no log line, and no pause that a
        // flood of such connections could turn into a stall of the accept loop.
        if (isConnectionGone(error)) continue;
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
      const socket = conn.remoteAddr as Deno.NetAddr;
      if (spec.proxy !== undefined) {
        // Checked before a byte is read: an untrusted peer may not announce another address,
        // and on this listener it has nothing else to say.
        const bytes = parseIpAddress(socket.hostname);
        if (bytes === null || !inRanges(bytes, spec.proxy.trusted)) {
          this.#refuse(spec, conn, socket, "PROXY header refused: address not in trusted_proxies");
          continue;
        }
        const id = this.#nextId++;
        this.#track(conn, spec, this.#proxied(id, conn, spec, socket));
        continue;
      }
      const gate = this.#options.addressGate;
      if (gate !== undefined) {
        this.#admitThrough(gate, conn, spec, socket);
        continue;
      }
      if (!this.#claimAddress(socket.hostname)) {
        this.#refuse(spec, conn, socket, "too many connections from this address");
        continue;
      }
      const id = this.#nextId++;
      const client = { hostname: socket.hostname, port: socket.port };
      this.#track(
        conn,
        spec,
        this.#serve(id, conn, spec, client).finally(() => this.#releaseAddress(client.hostname)),
      );
    }
  }

  /** Counts an open connection until `work` settles. */
  #track(conn: Deno.Conn, spec: ListenerSpec, work: Promise<void>): void {
    this.#metrics.connectionOpened(listenerLabel(spec));
    const tracked: Tracked = { conn, done: work };
    const slot = this.#connections.add(tracked);
    tracked.done = work.finally(() => {
      this.#metrics.connectionClosed(listenerLabel(spec));
      this.#connections.delete(slot);
    });
  }

  /** Takes one of the address's `maxConnectionsPerAddress` slots; false when none is left. */
  #claimAddress(address: string): boolean {
    const count = this.#perAddress.get(address) ?? 0;
    if (count >= this.#options.maxConnectionsPerAddress) return false;
    this.#perAddress.set(address, count + 1);
    return true;
  }

  #releaseAddress(address: string): void {
    const left = (this.#perAddress.get(address) ?? 1) - 1;
    if (left <= 0) this.#perAddress.delete(address);
    else this.#perAddress.set(address, left);
  }

  /** Closes a connection at once, with an access line saying why. */
  #refuse(spec: ListenerSpec, conn: Deno.Conn, peer: Endpoint, reason: string, id = 0): void {
    this.#metrics.connectionRefused(listenerLabel(spec));
    this.#options.onAccess({
      id,
      peer: formatPeer(peer),
      listener: listenerLabel(spec),
      tls: null,
      bytesIn: 0,
      bytesOut: 0,
      durationMs: 0,
      closeReason: reason,
    });
    closeQuietly(conn);
  }

  /**
   * A connection from a trusted balancer: its PROXY header names the client, which the limits,
   * the hostile-client back-off and the access log then see. LOCAL (a health check) and
   * headers without IP endpoints leave the socket's address.
   */
  async #proxied(id: number, conn: Deno.Conn, spec: ListenerSpec, socket: Endpoint): Promise<void> {
    let client: Endpoint = socket;
    let rest: Uint8Array;
    try {
      const read = await readProxyFrom(
        conn,
        this.#options.proxyHeaderTimeoutMs ?? PROXY_HEADER_TIMEOUT_MS,
      );
      if (read.header.source !== null) {
        client = { hostname: read.header.source.address, port: read.header.source.port };
      }
      rest = read.rest;
    } catch (error) {
      if (!(error instanceof ProxyHeaderError)) {
        this.#options.onError(`Connection ${id}: reading the PROXY header failed`, error);
      }
      const reason = error instanceof ProxyHeaderError
        ? `PROXY header refused: ${error.message}`
        : "PROXY header refused: read failed";
      this.#refuse(spec, conn, socket, reason, id);
      return;
    }
    const gate = this.#options.addressGate;
    if (
      !(gate === undefined
        ? this.#claimAddress(client.hostname)
        : await this.#claimThrough(gate, client.hostname))
    ) {
      this.#refuse(spec, conn, client, "too many connections from this address", id);
      return;
    }
    try {
      await this.#serve(id, conn, spec, client, {
        balancer: client === socket ? null : socket,
        rest,
      });
    } finally {
      if (gate === undefined) this.#releaseAddress(client.hostname);
      else gate.release(client.hostname);
    }
  }

  /** Asks the shared gate for a slot; a failed question refuses (fail closed). */
  async #claimThrough(gate: AddressGate, address: string): Promise<boolean> {
    try {
      return await gate.claim(address, this.#options.maxConnectionsPerAddress);
    } catch (error) {
      this.#options.onError("Connection limit check failed", error);
      return false;
    }
  }

  /**
   * Serves a connection once the shared gate admits its address. The question runs in the
   * connection's task, so the accept loop never waits for the answer.
   */
  #admitThrough(gate: AddressGate, conn: Deno.Conn, spec: ListenerSpec, socket: Endpoint): void {
    const id = this.#nextId++;
    const client = { hostname: socket.hostname, port: socket.port };
    // Tracked for shutdown at once, but counted as opened only once admitted, as on one loop.
    const tracked: Tracked = { conn, done: Promise.resolve() };
    const slot = this.#connections.add(tracked);
    tracked.done = (async () => {
      if (!(await this.#claimThrough(gate, client.hostname))) {
        this.#refuse(spec, conn, client, "too many connections from this address", id);
        return;
      }
      if (this.#shutdown.signal.aborted) {
        gate.release(client.hostname);
        closeQuietly(conn);
        return;
      }
      this.#metrics.connectionOpened(listenerLabel(spec));
      try {
        await this.#serve(id, conn, spec, client);
      } finally {
        this.#metrics.connectionClosed(listenerLabel(spec));
        gate.release(client.hostname);
      }
    })().finally(() => this.#connections.delete(slot));
  }

  async #serve(
    id: number,
    conn: Deno.Conn,
    spec: ListenerSpec,
    remote: Endpoint,
    /** After a PROXY header: the balancer's endpoint when it relayed a client, and what followed. */
    proxy?: { readonly balancer: Endpoint | null; readonly rest: Uint8Array },
  ): Promise<void> {
    const started = performance.now();
    // The bench's probe: the handshake as the server saw it, written once the peer logs in.
    const acceptedAt = stepProbe?.mark();
    let doneAt: StepMark | undefined;
    const peer = formatPeer(remote);
    let closeReason = "closed";
    const accept = (initialBytes?: Uint8Array) =>
      TlsChannel.accept(conn, this.#options.tlsConfig(), {
        handshakeTimeoutMs: this.#options.handshakeTimeoutMs,
        ...(this.#options.signing ? { signing: this.#options.signing } : {}),
        gate: this.#gate,
        ...(this.#options.gateUntilLogin ? { gateUntilTrusted: true } : {}),
        ...(this.#options.checkPeer ? { checkPeer: this.#options.checkPeer } : {}),
        ...(initialBytes ? { initialBytes } : {}),
        ...(acceptedAt !== undefined ? { onEstablished: () => doneAt = stepProbe!.mark() } : {}),
        metrics: this.#metrics,
      });
    const context = new Connection(id, remote, spec, this.#shutdown.signal, accept);
    if (proxy?.balancer) context.notes.proxy = formatPeer(proxy.balancer);
    try {
      if (spec.tls === "implicit") {
        const tls = await accept(proxy?.rest);
        context.use(tls);
        if (acceptedAt !== undefined) {
          context.onTrusted = handshakeProbe(
            acceptedAt,
            tls,
            remote.port,
            this.#acceptGaps.get(conn),
            () => doneAt,
          );
        }
      } else {
        context.use(new PlainChannel(conn, this.#metrics, proxy?.rest));
      }
      await this.#options.application(context);
      closeReason = context.tlsChannel?.closeReason ?? "closed";
    } catch (error) {
      if (error instanceof HandshakeError) {
        closeReason = `handshake failed: ${error.alert ? `${error.alert}: ` : ""}${error.message}`;
      } else {
        closeReason = "internal error";
        this.#options.onError(`Connection ${id} failed`, error);
      }
    } finally {
      const channel = context.current;
      await channel?.close().catch(() => {});
      closeQuietly(conn);
      this.#options.onAccess({
        id,
        peer,
        listener: listenerLabel(spec),
        tls: context.tls,
        bytesIn: channel?.bytesIn ?? 0,
        bytesOut: channel?.bytesOut ?? 0,
        durationMs: Math.round(performance.now() - started),
        closeReason,
        user: context.user,
        notes: context.notes,
      });
    }
  }
}

/**
 * One connection as its application sees it: a class, so that the accessors live on the
 * prototype (an object literal of getters and closures cost each idle connection about 1 KiB).
 */
class Connection implements ConnectionContext {
  readonly id: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly listener: ListenerSpec;
  readonly shutdown: AbortSignal;
  /** The channel in use (null until the first one is set), and the TLS one once there is one. */
  current: ByteChannel | null = null;
  tlsChannel: TlsChannel | null = null;
  user: string | undefined = undefined;
  readonly notes: Record<string, string | number> = {};
  /** The bench's step probe: called once, when the peer logs in. */
  onTrusted: (() => void) | null = null;
  readonly #accept: () => Promise<TlsChannel>;

  constructor(
    id: number,
    remote: Endpoint,
    listener: ListenerSpec,
    shutdown: AbortSignal,
    accept: () => Promise<TlsChannel>,
  ) {
    this.id = id;
    this.remoteAddress = remote.hostname;
    this.remotePort = remote.port;
    this.listener = listener;
    this.shutdown = shutdown;
    this.#accept = accept;
  }

  use(channel: ByteChannel): void {
    this.current = channel;
    if (channel instanceof TlsChannel) this.tlsChannel = channel;
  }

  get channel(): ByteChannel {
    return this.current!;
  }

  get tls(): ConnectionInfo | null {
    return this.tlsChannel?.info() ?? null;
  }

  async startTls(): Promise<ByteChannel> {
    if (this.tlsChannel) throw new Error("TLS is already active");
    const channel = await this.#accept();
    this.use(channel);
    return channel;
  }

  setUser(name: string): void {
    this.user = name;
    this.tlsChannel?.trust();
    this.onTrusted?.();
    this.onTrusted = null;
  }

  annotate(key: string, value: string | number): void {
    this.notes[key] = value;
  }
}

/**
 * The bench's "handshake" step, written at login, after the handshake (which, with half-RTT,
 * ends after `accept`), with timestamps to line up with the client's: its port, the accept, the
 * ClientHello's read, the first flight's write, the end of the handshake (epoch ms).
 */
function handshakeProbe(
  acceptedAt: StepMark,
  tls: TlsChannel,
  port: number,
  gaps: Record<string, number> | undefined,
  doneAt: () => StepMark | undefined,
): () => void {
  return () => {
    const done = doneAt() ?? stepProbe!.mark();
    stepProbe!.record("handshake", acceptedAt, done, tls.gateWaitMs, {
      port,
      acceptAt: epochMs(acceptedAt.at),
      helloAt: epochMs(tls.helloReadAt),
      flightAt: epochMs(tls.flightWrittenAt),
      doneAt: epochMs(done.at),
      ...gaps,
    });
  };
}

/** `192.0.2.1:993`, `[2001:db8::1]:993`. */
function formatPeer(endpoint: Endpoint): string {
  return endpoint.hostname.includes(":")
    ? `[${endpoint.hostname}]:${endpoint.port}`
    : `${endpoint.hostname}:${endpoint.port}`;
}

/** How logs and metrics name a listener: `127.0.0.1:9993/implicit`. */
export function listenerLabel(spec: ListenerSpec): string {
  return `${spec.hostname}:${spec.port}/${spec.tls}`;
}
