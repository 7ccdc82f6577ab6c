/**
 * The storage contract the IMAP engine talks to. Every implementation (SQLite now, a networked
 * engine later) runs the contract suite in tests/mailstore/contract.ts.
 *
 * Rules every implementation keeps:
 * - A method that changes mail resolves only after the change is durably committed.
 * - UIDs in a mailbox only grow; `uidValidity` changes only when a mailbox is recreated.
 * - Every change to a message (append, flags, expunge) takes a new MODSEQ from the mailbox's
 *   counter, and `highestModseq` is the largest MODSEQ handed out (RFC 7162).
 * - Mailbox names are full hierarchical names in UTF-8 with "/" as separator. "INBOX" is
 *   matched case-insensitively and always stored as "INBOX".
 * - Flags are stored as given (system flags with their backslash, keywords as atoms); flag
 *   comparison is case-insensitive per RFC 9051 and implementations normalise system flags.
 */

export interface Account {
  readonly id: number;
  readonly name: string;
  /** Encoded password hash (scrypt, PHC-like string), or null for certificate/LDAP-only users. */
  readonly passwordHash: string | null;
}

export type SpecialUse =
  | "\\Sent"
  | "\\Drafts"
  | "\\Trash"
  | "\\Junk"
  | "\\Archive"
  | "\\All"
  | "\\Flagged";

export interface Mailbox {
  readonly id: number;
  readonly accountId: number;
  /** Full name, UTF-8, "/"-separated. */
  readonly name: string;
  readonly uidValidity: number;
  readonly uidNext: number;
  readonly highestModseq: number;
  readonly subscribed: boolean;
  readonly specialUse: SpecialUse | null;
  /** Number of messages, and the total of their sizes (STATUS=SIZE). */
  readonly messages: number;
  readonly unseen: number;
  readonly size: number;
  /** MAILBOXID (RFC 8474, Section 4): kept across RENAME, never reused for another mailbox. */
  readonly objectId: string;
}

export interface MessageMeta {
  readonly uid: number;
  readonly modseq: number;
  readonly flags: readonly string[];
  /** INTERNALDATE, milliseconds since the epoch. */
  readonly internalDate: number;
  /** RFC822.SIZE in octets. */
  readonly size: number;
}

/**
 * A listing as the columns a mailbox view keeps (`MailStore.listColumns`): the UIDs ascending,
 * each message's flags beside them (frozen arrays, shared between messages), every distinct flag
 * list among them, and a MODSEQ at least as high as any of the messages' (the mailbox's
 * HIGHESTMODSEQ will do: a view only reads again what an event carries from below it).
 */
export interface ListingColumns {
  readonly uids: number[];
  readonly flags: (readonly string[])[];
  readonly sets: readonly (readonly string[])[];
  readonly floor: number;
}

/** One message as `getSortTexts` reads it. */
export interface SortTextRow {
  readonly uid: number;
  readonly size: number;
  /** Milliseconds since the epoch. */
  readonly internalDate: number;
  readonly text: string | null;
}

export interface AppendInput {
  readonly raw: Uint8Array;
  readonly flags?: readonly string[];
  /** Milliseconds since the epoch; defaults to now. */
  readonly internalDate?: number;
  /**
   * Opaque derived data computed by the caller once at append time (e.g. parsed MIME structure
   * and search text as JSON), so that FETCH/SEARCH never re-parse the raw message.
   */
  readonly summary?: string;
  /**
   * Opaque search text computed by the caller at append time (decoded header values, body
   * text, sent date), kept apart from the raw octets and the summary so that SEARCH can read
   * it for thousands of messages in one query (`getSearchTexts`). It must not contain NUL
   * (SQLite text ends there).
   */
  readonly searchText?: string;
  /**
   * Opaque sort text computed by the caller at append time: the part of the search text that
   * SORT and THREAD read, kept apart so that keys of a large mailbox load in one cheap pass
   * (`getSortTexts`). No NUL either. Stores may drop it (callers fall back to the search text).
   */
  readonly sortText?: string;
  /**
   * THREADID (RFC 8474, Section 5.2) computed by the caller from the message's references
   * (`threadIdOf`); without one the message is a thread of its own.
   */
  readonly threadId?: string;
  /**
   * The caller hands `raw` over: a store may move its buffer to a thread of its own (a
   * transfer, without a copy), after which `raw` is detached (empty) for the caller. Only for
   * a view of a whole ArrayBuffer that nothing else reads afterwards.
   */
  readonly handOver?: boolean;
}

/** Per-message data clients cache by (RFC 8474 object ids, RFC 8514 save date). */
export interface MessageObjectInfo {
  /** EMAILID (RFC 8474, Section 5.1): the same for a message and its copies. */
  readonly emailId: string;
  /** THREADID (RFC 8474, Section 5.2). */
  readonly threadId: string;
  /**
   * When the message was stored in this mailbox (RFC 8514, Section 3): APPEND, delivery, COPY
   * or MOVE; null for messages stored before save dates were kept.
   */
  readonly saveDate: number | null;
}

export interface AppendResult {
  readonly uidValidity: number;
  readonly uid: number;
  readonly modseq: number;
}

export type FlagOperation = "add" | "remove" | "replace";

export interface StoreFlagsResult {
  /** Messages whose flags changed (or matched), with their new state. */
  readonly updated: readonly MessageMeta[];
  /** UIDs refused because their MODSEQ exceeded `unchangedSince` (RFC 7162 MODIFIED). */
  readonly modified: readonly number[];
}

export interface CopyResult {
  readonly uidValidity: number;
  /** Pairs of source UID and new destination UID, in source UID order. */
  readonly mapping: readonly (readonly [number, number])[];
}

export interface ChangesSince {
  /** Messages whose MODSEQ is greater than the given value, in UID order. */
  readonly changed: readonly MessageMeta[];
  /** UIDs expunged with a MODSEQ greater than the given value (QRESYNC VANISHED). */
  readonly vanished: readonly number[];
}

/**
 * What a change-feed listener is told; sessions re-read the details they need. An append or
 * flags event may carry `metas`, the messages as committed (one per UID, in `uids` order),
 * so that listeners need not read them back; without it they do.
 */
export type MailboxEvent =
  | {
    readonly kind: "append";
    readonly mailboxId: number;
    readonly uids: readonly number[];
    readonly metas?: readonly MessageMeta[];
  }
  | {
    readonly kind: "flags";
    readonly mailboxId: number;
    readonly uids: readonly number[];
    readonly metas?: readonly MessageMeta[];
  }
  | { readonly kind: "expunge"; readonly mailboxId: number; readonly uids: readonly number[] }
  | { readonly kind: "deleted"; readonly mailboxId: number }
  | { readonly kind: "renamed"; readonly mailboxId: number; readonly name: string };

/** Storage limits of one account (RFC 9208 STORAGE in octets, MESSAGE); null is unlimited. */
export interface QuotaLimits {
  readonly storage: number | null;
  readonly messages: number | null;
}

/** What `MailStore.appendBatch` did: every message stored, or none (over quota). */
export type AppendBatchResult =
  | { readonly kind: "stored"; readonly results: readonly AppendResult[] }
  | { readonly kind: "overquota"; readonly resource: "storage" | "messages" };

/** Options of `MailStore.deliver`. */
export interface DeliverOptions {
  /**
   * Identifies this delivery to this recipient: a second delivery with the same key within
   * `windowMs` is not stored again (an MTA resending after a lost reply). A window of 0
   * records nothing and checks nothing.
   */
  readonly deliveryKey: string;
  readonly windowMs: number;
  /** Refuses the message when the account would exceed these limits. */
  readonly quota?: QuotaLimits;
  /** Clock for the dedup window (default `Date.now`). */
  readonly now?: number;
}

/** What `MailStore.deliver` did. */
export type DeliverResult =
  | ({ readonly kind: "stored" } & AppendResult)
  | { readonly kind: "duplicate"; readonly mailboxId: number; readonly uid: number }
  | { readonly kind: "overquota"; readonly resource: "storage" | "messages" };

/** One delivery of a batch (`MailStore.deliverBatch`). */
export interface DeliveryItem {
  readonly mailboxId: number;
  readonly input: AppendInput;
  readonly options: DeliverOptions;
}

/** What became of one delivery of a batch; `error` is what `deliver` would have thrown. */
export type DeliveryOutcome =
  | { readonly ok: true; readonly result: DeliverResult }
  | { readonly ok: false; readonly error: unknown };

/** Raised for expected failures; `code` lets the IMAP layer choose a response code. */
export class MailStoreError extends Error {
  readonly code: "nonexistent" | "alreadyexists" | "cannot" | "limit" | "inuse";
  constructor(code: MailStoreError["code"], message: string) {
    super(message);
    this.name = "MailStoreError";
    this.code = code;
  }
}

/** Arrays from `getRaw` whose octets the store knows to hold no NUL. */
const nulFree = new WeakSet<Uint8Array>();

/** For stores: notes that `raw`, about to be returned by `getRaw`, holds no NUL octet. */
export function markNulFree(raw: Uint8Array): Uint8Array {
  nulFree.add(raw);
  return raw;
}

/**
 * True when the store that returned `raw` from `getRaw` recorded, when storing it, that it holds
 * no NUL: a plain literal (RFC 9051, Section 4.3) can carry it without a scan. False means
 * "not known", not "holds NUL".
 */
export function knownNulFree(raw: Uint8Array): boolean {
  return nulFree.has(raw);
}

/** The value a store keeps for "holds NUL": 1 when `raw` has a NUL octet, else 0. */
export function nulFlag(raw: Uint8Array): 0 | 1 {
  return raw.indexOf(0) >= 0 ? 1 : 0;
}

/** A stored message's octets, a piece at a time (`MailStore.openRaw`). */
export interface RawStream {
  /** Octets in all, the message's RFC822.SIZE. */
  readonly size: number;
  /** True when the store recorded that the octets hold no NUL (see `knownNulFree`). */
  readonly nulFree: boolean;
  /**
   * The next piece, in order; null after the last. A message expunged before its first piece
   * was read has none (the first call gives null). Throws `MailStoreError` when the store
   * cannot read on.
   */
  next(): Promise<Uint8Array | null>;
}

export interface MailStore {
  // Accounts
  createAccount(name: string, passwordHash: string | null): Promise<Account>;
  getAccount(name: string): Promise<Account | null>;
  setPasswordHash(name: string, passwordHash: string | null): Promise<void>;
  deleteAccount(name: string): Promise<void>;
  listAccounts(): Promise<Account[]>;

  /**
   * Delivery addresses (LMTP recipients). Addresses are matched case-insensitively and stored
   * lower-cased; one address belongs to at most one account ("alreadyexists" otherwise).
   * Deleting an account deletes its addresses.
   */
  addAddress(accountId: number, address: string): Promise<void>;
  removeAddress(address: string): Promise<void>;
  listAddresses(accountId: number): Promise<string[]>;
  findAccountByAddress(address: string): Promise<Account | null>;

  // Mailboxes. Creating an account creates INBOX, Sent, Drafts, Trash, Junk and Archive.
  listMailboxes(accountId: number): Promise<Mailbox[]>;
  getMailbox(accountId: number, name: string): Promise<Mailbox | null>;
  createMailbox(accountId: number, name: string, specialUse?: SpecialUse | null): Promise<Mailbox>;
  /** Deletes the mailbox and its messages; children stay (RFC 9051 §6.3.5). */
  deleteMailbox(accountId: number, name: string): Promise<void>;
  /**
   * Renames a mailbox and its children. Renaming INBOX moves its messages into a new mailbox
   * and leaves INBOX empty.
   */
  renameMailbox(accountId: number, from: string, to: string): Promise<void>;
  setSubscribed(accountId: number, name: string, subscribed: boolean): Promise<void>;
  /** Subscribed names, which may include names of mailboxes that no longer exist. */
  listSubscriptions(accountId: number): Promise<string[]>;

  // Messages
  append(mailboxId: number, input: AppendInput): Promise<AppendResult>;
  /**
   * Appends several messages to one mailbox in one transaction (MULTIAPPEND, RFC 3502): all
   * are committed, with consecutive UIDs in the order given, or none is (an error, or the
   * account's `quota` exceeded by the batch as a whole).
   */
  appendBatch(
    mailboxId: number,
    inputs: readonly AppendInput[],
    quota?: QuotaLimits,
  ): Promise<AppendBatchResult>;
  /**
   * Appends a delivered message (LMTP) in one transaction with its dedup record and quota
   * check: either the message and the record of its key are both committed, or neither is.
   */
  deliver(mailboxId: number, input: AppendInput, options: DeliverOptions): Promise<DeliverResult>;
  /**
   * Several deliveries committed together (group commit: one sync for all), each with the
   * same effect as `deliver` on its own; one that fails does not undo the others. Outcomes
   * are in the order of `items`; the promise resolves once all are durable.
   */
  deliverBatch(items: readonly DeliveryItem[]): Promise<DeliveryOutcome[]>;
  /**
   * All messages of a mailbox in UID order. The caller must not change the array: a store may
   * hand out the very same array again while the mailbox is unchanged (a SELECT of 100,000
   * then copies nothing), and never changes an array once handed out.
   */
  listMessages(mailboxId: number): Promise<readonly MessageMeta[]>;
  /**
   * Only the UIDs and flags of the listing, for a store that can give them for much less than
   * the listing's objects (a large mailbox not in memory, read from a packed copy): the first
   * SELECT after a restart need not wait for 100,000 objects. Null when it cannot, and the
   * caller lists. The arrays are shared with other callers: they must not be changed.
   */
  listColumns?(mailboxId: number): Promise<ListingColumns | null>;
  getMessages(mailboxId: number, uids: readonly number[]): Promise<MessageMeta[]>;
  /**
   * The raw message, or null if it was expunged. A store that recorded, when it stored them,
   * that the octets hold no NUL says so with `markNulFree` (see `knownNulFree`).
   */
  getRaw(mailboxId: number, uid: number): Promise<Uint8Array | null>;
  /**
   * The raw message as pieces read while earlier ones are being sent, for a store that keeps
   * large messages in pieces: null when the message is gone, undefined when this message (or
   * this store) is not stored that way, and the caller uses `getRaw`.
   */
  openRaw?(mailboxId: number, uid: number): Promise<RawStream | null | undefined>;
  getSummary(mailboxId: number, uid: number): Promise<string | null>;
  /** Object ids and save dates of the given messages, by UID; expunged ones are absent. */
  getObjectInfo(
    mailboxId: number,
    uids: readonly number[],
  ): Promise<Map<number, MessageObjectInfo>>;
  /**
   * The stored `AppendInput.searchText` of the given messages, read in one batch, by UID; null
   * for a message stored without one. Expunged messages are absent. With `contains`, messages
   * whose search text lacks that exact substring are absent too (those without search text
   * stay, as null), so that the scan runs inside the store. Callers should ask for at most a
   * few thousand UIDs at a time.
   */
  getSearchTexts(
    mailboxId: number,
    uids: readonly number[],
    contains?: string,
  ): Promise<Map<number, string | null>>;
  /**
   * The stored `AppendInput.sortText` of the given messages, with their size and INTERNALDATE,
   * in UID order; `text` is null for a message stored without one. Expunged messages are
   * absent. Optional: without it, callers read metadata and search texts.
   */
  getSortTexts?(mailboxId: number, uids: readonly number[]): Promise<SortTextRow[]>;
  storeFlags(
    mailboxId: number,
    uids: readonly number[],
    op: FlagOperation,
    flags: readonly string[],
    unchangedSince?: number,
  ): Promise<StoreFlagsResult>;
  /** Copies keep EMAILID and THREADID and get a new save date (RFC 8474, RFC 8514). */
  copy(fromMailboxId: number, uids: readonly number[], toMailboxId: number): Promise<CopyResult>;
  /** Copy then expunge from the source, atomically. */
  move(fromMailboxId: number, uids: readonly number[], toMailboxId: number): Promise<CopyResult>;
  /**
   * Expunges messages flagged \Deleted; when `uids` is given, only those among them
   * (UID EXPUNGE). Returns the expunged UIDs in ascending order.
   */
  expunge(mailboxId: number, uids?: readonly number[]): Promise<number[]>;
  changesSince(mailboxId: number, modseq: number): Promise<ChangesSince>;

  /** Listens to changes of one mailbox. Returns the function that stops listening. */
  watch(mailboxId: number, listener: (event: MailboxEvent) => void): () => void;
  /**
   * Resolves once `watch()` listeners have heard every change committed elsewhere (another
   * Worker of this server, another node) before the call, within a bounded wait. A store that
   * hears every change at once (one process) leaves it out.
   */
  settle?(): Promise<void>;

  close(): Promise<void>;
}
