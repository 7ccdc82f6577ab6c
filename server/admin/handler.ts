/** What the admin socket's commands do on a running server. */
import type { LiveSession } from "../serve/imap_app.ts";
import type { KeyCounters } from "../metrics/counters.ts";
import type { AdminHandler } from "./server.ts";
import type { SessionRecord } from "./protocol.ts";

export interface AdminHandlerOptions {
  readonly sessions: () => Iterable<LiveSession>;
  /** Reads the configuration again and applies it; throws when it is refused. */
  readonly reload: () => Promise<void>;
  readonly counters: KeyCounters;
  readonly connections: () => number;
  /** `Date.now()` at start. */
  readonly startedAt: number;
}

/** The BYE text a kicked session gets. */
export const KICK_TEXT = "Disconnected by the administrator";

export function adminHandler(options: AdminHandlerOptions): AdminHandler {
  return {
    who: () => ({ sessions: [...options.sessions()].map(sessionRecord) }),
    kick(target) {
      let kicked = 0;
      for (const session of options.sessions()) {
        const hit = "user" in target
          ? session.user === target.user
          : peerMatches(session.peer, target.peer);
        if (!hit) continue;
        session.bye(KICK_TEXT);
        kicked++;
      }
      return { kicked };
    },
    async reload() {
      try {
        await options.reload();
        return { taken: true };
      } catch (error) {
        return { taken: false, error: error instanceof Error ? error.message : String(error) };
      }
    },
    stats() {
      const memory = Deno.memoryUsage();
      let sessions = 0;
      let authenticated = 0;
      for (const session of options.sessions()) {
        sessions++;
        if (session.user !== null) authenticated++;
      }
      return {
        counters: {
          uptimeSeconds: Math.round((Date.now() - options.startedAt) / 1000),
          connectionsOpen: options.connections(),
          sessions,
          sessionsAuthenticated: authenticated,
          ...options.counters.counts,
          residentMemoryBytes: memory.rss,
          heapUsedBytes: memory.heapUsed,
        },
      };
    },
  };
}

function sessionRecord(session: LiveSession): SessionRecord {
  const tls = session.tls;
  return {
    user: session.user,
    peer: session.peer,
    listener: session.listener,
    tlsVersion: tls?.version ?? null,
    tlsSuite: tls?.cipherSuite ?? null,
    certificateSubject: session.identity?.subject ?? null,
    since: session.since.toISOString(),
    mailbox: session.mailbox,
  };
}

/**
 * `ADDR` names a session's peer `host:port` exactly, or every session from `host` (IPv6 with
 * or without brackets).
 */
export function peerMatches(peer: string, addr: string): boolean {
  if (peer === addr) return true;
  const host = /^\[(.*)\]:\d+$/.exec(peer)?.[1] ?? peer.replace(/:\d+$/, "");
  const wanted = /^\[(.*)\]$/.exec(addr)?.[1] ?? addr;
  return host === wanted;
}
