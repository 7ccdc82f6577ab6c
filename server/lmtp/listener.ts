/**
 * The LMTP listener: Unix sockets (mode and owner set right after creation) and loopback TCP,
 * each connection driven by an `LmtpSession`. LMTP has no authentication (RFC 2033,
 * Section 6), so access control is the socket's file permissions or loopback; the
 * configuration refuses anything else.
 */
import { dirname } from "node:path";
import type { LmtpConfig } from "../config/mod.ts";
import { defaultLmtpLimits, type LmtpReply, LmtpSession } from "../../protocol/lmtp/mod.ts";
import { isConnectionGone, READ_CHUNK, readOrNull, writeAll } from "../connection/channel.ts";
import type { LmtpDelivery } from "./delivery.ts";
import { getLogger } from "../log.ts";

const log = getLogger(["lmtp"]);
const accessLog = getLogger(["access"]);
const encoder = new TextEncoder();

export interface LmtpServerOptions {
  /** The addresses to bind and the socket mode and owner, read once. */
  readonly config: LmtpConfig;
  /**
   * The current settings (after a reload) for each new connection's limits; default
   * `config`.
   */
  readonly settings?: () => LmtpConfig;
  readonly delivery: LmtpDelivery;
  /** Our name in the greeting. */
  readonly hostname: string;
}

/** A bound LMTP listener address, as logs and tests see it. */
export type LmtpBoundAddress =
  | { readonly transport: "unix"; readonly path: string }
  | { readonly transport: "tcp"; readonly hostname: string; readonly port: number };

export class LmtpServer {
  readonly #options: LmtpServerOptions;
  readonly #listeners: Deno.Listener[] = [];
  readonly #loops: Promise<void>[] = [];
  readonly #connections = new Map<
    number,
    { conn: Deno.Conn; session: LmtpSession<unknown>; done: Promise<void> }
  >();
  readonly #socketPaths: string[] = [];
  #stopping = false;
  #nextId = 1;
  readonly addresses: LmtpBoundAddress[] = [];

  private constructor(options: LmtpServerOptions) {
    this.#options = options;
  }

  /** Binds every configured address; binds nothing if one fails. */
  static async listen(options: LmtpServerOptions): Promise<LmtpServer> {
    const server = new LmtpServer(options);
    try {
      for (const address of options.config.listen) await server.#bind(address);
    } catch (error) {
      await server.close(0);
      throw error;
    }
    for (const [i, listener] of server.#listeners.entries()) {
      server.#loops.push(server.#acceptLoop(listener, describe(server.addresses[i]!)));
    }
    return server;
  }

  get connectionCount(): number {
    return this.#connections.size;
  }

  async #bind(address: LmtpConfig["listen"][number]): Promise<void> {
    if (address.transport === "tcp") {
      const listener = Deno.listen({ hostname: address.hostname, port: address.port });
      this.#listeners.push(listener);
      const addr = listener.addr as Deno.NetAddr;
      this.addresses.push({ transport: "tcp", hostname: addr.hostname, port: addr.port });
      return;
    }
    const { path } = address;
    await Deno.mkdir(dirname(path), { recursive: true, mode: 0o755 });
    await removeStaleSocket(path);
    const { socketMode, socketOwner } = this.#options.config;
    // The socket starts with the process umask's mode (no write for others under the usual
    // 022, so nobody else can connect) and gets the configured mode at once.
    let listener: Deno.Listener;
    try {
      listener = Deno.listen({ transport: "unix", path });
    } catch (error) {
      if (error instanceof Deno.errors.NotCapable) {
        // Deno gates Unix sockets behind --allow-net=unix:<absolute path> besides file access.
        throw new Error(
          `Cannot listen on unix:${path}: run with --allow-net=unix:${path} and read and ` +
            "write access to it (deno task postern permissions prints the flags)",
        );
      }
      throw error;
    }
    this.#listeners.push(listener);
    this.#socketPaths.push(path);
    this.addresses.push({ transport: "unix", path });
    await Deno.chmod(path, socketMode);
    if (socketOwner !== null) {
      const [uid, gid] = await resolveOwner(socketOwner);
      await Deno.chown(path, uid, gid);
    }
  }

  async #acceptLoop(listener: Deno.Listener, where: string): Promise<void> {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch (error) {
        if (this.#stopping || error instanceof Deno.errors.BadResource) return;
        log.error("LMTP accept failed on {where}: {error}", { where, error: String(error) });
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      if (this.#stopping) {
        closeQuietly(conn);
        return;
      }
      const settings = this.#options.settings?.() ?? this.#options.config;
      if (this.#connections.size >= settings.maxConnections) {
        writeAll(conn, encoder.encode("421 4.3.2 Too many connections, try again later\r\n"))
          .catch(() => {})
          .finally(() => closeQuietly(conn));
        continue;
      }
      const id = this.#nextId++;
      const peer = conn.remoteAddr.transport === "unix"
        ? "local"
        : `[${(conn.remoteAddr as Deno.NetAddr).hostname}]`;
      const session = new LmtpSession({
        backend: this.#options.delivery.backend(peer),
        hostname: this.#options.hostname,
        limits: {
          maxMessageSize: settings.maxMessageSize ?? defaultLmtpLimits.maxMessageSize,
          maxRecipients: settings.maxRecipients,
          maxLineLength: settings.maxLineLength,
          transactionTimeoutMs: settings.transactionTimeoutMs,
        },
      });
      const done = this.#serve(id, conn, session, peer, where, settings.idleTimeoutMs).finally(
        () => {
          this.#connections.delete(id);
        },
      );
      this.#connections.set(id, { conn, session: session as LmtpSession<unknown>, done });
    }
  }

  async #serve(
    id: number,
    conn: Deno.Conn,
    session: LmtpSession<unknown>,
    peer: string,
    where: string,
    idleTimeoutMs: number,
  ): Promise<void> {
    const started = performance.now();
    let bytesIn = 0;
    let bytesOut = 0;
    let closing = false;
    let reason = "closed by client";
    let writing: Promise<void> = Promise.resolve();
    let lastActivity = Date.now();
    const write = (data: Uint8Array) => {
      bytesOut += data.length;
      writing = writing.then(() => writeAll(conn, data)).catch((error) => {
        closing = true;
        if (!isConnectionGone(error)) throw error;
      });
    };
    const close = (last: LmtpReply) => {
      closing = true;
      reason = last.code === 221 ? "quit" : `${last.code} ${last.status} ${last.lines[0]}`;
      // The last reply goes out first; then the pending read ends.
      writing.finally(() => closeQuietly(conn)).catch(() => {});
    };
    // Named first, not assigned as literals: V8 allocates a function literal assigned straight
    // to a property in the old generation, where it would keep this scope (the connection, its
    // buffer) alive past the connection until the next full collection.
    session.onOutput = write;
    session.onClose = close;
    const timer = setInterval(() => {
      if (session.checkTimeout()) return;
      if (!session.inTransaction && Date.now() - lastActivity > idleTimeoutMs) {
        session.idleTimeout();
      }
    }, Math.min(1000, idleTimeoutMs));
    const buffer = new Uint8Array(READ_CHUNK * 4);
    try {
      write(session.greeting());
      while (!closing) {
        const n = await readOrNull(conn, buffer);
        if (n === null) break;
        bytesIn += n;
        lastActivity = Date.now();
        // The session keeps no reference past receive() but copies what it keeps, so the
        // buffer can be reused.
        await session.receive(buffer.subarray(0, n));
      }
      await writing;
    } catch (error) {
      reason = "internal error";
      log.error("LMTP connection {id} failed: {error}", { id, error: String(error) });
    } finally {
      clearInterval(timer);
      closeQuietly(conn);
      accessLog.info("lmtp {peer} on {where} in={bytesIn} out={bytesOut} {durationMs}ms {close}", {
        conn: id,
        peer,
        where,
        bytesIn,
        bytesOut,
        durationMs: Math.round(performance.now() - started),
        close: reason,
      });
    }
  }

  /**
   * Stops accepting, lets every session finish the delivery it is in (answering it), then
   * sends 421 and closes; after `graceMs` whatever is left is cut.
   */
  async close(graceMs: number): Promise<void> {
    this.#stopping = true;
    for (const listener of this.#listeners) {
      try {
        listener.close();
      } catch {
        // Already closed.
      }
    }
    await Promise.allSettled(this.#loops);
    for (const { session } of this.#connections.values()) session.shutdown();
    const pending = [...this.#connections.values()].map((c) => c.done);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const grace = new Promise<void>((resolve) => timer = setTimeout(resolve, graceMs));
    await Promise.race([Promise.allSettled(pending), grace]);
    clearTimeout(timer);
    for (const { conn } of this.#connections.values()) closeQuietly(conn);
    await Promise.allSettled([...this.#connections.values()].map((c) => c.done));
    for (const path of this.#socketPaths) await Deno.remove(path).catch(() => {});
  }
}

function describe(address: LmtpBoundAddress): string {
  return address.transport === "unix"
    ? `unix:${address.path}`
    : `${address.hostname}:${address.port}`;
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}

/** Removes a socket file left by a previous run; refuses to remove anything else. */
async function removeStaleSocket(path: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw error;
  }
  if (info.isSocket !== true) {
    throw new Error(`${path} exists and is not a socket; not replacing it`);
  }
  // A live server on the socket would answer a connection; do not steal its address.
  try {
    const probe = await Deno.connect({ transport: "unix", path });
    probe.close();
    throw new Error(`Another process is listening on ${path}`);
  } catch (error) {
    if (error instanceof Error && error.message.startsWith("Another process")) throw error;
  }
  await Deno.remove(path);
}

/** Resolves `user[:group]` (names or numbers) to ids through /etc/passwd and /etc/group. */
async function resolveOwner(owner: string): Promise<[number, number | null]> {
  const [user, group] = owner.split(":") as [string, string | undefined];
  const lookup = async (file: string, name: string): Promise<[number, number]> => {
    if (/^[0-9]+$/.test(name)) return [Number(name), -1];
    const text = await Deno.readTextFile(file);
    for (const line of text.split("\n")) {
      const fields = line.split(":");
      if (fields[0] === name) return [Number(fields[2]), Number(fields[3])];
    }
    throw new Error(`lmtp.socket_owner: no ${file === "/etc/passwd" ? "user" : "group"} "${name}"`);
  };
  const [uid, primaryGid] = await lookup("/etc/passwd", user);
  if (group === undefined) return [uid, primaryGid === -1 ? null : primaryGid];
  const [gid] = await lookup("/etc/group", group);
  return [uid, gid];
}
