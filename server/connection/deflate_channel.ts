/**
 * COMPRESS=DEFLATE (RFC 4978) as a channel layer between IMAP and TLS (or the clear): every
 * write is deflated and flushed with Z_SYNC_FLUSH, so that each response group (an IDLE
 * update, a tagged OK) reaches the client at once; every read is inflated. Raw DEFLATE
 * (RFC 1951) without zlib header, as the RFC requires. Inflated output is capped per read, so
 * that a small compressed input (a decompression bomb) cannot make the server allocate much.
 */
import {
  constants,
  createDeflateRaw,
  createInflateRaw,
  type DeflateRaw,
  type InflateRaw,
} from "node:zlib";
import type { ByteChannel } from "./channel.ts";

/** Most inflated octets one read may produce: 256 times a full TLS record, far above what text
 * compresses to, far below what a bomb would. */
export const MAX_INFLATE_PER_READ = 4 * 1024 * 1024;

/** Raised when the peer's compressed stream is corrupt or inflates beyond the cap. */
export class CompressionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CompressionError";
  }
}

/** Feeds `input` to a zlib stream and collects its output up to a Z_SYNC_FLUSH. */
function pump(
  stream: DeflateRaw | InflateRaw,
  input: Uint8Array,
  limit: number,
): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const chunks: Uint8Array[] = [];
    let size = 0;
    const onData = (chunk: Uint8Array) => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        stream.destroy();
        reject(new CompressionError("Compressed input inflates beyond the limit"));
        return;
      }
      chunks.push(chunk);
    };
    const onError = (e: Error) => {
      cleanup();
      reject(new CompressionError(`Cannot decode compressed stream: ${e.message}`));
    };
    const cleanup = () => {
      stream.off("data", onData);
      stream.off("error", onError);
    };
    if (stream.destroyed) {
      reject(new CompressionError("Compressed stream is broken"));
      return;
    }
    stream.on("data", onData);
    stream.on("error", onError);
    stream.write(input);
    if (stream.destroyed) return;
    stream.flush(constants.Z_SYNC_FLUSH, () => {
      cleanup();
      if (size > limit) return;
      if (stream.errored !== null || stream.destroyed) {
        reject(new CompressionError("Cannot decode compressed stream"));
        return;
      }
      const out = new Uint8Array(size);
      let offset = 0;
      for (const c of chunks) {
        out.set(c, offset);
        offset += c.length;
      }
      resolve(out);
    });
  });
}

/** A channel that deflates what it writes and inflates what it reads over `inner`. */
export class DeflateChannel implements ByteChannel {
  readonly #inner: ByteChannel;
  readonly #deflate = createDeflateRaw({ level: 6 });
  readonly #inflate = createInflateRaw();
  readonly #maxInflate: number;
  #plainIn = 0;
  #plainOut = 0;
  #packed = 0;

  constructor(inner: ByteChannel, maxInflatePerRead = MAX_INFLATE_PER_READ) {
    this.#inner = inner;
    this.#maxInflate = maxInflatePerRead;
    // Errors are reported by the read or write that caused them; a late one must not go
    // uncaught (it would end the process).
    this.#deflate.on("error", () => {});
    this.#inflate.on("error", () => {});
  }

  /** Wire bytes, as the access log counts them. */
  get bytesIn(): number {
    return this.#inner.bytesIn;
  }
  get bytesOut(): number {
    return this.#inner.bytesOut;
  }

  /** Octets before compression (sent) and after inflation (received). */
  get plainIn(): number {
    return this.#plainIn;
  }
  get plainOut(): number {
    return this.#plainOut;
  }

  /** Octets compression kept off the wire so far, both directions together. */
  get saved(): number {
    return this.#plainIn + this.#plainOut - this.#packed;
  }

  async read(): Promise<Uint8Array | null> {
    for (;;) {
      const data = await this.#inner.read();
      if (data === null) return null;
      this.#packed += data.length;
      const plain = await pump(this.#inflate, data, this.#maxInflate);
      this.#plainIn += plain.length;
      // A read that completes no inflated byte (a partial block) waits for more input.
      if (plain.length > 0) return plain;
    }
  }

  async write(data: Uint8Array): Promise<void> {
    const packed = await pump(this.#deflate, data, Number.MAX_SAFE_INTEGER);
    this.#plainOut += data.length;
    this.#packed += packed.length;
    await this.#inner.write(packed);
  }

  async close(): Promise<void> {
    this.#deflate.destroy();
    this.#inflate.destroy();
    await this.#inner.close();
  }
}
