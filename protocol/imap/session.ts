/**
 * The sans-IO IMAP session (RFC 9051, Section 3): it takes the client's bytes, runs commands in
 * order against the injected `MailStore` and authenticator, and hands back response bytes.
 * It never touches sockets or timers; the driver in `server/` moves bytes and starts TLS.
 */
import { Pacer } from "../event_loop.ts";
import { type SortKeyCache, sortKeyCacheFor } from "./sort_cache.ts";
import type { QuotaSource } from "./quota.ts";
import {
  MAX_UPDATE_CONTEXTS,
  MAX_UPDATE_UIDS,
  type SearchUpdates,
  type UpdateContext,
  updateLine,
} from "./search_context.ts";
import type { MailboxView } from "./mailbox_view.ts";
import type { Account, MailStore } from "../../mailstore/mail_store.ts";
import { MailStoreError } from "../../mailstore/mail_store.ts";
import type { CertificateIdentity } from "../x509/identity.ts";
import type { AuthContext, ImapAuthenticator } from "./auth.ts";
import { capabilities, type CapabilityInputs } from "./capabilities.ts";
import { COMMANDS } from "./commands/mod.ts";
import { continueAuthenticate } from "./commands/authenticate.ts";
import { continueIdle } from "./commands/idle.ts";
import {
  type CommandContext,
  type Completion,
  defaultLimits,
  type ImapLogger,
  type Pending,
  type SessionLimits,
  type SessionState,
} from "./context.ts";
import { ImapError } from "./errors.ts";
import type { MimeSupport } from "./fetch_items.ts";
import { createMimeSupport, type DeriveOffThread } from "./mime_support.ts";
import { decodeMutf7, encodeMutf7, Mutf7Error } from "./mutf7.ts";
import { CommandReader } from "./parser.ts";
import { CommandReceiver, type RawCommand, type ReceiverEvent } from "./receiver.ts";
import { FIRST_FLUSH, FLUSH_THRESHOLD, isAscii, mappedPart, Output } from "./response.ts";

/** Output of pipelined commands gathered before it is handed to the driver. */
const PIPELINED_OUTPUT_BATCH = 16 * 1024;
/** First and longest wait before an IDLE update the store could not serve is tried again. */
const IDLE_RETRY_MIN_MS = 500;
const IDLE_RETRY_MAX_MS = 30_000;

/** Everything a session is given by its driver. */
export interface SessionOptions {
  readonly store: MailStore;
  readonly authenticator: ImapAuthenticator;
  /** True on an implicit-TLS connection. */
  readonly tls: boolean;
  /** True when the listener offers STARTTLS on this plaintext connection. */
  readonly starttlsAvailable: boolean;
  readonly peer: { readonly address: string; readonly identity: CertificateIdentity | null };
  readonly logger?: ImapLogger;
  readonly limits?: Partial<SessionLimits>;
  /** Account name for a PREAUTH greeting (RFC 9051, Section 7.1.4), e.g. a trusted socket. */
  readonly preauth?: string | null;
  /**
   * ENVELOPE, BODYSTRUCTURE, numeric sections, BINARY and search text; see `MimeSupport`.
   * Defaults to a new `createMimeSupport()` (protocol/imap/mime/) for the session; `{}` turns
   * those items off.
   */
  readonly mime?: MimeSupport;
  /**
   * Derives the stored data of a large APPENDed message on another thread; used only with the
   * default `mime`, whose results it gives.
   */
  readonly deriveOffThread?: DeriveOffThread;
  /** SORT and THREAD keys; defaults to the cache shared by all sessions over `store`. */
  readonly sortKeys?: SortKeyCache;
  /** Quota figures (RFC 9208); QUOTA is advertised and enforced only with one. */
  readonly quota?: QuotaSource;
  /** The driver can compress the connection: COMPRESS=DEFLATE (RFC 4978) is offered. */
  readonly compress?: boolean;
  /** Name in the greeting. */
  readonly serverName?: string;
  /**
   * Milliseconds a long command (FETCH 1:*, SEARCH) works before it yields to the event loop;
   * default `sliceMs()` of protocol/event_loop.ts. 0 yields at every step (tests).
   */
  readonly sliceMs?: number;
  /**
   * More fields of the ID response (RFC 2971) for authenticated clients, such as which of the
   * server's accept loops runs the session. Names and values are letters, digits and `-`.
   */
  readonly idFields?: Readonly<Record<string, string>>;
}

const silentLogger: ImapLogger = { warn() {}, error() {} };

const STORE_CODES: Record<MailStoreError["code"], string> = {
  nonexistent: "NONEXISTENT",
  alreadyexists: "ALREADYEXISTS",
  cannot: "CANNOT",
  limit: "LIMIT",
  inuse: "INUSE",
};

/** Result of a command run, for the session's bookkeeping. */
type Outcome = "ok" | "no" | "bad" | "pending";

/**
 * The default of every driver callback. Shared: a class field's function literal is allocated
 * in the old generation once per session.
 */
const IGNORE = (): void => {};
const IGNORE_RESULT = () => IGNORE;

/**
 * The encoded `* OK` greetings, by what they say: every connection of a listener gets the same
 * one, and building it (the capability list, its encoding) took about 3 µs per connection, most
 * of a session's construction. Bounded: the keys come from the configuration, a handful at most.
 */
const GREETINGS = new Map<string, Uint8Array>();
const MAX_GREETINGS = 32;

/** A step run once a command's responses are out (`ImapSession.#afterCompletion`). */
type AfterCompletion = "close" | "startTls" | "compress" | "tooManyAuthFailures";

/** Commands whose purpose is to ask for updates: they wait for changes still on their way. */
const POLLS: ReadonlySet<string> = new Set(["NOOP", "CHECK"]);

/**
 * One IMAP connection's protocol state. See `mod.ts` for the driver contract.
 */
export class ImapSession {
  /**
   * Receives every batch of bytes to write to the client. A driver may return a promise that
   * settles once the bytes are written; a long FETCH then waits for it between batches. A
   * large literal comes as a call of its own with the caller's array (possibly a view of stored
   * data): write the calls in order and never modify the bytes.
   */
  onOutput: (data: Uint8Array) => void | Promise<void> = IGNORE;
  /** Called after the tagged OK of STARTTLS; the driver upgrades, then calls `tlsStarted()`. */
  onStartTls: () => Promise<void> | void = IGNORE;
  /**
   * Called after the tagged OK of COMPRESS DEFLATE (RFC 4978) has been handed to `onOutput`;
   * the driver compresses every later write and inflates every later read. Set
   * `SessionOptions.compress` so that the session offers it.
   */
  onCompress: () => Promise<void> | void = IGNORE;
  /** Called with the client's ID name and version (RFC 2971), for the access log. */
  onClientId: (name: string, version: string | null) => void = IGNORE;
  /** Called once when the session wants the connection closed. */
  onClose: () => void = IGNORE;
  /**
   * Called as a command starts, with its name as the command table spells it (`UID FETCH`; ""
   * when none could be read). The function it returns is called once the command has its
   * tagged response. For metrics; the driver measures time, the session stays clock-free.
   */
  onCommand: (name: string) => (result: "ok" | "no" | "bad") => void = IGNORE_RESULT;

  readonly #store: MailStore;
  readonly #authenticator: ImapAuthenticator;
  readonly #limits: SessionLimits;
  readonly #logger: ImapLogger;
  /** MIME support as given; the default is built at first use (an idle session needs none). */
  readonly #mimeGiven: MimeSupport | undefined;
  #mimeBuilt: MimeSupport | null = null;
  readonly #sortKeys: SortKeyCache;
  readonly #quota: QuotaSource | null;
  readonly #deriveOffThread: DeriveOffThread | null;
  readonly #compressOffered: boolean;
  #compressed = false;
  readonly #starttlsAvailable: boolean;
  readonly #peerAddress: string;
  readonly #serverName: string;
  readonly #idFields: Readonly<Record<string, string>>;
  #tls: boolean;
  #identity: CertificateIdentity | null;
  #state: SessionState = { kind: "notAuthenticated" };
  #pending: Pending | null = null;
  /** The tag of the command in progress, and the context commands see (built once). */
  #tag = "*";
  /** The output size at which the command in progress flushes early (`maybeFlush`). */
  #flushAt = FIRST_FLUSH;
  #ctx: CommandContext | null = null;
  /** Made at the first bytes (a connection that closes after the greeting needs none). */
  #receiver: CommandReceiver | null = null;
  #queue: Promise<void> = Promise.resolve();
  #out = new Output();
  readonly #sliceMs: number | undefined;
  /** Output taken but not yet handed to the driver (it asked to wait before a large part). */
  #parts: Uint8Array[] = [];
  #handing: Promise<void> | undefined = undefined;
  #enabled = new Set<string>();
  #badBeforeLogin = 0;
  #commandsBeforeLogin = 0;
  #authFailures = 0;
  #awaitingTls = false;
  #upgrade: Promise<void> | null = null;
  #closed = false;
  /** The timer of an IDLE update to try again (see `#onViewNotice`). */
  #idleRetry: ReturnType<typeof setTimeout> | null = null;
  #idleRetryMs = IDLE_RETRY_MIN_MS;
  /** What to do once the current command's responses are out (a name, not a closure: see #runAfter). */
  #afterCompletion: AfterCompletion | null = null;
  #savedSearch: readonly number[] = [];
  /** Results kept up to date (RFC 5267, Section 4.3), and whether the mailbox changed since. */
  #updates: UpdateContext[] = [];
  #updatesDirty = false;
  #finishPending: ((result: "ok" | "no" | "bad") => void) | null = null;
  readonly #preauth: string | null;

  constructor(options: SessionOptions) {
    this.#store = options.store;
    this.#authenticator = options.authenticator;
    this.#limits = { ...defaultLimits, ...options.limits };
    this.#logger = options.logger ?? silentLogger;
    this.#mimeGiven = options.mime;
    this.#sortKeys = options.sortKeys ?? sortKeyCacheFor(options.store);
    this.#quota = options.quota ?? null;
    this.#deriveOffThread = options.mime === undefined ? options.deriveOffThread ?? null : null;
    this.#compressOffered = options.compress ?? false;
    this.#tls = options.tls;
    this.#starttlsAvailable = options.starttlsAvailable;
    this.#identity = options.peer.identity;
    this.#peerAddress = options.peer.address;
    this.#serverName = options.serverName ?? "Postern";
    this.#sliceMs = options.sliceMs;
    this.#idFields = options.idFields ?? {};
    this.#preauth = options.preauth ?? null;
  }

  /** True while the client is in IDLE, for the driver's idle-timeout policy. */
  get idle(): boolean {
    return this.#pending?.kind === "idle";
  }

  /** The current state's kind, for logs and metrics. */
  get stateKind(): SessionState["kind"] {
    return this.#state.kind;
  }

  /** The selected mailbox's name, or null outside the selected state. */
  get selectedMailbox(): string | null {
    return this.#state.kind === "selected" ? this.#state.view.name : null;
  }

  /** True once the session has closed (after LOGOUT, BYE or a fatal input error). */
  get closed(): boolean {
    return this.#closed;
  }

  /** Octets received but not yet processed; a driver may stop reading while this is large. */
  get bufferedInput(): number {
    return this.#receiver?.buffered ?? 0;
  }

  /** The server greeting (RFC 9051, Section 7.1.1 and 7.1.4). */
  greeting(): Uint8Array {
    if (this.#preauth !== null) {
      const name = this.#preauth;
      this.#schedule(async () => {
        const account = await this.#loadAccount(name);
        this.#state = { kind: "authenticated", account };
      });
      return this.#greetingBytes("PREAUTH", true);
    }
    // The key holds all that the text depends on: the capabilities' inputs and the name. Each
    // session gets a copy: a driver may encrypt what it is given in place.
    const key = JSON.stringify(this.#capsInputs(false)) + this.#serverName;
    let bytes = GREETINGS.get(key);
    if (bytes === undefined) {
      bytes = this.#greetingBytes("OK", false);
      if (GREETINGS.size < MAX_GREETINGS) GREETINGS.set(key, bytes);
    }
    return bytes.slice();
  }

  #greetingBytes(status: "OK" | "PREAUTH", authenticated: boolean): Uint8Array {
    const out = new Output();
    const caps = this.#caps(authenticated).join(" ");
    out.line(`* ${status} [CAPABILITY ${caps}] ${this.#serverName} ready`);
    return out.take();
  }

  /**
   * Queues client bytes; commands run one after another. The promise settles when everything
   * received so far has been processed (a driver may await it for back-pressure).
   */
  receive(data: Uint8Array): Promise<void> {
    if (this.#closed || this.#awaitingTls) return Promise.resolve();
    const receiver = this.#receiver ??= this.#newReceiver();
    receiver.push(data);
    // A driver that does not await receive() must not make the backlog unbounded.
    if (receiver.buffered > this.#limits.maxLiteral * 2 + 1024 * 1024) {
      return this.bye("Too much unprocessed input");
    }
    return this.#schedule(() => this.#process());
  }

  /** The driver finished the TLS handshake after STARTTLS. */
  tlsStarted(identity: CertificateIdentity | null = null): void {
    this.#tls = true;
    this.#identity = identity;
    this.#awaitingTls = false;
    this.#receiver = null;
  }

  /** Server-initiated end (shutdown, revoked certificate): `* BYE` and close. */
  bye(text: string): Promise<void> {
    return this.#schedule(() => {
      if (this.#closed) return;
      this.#out.line(`* BYE ${text}`);
      this.#close();
    });
  }

  /**
   * Sends `* OK Still here` while the client is in IDLE, so that NAT and firewalls keep the
   * connection open; the driver calls it every few minutes (RFC 2177 suggests under 30).
   */
  keepalive(): Promise<void> {
    return this.#schedule(() => {
      if (this.#closed || this.#pending?.kind !== "idle") return;
      this.#out.line("* OK Still here");
      this.#flush();
    });
  }

  /** Stops watching the store; call when the connection is gone. */
  dispose(): void {
    if (this.#idleRetry !== null) clearTimeout(this.#idleRetry);
    this.#idleRetry = null;
    if (this.#state.kind === "selected") this.#state.view.close();
    this.#closed = true;
  }

  #newReceiver(): CommandReceiver {
    const limits = this.#limits;
    return new CommandReceiver((name) => {
      if (this.#state.kind === "notAuthenticated") return limits.maxLiteralBeforeLogin;
      return name === "APPEND" ? limits.maxLiteral : limits.maxOtherLiteral;
    }, () => {
      const maxLiteralSkip = Math.max(limits.maxLiteral * 2, 16 * 1024 * 1024);
      if (this.#state.kind === "notAuthenticated") {
        return {
          maxLineLength: Math.min(limits.maxLineLength, limits.maxCommandBeforeLogin),
          maxCommandSize: limits.maxCommandBeforeLogin,
          maxLiteralsPerCommand: limits.maxLiteralsBeforeLogin,
          maxLiteralSkip,
        };
      }
      return {
        maxLineLength: limits.maxLineLength,
        maxCommandSize: limits.maxLiteral + limits.maxLineLength * 4,
        maxLiteralsPerCommand: limits.maxLiteralsPerCommand,
        maxLiteralSkip,
      };
    });
  }

  #schedule(task: () => Promise<void> | void): Promise<void> {
    const run = this.#queue.then(task).catch((e) => {
      this.#logger.error("IMAP session task failed", { error: String(e) });
      if (!this.#closed) {
        try {
          this.#out.line("* BYE Internal server error");
          this.#close();
        } catch (closeError) {
          // The driver's own callbacks failed; there is nobody left to tell.
          this.#closed = true;
          this.#logger.error("IMAP session close failed", { error: String(closeError) });
        }
      }
    });
    this.#queue = run;
    return run;
  }

  async #process(): Promise<void> {
    // Pipelined commands in one read run one after another in microtasks, and every session's
    // read of the same turn interleaves with them: 16 KiB of pipelined CAPABILITYs from a few
    // clients kept the thread 30 ms from its timers and sockets (the hostile bench). So the
    // commands of one read are paced as a long command's steps are.
    let pacer: Pacer | null = null;
    while (!this.#closed && !this.#awaitingTls) {
      const event = this.#receiver?.next() ?? null;
      if (event === null) break;
      pacer ??= new Pacer(this.#sliceMs);
      await this.#onEvent(event);
      // Answers to pipelined commands go out together (one write, not one per command) once
      // they add up, and always when the input runs dry (after the loop). Back-pressure applies
      // between commands too: a client that pipelines commands and never reads the answers
      // must not make the server queue the answers to all of them.
      if (this.#out.size >= PIPELINED_OUTPUT_BATCH) {
        const written = this.#flush();
        if (written !== undefined) await written.catch(() => {});
      }
      const upgrade = this.#upgrade;
      if (upgrade !== null) {
        // receive() settles only after the upgrade, so the driver never reads plaintext from
        // the socket while the TLS handshake is using it.
        this.#upgrade = null;
        try {
          await upgrade;
        } catch (e) {
          this.#logger.warn("Connection upgrade failed", { error: String(e) });
          this.#close();
        }
      }
      if (pacer.due()) {
        // The answers so far leave before the pause, not after it.
        this.#flush();
        await pacer.yield();
      }
    }
    this.#flush();
  }

  async #onEvent(event: ReceiverEvent): Promise<void> {
    switch (event.kind) {
      case "command":
        if (this.#state.kind === "notAuthenticated" && this.#pending === null) {
          // A real client needs a handful of commands before it logs in; thousands of them
          // (pipelined by a client that may never read the answers) are only load.
          if (++this.#commandsBeforeLogin > this.#limits.maxCommandsBeforeLogin) {
            this.#out.line("* BYE Too many commands before login");
            this.#close();
            return;
          }
        }
        return await this.#onCommand(event.command);
      case "continue":
        this.#out.line("+ Ready for literal data");
        return;
      case "reject":
        if (this.#pending !== null) {
          const tag = this.#pending.tag;
          this.#pending = null;
          this.#out.line(`${tag} BAD Invalid continuation`);
          return;
        }
        this.#tagged(event.tag, event.status, event.code, event.text);
        this.onCommand("")(event.status === "BAD" ? "bad" : "no");
        if (event.status === "BAD") this.#countBad();
        return;
      case "fatal":
        this.#out.line(`* BYE [ALERT] ${event.text}`);
        this.#close();
        return;
      default: {
        const never: never = event;
        return never;
      }
    }
  }

  async #onCommand(raw: RawCommand): Promise<void> {
    const pending = this.#pending;
    if (pending !== null) return await this.#onContinuation(pending, raw);
    const r = new CommandReader(raw.parts, this.#limits.maxListDepth);
    if (r.atEnd()) return;
    let tag = "*";
    let name = "";
    let outcome: Outcome;
    let finish: ((result: "ok" | "no" | "bad") => void) | null = null;
    try {
      tag = r.tag();
      r.sp();
      name = r.keyword("command name");
      if (name === "UID") {
        r.sp();
        name = "UID " + r.keyword("command name");
      }
      finish = this.onCommand(name);
      const spec = COMMANDS.get(name);
      if (spec === undefined) throw new ImapError("BAD", "Unknown command");
      if (!spec.states.includes(this.#state.kind)) {
        throw new ImapError("BAD", `${name} is not allowed in this state`);
      }
      const ctx = this.#context(tag);
      const completion = await spec.run(ctx, r);
      outcome = completion === null ? "pending" : "ok";
      if (completion !== null) {
        const expunged = await this.#syncView(spec.allowsExpunge, POLLS.has(name));
        this.#complete(tag, await this.#withHighestModseq(completion, expunged));
      }
    } catch (e) {
      outcome = await this.#fail(tag, name, e, COMMANDS.get(name)?.allowsExpunge ?? false);
    }
    if (outcome === "pending") this.#finishPending = finish;
    else (finish ?? this.onCommand(name))(outcome);
    this.#afterCommand(outcome);
  }

  async #onContinuation(pending: Pending, raw: RawCommand): Promise<void> {
    this.#pending = null;
    const finish = this.#finishPending ?? this.onCommand("");
    this.#finishPending = null;
    const first = raw.parts[0];
    const line = raw.parts.length === 1 && first?.kind === "text"
      ? new TextDecoder("latin1").decode(first.bytes)
      : null;
    let outcome: Outcome;
    try {
      if (line === null) throw new ImapError("BAD", "Unexpected literal in continuation");
      const completion: Completion = pending.kind === "idle"
        ? continueIdle(line)
        : await continueAuthenticate(this.#context(pending.tag), pending, line);
      outcome = "ok";
      const expunged = pending.kind === "idle" && await this.#syncView(true, true);
      this.#complete(pending.tag, await this.#withHighestModseq(completion, expunged));
    } catch (e) {
      outcome = await this.#fail(pending.tag, pending.kind, e, pending.kind === "idle");
    }
    finish(outcome === "pending" ? "ok" : outcome);
    this.#afterCommand(outcome);
  }

  #complete(tag: string, c: Completion): void {
    this.#tagged(tag, "OK", c.code ?? null, c.text);
  }

  #tagged(tag: string, status: string, code: string | null, text: string): void {
    this.#out.line(`${tag} ${status} ${code !== null ? `[${code}] ` : ""}${text}`);
  }

  async #fail(tag: string, name: string, e: unknown, allowExpunge: boolean): Promise<Outcome> {
    let error: ImapError;
    if (e instanceof ImapError) error = e;
    else if (e instanceof MailStoreError) {
      error = new ImapError("NO", e.message, STORE_CODES[e.code]);
    } else {
      this.#logger.error("IMAP command failed", { command: name, error: String(e) });
      error = new ImapError("NO", "Internal server error", "SERVERBUG");
    }
    if (error.status === "NO") {
      try {
        await this.#syncView(allowExpunge);
      } catch (syncError) {
        this.#logger.error("IMAP update failed", { error: String(syncError) });
      }
    }
    this.#tagged(tag, error.status, error.code, error.message);
    return error.status === "NO" ? "no" : "bad";
  }

  #afterCommand(outcome: Outcome): void {
    if (outcome === "bad") this.#countBad();
    this.#runAfter();
  }

  /**
   * Runs the pending `#afterCompletion`. It is a name rather than a closure kept in a field:
   * V8 allocates a function literal assigned straight to a property in the old generation, and
   * the session it captures would outlive the connection until the next full collection.
   */
  #runAfter(): void {
    const after = this.#afterCompletion;
    this.#afterCompletion = null;
    switch (after) {
      case null:
        return;
      case "close":
        return this.#close();
      case "startTls":
        return this.#startTls();
      case "compress":
        return this.#startCompress();
      case "tooManyAuthFailures":
        this.#out.line("* BYE Too many failed authentications");
        return this.#close();
    }
  }

  #countBad(): void {
    if (this.#state.kind !== "notAuthenticated") return;
    if (++this.#badBeforeLogin >= this.#limits.maxUnknownBeforeLogin) {
      this.#out.line("* BYE Too many invalid commands");
      this.#close();
    }
  }

  /**
   * After QRESYNC, a command whose responses reported expunges ends with the mailbox's new
   * HIGHESTMODSEQ in its tagged OK (RFC 7162, Section 3.2.10), unless it has a code already.
   */
  async #withHighestModseq(c: Completion, expunged: boolean): Promise<Completion> {
    const state = this.#state;
    if (!expunged || c.code !== undefined || !this.#enabled.has("QRESYNC")) return c;
    if (state.kind !== "selected") return c;
    const mailbox = await this.#store.getMailbox(state.account.id, state.view.name);
    if (mailbox === null || mailbox.id !== state.view.mailboxId) return c;
    return { code: `HIGHESTMODSEQ ${mailbox.highestModseq}`, text: c.text };
  }

  /**
   * Reports changes to the selected mailbox; a deleted mailbox ends the session. Resolves true
   * when expunges were reported.
   */
  async #syncView(allowExpunge: boolean, settle = false): Promise<boolean> {
    const state = this.#state;
    if (state.kind !== "selected") return false;
    // A command that asks for updates (NOOP, CHECK, the end of IDLE) first hears the changes
    // acknowledged on another Worker or node before now, so that its answer includes them.
    // Other commands report what has arrived (on PostgreSQL, settling is a round trip).
    if (settle) await this.#store.settle?.();
    if (state.view.deleted) {
      this.#out.line("* BYE Selected mailbox was deleted");
      this.#afterCompletion = "close";
      return false;
    }
    const refresh = allowExpunge && this.#updatesDirty && this.#updates.length > 0;
    const touched = allowExpunge ? state.view.takeTouched() : new Set<number>();
    // Sequence-number results lose expunged messages before their EXPUNGE renumbers the rest.
    if (refresh) {
      await this.#refreshUpdates(state.view, this.#updates.filter((u) => !u.uid), touched);
    }
    const expunged = await state.view.sync(this.#store, this.#out, {
      allowExpunge,
      condstore: this.#enabled.has("CONDSTORE"),
      qresync: this.#enabled.has("QRESYNC"),
    });
    if (refresh) {
      this.#updatesDirty = false;
      await this.#refreshUpdates(state.view, this.#updates, touched);
    }
    return expunged;
  }

  /**
   * Recomputes results kept up to date and reports what changed as ESEARCH ADDTO and
   * REMOVEFROM (RFC 5267, Section 4.3), when expunges may be reported too.
   */
  async #refreshUpdates(
    view: MailboxView,
    contexts: readonly UpdateContext[],
    touched: ReadonlySet<number>,
  ): Promise<void> {
    for (const context of [...contexts]) {
      const after = await context.compute(this.#context(context.tag), context.results, touched);
      const line = updateLine(
        context,
        after,
        (uid) => context.uid ? uid : view.seqOf(uid),
        context.incremental ? touched : undefined,
      );
      context.results = after;
      if (line !== null) this.#out.line(line);
    }
  }

  /** Hands queued output to the driver; returns its promise when it asks us to wait. */
  #flush(): Promise<void> | undefined {
    if (this.#out.size === 0) return this.#handing;
    return this.#hand();
  }

  /**
   * Hands the queued output to the driver, a large literal as a part of its own (see
   * `Output.takeParts`); returns the last promise the driver asked us to wait on.
   */
  #hand(): Promise<void> | undefined {
    for (const part of this.#out.takeParts()) this.#parts.push(part);
    return this.#handing ?? this.#handParts();
  }

  /**
   * Hands the queued parts over in order; when the driver asks to wait (a promise) with more
   * parts queued, the rest follow once it settles, and later output queues behind them.
   */
  #handParts(): Promise<void> | undefined {
    while (this.#parts.length > 0) {
      const written: unknown = this.onOutput(mappedPart(this.#parts.shift()!));
      if (!(written instanceof Promise)) continue;
      // A failed write is the driver's to notice (its read loop ends); never an unhandled error.
      written.catch(() => {});
      if (this.#parts.length === 0) return written;
      const rest = (async () => {
        try {
          await written;
        } catch (error) {
          this.#parts = [];
          throw error;
        } finally {
          this.#handing = undefined;
        }
        await this.#handParts();
      })();
      rest.catch(() => {});
      this.#handing = rest;
      return rest;
    }
    return undefined;
  }

  #close(): void {
    if (this.#closed) {
      return;
    }
    this.#flush();
    this.dispose();
    this.#pending = null;
    this.onClose();
  }

  #setState(next: SessionState): void {
    const prev = this.#state;
    if (prev.kind === "selected" && (next.kind !== "selected" || next.view !== prev.view)) {
      prev.view.close();
      // The saved search result belongs to the mailbox it was made in (RFC 5182, Section 2.1),
      // and so do search contexts (RFC 5267, Section 4.3).
      this.#savedSearch = [];
      this.#updates = [];
    }
    if (
      next.kind === "selected" && prev.kind !== "selected" || (
        next.kind === "selected" && prev.kind === "selected" && next.view !== prev.view
      )
    ) {
      const view = next.kind === "selected" ? next.view : null;
      if (view !== null) {
        view.onNotice = this.#noticeListener();
      }
    }
    this.#state = next;
  }

  /** What the selected view calls on a change (returned, not assigned in place: see #runAfter). */
  #noticeListener(): () => void {
    return () => {
      this.#updatesDirty = true;
      this.#onViewNotice();
    };
  }

  /**
   * A change arrived for the selected mailbox; during IDLE it is reported at once. When the
   * store cannot be read (a database restart), the changes stay queued and the report is tried
   * again later, backing off; the session goes on.
   */
  #onViewNotice(): void {
    if (this.#pending?.kind !== "idle" || this.#idleRetry !== null) return;
    void this.#schedule(async () => {
      if (this.#pending?.kind !== "idle") return;
      try {
        await this.#syncView(true);
        this.#idleRetryMs = IDLE_RETRY_MIN_MS;
      } catch (e) {
        this.#logger.warn("IDLE update deferred: the store could not be read", {
          error: String(e),
          retryMs: this.#idleRetryMs,
        });
        this.#idleRetry = setTimeout(() => {
          this.#idleRetry = null;
          if (!this.#closed) this.#onViewNotice();
        }, this.#idleRetryMs);
        this.#idleRetryMs = Math.min(this.#idleRetryMs * 2, IDLE_RETRY_MAX_MS);
      }
      this.#flush();
      this.#runAfter();
    });
  }

  /**
   * The store account of an authenticated name. A directory user without one gets it created
   * on first login (with the default mailboxes); a concurrent first login may win the race.
   */
  async #loadAccount(name: string): Promise<Account> {
    const existing = await this.#store.getAccount(name);
    if (existing !== null) return existing;
    try {
      return await this.#store.createAccount(name, null);
    } catch (e) {
      const raced = e instanceof MailStoreError && e.code === "alreadyexists"
        ? await this.#store.getAccount(name)
        : null;
      if (raced === null) throw e;
      return raced;
    }
  }

  #caps(authenticated: boolean): string[] {
    return capabilities(this.#capsInputs(authenticated));
  }

  /** Everything the capability list depends on (`capabilities` reads nothing else). */
  #capsInputs(authenticated: boolean): CapabilityInputs {
    return {
      tls: this.#tls,
      starttlsAvailable: this.#starttlsAvailable,
      hasIdentity: this.#identity !== null,
      authenticated,
      binary: this.#mimeGiven === undefined || this.#mimeGiven.binary !== undefined,
      preview: this.#mimeGiven === undefined || this.#mimeGiven.preview !== undefined,
      quota: this.#quota !== null,
      compress: this.#compressOffered && !this.#compressed,
      appendLimit: this.#limits.maxLiteral,
    };
  }

  /** The context of the command tagged `tag`: one object per session, built on first use. */
  #context(tag: string): CommandContext {
    this.#tag = tag;
    this.#flushAt = FIRST_FLUSH;
    return this.#ctx ??= this.#buildContext();
  }

  get #mime(): MimeSupport {
    return this.#mimeBuilt ??= this.#mimeGiven ?? createMimeSupport();
  }

  #buildContext(): CommandContext {
    return new ImapSession.#Context(this);
  }

  /**
   * The context commands see: one small object per session whose accessors and methods live on
   * the prototype (an object literal of getters and arrow functions cost each idle session
   * about 3.5 KiB of closures and dictionary properties).
   */
  static readonly #Context = class SessionContext implements CommandContext {
    readonly #s: ImapSession;
    constructor(session: ImapSession) {
      this.#s = session;
    }
    get tag(): string {
      return this.#s.#tag;
    }
    get store(): MailStore {
      return this.#s.#store;
    }
    get authenticator(): ImapAuthenticator {
      return this.#s.#authenticator;
    }
    get mime(): MimeSupport {
      return this.#s.#mime;
    }
    get deriveOffThread(): DeriveOffThread | null {
      return this.#s.#deriveOffThread;
    }
    get sortKeys(): SortKeyCache {
      return this.#s.#sortKeys;
    }
    get quota(): QuotaSource | null {
      return this.#s.#quota;
    }
    get limits(): SessionLimits {
      return this.#s.#limits;
    }
    get out(): Output {
      return this.#s.#out;
    }
    get idFields(): Readonly<Record<string, string>> {
      return this.#s.#idFields;
    }
    get authContext(): AuthContext {
      return { peer: this.#s.#peerAddress, tls: this.#s.#tls };
    }
    get state(): SessionState {
      return this.#s.#state;
    }
    setState(next: SessionState): void {
      this.#s.#setState(next);
    }
    flush(): void {
      this.#s.#flush();
    }
    pacer(): Pacer {
      return new Pacer(this.#s.#sliceMs);
    }
    flushDue(pending = 0): boolean {
      const s = this.#s;
      return s.#out.size + pending >= s.#flushAt;
    }
    async maybeFlush(): Promise<void> {
      const s = this.#s;
      if (s.#out.size < s.#flushAt) return;
      s.#flushAt = Math.min(FLUSH_THRESHOLD, 2 * s.#flushAt);
      const written = s.#hand();
      if (written !== undefined) await written;
    }
    get tls(): boolean {
      return this.#s.#tls;
    }
    get identity(): CertificateIdentity | null {
      return this.#s.#identity;
    }
    get enabled(): ReadonlySet<string> {
      return this.#s.#enabled;
    }
    enable(name: string): void {
      this.#s.#enabled.add(name.toUpperCase());
    }
    async enableCondstore(): Promise<void> {
      const s = this.#s;
      if (s.#enabled.has("CONDSTORE")) return;
      s.#enabled.add("CONDSTORE");
      const state = s.#state;
      if (state.kind !== "selected") return;
      const mailbox = await s.#store.getMailbox(state.account.id, state.view.name);
      if (mailbox === null || mailbox.id !== state.view.mailboxId) return;
      s.#out.line(`* OK [HIGHESTMODSEQ ${mailbox.highestModseq}] Highest`);
    }
    get rev2(): boolean {
      return this.#s.#enabled.has("IMAP4REV2");
    }
    get condstore(): boolean {
      return this.#s.#enabled.has("CONDSTORE");
    }
    get qresync(): boolean {
      return this.#s.#enabled.has("QRESYNC");
    }
    get utf8(): boolean {
      const enabled = this.#s.#enabled;
      return enabled.has("IMAP4REV2") || enabled.has("UTF8=ACCEPT");
    }
    capabilities(): string[] {
      return this.#s.#caps(this.#s.#state.kind !== "notAuthenticated");
    }
    mailboxFromClient(name: string, strict = false): string {
      return this.#s.#mailboxFromClient(name, strict);
    }
    mailboxToClient(name: string): string {
      return this.#s.#mailboxToClient(name);
    }
    awaitInput(pending: Pending): void {
      this.#s.#pending = pending;
    }
    requestStartTls(): void {
      this.#s.#afterCompletion = "startTls";
    }
    get compressed(): boolean {
      return this.#s.#compressed;
    }
    clientIdentified(name: string, version: string | null): void {
      this.#s.onClientId(name, version);
    }
    requestCompress(): void {
      this.#s.#afterCompletion = "compress";
    }
    requestClose(): void {
      this.#s.#afterCompletion = "close";
    }
    authFailed(): void {
      const s = this.#s;
      if (++s.#authFailures >= s.#limits.maxAuthFailures) {
        s.#afterCompletion = "tooManyAuthFailures";
      }
    }
    loadAccount(name: string): Promise<Account> {
      return this.#s.#loadAccount(name);
    }
    warn(message: string, props?: Record<string, unknown>): void {
      this.#s.#logger.warn(message, props);
    }
    get savedSearch(): readonly number[] {
      return this.#s.#savedSearch;
    }
    set savedSearch(uids: readonly number[]) {
      this.#s.#savedSearch = uids;
    }
    get searchUpdates(): SearchUpdates {
      const s = this.#s;
      return {
        add: (context) => {
          const others = s.#updates.filter((u) => u.tag !== context.tag);
          if (others.length >= MAX_UPDATE_CONTEXTS) return false;
          const held = others.reduce((n, u) => n + u.results.length, context.results.length);
          if (held > MAX_UPDATE_UIDS) return false;
          s.#updates = [...others, context];
          return true;
        },
        cancel: (tags) => {
          const unknown = tags.filter((t) => !s.#updates.some((u) => u.tag === t));
          s.#updates = s.#updates.filter((u) => !tags.includes(u.tag));
          return unknown;
        },
      };
    }
  };

  #startTls(): void {
    this.#flush();
    // Drop anything pipelined after STARTTLS in plaintext (RFC 9051, Section 6.2.1).
    this.#awaitingTls = true;
    this.#receiver = null;
    this.#upgrade = Promise.resolve().then(() => this.onStartTls());
  }

  #startCompress(): void {
    this.#flush();
    this.#compressed = true;
    // Input after COMPRESS is compressed: nothing buffered in the clear may be read as it.
    this.#receiver = null;
    this.#upgrade = Promise.resolve().then(() => this.onCompress());
  }

  #mailboxFromClient(name: string, strict: boolean): string {
    let decoded = name;
    if (
      !(this.#enabled.has("IMAP4REV2") || this.#enabled.has("UTF8=ACCEPT")) &&
      isAscii(name)
    ) {
      try {
        decoded = decodeMutf7(name);
      } catch (e) {
        if (!(e instanceof Mutf7Error)) throw e;
        // A malformed name that is only looked up names no mailbox (NO [NONEXISTENT], an
        // empty LIST), as in Dovecot; only a name that would be created is refused.
        if (strict) throw new ImapError("BAD", "Invalid modified UTF-7 mailbox name");
      }
    }
    if (/^inbox$/i.test(decoded)) return "INBOX";
    if (/^inbox\//i.test(decoded)) return "INBOX" + decoded.slice(5);
    return decoded;
  }

  #mailboxToClient(name: string): string {
    return this.#enabled.has("IMAP4REV2") || this.#enabled.has("UTF8=ACCEPT")
      ? name
      : encodeMutf7(name);
  }
}
