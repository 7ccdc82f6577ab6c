/**
 * Hostile load against a running server, shared by the hostile-load test (a few hundred
 * connections, correctness only) and the benchmark (1,000 connections, figures printed):
 * half-open TCP, slowloris TLS, garbage, oversized RSA client chains, KeyUpdate floods,
 * pre-login literal floods and clients that never read, all at once, while an honest client
 * logs in, SELECTs, FETCHes and APPENDs again and again.
 *
 * Every attacker stops by itself at the deadline; connections that the server closes early
 * (alerts, BYE) are opened again, so the pressure holds for the whole run.
 */
import { defaultProvider } from "../../protocol/crypto/mod.ts";
import { TlsClientConnection } from "../../protocol/tls/mod.ts";
import { decodePem } from "../../protocol/x509/pem.ts";
import type { ClientTicket } from "../../protocol/tls/client.ts";
import { EngineClient, EngineConn } from "./engine_client.ts";
import { hostileRsaChain } from "./hostile.ts";
import { connectTlsNoDelay, makeMessage, RawImap } from "./imap_clients.ts";

export const HOSTILE_KINDS = [
  "half-open TCP",
  "slowloris TLS",
  "garbage",
  "oversized RSA chain",
  "KeyUpdate flood",
  "pre-login literal flood",
  "non-reader",
] as const;
export type HostileKind = typeof HOSTILE_KINDS[number];

export interface HostileTarget {
  readonly implicitPort: number;
  readonly starttlsPort: number;
  readonly caPem: string;
}

export interface HonestAccount {
  readonly user: string;
  readonly password: string;
}

/** The honest client's steps, in order. */
export const HONEST_STEPS = ["connect+greeting", "login", "select", "fetch", "append", "logout"];

export interface HonestResult {
  rounds: number;
  /** What went wrong, one line per failed round. */
  failures: string[];
  /** Worst latency of each step, in milliseconds. */
  worstMs: Record<string, number>;
  /**
   * The worst connect+greeting's timeline (epoch ms, `EngineConn.timeline` and `greetingAt`),
   * to line up with the server's step probe; empty without `resume`.
   */
  worstConnect: Record<string, number>;
  /** With `resume`: the newest ticket, for a later run (`options.ticket`). */
  ticket?: ClientTicket;
  /** Every round's connect timeline, as `worstConnect`. */
  connects: Record<string, number>[];
  /**
   * In the worst of each step, how long the client's own thread waited for a core (Linux; 0
   * elsewhere): on a loaded machine the client, too, waits to see the answer.
   */
  worstWaitMs: Record<string, number>;
  /** Messages the honest client appended (all acknowledged with OK). */
  appended: number;
  /** Rounds whose handshake resumed the previous round's ticket (`resume`). */
  resumed: number;
}

export interface HostileResult {
  /** Connections opened per kind (reconnections included). */
  opened: Record<HostileKind, number>;
  /** Connections per kind that the server ended (alert, BYE or close). */
  endedByServer: Record<HostileKind, number>;
  /** Connections that could not even be opened. */
  connectFailures: number;
}

const encoder = new TextEncoder();
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function zero(): Record<HostileKind, number> {
  return Object.fromEntries(HOSTILE_KINDS.map((k) => [k, 0])) as Record<HostileKind, number>;
}

/** A ClientHello as our engine writes it, for the slowloris clients to dribble. */
function clientHelloBytes(): Uint8Array {
  const c = new TlsClientConnection({
    provider: defaultProvider,
    verifyServer: () => {
      throw new Error("unused");
    },
    serverName: "localhost",
  });
  return c.takeOutgoing();
}

/** Writes without waiting forever: false when the write did not finish in `ms`. */
async function writeWithin(conn: Deno.Conn, data: Uint8Array, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((r) => timer = setTimeout(() => r(false), ms));
  const write = (async () => {
    let at = 0;
    while (at < data.length) at += await conn.write(data.subarray(at));
    return true;
  })().catch(() => false);
  const done = await Promise.race([write, timeout]);
  clearTimeout(timer);
  return done;
}

/** Resolves when the server closes `conn` (or on `until`), discarding what it sends. */
async function drainUntilClosed(conn: Deno.Conn, until: number): Promise<boolean> {
  const buf = new Uint8Array(16 * 1024);
  const timer = setTimeout(() => close(conn), Math.max(0, until - Date.now()));
  try {
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) return Date.now() < until;
    }
  } catch {
    return Date.now() < until;
  } finally {
    clearTimeout(timer);
  }
}

function close(conn: { close(): void }): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}

/** What the attackers send, made once before the attack starts. */
export interface AttackMaterial {
  readonly chain: ReturnType<typeof hostileRsaChain>;
  readonly hello: Uint8Array;
}

/** Builds the oversized chain (against `target`'s CA) and a ClientHello to dribble. */
export function prepareAttack(target: HostileTarget): AttackMaterial {
  return { chain: hostileRsaChain(decodePem(target.caPem)[0]!.der), hello: clientHelloBytes() };
}

/**
 * Runs `connections` attackers (spread evenly over the kinds) against `target` until
 * `deadline` (a Date.now() value), then closes every connection they hold.
 */
export async function runAttackers(
  target: HostileTarget,
  connections: number,
  deadline: number,
  kinds: readonly HostileKind[] = HOSTILE_KINDS,
  material: AttackMaterial = prepareAttack(target),
): Promise<HostileResult> {
  const result: HostileResult = { opened: zero(), endedByServer: zero(), connectFailures: 0 };
  const { chain, hello } = material;
  const live = new Set<{ close(): void }>();
  const track = <T extends { close(): void }>(x: T): T => {
    live.add(x);
    return x;
  };
  const untrack = (x: { close(): void }) => {
    live.delete(x);
    close(x);
  };
  const garbage = crypto.getRandomValues(new Uint8Array(1024));
  const flood = encoder.encode("x LOGIN " + "{1+}\r\nx ".repeat(999) + "\r\n");
  const nonReaderBurst = encoder.encode("a CAPABILITY\r\n".repeat(16 * 1024));

  /** One attacker of `kind`: connects, misbehaves, and reconnects when the server ends it. */
  const attacker = async (kind: HostileKind, index: number): Promise<void> => {
    // Stagger the opening so the listener sees a burst, not one instant.
    await sleep((index * 7) % 500);
    while (Date.now() < deadline) {
      let ended = false;
      try {
        switch (kind) {
          case "half-open TCP": {
            const conn = track(
              await Deno.connect({ hostname: "127.0.0.1", port: target.implicitPort }),
            );
            result.opened[kind]++;
            if (index % 2 === 0) await conn.closeWrite().catch(() => {});
            ended = await drainUntilClosed(conn, deadline);
            untrack(conn);
            await sleep(200);
            break;
          }
          case "slowloris TLS": {
            const conn = track(
              await Deno.connect({ hostname: "127.0.0.1", port: target.implicitPort }),
            );
            result.opened[kind]++;
            const closed = drainUntilClosed(conn, deadline);
            let gone = false;
            closed.then(() => gone = true);
            for (let i = 0; i < hello.length && !gone && Date.now() < deadline; i++) {
              if (!(await writeWithin(conn, hello.subarray(i, i + 1), 1000))) break;
              await sleep(1000);
            }
            ended = await closed;
            untrack(conn);
            break;
          }
          case "garbage": {
            const conn = track(
              await Deno.connect({ hostname: "127.0.0.1", port: target.implicitPort }),
            );
            result.opened[kind]++;
            await writeWithin(conn, garbage, 1000);
            ended = await drainUntilClosed(conn, deadline);
            untrack(conn);
            await sleep(200);
            break;
          }
          case "oversized RSA chain": {
            const c = track(
              await EngineClient.connect(target.implicitPort, { certificate: chain }),
            );
            result.opened[kind]++;
            await c.waitFor(() => c.fatal !== null, Math.max(0, deadline - Date.now()));
            ended = c.fatal !== null || c.ended;
            await c.dispose();
            live.delete(c);
            await sleep(200);
            break;
          }
          case "KeyUpdate flood": {
            const c = track(await EngineClient.connect(target.implicitPort));
            result.opened[kind]++;
            await c.waitForText(/^\* OK/, Math.max(0, deadline - Date.now()));
            for (let i = 0; i < 100 && c.fatal === null && !c.ended; i++) {
              await c.keyUpdates(20);
              await sleep(10);
            }
            await c.waitFor(() => c.fatal !== null, Math.max(0, deadline - Date.now()));
            ended = c.fatal !== null || c.ended;
            await c.dispose();
            live.delete(c);
            await sleep(200);
            break;
          }
          case "pre-login literal flood": {
            const conn = track(
              await Deno.connect({ hostname: "127.0.0.1", port: target.starttlsPort }),
            );
            result.opened[kind]++;
            const closed = drainUntilClosed(conn, deadline);
            let gone = false;
            closed.then(() => gone = true);
            while (!gone && Date.now() < deadline) {
              if (!(await writeWithin(conn, flood, 1000))) break;
              await sleep(50);
            }
            ended = await closed;
            untrack(conn);
            break;
          }
          case "non-reader": {
            const conn = track(
              await Deno.connectTls({
                hostname: "127.0.0.1",
                port: target.implicitPort,
                caCerts: [target.caPem],
              }),
            );
            result.opened[kind]++;
            await conn.handshake();
            // Pipelined commands whose answers (about 3 MiB) are never read: TCP pushes back on
            // the server. One write that the socket buffers can take, so that no write is still
            // pending when the connection is closed (a pending write keeps the socket open).
            await writeWithin(conn, nonReaderBurst, 5000);
            // Hold the connection, still not reading, until the deadline.
            await sleep(Math.max(0, deadline - Date.now()));
            untrack(conn);
            break;
          }
        }
      } catch {
        result.connectFailures++;
        await sleep(200);
      }
      if (ended) result.endedByServer[kind]++;
    }
  };

  const all: Promise<void>[] = [];
  for (let i = 0; i < connections; i++) {
    all.push(attacker(kinds[i % kinds.length]!, i));
  }
  // A last resort: whatever is still open at the deadline is closed.
  const sweeper = sleep(Math.max(0, deadline - Date.now()) + 2000).then(() => {
    for (const x of live) close(x);
  });
  await Promise.all(all);
  for (const x of live) close(x);
  await sweeper;
  return result;
}

/** How many of the newest messages each honest round FETCHes and checks (`fetch: "recent"`). */
export const HONEST_FETCH_WINDOW = 25;

/**
 * The honest client: connects, LOGINs, SELECTs INBOX, FETCHes messages and checks them against
 * `expected`, APPENDs one more (added to `expected`), LOGOUTs; again until `deadline`. With
 * `fetch: "recent"` (the default) a round FETCHes the newest `HONEST_FETCH_WINDOW` messages,
 * so that every round asks the same of the server however many rounds came before (the
 * mailbox grows by one message a round); `"all"` FETCHes and checks every message.
 *
 * With `resume`, the client is our own TLS engine (`EngineConn`) and each round resumes with
 * the newest ticket of the round before: the one the server sends after LOGIN (a vouched
 * ticket, protocol/tls/vouched_ticket.ts), as a returning mail client would. Without it, Deno's
 * TLS client makes a full handshake every round.
 */
export async function runHonestClient(
  target: HostileTarget,
  account: HonestAccount,
  expected: Map<number, Uint8Array>,
  deadline: number,
  options: {
    readonly fetch?: "recent" | "all";
    readonly resume?: boolean;
    /** With `resume`: the ticket the first round offers (a returning client's). */
    readonly ticket?: ClientTicket;
  } = {},
): Promise<HonestResult> {
  const result: HonestResult = {
    rounds: 0,
    failures: [],
    worstMs: Object.fromEntries(HONEST_STEPS.map((s) => [s, 0])),
    worstWaitMs: Object.fromEntries(HONEST_STEPS.map((s) => [s, 0])),
    worstConnect: {},
    connects: [],
    appended: 0,
    resumed: 0,
  };
  let ticket: ClientTicket | undefined = options.ticket;
  let engineTimeline: Record<string, number> = {};
  const timed = async <T>(step: string, body: () => Promise<T>): Promise<T> => {
    const started = performance.now();
    const waited = threadWaitMs();
    const value = await body();
    const ms = performance.now() - started;
    if (step === "connect+greeting" && engineTimeline.port !== undefined) {
      result.connects.push({
        ...engineTimeline,
        greetingAt: performance.timeOrigin + performance.now(),
      });
    }
    if (ms > result.worstMs[step]!) {
      result.worstMs[step] = ms;
      result.worstWaitMs[step] = threadWaitMs() - waited;
      if (step === "connect+greeting") result.worstConnect = result.connects.at(-1) ?? {};
    }
    return value;
  };
  while (Date.now() < deadline) {
    result.rounds++;
    const roundStarted = performance.now();
    let client: RawImap | null = null;
    let engine: EngineConn | null = null;
    engineTimeline = {};
    try {
      client = await timed("connect+greeting", async () => {
        if (options.resume) {
          engine = await EngineConn.connect(
            target.implicitPort,
            ticket === undefined ? {} : { resumeWith: ticket },
          );
          if (engine.resumed) result.resumed++;
          engineTimeline = engine.timeline;
        }
        const c = new RawImap(
          engine ?? await connectTlsNoDelay(target.implicitPort, target.caPem),
        );
        const greeting = await c.greeting(30_000);
        if (!greeting.startsWith("* OK")) throw new Error(`greeting: ${greeting}`);
        return c;
      });
      const c = client;
      const expectOk = (what: string, r: { status: string; tagged: string }) => {
        if (r.status !== "OK") throw new Error(`${what}: ${r.tagged}`);
      };
      expectOk(
        "login",
        await timed(
          "login",
          () => c.command(`LOGIN ${account.user} ${account.password}`, undefined, 30_000),
        ),
      );
      expectOk("select", await timed("select", () => c.command("SELECT INBOX", undefined, 30_000)));
      const checked = options.fetch === "all"
        ? [...expected.keys()]
        : [...expected.keys()].slice(-HONEST_FETCH_WINDOW);
      const set = options.fetch === "all" ? "1:*" : checked.join(",");
      const fetched = await timed(
        "fetch",
        () => c.command(`UID FETCH ${set} (UID BODY.PEEK[])`, undefined, 30_000),
      );
      expectOk("fetch", fetched);
      const seen = new Map<number, Uint8Array>();
      for (const r of fetched.untagged) {
        const uid = /UID (\d+)/.exec(r.text)?.[1];
        if (uid !== undefined && r.literals[0]) seen.set(Number(uid), r.literals[0]);
      }
      for (const uid of checked) {
        const body = expected.get(uid)!;
        const got = seen.get(uid);
        if (got === undefined || got.length !== body.length || got.some((b, i) => b !== body[i])) {
          throw new Error(`message UID ${uid} missing or changed`);
        }
      }
      const message = makeMessage(`honest-${result.rounds}-${Date.now()}`, "Honest append");
      const appended = await timed("append", () => c.command("APPEND INBOX", message, 30_000));
      expectOk("append", appended);
      const uid = /APPENDUID \d+ (\d+)/.exec(appended.tagged)?.[1];
      if (uid === undefined) throw new Error(`append without APPENDUID: ${appended.tagged}`);
      expected.set(Number(uid), message);
      result.appended++;
      expectOk("logout", await timed("logout", () => c.command("LOGOUT", undefined, 30_000)));
    } catch (e) {
      result.failures.push(
        `round ${result.rounds}: ${e instanceof Error ? e.message : String(e)} (after ${
          (performance.now() - roundStarted).toFixed(0)
        } ms)`,
      );
    } finally {
      await client?.close();
      ticket = (engine as EngineConn | null)?.tickets.at(-1) ?? ticket;
    }
  }
  if (ticket !== undefined) result.ticket = ticket;
  return result;
}

/** This thread's time runnable but waiting for a core so far, in ms (0 off Linux). */
function threadWaitMs(): number {
  try {
    return Number(Deno.readTextFileSync("/proc/thread-self/schedstat").split(" ")[1]) / 1e6;
  } catch {
    return 0;
  }
}

/** APPENDs `count` messages as `account` and returns them by UID. */
export async function seedMessages(
  target: HostileTarget,
  account: HonestAccount,
  count: number,
): Promise<Map<number, Uint8Array>> {
  const c = await RawImap.tls(target.implicitPort, target.caPem);
  const out = new Map<number, Uint8Array>();
  try {
    await c.greeting();
    await c.command(`LOGIN ${account.user} ${account.password}`);
    for (let i = 0; i < count; i++) {
      const message = makeMessage(`seed-${i}`, `Seed ${i}`, `Body ${i}\r\n`.repeat(50));
      const r = await c.command("APPEND INBOX", message);
      const uid = /APPENDUID \d+ (\d+)/.exec(r.tagged)?.[1];
      if (uid === undefined) throw new Error(`seed APPEND failed: ${r.tagged}`);
      out.set(Number(uid), message);
    }
    await c.command("LOGOUT");
  } finally {
    await c.close();
  }
  return out;
}

/** An attack prepared in its worker thread, ready to run. */
export interface PreparedAttack {
  /**
   * The worker thread, when `nice` lowered its CPU priority: its process and thread ids and the
   * nice value its `/proc/<pid>/task/<tid>/stat` shows afterwards. null at normal priority.
   */
  readonly thread: { readonly pid: number; readonly tid: number; readonly nice: number } | null;
  /** Runs the attack until `deadline`; with the worker thread's CPU seconds meanwhile. */
  run(deadline: number): Promise<HostileResult & { readonly cpuSeconds: number }>;
}

/**
 * Starts a worker thread (see hostile_worker.ts) and has it prepare the attack; `run` runs the
 * attack there until `deadline`. Preparing first keeps the attack's set-up (an RSA key,
 * oversized certificates) out of the measured time. With `nice` above 0 the worker thread runs
 * at that nice value (Linux), the honest client and the server at their own.
 */
export async function prepareAttackersInWorker(
  target: HostileTarget,
  connections: number,
  kinds: readonly HostileKind[] = HOSTILE_KINDS,
  options: { readonly nice?: number } = {},
): Promise<PreparedAttack> {
  const worker = new Worker(new URL("./hostile_worker.ts", import.meta.url), { type: "module" });
  let settle: { resolve: (v: unknown) => void; reject: (e: Error) => void } | null = null;
  const next = () => new Promise((resolve, reject) => settle = { resolve, reject });
  worker.onmessage = (e: MessageEvent<{ ok: boolean; result?: unknown; error?: string }>) => {
    if (e.data.ok) settle?.resolve(e.data.result);
    else settle?.reject(new Error(e.data.error));
  };
  worker.onerror = (e) => {
    e.preventDefault();
    settle?.reject(new Error(e.message));
  };
  const ready = next();
  worker.postMessage({
    kind: "prepare",
    target: {
      implicitPort: target.implicitPort,
      starttlsPort: target.starttlsPort,
      caPem: target.caPem,
    },
    connections,
    kinds,
    nice: options.nice ?? 0,
  });
  let thread: PreparedAttack["thread"];
  try {
    thread = await ready as PreparedAttack["thread"];
  } catch (e) {
    worker.terminate();
    throw e;
  }
  return {
    thread,
    run: async (deadline: number) => {
      const done = next();
      worker.postMessage({ kind: "run", deadline });
      try {
        return await done as HostileResult & { cpuSeconds: number };
      } finally {
        worker.terminate();
      }
    },
  };
}
