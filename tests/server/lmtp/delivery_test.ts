import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { openSqliteMailStore } from "../../../mailstore/sqlite/mod.ts";
import { derivedData, mimeSupport } from "../../../protocol/imap/mime_support.ts";
import { DeriveWorker } from "../../../server/serve/derive_worker.ts";
import { MemoryMailStore } from "../../../mailstore/memory/mod.ts";
import { parseConfig } from "../../../server/config/mod.ts";
import type { RecipientLookup } from "../../../server/directory/mod.ts";
import {
  deliveredTo,
  LmtpDelivery,
  type LmtpRecipient,
  rfc5322Date,
} from "../../../server/lmtp/mod.ts";
import type { Envelope, LmtpBackend, Mailbox } from "../../../protocol/lmtp/mod.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const NOW = Date.UTC(2026, 11, 3, 9, 30, 5);

function settings(yaml: string) {
  const config = parseConfig(`lmtp:\n  listen: [unix:/tmp/x.sock]\n${yaml}`, "/etc/p/config.yaml", {
    checkFiles: false,
  });
  return { lmtp: config.lmtp!, quota: config.quota };
}

async function setup(
  yaml = "",
  directory: ((address: string) => RecipientLookup) | null = null,
) {
  const store = new MemoryMailStore();
  const alice = await store.createAccount("alice", null);
  await store.addAddress(alice.id, "alice@example.org");
  await store.createMailbox(alice.id, "lists");
  const lookups: string[] = [];
  const delivery = new LmtpDelivery({
    store,
    directory: () =>
      directory === null ? null : {
        findRecipient: (address: string, filter: string) => {
          lookups.push(`${address} ${filter}`);
          return Promise.resolve(directory(address));
        },
      },
    settings: () => settings(yaml),
    hostname: "mx.example.org",
    now: () => NOW,
  });
  return { store, alice, delivery, backend: delivery.backend("[127.0.0.1]"), lookups };
}

function mailbox(address: string): Mailbox {
  const at = address.lastIndexOf("@");
  return { localPart: address.slice(0, at), domain: address.slice(at + 1) };
}

const envelope: Envelope = {
  lhlo: "mta.example.org",
  sender: mailbox("sender@example.net"),
  body: "8BITMIME",
  smtputf8: false,
  declaredSize: null,
};

async function resolve(backend: LmtpBackend<LmtpRecipient>, address: string) {
  const verdict = await backend.recipient(mailbox(address), envelope);
  if (!verdict.accept) return `${verdict.reply.code} ${verdict.reply.status}`;
  return verdict.recipient;
}

async function contents(store: MemoryMailStore, accountId: number, box: string) {
  const m = (await store.getMailbox(accountId, box))!;
  const out: string[] = [];
  for (const meta of await store.listMessages(m.id)) {
    out.push(dec.decode((await store.getRaw(m.id, meta.uid))!));
  }
  return out;
}

Deno.test("LmtpDelivery resolves addresses, details and unknown recipients", async () => {
  const { backend, alice } = await setup();
  assert.deepEqual(await resolve(backend, "ALICE@example.org"), {
    address: "ALICE@example.org",
    accountId: alice.id,
    accountName: "alice",
    detail: null,
  });
  assert.deepEqual(await resolve(backend, "alice+lists@example.org"), {
    address: "alice+lists@example.org",
    accountId: alice.id,
    accountName: "alice",
    detail: "lists",
  });
  assert.equal(await resolve(backend, "nobody@example.org"), "550 5.1.1");
  assert.equal(await resolve(backend, "alice@example.com"), "550 5.1.1");
  assert.equal(await resolve(backend, "+x@example.org"), "550 5.1.1");
  const dashed = (await setup('  recipient_delimiter: "-"\n')).backend;
  assert.equal(await resolve(dashed, "alice+lists@example.org"), "550 5.1.1");
  assert.equal((await resolve(dashed, "alice-lists@example.org") as LmtpRecipient).detail, "lists");
});

Deno.test("LmtpDelivery prepends Return-Path, Delivered-To and Received and files details", async () => {
  const { backend, store, alice } = await setup();
  const to = [
    await resolve(backend, "alice@example.org"),
    await resolve(backend, "alice+lists@example.org"),
    await resolve(backend, "alice+missing@example.org"),
  ] as LmtpRecipient[];
  const message = enc.encode("Subject: hi\r\n\r\nbody\r\n");
  const replies = await backend.deliver(envelope, to, message);
  assert.deepEqual(replies.map((r) => `${r.code} ${r.status} ${r.lines[0]}`), [
    "250 2.0.0 <alice@example.org> Saved",
    "250 2.0.0 <alice+lists@example.org> Saved",
    "250 2.0.0 <alice+missing@example.org> Saved",
  ]);
  const inbox = await contents(store, alice.id, "INBOX");
  assert.equal(inbox.length, 2);
  assert.match(
    inbox[0]!,
    new RegExp(
      "^Return-Path: <sender@example\\.net>\\r\\nDelivered-To: alice@example\\.org\\r\\n" +
        "Received: from mta\\.example\\.org \\(\\[127\\.0\\.0\\.1\\]\\)\\r\\n" +
        "\\tby mx\\.example\\.org \\(Postern\\) with LMTP id \\w+\\r\\n" +
        "\\tfor <alice@example\\.org>; Thu, 03 Dec 2026 09:30:05 \\+0000\\r\\n" +
        "Subject: hi\\r\\n\\r\\nbody\\r\\n$",
    ),
  );
  assert.match(inbox[1]!, /Delivered-To: alice\+missing@example\.org/);
  const lists = await contents(store, alice.id, "lists");
  assert.equal(lists.length, 1);
  assert.match(lists[0]!, /Delivered-To: alice\+lists@example\.org/);
  // The SEARCH text was stored as with APPEND.
  const box = (await store.getMailbox(alice.id, "lists"))!;
  assert.ok((await store.getSearchTexts(box.id, [1])).get(1));
});

Deno.test("LmtpDelivery stores a resent message once and honours the dedup window", async () => {
  const { backend, store, alice } = await setup("  dedup_window: 1h\n");
  const to = [await resolve(backend, "alice@example.org")] as LmtpRecipient[];
  const message = enc.encode("Message-ID: <1@x>\r\n\r\nonce\r\n");
  assert.equal((await backend.deliver(envelope, to, message))[0]!.code, 250);
  const again = await backend.deliver(envelope, to, message);
  assert.deepEqual(again[0]!.lines, ["<alice@example.org> Already saved"]);
  const other = await backend.deliver({ ...envelope, sender: null }, to, message);
  assert.deepEqual(other[0]!.lines, ["<alice@example.org> Saved"]);
  assert.equal((await contents(store, alice.id, "INBOX")).length, 2);
  const { backend: off, store: offStore, alice: offAlice } = await setup("  dedup_window: 0s\n");
  const offTo = [await resolve(off, "alice@example.org")] as LmtpRecipient[];
  await off.deliver(envelope, offTo, message);
  assert.equal(
    (await off.deliver(envelope, offTo, message))[0]!.lines[0],
    "<alice@example.org> Saved",
  );
  assert.equal((await contents(offStore, offAlice.id, "INBOX")).length, 2);
});

Deno.test("LmtpDelivery refuses a message over the quota with 552 5.2.2", async () => {
  const { backend, store, alice } = await setup();
  const quota = { default: { storage: 600, messages: 2 } };
  const limited = new LmtpDelivery({
    store,
    directory: () => null,
    settings: () => ({ ...settings(""), quota }),
    hostname: "mx.example.org",
  }).backend("local");
  const to = [await resolve(backend, "alice@example.org")] as LmtpRecipient[];
  const first = await limited.deliver(envelope, to, enc.encode("Subject: 1\r\n\r\nx\r\n"));
  assert.equal(first[0]!.code, 250);
  const big = await limited.deliver(
    envelope,
    to,
    enc.encode(`Subject: 2\r\n\r\n${"y".repeat(400)}\r\n`),
  );
  assert.deepEqual([big[0]!.code, big[0]!.status], [552, "5.2.2"]);
  await limited.deliver(envelope, to, enc.encode("Subject: 3\r\n\r\nz\r\n"));
  const count = await limited.deliver(envelope, to, enc.encode("Subject: 4\r\n\r\nw\r\n"));
  assert.deepEqual([count[0]!.code, count[0]!.status], [552, "5.2.2"]);
  assert.equal((await contents(store, alice.id, "INBOX")).length, 2);
});

Deno.test("LmtpDelivery asks the directory, creates its accounts and defers when it is down", async () => {
  const { backend, store, lookups } = await setup(
    '  directory_filter: "(|(mail={address})(alias={address}))"\n',
    (address) =>
      address === "carol@example.org"
        ? { kind: "found", username: "carol" }
        : address.startsWith("down")
        ? { kind: "failed", detail: "unreachable" }
        : { kind: "none" },
  );
  const carol = await resolve(backend, "carol+news@example.org") as LmtpRecipient;
  assert.equal(carol.accountName, "carol");
  assert.equal(carol.detail, "news");
  assert.ok(await store.getAccount("carol"));
  assert.deepEqual(lookups, [
    "carol+news@example.org (|(mail={address})(alias={address}))",
    "carol@example.org (|(mail={address})(alias={address}))",
  ]);
  assert.equal(await resolve(backend, "down@example.org"), "451 4.4.3");
  assert.equal(await resolve(backend, "dave@example.org"), "550 5.1.1");
  // Local addresses win without a lookup.
  lookups.length = 0;
  assert.equal((await resolve(backend, "alice@example.org") as LmtpRecipient).accountName, "alice");
  assert.deepEqual(lookups, []);
});

Deno.test("LmtpDelivery answers 451 4.3.0 when the store fails and 552 5.3.4 over its size", async () => {
  const store = new MemoryMailStore({ maxMessageBytes: 300 });
  const alice = await store.createAccount("alice", null);
  await store.addAddress(alice.id, "alice@example.org");
  const backend = new LmtpDelivery({
    store,
    directory: () => null,
    settings: () => settings(""),
    hostname: "mx",
  }).backend("local");
  const to = [await resolve(backend, "alice@example.org")] as LmtpRecipient[];
  const big = await backend.deliver(envelope, to, enc.encode("x".repeat(400)));
  assert.deepEqual([big[0]!.code, big[0]!.status], [552, "5.3.4"]);
  await store.close();
  const closed = await backend.deliver(envelope, to, enc.encode("x"));
  assert.deepEqual([closed[0]!.code, closed[0]!.status], [451, "4.3.0"]);
});

Deno.test("rfc5322Date() writes RFC 5322 dates in UTC", () => {
  assert.equal(
    rfc5322Date(new Date(Date.UTC(2024, 1, 29, 1, 2, 3))),
    "Thu, 29 Feb 2024 01:02:03 +0000",
  );
});

Deno.test("LmtpDelivery refuses a message that already went to the same address (a loop)", async () => {
  const { backend, store, alice } = await setup();
  const to = [await resolve(backend, "alice@example.org")] as LmtpRecipient[];
  const looped = enc.encode("Delivered-To: Alice@Example.org\r\nSubject: x\r\n\r\nbody\r\n");
  const r = await backend.deliver(envelope, to, looped);
  assert.deepEqual([r[0]!.code, r[0]!.status], [554, "5.4.6"]);
  assert.equal((await contents(store, alice.id, "INBOX")).length, 0);
  // Only the header section counts; the address in the body is text.
  const quoted = enc.encode("Subject: x\r\n\r\nDelivered-To: alice@example.org\r\n");
  assert.equal((await backend.deliver(envelope, to, quoted))[0]!.code, 250);
});

Deno.test("deliveredTo() reads the Delivered-To fields of the header section only", () => {
  assert.deepEqual(
    [...deliveredTo(
      enc.encode("delivered-to: <A@x.org>\nDelivered-To: b@y.org \n\nDelivered-To: c@z\n"),
    )],
    ["a@x.org", "b@y.org"],
  );
  assert.deepEqual([...deliveredTo(enc.encode("\r\nDelivered-To: a@x.org\r\n"))], []);
  assert.deepEqual([...deliveredTo(enc.encode("Delivered-To: a@x.org"))], ["a@x.org"]);
});

/** A ~5 MiB multipart message, large enough for the blob writer and the derive thread. */
function largeMessage(): Uint8Array {
  const line = "The quick brown fox jumps over the lazy dog, then naps in the sun again.\r\n";
  const body = line.repeat(Math.ceil((5 * 1024 * 1024) / line.length));
  return enc.encode(
    "From: Sender <sender@example.net>\r\nTo: alice@example.org, bob@example.org\r\n" +
      "Subject: Large report\r\nMessage-ID: <large@example.net>\r\nMIME-Version: 1.0\r\n" +
      'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n' +
      "Content-Type: text/plain; charset=utf-8\r\n\r\nquarterly figures attached\r\n--b\r\n" +
      "Content-Type: text/plain\r\n\r\n" + body + "--b--\r\n",
  );
}

Deno.test("LmtpDelivery delivers a large message per recipient off the loop, once, within quota", async () => {
  const dir = await Deno.makeTempDir({ prefix: "postern-lmtp-" });
  const path = `${dir}/mail.db`;
  const store = await openSqliteMailStore(path);
  const derive = new DeriveWorker();
  try {
    const alice = await store.createAccount("alice", null);
    await store.addAddress(alice.id, "alice@example.org");
    const bob = await store.createAccount("bob", null);
    await store.addAddress(bob.id, "bob@example.org");
    const carol = await store.createAccount("carol", null);
    await store.addAddress(carol.id, "carol@example.org");
    let derived = 0;
    const quota = {
      ...settings("").quota,
      accounts: new Map([["carol", { storage: 1024 * 1024, messages: null }]]),
    };
    const delivery = new LmtpDelivery({
      store,
      directory: () => null,
      settings: () => ({ ...settings("  dedup_window: 1h\n"), quota }),
      hostname: "mx.example.org",
      now: () => NOW,
      deriveOffThread: (raw) => {
        derived++;
        return derive.derive(raw);
      },
    });
    const backend = delivery.backend("[127.0.0.1]");
    const to: LmtpRecipient[] = [];
    for (const a of ["alice@example.org", "carol@example.org", "bob@example.org"]) {
      to.push(await resolve(backend, a) as LmtpRecipient);
    }
    const message = largeMessage();
    const sent = message.slice();
    const replies = await backend.deliver(envelope, to, message);
    assert.deepEqual(replies.map((r) => `${r.code} ${r.status} ${r.lines[0]}`), [
      "250 2.0.0 <alice@example.org> Saved",
      "552 5.2.2 <carol@example.org> Mailbox is over quota",
      "250 2.0.0 <bob@example.org> Saved",
    ]);
    // The message as received is untouched (each copy was handed over, not it).
    assert.deepEqual(message, sent);
    assert.equal(derived, 3);
    for (
      const [account, address] of [[alice, "alice@example.org"], [bob, "bob@example.org"]] as const
    ) {
      const inbox = (await store.getMailbox(account.id, "INBOX"))!;
      const [meta, ...more] = await store.listMessages(inbox.id);
      assert.equal(more.length, 0);
      const raw = (await store.getRaw(inbox.id, meta!.uid))!;
      const text = dec.decode(raw);
      assert.ok(
        text.startsWith(`Return-Path: <sender@example.net>\r\nDelivered-To: ${address}\r\n`),
      );
      // After the trace headers, the very bytes received.
      assert.deepEqual(raw.subarray(raw.length - sent.length), sent);
      assert.equal(meta!.size, raw.length);
      const expected = derivedData(mimeSupport, raw);
      assert.equal(await store.getSummary(inbox.id, meta!.uid), expected.summary);
      const search = (await store.getSearchTexts(inbox.id, [meta!.uid])).get(meta!.uid);
      assert.equal(search, expected.searchText);
      assert.match(search!, /quarterly figures attached/);
    }
    // The MTA sends it again after a lost reply: stored once, and carol is still over quota.
    const again = await backend.deliver(envelope, to, sent.slice());
    assert.deepEqual(again.map((r) => `${r.code} ${r.lines[0]}`), [
      "250 <alice@example.org> Already saved",
      "552 <carol@example.org> Mailbox is over quota",
      "250 <bob@example.org> Already saved",
    ]);
    const carolInbox = (await store.getMailbox(carol.id, "INBOX"))!;
    assert.equal((await store.listMessages(carolInbox.id)).length, 0);
  } finally {
    derive.close();
    await store.close();
  }
  try {
    // One blob per stored copy: none left behind by the refusals or the duplicates.
    const db = new DatabaseSync(path);
    try {
      assert.equal(Number(db.prepare("SELECT count(*) AS n FROM blobs").get()?.n), 2);
      assert.equal(Number(db.prepare("SELECT count(*) AS n FROM pending_blobs").get()?.n), 0);
    } finally {
      db.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
