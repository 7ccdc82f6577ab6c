/**
 * Roundcube in a real browser against Postern (issue 18, "Proof with real clients"): Debian's
 * Roundcube under PHP's built-in server (tests/_support/roundcube.ts) talks to Postern over
 * implicit TLS, verifying the development CA; headless Chromium, driven through chromedriver's
 * WebDriver API (tests/_support/webdriver.ts), logs in, reads INBOX, sorts by date and by
 * subject, switches to threads, opens a message with an attachment (and downloads it) and
 * reads the quota (widget and table). Each step checks the page content and, through Roundcube's
 * IMAP log, that Postern answered the command behind it (UID SORT, UID THREAD REFERENCES, UID
 * FETCH BINARY.PEEK, GETQUOTAROOT). A screenshot of each step, Roundcube's IMAP log and its error
 * log are kept in tests/artifacts/roundcube/ (or $POSTERN_ARTIFACTS/roundcube). Skipped, with a
 * message, when Chromium or Roundcube is not installed or Chromium cannot start.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { RawImap } from "../_support/imap_clients.ts";
import { startPostern } from "../_support/postern.ts";
import { roundcubeUnavailable, startRoundcube } from "../_support/roundcube.ts";
import { Browser, chromiumUnavailable } from "../_support/webdriver.ts";

const FIXTURES = fileURLToPath(new URL("../fixtures/mail/", import.meta.url));
const ARTIFACTS = join(
  Deno.env.get("POSTERN_ARTIFACTS") ?? fileURLToPath(new URL("../artifacts/", import.meta.url)),
  "roundcube",
);
const enc = new TextEncoder();

/** Storage limit for the test account; the quota widget shows the share in use. */
const STORAGE_LIMIT_KIB = 2048;
const ATTACHMENT = "kestrel-figures.pdf";
const ATTACHMENT_CONTENT = "%PDF-1.4\n% a tiny stand-in for the figures\n%%EOF\n";

/** A generated message, appended after the fixtures, in this order. */
interface Generated {
  readonly key: string;
  readonly subject: string;
  readonly date: string;
  readonly references: readonly string[];
  readonly attachment: boolean;
}

/**
 * Two reply chains and a message with an attachment. Their Date headers, their arrival order
 * and their base subjects give three different orders, and the References give two threads.
 */
const GENERATED: readonly Generated[] = ([
  // key, subject, Date header, References (keys), attachment
  ["k1", "Kestrel rollout plan", "Mon, 2 Mar 2026 09:00:00 +0000", []],
  ["k2", "Re: Kestrel rollout plan", "Mon, 2 Mar 2026 11:00:00 +0000", ["k1"]],
  ["z1", "Zephyr budget review", "Sun, 1 Mar 2026 08:00:00 +0000", []],
  ["k3", "Re: Re: Kestrel rollout plan", "Tue, 3 Mar 2026 10:00:00 +0000", ["k1", "k2"]],
  ["z2", "Re: Zephyr budget review", "Wed, 4 Mar 2026 12:00:00 +0000", ["z1"]],
  ["k4", "Re: Kestrel rollout plan", "Mon, 2 Mar 2026 15:00:00 +0000", ["k1"]],
  ["a1", "Alder figures attached", "Thu, 5 Mar 2026 16:00:00 +0000", [], true],
] as const).map(([key, subject, date, references, attachment]) => ({
  key,
  subject,
  date,
  references,
  attachment: attachment ?? false,
}));

function messageFor(g: Generated): Uint8Array {
  const head = [
    "From: Bob Example <bob@example.org>",
    "To: Alice <alice@localhost>",
    `Subject: ${g.subject}`,
    `Date: ${g.date}`,
    `Message-ID: <${g.key}@roundcube.test>`,
    ...(g.references.length
      ? [
        `In-Reply-To: <${g.references.at(-1)}@roundcube.test>`,
        `References: ${g.references.map((r) => `<${r}@roundcube.test>`).join(" ")}`,
      ]
      : []),
    "MIME-Version: 1.0",
  ];
  if (!g.attachment) {
    return enc.encode(
      [...head, "Content-Type: text/plain; charset=utf-8", "", `About ${g.subject}.`, ""]
        .join("\r\n"),
    );
  }
  const pdf = btoa(ATTACHMENT_CONTENT);
  return enc.encode([
    ...head,
    'Content-Type: multipart/mixed; boundary="b-alder"',
    "",
    "--b-alder",
    "Content-Type: text/plain; charset=utf-8",
    "",
    "The figures are attached.",
    "--b-alder",
    `Content-Type: application/pdf; name="${ATTACHMENT}"`,
    `Content-Disposition: attachment; filename="${ATTACHMENT}"`,
    "Content-Transfer-Encoding: base64",
    "",
    pdf,
    "--b-alder--",
    "",
  ].join("\r\n"));
}

/** One row of Roundcube's message list as the page shows it. */
interface Row {
  readonly uid: number;
  readonly subject: string;
  /** Thread depth from the indentation Roundcube draws. */
  readonly depth: number;
}

/**
 * Reads the visible rows of #messagelist. The UID is in the row id (rcmrow + base64url); the
 * thread depth is the indentation Roundcube draws: a branch span of 15 px a level, or, in the
 * elastic skin, the subject cell's left padding in units of env.thread_padding.
 */
const READ_ROWS = `
  return [...document.querySelectorAll('#messagelist tbody tr')]
    .filter((tr) => tr.id.startsWith('rcmrow') && tr.style.display !== 'none')
    .map((tr) => {
      const b = tr.id.slice(6).replace(/-/g, '+').replace(/_/g, '/');
      const cell = tr.querySelector('td.subject');
      const subject = tr.querySelector('td.subject span.subject a') ?? cell;
      const branch = tr.querySelector('span.branch');
      const unit = parseFloat(rcmail.env.thread_padding ?? '');
      const depth = branch
        ? parseFloat(branch.style.width) / 15
        : unit > 0 && cell && cell.style.paddingLeft
        ? parseFloat(cell.style.paddingLeft) / unit
        : 0;
      return {
        uid: Number(atob(b + '='.repeat((4 - b.length % 4) % 4))),
        subject: (subject ? subject.textContent : '').trim(),
        depth: Math.round(depth),
      };
    });
`;

/** True once Roundcube has no request in flight and shows a list. */
const LIST_IDLE = `
  return typeof rcmail === 'object' && !rcmail.busy && rcmail.message_list &&
    document.querySelectorAll('#messagelist tbody tr[id^=rcmrow]').length > 0;
`;

const [chromiumProblem, roundcubeProblem] = await Promise.all([
  chromiumUnavailable(),
  roundcubeUnavailable(),
]);
const skip = chromiumProblem ?? roundcubeProblem;
if (skip) console.warn(`roundcube_test: skipped, ${skip}`);

Deno.test({
  name:
    "Roundcube in headless Chromium logs in, sorts, threads, opens an attachment and shows quota",
  ignore: skip !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await Deno.remove(ARTIFACTS, { recursive: true }).catch(() => {});
    await Deno.mkdir(ARTIFACTS, { recursive: true });
    console.log(`roundcube_test: screenshots in ${ARTIFACTS}`);

    const postern = await startPostern({
      users: [{ name: "alice", password: "correct horse" }],
      extraYaml: `quota:\n  default:\n    storage: ${STORAGE_LIMIT_KIB}KiB\n    messages: 100000`,
    });
    let roundcube: Awaited<ReturnType<typeof startRoundcube>> | null = null;
    let browser: Browser | null = null;
    let step = 0;
    const shot = async (name: string) => {
      const path = join(ARTIFACTS, `${String(++step).padStart(2, "0")}-${name}.png`);
      await browser?.screenshot(path);
    };
    try {
      // The mailbox: the fixture corpus, then the generated chains (UIDs follow arrival).
      const uidOf = new Map<string, number>();
      let storageUsedKib = 0;
      {
        const imap = await RawImap.tls(postern.implicitPort, postern.caPem);
        await imap.greeting();
        assert.equal((await imap.command('LOGIN alice "correct horse"')).status, "OK");
        const names = [...Deno.readDirSync(FIXTURES)].map((e) => e.name)
          .filter((n) => n.endsWith(".eml")).sort();
        const append = async (key: string, message: Uint8Array) => {
          const r = await imap.command("APPEND INBOX", message);
          const appended = /APPENDUID \d+ (\d+)/.exec(r.tagged);
          assert.ok(appended, `APPEND ${key}: ${r.tagged}`);
          uidOf.set(key, Number(appended[1]));
        };
        for (const name of names) await append(name, await Deno.readFile(FIXTURES + name));
        for (const g of GENERATED) await append(g.key, messageFor(g));
        const quota = await imap.command("GETQUOTAROOT INBOX");
        const storage = quota.untagged.map((u) => /STORAGE (\d+) (\d+)/.exec(u.text))
          .find((m) => m !== null);
        assert.ok(storage, `GETQUOTAROOT: ${quota.untagged.map((u) => u.text).join(" | ")}`);
        assert.equal(Number(storage[2]), STORAGE_LIMIT_KIB);
        storageUsedKib = Number(storage[1]);
        await imap.command("LOGOUT");
        await imap.close();
      }
      const uids = (keys: string[]) => keys.map((k) => uidOf.get(k)!);
      /** The id of a message's row: rcmrow + the UID in base64url without padding. */
      const rowId = (key: string) =>
        "rcmrow" +
        btoa(String(uidOf.get(key))).replace(/=+$/, "").replaceAll("+", "-").replaceAll("/", "_");
      const generatedUids = new Set(uids(GENERATED.map((g) => g.key)));

      roundcube = await startRoundcube({
        imapPort: postern.implicitPort,
        caPath: postern.caPath,
        extraConfig: [
          "$config['mail_pagesize'] = 200;",
          "$config['autoexpand_threads'] = 1;",
          "$config['message_sort_col'] = '';",
        ].join("\n"),
      });
      browser = await Browser.start(join(roundcube.dir, "chromium-profile"));
      const b = browser;
      const rc = roundcube;
      const rows = () => b.execute<Row[]>(READ_ROWS);
      const generatedRows = async () => (await rows()).filter((r) => generatedUids.has(r.uid));
      const waitIdle = (what: string) =>
        b.waitUntil(what, () => b.execute<boolean>(LIST_IDLE), 20_000);
      /** Scrolls the list so that a message's row is in the screenshot. */
      const reveal = (key: string) =>
        b.execute(
          "document.getElementById(arguments[0])?.scrollIntoView({block: 'center'})",
          rowId(key),
        );
      /** IMAP commands Roundcube sent since `from` (a length of the log), tags removed. */
      const commandsSince = (from: number) =>
        [...rc.imapLog().slice(from).matchAll(/ C: \S+ ([^\r\n]*)/g)].map((m) => m[1]!);
      const replies = (from: number, command: RegExp) => {
        const log = rc.imapLog().slice(from);
        const at = log.search(command);
        return at < 0 ? "" : log.slice(at, at + 2000);
      };

      // 1. Log in.
      await b.navigate(rc.url);
      await b.type(await b.waitFor("#rcmloginuser"), "alice");
      await b.type(await b.waitFor("#rcmloginpwd"), "correct horse");
      await shot("login-form");
      await b.click(await b.waitFor("#rcmloginsubmit"));
      await waitIdle("the INBOX list is shown after login");
      await shot("inbox");

      // 2. INBOX: the folder is selected, every message is listed with its decoded subject.
      const selected = await b.text(await b.waitFor("#mailboxlist li.mailbox.inbox.selected"));
      assert.match(selected, /Inbox/);
      const inbox = await rows();
      assert.equal(inbox.length, uidOf.size, "every message is on the one page");
      const expectedSubjects: [string, string][] = [
        ...GENERATED.map((g): [string, string] => [g.key, g.subject]),
        ["01-plain-ascii.eml", "Plain ASCII"],
        ["18-subject-utf8-b.eml", "Ça va bien ? 😀"],
        ["19-subject-utf8-q.eml", "Grüße aus Köln und mehr"],
        ["23-subject-koi8-r.eml", "Привет мир"],
        ["24-subject-iso-2022-jp.eml", "日本語"],
      ];
      for (const [key, subject] of expectedSubjects) {
        const row = inbox.find((r) => r.uid === uidOf.get(key));
        assert.equal(row?.subject, subject, `row of ${key}`);
      }

      // 3. Sort by date, then by subject, through the list options dialog.
      const listOptions = async (
        options: { sortCol?: string; sortOrder?: string; mode?: string },
        name: string,
      ) => {
        await b.click(await b.waitFor("#listmenulink"));
        const pick = async (select: string, value: string | undefined) => {
          if (value === undefined) return;
          await b.click(await b.waitFor(`${select}-clone option[value="${value}"]`));
        };
        await b.waitFor("#listoptions-sortcol-clone");
        await pick("#listoptions-sortcol", options.sortCol);
        await pick("#listoptions-sortord", options.sortOrder);
        await pick("#listoptions-threads", options.mode);
        await shot(`${name}-dialog`);
        await b.click(await b.waitFor(".ui-dialog .ui-dialog-buttonpane button.mainaction"));
        await b.waitUntil(
          `the list options are applied (${JSON.stringify(options)})`,
          () =>
            b.execute<boolean>(
              `return !document.querySelector('.ui-dialog') && !rcmail.busy &&
                (arguments[0] == null || rcmail.env.sort_col === arguments[0]) &&
                (arguments[1] == null || rcmail.env.sort_order === arguments[1]) &&
                (arguments[2] == null || !!rcmail.env.threading === (arguments[2] === 'threads'))`,
              options.sortCol,
              options.sortOrder,
              options.mode,
            ),
          20_000,
        );
        await waitIdle(`the list is reloaded (${name})`);
      };

      let mark = rc.imapLog().length;
      await listOptions({ sortCol: "date", sortOrder: "ASC" }, "sort-date");
      await reveal("k1");
      await shot("sorted-by-date");
      assert.deepEqual(
        (await generatedRows()).map((r) => r.uid),
        uids(["z1", "k1", "k2", "k4", "k3", "z2", "a1"]),
        "date order of the generated messages",
      );
      const dateSorts = commandsSince(mark).filter((c) => /\bSORT \(DATE\)/i.test(c));
      assert.ok(dateSorts.length > 0, `no SORT (DATE) in:\n${commandsSince(mark).join("\n")}`);
      assert.match(replies(mark, /\bSORT \(DATE\)/i), / S: \* SORT [\d ]+\n.* S: \S+ OK/);

      mark = rc.imapLog().length;
      await listOptions({ sortCol: "subject", sortOrder: "ASC" }, "sort-subject");
      await reveal("k1");
      await shot("sorted-by-subject");
      assert.deepEqual(
        (await generatedRows()).map((r) => r.uid),
        uids(["a1", "k1", "k2", "k3", "k4", "z1", "z2"]),
        "subject order of the generated messages (base subject, then arrival)",
      );
      const subjectSorts = commandsSince(mark).filter((c) => /\bSORT \(SUBJECT\)/i.test(c));
      assert.ok(
        subjectSorts.length > 0,
        `no SORT (SUBJECT) in:\n${commandsSince(mark).join("\n")}`,
      );
      assert.match(replies(mark, /\bSORT \(SUBJECT\)/i), / S: \* SORT [\d ]+\n.* S: \S+ OK/);

      // 4. Threads: THREAD REFERENCES, and the two chains drawn as trees.
      mark = rc.imapLog().length;
      await listOptions({ mode: "threads" }, "threads");
      await reveal("k1");
      await shot("threads");
      const threadCommands = commandsSince(mark).filter((c) =>
        /\bTHREAD (REFERENCES|REFS)/i.test(c)
      );
      assert.ok(
        threadCommands.length > 0,
        `no THREAD in:\n${commandsSince(mark).join("\n")}`,
      );
      assert.match(replies(mark, /\bTHREAD (REFERENCES|REFS)/i), / S: \* THREAD \(/);
      const threaded = await generatedRows();
      const at = (key: string) => threaded.findIndex((r) => r.uid === uidOf.get(key));
      const depth = (key: string) => threaded[at(key)]?.depth;
      assert.deepEqual(
        GENERATED.map((g) => [g.key, depth(g.key)]),
        [["k1", 0], ["k2", 1], ["z1", 0], ["k3", 2], ["z2", 1], ["k4", 1], ["a1", 0]],
        `thread depths; rows: ${JSON.stringify(threaded)}`,
      );
      // Children follow their parent: k1 > k2 > k3, then k4; z1 > z2.
      assert.deepEqual(
        [at("k2") - at("k1"), at("k3") - at("k1"), at("k4") - at("k1"), at("z2") - at("z1")],
        [1, 2, 3, 1],
        `thread rows: ${JSON.stringify(threaded)}`,
      );

      // 5. Open the message with the attachment: the preview shows the file name.
      await reveal("a1");
      await b.click(await b.waitFor(`#messagelist tbody tr[id="${rowId("a1")}"] td.subject`));
      const frame = await b.waitFor("#messagecontframe");
      await b.waitUntil(
        "the preview frame shows the message",
        () =>
          b.execute<boolean>(
            `const d = document.getElementById('messagecontframe').contentDocument;
             return !!d && !!d.querySelector('#attachment-list li');`,
          ),
        20_000,
      );
      await b.frame(frame);
      const attachments = await b.text(await b.waitFor("#attachment-list"));
      const subject = await b.text(await b.waitFor(".subject"));
      await b.frame(null);
      await shot("message-with-attachment");
      assert.match(attachments, new RegExp(ATTACHMENT.replaceAll(".", "\\.")));
      assert.match(subject, /Alder figures attached/);
      // The attachment's link downloads the original bytes (Roundcube fetches the part).
      mark = rc.imapLog().length;
      const download = await b.executeAsync<{ status: number; body: string }>(
        `const done = arguments[arguments.length - 1];
         const d = document.getElementById('messagecontframe').contentDocument;
         const link = d.querySelector('#attachment-list li a.filename');
         const url = new URL(link.getAttribute('href'), d.baseURI);
         url.searchParams.set('_download', '1');
         fetch(url).then(async (r) => done({ status: r.status, body: await r.text() }),
           (e) => done({ status: 0, body: String(e) }));`,
      );
      assert.deepEqual(download, { status: 200, body: ATTACHMENT_CONTENT });
      assert.match(commandsSince(mark).join("\n"), /UID FETCH \d+ \((BINARY|BODY)\.PEEK\[2\]/);

      // 6. Quota: the share of the storage limit that Postern reports.
      const quota = await b.waitFor("#quotadisplay");
      await b.waitUntil(
        "the quota figure is filled in",
        async () => /\d/.test(await b.text(quota)),
      );
      const percent = Math.round(storageUsedKib / STORAGE_LIMIT_KIB * 100);
      const quotaText = await b.text(quota);
      const quotaTitle = await b.execute<string>(
        "return document.querySelector('#quotadisplay .count').getAttribute('title') ?? '';",
      );
      assert.match(quotaText, new RegExp(`\\b${percent}\\s?%`), `quota text ${quotaText}`);
      assert.match(quotaTitle, new RegExp(`\\(${percent}%\\)`), `quota title ${quotaTitle}`);
      assert.match(rc.imapLog(), / C: \S+ GETQUOTAROOT/);
      // With both resources, a click on the widget shows them in a table.
      await b.click(quota);
      const table = await b.text(await b.waitFor(".ui-dialog table.quota-info"));
      await shot("quota");
      assert.match(
        table,
        new RegExp(`Disk space\\s+2\\.0 MB\\s+${storageUsedKib} KB \\(${percent}%\\)`),
        `quota table ${table}`,
      );
      assert.match(table, new RegExp(`Messages count\\s+100000\\s+${uidOf.size} \\(0%\\)`), table);

      const errors = rc.errorLog();
      assert.doesNotMatch(errors, /IMAP Error/, errors);
    } catch (e) {
      await shot("failure").catch(() => {});
      if (roundcube) {
        console.error(`roundcube_test: Roundcube errors:\n${roundcube.errorLog().slice(-4000)}`);
      }
      throw e;
    } finally {
      if (roundcube) {
        await Deno.writeTextFile(join(ARTIFACTS, "imap.log"), roundcube.imapLog());
        await Deno.writeTextFile(join(ARTIFACTS, "errors.log"), roundcube.errorLog());
      }
      await browser?.close();
      await roundcube?.stop();
      await postern.stop();
    }
  },
});
