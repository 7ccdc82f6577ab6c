/**
 * The quick yield of protocol/event_loop.ts: one byte sent through a socket pair of the thread's
 * own (a Unix socket in the data folder, else loopback TCP) and read back. Each read is shorter
 * than its buffer, after which the runtime (tokio) waits for its next socket poll (epoll) before
 * it reads that socket again; so the byte's read completes only once the sockets have been
 * polled, and each turn of the event loop also runs the timers that are due. Paced work thus
 * resumes after every ready socket and due timer has had its turn, some 0.1-0.4 ms later, where
 * a zero-delay timer idles the thread for about 2 ms. Quick async operations that complete
 * without that poll (a file `stat`, a MessageChannel) let paced work starve sockets and timers.
 */
import { join } from "node:path";
import { dropQuickYield, useQuickYield } from "../../protocol/event_loop.ts";

/**
 * The Unix socket a server thread opens its pair on, briefly: `thread` is its Worker's id, 0
 * without Workers.
 */
export function wakeupPath(dataDir: string, thread: number): string {
  return join(dataDir, `wakeup-${thread}.sock`);
}

/** Connections accepted before giving up on finding our own (another local process got in). */
const MAX_ACCEPTS = 4;
/** Random bytes our own connection sends first, so that the accepting side knows it. */
const TOKEN_BYTES = 16;
const TOKEN_WAIT_MS = 1000;

export class Wakeup {
  readonly #writer: Deno.Conn;
  readonly #reader: Deno.Conn;
  readonly #byte = new Uint8Array(1);
  readonly #sink = new Uint8Array(64);
  #round: Promise<void> | null = null;
  #closed = false;

  /** Use `Wakeup.open()`. */
  constructor(writer: Deno.Conn, reader: Deno.Conn) {
    this.#writer = writer;
    this.#reader = reader;
  }

  /**
   * Opens a pair: on the Unix socket `path` when given (the narrow permissions of `postern
   * start` grant it, see server/cli/permissions.ts), else on 127.0.0.1; null when neither could
   * be made (the timer yield stays). The socket's name is gone once the pair is connected.
   */
  static async open(path?: string): Promise<Wakeup | null> {
    if (path !== undefined) {
      const pair = await openPair(() => Deno.listen({ transport: "unix", path }), path)
        .catch(() => null);
      if (pair !== null) return pair;
    }
    return await openPair(() => Deno.listen({ hostname: "127.0.0.1", port: 0 }), null)
      .catch(() => null);
  }

  /**
   * Settles after the next socket poll. Yields that overlap share one round trip; a broken
   * pair settles at once and is closed (callers fall back on their next yield).
   */
  yield(): Promise<void> {
    this.#round ??= this.#roundTrip();
    return this.#round;
  }

  async #roundTrip(): Promise<void> {
    try {
      await this.#writer.write(this.#byte);
      if (await this.#reader.read(this.#sink) === null) this.close();
    } catch {
      this.close();
    } finally {
      this.#round = null;
    }
  }

  // pretenured: one per wake-up pipe, which lives as long as its event loop.
  readonly #installed = (): Promise<void> =>
    this.#closed ? new Promise((resolve) => setTimeout(resolve, 0)) : this.yield();

  /** Installs this pair's yield for the thread, until `close()`. */
  install(): void {
    useQuickYield(this.#installed);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    dropQuickYield(this.#installed);
    try {
      this.#writer.close();
    } catch {
      // Closed already.
    }
    try {
      this.#reader.close();
    } catch {
      // Closed already.
    }
  }
}

/**
 * Listens, connects to the listener and accepts that very connection (a random token tells it
 * from any other process's that got in first), then closes the listener (and removes `path`).
 */
async function openPair(
  listen: () => Deno.Listener,
  path: string | null,
): Promise<Wakeup | null> {
  if (path !== null) await Deno.remove(path).catch(() => {});
  const listener = listen();
  let writer: Deno.Conn | null = null;
  try {
    const addr = listener.addr;
    writer = addr.transport === "unix"
      ? await Deno.connect({ transport: "unix", path: addr.path })
      : await Deno.connect({ hostname: "127.0.0.1", port: (addr as Deno.NetAddr).port });
    if ("setNoDelay" in writer) (writer as Deno.TcpConn).setNoDelay(true);
    const token = crypto.getRandomValues(new Uint8Array(TOKEN_BYTES));
    await writer.write(token);
    for (let i = 0; i < MAX_ACCEPTS; i++) {
      const conn = await listener.accept();
      if (await readsToken(conn, token)) return new Wakeup(writer, conn);
      try {
        conn.close();
      } catch {
        // Closed by the timeout.
      }
    }
    writer.close();
    return null;
  } catch (e) {
    writer?.close();
    throw e;
  } finally {
    listener.close();
    if (path !== null) await Deno.remove(path).catch(() => {});
  }
}

/**
 * True when what `conn` sends first, within `TOKEN_WAIT_MS`, is `token`. Reads go into a larger
 * buffer: a read shorter than its buffer makes the runtime wait for the next socket poll before
 * reading again, which the first quick yield relies on.
 */
async function readsToken(conn: Deno.Conn, token: Uint8Array): Promise<boolean> {
  const got = new Uint8Array(token.length * 4);
  let filled = 0;
  // A silent stranger must not hold up the start: its connection is closed, the read fails.
  const timer = setTimeout(() => conn.close(), TOKEN_WAIT_MS);
  try {
    while (filled < token.length) {
      const n = await conn.read(got.subarray(filled));
      if (n === null) return false;
      filled += n;
    }
    return filled === token.length && token.every((b, i) => b === got[i]);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}
