/**
 * Scripted multi-session differential against Dovecot: the same scripts, each with two or
 * three connections interleaved (APPEND/COPY/MOVE/STORE/EXPUNGE in one, NOOP/IDLE/FETCH/SEARCH
 * in another), run against Postern (startPostern) and a throwaway Dovecot
 * (tests/_support/dovecot.ts, "/" as hierarchy separator) over implicit TLS, and every step's
 * responses are compared after normalisation. The scripts cover the command groups of RFC 3501
 * and 9051 (mailbox commands, APPEND, FETCH, STORE, SEARCH, COPY, EXPUNGE, CLOSE, UNSELECT,
 * IDLE), RFC 4315 (UIDPLUS), RFC 6851 (MOVE), RFC 7162 (CONDSTORE and QRESYNC) and RFC 5258
 * (LIST-EXTENDED, with LIST-STATUS), plus the items of issue 11.
 *
 * Normalisation: tags and human-readable texts are dropped (status and response code kept);
 * UIDVALIDITY, MODSEQ values and INTERNALDATE become placeholders (the servers number them
 * differently; monotonicity is the state checker's job); FETCH items, flag lists and the
 * untagged responses of one step are sorted; CAPABILITY data is ignored. Deliberate
 * differences are listed in DIFFERENCES with their reasons; a listed step that agrees fails
 * the test (stale entry), as in dovecot_search_diff_test.ts.
 * Skipped, with a message, when Dovecot is not installed or cannot be started.
 */
import assert from "node:assert/strict";
import { dovecotAvailable } from "../_support/dovecot.ts";
import { assertOnlyListed, withPair } from "../_support/differential.ts";
import { RawImap } from "../_support/imap_clients.ts";

const enc = new TextEncoder();

/** One step: a command on connection `c`, or the start or end of IDLE there. */
interface Step {
  readonly c: number;
  readonly cmd?: string;
  /** Message literal of an APPEND (sent as a LITERAL+ literal). */
  readonly literal?: string;
  readonly idle?: "start" | "done";
  /** Saves the last HIGHESTMODSEQ seen under this name, for `$NAME` in later commands. */
  readonly save?: string;
}

interface Script {
  readonly name: string;
  readonly conns: number;
  readonly steps: readonly Step[];
}

function msg(subject: string, extra = "", body = "Hello there.\r\n"): string {
  return `From: Alice <alice@example.org>\r\nTo: Bob <bob@example.net>\r\nSubject: ${subject}\r\n` +
    `Date: Tue, 7 Mar 2023 10:00:00 +0000\r\nMessage-ID: <${subject}@example.org>\r\n${extra}\r\n` +
    body;
}

const MULTIPART = "From: Carol <carol@example.com>\r\nTo: a@b.c\r\nSubject: parts\r\n" +
  "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=xx\r\n\r\n--xx\r\n" +
  "Content-Type: text/plain; charset=us-ascii\r\n\r\nfirst part\r\n--xx\r\n" +
  "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
  "AAECAwQF\r\n--xx--\r\n";

const SCRIPTS: readonly Script[] = [
  {
    name: "RFC 3501/9051 mailbox commands",
    conns: 1,
    steps: [
      { c: 0, cmd: "CREATE $P" },
      // Postern creates missing superior names as mailboxes (RFC 9051, 6.3.4 SHOULD); Dovecot
      // leaves them \Noselect. Creating them first compares the rest.
      { c: 0, cmd: "CREATE $P/sub" },
      { c: 0, cmd: "CREATE $P/sub/leaf" },
      { c: 0, cmd: 'LIST "" $P*' },
      { c: 0, cmd: 'LIST "" $P/%' },
      { c: 0, cmd: "LIST $P/ %" },
      { c: 0, cmd: 'LIST "" ""' },
      { c: 0, cmd: "SUBSCRIBE $P/sub/leaf" },
      { c: 0, cmd: 'LSUB "" $P*' },
      { c: 0, cmd: 'LSUB "" $P/%' },
      { c: 0, cmd: "STATUS $P (MESSAGES RECENT UIDNEXT UNSEEN)" },
      { c: 0, cmd: "RENAME $P/sub $P/moved" },
      { c: 0, cmd: 'LIST "" $P*' },
      { c: 0, cmd: "RENAME $P/none $P/other" },
      { c: 0, cmd: "DELETE $P/moved/leaf" },
      { c: 0, cmd: "DELETE $P/nonexistent" },
      { c: 0, cmd: "CREATE $P/moved" },
      { c: 0, cmd: "SELECT $P/none" },
      { c: 0, cmd: "EXAMINE $P" },
      { c: 0, cmd: "CHECK" },
      { c: 0, cmd: "CLOSE" },
      { c: 0, cmd: "FETCH 1 FLAGS" },
      { c: 0, cmd: "UNSUBSCRIBE $P/sub/leaf" },
      { c: 0, cmd: 'LSUB "" $P*' },
    ],
  },
  {
    name: "RFC 3501/9051 messages across two sessions",
    conns: 2,
    steps: [
      { c: 0, cmd: "CREATE $P" },
      { c: 1, cmd: "SELECT $P" },
      { c: 0, cmd: 'APPEND $P (\\Seen) "07-Mar-2023 10:00:00 +0000"', literal: msg("one") },
      { c: 0, cmd: "APPEND $P ()", literal: MULTIPART },
      { c: 0, cmd: "APPEND $P ($kw)", literal: msg("three", "Cc: group:;, g2: (x) ;\r\n") },
      { c: 1, cmd: "NOOP" },
      { c: 0, cmd: "SELECT $P" },
      { c: 0, cmd: "FETCH 1:* (UID FLAGS RFC822.SIZE)" },
      { c: 0, cmd: "FETCH 1 (INTERNALDATE ENVELOPE)" },
      { c: 0, cmd: "FETCH 3 ENVELOPE" },
      { c: 0, cmd: "FETCH 2 (BODYSTRUCTURE BODY)" },
      { c: 0, cmd: "FETCH 2 (BODY.PEEK[HEADER.FIELDS (Subject From)] BODY.PEEK[TEXT]<0.20>)" },
      { c: 0, cmd: "FETCH 2 (BODY.PEEK[1] BODY.PEEK[2.MIME] BINARY.SIZE[2] BINARY.SIZE[1])" },
      { c: 0, cmd: "FETCH 2 BODY[1]" },
      { c: 1, cmd: "NOOP" },
      { c: 0, cmd: "STORE 1:2 +FLAGS (\\Flagged)" },
      { c: 0, cmd: "STORE 3 -FLAGS.SILENT ($kw)" },
      { c: 0, cmd: "STORE 2 FLAGS (\\Deleted $new)" },
      { c: 0, cmd: "STORE 1 +FLAGS NIL" },
      { c: 1, cmd: "NOOP" },
      { c: 1, cmd: "SEARCH FLAGGED" },
      { c: 1, cmd: "SEARCH NOT SEEN KEYWORD $new" },
      { c: 1, cmd: "SEARCH RECENT" },
      { c: 1, cmd: "SEARCH NEW" },
      { c: 1, cmd: "SEARCH OLD" },
      { c: 1, cmd: "SEARCH CC g2" },
      { c: 1, cmd: "UID SEARCH RETURN (MIN MAX COUNT) ALL" },
      { c: 0, cmd: "COPY 1:3 $P" },
      { c: 1, cmd: "NOOP" },
      { c: 0, cmd: "EXPUNGE" },
      { c: 1, cmd: "FETCH 1:* (UID FLAGS)" },
      { c: 1, cmd: "NOOP" },
      { c: 1, cmd: "FETCH 1:* (UID FLAGS)" },
      { c: 0, cmd: "UNSELECT" },
      { c: 0, cmd: "STATUS $P (MESSAGES RECENT UIDNEXT UNSEEN)" },
      { c: 1, cmd: "CLOSE" },
      { c: 0, cmd: "STATUS $P (MESSAGES RECENT UNSEEN)" },
    ],
  },
  {
    name: "IDLE while another session changes the mailbox",
    conns: 2,
    steps: [
      { c: 0, cmd: "CREATE $P" },
      { c: 0, cmd: "APPEND $P", literal: msg("i1") },
      { c: 0, cmd: "SELECT $P" },
      { c: 1, cmd: "SELECT $P" },
      { c: 0, idle: "start" },
      { c: 1, cmd: "APPEND $P", literal: msg("i2") },
      { c: 1, cmd: "STORE 1 +FLAGS (\\Answered)" },
      { c: 0, idle: "done" },
      { c: 0, idle: "start" },
      { c: 1, cmd: "STORE 2 +FLAGS.SILENT (\\Deleted $idle)" },
      { c: 1, cmd: "EXPUNGE" },
      { c: 0, idle: "done" },
      { c: 0, cmd: "FETCH 1:* (UID FLAGS)" },
    ],
  },
  {
    name: "RFC 4315 UIDPLUS",
    conns: 2,
    steps: [
      { c: 0, cmd: "CREATE $P" },
      { c: 0, cmd: "CREATE $P/t" },
      { c: 0, cmd: "APPEND $P", literal: msg("u1") },
      { c: 0, cmd: "APPEND $P", literal: msg("u2") },
      { c: 0, cmd: "APPEND $P", literal: msg("u3") },
      { c: 0, cmd: "SELECT $P" },
      { c: 1, cmd: "SELECT $P" },
      { c: 0, cmd: "STORE 1:3 +FLAGS.SILENT (\\Deleted)" },
      { c: 0, cmd: "UID EXPUNGE 2" },
      { c: 1, cmd: "NOOP" },
      { c: 0, cmd: "UID COPY 1:3 $P/t" },
      { c: 0, cmd: "COPY 1 $P/none" },
      { c: 0, cmd: "FETCH 1:* UID" },
      { c: 1, cmd: "UID FETCH 1:* FLAGS" },
      { c: 0, cmd: "APPEND $P/t", literal: msg("u4") },
      { c: 0, cmd: "STATUS $P/t (MESSAGES UIDNEXT RECENT)" },
    ],
  },
  {
    name: "RFC 6851 MOVE",
    conns: 3,
    steps: [
      { c: 0, cmd: "CREATE $P" },
      { c: 0, cmd: "CREATE $P/dest" },
      { c: 0, cmd: "APPEND $P", literal: msg("m1") },
      { c: 0, cmd: "APPEND $P", literal: msg("m2") },
      { c: 0, cmd: "APPEND $P", literal: msg("m3") },
      { c: 0, cmd: "SELECT $P" },
      { c: 1, cmd: "SELECT $P" },
      { c: 2, cmd: "SELECT $P/dest" },
      { c: 0, cmd: "MOVE 2 $P/dest" },
      { c: 1, cmd: "NOOP" },
      { c: 2, cmd: "NOOP" },
      { c: 0, cmd: "UID MOVE 3 $P/dest" },
      { c: 1, cmd: "FETCH 1:* UID" },
      { c: 1, cmd: "NOOP" },
      { c: 2, cmd: "FETCH 1:* (UID FLAGS)" },
      { c: 0, cmd: "MOVE 1 $P/none" },
      { c: 0, cmd: "EXAMINE $P/dest" },
      { c: 0, cmd: "MOVE 1 $P" },
    ],
  },
  {
    name: "RFC 7162 CONDSTORE and QRESYNC",
    conns: 3,
    steps: [
      { c: 0, cmd: "CREATE $P" },
      { c: 0, cmd: "APPEND $P", literal: msg("c1") },
      { c: 0, cmd: "APPEND $P", literal: msg("c2") },
      { c: 0, cmd: "APPEND $P", literal: msg("c3") },
      { c: 0, cmd: "SELECT $P (CONDSTORE)", save: "H0" },
      { c: 0, cmd: "FETCH 1:* (FLAGS MODSEQ)" },
      { c: 0, cmd: "STORE 1 (UNCHANGEDSINCE 0) +FLAGS (\\Seen)" },
      { c: 0, cmd: "STORE 1 (UNCHANGEDSINCE $H0) +FLAGS (\\Seen)" },
      { c: 1, cmd: "SELECT $P" },
      { c: 1, cmd: "FETCH 1 (MODSEQ)", save: "H1" },
      { c: 0, cmd: "STORE 2 +FLAGS ($x)" },
      { c: 1, cmd: "NOOP" },
      { c: 1, cmd: "FETCH 1:* (FLAGS) (CHANGEDSINCE $H1)" },
      { c: 1, cmd: "SEARCH MODSEQ $H1" },
      { c: 1, cmd: "SEARCH RETURN (MIN) 1:3 MODSEQ $H0" },
      { c: 1, cmd: "SEARCH RETURN (MAX COUNT) MODSEQ $H0" },
      { c: 0, cmd: "STORE 3 +FLAGS.SILENT (\\Deleted)" },
      { c: 0, cmd: "EXPUNGE" },
      { c: 1, cmd: "NOOP" },
      { c: 2, cmd: "ENABLE QRESYNC" },
      { c: 2, cmd: "SELECT $P (QRESYNC ($UV $H0))" },
      { c: 2, cmd: "UID FETCH 1:* (FLAGS) (CHANGEDSINCE $H0 VANISHED)" },
      { c: 0, cmd: "STORE 1 +FLAGS.SILENT ($y)" },
      { c: 2, cmd: "NOOP" },
      { c: 0, cmd: "STORE 1 +FLAGS.SILENT (\\Deleted)" },
      { c: 0, cmd: "EXPUNGE" },
      { c: 2, cmd: "NOOP" },
      { c: 2, cmd: "STATUS $P (HIGHESTMODSEQ MESSAGES)" },
    ],
  },
  {
    name: "RFC 5258 LIST-EXTENDED with LIST-STATUS",
    conns: 1,
    steps: [
      { c: 0, cmd: "CREATE $P" },
      { c: 0, cmd: "CREATE $P/a" },
      { c: 0, cmd: "CREATE $P/a/b" },
      { c: 0, cmd: "CREATE $P/c" },
      { c: 0, cmd: "SUBSCRIBE $P/a/b" },
      { c: 0, cmd: "SUBSCRIBE $P/gone" },
      { c: 0, cmd: 'LIST (SUBSCRIBED) "" $P*' },
      { c: 0, cmd: 'LIST (SUBSCRIBED RECURSIVEMATCH) "" $P/%' },
      { c: 0, cmd: 'LIST "" ($P/a $P/c) RETURN (CHILDREN)' },
      { c: 0, cmd: 'LIST "" $P/% RETURN (SUBSCRIBED CHILDREN)' },
      { c: 0, cmd: 'LIST "" $P/% RETURN (STATUS (MESSAGES UIDNEXT))' },
      { c: 0, cmd: 'LIST (REMOTE) "" $P' },
      { c: 0, cmd: 'LIST (RECURSIVEMATCH) "" $P' },
      { c: 0, cmd: 'LSUB "" $P/%' },
      { c: 0, cmd: 'LSUB "" $P/a/%' },
    ],
  },
  {
    name: "RFC 3501/9051 read-only sessions, SEARCHRES, errors and LOGOUT",
    conns: 2,
    steps: [
      { c: 0, cmd: "NAMESPACE" },
      { c: 0, cmd: "APPEND $P/none", literal: msg("x") },
      { c: 0, cmd: "CREATE $P" },
      { c: 0, cmd: "APPEND $P (\\Flagged)", literal: msg("e1") },
      { c: 0, cmd: "APPEND $P", literal: msg("e2") },
      { c: 0, cmd: "EXAMINE $P" },
      { c: 1, cmd: "SELECT $P" },
      { c: 0, cmd: "STORE 1 +FLAGS (\\Seen)" },
      { c: 0, cmd: "EXPUNGE" },
      { c: 0, cmd: "FETCH 2 BODY[TEXT]" },
      { c: 0, cmd: "FETCH 2 FLAGS" },
      { c: 0, cmd: "UID SEARCH RETURN (SAVE) FLAGGED" },
      { c: 0, cmd: "FETCH $ (UID FLAGS)" },
      { c: 0, cmd: "UID SEARCH UID $" },
      { c: 0, cmd: "SEARCH RETURN (ALL COUNT) OR SEEN FLAGGED" },
      { c: 0, cmd: "FETCH 3 FLAGS" },
      { c: 0, cmd: "FETCH 1 BODY.PEEK[9]" },
      { c: 1, cmd: "STORE 2 +FLAGS.SILENT (\\Deleted)" },
      { c: 1, cmd: "EXPUNGE" },
      { c: 0, cmd: "SEARCH ALL" },
      { c: 0, cmd: "NOOP" },
      { c: 0, cmd: "LOGOUT" },
      { c: 1, cmd: "LOGOUT" },
    ],
  },
  {
    name: "Issue 11 items",
    conns: 3,
    steps: [
      { c: 0, cmd: "CREATE $P" },
      { c: 0, cmd: "APPEND $P", literal: msg("r1") },
      { c: 1, cmd: "STATUS $P (RECENT)" },
      { c: 2, cmd: "EXAMINE $P" },
      { c: 1, cmd: "SELECT $P" },
      { c: 0, cmd: "SELECT $P" },
      { c: 1, cmd: "FETCH 1 FLAGS" },
      { c: 0, cmd: "FETCH 1 FLAGS" },
      { c: 2, cmd: "FETCH 1 FLAGS" },
      { c: 1, cmd: "STORE 1 +FLAGS ($keyword1 NIL)" },
      { c: 0, cmd: "NOOP" },
      { c: 2, cmd: "NOOP" },
      {
        c: 1,
        cmd: "APPEND $P ($kw2)",
        literal: 'From: "user-from"@domain.org\r\nTo: Jo <user-to@\r\n domain.org>\r\n' +
          "Cc: =?utf-8?Q?J=C3=BCrgen?= <j@x.de>, team: a@b.c;\r\nSubject: addr\r\n\r\nx\r\n",
      },
      { c: 0, cmd: "NOOP" },
      { c: 1, cmd: "NOOP" },
      { c: 2, cmd: "NOOP" },
      { c: 0, cmd: "SEARCH FROM user-from@domain.org" },
      { c: 0, cmd: "SEARCH TO user-to@domain.org" },
      { c: 0, cmd: 'SEARCH TO "jo <user-to@domain.org>"' },
      { c: 0, cmd: "SEARCH CC team" },
      { c: 0, cmd: "SEARCH FROM alice" },
      { c: 0, cmd: "FETCH 2 ENVELOPE" },
      { c: 0, cmd: "FETCH 1 (MODSEQ)" },
      { c: 0, cmd: "SELECT !#$&'+,-.0123456789:;<=>?@^_`|[}" },
      { c: 0, cmd: 'LIST "" "!#$&\'+,-.0123456789:;<=>?@^_`|[}%*"' },
      { c: 0, cmd: "STATUS &Jjo (MESSAGES)" },
    ],
  },
];

/*
 * Deliberate differences that every step shares, applied by `normalise` (the reason for each):
 * - SELECT and EXAMINE without CONDSTORE/QRESYNC: Postern always sends `OK [HIGHESTMODSEQ]`,
 *   which RFC 7162 (3.1.2.1, and RFC 4551 before it) requires of a server with persistent
 *   mod-sequences; Dovecot sends it only once CONDSTORE is enabled. The line is dropped.
 * - Unsolicited FETCH responses: Postern puts UID in every one (RFC 9051 requires it, IMAP4rev1
 *   clients accept it); Dovecot only under IMAP4rev2 or QRESYNC. UID items are dropped from
 *   FETCH responses of commands that did not ask for UID.
 * - `BODY[HEADER.FIELDS (...)]`: Dovecot upper-cases the field names it echoes, Postern echoes
 *   the client's spelling; header names are case-insensitive, so both are upper-cased.
 * - `NO [NONEXISTENT]` (RFC 5530) for a missing mailbox: Dovecot 2.3 says NO without a code in
 *   some commands. The code is dropped.
 * - Extended LIST without RETURN (CHILDREN): Postern always adds \HasChildren or
 *   \HasNoChildren (RFC 5258, Section 4 allows it), Dovecot only when asked. They are dropped
 *   there; CHILDINFO's tag is compared unquoted (an astring either way).
 * - An empty string may be "" or {0} (Postern sends "", Dovecot {0}); both read as "".
 * - STATUS items are compared sorted: Postern answers in the order asked, Dovecot in its own.
 * - RECENT is sent when the count changes, which each server notices at its own moment within
 *   a step: only the last RECENT of a step is compared (likewise the last FLAGS and
 *   PERMANENTFLAGS, the set a client ends up with).
 * - Order within a step: EXPUNGE may go highest first (Dovecot) or lowest first (Postern), and
 *   FETCH before or after EXPUNGE; sequence numbers in EXPUNGE, FETCH and EXISTS are mapped
 *   back to the numbering at the start of the step before sorting, so only the meaning counts.
 */
/**
 * Deliberate differences from Dovecot 2.3, by `script / step command`, with the reason. Every
 * listed step must still differ.
 */
const PENDING_EXPUNGE = "Messages another session expunged and that are not yet reported here " +
  "are left out, and FETCH ends OK [EXPUNGEISSUED] (RFC 5530); Dovecot still serves them from " +
  "its view. Both keep sequence numbers stable, which is what RFC 9051, Section 7.5.1 asks";
const READ_ONLY = "A change to a mailbox opened with EXAMINE is NO [READ-ONLY] (RFC 5530; " +
  "RFC 9051, 6.3.3: no change to the permanent state); Dovecot ignores it and says OK";

const DIFFERENCES: readonly { step: string; reason: string }[] = [
  {
    step: 'RFC 3501/9051 mailbox commands / 24. [0] LSUB "" $P*',
    reason: "RENAME carries subscriptions to the new names (the store renames them with the " +
      "mailboxes, so a renamed folder stays in a subscription-based client); Dovecot keeps the " +
      "old name subscribed. RFC 9051 leaves it open",
  },
  {
    step: "RFC 3501/9051 messages across two sessions / 31. [1] FETCH 1:* (UID FLAGS)",
    reason: PENDING_EXPUNGE,
  },
  { step: "RFC 6851 MOVE / 13. [1] FETCH 1:* UID", reason: PENDING_EXPUNGE },
  {
    step: "IDLE while another session changes the mailbox / 12. [0] IDLE done",
    reason: "Postern pushes each change during IDLE as it happens (the flag change, then the " +
      "expunge); Dovecot reports the net result at its next check. Both are valid; the final " +
      "state agrees",
  },
  {
    step: "RFC 6851 MOVE / 15. [2] FETCH 1:* (UID FLAGS)",
    reason: "Postern gives \\Recent to the first session that reports a new message (here during " +
      "FETCH); Dovecot claims it only in a full sync (NOOP, IDLE, ...). Exactly one session " +
      "gets it either way (RFC 3501, 2.3.2)",
  },
  {
    step: "RFC 6851 MOVE / 17. [0] EXAMINE $P/dest",
    reason: "Follows from the previous difference: in Postern the other session already claimed " +
      "the moved message's \\Recent, in Dovecot it is still unclaimed",
  },
  { step: "RFC 6851 MOVE / 18. [0] MOVE 1 $P", reason: READ_ONLY },
  {
    step: "RFC 7162 CONDSTORE and QRESYNC / 28. [2] STATUS $P (HIGHESTMODSEQ MESSAGES)",
    reason: "STATUS of the selected mailbox: Dovecot adds OK [CLIENTBUG] (RFC 9051, 6.3.11 says " +
      "clients SHOULD NOT); Postern just answers",
  },
  {
    step: "RFC 3501/9051 read-only sessions, SEARCHRES, errors and LOGOUT / 8. [0] STORE 1 " +
      "+FLAGS (\\Seen)",
    reason: READ_ONLY,
  },
  {
    step: "RFC 3501/9051 read-only sessions, SEARCHRES, errors and LOGOUT / 9. [0] EXPUNGE",
    reason: READ_ONLY,
  },
  {
    step: "RFC 3501/9051 read-only sessions, SEARCHRES, errors and LOGOUT / 20. [0] SEARCH ALL",
    reason: PENDING_EXPUNGE + " (for SEARCH, without a response code)",
  },
];

/** Reads one IMAP value from `s` at `i` (atom, quoted, literal or list); returns its end. */
function valueEnd(s: string, i: number): number {
  if (s[i] === '"') {
    let j = i + 1;
    while (j < s.length && s[j] !== '"') j += s[j] === "\\" ? 2 : 1;
    return j + 1;
  }
  const lit = /^~?\{(\d+)\}\r\n/.exec(s.slice(i, i + 20));
  if (lit) return i + lit[0].length + Number(lit[1]);
  if (s[i] === "(") {
    let j = i + 1;
    while (j < s.length && s[j] !== ")") {
      if (s[j] === " ") j++;
      else j = valueEnd(s, j);
    }
    return j + 1;
  }
  let j = i;
  while (j < s.length && s[j] !== " " && s[j] !== ")") {
    if (s[j] === "[") j = s.indexOf("]", j) + 1;
    else j++;
  }
  return j;
}

function sortFlagList(list: string): string {
  return list.split(" ").filter((f) => f !== "").map((f) => f.toLowerCase()).sort().join(" ");
}

/** Sorts the items of a FETCH response by name, and the flags in FLAGS. */
function normaliseFetch(seq: string, body: string): string {
  const items: string[] = [];
  let i = 0;
  while (i < body.length) {
    while (body[i] === " ") i++;
    if (i >= body.length) break;
    const nameEnd = valueEnd(body, i);
    const name = body.slice(i, nameEnd);
    i = nameEnd + 1;
    const end = valueEnd(body, i);
    let value = body.slice(i, end);
    i = end;
    if (name === "FLAGS") value = `(${sortFlagList(value.slice(1, -1))})`;
    if (name === "MODSEQ") value = "(<m>)";
    if (name === "INTERNALDATE") value = "<date>";
    items.push(`${name} ${value}`);
  }
  return `* ${seq} FETCH (${items.sort().join(" ")})`;
}

/** Normalises one response line of `command` (see the shared normalisations above DIFFERENCES). */
function normalise(line: string, tagged: boolean, command: string): string | null {
  let s = line;
  if (tagged) s = s.replace(/^\S+ /, "");
  if (/^\* (CAPABILITY|ID) /.test(s)) return null;
  // OBJECTID (RFC 8474): Dovecot 2.3 has none, so the MAILBOXID of SELECT and CREATE goes.
  if (/^\* OK \[MAILBOXID \(/.test(s)) return null;
  s = s.replace(/^OK \[MAILBOXID \([^)]*\)\]/, "OK");
  if (
    /^(SELECT|EXAMINE) /i.test(command) && !/\((CONDSTORE|QRESYNC)/i.test(command) &&
    /^\* OK \[HIGHESTMODSEQ \d+\]/.test(s)
  ) return null;
  if (!/UID/i.test(command)) {
    s = s.replace(/^(\* \d+ FETCH \(.*?)(?:UID \d+ ?)/, "$1").replace(/ \)$/, ")");
  }
  s = s.replace(
    /HEADER\.FIELDS(\.NOT)? \(([^)]*)\)/g,
    (_, not, names: string) => `HEADER.FIELDS${not ?? ""} (${names.toUpperCase()})`,
  );
  s = s.replace(/^NO \[NONEXISTENT\]/, "NO");
  s = s.replace(/ \{0\}\r\n/g, ' ""');
  if (/^LIST \(|^LIST .* RETURN /i.test(command) && !/CHILDREN/i.test(command)) {
    s = s.replace(/^(\* LIST \([^)]*)\\Has(No)?Children ?/, "$1").replace(
      /^\* LIST \((.*?) \)/,
      "* LIST ($1)",
    );
  }
  s = s.replace(/^(\* LIST .*)\("CHILDINFO"/, "$1(CHILDINFO");
  const st = /^\* STATUS (.*) \(([^()]*)\)$/.exec(s);
  if (st) {
    const words = st[2]!.split(" ");
    const pairs: string[] = [];
    for (let i = 0; i + 1 < words.length; i += 2) pairs.push(`${words[i]} ${words[i + 1]}`);
    s = `* STATUS ${st[1]} (${pairs.sort().join(" ")})`;
  }
  s = s.replace(/\[CAPABILITY [^\]]*\]/, "[CAPABILITY]");
  s = s.replace(/(UIDVALIDITY|APPENDUID|COPYUID) \d+/g, "$1 <uv>");
  s = s.replace(/HIGHESTMODSEQ \d+/g, "HIGHESTMODSEQ <m>");
  s = s.replace(/\(MODSEQ \d+\)/g, "(MODSEQ <m>)");
  s = s.replace(/^(\* ESEARCH .*)MODSEQ \d+/, "$1MODSEQ <m>");
  const fetch = /^\* (\d+) FETCH \((.*)\)$/s.exec(s);
  if (fetch) return normaliseFetch(fetch[1]!, fetch[2]!);
  const flags = /^\* FLAGS \((.*)\)$/.exec(s);
  if (flags) return `* FLAGS (${sortFlagList(flags[1]!)})`;
  const status = /^((?:\* )?(?:OK|NO|BAD|BYE|PREAUTH))(?: (\[[^\]]*\]))?/.exec(s);
  if (status) {
    let code = status[2] ?? "";
    const perm = /^\[PERMANENTFLAGS \((.*)\)\]$/.exec(code);
    if (perm) code = `[PERMANENTFLAGS (${sortFlagList(perm[1]!)})]`;
    return code === "" ? status[1]! : `${status[1]} ${code}`;
  }
  return s;
}

/**
 * Rewrites the untagged responses of one step, in the order received, so that sequence numbers
 * refer to the numbering at the start of the step (see the normalisations above), keeps only
 * the last RECENT, FLAGS and PERMANENTFLAGS, and sorts the result.
 */
function canonicalStep(lines: readonly string[]): string[] {
  const removed: number[] = [];
  const original = (n: number): number => {
    let o = n;
    for (const r of removed) if (r <= o) o++;
    return o;
  };
  const out: string[] = [];
  const last = new Map<string, string>();
  for (const line of lines) {
    let m: RegExpExecArray | null;
    if ((m = /^\* (\d+) EXPUNGE$/.exec(line))) {
      const o = original(Number(m[1]));
      removed.push(o);
      removed.sort((a, b) => a - b);
      out.push(`* EXPUNGE (was ${o})`);
    } else if ((m = /^\* (\d+) FETCH (.*)$/s.exec(line))) {
      out.push(`* ${original(Number(m[1]))} FETCH ${m[2]}`);
    } else if ((m = /^\* (\d+) EXISTS$/.exec(line))) {
      out.push(`* ${Number(m[1]) + removed.length} EXISTS (before expunges)`);
    } else if (/^\* \d+ RECENT$/.test(line)) last.set("RECENT", line);
    else if (/^\* FLAGS /.test(line)) last.set("FLAGS", line);
    else if (/^\* OK \[PERMANENTFLAGS /.test(line)) last.set("PERMANENTFLAGS", line);
    else out.push(line);
  }
  return [...out, ...last.values()].sort();
}

interface Run {
  /** Normalised transcript per step label. */
  readonly steps: Map<string, string>;
}

async function runScript(
  script: Script,
  prefix: string,
  connect: () => Promise<RawImap>,
): Promise<Run> {
  const conns: RawImap[] = [];
  const steps = new Map<string, string>();
  const vars = new Map<string, string>();
  let hms = "0";
  const idleTags = new Map<number, string>();
  try {
    for (let i = 0; i < script.conns; i++) conns.push(await connect());
    for (const [n, step] of script.steps.entries()) {
      const c = conns[step.c]!;
      let cmd = (step.cmd ?? "").replaceAll("$P", prefix);
      for (const [k, v] of vars) cmd = cmd.replaceAll(`$${k}`, v);
      const label = `${script.name} / ${n + 1}. [${step.c}] ${
        step.idle ? `IDLE ${step.idle}` : (step.cmd ?? "")
      }`;
      let lines: { text: string; tagged: boolean }[] = [];
      if (step.idle === "start") {
        const tag = c.nextTag();
        idleTags.set(step.c, tag);
        await c.write(`${tag} IDLE\r\n`);
        const got = await c.readUntil((r) => r.text.startsWith("+"), 10_000);
        assert.ok(got, `${label}: no continuation`);
        lines = got.map((r) => ({ text: r.text.startsWith("+") ? "+" : r.text, tagged: false }));
      } else if (step.idle === "done") {
        const tag = idleTags.get(step.c)!;
        await c.write("DONE\r\n");
        const got = await c.readUntil((r) => r.text.startsWith(`${tag} `), 10_000);
        assert.ok(got, `${label}: no tagged answer`);
        // What the client knows once IDLE is over and it has synced with NOOP: Dovecot may
        // report changes made during IDLE only at the next command.
        const noop = await c.command("NOOP");
        lines = [
          ...got.filter((r) => !r.text.startsWith(`${tag} `)).map((r) => ({
            text: r.text,
            tagged: false,
          })),
          ...noop.untagged.map((u) => ({ text: u.text, tagged: false })),
          { text: got.at(-1)!.text, tagged: true },
        ];
      } else {
        const r = await c.command(
          cmd,
          step.literal === undefined ? undefined : enc.encode(step.literal),
        );
        lines = [
          ...r.untagged.map((u) => ({ text: u.text, tagged: false })),
          { text: r.tagged, tagged: true },
        ];
      }
      for (const l of lines) {
        const m = /HIGHESTMODSEQ (\d+)/.exec(l.text) ?? /MODSEQ \((\d+)\)/.exec(l.text);
        if (m && Number(m[1]) > Number(hms)) hms = m[1]!;
        const uv = /UIDVALIDITY (\d+)/.exec(l.text);
        if (uv) vars.set("UV", uv[1]!);
      }
      if (step.save !== undefined) vars.set(step.save, hms);
      const tagged = lines.filter((l) => l.tagged).map((l) => normalise(l.text, true, cmd));
      const untagged = canonicalStep(
        lines.filter((l) => !l.tagged).map((l) => normalise(l.text, false, cmd))
          .filter((l): l is string => l !== null),
      );
      steps.set(label, [...untagged, ...tagged].join("\n"));
    }
  } finally {
    for (const c of conns) await c.close();
  }
  return { steps };
}

const available = dovecotAvailable();
if (!available) {
  console.warn("dovecot_session_diff_test: skipped, Dovecot is not installed");
}

Deno.test({
  name: "Multi-session scripts answer like Dovecot, apart from listed differences",
  ignore: !available,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withPair({
      maxConnections: 10,
      extraConfig: "namespace inbox {\n  inbox = yes\n  separator = /\n}\n",
    }, async ({ postern, dovecot, session }) => {
      const connect = (port: number) => () => session(port);
      const diffs = new Map<string, string>();
      for (const [i, script] of SCRIPTS.entries()) {
        const prefix = `s${i + 1}`;
        const ours = await runScript(script, prefix, connect(postern.implicitPort));
        const theirs = await runScript(script, prefix, connect(dovecot.port));
        for (const [label, text] of ours.steps) {
          const other = theirs.steps.get(label) ?? "";
          if (text !== other) {
            diffs.set(
              label,
              `postern:\n    ${text.replaceAll("\n", "\n    ")}\n  dovecot:\n    ${
                other.replaceAll("\n", "\n    ")
              }`,
            );
          }
        }
      }
      assertOnlyListed(diffs, DIFFERENCES.map((x) => x.step));
    });
  },
});
