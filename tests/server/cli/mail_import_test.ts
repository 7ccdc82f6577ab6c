import assert from "node:assert/strict";
import { join } from "node:path";
import {
  ImportFormatError,
  type ImportItem,
  listMaildir,
  maildirFlags,
  mboxFlags,
  parseFromLineDate,
  readMaildir,
  readMbox,
  toCrlf,
} from "../../../server/cli/mail_import.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

async function* chunked(text: string, size: number): AsyncGenerator<Uint8Array> {
  const bytes = enc.encode(text);
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

async function collect(items: AsyncIterable<ImportItem>): Promise<ImportItem[]> {
  const out: ImportItem[] = [];
  for await (const item of items) out.push(item);
  return out;
}

const MBOX = [
  "From alice@example.org Fri Jul  8 12:08:34 2011",
  "Status: RO",
  "X-Status: AF",
  "Subject: one",
  "",
  "Hello",
  ">From the start of a line",
  ">>From twice quoted",
  "",
  "From bob@example.org Sat Jul  9 10:00:00 2011",
  "Subject: two",
  "",
  "Body two",
  "",
].join("\n");

Deno.test("readMbox() splits messages, unquotes >From and reads flags and dates", async () => {
  for (const size of [1, 3, 7, 64, 4096]) {
    const items = await collect(readMbox(chunked(MBOX, size), 1 << 20));
    assert.equal(items.length, 2, `chunk size ${size}`);
    const [first, second] = items.map((item) => {
      assert.equal(item.kind, "message");
      return item.kind === "message" ? item.message : assert.fail();
    });
    assert.equal(
      dec.decode(first!.raw),
      "Status: RO\r\nX-Status: AF\r\nSubject: one\r\n\r\nHello\r\nFrom the start of a line\r\n" +
        ">From twice quoted\r\n",
    );
    assert.deepEqual(first!.flags, ["\\Seen", "\\Answered", "\\Flagged"]);
    assert.equal(first!.internalDate, Date.UTC(2011, 6, 8, 12, 8, 34));
    assert.equal(dec.decode(second!.raw), "Subject: two\r\n\r\nBody two\r\n");
    assert.deepEqual(second!.flags, []);
  }
});

Deno.test("readMbox() skips messages larger than the cap and reports their size", async () => {
  const big = "From x Fri Jul  8 12:08:34 2011\nSubject: big\n\n" + "a".repeat(5000) + "\n" +
    "From y Fri Jul  8 12:08:35 2011\nSubject: small\n\nok\n";
  const items = await collect(readMbox(chunked(big, 1000), 1024));
  assert.equal(items.length, 2);
  assert.equal(items[0]!.kind, "oversized");
  assert.equal(items[1]!.kind, "message");
});

Deno.test("readMbox() refuses a file that does not start with a From line", async () => {
  await assert.rejects(
    collect(readMbox(chunked("Subject: hi\n\nbody\n", 5), 1024)),
    ImportFormatError,
  );
});

Deno.test("readMbox() keeps CRLF input and a message without a final newline", async () => {
  const items = await collect(
    readMbox(chunked("From x Fri Jul  8 12:08:34 2011\r\nSubject: a\r\n\r\nend", 4), 1024),
  );
  assert.equal(items.length, 1);
  const item = items[0]!;
  assert.ok(item.kind === "message");
  assert.equal(dec.decode(item.message.raw), "Subject: a\r\n\r\nend\r\n");
});

Deno.test("readMaildir() reads cur/ and new/ oldest first with flags from the info suffix", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "postern-maildir-" });
  try {
    for (const sub of ["cur", "new", "tmp"]) Deno.mkdirSync(join(dir, sub));
    Deno.writeTextFileSync(join(dir, "cur", "1600000005.M1.host:2,FRS"), "Subject: b\n\nB\n");
    Deno.writeTextFileSync(join(dir, "new", "1600000001.M2.host"), "Subject: a\n\nA\n");
    Deno.writeTextFileSync(join(dir, "tmp", "1600000009.M3.host"), "Subject: partial\n");
    Deno.writeTextFileSync(join(dir, "cur", ".hidden"), "x");
    assert.equal((await listMaildir(dir)).length, 2);
    const progress: number[] = [];
    const items = await collect(readMaildir(dir, 1024, (done) => progress.push(done)));
    const messages = items.map((i) => (i.kind === "message" ? i.message : assert.fail()));
    assert.deepEqual(messages.map((m) => dec.decode(m.raw)), [
      "Subject: a\r\n\r\nA\r\n",
      "Subject: b\r\n\r\nB\r\n",
    ]);
    assert.deepEqual(messages.map((m) => m.flags), [[], ["\\Flagged", "\\Answered", "\\Seen"]]);
    assert.deepEqual(messages.map((m) => m.internalDate), [1600000001000, 1600000005000]);
    assert.deepEqual(progress, [1, 2]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("listMaildir() refuses a folder without cur/ or new/", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "postern-maildir-" });
  try {
    await assert.rejects(listMaildir(dir), ImportFormatError);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("maildirFlags() and mboxFlags() map the letters to IMAP flags", () => {
  assert.deepEqual(maildirFlags("123.abc:2,DFPRST"), [
    "\\Draft",
    "\\Flagged",
    "$Forwarded",
    "\\Answered",
    "\\Seen",
    "\\Deleted",
  ]);
  assert.deepEqual(maildirFlags("123.abc"), []);
  assert.deepEqual(maildirFlags("123.abc!2,S"), ["\\Seen"]);
  assert.deepEqual(mboxFlags("RO", "DT"), ["\\Seen", "\\Deleted", "\\Draft"]);
  assert.deepEqual(mboxFlags("O", ""), []);
});

Deno.test("toCrlf() converts lone LF only", () => {
  assert.equal(dec.decode(toCrlf(enc.encode("a\nb\r\nc\n"))), "a\r\nb\r\nc\r\n");
  const same = enc.encode("a\r\n");
  assert.equal(toCrlf(same), same);
});

Deno.test("parseFromLineDate() reads asctime dates and ignores junk", () => {
  assert.equal(
    parseFromLineDate("From MAILER-DAEMON Fri Jul  8 12:08:34 2011"),
    Date.UTC(2011, 6, 8, 12, 8, 34),
  );
  assert.equal(parseFromLineDate("From someone"), undefined);
});

Deno.test("importMail() stores the summary and search text that SEARCH reads", async () => {
  const { importMail } = await import("../../../server/cli/import_mail.ts");
  const { MemoryMailStore } = await import("../../../mailstore/memory/mod.ts");
  const store = new MemoryMailStore();
  const account = await store.createAccount("u", null);
  const dir = await Deno.makeTempDir();
  try {
    const mbox = `${dir}/in.mbox`;
    await Deno.writeTextFile(
      mbox,
      "From a@example.org Mon Jan  1 00:00:00 2024\nSubject: Needle here\n\nbody text\n",
    );
    await importMail(store, { user: "u", source: mbox, maxMessageSize: 1 << 20, progress: false });
    const inbox = (await store.getMailbox(account.id, "INBOX"))!;
    const [uid] = (await store.listMessages(inbox.id)).map((m) => m.uid);
    assert.ok(await store.getSummary(inbox.id, uid!));
    const texts = await store.getSearchTexts(inbox.id, [uid!]);
    assert.match(texts.get(uid!) ?? "", /needle here/i);
  } finally {
    await Deno.remove(dir, { recursive: true });
    await store.close();
  }
});
