/**
 * Opens the mail store a configuration names: SQLite in the data directory by default, or a
 * PostgreSQL shared by several nodes. Callers get a `MailStore` and need not know which.
 */
import { join } from "node:path";
import type { MailStore } from "../../mailstore/mail_store.ts";
import type { EventRelay } from "../../mailstore/event_hub.ts";
import type { ExactStore } from "../../mailstore/transfer.ts";
import { openSqliteMailStore } from "../../mailstore/sqlite/mod.ts";
import { openPostgresMailStore } from "../../mailstore/postgres/mod.ts";
import type { Config } from "../config/mod.ts";
import { DATABASE_FILE, prepareDataDir } from "./data_dir.ts";

export { DATABASE_FILE };

export interface OpenStoreOptions {
  readonly maxMessageBytes?: number;
  /**
   * Joins the other Workers' connections to the same SQLite database (PostgreSQL stores hear
   * each other through LISTEN/NOTIFY and need none).
   */
  readonly relay?: EventRelay;
  /** Lets the Workers' SQLite connections share their WAL syncs. */
  readonly sharedSync?: SharedArrayBuffer;
  /** Starts a SQLite store's worker threads at open (see `SqliteMailStoreOptions`). */
  readonly startWorkers?: boolean;
  /** Whether a SQLite store checkpoints with a worker of its own (see `SqliteMailStoreOptions`). */
  readonly checkpointer?: boolean;
}

/** Largest password file read; a password is a line. */
const MAX_PASSWORD_FILE_BYTES = 64 * 1024;

/** Where the SQLite store of `config` lives, or null when the store is PostgreSQL. */
export function sqlitePath(config: Pick<Config, "dataDir" | "store">): string | null {
  if (config.store.kind !== "sqlite") return null;
  return config.store.path ?? join(config.dataDir, DATABASE_FILE);
}

/**
 * Opens (creating or migrating as needed) the store that `config` names. Both kinds also
 * offer the exact copy of `postern store copy`.
 */
export async function openConfiguredStore(
  config: Pick<Config, "dataDir" | "store">,
  options: OpenStoreOptions = {},
): Promise<MailStore & ExactStore> {
  const store = config.store;
  const { relay, sharedSync, startWorkers, checkpointer, ...common } = options;
  if (store.kind === "sqlite") {
    if (store.path === null) await prepareDataDir(config.dataDir);
    return await openSqliteMailStore(sqlitePath(config)!, {
      ...common,
      listingCacheMessages: store.listingCache,
      ...(relay !== undefined ? { relay } : {}),
      ...(sharedSync !== undefined ? { sharedSync } : {}),
      ...(startWorkers !== undefined ? { startWorkers } : {}),
      ...(checkpointer !== undefined ? { checkpointer } : {}),
    });
  }
  const password = store.passwordFile === null
    ? undefined
    : await readPasswordFile(store.passwordFile);
  return await openPostgresMailStore({
    url: store.url,
    ...(password !== undefined ? { password } : {}),
    poolSize: store.poolSize,
    tls: store.tls,
    ...(store.ca !== null ? { tlsCa: await Deno.readTextFile(store.ca) } : {}),
    connectTimeoutSeconds: Math.max(1, Math.round(store.connectTimeoutMs / 1000)),
    ...common,
  });
}

/** The first line of a password file, capped before reading. */
async function readPasswordFile(path: string): Promise<string> {
  const info = await Deno.stat(path);
  if (info.size > MAX_PASSWORD_FILE_BYTES) throw new Error(`${path} is too large for a password`);
  const text = await Deno.readTextFile(path);
  return text.split(/\r?\n/, 1)[0] ?? "";
}
