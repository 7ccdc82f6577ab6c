/**
 * Drives the sans-IO TLS engine over a TCP connection: socket bytes in, records out, and the
 * asynchronous peer check (the directory) answered while the engine waits for it.
 */
import {
  type AsyncSigner,
  type CryptoProvider,
  webCryptoSigner,
} from "../../protocol/crypto/mod.ts";
import {
  acceptTls,
  type ConnectionInfo,
  type PeerVerificationResult,
  type ServerConnection,
  type ServerOptions,
  type SignatureRequest,
  type SignatureResult,
} from "../../protocol/tls/mod.ts";
import type { VerifiedPeer } from "../../protocol/x509/identity.ts";
import {
  type ByteChannel,
  closeQuietly,
  isConnectionGone,
  READ_CHUNK,
  writeAll,
} from "./channel.ts";
import { Pacer } from "../../protocol/event_loop.ts";
import {
  type HandshakeResult,
  type Metrics,
  NO_METRICS,
  secondsSince,
} from "../metrics/metrics.ts";
import { type GateStep, type HandshakeGate, LIGHT_RECORDS } from "./handshake_gate.ts";
import { handshakeDeadlines } from "./deadlines.ts";
import { RecordFraming } from "./record_framing.ts";
import { recycleSealBuffer } from "../../protocol/tls/seal_buffers.ts";
import { offersVouchedTicket } from "../../protocol/tls/vouched_ticket.ts";
import { ticketUsesOf } from "../../protocol/tls/server.ts";
import type { TicketUseCounter } from "../../protocol/tls/session13.ts";
import type { TicketKeys } from "../../protocol/tls/ticket_keys.ts";

/** The read buffer of a connection that sends little (see `TlsChannel.#buffer`). */
const SMALL_READ = 2048;

/** Plaintext sealed per step of a large write: 16 records of 16 KiB (RFC 8446, Section 5.1). */
const WRITE_SLICE = 256 * 1024;

/**
 * Where handshake signatures are made (`tls.signing`):
 * - `sync`: inline in the engine, on the JavaScript thread (the provider's fastest signer);
 * - `async`: by WebCrypto on Deno's thread pool, while other connections carry on;
 * - `auto`: inline while this is the only handshake in progress (one client: the lowest
 *   latency), on the thread pool as soon as handshakes overlap, but only on a machine with more
 *   than two cores. WebCrypto spends about twice the CPU of noble per P-256 signature (about
 *   500 against 250 µs here), so on two cores, shared with the clients, the thread pool only
 *   competes for the same CPU: `openssl s_time -new` x4 measured 715 handshakes/s inline
 *   against 604 with `auto` going to the thread pool (bench/handshake_bench.ts). P-256 keys
 *   always sign inline under `auto`: the WebAssembly signer (protocol/crypto/p256_wasm/) takes
 *   61-96 µs, against 450-760 µs of CPU for WebCrypto's. Where `auto` can only sign inline,
 *   the engine signs at once, as with `sync` (`mayOffload`).
 */
export type { SigningMode } from "../config/tls.ts";
import type { SigningMode } from "../config/tls.ts";

/** Handshakes between accept and completion in this process, for `auto` signing. */
let handshakesInProgress = 0;

/** Whether the thread pool has cores to itself, besides the event loop and the clients. */
const SPARE_CORES = (navigator.hardwareConcurrency ?? 1) > 2;

const signers = new WeakMap<CryptoProvider, AsyncSigner>();

/**
 * The lane of a first flight: "vouched" when it offers a ticket issued after a login with uses
 * left. Built here rather than as a function literal assigned to the channel's field: V8
 * allocates such a literal in the old generation, and its scope (the whole `accept` call, with
 * the connection, the engine and its buffers) would then outlive the connection until the next
 * full collection (see `tests/pretenured_closures_test.ts`).
 */
function helloClassifier(
  keys: TicketKeys,
  uses: TicketUseCounter,
): (bytes: Uint8Array) => GateStep {
  const check = { uses };
  return (bytes) => offersVouchedTicket(bytes, keys, check) ? "vouched" : "fresh";
}

/**
 * Whether a signature of this configuration may leave the JavaScript thread: never with `sync`,
 * and with `auto` only where the thread pool has spare cores and some key is not P-256 (which
 * `auto` signs inline). Deferring costs a configuration copy and a turn per handshake.
 */
function mayOffload(signing: SigningMode, config: ServerOptions): boolean {
  if (signing === "sync") return false;
  if (signing === "async") return true;
  if (!SPARE_CORES) return false;
  const keys = config.certificates?.map((c) => c.privateKey) ?? [config.privateKey];
  return !keys.every(isP256);
}

const deferredConfigs = new WeakMap<ServerOptions, ServerOptions>();

/** The configuration with deferred signing, one copy per configuration. */
function deferred(config: ServerOptions): ServerOptions {
  let copy = deferredConfigs.get(config);
  if (copy === undefined) deferredConfigs.set(config, copy = { ...config, deferSigning: true });
  return copy;
}

function isP256(key: SignatureRequest["key"]): boolean {
  return key.kind === "ec" && key.curve === "P-256";
}

/** Signs for a `signatureRequired` event; a signer that throws fails the handshake. */
async function runSigner(
  mode: SigningMode,
  provider: CryptoProvider,
  request: SignatureRequest,
): Promise<SignatureResult> {
  try {
    const inline = mode === "sync" ||
      (mode === "auto" &&
        (handshakesInProgress <= 1 || !SPARE_CORES || isP256(request.key)));
    if (inline) {
      return {
        ok: true,
        signature: provider.sign(request.key, request.algorithm, request.message),
      };
    }
    let signer = signers.get(provider);
    if (signer === undefined) signers.set(provider, signer = webCryptoSigner(provider));
    return {
      ok: true,
      signature: await signer.sign(request.key, request.algorithm, request.message),
    };
  } catch (error) {
    return { ok: false, reason: error instanceof Error ? error.message : String(error) };
  }
}

/** Decides whether a verified client certificate may proceed (the LDAP check plugs in here). */
/** Where a peer check runs: a full handshake, or a resumption (TLS 1.3 PSK, TLS 1.2 ticket). */
export interface PeerCheckContext {
  readonly resumed: boolean;
}

export type PeerCheck = (
  peer: VerifiedPeer,
  context?: PeerCheckContext,
) => Promise<PeerVerificationResult>;

export interface AcceptOptions {
  /** Closes the connection if the handshake has not finished by then. */
  readonly handshakeTimeoutMs: number;
  readonly checkPeer?: PeerCheck;
  /** Bytes already read from the socket in the clear that belong to the TLS stream (none for STARTTLS). */
  readonly initialBytes?: Uint8Array;
  readonly metrics?: Metrics;
  /** How the handshake signature is made (default "sync": inline in the engine). */
  readonly signing?: SigningMode;
  /** Admission of handshake steps, shared by the listener's connections (default: none). */
  readonly gate?: HandshakeGate;
  /**
   * Reads also pass the gate until `trust()` (the application calls it at login). For
   * applications that log peers in (IMAP); default false.
   */
  readonly gateUntilTrusted?: boolean;
  /**
   * Called when the handshake completes: inside `accept`, or with half-RTT in the `read()` that
   * takes the client's Finished (the bench's step probe).
   */
  readonly onEstablished?: () => void;
}

/** Why a handshake did not complete, for the access log. */
export class HandshakeError extends Error {
  readonly alert: string | null;
  constructor(message: string, alert: string | null) {
    super(message);
    this.name = "HandshakeError";
    this.alert = alert;
  }
}

/** Runs the peer check; a check that throws refuses the peer (fail closed). */
async function runPeerCheck(
  checkPeer: PeerCheck | undefined,
  peer: VerifiedPeer,
  context: PeerCheckContext,
): Promise<PeerVerificationResult> {
  if (!checkPeer) return { ok: true };
  try {
    return await checkPeer(peer, context);
  } catch (error) {
    return { ok: false, alert: "internal_error", reason: String(error) };
  }
}

/** A handshake's start, its timeout (`handshakeDeadlines`), and whether that fired. */
interface HandshakeWatch {
  readonly started: number;
  timedOut: boolean;
  timer: ReturnType<typeof handshakeDeadlines.add> | undefined;
}

/** Runs one handshake step, through the gate when there is one. */
type Step = <T>(f: () => T) => Promise<T>;

/**
 * A TLS 1.3 or 1.2 channel over a TCP connection, handshake completed (or, with half-RTT, only
 * the client's Finished outstanding).
 */
export class TlsChannel implements ByteChannel {
  readonly #conn: Deno.Conn;
  readonly #engine: ServerConnection;
  /**
   * The read buffer: small while the peer sends little (an IDLE session holds only this), a
   * full record's worth once a read fills it, and small again after a short read.
   */
  #buffer = new Uint8Array(SMALL_READ);
  readonly #metrics: Metrics;
  /**
   * Until the application vouches for the peer (`trust()`, at login), its records are
   * processed through the handshake gate: an unauthenticated peer's TLS work (KeyUpdates,
   * records) shares the budget of the handshakes instead of running ahead of logged-in sessions.
   */
  #untrusted: HandshakeGate | null = null;
  /** Reads of the peer's that have passed the gate since the handshake. */
  #gatedReads = 0;
  /**
   * The gate's lane for the ClientHello: "vouched" (for every step of the handshake) when it
   * offers a vouched ticket.
   */
  #helloLane: GateStep = "fresh";
  /**
   * A half-RTT handshake that `accept` handed over before the client's Finished: its watch
   * (timer, counters) and its gated step; null once the handshake has ended.
   */
  #unfinished: { readonly watch: HandshakeWatch; readonly step: Step } | null = null;
  #onEstablished: (() => void) | null = null;
  /** Where the peer's records end, while its reads may pass the gate. */
  #framing: RecordFraming | null = new RecordFraming();
  #writing: Promise<void> = Promise.resolve();
  #eof = false;
  /**
   * A read or write found the connection reset (or otherwise gone): a close_notify could not
   * reach the peer, and trying builds one more error, stack and all (every client that closes
   * right after its handshake, as `openssl s_time` does).
   */
  #gone = false;
  /** A fatal alert ended the connection: no close_notify follows. */
  #failed = false;
  #closed = false;
  #in = 0;
  #out = 0;
  /** Set when the peer ended the connection with an alert or a fatal error occurred. */
  closeReason: string | null = null;
  /**
   * How long the handshake's steps, and the last read's records, waited at the gate, in ms
   * (for the bench's step probe).
   */
  gateWaitMs = 0;
  readGateWaitMs = 0;
  /**
   * For the bench's step probe: when the first bytes (the ClientHello) were read, and when the
   * server's first flight was handed to the socket (`performance.now()`; 0 until then).
   */
  helloReadAt = 0;
  flightWrittenAt = 0;

  private constructor(conn: Deno.Conn, engine: ServerConnection, metrics: Metrics) {
    this.#conn = conn;
    this.#engine = engine;
    this.#metrics = metrics;
  }

  /**
   * Runs the server handshake on `conn`; throws `HandshakeError` when it fails or times out.
   * With half-RTT (TLS 1.3, no client certificate: `ServerConfig.halfRtt`) it returns once the
   * server's flight is ready, before the client's Finished: the application's first write (or
   * its first read) sends the flight, with that write's data, and `read()` finishes the
   * handshake (its timeout, gate and counters still apply; a failure there throws
   * `HandshakeError`).
   */
  static async accept(
    conn: Deno.Conn,
    config: ServerOptions,
    options: AcceptOptions,
  ): Promise<TlsChannel> {
    const metrics = options.metrics ?? NO_METRICS;
    const signing = options.signing ?? "sync";
    const engine = acceptTls(mayOffload(signing, config) ? deferred(config) : config);
    const channel = new TlsChannel(conn, engine, metrics);
    handshakesInProgress++;
    const watch: HandshakeWatch = { started: performance.now(), timedOut: false, timer: undefined };
    watch.timer = handshakeDeadlines.add(options.handshakeTimeoutMs, () => {
      watch.timedOut = true;
      closeQuietly(conn);
    });
    try {
      const gate = options.gate;
      channel.#untrusted = options.gateUntilTrusted ? gate ?? null : null;
      if (gate === undefined) channel.#framing = null;
      // A step before our first flight is a new handshake's; later ones continue one. A step
      // still waiting when the handshake times out is dropped unrun: under a flood the oldest
      // ClientHellos wait longest, and working through them would spend the gate's budget on
      // connections already closed.
      const gated = (lane: () => GateStep) =>
        gate
          ? <T>(f: () => T) => {
            const asked = performance.now();
            return gate.run(() => {
              channel.gateWaitMs += performance.now() - asked;
              if (watch.timedOut) throw new HandshakeError("Handshake timed out", null);
              return f();
            }, lane());
          }
          : <T>(f: () => T) => Promise.resolve(f());
      const step = gated(() =>
        channel.#helloLane === "vouched" || channel.#out === 0 ? channel.#helloLane : "continuing"
      );
      const keys = gate === undefined ? undefined : config.ticketKeys;
      // A returning client's handshake (a vouched ticket) skips the queue of handshakes.
      // Only a ticket with uses left: a used-up one falls back to a full handshake.
      channel.#classifyHello = keys === undefined
        ? null
        : helloClassifier(keys, ticketUsesOf(config));
      const initial = options.initialBytes;
      if (initial?.length) await channel.#feedThrough(initial, step);
      await channel.#handshake(options.checkPeer, signing, config.provider, step);
      // Resumed with a vouched ticket: the peer proved it holds a ticket issued after a login,
      // so its records no longer wait at the gate either (an account holder's records skip
      // it once it logs in anyway). Its IMAP session still starts unauthenticated.
      if (channel.#engine.info().vouched === true) channel.#untrusted = null;
      channel.#onEstablished = options.onEstablished ?? null;
      if (channel.#engine.handshakeComplete) channel.#established(watch);
      else {
        // Half-RTT: the client's Finished is a step of a handshake under way.
        channel.#unfinished = {
          watch,
          step: gated(() => channel.#helloLane === "vouched" ? "vouched" : "continuing"),
        };
      }
      return channel;
    } catch (error) {
      throw channel.#handshakeFailed(watch, error);
    }
  }

  /**
   * The handshake ended with `result`: its timer stopped, the in-progress count and the
   * handshake metrics updated (with what was negotiated when it succeeded).
   */
  #endHandshake(watch: HandshakeWatch, result: HandshakeResult): void {
    if (watch.timer !== undefined) handshakeDeadlines.cancel(watch.timer);
    handshakesInProgress--;
    this.#unfinished = null;
    const info = result === "ok" ? this.info() : null;
    this.#metrics.handshake({
      version: info?.version ?? "none",
      suite: info?.cipherSuite ?? "none",
      group: info?.group ?? "none",
      result,
      seconds: secondsSince(watch.started),
    });
  }

  /** The handshake succeeded. */
  #established(watch: HandshakeWatch): void {
    this.#endHandshake(watch, "ok");
    if (this.#untrusted === null) this.#framing = null;
    this.#onEstablished?.();
    this.#onEstablished = null;
  }

  /** The handshake failed: counted, the socket closed; returns what to throw. */
  #handshakeFailed(watch: HandshakeWatch, error: unknown): unknown {
    this.#endHandshake(watch, handshakeResult(error, watch.timedOut));
    this.#closed = true;
    closeQuietly(this.#conn);
    if (watch.timedOut) return new HandshakeError("Handshake timed out", null);
    if (error instanceof HandshakeError) return error;
    if (isConnectionGone(error)) return new HandshakeError("Peer closed during handshake", null);
    return error;
  }

  get bytesIn(): number {
    return this.#in;
  }
  get bytesOut(): number {
    return this.#out;
  }
  info(): ConnectionInfo {
    return this.#engine.info();
  }

  async #handshake(
    checkPeer: PeerCheck | undefined,
    signing: SigningMode,
    provider: CryptoProvider,
    step: <T>(f: () => T) => Promise<T>,
  ): Promise<void> {
    while (true) {
      // Answering an event (the peer check) can queue more, so drain until none are left.
      const events = this.#engine.takeEvents();
      for (const event of events) {
        switch (event.kind) {
          case "peerVerificationRequired": {
            const verdict = await runPeerCheck(checkPeer, event.peer, {
              resumed: this.#engine.info().resumed === true,
            });
            await step(() => this.#engine.completePeerVerification(verdict));
            break;
          }
          case "signatureRequired": {
            const signed = await runSigner(signing, provider, event.request);
            await step(() => this.#engine.completeSignature(signed));
            break;
          }
          case "fatal":
            this.#metrics.tlsAlert(event.sentByUs ? "sent" : "received", event.alert);
            await this.#flush().catch(() => {});
            throw new HandshakeError(event.reason, event.alert);
          case "peerClosed":
            // A client may finish the handshake and close in one flight (a TLS 1.2 resumption
            // followed by close_notify): the handshake counts, and reads see the end.
            if (this.#engine.handshakeComplete) {
              this.#eof = true;
              this.closeReason ??= "close_notify";
              break;
            }
            this.#metrics.tlsAlert("received", "close_notify");
            throw new HandshakeError("Peer closed during handshake", "close_notify");
          case "handshakeComplete":
            break;
        }
      }
      // Once the handshake is complete, what is left to send (TLS 1.3 NewSessionTickets, the
      // TLS 1.2 server Finished) goes out with the first write or before the first read: one
      // write fewer per connection. With half-RTT, so does the whole flight, and the client's
      // Finished is read by `read()`.
      if (this.#engine.canSend && !this.#eof) return;
      await this.#flush();
      if (events.length > 0) continue;
      if (this.#engine.handshakeComplete) return;
      if (this.#engine.closed) throw new HandshakeError("Connection closed during handshake", null);
      const bytes = await this.#read();
      if (bytes === null) throw new HandshakeError("Peer closed during handshake", null);
      await this.#feedThrough(bytes, step);
    }
  }

  /** Reads once from the socket, resizing the buffer to the traffic; null at EOF. */
  async #read(): Promise<Uint8Array | null> {
    const buffer = this.#buffer;
    let n: number | null;
    try {
      n = await this.#conn.read(buffer);
    } catch (error) {
      if (!isConnectionGone(error)) throw error;
      this.#gone = true;
      return null;
    }
    if (n === null) return null;
    if (n === buffer.length && buffer.length < READ_CHUNK) {
      this.#buffer = new Uint8Array(READ_CHUNK);
    } else if (n < SMALL_READ && buffer.length > SMALL_READ) {
      // The engine keeps no view of what it is fed (the buffer was always reused).
      this.#buffer = new Uint8Array(SMALL_READ);
    }
    return buffer.subarray(0, n);
  }

  #feed(bytes: Uint8Array): void {
    this.#in += bytes.length;
    this.#metrics.bytesReceived(bytes.length);
    this.#engine.receive(bytes);
  }

  /** Picks the ClientHello's gate lane from the first bytes read, once (null: not gated). */
  #classifyHello: ((bytes: Uint8Array) => GateStep) | null = null;

  /** Feeds `bytes` as a gated `step` when they complete a record, at once when they do not. */
  #feedThrough(bytes: Uint8Array, step: <T>(f: () => T) => Promise<T>): Promise<void> | void {
    if (this.#in === 0) {
      this.helloReadAt = performance.now();
      if (this.#classifyHello !== null) this.#helloLane = this.#classifyHello(bytes);
    }
    this.#classifyHello = null;
    if (this.#framing === null || this.#framing.completes(bytes)) {
      return step(() => this.#feed(bytes));
    }
    this.#feed(bytes);
  }

  /** Hands every queued record to the socket, one write at a time. */
  #flush(): Promise<void> {
    const out = this.#engine.takeOutgoing();
    if (out.length === 0) return this.#writing;
    this.#writing = this.#writing.then(async () => {
      if (this.flightWrittenAt === 0) this.flightWrittenAt = performance.now();
      try {
        await writeAll(this.#conn, out);
      } catch (error) {
        if (isConnectionGone(error)) this.#gone = true;
        throw error;
      } finally {
        // The socket has taken every byte, or never will (the connection is gone, as after
        // most `openssl s_time` handshakes): either way a buffer of sealed records can serve
        // the next write.
        recycleSealBuffer(out);
      }
      this.#out += out.length;
      this.#metrics.bytesSent(out.length);
    }, (error) => {
      // An earlier write failed: these records will never be written, and their buffer can
      // serve another connection.
      recycleSealBuffer(out);
      throw error;
    });
    return this.#writing;
  }

  read(): Promise<Uint8Array | null> {
    const unfinished = this.#unfinished;
    return unfinished === null ? this.#readData() : this.#finishHandshake(unfinished.watch);
  }

  /** `read()` while a half-RTT handshake is unfinished: a failure counts as the handshake's. */
  async #finishHandshake(watch: HandshakeWatch): Promise<Uint8Array | null> {
    try {
      return await this.#readData();
    } catch (error) {
      if (this.#unfinished === null) throw error;
      throw this.#handshakeFailed(watch, error);
    }
  }

  /** The next application data; while a half-RTT handshake is unfinished, it finishes first. */
  async #readData(): Promise<Uint8Array | null> {
    while (true) {
      const plain = this.#engine.takePlaintext();
      if (plain.length > 0) return plain;
      if (this.#eof || this.#closed) {
        if (this.#unfinished !== null) {
          throw new HandshakeError(
            "Peer closed during handshake",
            this.closeReason === "close_notify" ? "close_notify" : null,
          );
        }
        return null;
      }
      let failure: HandshakeError | null = null;
      for (const event of this.#engine.takeEvents()) {
        if (event.kind === "peerClosed") {
          this.#metrics.tlsAlert("received", "close_notify");
          this.#eof = true;
          this.closeReason ??= "close_notify";
        } else if (event.kind === "fatal") {
          this.#metrics.tlsAlert(event.sentByUs ? "sent" : "received", event.alert);
          this.#failed = true;
          this.#eof = true;
          this.closeReason ??= `${
            event.sentByUs ? "sent" : "received"
          } ${event.alert}: ${event.reason}`;
          if (this.#unfinished !== null) failure = new HandshakeError(event.reason, event.alert);
        }
      }
      await this.#flush().catch(() => {});
      if (failure !== null) throw failure;
      if (this.#gone) {
        // The write found the connection reset (as `openssl s_time` leaves it, right after its
        // Finished): nothing can be answered, and a read would only return its end.
        this.#eof = true;
        this.closeReason ??= "connection reset";
      }
      if (this.#eof) continue;
      const bytes = await this.#read();
      if (bytes === null) {
        this.#eof = true;
        this.closeReason ??= "eof without close_notify";
        continue;
      }
      const unfinished = this.#unfinished;
      const gate = this.#untrusted;
      this.readGateWaitMs = 0;
      if (unfinished !== null) {
        await this.#feedThrough(bytes, unfinished.step);
        // The client's Finished may come with its first data, which is returned before the
        // events are looked at again: the handshake counts as done from here.
        if (this.#engine.handshakeComplete) this.#established(unfinished.watch);
      } else if (gate === null) this.#feed(bytes);
      else {
        const asked = performance.now();
        await this.#feedThrough(
          bytes,
          (f) =>
            gate.run(() => {
              this.readGateWaitMs = performance.now() - asked;
              return f();
            }, this.#gatedReads++ < LIGHT_RECORDS ? "record" : "bulk"),
        );
      }
    }
  }

  /**
   * The peer has authenticated: its records no longer wait at the handshake gate, and a TLS 1.3
   * peer that takes tickets gets a vouched one (its next ClientHello skips the queue).
   */
  trust(): void {
    this.#untrusted = null;
    this.#framing = null;
    // A vouched ticket for the next connection; it leaves with the next write (the login's
    // reply).
    this.#engine.vouch?.();
  }

  /**
   * Seals `data` a slice at a time: each slice's records go to the socket while the next slice
   * is sealed, so a 50 MB body is never held sealed and joined in one piece.
   */
  async write(data: Uint8Array): Promise<void> {
    if (this.#closed || this.#engine.closed) throw new Deno.errors.BrokenPipe("Channel is closed");
    if (data.length <= WRITE_SLICE) {
      this.#engine.send(data);
      await this.#flush();
      return;
    }
    // A socket that keeps up completes each write at once, without a turn of the event loop:
    // a 50 MB body would then be sealed and written in one stretch, with every timer and every
    // other connection waiting. So the loop yields once per time slice.
    // The time slice of protocol/event_loop.ts: 5 ms with the server's quick yield, else 10.
    const pacer = new Pacer();
    let previous: Promise<void> = Promise.resolve();
    for (let at = 0; at < data.length; at += WRITE_SLICE) {
      this.#engine.send(data.subarray(at, at + WRITE_SLICE));
      const flushed = this.#flush();
      await previous;
      previous = flushed;
      if (pacer.due()) await pacer.yield();
    }
    await previous;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    const unfinished = this.#unfinished;
    if (unfinished !== null) {
      // Closed by the application before the client's Finished (half-RTT): the handshake ends
      // unfinished, and the peer gets a close_notify, as a handshake cut short would.
      this.#endHandshake(unfinished.watch, "closed");
    }
    this.#closed = true;
    if (this.#gone) {
      this.closeReason ??= "connection reset";
      closeQuietly(this.#conn);
      return;
    }
    this.closeReason ??= "close_notify sent";
    try {
      if (!this.#failed) this.#metrics.tlsAlert("sent", "close_notify");
      this.#engine.close();
      await this.#flush();
    } catch {
      // The peer may already be gone; closing the socket is all that is left.
    } finally {
      closeQuietly(this.#conn);
    }
  }
}

/** The handshake-counter result of a failed handshake. */
function handshakeResult(error: unknown, timedOut: boolean): HandshakeResult {
  if (timedOut) return "timeout";
  if (error instanceof HandshakeError) {
    return error.alert === null || error.alert === "close_notify" ? "closed" : "alert";
  }
  return isConnectionGone(error) ? "closed" : "error";
}
