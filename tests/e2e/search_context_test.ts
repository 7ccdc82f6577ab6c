/**
 * CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267, Section 4) with real peers over implicit TLS on
 * 127.0.0.1: Python imaplib reads PARTIAL and the ADDTO/REMOVEFROM updates another connection
 * causes; and the same script against Dovecot 2.3 (CONTEXT=SEARCH, no CONTEXT=SORT) must give
 * the same answers: PARTIAL and CONTEXT exactly, UPDATE as the same net additions and removals
 * per search (Dovecot sends a search's removals and additions on separate lines, around the
 * EXPUNGE and EXISTS; Postern sends one line after them).
 */
import assert from "node:assert/strict";
import { describeRun, RawImap, runPython } from "../_support/imap_clients.ts";
import { type RunningPostern, startPostern } from "../_support/postern.ts";
import { dovecotAvailable, startDovecot } from "../_support/dovecot.ts";
import { ensureDevPki } from "../../server/cli/dev_pki.ts";

const USER = { name: "alice", password: "context-pw" };
const DIFF_USER = { name: "dora", password: "dora-pw" };

let shared: Promise<RunningPostern> | null = null;
function postern(): Promise<RunningPostern> {
  shared ??= startPostern({ users: [USER, DIFF_USER] });
  return shared;
}

const PYTHON = String.raw`
import imaplib, ssl, sys
port, ca, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
def ok(r, what):
    assert r[0] == "OK", (what, r)
    return r[1]
A = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=ctx)
B = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=ctx)
ok(A.login("alice", password), "login a")
ok(B.login("alice", password), "login b")
caps = ok(A.capability(), "capability")[0].decode().split()
assert "CONTEXT=SEARCH" in caps and "CONTEXT=SORT" in caps, caps
for s in [b"Cherry", b"Apple", b"Banana"]:
    ok(B.append("INBOX", None, None, b"Subject: " + s + b"\r\n\r\nx\r\n"), "append")
ok(A.select("INBOX"), "select a")
ok(B.select("INBOX"), "select b")
typ, data = A._simple_command("SEARCH", "RETURN", "(PARTIAL 2:3)", "ALL")
print("partial", A._untagged_response(typ, data, "ESEARCH")[1][-1].decode())
typ, data = A._simple_command("UID", "SORT", "RETURN", "(PARTIAL 1:2)", "(SUBJECT)", "UTF-8", "ALL")
print("sort", A._untagged_response(typ, data, "ESEARCH")[1][-1].decode())
ok(A._simple_command("UID", "SEARCH", "RETURN", "(UPDATE)", "UNSEEN"), "update search")
ok(A._simple_command("UID", "SORT", "RETURN", "(UPDATE)", "(SUBJECT)", "UTF-8", "ALL"), "update sort")
A.untagged_responses.clear()
ok(B.store("1", "+FLAGS", "(\\Seen)"), "store")
ok(B.append("INBOX", None, None, b"Subject: Avocado\r\n\r\nx\r\n"), "append 4")
ok(A.noop(), "noop")
for line in sorted(A.untagged_responses.get("ESEARCH", []), key=lambda l: l.split(b")", 1)[1]):
    print("update", line.decode())
A.logout()
B.logout()
print("done")
`;

Deno.test({
  name: "Python imaplib reads PARTIAL and the ADDTO and REMOVEFROM another connection causes",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const p = await postern();
    const r = await runPython(PYTHON, [String(p.implicitPort), p.caPath, USER.password]);
    assert.equal(r.code, 0, describeRun(r));
    const out = r.stdout.trim().split("\n").map((l) => l.replace(/"[A-Z]+\d+"/, '"<tag>"'));
    assert.deepEqual(out, [
      'partial (TAG "<tag>") PARTIAL (2:3 2:3)',
      'sort (TAG "<tag>") UID PARTIAL (1:2 2:3)',
      // Apple 2, Avocado 4, Banana 3, Cherry 1: Avocado goes second.
      'update (TAG "<tag>") UID ADDTO (2 4)',
      'update (TAG "<tag>") UID REMOVEFROM (0 1) ADDTO (0 4)',
      "done",
    ]);
  },
});

/** Steps on connection 0 (the searcher) or 1 (the changer); `*` marks a compared answer. */
const STEPS: readonly [number, string, boolean][] = [
  [0, "SEARCH RETURN (PARTIAL 2:3) ALL", true],
  [0, "UID SEARCH RETURN (PARTIAL 3:1 COUNT) ALL", true],
  [0, "SEARCH RETURN (PARTIAL 5:9) ALL", true],
  [0, "SORT RETURN (PARTIAL 1:2) (SUBJECT) UTF-8 ALL", true],
  [0, "SEARCH RETURN (CONTEXT) ALL", true],
  [0, "SEARCH RETURN (PARTIAL 1:2 ALL) ALL", true],
  [0, "SEARCH RETURN (PARTIAL 0:2) ALL", true],
  [0, "UID SEARCH RETURN (UPDATE) UNSEEN", true],
  [0, "UID SEARCH RETURN (CONTEXT UPDATE COUNT) ALL", true],
  [0, "SEARCH RETURN (UPDATE) UNDELETED", true],
  [1, "STORE 1 +FLAGS (\\Seen)", false],
  [1, "APPEND", false],
  [1, "STORE 2 +FLAGS (\\Deleted)", false],
  [1, "EXPUNGE", false],
  [0, "NOOP", true],
  [0, 'CANCELUPDATE "t10"', true],
  [1, "APPEND", false],
  [0, "NOOP", true],
];

/** Per tag, the UIDs or numbers added and removed by the ESEARCH updates of one answer. */
function netUpdates(lines: readonly string[]): Record<string, { add: string[]; remove: string[] }> {
  const out: Record<string, { add: Set<string>; remove: Set<string> }> = {};
  for (const l of lines) {
    const m = /^\* ESEARCH \(TAG "([^"]+)"\)(?: UID)?((?: (?:ADDTO|REMOVEFROM) \([^)]*\))+)$/.exec(
      l,
    );
    if (m === null) continue;
    const entry = out[m[1]!] ??= { add: new Set(), remove: new Set() };
    for (const part of m[2]!.matchAll(/(ADDTO|REMOVEFROM) \(([^)]*)\)/g)) {
      const words = part[2]!.split(" ");
      for (let i = 1; i < words.length; i += 2) {
        for (const n of expand(words[i]!)) {
          if (part[1] === "ADDTO") entry.add.add(n);
          else if (!entry.add.delete(n)) entry.remove.add(n);
        }
      }
    }
  }
  return Object.fromEntries(
    Object.entries(out).map((
      [t, e],
    ) => [t, { add: [...e.add].sort(), remove: [...e.remove].sort() }]),
  );
}

function expand(set: string): string[] {
  return set.split(",").flatMap((r) => {
    const [a, b] = r.split(":").map(Number);
    if (b === undefined) return [String(a)];
    const out: string[] = [];
    for (let n = Math.min(a!, b); n <= Math.max(a!, b); n++) out.push(String(n));
    return out;
  });
}

Deno.test({
  name: "PARTIAL, CONTEXT and SEARCH UPDATE answer like Dovecot's CONTEXT=SEARCH",
  ignore: !dovecotAvailable(),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const p = await postern();
    const pki = await ensureDevPki(p.certsDir);
    const dovecot = await startDovecot({
      user: DIFF_USER.name,
      password: DIFF_USER.password,
      certificatePath: pki.serverCertificate,
      keyPath: pki.serverKey,
      maxConnections: 4,
    });
    try {
      const results: unknown[][] = [];
      for (const port of [p.implicitPort, dovecot.port]) {
        const conns = [await RawImap.tls(port, p.caPem), await RawImap.tls(port, p.caPem)];
        for (const c of conns) {
          await c.greeting();
          assert.equal(
            (await c.command(`LOGIN ${DIFF_USER.name} ${DIFF_USER.password}`)).status,
            "OK",
          );
        }
        let n = 0;
        const append = async () => {
          const m = `Subject: m${n++}\r\n\r\nx\r\n`;
          assert.equal(
            (await conns[1]!.command(`APPEND INBOX {${m.length}+}\r\n${m}`)).status,
            "OK",
          );
        };
        for (let i = 0; i < 3; i++) await append();
        for (const c of conns) assert.equal((await c.command("SELECT INBOX")).status, "OK");
        const out: unknown[] = [];
        for (const [c, cmd, compared] of STEPS) {
          if (cmd === "APPEND") {
            await append();
            continue;
          }
          const r = await conns[c]!.command(cmd);
          if (!compared) continue;
          const lines = r.untagged.map((u) => u.text);
          const updates = netUpdates(lines);
          const rest = lines.filter((l) =>
            !/^\* ESEARCH .*(ADDTO|REMOVEFROM)/.test(l) && !/ (EXPUNGE|EXISTS|RECENT|FETCH)/.test(l)
          );
          out.push({ cmd, status: r.status, rest, updates });
        }
        results.push(out);
        for (const c of conns) await c.command("LOGOUT");
      }
      for (const [i, [, cmd]] of STEPS.filter(([, , compared]) => compared).entries()) {
        assert.deepEqual(results[0]![i], results[1]![i], cmd);
      }
    } finally {
      await dovecot.stop();
    }
  },
});

Deno.test({
  name: "the shared Postern stops",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    if (shared !== null) await (await shared).stop();
  },
});
