/**
 * The LMTP backend: resolves recipients through the local accounts' addresses and the
 * directory, and delivers into the mail store with the trace headers prepended.
 *
 * Durability: a recipient's 250 is sent only after `MailStore.deliverBatch` has committed the
 * message and its dedup record in one transaction (shared with other deliveries that arrived
 * at the same time: group commit). The dedup key is a hash of the recipient,
 * the sender and the message as received (before our headers), so an MTA that sends the same
 * message again after a lost reply finds it already stored within `dedup_window`.
 *
 * A large message (`LARGE_DELIVERY_BYTES` or more) is delivered one recipient at a time with
 * `MailStore.deliver` instead, so that nothing of it runs long on the event loop: its hash and
 * each recipient's copy (trace headers and message) are made in paced slices, its MIME data is
 * derived on the derive thread, and its bytes are handed over to the store (the SQLite store
 * writes them on its blob writer thread). Each 250 still follows that recipient's commit.
 */
import { createHash } from "node:crypto";
import type { LmtpConfig, QuotaConfig } from "../config/mod.ts";
import type {
  DeliverOptions,
  DeliverResult,
  DeliveryItem,
  DeliveryOutcome,
  MailStore,
} from "../../mailstore/mail_store.ts";
import { MailStoreError } from "../../mailstore/mail_store.ts";
import type { Directory } from "../directory/directory.ts";
import type { Metrics } from "../metrics/metrics.ts";
import {
  type Envelope,
  formatMailbox,
  type LmtpBackend,
  type LmtpReply,
  type Mailbox,
  type RecipientVerdict,
  reply,
} from "../../protocol/lmtp/mod.ts";
import {
  type DerivedData,
  derivedData,
  type DeriveOffThread,
  mimeSupport,
  OFF_THREAD_DERIVE_BYTES,
} from "../../protocol/imap/mime_support.ts";
import { Pacer } from "../../protocol/event_loop.ts";
import { quotaLimits } from "../config/quota.ts";
import { getLogger } from "../log.ts";

const log = getLogger(["lmtp"]);
const encoder = new TextEncoder();

/** An accepted recipient: the address as given and the account it delivers to. */
export interface LmtpRecipient {
  readonly address: string;
  readonly accountId: number;
  readonly accountName: string;
  /** The `detail` of `user+detail@domain`, or null. */
  readonly detail: string | null;
}

export interface LmtpDeliveryOptions {
  readonly store: MailStore;
  /** The current directory (it changes on reload), or null without one. */
  readonly directory: () =>
    | (Pick<Directory, "findRecipient"> & Partial<Pick<Directory, "storageQuota" | "messageQuota">>)
    | null;
  /** The current settings (they change on reload). */
  readonly settings: () => { readonly lmtp: LmtpConfig; readonly quota: QuotaConfig };
  /** Our name in the Received line. */
  readonly hostname: string;
  /** Clock (default `Date.now`). */
  readonly now?: () => number;
  /** Counts each recipient's answer (default: not counted). */
  readonly metrics?: Pick<Metrics, "lmtpDelivery">;
  /** Derives the MIME data of large messages on another thread (default: on the loop). */
  readonly deriveOffThread?: DeriveOffThread;
}

/**
 * Messages at least this large are delivered recipient by recipient, paced, derived off the
 * event loop and handed over to the store (see the module's doc).
 */
export const LARGE_DELIVERY_BYTES = OFF_THREAD_DERIVE_BYTES;

/** Bytes hashed or copied between two looks at the pacer (well under 1 ms of work each). */
const SLICE_BYTES = 256 * 1024;

const UNKNOWN = reply(550, "5.1.1", "No such user here");
const DIRECTORY_DOWN = reply(451, "4.4.3", "Directory unavailable, try again later");
const TEMP_FAILURE = reply(451, "4.3.0", "Temporary failure, try again later");

/** Resolves recipients and delivers messages; `backend(peer)` serves one connection. */
export class LmtpDelivery {
  readonly #options: LmtpDeliveryOptions;
  readonly #now: () => number;
  readonly #commits: GroupCommit;
  #nextId = 0;

  constructor(options: LmtpDeliveryOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#commits = new GroupCommit(options.store);
  }

  /** The backend of one connection; `peer` is named in the Received line. */
  backend(peer: string): LmtpBackend<LmtpRecipient> {
    return {
      recipient: (to) => this.#recipient(to),
      deliver: (envelope, recipients, message) =>
        this.#deliver(peer, envelope, recipients, message),
    };
  }

  async #recipient(to: Mailbox): Promise<RecipientVerdict<LmtpRecipient>> {
    const { lmtp } = this.#options.settings();
    const address = formatMailbox(to);
    const candidates: [string, string | null][] = [[address, null]];
    const delimiter = lmtp.recipientDelimiter;
    if (delimiter !== "" && !to.localPart.startsWith('"')) {
      const i = to.localPart.indexOf(delimiter);
      if (i > 0) {
        const base = to.localPart.slice(0, i);
        candidates.push([
          to.domain === "" ? base : `${base}@${to.domain}`,
          to.localPart.slice(i + delimiter.length),
        ]);
      }
    }
    const store = this.#options.store;
    for (const [candidate, detail] of candidates) {
      const account = await store.findAccountByAddress(candidate);
      if (account !== null) {
        return accept(address, account.id, account.name, detail);
      }
    }
    const directory = this.#options.directory();
    if (directory === null) return { accept: false, reply: UNKNOWN };
    for (const [candidate, detail] of candidates) {
      const found = await directory.findRecipient(candidate, lmtp.directoryFilter);
      if (found.kind === "failed") return { accept: false, reply: DIRECTORY_DOWN };
      if (found.kind === "none") continue;
      // Directory users get their mail store on first delivery, as on first login.
      let account = await store.getAccount(found.username);
      if (account === null) {
        await store.createAccount(found.username, null).catch((e) => {
          if (!(e instanceof MailStoreError && e.code === "alreadyexists")) throw e;
        });
        account = await store.getAccount(found.username);
      }
      if (account === null) return { accept: false, reply: TEMP_FAILURE };
      return accept(address, account.id, account.name, detail);
    }
    return { accept: false, reply: UNKNOWN };
  }

  async #deliver(
    peer: string,
    envelope: Envelope,
    recipients: readonly LmtpRecipient[],
    message: Uint8Array,
  ): Promise<LmtpReply[]> {
    if (message.length >= LARGE_DELIVERY_BYTES) {
      return this.#count(await this.#deliverLarge(peer, envelope, recipients, message));
    }
    const { lmtp, quota } = this.#options.settings();
    const sender = envelope.sender === null ? "" : formatMailbox(envelope.sender);
    const digest = createHash("sha256").update(message).digest("hex");
    const id = `${this.#now().toString(36)}${(this.#nextId++ % 1296).toString(36)}`;
    const replies: (LmtpReply | null)[] = [];
    const pending: { index: number; recipient: LmtpRecipient; mailbox: string }[] = [];
    const items: DeliveryItem[] = [];
    const delivered = deliveredTo(message);
    for (const [index, r] of recipients.entries()) {
      if (delivered.has(r.address.toLowerCase())) {
        // Our own Delivered-To for this address is already there: an alias or forward loop.
        log.warn("Refused a looping message for {account}", { account: r.accountName });
        replies.push(reply(554, "5.4.6", `<${r.address}> Mail loop detected`));
        continue;
      }
      try {
        const mailbox = await this.#mailboxFor(r, lmtp.saveToDetailMailbox);
        const raw = concat(
          encoder.encode(this.#traceHeaders(peer, envelope, sender, r.address, id)),
          message,
        );
        items.push({
          mailboxId: mailbox.id,
          input: { raw, ...derivedData(mimeSupport, raw) },
          options: this.#deliverOptions(r, sender, digest, lmtp.dedupWindowMs, quota),
        });
        pending.push({ index, recipient: r, mailbox: mailbox.name });
        replies.push(null);
      } catch (e) {
        replies.push(this.#failure(r, e));
      }
    }
    const started = performance.now();
    const outcomes = await this.#commits.submit(items);
    outcomes.forEach((outcome, i) => {
      const { index, recipient, mailbox } = pending[i]!;
      replies[index] = outcome.ok
        ? this.#outcome(recipient, mailbox, outcome.result, sender, message.length, started)
        : this.#failure(recipient, outcome.error);
    });
    return this.#count(replies.map((r) => r ?? TEMP_FAILURE));
  }

  /**
   * A large message: hashed in paced slices, then for each recipient in turn a copy with its
   * trace headers made in paced slices, derived on the derive thread, and handed over to
   * `MailStore.deliver`, which answers after the commit. One copy exists at a time.
   */
  async #deliverLarge(
    peer: string,
    envelope: Envelope,
    recipients: readonly LmtpRecipient[],
    message: Uint8Array,
  ): Promise<LmtpReply[]> {
    const sender = envelope.sender === null ? "" : formatMailbox(envelope.sender);
    const pacer = new Pacer();
    const digest = await pacedDigest(message, pacer);
    const id = `${this.#now().toString(36)}${(this.#nextId++ % 1296).toString(36)}`;
    const delivered = deliveredTo(message);
    const replies: LmtpReply[] = [];
    for (const r of recipients) {
      if (delivered.has(r.address.toLowerCase())) {
        log.warn("Refused a looping message for {account}", { account: r.accountName });
        replies.push(reply(554, "5.4.6", `<${r.address}> Mail loop detected`));
        continue;
      }
      const { lmtp, quota } = this.#options.settings();
      try {
        const box = await this.#mailboxFor(r, lmtp.saveToDetailMailbox);
        const head = encoder.encode(this.#traceHeaders(peer, envelope, sender, r.address, id));
        const copy = await pacedConcat(head, message, pacer);
        const { raw, derived } = await this.#derive(copy);
        const started = performance.now();
        const result = await this.#options.store.deliver(
          box.id,
          { raw, ...derived, handOver: true },
          this.#deliverOptions(r, sender, digest, lmtp.dedupWindowMs, quota),
        );
        replies.push(this.#outcome(r, box.name, result, sender, message.length, started));
      } catch (e) {
        replies.push(this.#failure(r, e));
      }
    }
    return replies;
  }

  /** The MIME data of `raw`, on the derive thread when there is one, with the bytes to store. */
  async #derive(raw: Uint8Array): Promise<{ raw: Uint8Array; derived: DerivedData }> {
    const done = await this.#options.deriveOffThread?.(raw) ?? null;
    if (done === null) return { raw, derived: derivedData(mimeSupport, raw) };
    return { raw: done.raw, derived: done.derived ?? derivedData(mimeSupport, done.raw) };
  }

  #deliverOptions(
    r: LmtpRecipient,
    sender: string,
    digest: string,
    windowMs: number,
    quota: QuotaConfig,
  ): DeliverOptions {
    return {
      deliveryKey: createHash("sha256")
        .update(`${r.accountId}\n${r.address.toLowerCase()}\n${sender}\n${digest}`)
        .digest("hex"),
      windowMs,
      quota: quotaLimits(
        { quota },
        r.accountName,
        this.#options.directory()?.storageQuota?.(r.accountName),
        this.#options.directory()?.messageQuota?.(r.accountName),
      ),
      now: this.#now(),
    };
  }

  /** Counts each answer in the metrics and gives them back. */
  #count(answers: LmtpReply[]): LmtpReply[] {
    for (const answer of answers) {
      this.#options.metrics?.lmtpDelivery(
        answer.code < 400 ? "ok" : answer.code < 500 ? "temporary" : "permanent",
      );
    }
    return answers;
  }

  #failure(r: LmtpRecipient, e: unknown): LmtpReply {
    if (e instanceof MailStoreError && e.code === "limit") {
      return reply(552, "5.3.4", "Message too big for this mailbox");
    }
    log.error("Delivery to {account} failed: {error}", {
      account: r.accountName,
      error: e instanceof Error ? `${e.name}: ${e.message}` : String(e),
    });
    return TEMP_FAILURE;
  }

  async #mailboxFor(r: LmtpRecipient, toDetail: boolean) {
    const store = this.#options.store;
    if (toDetail && r.detail !== null && r.detail !== "") {
      // Like Dovecot's lmtp_save_to_detail_mailbox: the folder must exist already.
      const box = await store.getMailbox(r.accountId, r.detail).catch(() => null);
      if (box !== null) return box;
    }
    const inbox = await store.getMailbox(r.accountId, "INBOX");
    if (inbox === null) throw new Error(`Account ${r.accountName} has no INBOX`);
    return inbox;
  }

  #outcome(
    r: LmtpRecipient,
    mailbox: string,
    result: DeliverResult,
    sender: string,
    size: number,
    started: number,
  ): LmtpReply {
    switch (result.kind) {
      case "stored":
        log.info("Delivered to {account}/{mailbox} uid {uid} from <{sender}>, {size} octets", {
          account: r.accountName,
          mailbox,
          uid: result.uid,
          sender,
          size,
          ms: Math.round(performance.now() - started),
        });
        return reply(250, "2.0.0", `<${r.address}> Saved`);
      case "duplicate":
        log.info("Dropped a resent copy for {account} (already stored as uid {uid})", {
          account: r.accountName,
          uid: result.uid,
        });
        return reply(250, "2.0.0", `<${r.address}> Already saved`);
      case "overquota":
        log.info("Refused a delivery to {account}: {resource} quota exceeded", {
          account: r.accountName,
          resource: result.resource,
        });
        return reply(552, "5.2.2", `<${r.address}> Mailbox is over quota`);
      default: {
        const unreachable: never = result;
        throw new Error(`Unknown delivery result ${JSON.stringify(unreachable)}`);
      }
    }
  }

  /**
   * Return-Path (RFC 5321, Section 4.4), Delivered-To, and the Received line naming the
   * client and us, with the protocol keyword of RFC 3848 / RFC 6531.
   */
  #traceHeaders(
    peer: string,
    envelope: Envelope,
    sender: string,
    recipient: string,
    id: string,
  ): string {
    const from = envelope.lhlo.replace(/[^\x21-\x7e]/g, "?").slice(0, 255);
    const protocol = envelope.smtputf8 ? "UTF8LMTP" : "LMTP";
    return `Return-Path: <${sender}>\r\n` +
      `Delivered-To: ${recipient}\r\n` +
      `Received: from ${from} (${peer})\r\n` +
      `\tby ${this.#options.hostname} (Postern) with ${protocol} id ${id}\r\n` +
      `\tfor <${recipient}>; ${rfc5322Date(new Date(this.#now()))}\r\n`;
  }
}

/** Most deliveries committed in one transaction. */
const MAX_BATCH = 64;

/**
 * Group commit: deliveries that arrive while the event loop is busy (a commit blocks it, since
 * SQLite is synchronous) are committed together on the next turn, so that concurrent clients
 * share one sync instead of queueing for one each. Every delivery still resolves only after
 * the transaction holding it has committed.
 */
class GroupCommit {
  readonly #store: Pick<MailStore, "deliverBatch">;
  #queue: {
    item: DeliveryItem;
    resolve: (o: DeliveryOutcome) => void;
  }[] = [];
  #scheduled = false;

  constructor(store: Pick<MailStore, "deliverBatch">) {
    this.#store = store;
  }

  submit(items: readonly DeliveryItem[]): Promise<DeliveryOutcome[]> {
    if (items.length === 0) return Promise.resolve([]);
    const results = Promise.all(
      items.map((item) =>
        new Promise<DeliveryOutcome>((resolve) => this.#queue.push({ item, resolve }))
      ),
    );
    if (!this.#scheduled) {
      this.#scheduled = true;
      // A timer, not a microtask: socket reads that are already waiting run first and join.
      setTimeout(() => void this.#flush(), 0);
    }
    return results;
  }

  async #flush(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue.splice(0, MAX_BATCH);
        let outcomes: DeliveryOutcome[];
        try {
          outcomes = await this.#store.deliverBatch(batch.map((b) => b.item));
        } catch (error) {
          outcomes = batch.map(() => ({ ok: false, error }));
        }
        batch.forEach((b, i) =>
          b.resolve(outcomes[i] ?? { ok: false, error: new Error("No outcome") })
        );
      }
    } finally {
      this.#scheduled = false;
    }
  }
}

/** Longest header section searched for Delivered-To lines. */
const MAX_HEADER_SCAN = 256 * 1024;

/** The addresses of the message's Delivered-To header fields, lower-cased. */
export function deliveredTo(message: Uint8Array): Set<string> {
  const head = message.subarray(0, MAX_HEADER_SCAN);
  let end = indexOfBlankLine(head);
  if (end === -1) end = head.length;
  const text = new TextDecoder("latin1").decode(head.subarray(0, end));
  const out = new Set<string>();
  for (const m of text.matchAll(/^Delivered-To:[ \t]*<?([^\s<>]+)>?[ \t]*$/gim)) {
    out.add(m[1]!.toLowerCase());
  }
  return out;
}

/** Where the header section ends (the offset of its blank line), or -1. */
function indexOfBlankLine(bytes: Uint8Array): number {
  if (bytes[0] === 0x0a || (bytes[0] === 0x0d && bytes[1] === 0x0a)) return 0;
  for (
    let i = bytes.indexOf(0x0a);
    i !== -1 && i + 1 < bytes.length;
    i = bytes.indexOf(0x0a, i + 1)
  ) {
    if (bytes[i + 1] === 0x0a || (bytes[i + 1] === 0x0d && bytes[i + 2] === 0x0a)) return i;
  }
  return -1;
}

function accept(
  address: string,
  accountId: number,
  accountName: string,
  detail: string | null,
): RecipientVerdict<LmtpRecipient> {
  return { accept: true, recipient: { address, accountId, accountName, detail } };
}

const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** A date-time as RFC 5322, Section 3.3 writes it, in UTC. */
export function rfc5322Date(d: Date): string {
  const two = (n: number) => String(n).padStart(2, "0");
  return `${DAYS[d.getUTCDay()]}, ${two(d.getUTCDate())} ${MONTHS[d.getUTCMonth()]} ` +
    `${d.getUTCFullYear()} ${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:` +
    `${two(d.getUTCSeconds())} +0000`;
}

/** The SHA-256 of `message` in hex, hashed in slices with a yield whenever `pacer` is due. */
async function pacedDigest(message: Uint8Array, pacer: Pacer): Promise<string> {
  const hash = createHash("sha256");
  for (let at = 0; at < message.length; at += SLICE_BYTES) {
    if (pacer.due()) await pacer.yield();
    hash.update(message.subarray(at, at + SLICE_BYTES));
  }
  return hash.digest("hex");
}

/**
 * `a` then `b` in a buffer of their own (so that it can be handed over whole), copied in slices
 * with a yield whenever `pacer` is due.
 */
async function pacedConcat(a: Uint8Array, b: Uint8Array, pacer: Pacer): Promise<Uint8Array> {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  for (let at = 0; at < b.length; at += SLICE_BYTES) {
    if (pacer.due()) await pacer.yield();
    out.set(b.subarray(at, at + SLICE_BYTES), a.length + at);
  }
  return out;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}
