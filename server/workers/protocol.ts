/**
 * The messages between the supervisor (main thread) and its Workers (accept loops). Every
 * message is plain data (structured clone). A request that wants an answer carries a `call`
 * number, and the answer echoes it.
 */
import type { Config } from "../config/mod.ts";
import type { LmtpBoundAddress } from "../lmtp/mod.ts";
import type client from "prom-client";
import type { KickResult, StatsResult, WhoResult } from "../admin/protocol.ts";

/** What the supervisor counts for every Worker together. */
export type ClaimScope = "user" | "address";

/** An admin command run on one Worker's sessions. */
export type AdminCall =
  | { readonly cmd: "who" }
  | { readonly cmd: "kick"; readonly target: { readonly user: string } | { readonly peer: string } }
  | { readonly cmd: "stats" };

/** Supervisor to Worker. */
export type ToWorker =
  | {
    readonly kind: "start";
    /** From 1; the first Worker binds the ports (0 picks free ones) that the others share. */
    readonly id: number;
    readonly primary: boolean;
    /** Its column in the table of connections per address (`SharedAddressCounts`). */
    readonly column: number;
    readonly config: Config;
    /** The BroadcastChannel that carries this server's mailbox events. */
    readonly channel: string;
    /** Events published by every Worker (`allocateRelayCounts`): this one bumps cell `column`. */
    readonly relayCounts: SharedArrayBuffer;
    /** The \Recent boundaries every Worker claims from (`SharedBoundaries`). */
    readonly recent: SharedArrayBuffer;
    /** The SQLite WAL syncs every Worker's connection shares (`allocateSharedSync`). */
    readonly sync: SharedArrayBuffer;
    /** Session tickets of one Worker open in every other: their keys come from this. */
    readonly ticketSecret: Uint8Array;
    /** The password cache's key, so that each Worker's cached verdicts hold in the others. */
    readonly authCacheKey: Uint8Array;
    /** TLS 1.3 ticket uses of every Worker (`allocateTicketUses`). */
    readonly ticketUses: SharedArrayBuffer;
    /** TLS 1.2 sessions by ID of every Worker (`allocateSharedSessions`). */
    readonly sessions: SharedArrayBuffer;
    /** Open connections per client address of every Worker (`allocateAddressCounts`). */
    readonly addressCounts: SharedArrayBuffer;
    /** The Workers' heartbeat cells (`Watchdog`): this one bumps cell `column`. */
    readonly heartbeats: SharedArrayBuffer;
    /** How often it bumps it, ms. */
    readonly heartbeatMs: number;
    readonly shutdownGraceMs: number;
  }
  | { readonly kind: "claimed"; readonly call: number; readonly ok: boolean }
  | { readonly kind: "reload"; readonly call: number; readonly config: Config }
  | { readonly kind: "metrics"; readonly call: number }
  | { readonly kind: "admin"; readonly call: number; readonly request: AdminCall }
  | { readonly kind: "shutdown" }
  /**
   * Tests only (`ServeHandle.failWorkerForTest`): the Worker throws an uncaught error, ends
   * itself with `self.close()`, or blocks its event loop in one long synchronous task (at most
   * `BLOCK_FOR_TEST_MS`).
   */
  | { readonly kind: "fail"; readonly how: "throw" | "close" | "block" };

/** How long a Worker blocks its event loop when a test asks it to (`fail`, `block`). */
export const BLOCK_FOR_TEST_MS = 8000;

/** Worker to supervisor. */
export type FromWorker =
  | {
    readonly kind: "ready";
    readonly addresses: readonly Deno.NetAddr[];
    readonly lmtpAddresses: readonly LmtpBoundAddress[];
  }
  | { readonly kind: "failed"; readonly error: string }
  | {
    readonly kind: "claim";
    readonly call: number;
    readonly scope: ClaimScope;
    readonly key: string;
    readonly limit: number;
  }
  | { readonly kind: "release"; readonly scope: ClaimScope; readonly key: string }
  | { readonly kind: "reloaded"; readonly call: number; readonly error: string | null }
  | {
    readonly kind: "metrics";
    readonly call: number;
    readonly metrics: client.MetricObjectWithValues<client.MetricValue<string>>[];
  }
  | {
    readonly kind: "admin";
    readonly call: number;
    readonly result: WhoResult | KickResult | StatsResult | null;
  }
  | { readonly kind: "stopped" };
