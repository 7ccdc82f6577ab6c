/**
 * The MailStore over PostgreSQL, for sites that run several Postern nodes on the same accounts
 * (driver: `postgres`, porsager's postgres.js).
 *
 * - Every mutating method is one transaction. A writer of a mailbox first locks its row
 *   (`SELECT ... FOR UPDATE`); that row holds `uidnext` and `highestmodseq`, so UIDs and
 *   MODSEQs are handed out one transaction at a time whichever node runs it: UIDs strictly
 *   grow, are never reused, and MODSEQs are monotonic. Two mailboxes are locked in id order.
 * - A method resolves after COMMIT has returned; with PostgreSQL's default
 *   `synchronous_commit = on` the change is then on disk (and on a synchronous standby, where
 *   one is configured).
 * - Changes reach `watch()` listeners of this instance straight after the commit, and those of
 *   other instances (other nodes) through LISTEN/NOTIFY: the transaction sends a small notice
 *   (mailbox id, kind, and a UID or MODSEQ range) that PostgreSQL delivers only once it has
 *   committed, and the receiving instance re-reads the UIDs it names.
 * - Schema migrations run at open under an advisory lock, so nodes starting together do not
 *   race.
 */
import postgres from "postgres";
import { getLogger } from "@logtape/logtape";
import { checkServerIdentity, type PeerCertificate } from "node:tls";
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
import { checkObjectId, newObjectId } from "../object_id.ts";
import { checkMessageSize, MAX_MESSAGE_BYTES } from "../limits.ts";
import { MIGRATIONS } from "./schema.ts";
import type { SessionRegistry } from "../session_registry.ts";
import type {
  AccountRecord,
  ExactStore,
  ExpungedRecord,
  MailboxRecord,
  MessageRecord,
} from "../transfer.ts";

const log = getLogger(["postern", "mailstore", "postgres"]);

/** Options of `openPostgresMailStore`. */
export interface PostgresMailStoreOptions {
  /** `postgres://user[:password]@host:port/database` */
  readonly url: string;
  /** Overrides the URL's password (read from a `password_file`). */
  readonly password?: string;
  /** Connections in the pool (default 10), plus one for LISTEN. */
  readonly poolSize?: number;
  /**
   * TLS to the server: "disable" (the default), "require" (encrypted, certificate not
   * checked) or "verify-full" (checked against `tlsCa`, or the system roots, and the host name).
   */
  readonly tls?: "disable" | "require" | "verify-full";
  /** PEM of the CA that issued the server's certificate, for "verify-full". */
  readonly tlsCa?: string;
  /** Seconds to wait for a connection (default 10). */
  readonly connectTimeoutSeconds?: number;
  /** Expunge records younger than this stay for QRESYNC (default 30 days). */
  readonly expungedRetentionMs?: number;
  /** The most recent expunge records per mailbox that stay regardless of age (default 10,000). */
  readonly expungedKeep?: number;
  /** Clock for expunge timestamps, pruning and UIDVALIDITY (default `Date.now`). */
  readonly now?: () => number;
  /** Hears about change-feed listeners that throw. */
  readonly onListenerError?: (error: unknown) => void;
  /** Largest message `append` accepts (default `MAX_MESSAGE_BYTES`). */
  readonly maxMessageBytes?: number;
  /**
   * How long a session registered for the cross-node connection limit outlives its node's
   * last renewal (default 60 s): the sessions of a node that died stop counting then.
   */
  readonly sessionTtlMs?: number;
}

/** The NOTIFY channel of mailbox changes. */
export const CHANGE_CHANNEL = "postern_mailbox";

/** The advisory lock key migrations run under ("post", 1). */
const MIGRATION_LOCK = [0x706f7374, 1] as const;

const DAY_MS = 86_400_000;

/** How often an instance pings itself through NOTIFY, and when silence means LISTEN is lost. */
const PING_MS = 1000;
const LISTEN_LOST_MS = 3500;

/**
 * How long `settle()` waits for its own notice at most: a round trip when all is well; the
 * bound only matters while LISTEN is lost (until the watchdog listens again).
 */
export const SETTLE_TIMEOUT_MS = 1000;

/** Transient conflicts after which a transaction is simply run again. */
const RETRY_CODES = new Set(["40001", "40P01"]);
const MAX_ATTEMPTS = 5;

/** int8 columns come back as JS numbers: every value the store keeps is below 2^53. */
const INT8 = {
  to: 20,
  from: [20],
  serialize: (x: number) => String(x),
  parse: (x: string) => Number(x),
};

/**
 * The host the server certificate must name under "verify-full" (RFC 6125): the URL's host,
 * a DNS name or an IP address (then matched against the IP SANs).
 */
function expectedHost(url: string): string {
  let host: string;
  try {
    host = new URL(url).hostname;
  } catch {
    throw new Error("store.tls verify-full needs a URL with one host");
  }
  if (host === "") throw new Error("store.tls verify-full needs a URL with a host");
  return host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
}

function connect(options: PostgresMailStoreOptions, max: number) {
  // For an IP address host the driver sends no server name, and the TLS layer then checks the
  // certificate against "localhost": an IP-only certificate failed, and any certificate for
  // "localhost" passed for every address. The identity is checked against the URL's host.
  const ssl = options.tls === "require"
    ? "require" as const
    : options.tls === "verify-full"
    ? (() => {
      const host = expectedHost(options.url);
      return {
        rejectUnauthorized: true,
        ...(options.tlsCa ? { ca: options.tlsCa } : {}),
        checkServerIdentity: (_name: string, certificate: PeerCertificate) =>
          checkServerIdentity(host, certificate),
      };
    })()
    : false;
  return postgres(options.url, {
    max,
    ssl,
    connect_timeout: options.connectTimeoutSeconds ?? 10,
    types: { int8: INT8 },
    onnotice: () => {},
    ...(options.password !== undefined ? { password: options.password } : {}),
  });
}

type Sql = ReturnType<typeof connect>;
/** What a query can run on: the pool, a transaction or a savepoint. */
type Queryable = Pick<Sql, "unsafe">;
type TxSql = postgres.TransactionSql<{ int8: number }>;
type Param = number | string | boolean | null | Uint8Array | readonly number[] | readonly string[];

/** Work in one transaction: where to query, and what to announce once it has committed. */
interface Tx {
  readonly q: TxSql;
  readonly events: MailboxEvent[];
  readonly notices: string[];
}

interface MailboxRow {
  id: number;
  account_id: number;
  name: string;
  uidvalidity: number;
  uidnext: number;
  highestmodseq: number;
  special_use: string | null;
  message_count: number;
  unseen_count: number;
  total_size: number;
  vanished_floor: number;
  subscribed: boolean;
  object_id: string;
}

interface MessageRow {
  uid: number;
  modseq: number;
  flags: string;
  internal_date: number;
  size: number;
  blob_id: number;
  email_id: string;
  thread_id: string;
  save_date: number | null;
}

type MessageTuple = [
  number,
  number,
  string,
  number,
  number,
  number,
  string,
  string,
  number | null,
];

function messageRow(t: MessageTuple): MessageRow {
  const [uid, modseq, flags, internal_date, size, blob_id, email_id, thread_id, save_date] = t;
  return { uid, modseq, flags, internal_date, size, blob_id, email_id, thread_id, save_date };
}

interface AccountRow {
  id: number;
  name: string;
  password_hash: string | null;
}

const MAILBOX_COLUMNS = `m.id, m.account_id, m.name, m.uidvalidity, m.uidnext, m.highestmodseq,
  m.special_use, m.message_count, m.unseen_count, m.total_size, m.vanished_floor, m.object_id,
  EXISTS (SELECT 1 FROM subscriptions s WHERE s.account_id = m.account_id AND s.name = m.name)
    AS subscribed`;

const MESSAGE_COLUMNS =
  "uid, modseq, flags, internal_date, size, blob_id, email_id, thread_id, save_date";

/** Mailbox names sort by code point, as in SQLite, whatever the database's collation. */
const MAILBOX_ORDER = `ORDER BY m.name <> 'INBOX', m.name COLLATE "C"`;

/**
 * Connects, applies pending migrations, starts listening for other nodes' changes and prunes
 * old expunge records. Rejects when the server cannot be reached.
 */
export async function openPostgresMailStore(
  options: PostgresMailStoreOptions,
): Promise<PostgresMailStore> {
  guardDriverWriteAfterClose();
  const store = new PostgresMailStore(options);
  try {
    await store.start();
  } catch (e) {
    await store.close();
    throw e;
  }
  return store;
}

let guarded = false;

/**
 * postgres.js 3.4.9 under Deno, when the server restarts mid-load, can flush a buffered write
 * from a timer after its connection closed (a `TypeError` on the null socket), and Deno's
 * socket layer can reject a read with ECONNRESET that nobody awaits. Uncaught, either would
 * end the whole server; the driver has already failed the queries of that connection with
 * CONNECTION_CLOSED, so these are logged and dropped.
 */
function guardDriverWriteAfterClose(): void {
  if (guarded) return;
  guarded = true;
  globalThis.addEventListener("error", (event) => {
    const error = event.error;
    if (
      error instanceof TypeError &&
      /postgres\/[\d.]+\/src\/connection\.js/.test(error.stack ?? "")
    ) {
      event.preventDefault();
      log.warn("PostgreSQL driver failed after a lost connection: {error}", {
        error: error.message,
      });
    }
  });
  globalThis.addEventListener("unhandledrejection", (event) => {
    const reason: unknown = event.reason;
    const code = pgCode(reason);
    if (reason instanceof Error && (code === "ECONNRESET" || code === "EPIPE")) {
      event.preventDefault();
      log.warn("A connection was reset: {error}", { error: reason.message });
    }
  });
}

/** The PostgreSQL MailStore. Create it with `openPostgresMailStore`. */
export class PostgresMailStore implements MailStore, ExactStore, SessionRegistry {
  #sql: Sql;
  #hub: EventHub;
  #closed = false;
  #now: () => number;
  #retentionMs: number;
  #keep: number;
  #maxMessageBytes: number;
  /** Tells this instance's own notices apart from other nodes'. */
  #instance = crypto.randomUUID();
  #options: PostgresMailStoreOptions;
  /** The connection that LISTENs (its own, so that a lost one can be replaced whole). */
  #listener: Sql | null = null;
  /** When this instance last heard its own notice: proof that LISTEN still works. */
  #lastHeard = 0;
  #watchdog: ReturnType<typeof setInterval> | null = null;
  /** A resync failed and is to be tried again (see `#queueResync`). */
  #resyncOwed = false;
  #relistening = false;
  /** Other nodes' changes are re-read and told one after the other, in commit order. */
  #remote: Promise<void> = Promise.resolve();
  /** The MODSEQ up to which watchers of a mailbox have been told, for a resync after a gap. */
  #known = new Map<number, number>();
  #sessionTtlMs: number;
  #lastRenewal = 0;
  /** `settle()` calls waiting for their own notice, by its number. */
  #settling = new Map<number, () => void>();
  #settleCount = 0;

  /** Use `openPostgresMailStore`, which also migrates and listens. */
  constructor(options: PostgresMailStoreOptions) {
    this.#now = options.now ?? Date.now;
    this.#retentionMs = options.expungedRetentionMs ?? 30 * DAY_MS;
    this.#keep = options.expungedKeep ?? 10_000;
    this.#maxMessageBytes = options.maxMessageBytes ?? MAX_MESSAGE_BYTES;
    this.#hub = new EventHub(options.onListenerError);
    this.#options = options;
    this.#sessionTtlMs = options.sessionTtlMs ?? 60_000;
    this.#sql = connect(options, options.poolSize ?? 10);
  }

  /** Migrates, listens and prunes; called once by `openPostgresMailStore`. */
  async start(): Promise<void> {
    await this.#migrate();
    await this.#startListening();
    this.#watchdog = setInterval(() => this.#checkListener(), PING_MS);
    await this.pruneExpunged();
  }

  /** The schema version this database is at. */
  async schemaVersion(): Promise<number> {
    this.#open();
    const rows = await this.#sql.unsafe(
      "SELECT coalesce(max(version), 0) AS v FROM postern_schema",
    );
    return Number(rows[0]?.v ?? 0);
  }

  /**
   * Drops expunge records older than the retention period, keeping at least the most recent
   * `expungedKeep` per mailbox. Later QRESYNC answers below the pruned MODSEQ fall back to UID
   * gaps (allowed by RFC 7162, Section 3.2.6).
   */
  async pruneExpunged(): Promise<void> {
    this.#open();
    const cutoff = this.#now() - this.#retentionMs;
    const heavy = await rows<{ mailbox_id: number }>(
      this.#sql,
      "SELECT DISTINCT mailbox_id FROM expunged WHERE expunged_at < $1",
      [cutoff],
    );
    for (const { mailbox_id } of heavy) {
      await this.#transaction(async (tx) => {
        const m = await this.#lockMailbox(tx, mailbox_id).catch(() => null);
        if (!m) return;
        const edge = await rows<{ modseq: number }>(
          tx.q,
          `SELECT modseq FROM expunged WHERE mailbox_id = $1 ORDER BY modseq DESC
           LIMIT 1 OFFSET $2`,
          [mailbox_id, this.#keep],
        );
        if (!edge[0]) return;
        const top = await rows<{ top: number | null }>(
          tx.q,
          `SELECT max(modseq) AS top FROM expunged
           WHERE mailbox_id = $1 AND modseq <= $2 AND expunged_at < $3`,
          [mailbox_id, edge[0].modseq, cutoff],
        );
        if (top[0]?.top == null) return;
        await exec(
          tx.q,
          "DELETE FROM expunged WHERE mailbox_id = $1 AND modseq <= $2 AND expunged_at < $3",
          [mailbox_id, edge[0].modseq, cutoff],
        );
        await exec(
          tx.q,
          "UPDATE mailboxes SET vanished_floor = greatest(vanished_floor, $1) WHERE id = $2",
          [top[0].top, mailbox_id],
        );
      });
    }
  }

  // Accounts

  async createAccount(name: string, passwordHash: string | null): Promise<Account> {
    this.#open();
    validateAccountName(name);
    return await this.#transaction(async (tx) => {
      const inserted = await rows<{ id: number }>(
        tx.q,
        `INSERT INTO accounts (name, password_hash) VALUES ($1, $2)
         ON CONFLICT (name) DO NOTHING RETURNING id`,
        [name, passwordHash],
      );
      const id = inserted[0]?.id;
      if (id === undefined) throw new MailStoreError("alreadyexists", "Account already exists");
      const names = DEFAULT_MAILBOXES.map(([n]) => n);
      await this.#insertMailboxes(tx, id, names, DEFAULT_MAILBOXES.map(([, use]) => use));
      await exec(
        tx.q,
        "INSERT INTO subscriptions (account_id, name) SELECT $1, n FROM unnest($2::text[]) n",
        [id, names],
      );
      return { id, name, passwordHash };
    });
  }

  async getAccount(name: string): Promise<Account | null> {
    this.#open();
    const found = await rows<AccountRow>(
      this.#sql,
      "SELECT id, name, password_hash FROM accounts WHERE name = $1",
      [name],
    );
    return found[0] ? accountView(found[0]) : null;
  }

  async setPasswordHash(name: string, passwordHash: string | null): Promise<void> {
    this.#open();
    const r = await this.#transaction((tx) =>
      rows<{ id: number }>(
        tx.q,
        "UPDATE accounts SET password_hash = $1 WHERE name = $2 RETURNING id",
        [passwordHash, name],
      )
    );
    if (r.length === 0) throw new MailStoreError("nonexistent", "No such account");
  }

  async deleteAccount(name: string): Promise<void> {
    this.#open();
    await this.#transaction(async (tx) => {
      const account = await rows<{ id: number }>(
        tx.q,
        "SELECT id FROM accounts WHERE name = $1 FOR UPDATE",
        [name],
      );
      const id = account[0]?.id;
      if (id === undefined) throw new MailStoreError("nonexistent", "No such account");
      const boxes = await rows<{ id: number }>(
        tx.q,
        "SELECT id FROM mailboxes WHERE account_id = $1 ORDER BY id FOR UPDATE",
        [id],
      );
      const blobs = await this.#blobsOf(tx, boxes.map((b) => b.id));
      await exec(tx.q, "DELETE FROM accounts WHERE id = $1", [id]);
      await this.#freeBlobs(tx, blobs);
      for (const b of boxes) this.#announce(tx, { kind: "deleted", mailboxId: b.id }, "d");
    });
  }

  async listAccounts(): Promise<Account[]> {
    this.#open();
    return (await rows<AccountRow>(
      this.#sql,
      "SELECT id, name, password_hash FROM accounts ORDER BY id",
      [],
    )).map(accountView);
  }

  // Delivery addresses

  async addAddress(accountId: number, address: string): Promise<void> {
    this.#open();
    const normal = normalizeAddress(address);
    await this.#transaction(async (tx) => {
      await this.#requireAccount(tx.q, accountId, true);
      await exec(
        tx.q,
        `INSERT INTO addresses (address, account_id) VALUES ($1, $2)
         ON CONFLICT (address) DO NOTHING`,
        [normal, accountId],
      );
      const owner = await rows<{ account_id: number }>(
        tx.q,
        "SELECT account_id FROM addresses WHERE address = $1",
        [normal],
      );
      if (owner[0] && owner[0].account_id !== accountId) {
        throw new MailStoreError("alreadyexists", "Address belongs to another account");
      }
    });
  }

  async removeAddress(address: string): Promise<void> {
    this.#open();
    const normal = normalizeAddress(address);
    const r = await this.#transaction((tx) =>
      rows<{ address: string }>(
        tx.q,
        "DELETE FROM addresses WHERE address = $1 RETURNING address",
        [normal],
      )
    );
    if (r.length === 0) throw new MailStoreError("nonexistent", "No such address");
  }

  async listAddresses(accountId: number): Promise<string[]> {
    this.#open();
    await this.#requireAccount(this.#sql, accountId);
    return (await rows<{ address: string }>(
      this.#sql,
      `SELECT address FROM addresses WHERE account_id = $1 ORDER BY address COLLATE "C"`,
      [accountId],
    )).map((r) => r.address);
  }

  async findAccountByAddress(address: string): Promise<Account | null> {
    this.#open();
    let normal: string;
    try {
      normal = normalizeAddress(address);
    } catch {
      return null;
    }
    const found = await rows<AccountRow>(
      this.#sql,
      `SELECT a.id, a.name, a.password_hash FROM addresses d JOIN accounts a ON a.id = d.account_id
       WHERE d.address = $1`,
      [normal],
    );
    return found[0] ? accountView(found[0]) : null;
  }

  // Mailboxes

  async listMailboxes(accountId: number): Promise<Mailbox[]> {
    this.#open();
    await this.#requireAccount(this.#sql, accountId);
    return (await rows<MailboxRow>(
      this.#sql,
      `SELECT ${MAILBOX_COLUMNS} FROM mailboxes m WHERE m.account_id = $1 ${MAILBOX_ORDER}`,
      [accountId],
    )).map(mailboxView);
  }

  async getMailbox(accountId: number, name: string): Promise<Mailbox | null> {
    this.#open();
    await this.#requireAccount(this.#sql, accountId);
    const row = await this.#findMailbox(this.#sql, accountId, normalizeMailboxName(name));
    return row ? mailboxView(row) : null;
  }

  async createMailbox(
    accountId: number,
    name: string,
    specialUse?: SpecialUse | null,
  ): Promise<Mailbox> {
    this.#open();
    const canonical = normalizeMailboxName(name);
    const use = validateSpecialUse(specialUse);
    return await this.#transaction(async (tx) => {
      await this.#requireAccount(tx.q, accountId, true);
      if (await this.#findMailbox(tx.q, accountId, canonical)) {
        throw new MailStoreError("alreadyexists", "Mailbox already exists");
      }
      const count = await rows<{ n: number }>(
        tx.q,
        "SELECT count(*) AS n FROM mailboxes WHERE account_id = $1",
        [accountId],
      );
      if ((count[0]?.n ?? 0) >= MAX_MAILBOXES_PER_ACCOUNT) {
        throw new MailStoreError("limit", "Too many mailboxes");
      }
      await this.#insertMailboxes(tx, accountId, [canonical], [use]);
      return mailboxView((await this.#findMailbox(tx.q, accountId, canonical))!);
    });
  }

  async deleteMailbox(accountId: number, name: string): Promise<void> {
    this.#open();
    const canonical = normalizeMailboxName(name);
    if (isInbox(canonical)) throw new MailStoreError("cannot", "INBOX cannot be deleted");
    await this.#transaction(async (tx) => {
      await this.#requireAccount(tx.q, accountId);
      const m = await this.#findMailbox(tx.q, accountId, canonical, true);
      if (!m) throw new MailStoreError("nonexistent", "No such mailbox");
      await this.#dropMailbox(tx, m.id);
    });
  }

  async renameMailbox(accountId: number, from: string, to: string): Promise<void> {
    this.#open();
    const source = normalizeMailboxName(from);
    const target = normalizeMailboxName(to);
    await this.#transaction(async (tx) => {
      await this.#requireAccount(tx.q, accountId, true);
      // Lock the account's mailboxes (in id order, as every writer does): a rename moves a
      // subtree and must see every name in it.
      const all = await rows<{ id: number; name: string }>(
        tx.q,
        "SELECT id, name FROM mailboxes WHERE account_id = $1 ORDER BY id FOR UPDATE",
        [accountId],
      );
      const m = all.find((c) => c.name === source);
      if (!m) throw new MailStoreError("nonexistent", "No such mailbox");
      if (isInbox(target)) throw new MailStoreError("alreadyexists", "INBOX already exists");
      if (source === target || all.some((c) => c.name === target)) {
        throw new MailStoreError("alreadyexists", "Target mailbox already exists");
      }
      if (isDescendant(target, source)) {
        throw new MailStoreError("cannot", "Cannot rename a mailbox below itself");
      }
      if (isInbox(source)) {
        await this.#renameInbox(tx, accountId, m.id, target);
        return;
      }
      const moves = all
        .filter((c) => c.name === source || isDescendant(c.name, source))
        .map((c) => ({ id: c.id, old: c.name, name: target + c.name.slice(source.length) }));
      const moving = new Set(moves.map((c) => c.id));
      const taken = new Set(all.filter((c) => !moving.has(c.id)).map((c) => c.name));
      for (const c of moves) {
        normalizeMailboxName(c.name);
        if (taken.has(c.name)) {
          throw new MailStoreError("alreadyexists", "A mailbox with the new name already exists");
        }
      }
      await exec(tx.q, "SET CONSTRAINTS mailboxes_name_unique DEFERRED", []);
      await exec(
        tx.q,
        `UPDATE mailboxes m SET name = v.name FROM unnest($1::bigint[], $2::text[]) AS v(id, name)
         WHERE m.id = v.id`,
        [moves.map((c) => c.id), moves.map((c) => c.name)],
      );
      // Subscriptions follow: each subscribed old name becomes the new name.
      const olds = moves.map((c) => c.old);
      const subscribed = new Set(
        (await rows<{ name: string }>(
          tx.q,
          "DELETE FROM subscriptions WHERE account_id = $1 AND name = ANY($2::text[]) RETURNING name",
          [accountId, olds],
        )).map((r) => r.name),
      );
      const renamedSubs = moves.filter((c) => subscribed.has(c.old)).map((c) => c.name);
      if (renamedSubs.length > 0) {
        await exec(
          tx.q,
          `INSERT INTO subscriptions (account_id, name) SELECT $1, n FROM unnest($2::text[]) n
           ON CONFLICT DO NOTHING`,
          [accountId, renamedSubs],
        );
      }
      for (const c of moves) {
        this.#announce(tx, { kind: "renamed", mailboxId: c.id, name: c.name }, "r");
      }
    });
  }

  async setSubscribed(accountId: number, name: string, subscribed: boolean): Promise<void> {
    this.#open();
    const canonical = normalizeMailboxName(name);
    await this.#transaction(async (tx) => {
      await this.#requireAccount(tx.q, accountId, true);
      if (subscribed) {
        if (!await this.#findMailbox(tx.q, accountId, canonical)) {
          throw new MailStoreError("nonexistent", "No such mailbox");
        }
        await exec(
          tx.q,
          `INSERT INTO subscriptions (account_id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
          [accountId, canonical],
        );
      } else {
        await exec(
          tx.q,
          "DELETE FROM subscriptions WHERE account_id = $1 AND name = $2",
          [accountId, canonical],
        );
      }
    });
  }

  async listSubscriptions(accountId: number): Promise<string[]> {
    this.#open();
    await this.#requireAccount(this.#sql, accountId);
    return (await rows<{ name: string }>(
      this.#sql,
      `SELECT m.name FROM subscriptions m WHERE m.account_id = $1 ${MAILBOX_ORDER}`,
      [accountId],
    )).map((r) => r.name);
  }

  // Messages

  async append(mailboxId: number, input: AppendInput): Promise<AppendResult> {
    this.#open();
    checkMessageSize(input.raw, this.#maxMessageBytes);
    return await this.#transaction((tx) => this.#append(tx, mailboxId, input));
  }

  async appendBatch(
    mailboxId: number,
    inputs: readonly AppendInput[],
    quota?: QuotaLimits,
  ): Promise<AppendBatchResult> {
    this.#open();
    let octets = 0;
    for (const input of inputs) {
      checkMessageSize(input.raw, this.#maxMessageBytes);
      octets += input.raw.byteLength;
    }
    // MULTIAPPEND (RFC 3502): one transaction under the mailbox's lock, all or none.
    return await this.#transaction(async (tx): Promise<AppendBatchResult> => {
      const m = await this.#lockMailbox(tx, mailboxId);
      if (quota && (quota.storage !== null || quota.messages !== null)) {
        const used = await rows<{ size: number | null; count: number | null }>(
          tx.q,
          `SELECT sum(total_size)::bigint AS size, sum(message_count)::bigint AS count
           FROM mailboxes WHERE account_id = $1`,
          [m.account_id],
        );
        const size = Number(used[0]?.size ?? 0);
        const count = Number(used[0]?.count ?? 0);
        if (quota.storage !== null && size + octets > quota.storage) {
          return { kind: "overquota", resource: "storage" };
        }
        if (quota.messages !== null && count + inputs.length > quota.messages) {
          return { kind: "overquota", resource: "messages" };
        }
      }
      const results: AppendResult[] = [];
      for (const input of inputs) results.push(await this.#appendLocked(tx, m, input));
      return { kind: "stored", results };
    });
  }

  async deliver(
    mailboxId: number,
    input: AppendInput,
    options: DeliverOptions,
  ): Promise<DeliverResult> {
    this.#open();
    checkMessageSize(input.raw, this.#maxMessageBytes);
    return await this.#transaction((tx) => this.#deliver(tx, mailboxId, input, options));
  }

  async deliverBatch(items: readonly DeliveryItem[]): Promise<DeliveryOutcome[]> {
    this.#open();
    if (items.length === 0) return [];
    return await this.#transaction(async (tx) => {
      const outcomes: DeliveryOutcome[] = [];
      for (const item of items) {
        // Each delivery is its own savepoint: one that fails leaves the others in the commit.
        const marks = [tx.events.length, tx.notices.length] as const;
        try {
          const result = await tx.q.savepoint((sp) => {
            checkMessageSize(item.input.raw, this.#maxMessageBytes);
            const inner: Tx = { q: sp, events: tx.events, notices: tx.notices };
            return this.#deliver(inner, item.mailboxId, item.input, item.options);
          }) as DeliverResult;
          outcomes.push({ ok: true, result });
        } catch (error) {
          if (isRetryable(error)) throw error;
          tx.events.length = marks[0];
          tx.notices.length = marks[1];
          outcomes.push({ ok: false, error });
        }
      }
      return outcomes;
    });
  }

  async listMessages(mailboxId: number): Promise<MessageMeta[]> {
    this.#open();
    await this.#mailboxById(this.#sql, mailboxId);
    const list = await values<[number, number, string, number, number]>(
      this.#sql,
      `SELECT uid, modseq, flags, internal_date, size FROM messages WHERE mailbox_id = $1
       ORDER BY uid`,
      [mailboxId],
    );
    // Most messages share a few flag combinations: parse each once and share the frozen array.
    const parsed = new Map<string, readonly string[]>();
    const out: MessageMeta[] = new Array(list.length);
    for (let i = 0; i < list.length; i++) {
      const [uid, modseq, stored, internalDate, size] = list[i]!;
      out[i] = { uid, modseq, flags: sharedFlags(parsed, stored), internalDate, size };
    }
    return out;
  }

  async getMessages(mailboxId: number, uids: readonly number[]): Promise<MessageMeta[]> {
    this.#open();
    await this.#mailboxById(this.#sql, mailboxId);
    const parsed = new Map<string, readonly string[]>();
    return (await this.#messageRows(this.#sql, mailboxId, uids)).map((row) => ({
      uid: row.uid,
      modseq: row.modseq,
      flags: sharedFlags(parsed, row.flags),
      internalDate: row.internal_date,
      size: row.size,
    }));
  }

  async getObjectInfo(
    mailboxId: number,
    uids: readonly number[],
  ): Promise<Map<number, MessageObjectInfo>> {
    this.#open();
    await this.#mailboxById(this.#sql, mailboxId);
    const out = new Map<number, MessageObjectInfo>();
    for (const row of await this.#messageRows(this.#sql, mailboxId, uids)) {
      out.set(row.uid, { emailId: row.email_id, threadId: row.thread_id, saveDate: row.save_date });
    }
    return out;
  }

  async getRaw(mailboxId: number, uid: number): Promise<Uint8Array | null> {
    this.#open();
    await this.#mailboxById(this.#sql, mailboxId);
    if (!Number.isSafeInteger(uid)) return null;
    const found = await rows<{ raw: Uint8Array }>(
      this.#sql,
      `SELECT b.raw FROM messages m JOIN blobs b ON b.id = m.blob_id
       WHERE m.mailbox_id = $1 AND m.uid = $2`,
      [mailboxId, uid],
    );
    const raw = found[0]?.raw;
    // The driver hands out a Node Buffer; callers get a plain view of the same bytes.
    return raw ? new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength) : null;
  }

  async getSummary(mailboxId: number, uid: number): Promise<string | null> {
    this.#open();
    await this.#mailboxById(this.#sql, mailboxId);
    if (!Number.isSafeInteger(uid)) return null;
    const found = await rows<{ summary: string | null }>(
      this.#sql,
      `SELECT b.summary FROM messages m JOIN blobs b ON b.id = m.blob_id
       WHERE m.mailbox_id = $1 AND m.uid = $2`,
      [mailboxId, uid],
    );
    return found[0]?.summary ?? null;
  }

  async getSearchTexts(
    mailboxId: number,
    uids: readonly number[],
    contains?: string,
  ): Promise<Map<number, string | null>> {
    this.#open();
    await this.#mailboxById(this.#sql, mailboxId);
    const out = new Map<number, string | null>();
    const wanted = cleanUids(uids);
    if (wanted.length === 0) return out;
    // strpos() counts characters, which for a substring of valid text finds the same matches
    // as SQLite's instr() on octets.
    const [where, params] = uidCondition("m.uid", wanted, 2);
    const list = await values<[number, string | null]>(
      this.#sql,
      contains === undefined
        ? `SELECT m.uid, s.text FROM messages m LEFT JOIN search_texts s ON s.blob_id = m.blob_id
           WHERE m.mailbox_id = $1 AND ${where} ORDER BY m.uid`
        : `SELECT m.uid, s.text FROM messages m LEFT JOIN search_texts s ON s.blob_id = m.blob_id
           WHERE m.mailbox_id = $1 AND ${where}
           AND (s.text IS NULL OR strpos(s.text, $${2 + params.length}) > 0) ORDER BY m.uid`,
      contains === undefined ? [mailboxId, ...params] : [mailboxId, ...params, contains],
    );
    const asked = new Set(wanted);
    for (const [uid, text] of list) if (asked.has(uid)) out.set(uid, text);
    return out;
  }

  async storeFlags(
    mailboxId: number,
    uids: readonly number[],
    op: FlagOperation,
    flags: readonly string[],
    unchangedSince?: number,
  ): Promise<StoreFlagsResult> {
    this.#open();
    const change = normalizeFlags(flags);
    return await this.#transaction(async (tx) => {
      const m = await this.#lockMailbox(tx, mailboxId);
      const updated: MessageMeta[] = [];
      const modified: number[] = [];
      const changed: { uid: number; flags: string[]; modseq: number }[] = [];
      let modseq = m.highestmodseq;
      let unseenDelta = 0;
      for (const row of await this.#messageRows(tx.q, mailboxId, uids)) {
        if (unchangedSince !== undefined && row.modseq > unchangedSince) {
          modified.push(row.uid);
          continue;
        }
        const before = splitFlags(row.flags);
        const next = applyFlagOperation(before, op, change);
        if (next) {
          modseq++;
          unseenDelta += (hasFlag(before, SEEN) ? 1 : 0) - (hasFlag(next, SEEN) ? 1 : 0);
          changed.push({ uid: row.uid, flags: next, modseq });
          row.flags = next.join(" ");
          row.modseq = modseq;
        }
        updated.push(metaView(row));
      }
      if (changed.length > 0) {
        await exec(
          tx.q,
          `UPDATE messages m SET flags = v.flags, seen = v.seen <> 0, deleted = v.deleted <> 0,
           modseq = v.modseq
           FROM unnest($2::bigint[], $3::text[], $4::int[], $5::int[], $6::bigint[])
             AS v(uid, flags, seen, deleted, modseq)
           WHERE m.mailbox_id = $1 AND m.uid = v.uid`,
          [
            mailboxId,
            changed.map((c) => c.uid),
            changed.map((c) => c.flags.join(" ")),
            // The driver cannot send boolean arrays: 0 and 1 stand for them.
            changed.map((c) => hasFlag(c.flags, SEEN) ? 1 : 0),
            changed.map((c) => hasFlag(c.flags, DELETED) ? 1 : 0),
            changed.map((c) => c.modseq),
          ],
        );
        await exec(
          tx.q,
          `UPDATE mailboxes SET highestmodseq = $1, unseen_count = unseen_count + $2
           WHERE id = $3`,
          [modseq, unseenDelta, mailboxId],
        );
        this.#announce(
          tx,
          { kind: "flags", mailboxId, uids: changed.map((c) => c.uid) },
          `f:${m.highestmodseq + 1}:${modseq}`,
        );
      }
      return { updated, modified };
    });
  }

  async copy(
    fromMailboxId: number,
    uids: readonly number[],
    toMailboxId: number,
  ): Promise<CopyResult> {
    this.#open();
    return await this.#transaction((tx) => this.#copy(tx, fromMailboxId, uids, toMailboxId, false));
  }

  async move(
    fromMailboxId: number,
    uids: readonly number[],
    toMailboxId: number,
  ): Promise<CopyResult> {
    this.#open();
    return await this.#transaction((tx) => this.#copy(tx, fromMailboxId, uids, toMailboxId, true));
  }

  async expunge(mailboxId: number, uids?: readonly number[]): Promise<number[]> {
    this.#open();
    return await this.#transaction(async (tx) => {
      const m = await this.#lockMailbox(tx, mailboxId);
      const gone = uids === undefined
        ? (await values<[number]>(
          tx.q,
          "SELECT uid FROM messages WHERE mailbox_id = $1 AND deleted ORDER BY uid",
          [mailboxId],
        )).map(([uid]) => uid)
        : (await this.#messageRows(tx.q, mailboxId, uids))
          .filter((r) => hasFlag(splitFlags(r.flags), DELETED))
          .map((r) => r.uid);
      await this.#removeMessages(tx, m, gone);
      return gone;
    });
  }

  async changesSince(mailboxId: number, modseq: number): Promise<ChangesSince> {
    this.#open();
    // One snapshot for the mailbox row and both lists; read-only, so run again after a lost
    // connection.
    return await retryRead(this.#sql, () => this.#changesSince(mailboxId, modseq));
  }

  async #changesSince(mailboxId: number, modseq: number): Promise<ChangesSince> {
    return await this.#sql.begin("isolation level repeatable read read only", async (q) => {
      const m = await this.#mailboxById(q, mailboxId);
      const changed = (await rows<MessageRow>(
        q,
        `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE mailbox_id = $1 AND modseq > $2
         ORDER BY uid`,
        [mailboxId, modseq],
      )).map(metaView);
      let vanished: number[];
      if (modseq < m.vanished_floor) {
        // Records below the floor were pruned: every UID below UIDNEXT that is not present
        // was expunged at some point, which is a safe superset.
        const present = await values<[number]>(
          q,
          "SELECT uid FROM messages WHERE mailbox_id = $1 ORDER BY uid",
          [mailboxId],
        );
        vanished = [];
        let next = 1;
        for (const [uid] of present) {
          for (; next < uid; next++) vanished.push(next);
          next = uid + 1;
        }
        for (; next < m.uidnext; next++) vanished.push(next);
      } else {
        vanished = (await values<[number]>(
          q,
          "SELECT uid FROM expunged WHERE mailbox_id = $1 AND modseq > $2 ORDER BY uid",
          [mailboxId, modseq],
        )).map(([uid]) => uid);
      }
      return { changed, vanished };
    }) as ChangesSince;
  }

  watch(mailboxId: number, listener: (event: MailboxEvent) => void): () => void {
    if (!this.#closed && this.#hub.listenerCount(mailboxId) === 0) {
      // Where a resync after a lost LISTEN connection would start for this mailbox. When the
      // mailbox cannot be read now (the database is coming back), a resync starts from the
      // beginning: watchers ignore what they already know, and nothing is missed.
      this.#remote = this.#remote.then(async () => {
        const m = await this.#mailboxById(this.#sql, mailboxId).catch(() => null);
        if (!this.#known.has(mailboxId)) this.#known.set(mailboxId, m?.highestmodseq ?? 0);
      });
    }
    return this.#hub.watch(mailboxId, listener);
  }

  /**
   * Resolves once watchers have heard every change other nodes committed before the call:
   * PostgreSQL delivers notices in commit order, so once this instance hears a notice it sent
   * now, the earlier ones have arrived, and the changes they name are told once the reads
   * queued before it are done. Bounded by `SETTLE_TIMEOUT_MS`.
   */
  settle(): Promise<void> {
    if (this.#closed || this.#listener === null) return Promise.resolve();
    const id = ++this.#settleCount;
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#settling.delete(id);
        resolve();
      };
      const timer = setTimeout(done, SETTLE_TIMEOUT_MS);
      this.#settling.set(id, () => void this.#remote.then(done, done));
      this.#sql.unsafe("SELECT pg_notify($1, $2)", [CHANGE_CHANNEL, `${this.#instance}:0:s:${id}`])
        .catch(done);
    });
  }

  // Sessions across nodes (the per-user connection limit)

  async claimSession(account: string, limit: number): Promise<string | null> {
    this.#open();
    const now = Date.now();
    return await this.#transaction(async (tx) => {
      // Claims for one account run one at a time, whichever node makes them.
      await exec(tx.q, "SELECT pg_advisory_xact_lock(hashtext('session ' || $1))", [account]);
      await exec(tx.q, "DELETE FROM sessions WHERE account = $1 AND expires_at < $2", [
        account,
        now,
      ]);
      const live = await rows<{ n: number }>(
        tx.q,
        "SELECT count(*) AS n FROM sessions WHERE account = $1",
        [account],
      );
      if ((live[0]?.n ?? 0) >= limit) return null;
      const key = crypto.randomUUID();
      await exec(
        tx.q,
        "INSERT INTO sessions (id, account, node, expires_at) VALUES ($1, $2, $3, $4)",
        [key, account, this.#instance, now + this.#sessionTtlMs],
      );
      return key;
    });
  }

  async releaseSession(key: string): Promise<void> {
    if (this.#closed) return;
    await exec(this.#sql, "DELETE FROM sessions WHERE id = $1", [key]).catch((error) => {
      // It expires by itself; a failed release only keeps it counted until then.
      log.warn("Cannot release a session: {error}", { error });
    });
  }

  /** Renews the expiry of this node's sessions (from the watchdog, a few times per TTL). */
  #renewSessions(): void {
    const now = Date.now();
    if (now - this.#lastRenewal < this.#sessionTtlMs / 4) return;
    this.#lastRenewal = now;
    this.#sql.unsafe("UPDATE sessions SET expires_at = $1 WHERE node = $2", [
      now + this.#sessionTtlMs,
      this.#instance,
    ]).catch(() => {});
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#watchdog !== null) clearInterval(this.#watchdog);
    for (const settled of [...this.#settling.values()]) settled();
    this.#hub.clear();
    // This node's sessions end with it.
    await this.#sql.unsafe("DELETE FROM sessions WHERE node = $1", [this.#instance])
      .catch(() => {});
    await this.#remote.catch(() => {});
    await this.#listener?.end({ timeout: 1 }).catch(() => {});
    await this.#sql.end({ timeout: 5 });
  }

  // Exact copy (`postern store copy`, mailstore/transfer.ts)

  async exportAccounts(): Promise<AccountRecord[]> {
    this.#open();
    const out: AccountRecord[] = [];
    for (const a of await rows<AccountRow>(this.#sql, "SELECT * FROM accounts ORDER BY id", [])) {
      out.push({
        name: a.name,
        passwordHash: a.password_hash,
        addresses: (await values<[string]>(
          this.#sql,
          `SELECT address FROM addresses WHERE account_id = $1 ORDER BY address COLLATE "C"`,
          [a.id],
        )).map(([x]) => x),
        subscriptions: (await values<[string]>(
          this.#sql,
          `SELECT name FROM subscriptions WHERE account_id = $1 ORDER BY name COLLATE "C"`,
          [a.id],
        )).map(([x]) => x),
      });
    }
    return out;
  }

  async exportMailboxes(accountName: string): Promise<MailboxRecord[]> {
    this.#open();
    return (await rows<MailboxRow>(
      this.#sql,
      `SELECT ${MAILBOX_COLUMNS} FROM mailboxes m JOIN accounts a ON a.id = m.account_id
       WHERE a.name = $1 ORDER BY m.id`,
      [accountName],
    )).map((m) => ({
      id: m.id,
      name: m.name,
      uidValidity: m.uidvalidity,
      uidNext: m.uidnext,
      highestModseq: m.highestmodseq,
      specialUse: m.special_use as SpecialUse | null,
      vanishedFloor: m.vanished_floor,
      objectId: m.object_id,
    }));
  }

  async exportMessages(
    mailboxId: number,
    afterUid: number,
    limit: number,
  ): Promise<MessageRecord[]> {
    this.#open();
    return (await values<
      [
        number,
        number,
        string,
        number,
        Uint8Array,
        string | null,
        string | null,
        string,
        string,
        number | null,
      ]
    >(
      this.#sql,
      `SELECT m.uid, m.modseq, m.flags, m.internal_date, b.raw, b.summary, s.text, m.email_id,
       m.thread_id, m.save_date
       FROM messages m JOIN blobs b ON b.id = m.blob_id
       LEFT JOIN search_texts s ON s.blob_id = m.blob_id
       WHERE m.mailbox_id = $1 AND m.uid > $2 ORDER BY m.uid LIMIT $3`,
      [mailboxId, afterUid, limit],
    )).map((
      [uid, modseq, flags, internalDate, raw, summary, searchText, emailId, threadId, saveDate],
    ) => ({
      uid,
      modseq,
      flags: splitFlags(flags),
      internalDate,
      raw: new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength),
      summary,
      searchText,
      emailId,
      threadId,
      saveDate,
    }));
  }

  async exportExpunged(mailboxId: number): Promise<ExpungedRecord[]> {
    this.#open();
    return (await values<[number, number, number]>(
      this.#sql,
      "SELECT uid, modseq, expunged_at FROM expunged WHERE mailbox_id = $1 ORDER BY uid",
      [mailboxId],
    )).map(([uid, modseq, expungedAt]) => ({ uid, modseq, expungedAt }));
  }

  async importAccount(
    account: AccountRecord,
    mailboxes: readonly MailboxRecord[],
  ): Promise<Map<string, number>> {
    this.#open();
    validateAccountName(account.name);
    return await this.#transaction(async (tx) => {
      const inserted = await rows<{ id: number }>(
        tx.q,
        `INSERT INTO accounts (name, password_hash) VALUES ($1, $2)
         ON CONFLICT (name) DO NOTHING RETURNING id`,
        [account.name, account.passwordHash],
      );
      const id = inserted[0]?.id;
      if (id === undefined) throw new MailStoreError("alreadyexists", "Account already exists");
      const ids = new Map<string, number>();
      let top = 0;
      for (const m of mailboxes) {
        const r = await rows<{ id: number }>(
          tx.q,
          `INSERT INTO mailboxes (account_id, name, uidvalidity, uidnext, highestmodseq,
           special_use, vanished_floor, object_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
           RETURNING id`,
          [
            id,
            normalizeMailboxName(m.name),
            m.uidValidity,
            m.uidNext,
            m.highestModseq,
            validateSpecialUse(m.specialUse),
            m.vanishedFloor,
            checkObjectId(m.objectId),
          ],
        );
        ids.set(m.name, r[0]!.id);
        top = Math.max(top, m.uidValidity);
      }
      if (account.subscriptions.length > 0) {
        await exec(
          tx.q,
          `INSERT INTO subscriptions (account_id, name) SELECT $1, n FROM unnest($2::text[]) n
           ON CONFLICT DO NOTHING`,
          [id, [...account.subscriptions]],
        );
      }
      if (account.addresses.length > 0) {
        await exec(
          tx.q,
          "INSERT INTO addresses (address, account_id) SELECT a, $1 FROM unnest($2::text[]) a",
          [id, account.addresses.map(normalizeAddress)],
        );
      }
      // Mailboxes made here later must not reuse a copied UIDVALIDITY.
      await exec(
        tx.q,
        `INSERT INTO meta (key, value) VALUES ('last_uidvalidity', $1)
         ON CONFLICT (key) DO UPDATE SET value = greatest(meta.value, EXCLUDED.value)`,
        [top],
      );
      return ids;
    });
  }

  async importMessages(mailboxId: number, messages: readonly MessageRecord[]): Promise<void> {
    this.#open();
    await this.#transaction(async (tx) => {
      const m = await this.#lockMailbox(tx, mailboxId);
      let unseen = 0;
      let size = 0;
      for (const message of messages) {
        if (message.uid >= m.uidnext || message.modseq > m.highestmodseq) {
          throw new MailStoreError("cannot", "A copied message lies beyond its mailbox");
        }
        const flags = normalizeFlags(message.flags);
        const seen = hasFlag(flags, SEEN);
        await exec(
          tx.q,
          `WITH b AS (
             INSERT INTO blobs (raw, summary) VALUES ($1::bytea, $2::text) RETURNING id
           ), s AS (
             INSERT INTO search_texts (blob_id, text) SELECT id, $3::text FROM b
             WHERE $3::text IS NOT NULL
           )
           INSERT INTO messages (mailbox_id, uid, modseq, flags, seen, deleted, internal_date,
             size, blob_id, email_id, thread_id, save_date)
           SELECT $4, $5, $6, $7, $8, $9, $10, $11, id, $12, $13, $14 FROM b`,
          [
            message.raw,
            message.summary,
            message.searchText,
            mailboxId,
            message.uid,
            message.modseq,
            flags.join(" "),
            seen,
            hasFlag(flags, DELETED),
            message.internalDate,
            message.raw.byteLength,
            checkObjectId(message.emailId),
            checkObjectId(message.threadId),
            message.saveDate,
          ],
        );
        if (!seen) unseen++;
        size += message.raw.byteLength;
      }
      await exec(
        tx.q,
        `UPDATE mailboxes SET message_count = message_count + $1, unseen_count = unseen_count + $2,
         total_size = total_size + $3 WHERE id = $4`,
        [messages.length, unseen, size, mailboxId],
      );
    });
  }

  async importExpunged(mailboxId: number, records: readonly ExpungedRecord[]): Promise<void> {
    this.#open();
    if (records.length === 0) return;
    await this.#transaction(async (tx) => {
      await exec(
        tx.q,
        `INSERT INTO expunged (mailbox_id, uid, modseq, expunged_at)
         SELECT $1, u, m, t FROM unnest($2::bigint[], $3::bigint[], $4::bigint[]) AS v(u, m, t)
         ON CONFLICT (mailbox_id, uid) DO UPDATE SET modseq = EXCLUDED.modseq,
           expunged_at = EXCLUDED.expunged_at`,
        [
          mailboxId,
          records.map((r) => r.uid),
          records.map((r) => r.modseq),
          records.map((r) => r.expungedAt),
        ],
      );
    });
  }

  // Internals

  #open(): void {
    if (this.#closed) throw new MailStoreError("cannot", "Mail store is closed");
  }

  /**
   * Runs `body` in one transaction, again if PostgreSQL reports a deadlock or serialization
   * failure (nothing was committed then). Events are told to this instance's listeners once
   * COMMIT has returned; the NOTIFY for other nodes is part of the transaction.
   */
  async #transaction<T>(body: (tx: Tx) => Promise<T>): Promise<T> {
    for (let attempt = 1;; attempt++) {
      const events: MailboxEvent[] = [];
      // Set once the body and its notices have run: an error after that came from COMMIT.
      const ran: { done: { readonly xid: string; readonly value: T } | null } = { done: null };
      try {
        await this.#sql.begin(async (q) => {
          events.length = 0;
          const tx: Tx = { q, events, notices: [] };
          const value = await body(tx);
          const [row] = await q.unsafe<{ xid: string }[]>(
            `SELECT txid_current()::text AS xid,
             (SELECT count(pg_notify('${CHANGE_CHANNEL}', n)) FROM unnest($1::text[]) n)`,
            [tx.notices.map((n) => `${this.#instance}:${n}`)],
            { prepare: true },
          );
          ran.done = { xid: row!.xid, value };
        });
      } catch (e) {
        // A COMMIT whose answer was lost (the connection cut, the server restarting) may have
        // committed: PostgreSQL says which (txid_status), so that a change that was made is
        // reported made, and one that was not runs again, instead of a NO for a stored APPEND
        // (and a duplicate when the client or the MTA tries again).
        const inDoubt = ran.done;
        if (inDoubt !== null) {
          const status = await this.#commitStatus(inDoubt.xid, e);
          if (status === "committed") {
            for (const event of events) this.#hub.emit(event);
            return inDoubt.value;
          }
          if (attempt < MAX_ATTEMPTS) continue;
        }
        if (attempt < MAX_ATTEMPTS && isRetryable(e)) continue;
        // Nothing ran when no connection could be had: wait for the server and run it again.
        const delay = RECONNECT_DELAYS_MS[attempt - 1];
        if (delay !== undefined && NOT_CONNECTED_CODES.has(pgCode(e) ?? "")) {
          await new Promise((r) => setTimeout(r, delay));
          continue;
        }
        throw translate(e);
      }
      for (const event of events) this.#hub.emit(event);
      return ran.done!.value;
    }
  }

  /**
   * Whether the transaction `xid`, whose COMMIT failed with `error`, committed: "committed",
   * or "aborted" (it can run again). Asks on a new connection, waiting out a restart; throws
   * `error` when the answer cannot be had.
   */
  async #commitStatus(xid: string, error: unknown): Promise<"committed" | "aborted"> {
    for (const delay of [0, ...RECONNECT_DELAYS_MS, ...COMMIT_STATUS_WAIT_MS]) {
      if (delay > 0) await new Promise((r) => setTimeout(r, delay));
      let status: string | null;
      try {
        const [row] = await this.#sql.unsafe<{ status: string | null }[]>(
          "SELECT txid_status($1::bigint) AS status",
          [xid],
        );
        status = row?.status ?? null;
      } catch (e) {
        if (CONNECTION_CODES.has(pgCode(e) ?? "")) continue;
        throw error;
      }
      if (status === "committed" || status === "aborted") {
        log.warn("A COMMIT's answer was lost; PostgreSQL says the transaction {status}", {
          status,
        });
        return status;
      }
      // "in progress": the server has not yet noticed that its client is gone.
      if (status === null) throw error;
    }
    throw error;
  }

  /** Queues an event for this instance and a notice (`mailboxId:detail`) for other nodes. */
  #announce(tx: Tx, event: MailboxEvent, detail: string): void {
    tx.events.push(event);
    tx.notices.push(`${event.mailboxId}:${detail}`);
  }

  /** LISTENs on a fresh connection of its own. */
  async #startListening(): Promise<void> {
    const listener = connect(this.#options, 1);
    let first = true;
    // The driver listens again by itself after a lost connection when it can; notices sent
    // in between were lost, so watchers are told what changed meanwhile.
    const onListen = () => {
      if (first) first = false;
      else this.#queueResync();
    };
    try {
      await listener.listen(CHANGE_CHANNEL, (payload) => this.#onNotice(payload), onListen);
    } catch (e) {
      await listener.end({ timeout: 0 }).catch(() => {});
      throw e;
    }
    this.#listener = listener;
    this.#lastHeard = Date.now();
  }

  /**
   * Pings itself through NOTIFY; when its own pings stop coming back (the LISTEN connection
   * died with a database restart or a network cut), it listens again on a new connection and
   * tells watchers what changed meanwhile, so that IDLE sessions miss nothing.
   */
  #checkListener(): void {
    if (this.#closed) return;
    this.#renewSessions();
    if (this.#relistening) return;
    if (this.#resyncOwed) this.#queueResync();
    this.#sql.unsafe("SELECT pg_notify($1, $2)", [CHANGE_CHANNEL, `${this.#instance}:0:p`])
      .catch(() => {});
    if (Date.now() - this.#lastHeard < LISTEN_LOST_MS) return;
    this.#relistening = true;
    const old = this.#listener;
    this.#listener = null;
    (async () => {
      await old?.end({ timeout: 0 }).catch(() => {});
      await this.#startListening();
      log.info("Listening for other nodes' changes again");
      this.#queueResync();
    })().catch((error) => {
      log.warn("Cannot listen for other nodes' changes: {error}", { error });
    }).finally(() => {
      this.#relistening = false;
    });
  }

  /**
   * Queues a resync behind the reads of changes already heard. One that fails (the database is
   * still coming back) is owed, and the watchdog queues it again on its next round; the chain
   * of reads goes on either way, so later notices are not dropped behind the failure.
   */
  #queueResync(): void {
    this.#resyncOwed = false;
    this.#remote = this.#remote.then(() => this.#resync()).catch((error) => {
      if (this.#closed) return;
      this.#resyncOwed = true;
      log.warn("Cannot tell watchers what changed meanwhile; trying again: {error}", { error });
    });
  }

  /** Tells watchers of every watched mailbox what changed since they were last told. */
  async #resync(): Promise<void> {
    for (const [mailboxId, since] of [...this.#known]) {
      if (this.#closed) return;
      if (this.#hub.listenerCount(mailboxId) === 0) {
        this.#known.delete(mailboxId);
        continue;
      }
      // Only a mailbox that is gone is told as deleted; a failed read (the database is still
      // coming back) fails the resync, which is tried again.
      const m = await this.#mailboxById(this.#sql, mailboxId).catch((error: unknown) => {
        if (error instanceof MailStoreError && error.code === "nonexistent") return null;
        throw error;
      });
      if (!m) {
        this.#hub.emit({ kind: "deleted", mailboxId });
        continue;
      }
      const { changed, vanished } = await this.changesSince(mailboxId, since);
      this.#known.set(mailboxId, m.highestmodseq);
      // Views ignore appends of UIDs they have and flags that did not change.
      const uids = changed.map((c) => c.uid);
      if (uids.length > 0) this.#hub.emit({ kind: "append", mailboxId, uids });
      if (uids.length > 0) this.#hub.emit({ kind: "flags", mailboxId, uids });
      if (vanished.length > 0) this.#hub.emit({ kind: "expunge", mailboxId, uids: vanished });
    }
  }

  /**
   * A notice from some instance: `instance:mailboxId:kind[:lo:hi]`. Notices from this instance
   * were told already (they only prove that LISTEN works); those for mailboxes nobody here
   * watches are dropped unread.
   */
  #onNotice(payload: string): void {
    const parts = payload.split(":");
    if (parts[0] === this.#instance) {
      this.#lastHeard = Date.now();
      if (parts[2] === "s") this.#settling.get(Number(parts[3]))?.();
      return;
    }
    if (parts.length < 3 || parts[2] === "p") return;
    const mailboxId = Number(parts[1]);
    const kind = parts[2];
    const lo = Number(parts[3] ?? 0);
    const hi = Number(parts[4] ?? 0);
    if (!Number.isSafeInteger(mailboxId) || !Number.isSafeInteger(lo)) return;
    if (!Number.isSafeInteger(hi) || hi - lo > 10_000_000) return;
    this.#remote = this.#remote.then(async () => {
      if (this.#closed || this.#hub.listenerCount(mailboxId) === 0) return;
      const event = await this.#readRemote(mailboxId, kind, lo, hi);
      if (event && !this.#closed) this.#hub.emit(event);
    }).catch((error) => log.warn("Cannot read a change from another node: {error}", { error }));
  }

  async #readRemote(
    mailboxId: number,
    kind: string | undefined,
    lo: number,
    hi: number,
  ): Promise<MailboxEvent | null> {
    switch (kind) {
      case "a": {
        const uids: number[] = [];
        for (let uid = lo; uid <= hi; uid++) uids.push(uid);
        return uids.length > 0 ? { kind: "append", mailboxId, uids } : null;
      }
      case "f": {
        // Messages changed again since carry a later MODSEQ and their own notice.
        const uids = (await values<[number]>(
          this.#sql,
          `SELECT uid FROM messages WHERE mailbox_id = $1 AND modseq BETWEEN $2 AND $3
           ORDER BY uid`,
          [mailboxId, lo, hi],
        )).map(([uid]) => uid);
        return uids.length > 0 ? { kind: "flags", mailboxId, uids } : null;
      }
      case "x": {
        const uids = (await values<[number]>(
          this.#sql,
          `SELECT uid FROM expunged WHERE mailbox_id = $1 AND modseq BETWEEN $2 AND $3
           ORDER BY uid`,
          [mailboxId, lo, hi],
        )).map(([uid]) => uid);
        return uids.length > 0 ? { kind: "expunge", mailboxId, uids } : null;
      }
      case "d":
        return { kind: "deleted", mailboxId };
      case "r": {
        const found = await rows<{ name: string }>(
          this.#sql,
          "SELECT name FROM mailboxes WHERE id = $1",
          [mailboxId],
        );
        return found[0] ? { kind: "renamed", mailboxId, name: found[0].name } : null;
      }
      default:
        return null;
    }
  }

  async #migrate(): Promise<void> {
    for (;;) {
      const done = await this.#sql.begin(async (q) => {
        await q.unsafe("SELECT pg_advisory_xact_lock($1, $2)", [...MIGRATION_LOCK]);
        await q.unsafe("CREATE TABLE IF NOT EXISTS postern_schema (version integer PRIMARY KEY)");
        const current = Number(
          (await q.unsafe("SELECT coalesce(max(version), 0) AS v FROM postern_schema"))[0]?.v ??
            0,
        );
        if (current > MIGRATIONS.length) {
          throw new Error(`Database schema version ${current} is newer than this program`);
        }
        if (current === MIGRATIONS.length) return true;
        await q.unsafe(MIGRATIONS[current]!).simple();
        await q.unsafe("INSERT INTO postern_schema (version) VALUES ($1)", [current + 1]);
        log.info("Migrated the mail store to schema version {version}", {
          version: current + 1,
        });
        return false;
      });
      if (done) return;
    }
  }

  async #requireAccount(q: Queryable, accountId: number, share = false): Promise<void> {
    // FOR SHARE keeps the account from being deleted under a transaction that adds to it.
    const found = await rows<{ id: number }>(
      q,
      `SELECT id FROM accounts WHERE id = $1${share ? " FOR SHARE" : ""}`,
      [accountId],
    );
    if (found.length === 0) throw new MailStoreError("nonexistent", "No such account");
  }

  async #findMailbox(
    q: Queryable,
    accountId: number,
    canonical: string,
    lock = false,
  ): Promise<MailboxRow | undefined> {
    return (await rows<MailboxRow>(
      q,
      `SELECT ${MAILBOX_COLUMNS} FROM mailboxes m WHERE m.account_id = $1 AND m.name = $2
       ${lock ? "FOR UPDATE OF m" : ""}`,
      [accountId, canonical],
    ))[0];
  }

  async #mailboxById(q: Queryable, id: number): Promise<MailboxRow> {
    const found = Number.isSafeInteger(id)
      ? await rows<MailboxRow>(
        q,
        `SELECT ${MAILBOX_COLUMNS} FROM mailboxes m WHERE m.id = $1`,
        [id],
      )
      : [];
    if (!found[0]) throw new MailStoreError("nonexistent", "No such mailbox");
    return found[0];
  }

  /** Locks a mailbox row for this transaction: the writer's right to hand out UIDs and MODSEQs. */
  async #lockMailbox(tx: Tx, id: number): Promise<MailboxRow> {
    const found = Number.isSafeInteger(id)
      ? await rows<MailboxRow>(
        tx.q,
        `SELECT ${MAILBOX_COLUMNS} FROM mailboxes m WHERE m.id = $1 FOR UPDATE OF m`,
        [id],
      )
      : [];
    if (!found[0]) throw new MailStoreError("nonexistent", "No such mailbox");
    return found[0];
  }

  /** Locks two mailboxes in id order (so that two opposite copies cannot deadlock). */
  async #lockPair(tx: Tx, a: number, b: number): Promise<[MailboxRow, MailboxRow]> {
    if (!Number.isSafeInteger(a) || !Number.isSafeInteger(b)) {
      throw new MailStoreError("nonexistent", "No such mailbox");
    }
    const found = await rows<MailboxRow>(
      tx.q,
      `SELECT ${MAILBOX_COLUMNS} FROM mailboxes m WHERE m.id = ANY($1::bigint[])
       ORDER BY m.id FOR UPDATE OF m`,
      [[a, b]],
    );
    const first = found.find((r) => r.id === a);
    const second = found.find((r) => r.id === b);
    if (!first || !second) throw new MailStoreError("nonexistent", "No such mailbox");
    return [first, second];
  }

  /**
   * A fresh UIDVALIDITY for every mailbox instance, so a recreated name never reuses one: the
   * counter row is locked by the upsert, so nodes never hand out the same value.
   */
  async #allocateUidValidity(tx: Tx, count: number): Promise<number> {
    const now = Math.floor(this.#now() / 1000);
    const found = await rows<{ first: number }>(
      tx.q,
      `INSERT INTO meta (key, value) VALUES ('last_uidvalidity', $1::bigint + $2::bigint - 1)
       ON CONFLICT (key) DO UPDATE
         SET value = greatest(meta.value + 1, $1::bigint) + $2::bigint - 1
       RETURNING value - $2::bigint + 1 AS first`,
      [now, count],
    );
    return found[0]!.first;
  }

  async #insertMailboxes(
    tx: Tx,
    accountId: number,
    names: readonly string[],
    uses: readonly (SpecialUse | null)[],
  ): Promise<number[]> {
    const first = await this.#allocateUidValidity(tx, names.length);
    try {
      return (await rows<{ id: number }>(
        tx.q,
        `INSERT INTO mailboxes (account_id, name, uidvalidity, uidnext, highestmodseq, special_use)
         SELECT $1, n, $2::bigint + o - 1, 1, 1, nullif(u, '')
         FROM unnest($3::text[], $4::text[]) WITH ORDINALITY AS t(n, u, o)
         ORDER BY o RETURNING id`,
        [accountId, first, names, uses.map((u) => u ?? "")],
      )).map((r) => r.id);
    } catch (e) {
      if (pgCode(e) === "23505") {
        throw new MailStoreError("alreadyexists", "Mailbox already exists");
      }
      throw e;
    }
  }

  /** One delivery inside the current transaction: dedup record, quota check, append. */
  async #deliver(
    tx: Tx,
    mailboxId: number,
    input: AppendInput,
    options: DeliverOptions,
  ): Promise<DeliverResult> {
    const now = options.now ?? this.#now();
    const dedup = options.windowMs > 0;
    if (dedup) {
      // Two nodes delivering the same key at once: the second waits, then sees the first.
      await exec(tx.q, "SELECT pg_advisory_xact_lock(hashtext($1))", [options.deliveryKey]);
    }
    await exec(tx.q, "DELETE FROM deliveries WHERE delivered_at < $1", [
      now - options.windowMs,
    ]);
    if (dedup) {
      const seen = await rows<{ mailbox_id: number; uid: number }>(
        tx.q,
        "SELECT mailbox_id, uid FROM deliveries WHERE key = $1",
        [options.deliveryKey],
      );
      if (seen[0]) return { kind: "duplicate", mailboxId: seen[0].mailbox_id, uid: seen[0].uid };
    }
    const m = await this.#lockMailbox(tx, mailboxId);
    const quota = options.quota;
    if (quota && (quota.storage !== null || quota.messages !== null)) {
      const used = await rows<{ size: number | null; count: number | null }>(
        tx.q,
        `SELECT sum(total_size)::bigint AS size, sum(message_count)::bigint AS count
         FROM mailboxes WHERE account_id = $1`,
        [m.account_id],
      );
      const size = used[0]?.size ?? 0;
      const count = used[0]?.count ?? 0;
      if (quota.storage !== null && size + input.raw.byteLength > quota.storage) {
        return { kind: "overquota", resource: "storage" };
      }
      if (quota.messages !== null && count + 1 > quota.messages) {
        return { kind: "overquota", resource: "messages" };
      }
    }
    const result = await this.#appendLocked(tx, m, input);
    if (!dedup) return { kind: "stored", ...result };
    await exec(
      tx.q,
      `INSERT INTO deliveries (key, mailbox_id, uid, delivered_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (key) DO UPDATE SET mailbox_id = EXCLUDED.mailbox_id, uid = EXCLUDED.uid,
         delivered_at = EXCLUDED.delivered_at`,
      [options.deliveryKey, mailboxId, result.uid, now],
    );
    return { kind: "stored", ...result };
  }

  async #append(tx: Tx, mailboxId: number, input: AppendInput): Promise<AppendResult> {
    return await this.#appendLocked(tx, await this.#lockMailbox(tx, mailboxId), input);
  }

  /** Inserts one message into a mailbox this transaction has locked, in one statement. */
  async #appendLocked(tx: Tx, m: MailboxRow, input: AppendInput): Promise<AppendResult> {
    const flags = normalizeFlags(input.flags ?? []);
    const internalDate = input.internalDate ?? this.#now();
    const uid = m.uidnext;
    const modseq = m.highestmodseq + 1;
    const seen = hasFlag(flags, SEEN);
    const emailId = newObjectId("M");
    await exec(
      tx.q,
      `WITH b AS (
         INSERT INTO blobs (raw, summary) VALUES ($1::bytea, $2::text) RETURNING id
       ), s AS (
         INSERT INTO search_texts (blob_id, text) SELECT id, $3::text FROM b
         WHERE $3::text IS NOT NULL
       ), msg AS (
         INSERT INTO messages (mailbox_id, uid, modseq, flags, seen, deleted, internal_date,
           size, blob_id, email_id, thread_id, save_date)
         SELECT $4, $5, $6, $7, $8, $9, $10, $11, id, $13, $14, $15 FROM b
       )
       UPDATE mailboxes SET uidnext = $5::bigint + 1, highestmodseq = $6,
         message_count = message_count + 1, unseen_count = unseen_count + $12,
         total_size = total_size + $11
       WHERE id = $4`,
      [
        input.raw,
        input.summary ?? null,
        input.searchText ?? null,
        m.id,
        uid,
        modseq,
        flags.join(" "),
        seen,
        hasFlag(flags, DELETED),
        internalDate,
        input.raw.byteLength,
        seen ? 0 : 1,
        emailId,
        input.threadId ?? "T" + emailId.slice(1),
        this.#now(),
      ],
    );
    m.uidnext = uid + 1;
    m.highestmodseq = modseq;
    m.message_count++;
    m.total_size += input.raw.byteLength;
    if (!seen) m.unseen_count++;
    this.#announce(tx, { kind: "append", mailboxId: m.id, uids: [uid] }, `a:${uid}:${uid}`);
    return { uidValidity: m.uidvalidity, uid, modseq };
  }

  async #messageRows(
    q: Queryable,
    mailboxId: number,
    uids: readonly number[],
  ): Promise<MessageRow[]> {
    const wanted = cleanUids(uids);
    if (wanted.length === 0) return [];
    const [where, params] = uidCondition("uid", wanted, 2);
    const list = await values<MessageTuple>(
      q,
      `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE mailbox_id = $1 AND ${where} ORDER BY uid`,
      [mailboxId, ...params],
    );
    const asked = new Set(wanted);
    const out: MessageRow[] = [];
    for (const t of list) {
      if (asked.has(t[0])) out.push(messageRow(t));
    }
    return out;
  }

  async #copy(
    tx: Tx,
    fromId: number,
    uids: readonly number[],
    toId: number,
    move: boolean,
  ): Promise<CopyResult> {
    const [from, to] = fromId === toId
      ? await this.#lockMailbox(tx, fromId).then((m) => [m, m] as const)
      : await this.#lockPair(tx, fromId, toId);
    if (from.account_id !== to.account_id) {
      throw new MailStoreError("cannot", "Cannot copy between accounts");
    }
    const list = await this.#messageRows(tx.q, fromId, uids);
    const mapping = await this.#copyRows(tx, fromId, list, to);
    if (move) await this.#removeMessages(tx, from, list.map((r) => r.uid));
    return { uidValidity: to.uidvalidity, mapping };
  }

  /** Inserts copies of `list` (rows of `sourceId`) into `to` (locked), sharing their blobs. */
  async #copyRows(
    tx: Tx,
    sourceId: number,
    list: readonly MessageRow[],
    to: MailboxRow,
  ): Promise<[number, number][]> {
    const mapping: [number, number][] = [];
    if (list.length === 0) return mapping;
    const firstUid = to.uidnext;
    const firstModseq = to.highestmodseq + 1;
    let unseen = 0;
    let size = 0;
    for (const [i, r] of list.entries()) {
      if (!hasFlag(splitFlags(r.flags), SEEN)) unseen++;
      size += r.size;
      mapping.push([r.uid, firstUid + i]);
    }
    await exec(
      tx.q,
      `INSERT INTO messages (mailbox_id, uid, modseq, flags, seen, deleted, internal_date, size,
         blob_id, email_id, thread_id, save_date)
       SELECT $1, $2::bigint + o - 1, $3::bigint + o - 1, m.flags, m.seen, m.deleted,
         m.internal_date, m.size, m.blob_id, m.email_id, m.thread_id, $6
       FROM unnest($4::bigint[]) WITH ORDINALITY AS v(uid, o)
       JOIN messages m ON m.mailbox_id = $5 AND m.uid = v.uid`,
      [to.id, firstUid, firstModseq, list.map((r) => r.uid), sourceId, this.#now()],
    );
    const lastUid = firstUid + list.length - 1;
    const lastModseq = firstModseq + list.length - 1;
    await exec(
      tx.q,
      `UPDATE mailboxes SET uidnext = $1, highestmodseq = $2, message_count = message_count + $3,
       unseen_count = unseen_count + $4, total_size = total_size + $5 WHERE id = $6`,
      [lastUid + 1, lastModseq, list.length, unseen, size, to.id],
    );
    to.uidnext = lastUid + 1;
    to.highestmodseq = lastModseq;
    to.message_count += list.length;
    to.unseen_count += unseen;
    to.total_size += size;
    this.#announce(
      tx,
      { kind: "append", mailboxId: to.id, uids: mapping.map(([, u]) => u) },
      `a:${firstUid}:${lastUid}`,
    );
    return mapping;
  }

  /** Expunges `uids` (ascending) of `m` (locked), records them for VANISHED, frees blobs. */
  async #removeMessages(tx: Tx, m: MailboxRow, uids: readonly number[]): Promise<void> {
    if (uids.length === 0) return;
    const gone = (await values<[number, boolean, number, number]>(
      tx.q,
      `DELETE FROM messages WHERE mailbox_id = $1 AND uid = ANY($2::bigint[])
       RETURNING uid, seen, size, blob_id`,
      [m.id, [...uids]],
    )).sort((a, b) => a[0] - b[0]);
    if (gone.length === 0) return;
    const firstModseq = m.highestmodseq + 1;
    const lastModseq = m.highestmodseq + gone.length;
    await exec(
      tx.q,
      `INSERT INTO expunged (mailbox_id, uid, modseq, expunged_at)
       SELECT $1, uid, $2::bigint + o - 1, $3 FROM unnest($4::bigint[]) WITH ORDINALITY AS v(uid, o)
       ON CONFLICT (mailbox_id, uid) DO UPDATE SET modseq = EXCLUDED.modseq,
         expunged_at = EXCLUDED.expunged_at`,
      [m.id, firstModseq, this.#now(), gone.map(([uid]) => uid)],
    );
    await this.#freeBlobs(tx, gone.map(([, , , blob]) => blob));
    const unseen = gone.filter(([, seen]) => !seen).length;
    const size = gone.reduce((s, [, , n]) => s + n, 0);
    await exec(
      tx.q,
      `UPDATE mailboxes SET highestmodseq = $1, message_count = message_count - $2,
       unseen_count = unseen_count - $3, total_size = total_size - $4 WHERE id = $5`,
      [lastModseq, gone.length, unseen, size, m.id],
    );
    m.highestmodseq = lastModseq;
    m.message_count -= gone.length;
    m.unseen_count -= unseen;
    m.total_size -= size;
    this.#announce(
      tx,
      { kind: "expunge", mailboxId: m.id, uids: gone.map(([uid]) => uid) },
      `x:${firstModseq}:${lastModseq}`,
    );
  }

  async #blobsOf(tx: Tx, mailboxIds: readonly number[]): Promise<number[]> {
    if (mailboxIds.length === 0) return [];
    return (await values<[number]>(
      tx.q,
      "SELECT DISTINCT blob_id FROM messages WHERE mailbox_id = ANY($1::bigint[])",
      [mailboxIds],
    )).map(([id]) => id);
  }

  /** Deletes the blobs among `ids` that no message refers to any more. */
  async #freeBlobs(tx: Tx, ids: readonly number[]): Promise<void> {
    if (ids.length === 0) return;
    await exec(
      tx.q,
      `DELETE FROM blobs b WHERE b.id = ANY($1::bigint[])
       AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.blob_id = b.id)`,
      [[...new Set(ids)]],
    );
  }

  /** Deletes a mailbox (locked), its messages and expunge records, then unshared blobs. */
  async #dropMailbox(tx: Tx, mailboxId: number): Promise<void> {
    const blobs = await this.#blobsOf(tx, [mailboxId]);
    await exec(tx.q, "DELETE FROM mailboxes WHERE id = $1", [mailboxId]);
    await this.#freeBlobs(tx, blobs);
    this.#announce(tx, { kind: "deleted", mailboxId }, "d");
  }

  /** RFC 9051, Section 6.3.6: renaming INBOX moves its messages and leaves INBOX empty. */
  async #renameInbox(tx: Tx, accountId: number, inboxId: number, target: string): Promise<void> {
    const [id] = await this.#insertMailboxes(tx, accountId, [target], [null]);
    const [inbox, fresh] = await this.#lockPair(tx, inboxId, id!);
    const list = await values<MessageTuple>(
      tx.q,
      `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE mailbox_id = $1 ORDER BY uid`,
      [inboxId],
    );
    const all = list.map(messageRow);
    await this.#copyRows(tx, inboxId, all, fresh);
    await this.#removeMessages(tx, inbox, all.map((r) => r.uid));
  }
}

async function rows<T>(q: Queryable, text: string, params: readonly Param[]): Promise<T[]> {
  // Parameters are bound, never spliced into the text; "unsafe" only means the text is built
  // by this module rather than from a tagged template.
  return await retryRead(
    q,
    async () => await q.unsafe(text, params as never[], { prepare: true }) as unknown as T[],
  );
}

async function values<T>(q: Queryable, text: string, params: readonly Param[]): Promise<T[]> {
  return await retryRead(
    q,
    async () =>
      await q.unsafe(text, params as never[], { prepare: true }).values() as unknown as T[],
  );
}

/**
 * Connection failures: the server restarting (57P01-57P03), refusing, or a connection cut.
 * A statement outside a transaction that failed so can be sent again.
 */
const CONNECTION_CODES = new Set([
  "57P01",
  "57P02",
  "57P03",
  "ECONNREFUSED",
  "ECONNRESET",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "CONNECT_TIMEOUT",
]);

/** Failures that happened before anything of a transaction ran: it can run again whole. */
const NOT_CONNECTED_CODES = new Set(["57P03", "ECONNREFUSED", "CONNECT_TIMEOUT"]);

/** Waits between attempts while the server restarts: about 3 s in all. */
const RECONNECT_DELAYS_MS = [100, 200, 400, 800, 1600];

/** Further waits for a transaction in doubt to end (`#commitStatus`): 10 s more in all. */
const COMMIT_STATUS_WAIT_MS = [2000, 2000, 2000, 2000, 2000];

/**
 * Runs a statement on the pool again after a connection failure, so that a reader (an IDLE
 * session re-reading a change, a FETCH) rides out a database restart. Statements inside a
 * transaction are not retried here: the transaction is.
 */
async function retryRead<T>(q: Queryable, run: () => Promise<T>): Promise<T> {
  if (typeof (q as { begin?: unknown }).begin !== "function") return await run();
  for (let attempt = 0;; attempt++) {
    try {
      return await run();
    } catch (e) {
      const delay = RECONNECT_DELAYS_MS[attempt];
      if (delay === undefined || !CONNECTION_CODES.has(pgCode(e) ?? "")) throw e;
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

async function exec(q: Queryable, text: string, params: readonly Param[]): Promise<void> {
  await q.unsafe(text, params as never[], { prepare: true });
}

function pgCode(e: unknown): string | undefined {
  const code = (e as { code?: unknown })?.code;
  return typeof code === "string" ? code : undefined;
}

function isRetryable(e: unknown): boolean {
  return RETRY_CODES.has(pgCode(e) ?? "");
}

/** Constraint races between nodes become the store's own errors. */
function translate(e: unknown): unknown {
  if (e instanceof MailStoreError) return e;
  switch (pgCode(e)) {
    case "23505":
      return new MailStoreError("alreadyexists", "Already exists");
    case "23503":
      return new MailStoreError("nonexistent", "No such account or mailbox");
  }
  return e;
}

/** Below this many UIDs per row of the span, a UID range scan beats sending the list. */
const DENSE_FACTOR = 4;

/**
 * The condition on `column` for sorted UIDs `wanted`, with its parameters numbered from
 * `first`: a range scan for a dense run (FETCH 1:*, a SEARCH batch), whose extra rows the
 * caller drops, or a list for scattered UIDs.
 */
function uidCondition(
  column: string,
  wanted: readonly number[],
  first: number,
): [string, Param[]] {
  const lo = wanted[0]!;
  const hi = wanted.at(-1)!;
  if (hi - lo + 1 <= wanted.length * DENSE_FACTOR) {
    return [`${column} BETWEEN $${first} AND $${first + 1}`, [lo, hi]];
  }
  return [`${column} = ANY($${first}::bigint[])`, [wanted]];
}

function cleanUids(uids: readonly number[]): number[] {
  return [...new Set(uids)].filter((u) => Number.isSafeInteger(u) && u > 0)
    .sort((a, b) => a - b);
}

function sharedFlags(parsed: Map<string, readonly string[]>, stored: string): readonly string[] {
  let flags = parsed.get(stored);
  if (flags === undefined) {
    flags = Object.freeze(splitFlags(stored));
    if (parsed.size < 1024) parsed.set(stored, flags);
  }
  return flags;
}

function accountView(row: AccountRow): Account {
  return { id: row.id, name: row.name, passwordHash: row.password_hash };
}

function mailboxView(row: MailboxRow): Mailbox {
  return {
    id: row.id,
    accountId: row.account_id,
    name: row.name,
    uidValidity: row.uidvalidity,
    uidNext: row.uidnext,
    highestModseq: row.highestmodseq,
    subscribed: row.subscribed,
    specialUse: row.special_use as SpecialUse | null,
    messages: row.message_count,
    unseen: row.unseen_count,
    size: row.total_size,
    objectId: row.object_id,
  };
}

function metaView(row: MessageRow): MessageMeta {
  return {
    uid: row.uid,
    modseq: row.modseq,
    flags: splitFlags(row.flags),
    internalDate: row.internal_date,
    size: row.size,
  };
}

function splitFlags(stored: string): string[] {
  return stored === "" ? [] : stored.split(" ");
}
