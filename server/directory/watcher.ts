/**
 * The directory watcher: one long-lived LDAP connection that has the directory push changes
 * under `base_dn`, so that a certificate removed from an entry ends its sessions at once
 * instead of at the next poll.
 *
 * Modes, as `directory.sync` names them:
 * - `content_sync`: LDAP Content Synchronization in refreshAndPersist mode (RFC 4533), which
 *   OpenLDAP's syncprov overlay, 389-DS and others provide. The refresh phase carries no
 *   attribute values (`1.1`); once it is done, every add, modify or delete of an entry with a
 *   `userCertificate` value arrives as one entry with a Sync State control.
 * - `persistent_search`: the persistent search control (draft-ietf-ldapext-psearch-03) with
 *   Entry Change Notification controls, changes only, over every entry under `base_dn` (a
 *   persistent search does not report an entry that stops matching its filter).
 * - `poll`: no watcher; the periodic re-check of sessions does the work.
 * - `auto`: reads the root DSE's `supportedControl` (RFC 4512, Section 5.1) after each
 *   connect and takes the first of content_sync and persistent_search it offers, else poll.
 *
 * ldapts 9 cannot carry these searches: its `search()` resolves only at SearchResultDone,
 * which a persistent search never sends, and its message parser rejects IntermediateResponse
 * (the Sync Info message that ends the refresh phase). So this connection speaks LDAP through
 * the small sans-IO codec in `ldap_codec.ts`, over Deno's own sockets.
 *
 * When the connection drops, the watcher reconnects with exponential back-off (250 ms to
 * 30 s). After each (re)connect, once the server says the refresh is done (or, for psearch,
 * once the search is sent), `onResync` fires so that the caller re-checks every open session:
 * whatever changed while the connection was down is found there.
 */
import { getLogger } from "@logtape/logtape";
import { type DirectoryConfig, loadCaPem, type SyncSetting } from "./config.ts";
import {
  type LdapControl,
  LdapFramer,
  type LdapMessage,
  LdapOid,
  LdapResultCode,
  persistentSearchControl,
  readEntryChange,
  readSyncInfo,
  readSyncState,
  syncRequestControl,
  writeBindRequest,
  writeSearchRequest,
  writeStartTlsRequest,
  writeUnbindRequest,
} from "./ldap_codec.ts";

export type { SyncSetting } from "./config.ts";
/** How revocation reaches open sessions right now. */
export type RevocationMode = "content_sync" | "persistent_search" | "poll";

/** What kind of change the directory reported for an entry. */
export type EntryChangeKind = "add" | "modify" | "delete" | "moddn";

export interface WatcherEvents {
  /** An entry under the base changed; `delete` also means it no longer has a certificate. */
  onChange(dn: string, kind: EntryChangeKind, previousDn: string | null): void;
  /**
   * The watcher is in sync again after a (re)connect, or received a change it cannot pin to
   * one entry: every open session must be re-checked.
   */
  onResync(): void;
}

export interface WatcherOptions {
  /** Milliseconds clock for `lastSyncAt`; `Date.now` by default. */
  readonly now?: () => number;
  /** How often a live connection is probed with a root DSE read. Default 30 s. */
  readonly heartbeatMs?: number;
}

export interface WatcherStatus {
  readonly setting: SyncSetting;
  /** The mode that revokes now: a push mode while its search is live, else `poll`. */
  readonly mode: RevocationMode;
  /** True while a push search is established and past its refresh. */
  readonly live: boolean;
  /** When the push search was last known to be in sync (now, while live); null if never. */
  readonly lastSyncAt: number | null;
  /** LDAP requests sent since start (binds, StartTLS, searches), for the benchmark. */
  readonly operations: number;
}

const log = getLogger(["postern", "directory", "sync"]);

const MIN_BACKOFF_MS = 250;
/**
 * How often a live push connection is probed. A directory that vanishes without closing the
 * connection (a partition, a frozen host) would otherwise pass for live, and polling would
 * stay off; TCP keep-alive notices only after hours.
 */
const HEARTBEAT_MS = 30_000;
const MAX_BACKOFF_MS = 30_000;
/** The certificate attribute the watched entries must have (RFC 4523, Section 2.1). */
const CERTIFICATE_TYPE = "userCertificate";

class WatcherStop extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WatcherStop";
  }
}

/** A push search ended in a way that says this mode will not work on this server. */
class ModeUnavailable extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ModeUnavailable";
  }
}

/** Watches the directory for changes. Call `start()`, then `stop()` at shutdown. */
export class DirectoryWatcher {
  readonly #config: DirectoryConfig;
  readonly #setting: SyncSetting;
  readonly #events: WatcherEvents;
  readonly #now: () => number;
  readonly #heartbeatMs: number;
  #mode: RevocationMode = "poll";
  #live = false;
  #lastSyncAt: number | null = null;
  #operations = 0;
  #stopped = false;
  #conn: Deno.Conn | null = null;
  #wake: (() => void) | null = null;
  #loop: Promise<void> = Promise.resolve();
  /** Push modes found unusable on this server since the last successful sync (auto only). */
  readonly #unavailable = new Set<RevocationMode>();

  constructor(config: DirectoryConfig, events: WatcherEvents, options: WatcherOptions = {}) {
    this.#config = config;
    this.#setting = config.sync;
    this.#events = events;
    this.#now = options.now ?? Date.now;
    this.#heartbeatMs = options.heartbeatMs ?? HEARTBEAT_MS;
  }

  get status(): WatcherStatus {
    return {
      setting: this.#setting,
      mode: this.#live ? this.#mode : "poll",
      live: this.#live,
      lastSyncAt: this.#live ? this.#now() : this.#lastSyncAt,
      operations: this.#operations,
    };
  }

  start(): void {
    if (this.#setting === "poll") {
      log.info("Directory revocation mode: poll (directory.sync is poll)");
      return;
    }
    this.#loop = this.#run();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#wake?.();
    const conn = this.#conn;
    if (conn !== null) {
      try {
        await conn.write(writeUnbindRequest(0x7fff_fff0));
      } catch {
        // Closing anyway.
      }
      closeQuietly(conn);
    }
    await this.#loop;
  }

  async #run(): Promise<void> {
    let delay = MIN_BACKOFF_MS;
    while (!this.#stopped) {
      // A connection that got in sync earns the next reconnect the shortest delay.
      let wasLive = false;
      try {
        await this.#session();
      } catch (e) {
        if (this.#stopped) break;
        if (e instanceof WatcherStop) {
          log.info("{message}; revocation falls back to polling every {interval} ms", {
            message: e.message,
            interval: this.#config.recheckIntervalMs,
          });
          return;
        }
        wasLive = this.#live;
        this.#setLive(false);
        if (wasLive) delay = MIN_BACKOFF_MS;
        const message = e instanceof Error ? e.message : String(e);
        if (wasLive) {
          log.warn(
            "Directory push ({mode}) lost: {message}; polling until it is back (retry in {delay} ms)",
            { mode: this.#mode, message, delay },
          );
        } else {
          log.warn("Directory push ({setting}) not established: {message} (retry in {delay} ms)", {
            setting: this.#setting,
            message,
            delay,
          });
        }
      } finally {
        if (this.#conn !== null) closeQuietly(this.#conn);
        this.#conn = null;
      }
      if (this.#stopped) break;
      this.#setLive(false);
      await this.#sleep(delay);
      if (!wasLive) delay = Math.min(delay * 2, MAX_BACKOFF_MS);
    }
    this.#setLive(false);
  }

  #setLive(live: boolean): void {
    if (this.#live && !live) this.#lastSyncAt = this.#now();
    if (live) this.#lastSyncAt = this.#now();
    this.#live = live;
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#wake = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#wake = done;
    });
  }

  /**
   * One connection: connect, bind, choose the mode, run the push search until it ends. Throws
   * why it ended, except when the server refused an `auto`-chosen mode (then the next is tried).
   */
  async #session(): Promise<void> {
    const link = await this.#connect();
    await link.bind(this.#config.bindDn, this.#config.bindPassword);
    this.#operations++;
    const mode = await this.#chooseMode(link);
    if (mode === "poll") {
      throw new WatcherStop("The directory offers neither content sync nor persistent search");
    }
    this.#mode = mode;
    try {
      await this.#watch(link, mode);
    } catch (e) {
      if (e instanceof ModeUnavailable && this.#setting === "auto") {
        this.#unavailable.add(mode);
        log.warn("Directory refused {mode}: {message}; trying the next mode", {
          mode,
          message: e.message,
        });
        return;
      }
      throw e;
    }
  }

  async #chooseMode(link: LdapLink): Promise<RevocationMode> {
    if (this.#setting !== "auto") return this.#setting;
    this.#operations++;
    const root = await link.search({
      base: "",
      scope: "base",
      present: "objectClass",
      attributes: ["supportedControl"],
    }, this.#config.timeoutMs);
    const supported = new Set<string>();
    for (const entry of root) {
      for (const [type, values] of entry.attributes) {
        if (type.toLowerCase() !== "supportedcontrol") continue;
        for (const v of values) supported.add(new TextDecoder().decode(v));
      }
    }
    if (supported.has(LdapOid.syncRequest) && !this.#unavailable.has("content_sync")) {
      return "content_sync";
    }
    if (supported.has(LdapOid.persistentSearch) && !this.#unavailable.has("persistent_search")) {
      return "persistent_search";
    }
    return "poll";
  }

  /** Runs the push search until it ends; it only ends by throwing. */
  async #watch(link: LdapLink, mode: Exclude<RevocationMode, "poll">): Promise<never> {
    const control: LdapControl = mode === "content_sync"
      ? syncRequestControl(null)
      : persistentSearchControl();
    this.#operations++;
    const started = performance.now();
    const id = await link.send((msgId) =>
      writeSearchRequest(msgId, {
        base: this.#config.baseDn,
        scope: "sub",
        // Content sync reports an entry that leaves the filter as a delete (RFC 4533, Section
        // 3.3.2), so it can watch only entries with a certificate. A persistent search
        // reports only entries that match after the change: 389-DS says nothing when the
        // last certificate goes. So psearch watches every entry under the base.
        present: mode === "content_sync" ? CERTIFICATE_TYPE : "objectClass",
        // No attribute values: a change is a reason to look again, not the answer itself.
        attributes: ["1.1"],
      }, [control])
    );
    let synced = false;
    /** entryUUID (hex) → DN of every watched entry, for renames and deletes named by UUID. */
    const dnByUuid = new Map<string, string>();
    const becomeLive = () => {
      synced = true;
      this.#setLive(true);
      this.#unavailable.clear();
      log.info("Directory revocation mode: {mode}, in sync after {ms} ms", {
        mode,
        ms: Math.round(performance.now() - started),
      });
      this.#events.onResync();
    };
    // A persistent search sends nothing until a change: it is live once the server accepted
    // the request, which it shows by not ending it at once.
    if (mode === "persistent_search") {
      const early = await link.next(Math.min(this.#config.timeoutMs, 1000));
      if (early === "closed") throw new Error("The directory closed the connection");
      if (early !== "timeout") this.#handlePsearch(early, id, false);
      becomeLive();
    }
    // The liveness probe: sent when probeDue passes, and answered before the next probeDue.
    let probeId: number | null = null;
    let probeDue = performance.now() + this.#heartbeatMs;
    for (;;) {
      const m = await link.next(Math.max(1, probeDue - performance.now()));
      if (m === "closed") throw new Error("The directory closed the connection");
      if (m === "timeout") {
        if (probeId !== null) {
          throw new Error(
            `The directory did not answer a liveness probe within ${this.#config.timeoutMs} ms`,
          );
        }
        this.#operations++;
        probeId = await link.send((i) =>
          writeSearchRequest(i, {
            base: "",
            scope: "base",
            present: "objectClass",
            attributes: ["1.1"],
          })
        );
        probeDue = performance.now() + this.#config.timeoutMs;
        continue;
      }
      if (m.kind === "extendedResponse" && m.id === 0) {
        throw new Error(`The directory disconnected: ${m.result.message || m.name}`);
      }
      if (probeId !== null && m.id === probeId) {
        if (m.kind === "searchResultDone") {
          probeId = null;
          probeDue = performance.now() + this.#heartbeatMs;
        }
        continue;
      }
      if (m.id !== id) continue;
      if (mode === "persistent_search") {
        this.#handlePsearch(m, id, true);
        continue;
      }
      switch (m.kind) {
        case "searchResultEntry": {
          const c = m.controls.find((x) => x.oid === LdapOid.syncState);
          if (c === undefined || c.value === null) continue;
          const state = readSyncState(c.value);
          // Content sync names entries by entryUUID and gives no previous DN for a rename
          // (RFC 4533, Section 3.4): remembering each entry's DN shows renames, so sessions
          // known under the old DN are re-checked too.
          const uuid = hexOf(state.entryUuid);
          const before = dnByUuid.get(uuid);
          if (state.state === "delete") dnByUuid.delete(uuid);
          else if (m.dn !== "") dnByUuid.set(uuid, m.dn);
          // Refresh-phase content is what is there now; the resync re-check covers it.
          if (!synced || state.state === "present") continue;
          const dn = m.dn !== "" ? m.dn : before;
          if (dn === undefined) this.#events.onResync();
          else {
            const renamed = before !== undefined && before.toLowerCase() !== dn.toLowerCase();
            this.#events.onChange(dn, state.state, renamed ? before : null);
          }
          continue;
        }
        case "intermediateResponse": {
          if (m.name !== LdapOid.syncInfo || m.value === null) continue;
          const info = readSyncInfo(m.value);
          if (info.kind === "refreshDelete" || info.kind === "refreshPresent") {
            if (info.refreshDone && !synced) becomeLive();
          } else if (info.kind === "syncIdSet" && synced && info.refreshDeletes) {
            // Deletes named by entryUUID only: mapped back to DNs, or everything is re-checked.
            const dns = info.uuids.map((u) => dnByUuid.get(hexOf(u)));
            if (dns.some((dn) => dn === undefined)) this.#events.onResync();
            for (const [i, dn] of dns.entries()) {
              if (dn === undefined) continue;
              dnByUuid.delete(hexOf(info.uuids[i]!));
              this.#events.onChange(dn, "delete", null);
            }
          }
          continue;
        }
        case "searchResultDone":
          throw endOfSearch(m.result.code, m.result.message, synced);
        default:
          continue;
      }
    }
  }

  #handlePsearch(m: LdapMessage, id: number, live: boolean): void {
    if (m.id !== id) return;
    if (m.kind === "searchResultDone") throw endOfSearch(m.result.code, m.result.message, live);
    if (m.kind !== "searchResultEntry") return;
    const c = m.controls.find((x) => x.oid === LdapOid.entryChangeNotification);
    if (c === undefined || c.value === null) {
      this.#events.onResync();
      return;
    }
    const change = readEntryChange(c.value);
    this.#events.onChange(m.dn, change.change, change.previousDn);
  }

  async #connect(): Promise<LdapLink> {
    const { url, starttls, ca, timeoutMs } = this.#config;
    const parsed = new URL(url);
    const hostname = parsed.hostname.replace(/^\[(.*)\]$/, "$1");
    const secure = parsed.protocol === "ldaps:";
    const port = parsed.port === "" ? (secure ? 636 : 389) : Number(parsed.port);
    const caCerts = ca === undefined ? undefined : [loadCaPem(ca)];
    const tlsOptions = { hostname, ...(caCerts ? { caCerts } : {}) };
    const connecting: Promise<Deno.Conn> = secure
      ? Deno.connectTls({ port, ...tlsOptions })
      : Deno.connect({ hostname, port });
    let conn: Deno.Conn = await withTimeout(connecting, timeoutMs, "connect", (c) => c.close());
    this.#conn = conn;
    if (this.#stopped) throw new Error("Stopped");
    setSocketOptions(conn);
    if (starttls && !secure) {
      const plain = new LdapLink(conn);
      this.#operations++;
      await plain.startTls(timeoutMs);
      conn = await withTimeout(
        Deno.startTls(conn as Deno.TcpConn, tlsOptions),
        timeoutMs,
        "StartTLS",
        (c) => c.close(),
      );
      this.#conn = conn;
    }
    return new LdapLink(conn, timeoutMs);
  }
}

/**
 * Why a push search ended. A refusal before it was live says the mode does not work here; once
 * live, any end (a server shutting down may answer unwillingToPerform) is just a lost
 * connection.
 */
function endOfSearch(code: number, message: string, wasLive: boolean): Error {
  const text = `the search ended with LDAP result ${code}${message ? ` (${message})` : ""}`;
  const refusals: readonly number[] = [
    LdapResultCode.unavailableCriticalExtension,
    LdapResultCode.unwillingToPerform,
    LdapResultCode.insufficientAccessRights,
  ];
  if (!wasLive && refusals.includes(code)) return new ModeUnavailable(text);
  if (code === LdapResultCode.sizeLimitExceeded) {
    return new Error(
      `${text}: the refresh holds more entries than the service account may read; ` +
        `give it an unlimited size limit (OpenLDAP: limits dn.exact="<bind_dn>" size=unlimited)`,
    );
  }
  return new Error(text);
}

function hexOf(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function setSocketOptions(conn: Deno.Conn): void {
  try {
    (conn as Deno.TcpConn).setNoDelay?.(true);
    // A directory that vanishes without a FIN is noticed by TCP keep-alive.
    (conn as Deno.TcpConn).setKeepAlive?.(true);
  } catch {
    // Not a TCP connection (TLS over it keeps the TCP options).
  }
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}

async function withTimeout<T>(
  p: Promise<T>,
  ms: number,
  what: string,
  dispose: (value: T) => void,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let timedOut = false;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      timedOut = true;
      reject(new Error(`Directory ${what} timed out after ${ms} ms`));
    }, ms);
  });
  p.then((v) => {
    if (timedOut) dispose(v);
  }, () => {});
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** An LDAP connection: sends requests and reads whole messages, in order. */
class LdapLink {
  readonly #conn: Deno.Conn;
  readonly #framer = new LdapFramer();
  readonly #queue: LdapMessage[] = [];
  readonly #buf = new Uint8Array(64 * 1024);
  #nextId = 1;
  #reading: Promise<number | null> | null = null;
  readonly #timeoutMs: number;

  constructor(conn: Deno.Conn, timeoutMs = 5000) {
    this.#conn = conn;
    this.#timeoutMs = timeoutMs;
  }

  /** Writes a request built for the next message id; returns that id. */
  async send(build: (id: number) => Uint8Array): Promise<number> {
    const id = this.#nextId++;
    const bytes = build(id);
    let off = 0;
    while (off < bytes.length) off += await this.#conn.write(bytes.subarray(off));
    return id;
  }

  /** The next message; `closed` at the end of the stream; `timeout` after `timeoutMs`. */
  async next(timeoutMs: number): Promise<LdapMessage | "closed" | "timeout"> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const queued = this.#queue.shift();
      if (queued !== undefined) return queued;
      this.#reading ??= this.#conn.read(this.#buf).catch(() => null);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const n = await Promise.race([
        this.#reading,
        new Promise<"timeout">((r) => {
          timer = setTimeout(() => r("timeout"), Math.max(0, deadline - performance.now()));
        }),
      ]);
      clearTimeout(timer);
      // A read that lost the race stays pending and is awaited by the next call.
      if (n === "timeout") return "timeout";
      this.#reading = null;
      if (n === null) return "closed";
      this.#queue.push(...this.#framer.push(this.#buf.subarray(0, n)));
    }
  }

  /** Waits for the message answering `id`, skipping others; throws on timeout or close. */
  async #answer(id: number, what: string, timeoutMs: number): Promise<LdapMessage> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const left = deadline - performance.now();
      const m = left > 0 ? await this.next(left) : "timeout";
      if (m === "timeout") throw new Error(`No answer to the ${what} within ${timeoutMs} ms`);
      if (m === "closed") throw new Error(`The directory closed the connection (${what})`);
      if (m.kind === "extendedResponse" && m.id === 0) {
        throw new Error(`The directory disconnected: ${m.result.message || m.name}`);
      }
      if (m.id === id) return m;
    }
  }

  async bind(dn: string, password: string): Promise<void> {
    const id = await this.send((i) => writeBindRequest(i, dn, password));
    const m = await this.#answer(id, "bind", this.#timeoutMs);
    if (m.kind !== "bindResponse") throw new Error("Unexpected answer to the bind");
    if (m.result.code !== 0) {
      throw new Error(`The directory refused the service bind (LDAP result ${m.result.code})`);
    }
  }

  async startTls(timeoutMs: number): Promise<void> {
    const id = await this.send(writeStartTlsRequest);
    const m = await this.#answer(id, "StartTLS request", timeoutMs);
    if (m.kind !== "extendedResponse" || m.result.code !== 0) {
      throw new Error("The directory refused StartTLS");
    }
  }

  /** A complete (ordinary) search; returns the entries. */
  async search(
    req: Parameters<typeof writeSearchRequest>[1],
    timeoutMs: number,
  ): Promise<Array<Extract<LdapMessage, { kind: "searchResultEntry" }>>> {
    const id = await this.send((i) => writeSearchRequest(i, req));
    const entries: Array<Extract<LdapMessage, { kind: "searchResultEntry" }>> = [];
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const m = await this.#answer(id, "search", Math.max(1, deadline - performance.now()));
      if (m.kind === "searchResultEntry") entries.push(m);
      else if (m.kind === "searchResultDone") {
        if (m.result.code !== 0) throw new Error(`Search failed with LDAP result ${m.result.code}`);
        return entries;
      }
    }
  }
}
