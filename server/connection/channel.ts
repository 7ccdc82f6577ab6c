/**
 * A byte channel: what an application protocol (IMAP, the echo diagnostic) reads and writes,
 * whether the bytes travel in the clear (before STARTTLS) or inside our TLS engine.
 */
import { type Metrics, NO_METRICS } from "../metrics/metrics.ts";

export interface ByteChannel {
  /** The next chunk of received bytes, or null at end of stream. */
  read(): Promise<Uint8Array | null>;
  /** Writes all of `data`; resolves once it has been handed to the socket. */
  write(data: Uint8Array): Promise<void>;
  /** Closes the channel (close_notify first for TLS). Safe to call twice. */
  close(): Promise<void>;
  /** Bytes received and sent on the wire so far, for the access log. */
  readonly bytesIn: number;
  readonly bytesOut: number;
}

/** Largest socket read; one full TLS record plus header fits. */
export const READ_CHUNK = 17 * 1024;

/** The first read buffer of a plaintext connection: a command line or two fit. */
const SMALL_PLAIN_READ = 1024;

/** Writes every byte of `data` to `conn`. */
export async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < data.length) {
    offset += await conn.write(data.subarray(offset));
  }
}

/** A channel in the clear over a TCP connection (the STARTTLS listener before TLS starts). */
export class PlainChannel implements ByteChannel {
  readonly #conn: Deno.Conn;
  /**
   * Small at first (most plaintext connections send a STARTTLS, or a flood that is closed
   * early), a full chunk once a read fills it.
   */
  #buffer = new Uint8Array(SMALL_PLAIN_READ);
  readonly #metrics: Metrics;
  #closed = false;
  #in = 0;
  #out = 0;
  /** Bytes already read off the socket by someone else (after a PROXY header), served first. */
  #initial: Uint8Array | null;

  constructor(conn: Deno.Conn, metrics: Metrics = NO_METRICS, initialBytes?: Uint8Array) {
    this.#conn = conn;
    this.#metrics = metrics;
    this.#initial = initialBytes?.length ? initialBytes : null;
  }

  get bytesIn(): number {
    return this.#in;
  }
  get bytesOut(): number {
    return this.#out;
  }

  async read(): Promise<Uint8Array | null> {
    if (this.#closed) return null;
    if (this.#initial !== null) {
      const initial = this.#initial;
      this.#initial = null;
      this.#in += initial.length;
      this.#metrics.bytesReceived(initial.length);
      return initial;
    }
    const buffer = this.#buffer;
    const n = await readOrNull(this.#conn, buffer);
    if (n === null) return null;
    this.#in += n;
    this.#metrics.bytesReceived(n);
    if (n === buffer.length && buffer.length < READ_CHUNK) {
      this.#buffer = new Uint8Array(READ_CHUNK);
    }
    return buffer.slice(0, n);
  }

  async write(data: Uint8Array): Promise<void> {
    if (this.#closed) throw new Deno.errors.BrokenPipe("Channel is closed");
    await writeAll(this.#conn, data);
    this.#out += data.length;
    this.#metrics.bytesSent(data.length);
  }

  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      closeQuietly(this.#conn);
    }
    return Promise.resolve();
  }
}

/** Reads into `buffer`; a reset, an interrupted read or a closed resource count as end of stream. */
export async function readOrNull(conn: Deno.Conn, buffer: Uint8Array): Promise<number | null> {
  try {
    return await conn.read(buffer);
  } catch (error) {
    if (isConnectionGone(error)) return null;
    throw error;
  }
}

/** Errors that only mean the peer or our own shutdown ended the connection. */
export function isConnectionGone(error: unknown): boolean {
  return error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.BadResource ||
    error instanceof Deno.errors.Interrupted ||
    error instanceof Deno.errors.ConnectionAborted ||
    error instanceof Deno.errors.NotConnected;
}

/**
 * Connections `closeQuietly` has closed. A connection is often closed twice on its way out
 * (the channel, then the listener), and a second `close()` builds a BadResource error, stack
 * and all: under a flood of short hostile connections that was a measurable share of the
 * thread.
 */
const closedHere = new WeakSet<Deno.Conn>();

export function closeQuietly(conn: Deno.Conn): void {
  if (closedHere.has(conn)) return;
  closedHere.add(conn);
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}
