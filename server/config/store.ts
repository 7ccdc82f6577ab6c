/** `store:` — where mail is kept: embedded SQLite (the default) or a shared PostgreSQL. */
import * as v from "valibot";
import type { Positions, SettingPath } from "./_positions.ts";
import { choice, duration, int, optional, path, section, text } from "./_schema.ts";
import { readPath } from "./_files.ts";
import { isLoopback } from "./values.ts";

export const STORE_KINDS = ["sqlite", "postgres"] as const;
export const STORE_TLS = ["disable", "require", "verify-full"] as const;
const SQLITE_KEYS = ["kind", "path", "listing_cache"];

export const storeSchema = section(
  {
    kind: optional(choice(STORE_KINDS), "sqlite"),
    /** sqlite */
    path: v.optional(path()),
    listing_cache: optional(int(0, 100_000_000), 400_000),
    /** postgres */
    url: v.optional(text()),
    password_file: v.optional(path()),
    pool_size: optional(int(1, 1000), 10),
    tls: v.optional(choice(STORE_TLS)),
    ca: v.optional(path()),
    connect_timeout: optional(duration(1000), "10s"),
  },
  "The mail store: sqlite (path, listing_cache) or postgres (url, password_file, pool_size, tls, ca)",
);

/** The mail store: embedded SQLite (the default) or a PostgreSQL shared by several nodes. */
export type StoreConfig = SqliteStoreConfig | PostgresStoreConfig;

export interface SqliteStoreConfig {
  readonly kind: "sqlite";
  /** Absolute path of the database file, or null for `<data_dir>/postern.db`. */
  readonly path: string | null;
  /**
   * Messages the cached listings (mailboxes of 1,000 messages and more, and those filled since
   * they were empty) may hold in all, about 100 bytes each; a listing not cached is read from its
   * stored snapshot or the message rows at SELECT. Default 400,000; 0 caches none and stores no
   * snapshots.
   */
  readonly listingCache: number;
}

export interface PostgresStoreConfig {
  readonly kind: "postgres";
  /** `postgres://user@host:port/database`, without a password. */
  readonly url: string;
  /** Absolute path of a file holding the password (first line), or null for none. */
  readonly passwordFile: string | null;
  /** Connections per node. Default 10. */
  readonly poolSize: number;
  /**
   * TLS to the server. Default "disable" for a loopback host and "verify-full" otherwise, so
   * that mail never crosses a network in clear unless the file says so.
   */
  readonly tls: (typeof STORE_TLS)[number];
  /** Absolute path of the CA (PEM) that issued the server's certificate, or null for the system's. */
  readonly ca: string | null;
  readonly connectTimeoutMs: number;
}

const STORE: SettingPath = ["store"];
const key = (name: string): SettingPath => [...STORE, name];

export function readStore(file: v.InferOutput<typeof storeSchema>, at: Positions): StoreConfig {
  const { kind } = file;
  // Only the keys of the chosen kind may be given (`kind` applies to both).
  const given = Object.entries(file).filter(([k, value]) =>
    value !== undefined && at.node(key(k)) !== undefined
  ).map(([k]) => k);
  for (const k of given) {
    const own = kind === "sqlite" || k === "kind"
      ? SQLITE_KEYS.includes(k)
      : !SQLITE_KEYS.includes(k);
    if (!own) at.fail(key(k), `does not apply to kind ${kind}`);
  }
  if (kind === "sqlite") {
    return {
      kind,
      path: file.path === undefined ? null : readPath(at, key("path"), file.path, "", false),
      listingCache: file.listing_cache,
    };
  }
  const url = file.url ?? "";
  if (file.url === undefined) at.missing(key("url"));
  let host = "";
  if (url !== "") {
    let parsed: URL | null = null;
    try {
      parsed = new URL(url);
    } catch {
      at.fail(
        key("url"),
        `"${url}" is not a URL such as postgres://postern@db.example.org/postern`,
      );
    }
    if (parsed !== null) {
      host = parsed.hostname.replace(/^\[|\]$/g, "");
      if (parsed.protocol !== "postgres:" && parsed.protocol !== "postgresql:") {
        at.fail(key("url"), `expected a postgres:// URL, got ${parsed.protocol}//`);
      } else if (parsed.password !== "") {
        // Config files get copied and shown; the secret lives in its own file.
        at.fail(key("url"), "must not hold a password: put it in password_file");
      } else if (host === "") {
        at.fail(key("url"), "names no host");
      }
    }
  }
  const passwordFile = file.password_file === undefined
    ? null
    : readPath(at, key("password_file"), file.password_file, "", true);
  const loopback = host === "" || isLoopback(host);
  return {
    kind,
    url,
    passwordFile,
    poolSize: file.pool_size,
    tls: file.tls ?? (loopback ? "disable" : "verify-full"),
    ca: file.ca === undefined ? null : readPath(at, key("ca"), file.ca, "", true),
    connectTimeoutMs: file.connect_timeout,
  };
}
