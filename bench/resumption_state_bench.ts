/**
 * The resumption state that the Workers share (server/workers/session_store.ts, ticket_uses.ts)
 * against the per-process tables it replaces with several Workers (protocol/tls SessionCache,
 * TicketUses), in one run: a TLS 1.2 session stored and found by ID (a session with a 1 KiB
 * client certificate), and a TLS 1.3 ticket use counted. One thread: the cost of the shared
 * tables' encoding, copying and locking, without contention.
 *
 * Usage: `deno bench bench/resumption_state_bench.ts`.
 */
import { SessionCache, TicketUses } from "../protocol/tls/mod.ts";
import type { Session12 } from "../protocol/tls/tls12/session.ts";
import { allocateSharedSessions, SharedSessionStore } from "../server/workers/session_store.ts";
import { allocateTicketUses, SharedTicketUses } from "../server/workers/ticket_uses.ts";

const now = Date.now();
const session: Session12 = {
  suite: 0xc02f,
  masterSecret: new Uint8Array(48).fill(1),
  extendedMasterSecret: true,
  peerChain: [new Uint8Array(1024).fill(2)],
  serverName: new TextEncoder().encode("localhost"),
  createdAt: now,
};
const ids = Array.from({ length: 4096 }, () => crypto.getRandomValues(new Uint8Array(32)));
const local = new SessionCache();
const shared = new SharedSessionStore(allocateSharedSessions());
for (const id of ids) {
  local.put(id, session);
  shared.put(id, session);
}
let n = 0;

Deno.bench(
  "TLS 1.2 session get: SessionCache (one Worker)",
  { group: "get", baseline: true },
  () => {
    local.get(ids[n++ & 4095]!);
  },
);
Deno.bench("TLS 1.2 session get: SharedSessionStore (every Worker)", { group: "get" }, () => {
  shared.get(ids[n++ & 4095]!);
});
Deno.bench(
  "TLS 1.2 session put: SessionCache (one Worker)",
  { group: "put", baseline: true },
  () => {
    local.put(ids[n++ & 4095]!, session);
  },
);
Deno.bench("TLS 1.2 session put: SharedSessionStore (every Worker)", { group: "put" }, () => {
  shared.put(ids[n++ & 4095]!, session);
});

const ticketIds = Array.from({ length: 65536 }, () => crypto.getRandomValues(new Uint8Array(16)));
const uses = new TicketUses({ maxUses: 1_000_000 });
const sharedUses = new SharedTicketUses(allocateTicketUses(), 1_000_000);
Deno.bench("TLS 1.3 ticket use: TicketUses (one Worker)", { group: "take", baseline: true }, () => {
  uses.take(ticketIds[n++ & 65535]!, now + 3_600_000, now);
});
Deno.bench("TLS 1.3 ticket use: SharedTicketUses (every Worker)", { group: "take" }, () => {
  sharedUses.take(ticketIds[n++ & 65535]!, now + 3_600_000, now);
});
