/**
 * A full-folder sync with imapflow (npm), as a mail app does on first start: LIST, STATUS of
 * every mailbox, then in each mailbox ENVELOPE and BODYSTRUCTURE for every message, and a
 * download of every part whose disposition is `attachment`. Each download is compared byte for
 * byte with the transfer-decoded corpus part, located in the corpus file by part number.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import type { MessageStructureObject } from "imapflow";
import { decodeTransfer, parseMessage, resolvePart } from "../../protocol/imap/mime/mod.ts";
import { RawImap } from "../_support/imap_clients.ts";
import { startPostern } from "../_support/postern.ts";
import { imapflowClient } from "../_support/imapflow.ts";

const FIXTURES = fileURLToPath(new URL("../fixtures/mail/", import.meta.url));
const USER = { name: "alice", password: "pw" };

/** Mailboxes and the corpus files appended to each (by file name prefix; "" is all). */
const LAYOUT: readonly { mailbox: string; files: readonly string[] }[] = [
  { mailbox: "INBOX", files: [""] },
  { mailbox: "Archive", files: ["08-", "09-", "14-", "44-"] },
  { mailbox: "Projekte/Grüße", files: ["07-", "10-", "12-", "67-"] },
];

/** The transfer-decoded bytes of a part of a corpus message, found by IMAP part number. */
function expectedPart(raw: Uint8Array, part: string): Uint8Array {
  const found = resolvePart(parseMessage(raw), part.split(".").map(Number));
  assert.ok(found !== null, `part ${part} exists in the corpus file`);
  const p = found.part;
  const decoded = decodeTransfer(raw.subarray(p.bodyStart, p.bodyEnd), p.encoding);
  assert.ok(decoded.ok, `part ${part} has a known transfer encoding`);
  return decoded.bytes;
}

/** Part numbers of every node with an attachment disposition. */
function attachments(node: MessageStructureObject | undefined, out: string[] = []): string[] {
  if (node === undefined) return out;
  if (node.disposition?.toLowerCase() === "attachment" && node.part !== undefined) {
    out.push(node.part);
  }
  for (const child of node.childNodes ?? []) attachments(child, out);
  return out;
}

async function seed(port: number, caPem: string): Promise<Map<string, Uint8Array[]>> {
  const names = [...Deno.readDirSync(FIXTURES)].map((e) => e.name)
    .filter((n) => n.endsWith(".eml")).sort();
  const contents = new Map<string, Uint8Array[]>();
  const imap = await RawImap.tls(port, caPem);
  try {
    await imap.greeting();
    assert.equal((await imap.command(`LOGIN ${USER.name} ${USER.password}`)).status, "OK");
    await imap.command("ENABLE UTF8=ACCEPT");
    for (const { mailbox, files } of LAYOUT) {
      if (mailbox !== "INBOX" && mailbox !== "Archive") {
        assert.equal((await imap.command(`CREATE "${mailbox}"`)).status, "OK");
      }
      const list: Uint8Array[] = [];
      for (const name of names.filter((n) => files.some((f) => n.startsWith(f)))) {
        const raw = await Deno.readFile(FIXTURES + name);
        const r = await imap.command(`APPEND "${mailbox}"`, raw);
        assert.equal(r.status, "OK", `${mailbox} ${name}: ${r.tagged}`);
        list.push(raw);
      }
      contents.set(mailbox, list);
    }
  } finally {
    await imap.close();
  }
  return contents;
}

Deno.test({
  name: "imapflow syncs every mailbox and downloads every attachment byte for byte",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const postern = await startPostern({ users: [USER] });
    const client = imapflowClient(postern, USER);
    try {
      const corpus = await seed(postern.implicitPort, postern.caPem);
      await client.connect();
      const boxes = await client.list({ statusQuery: { messages: true, uidNext: true } });
      const paths = boxes.map((b) => b.path);
      for (const { mailbox } of LAYOUT) assert.ok(paths.includes(mailbox), paths.join(", "));
      assert.ok(boxes.some((b) => b.path === "Sent" && b.specialUse === "\\Sent"));
      let downloads = 0;
      let messages = 0;
      for (const box of boxes) {
        const expected = corpus.get(box.path) ?? [];
        const status = await client.status(box.path, { messages: true, uidNext: true });
        assert.ok(status !== false);
        assert.equal(status.messages, expected.length, `${box.path} STATUS MESSAGES`);
        assert.equal(box.status?.messages, expected.length, `${box.path} LIST-STATUS MESSAGES`);
        const opened = await client.mailboxOpen(box.path, { readOnly: true });
        assert.equal(opened.exists, expected.length);
        if (expected.length === 0) continue;
        const fetched: { uid: number; structure: MessageStructureObject | undefined }[] = [];
        for await (
          const msg of client.fetch("1:*", { uid: true, envelope: true, bodyStructure: true })
        ) {
          assert.ok(msg.envelope !== undefined, `${box.path} UID ${msg.uid} envelope`);
          fetched.push({ uid: msg.uid, structure: msg.bodyStructure });
        }
        assert.equal(fetched.length, expected.length);
        messages += fetched.length;
        for (const { uid, structure } of fetched) {
          const raw = expected[uid - 1]!;
          for (const part of attachments(structure)) {
            const { content } = await client.download(String(uid), part, { uid: true });
            assert.ok(content !== undefined, `${box.path} UID ${uid} part ${part} downloads`);
            const chunks: Uint8Array[] = [];
            for await (const chunk of content) chunks.push(chunk as Uint8Array);
            const got = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
            let off = 0;
            for (const c of chunks) {
              got.set(c, off);
              off += c.length;
            }
            assert.deepEqual(
              got,
              expectedPart(raw, part),
              `${box.path} UID ${uid} part ${part}`,
            );
            downloads++;
          }
        }
      }
      assert.equal(messages, [...corpus.values()].reduce((n, l) => n + l.length, 0));
      assert.ok(downloads >= 15, `downloaded ${downloads} attachments`);
      // The PDF of 08 decodes to a PDF, checked without the server's MIME code.
      await client.mailboxOpen("Archive", { readOnly: true });
      const pdf = await client.download("1", "2", { uid: true });
      assert.ok(pdf.content !== undefined);
      const first = await pdf.content[Symbol.asyncIterator]().next();
      assert.equal(
        new TextDecoder().decode((first.value as Uint8Array).subarray(0, 8)),
        "%PDF-1.4",
      );
    } finally {
      await client.logout().catch(() => {});
      await postern.stop();
    }
  },
});
