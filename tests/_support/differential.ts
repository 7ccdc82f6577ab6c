/**
 * The set-up every Dovecot differential test shares: Postern and a throwaway Dovecot with the
 * same user (alice/pw) and the same dev-CA certificate, logged-in raw sessions to both, and
 * the fixture corpus of tests/fixtures/mail. `withPair` stops both servers however the test ends.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { ensureDevPki } from "../../server/cli/dev_pki.ts";
import { type DovecotOptions, type RunningDovecot, startDovecot } from "./dovecot.ts";
import { RawImap } from "./imap_clients.ts";
import { type RunningPostern, startPostern } from "./postern.ts";

/** One server of the pair, with a name for messages. */
export interface Side {
  name: "postern" | "dovecot";
  imap: RawImap;
}

export interface Pair {
  postern: RunningPostern;
  dovecot: RunningDovecot;
  /** A new logged-in session to `port`. */
  session(port: number): Promise<RawImap>;
  /** One logged-in session to each server, Postern first; closed when the pair stops. */
  sides(): Promise<Side[]>;
}

type PairOptions = Pick<DovecotOptions, "maxConnections" | "extraConfig">;

export async function withPair(options: PairOptions, fn: (pair: Pair) => Promise<void>) {
  const postern = await startPostern({ users: [{ name: "alice", password: "pw" }] });
  const opened: RawImap[] = [];
  let dovecot: RunningDovecot | undefined;
  try {
    const pki = await ensureDevPki(postern.certsDir);
    dovecot = await startDovecot({
      user: "alice",
      password: "pw",
      certificatePath: pki.serverCertificate,
      keyPath: pki.serverKey,
      ...options,
    });
    const session = async (port: number) => {
      const imap = await RawImap.tls(port, postern.caPem);
      opened.push(imap);
      await imap.greeting();
      const login = await imap.command("LOGIN alice pw");
      assert.equal(login.status, "OK", `port ${port}: ${login.tagged}`);
      return imap;
    };
    const d = dovecot;
    await fn({
      postern,
      dovecot: d,
      session,
      sides: async () => [
        { name: "postern", imap: await session(postern.implicitPort) },
        { name: "dovecot", imap: await session(d.port) },
      ],
    });
  } finally {
    for (const imap of opened) await imap.close();
    await dovecot?.stop();
    await postern.stop();
  }
}

const FIXTURES = fileURLToPath(new URL("../fixtures/mail/", import.meta.url));

/** The fixture messages in name order, then `extra` encoded. */
export async function fixtureCorpus(extra: Iterable<string> = []): Promise<Uint8Array[]> {
  const names = [...Deno.readDirSync(FIXTURES)].map((e) => e.name).filter((n) => n.endsWith(".eml"))
    .sort();
  const out: Uint8Array[] = [];
  for (const n of names) out.push(await Deno.readFile(FIXTURES + n));
  const enc = new TextEncoder();
  for (const m of extra) out.push(enc.encode(m));
  return out;
}

/**
 * Fails on a difference not in `listed`, and on a listed one that no longer differs (a stale
 * entry). `diffs` maps each differing step to its report.
 */
export function assertOnlyListed(diffs: Map<string, string>, listed: Iterable<string>): void {
  const report = [...diffs].map(([k, v]) => `${k}\n  ${v}`).join("\n");
  if (Deno.env.get("DIFF_REPORT")) console.log(report);
  const expected = new Set(listed);
  const unexpected = [...diffs.keys()].filter((k) => !expected.has(k));
  const stale = [...expected].filter((k) => !diffs.has(k));
  assert.deepEqual(unexpected, [], `Unexpected differences:\n${report}`);
  assert.deepEqual(stale, [], "Listed differences that no longer differ");
}
