/**
 * An in-memory MailStore: complete and fast, for the IMAP engine's tests and for throw-away
 * servers. Nothing survives the process. Every method runs to completion without awaiting, so
 * each call is atomic with respect to the others.
 */
import type {
  Account,
  AppendBatchResult,
  AppendInput,
  AppendResult,
  ChangesSince,
  CopyResult,
  DeliverOptions,
  DeliverResult,
  DeliveryItem,
  DeliveryOutcome,
  FlagOperation,
  Mailbox,
  MailboxEvent,
  MailStore,
  MessageMeta,
  MessageObjectInfo,
  QuotaLimits,
  SpecialUse,
  StoreFlagsResult,
} from "../mail_store.ts";
import { MailStoreError } from "../mail_store.ts";
import { applyFlagOperation, DELETED, hasFlag, normalizeFlags, SEEN } from "../flags.ts";
import {
  DEFAULT_MAILBOXES,
  isDescendant,
  isInbox,
  MAX_MAILBOXES_PER_ACCOUNT,
  normalizeAddress,
  normalizeMailboxName,
  validateAccountName,
  validateSpecialUse,
} from "../mailbox_name.ts";
import { EventHub } from "../event_hub.ts";
import { checkMessageSize, MAX_MESSAGE_BYTES } from "../limits.ts";
import { newObjectId } from "../object_id.ts";

interface MessageRecord {
  readonly uid: number;
  modseq: number;
  flags: string[];
  readonly internalDate: number;
  readonly raw: Uint8Array;
  readonly summary: string | null;
  readonly searchText: string | null;
  readonly emailId: string;
  readonly threadId: string;
  readonly saveDate: number;
}

interface MailboxRecord {
  readonly id: number;
  readonly accountId: number;
  name: string;
  readonly uidValidity: number;
  readonly objectId: string;
  uidNext: number;
  highestModseq: number;
  specialUse: SpecialUse | null;
  /** Messages in UID order (insertion order, since UIDs only grow). */
  readonly messages: Map<number, MessageRecord>;
  /** Expunged UIDs with the MODSEQ of their expunge, for QRESYNC. */
  readonly expunged: { uid: number; modseq: number }[];
}

interface AccountRecord {
  readonly id: number;
  readonly name: string;
  passwordHash: string | null;
  readonly subscriptions: Set<string>;
}

/** Options of `MemoryMailStore`. */
export interface MemoryMailStoreOptions {
  /** Hears about change-feed listeners that throw (by default they are logged under postern.mailstore). */
  readonly onListenerError?: (error: unknown) => void;
  /** Largest message `append` accepts (default `MAX_MESSAGE_BYTES`). */
  readonly maxMessageBytes?: number;
}

/** The in-memory MailStore. */
export class MemoryMailStore implements MailStore {
  #accounts = new Map<string, AccountRecord>();
  #accountsById = new Map<number, AccountRecord>();
  #mailboxes = new Map<number, MailboxRecord>();
  #nextAccountId = 1;
  #nextMailboxId = 1;
  #lastUidValidity = 0;
  #closed = false;
  #hub: EventHub;
  #pending: MailboxEvent[] | null = null;
  #maxMessageBytes: number;
  /** Delivery address to account id. */
  #addresses = new Map<string, number>();
  /** Dedup records of recent deliveries, in insertion (time) order. */
  #deliveries = new Map<string, { mailboxId: number; uid: number; at: number }>();

  constructor(options: MemoryMailStoreOptions = {}) {
    this.#hub = new EventHub(options.onListenerError);
    this.#maxMessageBytes = options.maxMessageBytes ?? MAX_MESSAGE_BYTES;
  }

  // Accounts

  createAccount(name: string, passwordHash: string | null): Promise<Account> {
    return this.#run(() => {
      validateAccountName(name);
      if (this.#accounts.has(name)) {
        throw new MailStoreError("alreadyexists", "Account already exists");
      }
      const account: AccountRecord = {
        id: this.#nextAccountId++,
        name,
        passwordHash,
        subscriptions: new Set(),
      };
      this.#accounts.set(name, account);
      this.#accountsById.set(account.id, account);
      for (const [mailboxName, use] of DEFAULT_MAILBOXES) {
        this.#newMailbox(account.id, mailboxName, use);
        account.subscriptions.add(mailboxName);
      }
      return accountView(account);
    });
  }

  getAccount(name: string): Promise<Account | null> {
    return this.#run(() => {
      const a = this.#accounts.get(name);
      return a ? accountView(a) : null;
    });
  }

  setPasswordHash(name: string, passwordHash: string | null): Promise<void> {
    return this.#run(() => {
      this.#account(name).passwordHash = passwordHash;
    });
  }

  deleteAccount(name: string): Promise<void> {
    return this.#run(() => {
      const account = this.#account(name);
      const gone = [...this.#mailboxes.values()].filter((m) => m.accountId === account.id);
      for (const m of gone) this.#mailboxes.delete(m.id);
      this.#accounts.delete(name);
      this.#accountsById.delete(account.id);
      for (const [address, id] of this.#addresses) {
        if (id === account.id) this.#addresses.delete(address);
      }
      for (const m of gone) this.#emit({ kind: "deleted", mailboxId: m.id });
    });
  }

  listAccounts(): Promise<Account[]> {
    return this.#run(() =>
      [...this.#accounts.values()].sort((a, b) => a.id - b.id).map(accountView)
    );
  }

  // Delivery addresses

  addAddress(accountId: number, address: string): Promise<void> {
    return this.#run(() => {
      const normal = normalizeAddress(address);
      this.#accountById(accountId);
      const owner = this.#addresses.get(normal);
      if (owner !== undefined && owner !== accountId) {
        throw new MailStoreError("alreadyexists", "Address belongs to another account");
      }
      this.#addresses.set(normal, accountId);
    });
  }

  removeAddress(address: string): Promise<void> {
    return this.#run(() => {
      if (!this.#addresses.delete(normalizeAddress(address))) {
        throw new MailStoreError("nonexistent", "No such address");
      }
    });
  }

  listAddresses(accountId: number): Promise<string[]> {
    return this.#run(() => {
      this.#accountById(accountId);
      return [...this.#addresses].filter(([, id]) => id === accountId).map(([a]) => a).sort();
    });
  }

  findAccountByAddress(address: string): Promise<Account | null> {
    return this.#run(() => {
      let normal: string;
      try {
        normal = normalizeAddress(address);
      } catch {
        return null;
      }
      const id = this.#addresses.get(normal);
      const a = id === undefined ? undefined : this.#accountsById.get(id);
      return a ? { id: a.id, name: a.name, passwordHash: a.passwordHash } : null;
    });
  }

  // Mailboxes

  listMailboxes(accountId: number): Promise<Mailbox[]> {
    return this.#run(() => {
      const account = this.#accountById(accountId);
      return this.#mailboxesOf(accountId)
        .sort((a, b) => compareNames(a.name, b.name))
        .map((m) => mailboxView(m, account));
    });
  }

  getMailbox(accountId: number, name: string): Promise<Mailbox | null> {
    return this.#run(() => {
      const account = this.#accountById(accountId);
      const m = this.#findMailbox(accountId, normalizeMailboxName(name));
      return m ? mailboxView(m, account) : null;
    });
  }

  createMailbox(
    accountId: number,
    name: string,
    specialUse?: SpecialUse | null,
  ): Promise<Mailbox> {
    return this.#run(() => {
      const account = this.#accountById(accountId);
      const canonical = normalizeMailboxName(name);
      const use = validateSpecialUse(specialUse);
      if (this.#findMailbox(accountId, canonical)) {
        throw new MailStoreError("alreadyexists", "Mailbox already exists");
      }
      if (this.#mailboxesOf(accountId).length >= MAX_MAILBOXES_PER_ACCOUNT) {
        throw new MailStoreError("limit", "Too many mailboxes");
      }
      return mailboxView(this.#newMailbox(accountId, canonical, use), account);
    });
  }

  deleteMailbox(accountId: number, name: string): Promise<void> {
    return this.#run(() => {
      this.#accountById(accountId);
      const canonical = normalizeMailboxName(name);
      if (isInbox(canonical)) throw new MailStoreError("cannot", "INBOX cannot be deleted");
      const m = this.#mailbox(accountId, canonical);
      this.#mailboxes.delete(m.id);
      this.#emit({ kind: "deleted", mailboxId: m.id });
    });
  }

  renameMailbox(accountId: number, from: string, to: string): Promise<void> {
    return this.#run(() => {
      const account = this.#accountById(accountId);
      const source = normalizeMailboxName(from);
      const target = normalizeMailboxName(to);
      const m = this.#mailbox(accountId, source);
      if (isInbox(target)) throw new MailStoreError("alreadyexists", "INBOX already exists");
      if (source === target || this.#findMailbox(accountId, target)) {
        throw new MailStoreError("alreadyexists", "Target mailbox already exists");
      }
      if (isDescendant(target, source)) {
        throw new MailStoreError("cannot", "Cannot rename a mailbox below itself");
      }
      if (isInbox(source)) {
        this.#renameInbox(m, target);
        return;
      }
      const moves = this.#mailboxesOf(accountId)
        .filter((c) => c.name === source || isDescendant(c.name, source))
        .map((c) => [c, target + c.name.slice(source.length)] as const);
      for (const [, newName] of moves) {
        normalizeMailboxName(newName);
        const clash = this.#findMailbox(accountId, newName);
        if (clash && !moves.some(([c]) => c === clash)) {
          throw new MailStoreError("alreadyexists", "A mailbox with the new name already exists");
        }
      }
      for (const [c, newName] of moves) {
        if (account.subscriptions.delete(c.name)) account.subscriptions.add(newName);
        c.name = newName;
      }
      for (const [c, newName] of moves) {
        this.#emit({ kind: "renamed", mailboxId: c.id, name: newName });
      }
    });
  }

  setSubscribed(accountId: number, name: string, subscribed: boolean): Promise<void> {
    return this.#run(() => {
      const account = this.#accountById(accountId);
      const canonical = normalizeMailboxName(name);
      if (subscribed) {
        this.#mailbox(accountId, canonical);
        account.subscriptions.add(canonical);
      } else {
        account.subscriptions.delete(canonical);
      }
    });
  }

  listSubscriptions(accountId: number): Promise<string[]> {
    return this.#run(() => [...this.#accountById(accountId).subscriptions].sort(compareNames));
  }

  // Messages

  append(mailboxId: number, input: AppendInput): Promise<AppendResult> {
    return this.#run(() => {
      const m = this.#mailboxById(mailboxId);
      checkMessageSize(input.raw, this.#maxMessageBytes);
      return this.#appendNow(m, input);
    });
  }

  appendBatch(
    mailboxId: number,
    inputs: readonly AppendInput[],
    quota?: QuotaLimits,
  ): Promise<AppendBatchResult> {
    return this.#run((): AppendBatchResult => {
      const m = this.#mailboxById(mailboxId);
      // Every check comes before the first change, so that a refusal changes nothing.
      let octets = 0;
      for (const input of inputs) {
        checkMessageSize(input.raw, this.#maxMessageBytes);
        normalizeFlags(input.flags ?? []);
        octets += input.raw.byteLength;
      }
      if (quota && (quota.storage !== null || quota.messages !== null)) {
        let size = 0;
        let count = 0;
        for (const box of this.#mailboxesOf(m.accountId)) {
          count += box.messages.size;
          for (const msg of box.messages.values()) size += msg.raw.byteLength;
        }
        if (quota.storage !== null && size + octets > quota.storage) {
          return { kind: "overquota", resource: "storage" };
        }
        if (quota.messages !== null && count + inputs.length > quota.messages) {
          return { kind: "overquota", resource: "messages" };
        }
      }
      return { kind: "stored", results: inputs.map((input) => this.#appendNow(m, input)) };
    });
  }

  #appendNow(m: MailboxRecord, input: AppendInput): AppendResult {
    const flags = normalizeFlags(input.flags ?? []);
    const uid = m.uidNext++;
    const modseq = ++m.highestModseq;
    const emailId = newObjectId("M");
    const now = Date.now();
    m.messages.set(uid, {
      uid,
      modseq,
      flags,
      internalDate: input.internalDate ?? now,
      raw: input.raw.slice(),
      summary: input.summary ?? null,
      searchText: input.searchText ?? null,
      emailId,
      threadId: input.threadId ?? "T" + emailId.slice(1),
      saveDate: now,
    });
    this.#emit({ kind: "append", mailboxId: m.id, uids: [uid] });
    return { uidValidity: m.uidValidity, uid, modseq };
  }

  deliver(mailboxId: number, input: AppendInput, options: DeliverOptions): Promise<DeliverResult> {
    return this.#run(() => this.#deliver(mailboxId, input, options));
  }

  deliverBatch(items: readonly DeliveryItem[]): Promise<DeliveryOutcome[]> {
    return this.#run(() =>
      items.map((item): DeliveryOutcome => {
        try {
          return { ok: true, result: this.#deliver(item.mailboxId, item.input, item.options) };
        } catch (error) {
          return { ok: false, error };
        }
      })
    );
  }

  #deliver(mailboxId: number, input: AppendInput, options: DeliverOptions): DeliverResult {
    const now = options.now ?? Date.now();
    for (const [key, d] of this.#deliveries) {
      if (d.at >= now - options.windowMs) break;
      this.#deliveries.delete(key);
    }
    const dedup = options.windowMs > 0;
    const seen = dedup ? this.#deliveries.get(options.deliveryKey) : undefined;
    if (seen) return { kind: "duplicate", mailboxId: seen.mailboxId, uid: seen.uid };
    const m = this.#mailboxById(mailboxId);
    checkMessageSize(input.raw, this.#maxMessageBytes);
    const quota = options.quota;
    if (quota) {
      let size = 0;
      let count = 0;
      for (const box of this.#mailboxesOf(m.accountId)) {
        count += box.messages.size;
        for (const msg of box.messages.values()) size += msg.raw.byteLength;
      }
      if (quota.storage !== null && size + input.raw.byteLength > quota.storage) {
        return { kind: "overquota", resource: "storage" };
      }
      if (quota.messages !== null && count + 1 > quota.messages) {
        return { kind: "overquota", resource: "messages" };
      }
    }
    const result = this.#appendNow(m, input);
    if (dedup) {
      this.#deliveries.delete(options.deliveryKey);
      this.#deliveries.set(options.deliveryKey, { mailboxId, uid: result.uid, at: now });
    }
    return { kind: "stored", ...result };
  }

  listMessages(mailboxId: number): Promise<MessageMeta[]> {
    return this.#run(() => [...this.#mailboxById(mailboxId).messages.values()].map(metaView));
  }

  getMessages(mailboxId: number, uids: readonly number[]): Promise<MessageMeta[]> {
    return this.#run(() => {
      const m = this.#mailboxById(mailboxId);
      return uniqueSorted(uids).flatMap((uid) => {
        const r = m.messages.get(uid);
        return r ? [metaView(r)] : [];
      });
    });
  }

  getRaw(mailboxId: number, uid: number): Promise<Uint8Array | null> {
    return this.#run(() => this.#mailboxById(mailboxId).messages.get(uid)?.raw.slice() ?? null);
  }

  getSummary(mailboxId: number, uid: number): Promise<string | null> {
    return this.#run(() => this.#mailboxById(mailboxId).messages.get(uid)?.summary ?? null);
  }

  getObjectInfo(
    mailboxId: number,
    uids: readonly number[],
  ): Promise<Map<number, MessageObjectInfo>> {
    return this.#run(() => {
      const m = this.#mailboxById(mailboxId);
      const out = new Map<number, MessageObjectInfo>();
      for (const uid of uids) {
        const r = m.messages.get(uid);
        if (r === undefined) continue;
        out.set(uid, { emailId: r.emailId, threadId: r.threadId, saveDate: r.saveDate });
      }
      return out;
    });
  }

  getSearchTexts(
    mailboxId: number,
    uids: readonly number[],
    contains?: string,
  ): Promise<Map<number, string | null>> {
    return this.#run(() => {
      const m = this.#mailboxById(mailboxId);
      const out = new Map<number, string | null>();
      for (const uid of uids) {
        const r = m.messages.get(uid);
        if (r === undefined) continue;
        const text = r.searchText;
        if (text !== null && contains !== undefined && !text.includes(contains)) continue;
        out.set(uid, text);
      }
      return out;
    });
  }

  storeFlags(
    mailboxId: number,
    uids: readonly number[],
    op: FlagOperation,
    flags: readonly string[],
    unchangedSince?: number,
  ): Promise<StoreFlagsResult> {
    return this.#run(() => {
      const m = this.#mailboxById(mailboxId);
      const change = normalizeFlags(flags);
      const updated: MessageMeta[] = [];
      const modified: number[] = [];
      const changedUids: number[] = [];
      const plan: [MessageRecord, string[] | null][] = [];
      for (const uid of uniqueSorted(uids)) {
        const r = m.messages.get(uid);
        if (!r) continue;
        if (unchangedSince !== undefined && r.modseq > unchangedSince) {
          modified.push(uid);
          continue;
        }
        plan.push([r, applyFlagOperation(r.flags, op, change)]);
      }
      for (const [r, next] of plan) {
        if (next) {
          r.flags = next;
          r.modseq = ++m.highestModseq;
          changedUids.push(r.uid);
        }
        updated.push(metaView(r));
      }
      if (changedUids.length > 0) {
        this.#emit({ kind: "flags", mailboxId, uids: changedUids });
      }
      return { updated, modified };
    });
  }

  copy(fromMailboxId: number, uids: readonly number[], toMailboxId: number): Promise<CopyResult> {
    return this.#run(() => this.#copy(fromMailboxId, uids, toMailboxId, false));
  }

  move(fromMailboxId: number, uids: readonly number[], toMailboxId: number): Promise<CopyResult> {
    return this.#run(() => this.#copy(fromMailboxId, uids, toMailboxId, true));
  }

  expunge(mailboxId: number, uids?: readonly number[]): Promise<number[]> {
    return this.#run(() => {
      const m = this.#mailboxById(mailboxId);
      const candidates = uids === undefined ? [...m.messages.keys()] : uniqueSorted(uids);
      const gone = candidates.filter((uid) => {
        const r = m.messages.get(uid);
        return r !== undefined && hasFlag(r.flags, DELETED);
      });
      this.#removeMessages(m, gone);
      return gone;
    });
  }

  changesSince(mailboxId: number, modseq: number): Promise<ChangesSince> {
    return this.#run(() => {
      const m = this.#mailboxById(mailboxId);
      const changed = [...m.messages.values()].filter((r) => r.modseq > modseq).map(metaView);
      const vanished = m.expunged.filter((e) => e.modseq > modseq).map((e) => e.uid);
      return { changed, vanished: vanished.sort((a, b) => a - b) };
    });
  }

  watch(mailboxId: number, listener: (event: MailboxEvent) => void): () => void {
    return this.#hub.watch(mailboxId, listener);
  }

  close(): Promise<void> {
    this.#closed = true;
    this.#hub.clear();
    return Promise.resolve();
  }

  // Internals

  /**
   * Runs one store call. Events it raises are delivered once the call has finished, so a
   * listener never observes a half-done change (as with a committed SQL transaction).
   */
  #run<T>(body: () => T): Promise<T> {
    const outer = this.#pending === null;
    if (outer) this.#pending = [];
    let events: MailboxEvent[] = [];
    try {
      if (this.#closed) throw new MailStoreError("cannot", "Mail store is closed");
      const value = body();
      if (outer) events = this.#pending ?? [];
      return Promise.resolve(value);
    } catch (e) {
      return Promise.reject(e);
    } finally {
      if (outer) {
        this.#pending = null;
        for (const event of events) this.#hub.emit(event);
      }
    }
  }

  #emit(event: MailboxEvent): void {
    if (this.#pending) this.#pending.push(event);
    else this.#hub.emit(event);
  }

  #account(name: string): AccountRecord {
    const a = this.#accounts.get(name);
    if (!a) throw new MailStoreError("nonexistent", "No such account");
    return a;
  }

  #accountById(id: number): AccountRecord {
    const a = this.#accountsById.get(id);
    if (!a) throw new MailStoreError("nonexistent", "No such account");
    return a;
  }

  #mailboxesOf(accountId: number): MailboxRecord[] {
    return [...this.#mailboxes.values()].filter((m) => m.accountId === accountId);
  }

  #findMailbox(accountId: number, canonical: string): MailboxRecord | undefined {
    for (const m of this.#mailboxes.values()) {
      if (m.accountId === accountId && m.name === canonical) return m;
    }
    return undefined;
  }

  #mailbox(accountId: number, canonical: string): MailboxRecord {
    const m = this.#findMailbox(accountId, canonical);
    if (!m) throw new MailStoreError("nonexistent", "No such mailbox");
    return m;
  }

  #mailboxById(id: number): MailboxRecord {
    const m = this.#mailboxes.get(id);
    if (!m) throw new MailStoreError("nonexistent", "No such mailbox");
    return m;
  }

  #newMailbox(accountId: number, name: string, specialUse: SpecialUse | null): MailboxRecord {
    // A fresh UIDVALIDITY per mailbox instance, so a recreated name never reuses one.
    this.#lastUidValidity = Math.max(this.#lastUidValidity + 1, Math.floor(Date.now() / 1000));
    const m: MailboxRecord = {
      id: this.#nextMailboxId++,
      accountId,
      name,
      uidValidity: this.#lastUidValidity,
      objectId: newObjectId("F"),
      uidNext: 1,
      highestModseq: 1,
      specialUse,
      messages: new Map(),
      expunged: [],
    };
    this.#mailboxes.set(m.id, m);
    return m;
  }

  /** RFC 9051, Section 6.3.6: renaming INBOX moves its messages and leaves INBOX empty. */
  #renameInbox(inbox: MailboxRecord, target: string): void {
    const fresh = this.#newMailbox(inbox.accountId, target, null);
    const uids = [...inbox.messages.keys()];
    this.#copyInto(inbox, uids, fresh);
    this.#removeMessages(inbox, uids);
  }

  #copy(fromId: number, uids: readonly number[], toId: number, move: boolean): CopyResult {
    const from = this.#mailboxById(fromId);
    const to = this.#mailboxById(toId);
    if (from.accountId !== to.accountId) {
      throw new MailStoreError("cannot", "Cannot copy between accounts");
    }
    const present = uniqueSorted(uids).filter((uid) => from.messages.has(uid));
    const mapping = this.#copyInto(from, present, to);
    if (move) this.#removeMessages(from, present);
    return { uidValidity: to.uidValidity, mapping };
  }

  #copyInto(
    from: MailboxRecord,
    uids: readonly number[],
    to: MailboxRecord,
  ): [number, number][] {
    const mapping: [number, number][] = [];
    const now = Date.now();
    for (const uid of uids) {
      const r = from.messages.get(uid);
      if (!r) continue;
      const newUid = to.uidNext++;
      to.messages.set(newUid, {
        ...r,
        uid: newUid,
        modseq: ++to.highestModseq,
        flags: [...r.flags],
        saveDate: now,
      });
      mapping.push([uid, newUid]);
    }
    if (mapping.length > 0) {
      this.#emit({ kind: "append", mailboxId: to.id, uids: mapping.map(([, u]) => u) });
    }
    return mapping;
  }

  #removeMessages(m: MailboxRecord, uids: readonly number[]): void {
    for (const uid of uids) {
      if (!m.messages.delete(uid)) continue;
      m.expunged.push({ uid, modseq: ++m.highestModseq });
    }
    if (uids.length > 0) this.#emit({ kind: "expunge", mailboxId: m.id, uids: [...uids] });
  }
}

function accountView(a: AccountRecord): Account {
  return { id: a.id, name: a.name, passwordHash: a.passwordHash };
}

function mailboxView(m: MailboxRecord, account: AccountRecord): Mailbox {
  let unseen = 0;
  let size = 0;
  for (const r of m.messages.values()) {
    if (!hasFlag(r.flags, SEEN)) unseen++;
    size += r.raw.byteLength;
  }
  return {
    id: m.id,
    accountId: m.accountId,
    name: m.name,
    uidValidity: m.uidValidity,
    uidNext: m.uidNext,
    highestModseq: m.highestModseq,
    subscribed: account.subscriptions.has(m.name),
    specialUse: m.specialUse,
    messages: m.messages.size,
    unseen,
    size,
    objectId: m.objectId,
  };
}

function metaView(r: MessageRecord): MessageMeta {
  return {
    uid: r.uid,
    modseq: r.modseq,
    flags: [...r.flags],
    internalDate: r.internalDate,
    size: r.raw.byteLength,
  };
}

function uniqueSorted(uids: readonly number[]): number[] {
  return [...new Set(uids)].sort((a, b) => a - b);
}

/** INBOX first, then by code point, so LIST output is stable. */
function compareNames(a: string, b: string): number {
  if (a === b) return 0;
  if (a === "INBOX") return -1;
  if (b === "INBOX") return 1;
  return a < b ? -1 : 1;
}
