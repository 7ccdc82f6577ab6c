/**
 * What a command handler sees of the session: the state (a discriminated union carrying only
 * the data valid in it), the injected services, and the output of the command in progress.
 */
import type { SearchUpdates } from "./search_context.ts";
import type { Account, MailStore } from "../../mailstore/mail_store.ts";
import type { CertificateIdentity } from "../x509/identity.ts";
import type { Pacer } from "../event_loop.ts";
import type { AuthContext, ImapAuthenticator } from "./auth.ts";
import type { MailboxView } from "./mailbox_view.ts";
import type { CommandReader } from "./parser.ts";
import type { Output } from "./response.ts";
import type { MimeSupport } from "./fetch_items.ts";
import type { DeriveOffThread } from "./mime_support.ts";
import type { SortKeyCache } from "./sort_cache.ts";
import type { QuotaSource } from "./quota.ts";

/** The session states of RFC 9051, Section 3. */
export type SessionState =
  | { readonly kind: "notAuthenticated" }
  | { readonly kind: "authenticated"; readonly account: Account }
  | {
    readonly kind: "selected";
    readonly account: Account;
    readonly view: MailboxView;
  }
  | { readonly kind: "logout" };

export type StateKind = SessionState["kind"];

/** Input the session waits for between a continuation request and the tagged completion. */
export type Pending =
  | { readonly kind: "idle"; readonly tag: string }
  | { readonly kind: "sasl"; readonly tag: string; readonly mechanism: "PLAIN" | "EXTERNAL" };

/** The logger a session writes to; never given secrets. */
export interface ImapLogger {
  warn(message: string, props?: Record<string, unknown>): void;
  error(message: string, props?: Record<string, unknown>): void;
}

/** Limits of one session. */
export interface SessionLimits {
  /** Longest command line, literals excluded. */
  readonly maxLineLength: number;
  /** Largest APPEND literal. */
  readonly maxLiteral: number;
  /** Largest literal of any other command once authenticated. */
  readonly maxOtherLiteral: number;
  /** Largest literal before authentication. */
  readonly maxLiteralBeforeLogin: number;
  /**
   * Largest command before authentication, lines and literals together: an unauthenticated
   * client must not make the server hold more than this per connection.
   */
  readonly maxCommandBeforeLogin: number;
  /** Most literals in one command before authentication (LOGIN needs two). */
  readonly maxLiteralsBeforeLogin: number;
  /** Most literals in one command once authenticated. */
  readonly maxLiteralsPerCommand: number;
  /** Unknown or malformed commands allowed before login, then `* BYE`. */
  readonly maxUnknownBeforeLogin: number;
  /** Commands of any kind allowed before login, then `* BYE`. */
  readonly maxCommandsBeforeLogin: number;
  /** Failed authentications allowed, then `* BYE`. */
  readonly maxAuthFailures: number;
  /** Nesting depth of parenthesised lists. */
  readonly maxListDepth: number;
}

export const defaultLimits: SessionLimits = {
  maxLineLength: 64 * 1024,
  maxLiteral: 50 * 1024 * 1024,
  maxOtherLiteral: 64 * 1024,
  maxLiteralBeforeLogin: 8 * 1024,
  maxCommandBeforeLogin: 16 * 1024,
  maxLiteralsBeforeLogin: 4,
  maxLiteralsPerCommand: 100,
  maxUnknownBeforeLogin: 10,
  maxCommandsBeforeLogin: 100,
  maxAuthFailures: 5,
  maxListDepth: 16,
};

/** Successful completion of a command: the tagged OK's response code and text. */
export interface Completion {
  readonly code?: string;
  readonly text: string;
}

/** What the server lends a session: the store, authentication, MIME and quota, built once. */
export interface SessionServices {
  readonly store: MailStore;
  readonly authenticator: ImapAuthenticator;
  readonly mime: MimeSupport;
  /**
   * Derives the stored data of a large APPENDed message off the event loop, when the driver
   * offers it and `mime` is the default.
   */
  readonly deriveOffThread: DeriveOffThread | null;
  /** SORT and THREAD keys, shared by the sessions of the store. */
  readonly sortKeys: SortKeyCache;
  /** Quota figures (RFC 9208), or null when the server enforces none. */
  readonly quota: QuotaSource | null;
  readonly limits: SessionLimits;
  /** The store account of an authenticated name, created on first login if missing. */
  loadAccount(name: string): Promise<Account>;
  /** Logs a warning (no secrets). */
  warn(message: string, props?: Record<string, unknown>): void;
  /** Fields the ID response adds for authenticated clients (see `SessionOptions.idFields`). */
  readonly idFields: Readonly<Record<string, string>>;
}

/** Where responses go. */
export interface SessionOutput {
  /** Untagged responses of the command in progress. */
  readonly out: Output;
  /** Sends what `out` holds now (continuation requests). */
  flush(): void;
  /**
   * Whether `maybeFlush` would send now, with `pending` more bytes built outside `out` (a
   * `LineBuilder`'s).
   */
  flushDue(pending?: number): boolean;
  /**
   * Sends what `out` holds when it has grown large (long FETCH responses), waiting for the
   * driver when its `onOutput` returns a promise (back-pressure). A command's first such flush
   * comes early (`FIRST_FLUSH`) and each later one at twice the size, up to `FLUSH_THRESHOLD`.
   */
  maybeFlush(): Promise<void>;
  /** Paces a long command: it yields to the event loop once a time slice is used up. */
  pacer(): Pacer;
}

/** What ENABLE and the capabilities change in how the session speaks. */
export interface SessionProtocol {
  /** Extensions turned on with ENABLE, upper-cased. */
  readonly enabled: ReadonlySet<string>;
  enable(name: string): void;
  /**
   * Turns CONDSTORE on for a CONDSTORE-enabling command (RFC 7162, Section 3.1). The first one
   * after a plain SELECT or EXAMINE sends `* OK [HIGHESTMODSEQ n]` before its own responses.
   */
  enableCondstore(): Promise<void>;
  /** True after ENABLE IMAP4rev2. */
  readonly rev2: boolean;
  /**
   * True once CONDSTORE is enabled (ENABLE, SELECT (CONDSTORE), or a MODSEQ-using command;
   * RFC 7162, Section 3.1): FLAGS updates then carry MODSEQ.
   */
  readonly condstore: boolean;
  /** True after ENABLE QRESYNC: expunges are reported as VANISHED (RFC 7162, Section 3.2). */
  readonly qresync: boolean;
  /** True when mailbox names and strings travel as UTF-8 rather than modified UTF-7. */
  readonly utf8: boolean;
  capabilities(): string[];
  /**
   * Converts a mailbox name from the client's form to the store's (UTF-8, INBOX canonical).
   * Malformed modified UTF-7 is BAD only when `strict` (a name to be created); otherwise it is
   * kept as it is, so that a lookup finds nothing.
   */
  mailboxFromClient(name: string, strict?: boolean): string;
  /** Converts a store mailbox name to the client's form (still to be encoded as astring). */
  mailboxToClient(name: string): string;
}

/** The connection under the session: TLS, identity, and what changes it after a command. */
export interface SessionConnection {
  readonly tls: boolean;
  readonly identity: CertificateIdentity | null;
  readonly authContext: AuthContext;
  /** True once COMPRESS DEFLATE is active (RFC 4978). */
  readonly compressed: boolean;
  /** Waits for client input that is not a command (IDLE's DONE, a SASL response). */
  awaitInput(pending: Pending): void;
  /** Asks the driver to start TLS after this command's completion has been sent. */
  requestStartTls(): void;
  /** Asks the driver to compress the connection after this command's completion is sent. */
  requestCompress(): void;
  /** Closes the connection after this command's completion has been sent. */
  requestClose(): void;
  /** Tells the driver the client's ID name and version (RFC 2971), as the client sent them. */
  clientIdentified(name: string, version: string | null): void;
  /** Counts a failed authentication; may end the session. */
  authFailed(): void;
}

/** The session state (RFC 9051, Section 3) and what SEARCH saved. */
export interface SessionMailboxState {
  readonly state: SessionState;
  setState(next: SessionState): void;
  /** Search result saved with SEARCH RETURN (SAVE) (RFC 5182), as UIDs. */
  savedSearch: readonly number[];
  /** Results kept up to date with RETURN (UPDATE) (RFC 5267, Section 4). */
  readonly searchUpdates: SearchUpdates;
}

/**
 * The session as a command handler sees it: the parts above, plus the tag of the command in
 * progress. The session builds it once; only the tag changes from command to command. A helper
 * that needs one part takes that part's type.
 */
export interface CommandContext
  extends SessionServices, SessionOutput, SessionProtocol, SessionConnection, SessionMailboxState {
  readonly tag: string;
}

/** One IMAP command: its name, the states it is valid in, and its parse-and-run step. */
export interface CommandSpec {
  readonly name: string;
  readonly states: readonly StateKind[];
  /**
   * Parses the arguments (the reader is positioned after the command name) and runs the
   * command. Resolves to the tagged OK, or null when the command waits for more input.
   * Throws `ImapError` for NO/BAD.
   */
  run(ctx: CommandContext, r: CommandReader): Promise<Completion | null>;
  /**
   * Whether EXPUNGE responses may be sent at this command's completion; false for FETCH, STORE
   * and SEARCH (RFC 9051, Section 7.5.1).
   */
  readonly allowsExpunge: boolean;
}
