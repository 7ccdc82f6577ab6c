/**
 * SORT, ESORT and THREAD (RFC 5256, RFC 5267) at scale: Postern and Dovecot hold the same
 * corpus (bench/imap_bench.ts's messages, with Re: subjects and reply headers), and each
 * command runs twice on one selected connection, first and second time (Dovecot fills its
 * index cache on the first), timed at the client. Postern runs in this process (started as
 * the tests start it); Dovecot in its own. Run: `deno run -A bench/main.ts --only sort`, or
 * this file directly with `--messages N`.
 */
import { dovecotAvailable, startDovecot } from "../tests/_support/dovecot.ts";
import { startPostern } from "../tests/_support/postern.ts";
import { ensureDevPki } from "../server/cli/dev_pki.ts";
import { ImapClient, type ImapConnectOptions } from "./_imap_client.ts";
import { appendCorpus, PASSWORD, USER } from "./imap_bench.ts";

/** The commands compared, as a client sends them after SELECT INBOX. */
export const SORT_COMMANDS: readonly string[] = [
  "UID SORT (REVERSE DATE) UTF-8 ALL",
  "UID SORT (SUBJECT) UTF-8 ALL",
  "UID SORT (REVERSE ARRIVAL) UTF-8 ALL",
  "UID SORT (FROM DATE) UTF-8 ALL",
  "UID SORT (DISPLAYFROM) UTF-8 ALL",
  "UID SORT RETURN (COUNT MIN MAX) (DATE) UTF-8 UNSEEN",
  "UID THREAD REFERENCES UTF-8 ALL",
  "UID THREAD ORDEREDSUBJECT UTF-8 ALL",
];

/** Milliseconds of the first and second run of each command. */
export interface SortTimes {
  readonly first: number;
  readonly second: number;
}

export interface SortBenchResult {
  readonly messages: number;
  readonly postern: ReadonlyMap<string, SortTimes>;
  readonly dovecot: ReadonlyMap<string, SortTimes> | null;
}

async function measure(target: ImapConnectOptions): Promise<Map<string, SortTimes>> {
  const c = await ImapClient.login(target, USER, PASSWORD);
  try {
    await c.ok("SELECT INBOX", false);
    const out = new Map<string, SortTimes>();
    for (const command of SORT_COMMANDS) {
      const times: number[] = [];
      for (let run = 0; run < 2; run++) {
        const t0 = performance.now();
        await c.ok(command, false);
        times.push(performance.now() - t0);
      }
      out.set(command, { first: times[0]!, second: times[1]! });
    }
    return out;
  } finally {
    await c.logout();
  }
}

/** Loads `messages` into both servers and times every command of SORT_COMMANDS. */
export async function benchSort(
  messages: number,
  log: (s: string) => void = () => {},
): Promise<SortBenchResult> {
  const postern = await startPostern({ users: [{ name: USER, password: PASSWORD }] });
  let dovecot: Awaited<ReturnType<typeof startDovecot>> | null = null;
  try {
    const pki = await ensureDevPki(postern.certsDir);
    const pTarget = { port: postern.implicitPort, caPem: postern.caPem };
    log(`Postern: appending ${messages}`);
    await appendCorpus(pTarget, messages, log);
    const ours = await measure(pTarget);
    let theirs: Map<string, SortTimes> | null = null;
    if (dovecotAvailable()) {
      dovecot = await startDovecot({
        user: USER,
        password: PASSWORD,
        certificatePath: pki.serverCertificate,
        keyPath: pki.serverKey,
        maxConnections: 4,
        format: "mdbox",
      });
      const dTarget = { port: dovecot.port, caPem: postern.caPem };
      log(`Dovecot: appending ${messages}`);
      await appendCorpus(dTarget, messages, log);
      theirs = await measure(dTarget);
    }
    return { messages, postern: ours, dovecot: theirs };
  } finally {
    await dovecot?.stop();
    await postern.stop();
  }
}

/** The figures as a table: first and second run, Postern and Dovecot, and their ratios. */
export function formatSort(r: SortBenchResult): string {
  const ms = (x: number | undefined) => (x === undefined ? "-" : x.toFixed(0)).padStart(8);
  const ratio = (a: number, b: number | undefined) =>
    (b === undefined ? "-" : (a / b).toFixed(2) + "x").padStart(7);
  const lines = [
    `${r.messages} messages, ms at the client (implicit TLS on 127.0.0.1); ` +
    "1st = first run, 2nd = second run",
    `${"command".padEnd(52)} ${"ours 1st".padStart(8)} ${"dov 1st".padStart(8)} ${
      "ratio".padStart(7)
    } ${"ours 2nd".padStart(8)} ${"dov 2nd".padStart(8)} ${"ratio".padStart(7)}`,
  ];
  for (const [command, t] of r.postern) {
    const d = r.dovecot?.get(command);
    lines.push(
      `${command.padEnd(52)} ${ms(t.first)} ${ms(d?.first)} ${ratio(t.first, d?.first)} ${
        ms(t.second)
      } ${ms(d?.second)} ${ratio(t.second, d?.second)}`,
    );
  }
  if (r.dovecot === null) lines.push("Dovecot not available: no reference figures");
  return lines.join("\n");
}

if (import.meta.main) {
  const i = Deno.args.indexOf("--messages");
  const n = i >= 0 ? Number(Deno.args[i + 1]) : 100_000;
  console.log(formatSort(await benchSort(n, (s) => console.error(s))));
}
