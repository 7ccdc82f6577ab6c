/**
 * Differential SORT, ESORT and THREAD test against Dovecot (RFC 5256, RFC 5267, RFC 5957): a
 * throwaway Dovecot (tests/_support/dovecot.ts) and Postern receive the same messages, the
 * fixture corpus of tests/fixtures/mail plus 1,000 generated messages in reply chains (Re:,
 * Fwd:, [list] blobs, (fwd) trailers, truncated References, In-Reply-To only, missing and
 * duplicate Message-IDs, several time zones, missing Date headers, display names and encoded
 * words), with the same internal dates. Every command below runs on both and the answers are
 * compared verbatim. Deliberate differences are listed in DIFFERENCES with their reasons; a
 * listed command that agrees fails the test (stale entry). With POSTERN_DIFF_DUMP set to a
 * directory, both answers to each command are written there. Skipped, with a message, when
 * Dovecot is not installed or cannot be started (not root).
 */
import assert from "node:assert/strict";
import { dovecotAvailable } from "../_support/dovecot.ts";
import { assertOnlyListed, fixtureCorpus, type Side, withPair } from "../_support/differential.ts";

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

/** A small deterministic generator (mulberry32), so both servers and every run agree. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function rfc5322Date(ms: number, zoneMinutes: number): string {
  const d = new Date(ms + zoneMinutes * 60_000);
  const p = (n: number) => String(n).padStart(2, "0");
  const sign = zoneMinutes < 0 ? "-" : "+";
  const z = Math.abs(zoneMinutes);
  return `${DAYS[d.getUTCDay()]}, ${d.getUTCDate()} ${
    MONTHS[d.getUTCMonth()]
  } ${d.getUTCFullYear()} ` +
    `${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} ${sign}${
      p(Math.floor(z / 60))
    }${p(z % 60)}`;
}

const TOPICS = [
  "Budget 2027",
  "Lunch on Friday",
  "Release notes",
  "server migration",
  "Quarterly review",
  "Holiday plans",
  "Bug 4711: crash on start",
  "=?utf-8?Q?=C3=9Cbersicht_M=C3=A4rz?=",
  "Printer",
  "[ann] Office move",
];
const PEOPLE = [
  "Alice Example <alice@example.org>",
  "bob@example.net",
  '"Carol, C." <carol@example.com>',
  "=?utf-8?Q?J=C3=BCrgen?= <juergen@example.de>",
  "Dave <dave@example.com>",
  "erin@example.com",
  "Frank Zappa <frank@example.com>",
  "<grace@example.com>",
];
const PREFIXES = ["Re: ", "RE: ", "Re[2]: ", "Fwd: ", "FW: ", "[list] Re: ", "Re: Re: ", "re:"];

/** 1,000 messages in reply chains; `extra` headers vary so that every sort key has work. */
function generate(count: number): string[] {
  const rnd = random(18);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const out: string[] = [];
  const threads: { topic: string; ids: string[] }[] = [];
  const base = Date.UTC(2025, 0, 1);
  for (let i = 0; i < count; i++) {
    const lines: string[] = [];
    const id = `g${i}@gen.example`;
    let subject: string;
    const r = rnd();
    if (threads.length === 0 || r < 0.25) {
      const topic = pick(TOPICS) + (rnd() < 0.3 ? ` #${Math.floor(rnd() * 20)}` : "");
      threads.push({ topic, ids: [id] });
      subject = topic;
    } else {
      const t = pick(threads);
      const parentIndex = Math.floor(rnd() * t.ids.length);
      const chain = t.ids.slice(0, parentIndex + 1);
      subject = rnd() < 0.1
        ? `[Fwd: ${t.topic}]`
        : rnd() < 0.1
        ? `${t.topic} (fwd)`
        : pick(PREFIXES) + t.topic;
      const style = rnd();
      if (style < 0.6) lines.push(`References: ${chain.map((x) => `<${x}>`).join(" ")}`);
      else if (style < 0.75) lines.push(`References: <${chain[chain.length - 1]}>`);
      else if (style < 0.9) lines.push(`In-Reply-To: <${chain[chain.length - 1]}>`);
      else if (style < 0.95) lines.push(`References: <lost${i}@gen.example> <${chain[0]}>`);
      t.ids.push(id);
    }
    if (rnd() < 0.03) subject = "";
    lines.push(`Subject: ${subject}`);
    lines.push(`From: ${pick(PEOPLE)}`);
    lines.push(`To: ${pick(PEOPLE)}${rnd() < 0.3 ? ", " + pick(PEOPLE) : ""}`);
    if (rnd() < 0.4) lines.push(`Cc: ${pick(PEOPLE)}`);
    const sent = base + Math.floor(rnd() * 400) * 3_600_000 + Math.floor(rnd() * 60) * 1000;
    if (rnd() > 0.03) lines.push(`Date: ${rfc5322Date(sent, pick([0, 60, -300, 330, 540]))}`);
    const idRoll = rnd();
    if (idRoll > 0.04) lines.push(`Message-ID: <${idRoll < 0.06 ? "dup@gen.example" : id}>`);
    out.push(lines.join("\r\n") + "\r\n\r\n" + "text ".repeat(1 + Math.floor(rnd() * 50)) + "\r\n");
  }
  return out;
}

/** Internal date of the i-th message: a few a day, so that ARRIVAL has ties to break. */
function dateFor(i: number): string {
  const d = new Date(Date.UTC(2024, 0, 1) + Math.floor(i / 3) * 86_400_000 + (i % 2) * 1000);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${String(d.getUTCDate()).padStart(2, " ")}-${
    MONTHS[d.getUTCMonth()]
  }-${d.getUTCFullYear()} ` +
    `${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

const COMMANDS: readonly string[] = [
  "SORT (ARRIVAL) UTF-8 ALL",
  "SORT (REVERSE ARRIVAL) UTF-8 ALL",
  "SORT (DATE) UTF-8 ALL",
  "SORT (REVERSE DATE) UTF-8 ALL",
  "SORT (SIZE) UTF-8 ALL",
  "FETCH 35:36 (RFC822.SIZE)",
  "SORT (SUBJECT) UTF-8 ALL",
  "SORT (SUBJECT DATE) UTF-8 ALL",
  "SORT (REVERSE SUBJECT REVERSE DATE) UTF-8 ALL",
  "SORT (FROM) UTF-8 ALL",
  "SORT (TO) UTF-8 ALL",
  "SORT (CC) UTF-8 ALL",
  "SORT (FROM SUBJECT) UTF-8 ALL",
  "SORT (DISPLAYFROM) UTF-8 ALL",
  "SORT (DISPLAYTO) UTF-8 ALL",
  "SORT (REVERSE DISPLAYFROM SIZE) UTF-8 ALL",
  "UID SORT (DATE) UTF-8 UID 100:600",
  "UID SORT (SUBJECT) UTF-8 SUBJECT budget",
  "SORT (DATE) US-ASCII FROM alice",
  "SORT RETURN (MIN MAX COUNT) (DATE) UTF-8 ALL",
  "UID SORT RETURN (ALL) (SUBJECT) UTF-8 SUBJECT lunch",
  "SORT RETURN () (REVERSE SIZE) UTF-8 1:50",
  "THREAD ORDEREDSUBJECT UTF-8 ALL",
  "UID THREAD ORDEREDSUBJECT UTF-8 SUBJECT release",
  "THREAD REFERENCES UTF-8 ALL",
  "UID THREAD REFERENCES UTF-8 ALL",
  "THREAD REFERENCES UTF-8 UID 1:300",
  "THREAD REFERENCES UTF-8 SUBJECT printer",
];

/**
 * Deliberate differences from Dovecot 2.3, by command, with the reason. Every listed command
 * must still differ.
 */
const BARE_LF = "35-bare-lf-plain, 36-bare-lf-multipart and 78-rfc822-bare-lf-inside end " +
  "their lines with bare LF. Postern stores the octets as given and RFC822.SIZE counts them; " +
  "Dovecot counts each LF as CRLF, so these messages are larger there and SIZE orders them " +
  "differently. The FETCH RFC822.SIZE line shows the cause";
const DIFFERENCES: readonly { command: string; reason: string }[] = [
  { command: "SORT (SIZE) UTF-8 ALL", reason: BARE_LF },
  { command: "FETCH 35:36 (RFC822.SIZE)", reason: BARE_LF },
  { command: "SORT (REVERSE DISPLAYFROM SIZE) UTF-8 ALL", reason: BARE_LF },
  { command: "SORT RETURN () (REVERSE SIZE) UTF-8 1:50", reason: BARE_LF },
];

/** The untagged answer of a command with its tag removed, or the failed status. */
async function answer(s: Side, command: string): Promise<string> {
  const r = await s.imap.command(command, undefined, 60_000);
  if (r.status !== "OK") return `${r.status} ${r.tagged}`;
  return r.untagged.map((u) => u.text.replace(/\(TAG "[^"]*"\) ?/, "")).join("\n");
}

const available = dovecotAvailable();
if (!available) {
  console.warn("dovecot_sort_diff_test: skipped, Dovecot is not installed (or not root)");
}

Deno.test({
  name: "SORT, ESORT and THREAD answer like Dovecot over fixtures and 1,000 reply chains",
  ignore: !available,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withPair({ maxConnections: 2 }, async ({ sides }) => {
      const servers = await sides();
      const corpus = await fixtureCorpus(generate(1000));
      await Promise.all(servers.map(async (s) => {
        for (const [k, raw] of corpus.entries()) {
          const r = await s.imap.command(`APPEND INBOX "${dateFor(k + 1)}"`, raw);
          assert.equal(r.status, "OK", `${s.name} APPEND #${k + 1}: ${r.tagged}`);
        }
        assert.equal((await s.imap.command("SELECT INBOX")).status, "OK");
      }));
      const [p, d] = servers as [Side, Side];
      const diffs = new Map<string, string>();
      const dump = Deno.env.get("POSTERN_DIFF_DUMP");
      for (const [i, command] of COMMANDS.entries()) {
        const [ours, theirs] = [await answer(p, command), await answer(d, command)];
        if (dump !== undefined) {
          await Deno.writeTextFile(`${dump}/${i}.postern`, `${command}\n${ours}\n`);
          await Deno.writeTextFile(`${dump}/${i}.dovecot`, `${command}\n${theirs}\n`);
        }
        if (ours !== theirs || !ours.startsWith("* ")) {
          const at = [...ours].findIndex((ch, i) => ch !== theirs[i]);
          diffs.set(
            command,
            `first difference at ${at}\n  postern: …${ours.slice(Math.max(0, at - 60), at + 80)}` +
              `\n  dovecot: …${theirs.slice(Math.max(0, at - 60), at + 80)}`,
          );
        }
      }
      assertOnlyListed(diffs, DIFFERENCES.map((x) => x.command));
    });
  },
});
