/**
 * IMAP sessions counted across every node that serves the same store, for the per-user
 * connection limit (`limits.max_connections_per_user`). The PostgreSQL store implements it; a
 * single node (SQLite) needs only its own count.
 */
export interface SessionRegistry {
  /**
   * Registers one session of `account` unless `limit` are live on all nodes together; returns
   * its key, or null when the limit is reached (nothing registered then).
   */
  claimSession(account: string, limit: number): Promise<string | null>;
  /** Ends a session registered by `claimSession` (idempotent). */
  releaseSession(key: string): Promise<void>;
}

/** True when `store` counts sessions across nodes. */
export function isSessionRegistry(store: unknown): store is SessionRegistry {
  const s = store as Partial<SessionRegistry> | null;
  return typeof s?.claimSession === "function" && typeof s.releaseSession === "function";
}
