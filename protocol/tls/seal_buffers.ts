/**
 * Buffers for outgoing records, reused once the socket has taken their bytes.
 *
 * A 50 MB body leaves as about 200 buffers of 16 records each. Fresh memory of that size is
 * zeroed and faulted in page by page on every write: on this machine first touching 50 MB takes
 * 22-39 ms against 5-6 ms for memory touched before. Small records share buffers of
 * `RECORD_BUFFER` bytes: in Deno each fresh Uint8Array costs a calloc, V8's bookkeeping and a
 * later sweep, several per handshake when each record had its own. The buffers only ever hold
 * records that went on the wire (ciphertext and headers, and the few records sent in the clear:
 * ServerHello, change_cipher_spec, alerts before keys), so one connection's buffer can serve
 * the next.
 */

/** Buffers kept for reuse: enough for the few large writes in flight at once. */
const KEEP = 8;

/**
 * The size of the buffers that small records are sealed into one after another (a handshake
 * flight, a command's response): most writes fit one, and one from the pool costs no allocation.
 */
export const RECORD_BUFFER = 4096;

/** Record buffers kept for reuse (256 KiB at most). */
const KEEP_RECORD_BUFFERS = 64;

const free: Uint8Array[] = [];
const records: Uint8Array[] = [];
/** Every buffer handed out, by its memory: a view of one (what a write was given) finds it. */
const issued = new WeakMap<ArrayBufferLike, Uint8Array>();

/** A buffer of exactly `size` bytes, reused when one is free; its old bytes are not cleared. */
export function sealBuffer(size: number): Uint8Array {
  if (size === RECORD_BUFFER) return recordBuffer();
  for (let i = free.length - 1; i >= 0; i--) {
    if (free[i]!.length === size) {
      const reused = free[i]!;
      free[i] = free[free.length - 1]!;
      free.pop();
      return reused;
    }
  }
  return issue(new Uint8Array(size));
}

/** A buffer of `RECORD_BUFFER` bytes, reused when one is free; its old bytes are not cleared. */
export function recordBuffer(): Uint8Array {
  return records.pop() ?? issue(new Uint8Array(RECORD_BUFFER));
}

function issue(buffer: Uint8Array): Uint8Array {
  issued.set(buffer.buffer, buffer);
  return buffer;
}

/**
 * Takes back a buffer, or a view of one, once nothing reads it any more (its write has
 * completed). Anything that `sealBuffer` or `recordBuffer` did not hand out, or a buffer
 * already taken back, is ignored.
 */
export function recycleSealBuffer(view: Uint8Array): void {
  const buffer = issued.get(view.buffer);
  if (buffer === undefined) return;
  const pool = buffer.length === RECORD_BUFFER ? records : free;
  const keep = pool === records ? KEEP_RECORD_BUFFERS : KEEP;
  if (pool.length >= keep || pool.includes(buffer)) return;
  pool.push(buffer);
}
