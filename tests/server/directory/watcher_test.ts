/**
 * The directory watcher against a real slapd: content sync with syncprov over plain LDAP,
 * StartTLS and ldaps://, the events a certificate removal and an attribute change push, the
 * resync after a restart, and the fall-back to polling when the server offers no push.
 */
import assert from "node:assert/strict";
import type { DirectoryConfigInput } from "../../../server/directory/config.ts";
import {
  DirectoryWatcher,
  type EntryChangeKind,
  type RevocationMode,
} from "../../../server/directory/watcher.ts";
import { certificateChange } from "../../_support/directory_e2e.ts";
import { type Slapd, startSlapd } from "../../_support/slapd.ts";
import { configFor } from "./_config.ts";
import { TestCa } from "./_certs.ts";

const ca = await TestCa.create();
const alice = await ca.issue({ cn: "alice", email: "alice@example.org" });
const bob = await ca.issue({ cn: "bob", email: "bob@example.org" });
const users = [
  { uid: "alice", mail: "alice@example.org", certificates: [alice.der] },
  { uid: "bob", mail: "bob@example.org", certificates: [bob.der] },
  { uid: "carol", mail: "carol@example.org" },
];
globalThis.addEventListener("unload", () => {
  Deno.removeSync(ca.dir, { recursive: true });
});

interface Recorder {
  readonly changes: Array<{ dn: string; kind: EntryChangeKind; previousDn?: string }>;
  resyncs: number;
}

function watch(
  ldap: Slapd,
  over: Partial<DirectoryConfigInput> = {},
  heartbeatMs?: number,
): { watcher: DirectoryWatcher; seen: Recorder } {
  const seen: Recorder = { changes: [], resyncs: 0 };
  const config = configFor(ldap, { timeoutMs: 2000, ...over });
  const watcher = new DirectoryWatcher(config, {
    onChange: (dn, kind, previousDn) =>
      seen.changes.push({ dn, kind, ...(previousDn === null ? {} : { previousDn }) }),
    onResync: () => seen.resyncs++,
  }, heartbeatMs === undefined ? {} : { heartbeatMs });
  watcher.start();
  return { watcher, seen };
}

async function until(what: string, test: () => boolean, withinMs = 5000): Promise<void> {
  const deadline = performance.now() + withinMs;
  while (!test()) {
    if (performance.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const modeIs = (w: DirectoryWatcher, mode: RevocationMode) => () => w.status.mode === mode;

Deno.test("content sync pushes a removed certificate as a delete, other edits as modify, renames with the old DN", async () => {
  const ldap = await startSlapd({ users });
  const { watcher, seen } = watch(ldap);
  try {
    await until("content sync", modeIs(watcher, "content_sync"));
    assert.equal(seen.resyncs, 1);
    assert.equal(watcher.status.live, true);
    // Alice's only certificate: her entry leaves the watched set.
    await ldap.modify(certificateChange(ldap.userDn("alice"), "delete", alice.der));
    // Bob keeps his certificate; his entry changes.
    await ldap.modify(
      `dn: ${ldap.userDn("bob")}\nchangetype: modify\nreplace: description\ndescription: x\n`,
    );
    // Carol has no certificate: not watched.
    await ldap.modify(
      `dn: ${ldap.userDn("carol")}\nchangetype: modify\nreplace: description\ndescription: y\n`,
    );
    await until("two changes", () => seen.changes.length >= 2);
    assert.deepEqual(seen.changes.slice(0, 2), [
      { dn: ldap.userDn("alice"), kind: "delete" },
      { dn: ldap.userDn("bob"), kind: "modify" },
    ]);

    // A rename: content sync gives only the new DN; the watcher adds the old one.
    await ldap.modify(
      `dn: ${ldap.userDn("bob")}\nchangetype: modrdn\nnewrdn: uid=robert\ndeleteoldrdn: 0\n`,
    );
    await until("the rename", () => seen.changes.length >= 3);
    assert.deepEqual(seen.changes[2], {
      dn: ldap.userDn("robert"),
      kind: "modify",
      previousDn: ldap.userDn("bob"),
    });
    await ldap.modify(
      `dn: ${ldap.userDn("robert")}\nchangetype: modrdn\nnewrdn: uid=bob\ndeleteoldrdn: 1\n`,
    );
    await until("the rename back", () => seen.changes.length >= 4);

    // A restart drops the connection: polling until the watcher is back, then a resync.
    await ldap.restart();
    await until("the resync after the restart", () => seen.resyncs === 2, 10_000);
    assert.equal(watcher.status.mode, "content_sync");
    await ldap.modify(certificateChange(ldap.userDn("bob"), "delete", bob.der));
    await until(
      "bob's removal",
      () => seen.changes.some((c) => c.dn === ldap.userDn("bob") && c.kind === "delete"),
    );
    assert.ok(!seen.changes.some((c) => c.dn.startsWith("uid=carol")));
  } finally {
    await watcher.stop();
    await ldap.stop();
  }
});

Deno.test("content sync runs over StartTLS and ldaps://, and not with the wrong CA", async () => {
  const ldap = await startSlapd({ users, tls: true });
  const secured = [
    watch(ldap, { starttls: true, ca: ldap.caPem! }),
    watch(ldap, { url: ldap.ldapsUrl!, ca: ldap.caPem! }),
  ];
  const wrong = watch(ldap, {
    url: ldap.ldapsUrl!,
    ca: await Deno.readTextFile(`${ca.dir}/ca.pem`),
  });
  try {
    for (const { watcher } of secured) {
      await until("content sync over TLS", modeIs(watcher, "content_sync"));
    }
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(wrong.watcher.status.live, false);
    assert.equal(wrong.watcher.status.mode, "poll");
  } finally {
    for (const { watcher } of [...secured, wrong]) await watcher.stop();
    await ldap.stop();
  }
});

Deno.test("without syncprov, auto settles on poll and an explicit push mode keeps retrying", async () => {
  const ldap = await startSlapd({ users, syncprov: false });
  const auto = watch(ldap);
  const psearch = watch(ldap, { sync: "persistent_search" });
  const poll = watch(ldap, { sync: "poll" });
  try {
    await new Promise((r) => setTimeout(r, 1500));
    for (const { watcher, seen } of [auto, psearch, poll]) {
      assert.equal(watcher.status.mode, "poll");
      assert.equal(watcher.status.live, false);
      assert.equal(seen.resyncs, 0);
    }
    // auto read the root DSE once and stopped; psearch was refused and tries again.
    assert.equal(auto.watcher.status.operations, 2);
    assert.ok(psearch.watcher.status.operations >= 4, String(psearch.watcher.status.operations));
    assert.equal(poll.watcher.status.operations, 0);
  } finally {
    for (const { watcher } of [auto, psearch, poll]) await watcher.stop();
    await ldap.stop();
  }
});

/**
 * A TCP relay on 127.0.0.1 in front of slapd whose open connections can be frozen: bytes stop
 * flowing both ways while the sockets stay open, as with a network partition.
 */
function freezingRelay(target: number): { port: number; freeze(): void; close(): Promise<void> } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open: Array<{ frozen: boolean; conns: Deno.Conn[] }> = [];
  const tasks: Promise<void>[] = [];
  const pump = async (from: Deno.Conn, to: Deno.Conn, link: { frozen: boolean }) => {
    const buf = new Uint8Array(16 * 1024);
    try {
      for (;;) {
        const n = await from.read(buf);
        if (n === null) break;
        // A frozen link swallows what it reads.
        if (!link.frozen) await to.write(buf.subarray(0, n));
      }
    } catch {
      // Closed.
    }
  };
  const accepting = (async () => {
    for await (const client of listener) {
      const server = await Deno.connect({ hostname: "127.0.0.1", port: target });
      const link = { frozen: false, conns: [client, server] };
      open.push(link);
      tasks.push(pump(client, server, link), pump(server, client, link));
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    freeze: () => {
      for (const link of open) link.frozen = true;
    },
    close: async () => {
      listener.close();
      await accepting;
      for (const link of open) {
        for (const c of link.conns) {
          try {
            c.close();
          } catch {
            // Already closed.
          }
        }
      }
      await Promise.all(tasks);
    },
  };
}

Deno.test("a directory that stops answering without closing is noticed by the liveness probe", async () => {
  const ldap = await startSlapd({ users });
  const relay = freezingRelay(ldap.port);
  const { watcher, seen } = watch(
    ldap,
    { url: `ldap://127.0.0.1:${relay.port}`, timeoutMs: 400 },
    200,
  );
  try {
    await until("content sync", modeIs(watcher, "content_sync"));
    // Probes are answered: still live after several heartbeats.
    await new Promise((r) => setTimeout(r, 700));
    assert.equal(watcher.status.live, true);
    relay.freeze();
    // The next probe goes unanswered: polling takes over, and a fresh connection (not
    // frozen) brings the push back with a resync.
    await until("the fall-back to polling", () => !watcher.status.live, 3000);
    await until("the push again", () => watcher.status.live && seen.resyncs === 2, 5000);
  } finally {
    await watcher.stop();
    await relay.close();
    await ldap.stop();
  }
});
