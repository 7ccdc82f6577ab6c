/**
 * The admin socket: a Unix socket, mode 0600, that answers `who`, `kick`, `reload` and `stats`
 * (protocol.ts). Whoever can connect can end sessions and reload, so access is the file
 * system's: the socket is made 0600 right after bind, and by default it is opened only in a
 * private folder, where nobody else can reach it even before the chmod.
 */
import { closeQuietly, isConnectionGone, writeAll } from "../connection/channel.ts";
import {
  AdminProtocolError,
  type AdminRequest,
  type AdminResponse,
  encodeResponse,
  type KickResult,
  LineSplitter,
  parseRequest,
  type ReloadResult,
  type StatsResult,
  type WhoResult,
} from "./protocol.ts";

/** What the socket's commands do; the server assembly supplies it. */
/** The commands; a server of several Workers answers after asking each of them. */
export interface AdminHandler {
  who(): WhoResult | Promise<WhoResult>;
  kick(
    target: { readonly user: string } | { readonly peer: string },
  ): KickResult | Promise<KickResult>;
  reload(): Promise<ReloadResult>;
  stats(): StatsResult | Promise<StatsResult>;
}

export interface AdminServerOptions {
  readonly path: string;
  readonly handler: AdminHandler;
  readonly onError: (message: string, error: unknown) => void;
  /** Connections served at once; more are closed at once. Default 8. */
  readonly maxConnections?: number;
  /** A connection silent for this long is closed. Default 30 s. */
  readonly idleTimeoutMs?: number;
}

export interface AdminServer {
  readonly path: string;
  close(): Promise<void>;
}

const encoder = new TextEncoder();

/** True when `dir` is owned by this process's user and has no group or other permissions. */
export async function isPrivateDirectory(dir: string): Promise<boolean> {
  try {
    const info = await Deno.stat(dir);
    return info.isDirectory && info.mode !== null && (info.mode & 0o077) === 0 &&
      info.uid === Deno.uid();
  } catch {
    return false;
  }
}

/**
 * Binds the socket (replacing a stale one left by a crash) and starts serving. Throws when
 * another server answers on the path or the path is something other than a socket.
 */
export async function startAdminServer(options: AdminServerOptions): Promise<AdminServer> {
  const { path } = options;
  await removeStaleSocket(path);
  const listener = Deno.listen({ transport: "unix", path });
  try {
    await Deno.chmod(path, 0o600);
  } catch (error) {
    listener.close();
    throw error;
  }
  const connections = new Set<Deno.Conn>();
  const tasks = new Set<Promise<void>>();
  const max = options.maxConnections ?? 8;
  let closed = false;
  const loop = (async () => {
    while (!closed) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch (error) {
        if (closed || error instanceof Deno.errors.BadResource) return;
        options.onError("Admin socket accept failed", error);
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      if (connections.size >= max) {
        closeQuietly(conn);
        continue;
      }
      connections.add(conn);
      const task = serveConnection(conn, options).catch((error) => {
        if (!isConnectionGone(error)) options.onError("Admin connection failed", error);
      }).finally(() => {
        closeQuietly(conn);
        connections.delete(conn);
        tasks.delete(task);
      });
      tasks.add(task);
    }
  })();
  return {
    path,
    async close() {
      if (closed) return;
      closed = true;
      try {
        listener.close();
      } catch {
        // Already closed.
      }
      for (const conn of connections) closeQuietly(conn);
      await loop;
      await Promise.allSettled([...tasks]);
      await Deno.remove(path).catch(() => {});
    },
  };
}

async function removeStaleSocket(path: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw error;
  }
  if (!info.isSocket) throw new Error(`${path} exists and is not a socket`);
  try {
    const conn = await Deno.connect({ transport: "unix", path });
    closeQuietly(conn);
  } catch {
    await Deno.remove(path);
    return;
  }
  throw new Error(`Another server is listening on the admin socket ${path}`);
}

async function serveConnection(conn: Deno.Conn, options: AdminServerOptions): Promise<void> {
  const lines = new LineSplitter();
  const buffer = new Uint8Array(16 * 1024);
  const idleMs = options.idleTimeoutMs ?? 30_000;
  let timer = setTimeout(() => closeQuietly(conn), idleMs);
  try {
    while (true) {
      const n = await conn.read(buffer);
      if (n === null) return;
      clearTimeout(timer);
      try {
        lines.push(buffer.subarray(0, n));
      } catch (error) {
        if (!(error instanceof AdminProtocolError)) throw error;
        await send(conn, { v: 1, id: null, ok: false, error: error.message });
        return;
      }
      for (let line = lines.next(); line !== null; line = lines.next()) {
        if (line.trim() === "") continue;
        await send(conn, await answer(line, options.handler));
      }
      timer = setTimeout(() => closeQuietly(conn), idleMs);
    }
  } finally {
    clearTimeout(timer);
  }
}

async function answer(line: string, handler: AdminHandler): Promise<AdminResponse> {
  let request: AdminRequest;
  try {
    request = parseRequest(line);
  } catch (error) {
    if (!(error instanceof AdminProtocolError)) throw error;
    return { v: 1, id: error.id, ok: false, error: error.message };
  }
  const result = await run(request, handler);
  return { v: 1, id: request.id, ok: true, result };
}

function run(request: AdminRequest, handler: AdminHandler): unknown {
  switch (request.cmd) {
    case "who":
      return handler.who();
    case "kick":
      return handler.kick("user" in request ? { user: request.user } : { peer: request.peer });
    case "reload":
      return handler.reload();
    case "stats":
      return handler.stats();
    default: {
      const never: never = request;
      throw new Error(`Unhandled admin command ${JSON.stringify(never)}`);
    }
  }
}

function send(conn: Deno.Conn, response: AdminResponse): Promise<void> {
  return writeAll(conn, encoder.encode(encodeResponse(response)));
}
