/**
 * Issue 11, "IMAP to the letter", against a whole Postern (startPostern) over implicit TLS: one
 * step per item, each in a mailbox of its own, with raw IMAP connections (RawImap) so that the
 * exact responses are checked: \Recent for IMAP4rev1 sessions, FLAGS before new keywords, NIL
 * as a keyword, several BINARY.SIZE items, CONDSTORE's first HIGHESTMODSEQ and ESEARCH MODSEQ,
 * LSUB's \Noselect parents, malformed modified UTF-7 lookups, ENVELOPE groups, address SEARCH,
 * and no NUL in a plain literal.
 */
import assert from "node:assert/strict";
import { type ImapResult, RawImap } from "../_support/imap_clients.ts";
import { startPostern } from "../_support/postern.ts";

const enc = new TextEncoder();

function lines(r: ImapResult): string[] {
  return r.untagged.map((u) => u.text);
}

async function ok(c: RawImap, command: string, literal?: Uint8Array): Promise<string[]> {
  const r = await c.command(command, literal);
  assert.equal(r.status, "OK", `${command}: ${r.tagged}`);
  return lines(r);
}

function msg(subject: string, extra = ""): Uint8Array {
  return enc.encode(
    `From: Alice <alice@example.org>\r\nTo: bob@example.org\r\nSubject: ${subject}\r\n` +
      `Date: Tue, 7 Mar 2023 10:00:00 +0000\r\n${extra}\r\nHello.\r\n`,
  );
}

Deno.test({
  name: "Postern answers the issue 11 conformance items over implicit TLS",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const postern = await startPostern({ users: [{ name: "alice", password: "pw" }] });
    const open: RawImap[] = [];
    const connect = async (): Promise<RawImap> => {
      const c = await RawImap.tls(postern.implicitPort, postern.caPem);
      open.push(c);
      await c.greeting();
      await ok(c, "LOGIN alice pw");
      return c;
    };
    try {
      const [a, b, e] = [await connect(), await connect(), await connect()];

      await t.step(
        "1. \\Recent goes to exactly one SELECT session; EXAMINE only looks",
        async () => {
          await ok(a, "CREATE r1");
          await ok(a, "APPEND r1", msg("one"));
          assert.deepEqual(await ok(a, "STATUS r1 (RECENT)"), ["* STATUS r1 (RECENT 1)"]);
          assert.ok((await ok(e, "EXAMINE r1")).includes("* 1 RECENT"));
          assert.ok((await ok(a, "SELECT r1")).includes("* 1 RECENT"));
          assert.ok((await ok(b, "SELECT r1")).includes("* 0 RECENT"));
          assert.deepEqual(await ok(a, "FETCH 1 FLAGS"), ["* 1 FETCH (FLAGS (\\Recent))"]);
          assert.deepEqual(await ok(b, "SEARCH RECENT"), ["* SEARCH"]);
          assert.deepEqual(await ok(a, "SEARCH NEW"), ["* SEARCH 1"]);
          // An APPEND while both have it selected: the first to hear of it owns it.
          await ok(e, "APPEND r1", msg("two"));
          const na = await ok(a, "NOOP");
          const nb = await ok(b, "NOOP");
          assert.ok(na.includes("* 2 EXISTS") && nb.includes("* 2 EXISTS"), `${na}\n${nb}`);
          // RECENT is sent only when a session's count changes.
          const changed = (n: string[]) => n.some((l) => l.endsWith(" RECENT"));
          const aOwns = na.includes("* 2 RECENT") && !changed(nb);
          const bOwns = nb.includes("* 1 RECENT") && !changed(na);
          assert.ok(aOwns !== bOwns, `${na.join("|")}\n${nb.join("|")}`);
          const recentInB = (await ok(b, "SEARCH RECENT"))[0];
          assert.equal(recentInB, bOwns ? "* SEARCH 2" : "* SEARCH");
        },
      );

      await t.step(
        "2 and 3. FLAGS lists a new keyword (NIL too) before any FETCH shows it",
        async () => {
          await ok(a, "CREATE k2");
          await ok(a, "APPEND k2", msg("k"));
          await ok(a, "SELECT k2");
          await ok(b, "SELECT k2");
          const st = await ok(a, "STORE 1 +FLAGS ($keyword1 NIL)");
          assert.equal(
            st[0],
            "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $keyword1 NIL)",
          );
          assert.match(st[1]!, /^\* OK \[PERMANENTFLAGS \(.* \$keyword1 NIL \\\*\)\]/);
          assert.match(st[2]!, /^\* 1 FETCH \(FLAGS \(\$keyword1 NIL \\Recent\)\)$/);
          const n = await ok(b, "NOOP");
          assert.equal(
            n[0],
            "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $keyword1 NIL)",
          );
          assert.match(n[2]!, /^\* 1 FETCH \(UID 1 FLAGS \(\$keyword1 NIL\)\)$/);
        },
      );

      await t.step("4. FETCH returns every BINARY.SIZE item", async () => {
        await ok(a, "CREATE b4");
        const mp = "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n" +
          "Content-Type: text/plain\r\n\r\nhi\r\n--b\r\nContent-Type: application/octet-stream\r\n" +
          "Content-Transfer-Encoding: base64\r\n\r\nAAECAw==\r\n--b--\r\n";
        await ok(a, "APPEND b4", enc.encode(mp));
        await ok(a, "SELECT b4");
        assert.deepEqual(await ok(a, "FETCH 1 (BINARY.SIZE[1] BINARY.SIZE[2])"), [
          "* 1 FETCH (BINARY.SIZE[1] 2 BINARY.SIZE[2] 4)",
        ]);
      });

      await t.step(
        "5. CONDSTORE: HIGHESTMODSEQ first; ESEARCH MODSEQ of what is returned",
        async () => {
          const c = await connect();
          await ok(c, "CREATE c5");
          for (let i = 1; i <= 3; i++) await ok(c, "APPEND c5", msg(`c${i}`));
          await ok(c, "SELECT c5");
          for (const n of [3, 1, 2]) await ok(c, `STORE ${n} +FLAGS.SILENT (\\Seen)`);
          const f = await ok(c, "FETCH 1:3 (MODSEQ)");
          assert.match(f[0]!, /^\* OK \[HIGHESTMODSEQ \d+\]/);
          const modseq = (n: number) =>
            Number(new RegExp(`^\\* ${n} FETCH \\(MODSEQ \\((\\d+)\\)\\)$`).exec(f[n]!)![1]);
          const min = await ok(c, 'SEARCH RETURN (MIN) 1:3 MODSEQ "/flags/\\\\seen" all 1');
          assert.match(min[0]!, new RegExp(`MIN 1 MODSEQ ${modseq(1)}$`));
          const all = await ok(c, 'SEARCH RETURN (COUNT) 1:3 MODSEQ "/flags/\\\\seen" all 1');
          assert.match(all[0]!, new RegExp(`COUNT 3 MODSEQ ${modseq(2)}$`));
        },
      );

      await t.step(
        "6. LSUB lists an unsubscribed parent of a subscribed child as \\Noselect",
        async () => {
          await ok(a, "CREATE parent6/child");
          await ok(a, "SUBSCRIBE parent6/child");
          assert.deepEqual(await ok(a, 'LSUB "" parent6'), []);
          assert.deepEqual(await ok(a, 'LSUB "" par%'), ['* LSUB (\\Noselect) "/" parent6']);
          assert.deepEqual(await ok(a, 'LSUB "" parent6/%'), ['* LSUB () "/" parent6/child']);
        },
      );

      await t.step(
        "7. A malformed modified UTF-7 name is NONEXISTENT, and LIST is empty",
        async () => {
          const c = await connect();
          const name = "!#$&'+,-.0123456789:;<=>?@^_`|[}";
          const r = await c.command(`SELECT ${name}`);
          assert.equal(r.tagged.replace(/^\S+ /, ""), "NO [NONEXISTENT] No such mailbox");
          assert.deepEqual(await ok(c, `LIST "" "${name}%*"`), []);
          assert.deepEqual(lines(await c.command("NOOP")), []);
        },
      );

      await t.step("8. ENVELOPE gives group start and end entries only", async () => {
        await ok(a, "CREATE e8");
        await ok(a, "APPEND e8", msg("g", "Cc: group:;, group2: (foo) ;\r\n"));
        await ok(a, "SELECT e8");
        const f = await ok(a, "FETCH 1 ENVELOPE");
        assert.ok(
          f[0]!.includes(
            '((NIL NIL "group" NIL)(NIL NIL NIL NIL)(NIL NIL "group2" NIL)(NIL NIL NIL NIL))',
          ),
          f[0],
        );
      });

      await t.step("9. FROM matches address forms, not only the raw text", async () => {
        await ok(a, "CREATE s9");
        await ok(
          a,
          "APPEND s9",
          enc.encode('From: "user-from"@domain.org\r\nSubject: q\r\n\r\nx\r\n'),
        );
        await ok(
          a,
          "APPEND s9",
          enc.encode("From: User <user-from@\r\n domain.org>\r\nSubject: f\r\n\r\nx\r\n"),
        );
        await ok(a, "SELECT s9");
        assert.deepEqual(await ok(a, "SEARCH FROM user-from@domain.org"), ["* SEARCH 1 2"]);
        assert.deepEqual(await ok(a, 'SEARCH FROM "user <user-from@domain.org>"'), ["* SEARCH 2"]);
      });

      await t.step("10. BODY[] of a binary part never carries NUL in a plain literal", async () => {
        await ok(a, "CREATE n10");
        const raw = enc.encode(
          "Subject: x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
            "--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\n" +
            "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n" +
            "ab\0cd\0\r\n--b--\r\n",
        );
        const tag = a.nextTag();
        await a.write(
          new Uint8Array([
            ...enc.encode(`${tag} APPEND n10 ~{${raw.length}+}\r\n`),
            ...raw,
            13,
            10,
          ]),
        );
        const got = await a.readUntil((r) => r.text.startsWith(`${tag} `));
        assert.match(got!.at(-1)!.text, / OK /);
        await ok(a, "SELECT n10");
        for (const item of ["BODY.PEEK[2]", "BODY.PEEK[]", "RFC822.TEXT"]) {
          const r = await a.command(`FETCH 1 (${item})`);
          assert.equal(r.status, "OK");
          const literal = r.untagged[0]!.literals[0]!;
          assert.ok(!literal.includes(0), item);
          assert.ok(literal.includes(0x80), item);
        }
        const bin = await a.command("FETCH 1 (BINARY.PEEK[2])");
        assert.ok(bin.untagged[0]!.text.includes("~{6}"));
        assert.deepEqual([...bin.untagged[0]!.literals[0]!], [0x61, 0x62, 0, 0x63, 0x64, 0]);
      });
    } finally {
      for (const c of open) await c.close();
      await postern.stop();
    }
  },
});
