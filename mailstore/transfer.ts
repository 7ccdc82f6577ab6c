/**
 * Copying every account from one store to another exactly (`postern store copy`): the same
 * UIDVALIDITY, UIDs, MODSEQs, object ids, flags, dates, bytes, subscriptions, addresses and expunge
 * records, so that a client synchronised before the move (CONDSTORE/QRESYNC) does not resync.
 * Both SQLite and PostgreSQL stores implement `ExactStore`; it is kept apart from `MailStore`
 * because only this tool may write UIDs and MODSEQs as given.
 */
import type { SpecialUse } from "./mail_store.ts";
import { MailStoreError } from "./mail_store.ts";

export interface AccountRecord {
  readonly name: string;
  readonly passwordHash: string | null;
  readonly addresses: readonly string[];
  readonly subscriptions: readonly string[];
}

export interface MailboxRecord {
  /** The id in the store it was read from (not carried over). */
  readonly id: number;
  readonly name: string;
  readonly uidValidity: number;
  readonly uidNext: number;
  readonly highestModseq: number;
  readonly specialUse: SpecialUse | null;
  readonly vanishedFloor: number;
  /** MAILBOXID (RFC 8474), carried over. */
  readonly objectId: string;
}

export interface MessageRecord {
  readonly uid: number;
  readonly modseq: number;
  readonly flags: readonly string[];
  readonly internalDate: number;
  readonly raw: Uint8Array;
  readonly summary: string | null;
  readonly searchText: string | null;
  /** EMAILID, THREADID (RFC 8474) and save date (RFC 8514), carried over. */
  readonly emailId: string;
  readonly threadId: string;
  readonly saveDate: number | null;
}

export interface ExpungedRecord {
  readonly uid: number;
  readonly modseq: number;
  readonly expungedAt: number;
}

/** What a store offers `copyStore`, besides being a MailStore. */
export interface ExactStore {
  exportAccounts(): Promise<AccountRecord[]>;
  exportMailboxes(accountName: string): Promise<MailboxRecord[]>;
  /** Up to `limit` messages with a UID above `afterUid`, in UID order. */
  exportMessages(mailboxId: number, afterUid: number, limit: number): Promise<MessageRecord[]>;
  exportExpunged(mailboxId: number): Promise<ExpungedRecord[]>;
  /**
   * Creates the account with exactly these mailboxes (no defaults), their UIDVALIDITY, UIDNEXT
   * and HIGHESTMODSEQ as given; returns the new mailbox ids by name.
   */
  importAccount(
    account: AccountRecord,
    mailboxes: readonly MailboxRecord[],
  ): Promise<Map<string, number>>;
  /** Inserts messages with their UIDs and MODSEQs as given, in one transaction. */
  importMessages(mailboxId: number, messages: readonly MessageRecord[]): Promise<void>;
  importExpunged(mailboxId: number, records: readonly ExpungedRecord[]): Promise<void>;
}

/** What `copyStore` copied. */
export interface CopySummary {
  readonly accounts: number;
  readonly mailboxes: number;
  readonly messages: number;
  readonly bytes: number;
}

/** Messages read and written per transaction. */
const BATCH = 200;

/**
 * Copies every account of `from` into `to`, which must hold no account (fail closed: a copy
 * never merges into, or overwrites, mail that is already there).
 */
export async function copyStore(
  from: ExactStore,
  to: ExactStore,
  progress: (line: string) => void = () => {},
): Promise<CopySummary> {
  if ((await to.exportAccounts()).length > 0) {
    throw new MailStoreError("cannot", "The destination store already holds accounts");
  }
  let mailboxes = 0;
  let messages = 0;
  let bytes = 0;
  const accounts = await from.exportAccounts();
  for (const account of accounts) {
    const boxes = await from.exportMailboxes(account.name);
    const ids = await to.importAccount(account, boxes);
    for (const box of boxes) {
      const target = ids.get(box.name)!;
      let after = 0;
      for (;;) {
        const batch = await from.exportMessages(box.id, after, BATCH);
        if (batch.length === 0) break;
        await to.importMessages(target, batch);
        messages += batch.length;
        for (const m of batch) bytes += m.raw.byteLength;
        after = batch.at(-1)!.uid;
      }
      await to.importExpunged(target, await from.exportExpunged(box.id));
      mailboxes++;
    }
    progress(`${account.name}: ${boxes.length} mailboxes`);
  }
  return { accounts: accounts.length, mailboxes, messages, bytes };
}
