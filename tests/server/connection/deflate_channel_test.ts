import assert from "node:assert/strict";
import { constants, deflateRawSync, inflateRawSync } from "node:zlib";
import type { ByteChannel } from "../../../server/connection/channel.ts";
import { CompressionError, DeflateChannel } from "../../../server/connection/deflate_channel.ts";

/** An in-memory channel: reads come from `incoming`, writes go to `sent`. */
class MemoryChannel implements ByteChannel {
  readonly incoming: Uint8Array[] = [];
  readonly sent: Uint8Array[] = [];
  bytesIn = 0;
  bytesOut = 0;
  read(): Promise<Uint8Array | null> {
    const next = this.incoming.shift() ?? null;
    if (next !== null) this.bytesIn += next.length;
    return Promise.resolve(next);
  }
  write(data: Uint8Array): Promise<void> {
    this.sent.push(data);
    this.bytesOut += data.length;
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

const enc = new TextEncoder();
const dec = new TextDecoder();

Deno.test("DeflateChannel flushes each write so the peer can inflate it at once", async () => {
  const inner = new MemoryChannel();
  const c = new DeflateChannel(inner);
  const lines = ["* OK [CAPABILITY IMAP4rev1] ready\r\n", "* 3 EXISTS\r\n", "A1 OK done\r\n"];
  let all = new Uint8Array(0);
  for (const line of lines) {
    await c.write(enc.encode(line));
    const last = inner.sent.at(-1)!;
    // Z_SYNC_FLUSH ends every write with the empty stored block 00 00 ff ff.
    assert.deepEqual([...last.subarray(-4)], [0, 0, 0xff, 0xff]);
    all = new Uint8Array([...all, ...last]);
    const text = dec.decode(inflateRawSync(all, { finishFlush: constants.Z_SYNC_FLUSH }));
    assert.equal(text, lines.slice(0, lines.indexOf(line) + 1).join(""));
  }
  assert.equal(c.plainOut, lines.join("").length);
});

Deno.test("DeflateChannel inflates a stream cut at any point", async () => {
  const text = "A1 SELECT INBOX\r\n".repeat(200) + "A2 LOGOUT\r\n";
  const packed = deflateRawSync(enc.encode(text), { finishFlush: constants.Z_SYNC_FLUSH });
  const inner = new MemoryChannel();
  for (let i = 0; i < packed.length; i += 7) inner.incoming.push(packed.subarray(i, i + 7));
  const c = new DeflateChannel(inner);
  let got = "";
  for (;;) {
    const chunk = await c.read();
    if (chunk === null) break;
    got += dec.decode(chunk);
  }
  assert.equal(got, text);
  assert.equal(c.plainIn, text.length);
});

Deno.test("DeflateChannel refuses a decompression bomb and a corrupt stream", async () => {
  const bomb = deflateRawSync(new Uint8Array(8 * 1024 * 1024), {
    finishFlush: constants.Z_SYNC_FLUSH,
  });
  assert.ok(bomb.length < 16 * 1024);
  const inner = new MemoryChannel();
  inner.incoming.push(bomb);
  await assert.rejects(new DeflateChannel(inner, 1024 * 1024).read(), CompressionError);
  const junk = new MemoryChannel();
  junk.incoming.push(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x00, 0x13]));
  await assert.rejects(new DeflateChannel(junk).read(), CompressionError);
});
