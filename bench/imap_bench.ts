/**
 * IMAP benchmark against Dovecot, both over implicit TLS on 127.0.0.1 with the same
 * certificate and the same client (`_imap_client.ts`, Deno.connectTls): APPEND rate (pipelined,
 * LITERAL+, one connection, durable on both), SELECT of an N-message mailbox, `FETCH 1:* (UID
 * FLAGS)`, UID SEARCH (ALL, UNSEEN, SUBJECT and BODY, each text search twice), and RSS per idle
 * authenticated connection. Also times a MIME re-parse of the whole corpus in-process, to show
 * whether a repeated SEARCH re-parses messages (Postern keeps a summary made once at APPEND).
 *
 * Postern runs in a child process (this file with `--serve-postern`), so that the benchmark
 * client neither shares its event loop nor its heap; idle connections are held by another child
 * (`--hold`) for both servers. Figures are printed, never asserted.
 *
 * Usage: `deno run -A bench/imap_bench.ts [--messages N] [--connections K] [--quick]
 * [--no-dovecot] [--dovecot-format mdbox|maildir|sdbox]`; `--quick` means 10,000 messages;
 * Dovecot stores mail as mdbox unless `--dovecot-format` says otherwise.
 */
import { fileURLToPath } from "node:url";
import { openSqliteMailStore } from "../mailstore/sqlite/mod.ts";
import { join } from "node:path";
import { fromSummary, parseMessage, searchText, summarize } from "../protocol/imap/mime/mod.ts";
import { mimeSupport } from "../protocol/imap/mime_support.ts";
import { SearchIndex } from "../protocol/imap/search_index.ts";
import { appendBytes, ImapClient, type ImapConnectOptions } from "./_imap_client.ts";
import {
  DOVECOT_FORMATS,
  dovecotAvailable,
  type DovecotFormat,
  processPss,
  startDovecot,
} from "../tests/_support/dovecot.ts";

export const USER = "bench";
export const PASSWORD = "bench-password";
const SELF = fileURLToPath(import.meta.url);

/** Options of `benchImap`. */
export interface BenchImapOptions {
  /** Messages in the mailbox (default 100,000). */
  readonly messages: number;
  /** Idle authenticated connections held for the RSS figure (default 200). */
  readonly connections?: number;
  /** Skip Dovecot even when it is available. */
  readonly skipDovecot?: boolean;
  /**
   * Dovecot's mailbox format (default mdbox, the stronger baseline at scale: maildir rewrites
   * dovecot-uidlist on every APPEND, which made it fall to about 30 APPEND/s at 33,000
   * messages here).
   */
  readonly dovecotFormat?: DovecotFormat;
  /** Progress lines go here (default: nowhere). */
  readonly log?: (line: string) => void;
}

/** Milliseconds of each UID SEARCH, and the number of UIDs each returned. */
export interface SearchFigures {
  readonly allMs: number;
  readonly unseenMs: number;
  readonly subjectFirstMs: number;
  readonly subjectSecondMs: number;
  readonly bodyFirstMs: number;
  readonly bodySecondMs: number;
  readonly hits: {
    readonly all: number;
    readonly unseen: number;
    readonly subject: number;
    readonly body: number;
  };
}

/** The figures of one server. */
export interface ServerFigures {
  readonly appendPerSecond: number;
  readonly selectMs: number;
  readonly fetchMs: number;
  readonly fetchLines: number;
  readonly search: SearchFigures;
  /** RSS growth per idle authenticated connection, in bytes. */
  readonly idleRssPerConnection: number;
  /** PSS growth per idle authenticated connection, in bytes (shared pages divided). */
  readonly idlePssPerConnection: number;
  /** Where the RSS figure comes from. */
  readonly rssMethod: string;
  /** Bytes on disk under the server's mail storage after the appends. */
  readonly diskBytes: number;
}

/** What `benchImap` measured. */
export interface Result {
  readonly messages: number;
  readonly connections: number;
  readonly corpusBytes: number;
  readonly transport: string;
  readonly postern: ServerFigures;
  readonly dovecot: ServerFigures | null;
  readonly dovecotSettings: readonly string[];
  /** In-process `parseMessage` + `searchText` over the whole corpus, in ms. */
  readonly reparseMs: number;
  /** In-process `fromSummary` (JSON decode of the APPEND-time summary) over the corpus, in ms. */
  readonly summaryDecodeMs: number;
  /**
   * In-process `getSummary` + `fromSummary` + subject match for every message of a SQLite store
   * holding the corpus, one awaited call per message as the SEARCH command does, in ms: the
   * floor of a text SEARCH below the IMAP layer.
   */
  readonly storeScanMs: number;
}

// ---------------------------------------------------------------------------------------------
// Corpus

/** A small deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = (
  "the quarterly report meeting agenda budget invoice project deadline review draft team " +
  "release server migration backup schedule holiday lunch update question answer customer " +
  "support ticket priority network storage archive policy security password account travel " +
  "conference slides notes summary proposal contract renewal payment order shipping delivery " +
  "weather garden kitchen recipe concert football library museum train airport hotel"
).split(" ");
const FIRST = "Alice Bob Carol Dave Erin Frank Grace Heidi Ivan Judy Mallory Niaj Olivia Peggy"
  .split(" ");
const LAST = "Smith Jones Müller García Rossi Dubois Novak Tanaka Silva Kowalski Berg".split(" ");
const DOMAINS = ["example.org", "example.com", "mail.example.net", "lists.example.org"];
const MAILERS = ["Thunderbird 128.3", "Apple Mail (2.3774)", "Mutt/2.2.12", "Outlook 16.0"];
const DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** Messages whose Subject contains the needle, and whose body does. */
const SUBJECT_NEEDLE_EVERY = 1000;
const BODY_NEEDLE_EVERY = 1000;

const encoder = new TextEncoder();

/**
 * Message `i` of the corpus: 2–4 KB, varied headers (Received chains, Cc, threading fields,
 * list headers, encoded words), multipart/mixed with an attachment every 10th. Subject holds
 * "needle" once per 1000 messages and the body once per 1000 (at other positions).
 */
export function corpusMessage(i: number): Uint8Array {
  const r = rng(i * 7919 + 17);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(r() * a.length)]!;
  const person = (): string => {
    const f = pick(FIRST);
    const l = pick(LAST);
    return `${f} ${l} <${f.toLowerCase()}.${i % 97}@${pick(DOMAINS)}>`;
  };
  const words = (n: number): string => Array.from({ length: n }, () => pick(WORDS)).join(" ");
  const t = new Date(Date.UTC(2025, 0, 1) + i * 317_000);
  const date = `${DAYS[(t.getUTCDay() + 6) % 7]}, ${t.getUTCDate()} ${MONTHS[t.getUTCMonth()]} ` +
    `${t.getUTCFullYear()} ${String(t.getUTCHours()).padStart(2, "0")}:` +
    `${String(t.getUTCMinutes()).padStart(2, "0")}:${String(t.getUTCSeconds()).padStart(2, "0")}` +
    ` +0000`;
  let subject = words(3 + Math.floor(r() * 5));
  if (i % SUBJECT_NEEDLE_EVERY === 7) subject += " needle";
  const h: string[] = [];
  const hops = 1 + Math.floor(r() * 3);
  for (let k = 0; k < hops; k++) {
    h.push(
      `Received: from mx${k}.${pick(DOMAINS)} (mx${k}.${pick(DOMAINS)} [192.0.2.${k + 1}])\r\n` +
        `\tby mail.example.org with ESMTPS id ${
          (i * 31 + k).toString(36)
        }\r\n\tfor <bench@example.org>; ${date}`,
    );
  }
  h.push(`Date: ${date}`, `From: ${person()}`, `To: Bench <bench@example.org>`);
  if (r() < 0.4) h.push(`Cc: ${person()}, ${person()}`);
  h.push(
    r() < 0.1
      ? `Subject: =?UTF-8?B?${btoa(String.fromCharCode(...encoder.encode(subject + " — ü")))}?=`
      : `Subject: ${r() < 0.3 ? "Re: " : ""}${subject}`,
  );
  h.push(`Message-ID: <${i}.${(i * 2654435761 >>> 0).toString(16)}@example.org>`);
  if (r() < 0.3) {
    h.push(`In-Reply-To: <${i - 1}@example.org>`, `References: <${i - 2}@example.org>`);
  }
  if (r() < 0.5) h.push(`X-Mailer: ${pick(MAILERS)}`);
  if (r() < 0.2) {
    h.push("List-Id: Team list <team.lists.example.org>", "Precedence: list");
  }
  h.push("MIME-Version: 1.0");
  const target = 2048 + Math.floor(r() * 2048);
  const lines: string[] = [];
  const size = h.join("\r\n").length;
  const bodyNeedle = i % BODY_NEEDLE_EVERY === 51;
  const multipart = i % 10 === 0;
  const bodyBudget = multipart ? target - size - 700 : target - size - 80;
  let bodySize = 0;
  while (bodySize < bodyBudget) {
    const line = words(8 + Math.floor(r() * 6));
    lines.push(line);
    bodySize += line.length + 2;
  }
  if (bodyNeedle) lines.splice(Math.floor(lines.length / 2), 0, "there is a needle in here");
  const text = lines.join("\r\n") + "\r\n";
  if (!multipart) {
    h.push("Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit");
    return encoder.encode(h.join("\r\n") + "\r\n\r\n" + text);
  }
  const boundary = `=_bench_${i.toString(36)}`;
  h.push(`Content-Type: multipart/mixed; boundary="${boundary}"`);
  const attachment = btoa(
    String.fromCharCode(...Array.from({ length: 360 }, () => Math.floor(r() * 256))),
  ).replace(/.{76}/g, "$&\r\n");
  const body = [
    "This is a multi-part message in MIME format.",
    `--${boundary}`,
    "Content-Type: text/plain; charset=utf-8",
    "",
    text,
    `--${boundary}`,
    `Content-Type: application/pdf; name="report-${i}.pdf"`,
    `Content-Disposition: attachment; filename="report-${i}.pdf"`,
    "Content-Transfer-Encoding: base64",
    "",
    attachment,
    `--${boundary}--`,
    "",
  ].join("\r\n");
  return encoder.encode(h.join("\r\n") + "\r\n\r\n" + body);
}

/** Every third message is unseen, the others carry \Seen. */
function corpusFlags(i: number): readonly string[] {
  return i % 3 === 0 ? [] : ["\\Seen"];
}

// ---------------------------------------------------------------------------------------------
// Measurements over IMAP

const APPEND_BATCH = 64;
const APPEND_IN_FLIGHT = 4;

async function timed<T>(f: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const v = await f();
  return [v, performance.now() - t0];
}

/** Appends the corpus from one connection, `APPEND_IN_FLIGHT` batches of pipelined commands. */
export async function appendCorpus(
  target: ImapConnectOptions,
  n: number,
  log: (s: string) => void,
  mailbox = "INBOX",
): Promise<number> {
  const c = await ImapClient.login(target, USER, PASSWORD);
  try {
    if (mailbox !== "INBOX") await c.ok(`CREATE ${mailbox}`);
    const inFlight: Promise<unknown>[] = [];
    const t0 = performance.now();
    let lastLog = t0;
    for (let i = 0; i < n; i += APPEND_BATCH) {
      const batch: Uint8Array[] = [];
      for (let k = i; k < Math.min(n, i + APPEND_BATCH); k++) {
        batch.push(appendBytes(mailbox, corpusMessage(k), corpusFlags(k)));
      }
      inFlight.push(
        c.pipeline(batch, false).then((replies) => {
          for (const r of replies) {
            if (r.status !== "OK") throw new Error(`APPEND failed: ${r.status} ${r.text}`);
          }
        }),
      );
      if (inFlight.length >= APPEND_IN_FLIGHT) await inFlight.shift();
      const now = performance.now();
      if (now - lastLog > 10_000) {
        lastLog = now;
        log(`  appended ${i + APPEND_BATCH} (${((i * 1000) / (now - t0)).toFixed(0)}/s)`);
      }
    }
    await Promise.all(inFlight);
    return n / ((performance.now() - t0) / 1000);
  } finally {
    await c.logout();
  }
}

function uidCount(untagged: readonly string[]): number {
  let n = 0;
  for (const line of untagged) {
    if (line.startsWith("* SEARCH")) {
      n += line.split(" ").length - 2;
    }
  }
  return n;
}

/**
 * APPENDs the corpus (user `bench`, password `bench-password`), then times SELECT, FETCH 1:*
 * and UID SEARCH on it. Also used by the PostgreSQL store benchmark.
 */
export async function measureServer(
  target: ImapConnectOptions,
  n: number,
  log: (s: string) => void,
): Promise<
  Omit<ServerFigures, "idleRssPerConnection" | "idlePssPerConnection" | "rssMethod" | "diskBytes">
> {
  const appendPerSecond = await appendCorpus(target, n, log);
  log(`  APPEND ${appendPerSecond.toFixed(0)}/s`);
  const c = await ImapClient.login(target, USER, PASSWORD);
  try {
    const [sel, selectMs] = await timed(() => c.ok("SELECT INBOX"));
    log(`  SELECT ${selectMs.toFixed(1)} ms`);
    const exists = sel.untagged.find((l) => l.endsWith(" EXISTS"));
    if (exists !== `* ${n} EXISTS`) throw new Error(`Unexpected SELECT answer: ${exists}`);
    const [fetch, fetchMs] = await timed(() => c.ok("FETCH 1:* (UID FLAGS)"));
    log(`  FETCH 1:* (UID FLAGS) ${fetchMs.toFixed(1)} ms`);
    const search = async (q: string): Promise<[number, number]> => {
      const [r, ms] = await timed(() => c.ok(`UID SEARCH ${q}`));
      const hits = uidCount(r.untagged);
      log(`  UID SEARCH ${q}: ${hits} hits, ${ms.toFixed(1)} ms`);
      return [hits, ms];
    };
    const [all, allMs] = await search("ALL");
    const [unseen, unseenMs] = await search("UNSEEN");
    const [subject, subjectFirstMs] = await search(`SUBJECT "needle"`);
    const [, subjectSecondMs] = await search(`SUBJECT "needle"`);
    const [body, bodyFirstMs] = await search(`BODY "needle"`);
    const [, bodySecondMs] = await search(`BODY "needle"`);
    return {
      appendPerSecond,
      selectMs,
      fetchMs,
      fetchLines: fetch.untagged.length,
      search: {
        allMs,
        unseenMs,
        subjectFirstMs,
        subjectSecondMs,
        bodyFirstMs,
        bodySecondMs,
        hits: { all, unseen, subject, body },
      },
    };
  } finally {
    await c.logout();
  }
}

/**
 * Times `parseMessage` + `searchText` over the corpus (what a search without stored summaries
 * would redo), and `fromSummary` over the summaries APPEND stored (what Postern's text search
 * decodes per message). Generating the messages and summaries is not timed.
 */
async function reparseCorpus(
  n: number,
): Promise<{ parseMs: number; decodeMs: number; storeScanMs: number; bytes: number }> {
  const dir = await Deno.makeTempDir({ prefix: "postern-imap-bench-store-" });
  const store = await openSqliteMailStore(join(dir, "scan.db"), { synchronous: "off" });
  const account = await store.createAccount(USER, null);
  const inbox = await store.getMailbox(account.id, "INBOX");
  if (inbox === null) throw new Error("No INBOX in a new account");
  let parseMs = 0;
  let decodeMs = 0;
  let bytes = 0;
  const chunk = 1000;
  for (let i = 0; i < n; i += chunk) {
    const batch: Uint8Array[] = [];
    for (let k = i; k < Math.min(n, i + chunk); k++) batch.push(corpusMessage(k));
    const summaries = batch.map((raw) => summarize(raw));
    const indexes = batch.map((raw) => mimeSupport.searchIndex!({ raw, summary: null }));
    const t0 = performance.now();
    for (const raw of batch) {
      searchText(raw, parseMessage(raw));
      bytes += raw.length;
    }
    const t1 = performance.now();
    for (const s of summaries) {
      if (fromSummary(s) === null) throw new Error("Summary did not decode");
    }
    const t2 = performance.now();
    parseMs += t1 - t0;
    decodeMs += t2 - t1;
    for (let k = 0; k < batch.length; k++) {
      await store.append(inbox.id, {
        raw: batch[k]!,
        summary: summaries[k]!,
        ...(indexes[k] ? { searchText: indexes[k]! } : {}),
      });
    }
  }
  let storeScanMs = 0;
  try {
    const t0 = performance.now();
    let hits = 0;
    const uids = (await store.listMessages(inbox.id)).map((m) => m.uid);
    for (const text of (await store.getSearchTexts(inbox.id, uids)).values()) {
      const index = text === null ? null : SearchIndex.read(text);
      if (index?.header("subject").some((v) => v.includes("needle"))) hits++;
    }
    storeScanMs = performance.now() - t0;
    if (hits !== Math.floor((n - 8) / SUBJECT_NEEDLE_EVERY) + 1 && n > 8) {
      throw new Error(`Store scan found ${hits} subject needles`);
    }
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  return { parseMs, decodeMs, storeScanMs, bytes };
}

// ---------------------------------------------------------------------------------------------
// Child processes: Postern itself, and the holder of idle connections

/** Reads a child's stdout line by line. */
class LineReader {
  readonly #reader: ReadableStreamDefaultReader<string>;
  #buf = "";

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  }

  async line(): Promise<string> {
    for (;;) {
      const nl = this.#buf.indexOf("\n");
      if (nl >= 0) {
        const line = this.#buf.slice(0, nl);
        this.#buf = this.#buf.slice(nl + 1);
        return line;
      }
      const { value, done } = await this.#reader.read();
      if (done) throw new Error("Child process ended early");
      this.#buf += value;
    }
  }

  cancel(): Promise<void> {
    return this.#reader.cancel().catch(() => {});
  }
}

interface Child {
  readonly process: Deno.ChildProcess;
  readonly lines: LineReader;
  readonly stdin: WritableStreamDefaultWriter<Uint8Array>;
  send(line: string): Promise<void>;
  end(): Promise<void>;
}

function spawnSelf(args: string[], v8Flags: string[] = []): Child {
  const process = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      ...(v8Flags.length ? [`--v8-flags=${v8Flags.join(",")}`] : []),
      SELF,
      ...args,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const stdin = process.stdin.getWriter();
  const lines = new LineReader(process.stdout);
  return {
    process,
    lines,
    stdin,
    send: (line) => stdin.write(encoder.encode(line + "\n")),
    async end() {
      await stdin.close().catch(() => {});
      await lines.cancel();
      await process.status;
    },
  };
}

/** Child mode: starts Postern and answers `rss` with its RSS after a full GC. */
async function servePostern(maxConnections: number): Promise<void> {
  const { startPostern } = await import("../tests/_support/postern.ts");
  const postern = await startPostern({
    users: [{ name: USER, password: PASSWORD }],
    clientAuth: "none",
    limitsYaml: `  max_connections_per_user: ${maxConnections}\n` +
      `  max_connections_per_address: ${maxConnections}`,
  });
  const out = (v: unknown): void => console.log(JSON.stringify(v));
  out({
    port: postern.implicitPort,
    caPem: postern.caPem,
    dataDir: join(postern.dir, "data"),
    certificate: join(postern.certsDir, "server.pem"),
    key: join(postern.certsDir, "server.key"),
  });
  const gc = (globalThis as { gc?: () => void }).gc;
  const reader = new LineReader(Deno.stdin.readable);
  try {
    for (;;) {
      const cmd = await reader.line();
      if (cmd !== "rss") continue;
      for (let i = 0; i < 3; i++) {
        gc?.();
        await new Promise((r) => setTimeout(r, 50));
      }
      out({ rss: Deno.memoryUsage().rss, gc: gc !== undefined });
    }
  } catch {
    // Stdin closed: the benchmark is done.
  } finally {
    await postern.stop();
  }
}

/** Child mode: opens `count` authenticated connections, says `ready`, holds them until EOF. */
async function holdConnections(target: ImapConnectOptions, count: number): Promise<void> {
  const clients: ImapClient[] = [];
  try {
    for (let i = 0; i < count; i++) clients.push(await ImapClient.login(target, USER, PASSWORD));
    console.log("ready");
  } catch (e) {
    console.log(`error ${e instanceof Error ? e.message : String(e)}`);
  }
  const reader = new LineReader(Deno.stdin.readable);
  await reader.line().catch(() => {});
  for (const c of clients) c.close();
}

/** Allocated bytes (st_blocks) of every file under `path`. */
function diskUsage(path: string): number {
  let total = 0;
  const walk = (dir: string): void => {
    for (const e of Deno.readDirSync(dir)) {
      const p = join(dir, e.name);
      if (e.isDirectory) walk(p);
      else if (e.isFile) total += (Deno.statSync(p).blocks ?? 0) * 512;
    }
  };
  walk(path);
  return total;
}

interface Memory {
  readonly rss: number;
  readonly pss: number;
}

/**
 * Holds `count` idle authenticated connections in a child and measures memory around them.
 * A few connections that log in, select and log out come first, so that code loaded on first
 * use is in the baseline.
 */
async function idleMemory(
  target: ImapConnectOptions & { caPath: string },
  count: number,
  measure: () => Promise<Memory>,
): Promise<Memory> {
  for (let i = 0; i < 5; i++) {
    const c = await ImapClient.login(target, USER, PASSWORD);
    await c.ok("SELECT INBOX");
    await c.logout();
  }
  await new Promise((r) => setTimeout(r, 300));
  const before = await measure();
  const holder = spawnSelf([
    "--hold",
    String(count),
    "--port",
    String(target.port),
    "--ca",
    target.caPath,
  ]);
  try {
    const status = await holder.lines.line();
    if (status !== "ready") throw new Error(`Holding connections failed: ${status}`);
    await new Promise((r) => setTimeout(r, 500));
    const after = await measure();
    return { rss: (after.rss - before.rss) / count, pss: (after.pss - before.pss) / count };
  } finally {
    await holder.end();
  }
}

// ---------------------------------------------------------------------------------------------

/** Runs the whole benchmark against Postern and (when available) Dovecot. */
export async function benchImap(options: BenchImapOptions): Promise<Result> {
  const n = options.messages;
  const k = options.connections ?? 200;
  const log = options.log ?? (() => {});
  const server = spawnSelf(["--serve-postern", String(k + 20)], ["--expose-gc"]);
  const tmp = await Deno.makeTempDir({ prefix: "postern-imap-bench-" });
  let dovecot: Awaited<ReturnType<typeof startDovecot>> | null = null;
  try {
    const info = JSON.parse(await server.lines.line()) as {
      port: number;
      caPem: string;
      dataDir: string;
      certificate: string;
      key: string;
    };
    const caPath = join(tmp, "ca.pem");
    await Deno.writeTextFile(caPath, info.caPem);
    const postTarget = { port: info.port, caPem: info.caPem, caPath };

    log(`Postern (pid ${server.process.pid}, port ${info.port}): ${n} messages`);
    const posternMemory = await idleMemory(postTarget, k, async () => {
      await server.send("rss");
      const rss = (JSON.parse(await server.lines.line()) as { rss: number }).rss;
      return { rss, pss: processPss(server.process.pid) };
    });
    log(`  idle connection: ${(posternMemory.rss / 1024).toFixed(0)} KiB RSS`);
    const posternIo = await measureServer(postTarget, n, log);
    const postern: ServerFigures = {
      ...posternIo,
      idleRssPerConnection: posternMemory.rss,
      idlePssPerConnection: posternMemory.pss,
      rssMethod: "Deno.memoryUsage().rss of the server process after gc(), PSS from /proc",
      diskBytes: diskUsage(info.dataDir),
    };

    let dovecotFigures: ServerFigures | null = null;
    let settings: readonly string[] = [];
    if (!options.skipDovecot && dovecotAvailable()) {
      dovecot = await startDovecot({
        user: USER,
        password: PASSWORD,
        certificatePath: info.certificate,
        keyPath: info.key,
        maxConnections: k + 20,
        format: options.dovecotFormat ?? "mdbox",
      });
      settings = dovecot.settings;
      const dovTarget = { port: dovecot.port, caPem: info.caPem, caPath };
      log(`Dovecot (pid ${dovecot.pid}, port ${dovecot.port}): ${n} messages`);
      const d = dovecot;
      const memory = await idleMemory(dovTarget, k, () => Promise.resolve(d.memory()));
      log(`  idle connection: ${(memory.rss / 1024).toFixed(0)} KiB RSS`);
      const io = await measureServer(dovTarget, n, log);
      dovecotFigures = {
        ...io,
        idleRssPerConnection: memory.rss,
        idlePssPerConnection: memory.pss,
        rssMethod: "sums of VmRSS and PSS over the Dovecot master and all its children (/proc)",
        diskBytes: diskUsage(join(dovecot.dir, "mail")),
      };
    }
    log("re-parsing the corpus in-process");
    const reparse = await reparseCorpus(n);
    return {
      messages: n,
      connections: k,
      corpusBytes: reparse.bytes,
      transport: "implicit TLS 1.3 on 127.0.0.1, same P-256 certificate, client Deno.connectTls",
      postern,
      dovecot: dovecotFigures,
      dovecotSettings: settings,
      reparseMs: reparse.parseMs,
      summaryDecodeMs: reparse.decodeMs,
      storeScanMs: reparse.storeScanMs,
    };
  } finally {
    await dovecot?.stop();
    await server.end();
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}

/** Prints the figures of `benchImap` as a table with Postern/Dovecot ratios. */
export function formatResult(r: Result): string {
  const out: string[] = [];
  const d = r.dovecot;
  out.push(
    `IMAP benchmark: ${r.messages} messages (${(r.corpusBytes / 1e6).toFixed(1)} MB), ` +
      `${r.connections} idle connections; ${r.transport}`,
  );
  out.push(
    `${"".padEnd(36)} ${"Postern".padStart(12)} ${"Dovecot".padStart(12)}  ${"P/D".padStart(7)}`,
  );
  const row = (name: string, p: number, dv: number | undefined, unit: string): void => {
    const ratio = dv === undefined || dv === 0 ? "-" : `${(p / dv).toFixed(2)}x`;
    const fmt = (v: number): string => (v >= 100 ? v.toFixed(0) : v.toFixed(1));
    out.push(
      `${name.padEnd(36)} ${fmt(p).padStart(12)} ${
        dv === undefined ? "-".padStart(12) : fmt(dv).padStart(12)
      }  ${ratio.padStart(7)}  ${unit}`,
    );
  };
  const p = r.postern;
  row("APPEND (pipelined, LITERAL+)", p.appendPerSecond, d?.appendPerSecond, "msg/s");
  row("SELECT INBOX", p.selectMs, d?.selectMs, "ms");
  row("FETCH 1:* (UID FLAGS)", p.fetchMs, d?.fetchMs, "ms");
  row("UID SEARCH ALL", p.search.allMs, d?.search.allMs, "ms");
  row("UID SEARCH UNSEEN", p.search.unseenMs, d?.search.unseenMs, "ms");
  row('UID SEARCH SUBJECT "needle" (1st)', p.search.subjectFirstMs, d?.search.subjectFirstMs, "ms");
  row(
    'UID SEARCH SUBJECT "needle" (2nd)',
    p.search.subjectSecondMs,
    d?.search.subjectSecondMs,
    "ms",
  );
  row('UID SEARCH BODY "needle" (1st)', p.search.bodyFirstMs, d?.search.bodyFirstMs, "ms");
  row('UID SEARCH BODY "needle" (2nd)', p.search.bodySecondMs, d?.search.bodySecondMs, "ms");
  row(
    "RSS per idle authenticated conn",
    p.idleRssPerConnection / 1024,
    d === null ? undefined : d.idleRssPerConnection / 1024,
    "KiB",
  );
  row(
    "PSS per idle authenticated conn",
    p.idlePssPerConnection / 1024,
    d === null ? undefined : d.idlePssPerConnection / 1024,
    "KiB",
  );
  row(
    "Disk used by the mailbox",
    p.diskBytes / 1e6,
    d?.diskBytes === undefined ? undefined : d.diskBytes / 1e6,
    "MB",
  );
  const hits = (f: ServerFigures): string =>
    `ALL ${f.search.hits.all}, UNSEEN ${f.search.hits.unseen}, SUBJECT ${f.search.hits.subject}, ` +
    `BODY ${f.search.hits.body}; FETCH lines ${f.fetchLines}`;
  out.push(`hits Postern: ${hits(p)}`);
  if (d !== null) out.push(`hits Dovecot: ${hits(d)}`);
  out.push(
    `MIME re-parse of the corpus in-process (parseMessage + searchText): ${
      r.reparseMs.toFixed(0)
    } ms; JSON decode of the stored summaries (fromSummary): ${
      r.summaryDecodeMs.toFixed(0)
    } ms; store scan (getSummary + fromSummary per message, SQLite): ${
      r.storeScanMs.toFixed(0)
    } ms`,
  );
  const second = Math.max(p.search.subjectSecondMs, p.search.bodySecondMs);
  const perMessage = (ms: number): string => `${((ms * 1000) / r.messages).toFixed(0)} µs`;
  out.push(
    second < r.reparseMs / 2
      ? `conclusion: a repeated SUBJECT/BODY search takes ${second.toFixed(0)} ms, ` +
        `${(r.reparseMs / second).toFixed(1)}x less than re-parsing every message ` +
        `(${r.reparseMs.toFixed(0)} ms), so SEARCH does not re-parse the corpus. Per message: ` +
        `SUBJECT (2nd) ${perMessage(p.search.subjectSecondMs)}, BODY (2nd) ` +
        `${perMessage(p.search.bodySecondMs)}, against ${perMessage(r.reparseMs)} to re-parse ` +
        `and ${perMessage(r.storeScanMs)} for one awaited getSummary + fromSummary; SEARCH ` +
        `reads the search text stored at APPEND, a few thousand messages per store query`
      : `conclusion: a repeated SUBJECT/BODY search takes ${second.toFixed(0)} ms ` +
        `(${perMessage(second)} per message), ${
          second < r.reparseMs ? "within 2x of" : "no less than"
        } a full re-parse (${r.reparseMs.toFixed(0)} ms, ${perMessage(r.reparseMs)} per ` +
        `message), so timing alone cannot show that SEARCH avoids re-parsing. Its floor, one ` +
        `awaited getSummary + fromSummary per message, takes ${perMessage(r.storeScanMs)} per ` +
        `message, of which JSON decoding is ${perMessage(r.summaryDecodeMs)}: the per-message ` +
        `store round trip, not parsing, dominates`,
  );
  out.push(
    `Postern RSS: ${p.rssMethod}; store: SQLite WAL, group commit (the WAL fdatasync-ed before every answer)`,
  );
  if (d !== null) {
    out.push(`Dovecot RSS: ${d.rssMethod}`);
    out.push(`Dovecot settings: ${r.dovecotSettings.join("; ")}`);
  } else out.push("Dovecot: not run (not installed, or not root)");
  out.push("P/D: Postern divided by Dovecot (for msg/s higher is better, for ms and KiB lower)");
  return out.join("\n");
}

function flag(args: readonly string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

if (import.meta.main) {
  const args = Deno.args;
  const serve = flag(args, "--serve-postern");
  const hold = flag(args, "--hold");
  if (serve !== undefined) {
    await servePostern(Number(serve));
  } else if (hold !== undefined) {
    await holdConnections(
      {
        port: Number(flag(args, "--port")),
        caPem: await Deno.readTextFile(flag(args, "--ca")!),
      },
      Number(hold),
    );
  } else {
    const quick = args.includes("--quick");
    const messages = Number(flag(args, "--messages") ?? (quick ? 10_000 : 100_000));
    const connections = Number(flag(args, "--connections") ?? 200);
    const format = flag(args, "--dovecot-format") ?? "mdbox";
    if (!(DOVECOT_FORMATS as readonly string[]).includes(format)) {
      throw new Error(`Unknown Dovecot format: ${format}`);
    }
    const result = await benchImap({
      messages,
      connections,
      skipDovecot: args.includes("--no-dovecot"),
      dovecotFormat: format as DovecotFormat,
      log: (s) => console.error(s),
    });
    console.log(formatResult(result));
  }
}
