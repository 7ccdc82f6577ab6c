/**
 * The IMAP application: runs one `ImapSession` per connection over a byte channel, with the
 * timeouts, keep-alives, STARTTLS upgrade, per-user limits and server-initiated BYE (shutdown,
 * revoked certificate) that the sans-IO session leaves to its driver.
 */
import type { DeriveOffThread } from "../../protocol/imap/mime_support.ts";
import type { MailStore } from "../../mailstore/mail_store.ts";
import type { SessionRegistry } from "../../mailstore/session_registry.ts";
import { ImapSession, type SessionLimits } from "../../protocol/imap/mod.ts";
import type { QuotaSource } from "../../protocol/imap/quota.ts";
import type { CertificateIdentity } from "../../protocol/x509/identity.ts";
import type { ByteChannel } from "../connection/channel.ts";
import { CompressionError, DeflateChannel } from "../connection/deflate_channel.ts";
import type { ServerAuthenticator } from "../auth/imap_auth.ts";
import { type Application, type ConnectionContext, listenerLabel } from "../connection/listener.ts";
import { getLogger } from "../log.ts";
import { type Metrics, NO_METRICS, secondsSince } from "../metrics/metrics.ts";
import type { ConnectionInfo } from "../../protocol/tls/mod.ts";
import { TurnBudget } from "./turn_budget.ts";
import { type StepMark, stepProbe } from "./step_probe.ts";
import { type Slot, SlotSet } from "../slot_set.ts";

const log = getLogger(["imap"]);

/** The driver's callbacks of an `ImapSession`. */
type SessionHandlers = Pick<
  ImapSession,
  "onOutput" | "onStartTls" | "onCompress" | "onClientId" | "onClose" | "onCommand"
>;

/** Sets `handlers` on `session` (see `#run` for why not one by one). */
function setHandlers(session: ImapSession, handlers: Partial<SessionHandlers>): void {
  Object.assign(session, handlers);
}

/** Client-chosen text for a log line: printable ASCII only, at most 80 characters. */
function logSafe(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, "?").slice(0, 80);
}

export interface ImapAppOptions {
  readonly store: MailStore;
  readonly auth: ServerAuthenticator;
  readonly limits?: Partial<SessionLimits>;
  /** Closes a connection without traffic for this long, except in IDLE (at least 30 min). */
  readonly idleTimeoutMs: number;
  /** How often a client in IDLE gets an untagged OK so NAT keeps the mapping. */
  readonly idleKeepaliveMs?: number;
  readonly maxConnectionsPerUser: number;
  /**
   * Counts sessions across every node on the same store (PostgreSQL), so that
   * `maxConnectionsPerUser` holds for the cluster and not only for this process.
   */
  readonly sessions?: SessionRegistry;
  /** Greets a connection with a verified certificate as PREAUTH (its mapped user). */
  readonly preauthWithCertificate?: boolean;
  /** The account a verified certificate maps to, for PREAUTH. */
  readonly certificateUser?: (identity: CertificateIdentity) => Promise<string | null>;
  readonly metrics?: Metrics;
  /** Quota figures for QUOTA (RFC 9208) and OVERQUOTA, the ones LMTP delivery enforces. */
  readonly quota?: QuotaSource;
  /** More fields of the ID response (which Worker runs the session). */
  readonly idFields?: Readonly<Record<string, string>>;
  /** Derives large APPENDed messages on another thread (derive_worker.ts). */
  readonly deriveOffThread?: DeriveOffThread;
}

/** A live session, as the revocation re-check, shutdown and the admin socket see it. */
export interface LiveSession {
  readonly identity: CertificateIdentity | null;
  readonly user: string | null;
  bye(text: string): void;
  /** `address:port` of the client. */
  readonly peer: string;
  /** The listener's label, `127.0.0.1:9993/implicit`. */
  readonly listener: string;
  /** Null before STARTTLS. */
  readonly tls: ConnectionInfo | null;
  readonly since: Date;
  readonly mailbox: string | null;
}

/**
 * A session as the admin socket and the certificate re-check see it: one small object whose
 * accessors live on the prototype (an object literal of getters and closures cost each idle
 * session about 1 KiB).
 */
class Live implements LiveSession {
  user: string | null = null;
  session: ImapSession | null = null;
  readonly since = new Date();
  readonly #context: ConnectionContext;
  identity: CertificateIdentity | null;

  constructor(context: ConnectionContext, identity: CertificateIdentity | null) {
    this.#context = context;
    this.identity = identity;
  }

  bye(text: string): void {
    void this.session?.bye(text);
  }

  get peer(): string {
    const c = this.#context;
    return c.remoteAddress.includes(":")
      ? `[${c.remoteAddress}]:${c.remotePort}`
      : `${c.remoteAddress}:${c.remotePort}`;
  }

  get listener(): string {
    return listenerLabel(this.#context.listener);
  }

  get tls(): ConnectionInfo | null {
    return this.#context.tls;
  }

  get mailbox(): string | null {
    return this.session?.selectedMailbox ?? null;
  }
}

/** The session's logger: every line names its connection. */
class ConnectionLogger {
  readonly #id: number;
  constructor(id: number) {
    this.#id = id;
  }
  warn(message: string, props?: Record<string, unknown>): void {
    log.warn(message, { conn: this.#id, ...props });
  }
  error(message: string, props?: Record<string, unknown>): void {
    log.error(message, { conn: this.#id, ...props });
  }
}

/**
 * Output queued beyond this makes the driver stop reading until the client catches up. The
 * kernel's socket buffer (megabytes on loopback) comes on top, so a small figure costs no
 * throughput, while each client that never reads can pin at most about this much memory.
 */
const OUTPUT_HIGH_WATER = 256 * 1024;

export class ImapApplication {
  readonly #options: ImapAppOptions;
  /** Array-backed, as the other per-connection collections here: see slot_set.ts. */
  readonly #sessions = new SlotSet<LiveSession>();
  readonly #perUser = new Map<string, number>();
  /** Commands of all sessions share each event-loop turn (see turn_budget.ts). */
  readonly #turns = new TurnBudget();
  /**
   * Per shutdown signal, how to say BYE to each of its sessions: one listener per signal
   * instead of one per connection (adding and removing an AbortSignal listener was a visible
   * share of a connection's setup under `openssl s_time -new`).
   */
  readonly #byShutdown = new Map<AbortSignal, SlotSet<() => void>>();
  /** The sessions' idle checks, run by one timer for all of them. */
  readonly #idleChecks = new SlotSet<() => void>();
  #idleTimer: ReturnType<typeof setInterval> | null = null;

  constructor(options: ImapAppOptions) {
    this.#options = options;
  }

  /** When the current turn of sessions' commands began (`TurnBudget.turnStart`); -1 between. */
  get turnStart(): number {
    return this.#turns.turnStart;
  }

  /** Every open session (for the certificate re-check and for shutdown). */
  get sessions(): Iterable<LiveSession> {
    return this.#sessions;
  }

  get application(): Application {
    return (context) => this.#run(context);
  }

  async #run(context: ConnectionContext): Promise<void> {
    const options = this.#options;
    const metrics = options.metrics ?? NO_METRICS;
    let user: string | null = null;
    let sessionKey: string | null = null;
    let identity = context.tls?.peer?.identity ?? null;
    const live = new Live(context, identity);
    /** Counts a login (or a PREAUTH greeting) against the per-user connection limit. */
    const claim = async (name: string): Promise<boolean> => {
      const count = this.#perUser.get(name) ?? 0;
      if (count >= options.maxConnectionsPerUser) {
        log.warn("Refused login of {user}: {count} connections already", { user: name, count });
        return false;
      }
      let key: string | null = null;
      if (options.sessions) {
        // On PostgreSQL, the limit counts the sessions of every node.
        key = await options.sessions.claimSession(name, options.maxConnectionsPerUser);
        if (key === null) {
          log.warn("Refused login of {user}: the limit is reached across nodes", { user: name });
          return false;
        }
      }
      if (user !== null) this.#release(user);
      if (sessionKey !== null) void options.sessions?.releaseSession(sessionKey);
      sessionKey = key;
      this.#perUser.set(name, count + 1);
      user = live.user = name;
      context.setUser(name);
      return true;
    };
    // A certificate user over the limit gets the ordinary greeting instead of PREAUTH.
    const preauthCandidate = await this.#preauthUser(identity);
    const preauth = preauthCandidate !== null && await claim(preauthCandidate)
      ? preauthCandidate
      : null;
    const session = new ImapSession({
      store: options.store,
      authenticator: options.auth.forConnection(claim),
      tls: context.tls !== null,
      starttlsAvailable: context.listener.tls === "starttls",
      peer: { address: `${context.remoteAddress}`, identity },
      logger: new ConnectionLogger(context.id),
      ...(options.limits ? { limits: options.limits } : {}),
      ...(options.quota ? { quota: options.quota } : {}),
      compress: true,
      preauth,
      ...(options.idFields ? { idFields: options.idFields } : {}),
      ...(options.deriveOffThread ? { deriveOffThread: options.deriveOffThread } : {}),
    });
    // The handlers are set through object literals, never as `session.onX = () => ...`: V8
    // allocates a function literal assigned straight to a property in the old generation, and
    // such a closure, dead with its connection, keeps everything it reaches (this function's
    // scope: the session, its channel, its buffers) alive through every scavenge until the next
    // full collection. See `tests/pretenured_closures_test.ts`.
    if (metrics !== NO_METRICS) {
      setHandlers(session, {
        onCommand: (name) => {
          const started = performance.now();
          return (result) => metrics.imapCommand(name, result, secondsSince(started));
        },
      });
    }
    /** The bench's probe: the command that the last read completed, and when that read came. */
    type Probed = { name: string | null; readAt: StepMark | null; gateMs: number };
    let probed: Probed | null = null;
    if (stepProbe !== null) {
      const probe: Probed = probed = { name: null, readAt: null, gateMs: 0 };
      const inner = session.onCommand;
      setHandlers(session, {
        onCommand: (name) => {
          probe.name = name;
          return inner(name);
        },
      });
    }

    // Writes go out in order; `queued` counts bytes handed over but not yet written.
    let channel: ByteChannel = context.channel;
    let writing: Promise<void> = Promise.resolve();
    let queued = 0;
    let closing = false;
    let lastActivity = Date.now();
    // `now`: start at once rather than after a turn (for the first write, when nothing waits).
    const write = (data: Uint8Array, now = false) => {
      queued += data.length;
      writing = (now ? channel.write(data) : writing.then(() => channel.write(data))).then(
        () => {
          queued -= data.length;
        },
        () => {
          queued -= data.length;
          closing = true;
        },
      );
    };
    const compression: { channel: DeflateChannel | null } = { channel: null };
    setHandlers(session, {
      // Long responses (FETCH 1:* BODY[]) wait between batches while the client lags behind.
      onOutput: (data) => {
        write(data);
        return queued > OUTPUT_HIGH_WATER ? writing : undefined;
      },
      onClose: () => {
        closing = true;
        // Let the final responses (BYE, tagged OK) reach the client, then end the read loop.
        writing.finally(() => channel.close());
      },
      onClientId: (name, version) => {
        context.annotate("client", logSafe(version === null ? name : `${name}/${version}`));
      },
      onCompress: async () => {
        await writing;
        compression.channel = new DeflateChannel(channel);
        channel = compression.channel;
      },
      onStartTls: async () => {
        await writing;
        channel = await context.startTls();
        identity = live.identity = context.tls?.peer?.identity ?? null;
        session.tlsStarted(identity);
      },
    });

    live.session = session;
    const liveSlot = this.#sessions.add(live);
    const onShutdown = () => void session.bye("Server shutting down");
    const shutdown = this.#onShutdown(context.shutdown);
    const byeSlot = shutdown.add(onShutdown);

    const idleCheck = () => {
      const quiet = Date.now() - lastActivity;
      if (session.idle) {
        if (quiet >= (options.idleKeepaliveMs ?? 120_000)) {
          lastActivity = Date.now();
          void session.keepalive();
        }
      } else if (quiet >= options.idleTimeoutMs) {
        void session.bye("Autologout; idle for too long");
      }
    };
    const idleSlot = this.#watchIdle(idleCheck);

    try {
      // The greeting is sealed before the first read: after the tickets of a TLS 1.3 handshake,
      // which the channel holds back until then, so that both leave in one write.
      write(session.greeting(), true);
      while (!closing) {
        let data: Uint8Array | null;
        try {
          data = await channel.read();
        } catch (e) {
          if (!(e instanceof CompressionError)) throw e;
          log.warn("Closing connection {conn}: {error}", { conn: context.id, error: e.message });
          break;
        }
        if (data === null) break;
        lastActivity = Date.now();
        if (probed !== null) {
          // Records of a peer not logged in yet wait at the handshake gate before the read ends.
          probed.gateMs = (channel as { readGateWaitMs?: number }).readGateWaitMs ?? 0;
          const read = stepProbe!.mark();
          probed.readAt = { at: read.at - probed.gateMs, waitMs: read.waitMs };
        }
        const turn = this.#turns.pass();
        if (turn !== undefined) await turn;
        if (closing) break;
        await session.receive(data);
        if (probed?.name && user !== null) {
          const { name, readAt, gateMs } = probed;
          probed.name = null;
          void writing.then(() => stepProbe!.record(name, readAt!, undefined, gateMs));
        }
        while (queued > OUTPUT_HIGH_WATER && !closing) await writing;
      }
      await writing;
    } finally {
      this.#unwatchIdle(idleSlot);
      if (compression.channel !== null) {
        // Octets COMPRESS=DEFLATE kept off the wire (RFC 4978), for the access log.
        context.annotate("deflateSaved", compression.channel.saved);
      }
      shutdown.delete(byeSlot);
      this.#sessions.delete(liveSlot);
      if (user !== null) this.#release(user);
      if (sessionKey !== null) void options.sessions?.releaseSession(sessionKey);
      session.dispose();
    }
  }

  /** The BYE callbacks of the sessions under `signal`, which says BYE to all of them. */
  #onShutdown(signal: AbortSignal): SlotSet<() => void> {
    let byes = this.#byShutdown.get(signal);
    if (byes === undefined) {
      const set = byes = new SlotSet();
      this.#byShutdown.set(signal, set);
      signal.addEventListener("abort", () => {
        for (const bye of set.items()) bye();
      }, { once: true });
    }
    return byes;
  }

  /**
   * Runs `check` about every period (the shortest of the keep-alive, the idle timeout and
   * 30 s) while the session lives, on one timer shared by every session: a session is checked
   * at most one period late, as with a timer of its own. The timer starts when none runs and
   * ends at a tick that finds no session left (or at `close()`), not with the last session:
   * under clients that connect and leave, as `openssl s_time` does, the sessions often all
   * ended between two handshakes, and each new one set up a timer (an object and an entry in
   * Deno's map of timers) that the next cleared.
   */
  #watchIdle(check: () => void): Slot<() => void> {
    const slot = this.#idleChecks.add(check);
    if (this.#idleTimer !== null) return slot;
    const options = this.#options;
    this.#idleTimer = setInterval(
      () => {
        if (this.#idleChecks.size === 0) return this.close();
        for (const c of this.#idleChecks.items()) c();
      },
      Math.min(options.idleKeepaliveMs ?? 120_000, options.idleTimeoutMs, 30_000),
    );
    return slot;
  }

  #unwatchIdle(slot: Slot<() => void>): void {
    this.#idleChecks.delete(slot);
  }

  /** Whether the sessions' idle timer runs (for the tests). */
  get idleTimerRunning(): boolean {
    return this.#idleTimer !== null;
  }

  /**
   * Stops the sessions' idle timer (after the last session, at shutdown); a session that
   * starts afterwards starts it again.
   */
  close(): void {
    if (this.#idleTimer === null) return;
    clearInterval(this.#idleTimer);
    this.#idleTimer = null;
  }

  async #preauthUser(identity: CertificateIdentity | null): Promise<string | null> {
    if (!this.#options.preauthWithCertificate || identity === null) return null;
    const name = (await this.#options.certificateUser?.(identity)) ?? null;
    this.#options.metrics?.authentication("preauth", name === null ? "invalid" : "ok");
    return name;
  }

  #release(name: string): void {
    const left = (this.#perUser.get(name) ?? 1) - 1;
    if (left <= 0) this.#perUser.delete(name);
    else this.#perUser.set(name, left);
  }
}
