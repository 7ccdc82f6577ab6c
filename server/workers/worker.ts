/**
 * A Worker's entry point: one accept loop of the server. It runs the same stack as a
 * single-threaded server (`serve`), with listeners bound with SO_REUSEPORT and a store
 * connection of its own. What the Workers share goes through BroadcastChannels (mailbox
 * events, login failures), shared memory (\Recent boundaries, WAL syncs, connections per
 * address, TLS ticket uses and TLS 1.2 sessions) or its supervisor (sessions per user, metrics, admin, reload, shutdown).
 */
import { serve, type ServeHandle } from "../serve/mod.ts";
import { setupLogging } from "../log.ts";
import { startStallProbeFromEnv } from "../serve/stall_probe.ts";
import { BroadcastRelay } from "./event_relay.ts";
import { SupervisorLink } from "./supervisor_link.ts";
import { BroadcastFailureFeed } from "./failure_feed.ts";
import { SharedAddressCounts } from "./address_counts.ts";
import { SharedTicketUses } from "./ticket_uses.ts";
import { SharedSessionStore } from "./session_store.ts";
import { type AdminCall, BLOCK_FOR_TEST_MS, type FromWorker, type ToWorker } from "./protocol.ts";
import type { AdminHandler } from "../admin/server.ts";

/** The Worker's global scope, typed by hand: the checked libraries are those of the main thread. */
const scope = self as unknown as {
  onmessage: ((e: MessageEvent<ToWorker>) => void) | null;
  postMessage(message: FromWorker): void;
  close(): void;
};

const post = (message: FromWorker) => scope.postMessage(message);
const link = new SupervisorLink(post);
let relay: BroadcastRelay | null = null;
let failures: BroadcastFailureFeed | null = null;
let handle: ServeHandle | null = null;
let heartbeat: ReturnType<typeof setInterval> | undefined;

scope.onmessage = (e) => {
  void dispatch(e.data).catch((error) => {
    // A request that cannot be answered ends the Worker as an uncaught error, which its
    // supervisor hears of (it then releases what the Worker held).
    setTimeout(() => {
      throw error;
    });
  });
};

async function dispatch(message: ToWorker): Promise<void> {
  switch (message.kind) {
    case "start": {
      setupLogging(message.config.log);
      // Benchmarks time every event loop that serves connections, so each Worker's too.
      startStallProbeFromEnv();
      relay = new BroadcastRelay(message.channel, {
        buffer: message.relayCounts,
        column: message.column,
      });
      failures = new BroadcastFailureFeed(`${message.channel}:auth`, message.authCacheKey);
      try {
        handle = await serve(message.config, {
          shutdownGraceMs: message.shutdownGraceMs,
          worker: {
            id: message.id,
            primary: message.primary,
            relay,
            recent: message.recent,
            sync: message.sync,
            failureFeed: failures,
            ticketSecret: message.ticketSecret,
            resumption: {
              ticketUses: new SharedTicketUses(
                message.ticketUses,
                message.config.tls.tickets.maxUses,
              ),
              sessionCache: new SharedSessionStore(message.sessions),
            },
            sessions: link,
            // Addresses are counted in shared memory; the supervisor takes what does not fit.
            addressGate: new SharedAddressCounts(message.addressCounts, link, message.column),
          },
        });
      } catch (error) {
        relay.close();
        failures.close();
        post({ kind: "failed", error: describe(error) });
        return;
      }
      // From a timer of this event loop: a Worker that ended itself or is stuck stops beating.
      heartbeat = setInterval(
        (cells: Int32Array, column: number) => Atomics.add(cells, column, 1),
        message.heartbeatMs,
        new Int32Array(message.heartbeats),
        message.column,
      );
      post({ kind: "ready", addresses: handle.addresses, lmtpAddresses: handle.lmtpAddresses });
      return;
    }
    case "claimed":
      link.settle(message.call, message.ok);
      return;
    case "reload": {
      let error: string | null = null;
      try {
        await handle?.reload(message.config);
      } catch (e) {
        error = describe(e);
      }
      post({ kind: "reloaded", call: message.call, error });
      return;
    }
    case "metrics":
      post({
        kind: "metrics",
        call: message.call,
        metrics: (await handle?.worker?.metrics()) ?? [],
      });
      return;
    case "admin": {
      const admin = handle?.worker?.admin ?? null;
      post({
        kind: "admin",
        call: message.call,
        result: admin === null ? null : await runAdmin(admin, message.request),
      });
      return;
    }
    case "shutdown":
      clearInterval(heartbeat);
      await handle?.shutdown();
      link.close();
      relay?.close();
      failures?.close();
      post({ kind: "stopped" });
      return;
    case "fail":
      setTimeout(() => {
        if (message.how === "close") scope.close();
        else if (message.how === "block") {
          // A task that never yields, as a runaway loop would: bounded, so a test always ends.
          const until = performance.now() + BLOCK_FOR_TEST_MS;
          while (performance.now() < until) { /* blocked */ }
        } else throw new Error("Worker failure asked for by a test");
      });
      return;
    default: {
      const never: never = message;
      throw new Error(`Unknown message ${JSON.stringify(never)}`);
    }
  }
}

async function runAdmin(admin: AdminHandler, request: AdminCall) {
  switch (request.cmd) {
    case "who":
      return await admin.who();
    case "kick":
      return await admin.kick(request.target);
    case "stats":
      return await admin.stats();
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
