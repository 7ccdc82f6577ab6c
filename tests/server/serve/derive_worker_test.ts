import assert from "node:assert/strict";
import { DeriveWorker } from "../../../server/serve/derive_worker.ts";
import {
  createMimeSupport,
  derivedData,
  type DeriveOffThread,
} from "../../../protocol/imap/mime_support.ts";
import { newStore, TestClient } from "../../protocol/imap/_harness.ts";

const enc = new TextEncoder();

/** A multipart message of about `bytes` octets: text, quoted-printable and base64 parts. */
function largeMime(bytes: number): Uint8Array {
  const line = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod.\r\n";
  const text = line.repeat(Math.ceil(bytes / 2 / line.length));
  const b64 = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAx\r\n"
    .repeat(Math.ceil(bytes / 2 / 74));
  return enc.encode(
    "From: =?UTF-8?Q?J=C3=BCrgen?= <j@example.org>\r\nTo: bob@example.org\r\n" +
      "Subject: Large\r\nDate: Tue, 7 Mar 2023 10:00:00 +0000\r\nMessage-ID: <large@x>\r\n" +
      "References: <root@x> <parent@x>\r\nMIME-Version: 1.0\r\n" +
      'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n' +
      "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + text +
      "--b1\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: " +
      "quoted-printable\r\n\r\n<p>caf=C3=A9</p>\r\n" +
      '--b1\r\nContent-Type: application/octet-stream; name="a.bin"\r\n' +
      "Content-Transfer-Encoding: base64\r\n\r\n" + b64 + "--b1--\r\n",
  );
}

Deno.test("DeriveWorker derives what the event loop would, and gives the bytes back", async () => {
  const worker = new DeriveWorker();
  try {
    const raw = largeMime(3 * 1024 * 1024);
    const copy = raw.slice();
    const expected = derivedData(createMimeSupport(), copy);
    assert.ok(expected.summary !== undefined && expected.searchText !== undefined);
    const done = await worker.derive(raw);
    assert.ok(done !== null);
    assert.equal(raw.byteLength, 0);
    assert.deepEqual(done.raw, copy);
    assert.deepEqual(done.derived, expected);
    // A view of part of a buffer stays with the caller.
    const part = copy.subarray(0, 1000);
    assert.equal(await worker.derive(part), null);
    assert.equal(part.byteLength, 1000);
  } finally {
    worker.close();
  }
  assert.equal(await worker.derive(new Uint8Array(10)), null);
});

Deno.test("APPEND of a large message derives it on the driver's thread and stores the same data", async () => {
  const worker = new DeriveWorker();
  try {
    const store = await newStore();
    const sizes: number[] = [];
    const deriveOffThread: DeriveOffThread = (raw) => {
      sizes.push(raw.byteLength);
      return worker.derive(raw);
    };
    const c = new TestClient(store, { deriveOffThread });
    await c.login();
    const big = largeMime(1536 * 1024);
    const small = largeMime(4096);
    for (const raw of [big, small]) {
      const out = await c.raw(
        concat(enc.encode(`A APPEND INBOX {${raw.length}+}\r\n`), raw, enc.encode("\r\n")),
      );
      assert.match(out, /A OK \[APPENDUID \d+ \d+\]/);
    }
    // Only the large one went to the thread.
    assert.deepEqual(sizes, [big.length]);
    const account = await store.getAccount("alice");
    const inbox = (await store.getMailbox(account!.id, "INBOX"))!;
    for (const [uid, raw] of [[1, big], [2, small]] as const) {
      const expected = derivedData(createMimeSupport(), raw);
      assert.deepEqual(await store.getRaw(inbox.id, uid), raw);
      assert.equal(await store.getSummary(inbox.id, uid), expected.summary);
      const texts = await store.getSearchTexts(inbox.id, [uid]);
      assert.equal(texts.get(uid), expected.searchText);
    }
    // A session with MIME support of its own derives with it, on the loop.
    sizes.length = 0;
    const own = new TestClient(store, { deriveOffThread, mime: createMimeSupport() });
    await own.login();
    const out = await own.raw(
      concat(enc.encode(`A APPEND INBOX {${big.length}+}\r\n`), big, enc.encode("\r\n")),
    );
    assert.match(out, /A OK/);
    assert.deepEqual(sizes, []);
  } finally {
    worker.close();
  }
});

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
