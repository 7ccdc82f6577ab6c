/**
 * The quick yield of protocol/event_loop.ts: one byte sent through a loopback TCP pair of the
 * thread's own and read back. The read completes only once the runtime has polled its sockets
 * (epoll), and each turn of the event loop also runs the timers that are due, so paced work
 * resumes after every ready socket and due timer has had its turn, some 0.1-0.4 ms later,
 * where a zero-delay timer idles the thread for about 2 ms. Quick async operations that do not
 * wait for the socket poll (a file `stat`, a resolved promise, a MessageChannel) let paced work
 * starve sockets and timers; this one cannot, since its own completion is a socket event.
 */
import { dropQuickYield, useQuickYield } from "../../protocol/event_loop.ts";

/** Connections accepted before giving up on finding our own (another local process got in). */
const MAX_ACCEPTS = 4;

export class Wakeup {
  readonly #writer: Deno.TcpConn;
  readonly #reader: Deno.TcpConn;
  readonly #byte = new Uint8Array(1);
  readonly #sink = new Uint8Array(64);
  #round: Promise<void> | null = null;
  #closed = false;

  private constructor(writer: Deno.TcpConn, reader: Deno.TcpConn) {
    this.#writer = writer;
    this.#reader = reader;
  }

  /** Opens a pair on 127.0.0.1; null when none could be made (the timer yield stays). */
  static async open(): Promise<Wakeup | null> {
    let listener: Deno.TcpListener | null = null;
    let writer: Deno.TcpConn | null = null;
    try {
      listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      writer = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
      writer.setNoDelay(true);
      // Any local process may connect to the port while it is open: take only our own.
      for (let i = 0; i < MAX_ACCEPTS; i++) {
        const conn = await listener.accept();
        if (conn.remoteAddr.port === writer.localAddr.port) return new Wakeup(writer, conn);
        conn.close();
      }
      writer.close();
      return null;
    } catch {
      writer?.close();
      return null;
    } finally {
      listener?.close();
    }
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
