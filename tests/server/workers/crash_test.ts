/**
 * Workers that end in the middle of writes (`server.workers: 2`, real TLS clients through
 * RawImap): a Worker terminated during a burst of APPENDs and STOREs from several clients
 * loses none of what it acknowledged, shows nothing half-written, drops its clients, and is
 * replaced, while the other Worker's sessions (one in IDLE) go on and see every change. A
 * Worker that ends itself with `self.close()` (no event reaches its parent) is found by its
 * silent heartbeat and replaced too. Deno's `terminate()` ends a Worker between two of its tasks
 * (never inside a synchronous SQLite transaction), so the cut falls where a write can be
 * committed but not yet synced nor acknowledged, or synced and not yet acknowledged. A Worker
 * whose event loop is blocked (one endless task) is found by its silent heartbeat too, while the
 * other Worker serves on; since terminate() cannot cut that task short, its sessions end only
 * when the task does.
 */
import assert from "node:assert/strict";
import { makeMessage, RawImap } from "../../_support/imap_clients.ts";
import { type RunningPostern, startPostern } from "../../_support/postern.ts";
import { onDistinctWorkers, onWorker, workerOf } from "./_workers.ts";

const USERS = [{ name: "dora", password: "pw" }];

/** What a client was told: messages it appended (by Message-ID) with the flags acknowledged. */
interface Acknowledged {
  readonly flags: Map<string, Set<string>>;
  /** Commands sent whose answer never came (the Worker ended first): either outcome is right. */
  readonly unanswered: Set<string>;
}

/**
 * A client that APPENDs (with flags) and STOREs on its own messages, one command at a time,
 * until its connection ends or `stop()` says so; it records every OK.
 */
function writer(imap: RawImap, name: string, stop: () => boolean, acked: Acknowledged) {
  return (async () => {
    const mine: { id: string; uid: number }[] = [];
    for (let n = 0; n < 10_000 && !stop(); n++) {
      const id = `${name}-${n}`;
      try {
        if (mine.length > 0 && n % 3 === 2) {
          const target = mine[n % mine.length]!;
          const flag = `$Stored${n}`;
          acked.unanswered.add(id);
          const stored = await imap.command(`UID STORE ${target.uid} +FLAGS.SILENT (${flag})`);
          acked.unanswered.delete(id);
          if (stored.status === "OK") acked.flags.get(target.id)!.add(flag);
          continue;
        }
        acked.unanswered.add(id);
        const appended = await imap.command(
          `APPEND INBOX (\\Flagged $W${n})`,
          makeMessage(id, `Burst ${id}`, `${"x".repeat(200 + n)}\r\n`),
        );
        acked.unanswered.delete(id);
        if (appended.status !== "OK") continue;
        const uid = Number(/APPENDUID \d+ (\d+)/.exec(appended.tagged)?.[1]);
        acked.flags.set(id, new Set(["\\Flagged", `$W${n}`]));
        mine.push({ id, uid });
      } catch {
        // The connection ended (its Worker did): the command in flight stays unanswered.
        return;
      }
    }
  })();
}

/** Every message of INBOX by Message-ID: its flags and size, read by `imap`. */
async function inbox(imap: RawImap): Promise<Map<string, { flags: Set<string>; size: number }>> {
  const listing = await imap.command(
    "UID FETCH 1:* (FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])",
    undefined,
    30_000,
  );
  assert.equal(listing.status, "OK", listing.tagged);
  const out = new Map<string, { flags: Set<string>; size: number }>();
  for (const r of listing.untagged) {
    if (!/^\* \d+ FETCH/.test(r.text)) continue;
    const id = /Message-ID: <([^@>]+)@/i.exec(r.text)?.[1];
    assert.ok(id !== undefined, `a message with no Message-ID: ${r.text.slice(0, 200)}`);
    const flags = /FLAGS \(([^)]*)\)/.exec(r.text)?.[1]?.split(" ").filter((f) => f !== "");
    const size = Number(/RFC822\.SIZE (\d+)/.exec(r.text)?.[1]);
    out.set(id, { flags: new Set(flags), size });
  }
  return out;
}

/** Connections reach Worker `id` again (its replacement listens), within a bounded wait. */
async function backOn(postern: RunningPostern, user: string, id: string): Promise<RawImap> {
  for (let i = 0; i < 100; i++) {
    try {
      return await onWorker(postern, user, id);
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`Worker ${id} was never restarted`);
}

Deno.test({
  name: "Workers that end amid writes lose nothing acknowledged and are replaced",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const postern = await startPostern({ users: USERS, workers: 2, workerSilenceMs: 2000 });
    try {
      for (const how of ["terminate", "throw", "close"] as const) {
        await t.step(`a Worker ended (${how}) during APPENDs and STOREs`, async () => {
          // The other Worker: one session in IDLE, one writing throughout.
          const [idler, other] = await onDistinctWorkers(postern, "dora", 2);
          const idlerId = await workerOf(idler!);
          const victimId = await workerOf(other!);
          await other!.close();
          const survivor = await onWorker(postern, "dora", idlerId);
          const select = await idler!.command("SELECT INBOX");
          assert.equal(select.status, "OK", select.tagged);
          let exists = Number(
            /\* (\d+) EXISTS/.exec(select.untagged.map((r) => r.text).join("\n"))?.[1],
          );
          const exists0 = exists;
          await idler!.write("I1 IDLE\r\n");
          assert.ok(await idler!.readUntil((r) => r.text.startsWith("+"), 5000));
          // Four writers on the Worker that will end.
          const victims = await Promise.all(
            [0, 1, 2, 3].map(() => onWorker(postern, "dora", victimId)),
          );
          for (const v of victims) assert.equal((await v.command("SELECT INBOX")).status, "OK");
          const acked: Acknowledged = { flags: new Map(), unanswered: new Set() };
          let stopping = false;
          const writers = victims.map((v, i) => writer(v, `${how}-v${i}`, () => stopping, acked));
          const steady = writer(survivor, `${how}-s`, () => stopping, acked);
          // Let the burst run, then end the Worker in the middle of it.
          while (acked.flags.size < 40) await new Promise((r) => setTimeout(r, 10));
          assert.ok(postern.handle.failWorkerForTest?.(Number(victimId), how));
          // Its clients are disconnected (the writers end by themselves)...
          const ended = await Promise.race([
            Promise.all(writers).then(() => true),
            new Promise((r) => setTimeout(() => r(false), 20_000)),
          ]);
          assert.ok(ended, "a client of the ended Worker was never disconnected");
          for (const v of victims) assert.ok(v.closed, "the connection is still open");
          // ...while the other Worker's writer goes on, and is stopped once it wrote more.
          const after = acked.flags.size;
          while (acked.flags.size < after + 10) await new Promise((r) => setTimeout(r, 10));
          stopping = true;
          await steady;
          // The IDLE session heard of every acknowledged APPEND (and maybe an unanswered one).
          const appended = acked.flags.size + exists0;
          const heard = await idler!.readUntil((r) => {
            const m = /^\* (\d+) EXISTS$/.exec(r.text);
            if (m) exists = Number(m[1]);
            return exists >= appended;
          }, 10_000);
          assert.ok(heard, `IDLE on Worker ${idlerId} saw ${exists} messages of ${appended}`);
          await idler!.write("DONE\r\n");
          assert.ok(await idler!.readUntil((r) => r.text.startsWith("I1 OK"), 5000));
          // Everything acknowledged is there with its flags; nothing else is half there.
          const stored = await inbox(idler!);
          for (const [id, flags] of acked.flags) {
            const message = stored.get(id);
            assert.ok(message, `acknowledged APPEND ${id} is gone`);
            for (const flag of flags) assert.ok(message.flags.has(flag), `${id} lost ${flag}`);
          }
          for (const [id, message] of stored) {
            if (!id.startsWith(`${how}-`)) continue;
            assert.ok(
              acked.flags.has(id) || acked.unanswered.has(id),
              `${id} is stored but was never appended`,
            );
            const n = Number(id.slice(id.lastIndexOf("-") + 1));
            const whole = makeMessage(id, `Burst ${id}`, `${"x".repeat(200 + n)}\r\n`).length;
            assert.equal(message.size, whole, `${id} is stored cut short`);
          }
          // The replacement serves under the same id and writes; the idler's Worker writes too.
          const back = await backOn(postern, "dora", victimId);
          const again = await back.command(`APPEND INBOX`, makeMessage(`${how}-back`, "Back"));
          assert.equal(again.status, "OK", again.tagged);
          const flagged = await idler!.command(`STORE 1 +FLAGS.SILENT (\\Seen)`);
          assert.equal(flagged.status, "OK", flagged.tagged);
          for (const imap of [back, idler!, survivor, ...victims]) await imap.close();
        });
      }
      await t.step(
        "a Worker whose event loop is blocked is found silent and replaced",
        async () => {
          const [survivor, victim] = await onDistinctWorkers(postern, "dora", 2);
          const victimId = await workerOf(victim!);
          for (const imap of [survivor!, victim!]) {
            assert.equal((await imap.command("SELECT INBOX")).status, "OK");
          }
          assert.ok(postern.handle.failWorkerForTest?.(Number(victimId), "block"));
          // The Worker blocks once it reads the request: from then on it answers nothing. The
          // watchdog finds it silent after 2 s and ends it, but Deno's terminate() takes effect
          // only when the running task ends (the block's 8 s): only then is its session cut.
          // Without the watchdog the session would live on past the block.
          const cut = (async () => {
            for (let i = 0; i < 20; i++) {
              const answered = await victim!.command("NOOP", undefined, 1000).then(
                () => true,
                () => false,
              );
              if (!answered) break;
            }
            await victim!.readUntil(() => false, 15_000);
            return victim!.closed;
          })();
          let ended = false;
          void cut.then(() => ended = true);
          // Meanwhile the other Worker serves its session, reads and writes.
          let answered = 0;
          while (!ended && answered < 10_000) {
            const fetched = await survivor!.command("FETCH 1:* (FLAGS)");
            assert.equal(fetched.status, "OK", fetched.tagged);
            const appended = await survivor!.command("APPEND INBOX", makeMessage("blocked", "Hi"));
            assert.equal(appended.status, "OK", appended.tagged);
            answered += 2;
          }
          assert.ok(await cut, "the blocked Worker's connection is still open");
          assert.ok(answered >= 2, "the other Worker answered nothing while one was blocked");
          // A replacement serves under the same id.
          const back = await backOn(postern, "dora", victimId);
          assert.equal((await back.command("SELECT INBOX")).status, "OK");
          for (const imap of [back, survivor!, victim!]) await imap.close();
        },
      );
    } finally {
      await postern.stop();
    }
  },
});
