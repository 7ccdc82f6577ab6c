/**
 * A multi-client IMAP state checker. N clients share one mailbox (INBOX) and run a random mix
 * of APPEND, STORE, UID STORE, FETCH, UID FETCH, SEARCH, COPY, MOVE, EXPUNGE, UID EXPUNGE,
 * NOOP and IDLE for a bounded time or number of commands. Each client keeps a model of the mailbox as
 * the server announced it (EXISTS, EXPUNGE, FETCH UID/FLAGS/MODSEQ, FLAGS, RECENT,
 * HIGHESTMODSEQ) and records every announcement that contradicts it:
 * - an EXISTS that goes down, or an EXPUNGE, FETCH or SEARCH hit beyond the known count;
 * - a FETCH whose UID differs from the one known for that sequence number, or breaks the
 *   ascending UID order;
 * - a keyword in FETCH FLAGS that the last FLAGS response did not list (RFC 3501, 7.2.6);
 * - a MODSEQ that goes down for a message, or a HIGHESTMODSEQ below a MODSEQ already seen;
 * - a RECENT count above EXISTS; a BAD answer to a command built from the model;
 * - a VANISHED naming a UID the client was never told of (QRESYNC clients).
 * With `reselect`, clients also SELECT INBOX again now and then, QRESYNC clients naming the UIDs
 * they know: what VANISHED (EARLIER) leaves must line up with the EXISTS and FETCH that follow.
 * At the end every client syncs (NOOP) and reads `FETCH 1:* (UID FLAGS)`: the answer must
 * match its model's count, and all clients must agree on the UIDs and flags.
 *
 * Connections are abstract (`CheckerConnection`): real sockets (`RawImap`) or an in-process
 * `ImapSession` (`sessionConnection`). Used by tests (short runs) and bench/ (20 clients x 20 s).
 */
import type { MailStore } from "../../mailstore/mail_store.ts";
import { ImapSession } from "../../protocol/imap/mod.ts";
import type { RawImap } from "./imap_clients.ts";

/** One command's answer: untagged response lines and the tagged line. */
export interface CheckerReply {
  readonly untagged: readonly string[];
  readonly tagged: string;
}

/** A logged-in IMAP connection the checker drives. */
export interface CheckerConnection {
  command(line: string, literal?: Uint8Array): Promise<CheckerReply>;
  /** IDLE for about `ms` milliseconds, then DONE; the untagged responses pushed meanwhile. */
  idle(ms: number): Promise<CheckerReply>;
  close(): Promise<void>;
}

/** Options of `runStateChecker`. */
export interface StateCheckOptions {
  readonly clients: number;
  /** Stop issuing commands after this long (milliseconds of wall time). */
  readonly durationMs: number;
  /** And after this many commands per client. */
  readonly maxCommands?: number;
  /** Seed of the command mix (default 1). */
  readonly seed?: number;
  /** Which clients SELECT with CONDSTORE (default every other one). */
  readonly condstore?: (client: number) => boolean;
  /**
   * Which clients ENABLE QRESYNC (default one in four), so that expunges reach them as
   * VANISHED; they never IDLE and learn every new UID at once, so that their model can apply
   * VANISHED by UID.
   */
  readonly qresync?: (client: number) => boolean;
  /**
   * Clients SELECT INBOX again now and then (default false): a QRESYNC client with its known
   * UIDs (RFC 7162, Section 3.2.5), whose VANISHED (EARLIER) and FETCH answers are checked
   * against its model, the others afresh.
   */
  readonly reselect?: boolean;
}

/** What a run found. */
export interface StateCheckResult {
  readonly errors: readonly string[];
  readonly commands: number;
  /** Untagged responses checked. */
  readonly responses: number;
  /** NO answers (allowed: e.g. a COPY of messages another client expunged). */
  readonly no: number;
  /** The first few NO answers with their commands, for the report. */
  readonly noSamples: readonly string[];
  readonly finalMessages: number;
}

/** A small seeded PRNG (mulberry32), so that a run can be replayed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Parses the items of a FETCH response this checker asks for (no literals). */
function fetchItems(body: string): { uid?: number; flags?: string[]; modseq?: number } {
  const out: { uid?: number; flags?: string[]; modseq?: number } = {};
  const uid = /(?:^|[ (])UID (\d+)/.exec(body);
  if (uid) out.uid = Number(uid[1]);
  const flags = /(?:^|[ (])FLAGS \(([^)]*)\)/.exec(body);
  if (flags) out.flags = flags[1]!.split(" ").filter((f) => f !== "");
  const modseq = /(?:^|[ (])MODSEQ \((\d+)\)/.exec(body);
  if (modseq) out.modseq = Number(modseq[1]);
  return out;
}

/** Expands a UID set such as `1:3,7` (bounded by the caller's UIDs). */
function expandSet(set: string): number[] {
  const out: number[] = [];
  for (const part of set.split(",")) {
    const [a, b] = part.split(":").map(Number) as [number, number | undefined];
    const hi = b ?? a;
    for (let n = Math.min(a, hi); n <= Math.max(a, hi) && out.length < 100_000; n++) out.push(n);
  }
  return out;
}

/** One client's model of the selected mailbox, fed with the server's untagged responses. */
export class MailboxModel {
  /** UIDs by sequence number - 1; undefined until a FETCH names it. */
  uids: (number | undefined)[] = [];
  keywords = new Set<string>();
  readonly modseqs = new Map<number, number>();
  maxModseq = 0;
  readonly errors: string[] = [];
  readonly #label: string;

  constructor(label: string) {
    this.#label = label;
  }

  get count(): number {
    return this.uids.length;
  }

  /** Forgets everything (before SELECT). */
  reset(): void {
    this.uids = [];
    this.keywords = new Set();
    this.modseqs.clear();
    this.maxModseq = 0;
  }

  #error(text: string, line: string, context: string): void {
    if (this.errors.length < 1000) {
      this.errors.push(`${this.#label}: ${text}: ${line.slice(0, 200)} [after ${context}]`);
    }
  }

  /** Checks one untagged response against the model and applies it. */
  observe(line: string, context = ""): void {
    let m: RegExpExecArray | null;
    if ((m = /^\* (\d+) EXISTS$/.exec(line))) {
      const n = Number(m[1]);
      if (n < this.count) this.#error(`EXISTS went down from ${this.count}`, line, context);
      while (this.uids.length < n) this.uids.push(undefined);
      return;
    }
    if ((m = /^\* (\d+) EXPUNGE$/.exec(line))) {
      const n = Number(m[1]);
      if (n < 1 || n > this.count) {
        this.#error(`EXPUNGE of unknown message (count ${this.count})`, line, context);
        return;
      }
      const [uid] = this.uids.splice(n - 1, 1);
      if (uid !== undefined) this.modseqs.delete(uid);
      return;
    }
    if ((m = /^\* VANISHED (\(EARLIER\) )?([\d:,]+)$/.exec(line))) {
      // VANISHED (EARLIER) only answers SELECT (QRESYNC) and UID FETCH (VANISHED).
      if (m[1] !== undefined) return;
      for (const uid of expandSet(m[2]!)) {
        let i = this.uids.indexOf(uid);
        if (i < 0) {
          // Known to the client only by sequence number: one of the unknown slots between its
          // known neighbours (any of them; they are indistinguishable).
          for (let k = 0; k < this.uids.length; k++) {
            const u = this.uids[k];
            if (u === undefined) {
              if (i < 0) i = k;
            } else if (u < uid) i = -1;
            else break;
          }
        }
        if (i < 0) {
          this.#error(`VANISHED of unknown UID ${uid}`, line, context);
          continue;
        }
        this.uids.splice(i, 1);
        this.modseqs.delete(uid);
      }
      return;
    }
    if ((m = /^\* (\d+) RECENT$/.exec(line))) {
      if (Number(m[1]) > this.count) {
        this.#error(`RECENT above EXISTS ${this.count}`, line, context);
      }
      return;
    }
    if ((m = /^\* FLAGS \((.*)\)$/.exec(line))) {
      this.keywords = new Set(
        m[1]!.split(" ").filter((f) => f !== "" && !f.startsWith("\\")).map((f) => f.toLowerCase()),
      );
      return;
    }
    if ((m = /^\* OK \[HIGHESTMODSEQ (\d+)\]/.exec(line))) {
      const n = Number(m[1]);
      if (n < this.maxModseq) {
        this.#error(`HIGHESTMODSEQ below MODSEQ ${this.maxModseq} already seen`, line, context);
      }
      return;
    }
    if ((m = /^\* SEARCH((?: \d+)*)/.exec(line))) {
      for (const s of m[1]!.trim().split(" ").filter((x) => x !== "")) {
        if (Number(s) > this.count) this.#error(`SEARCH hit beyond ${this.count}`, line, context);
      }
      return;
    }
    if ((m = /^\* (\d+) FETCH \((.*)\)$/.exec(line))) {
      const seq = Number(m[1]);
      if (seq < 1 || seq > this.count) {
        this.#error(`FETCH of unknown message (count ${this.count})`, line, context);
        return;
      }
      const items = fetchItems(m[2]!);
      let uid = this.uids[seq - 1];
      if (items.uid !== undefined) {
        if (uid !== undefined && uid !== items.uid) {
          this.#error(`UID ${items.uid} at a sequence number known as UID ${uid}`, line, context);
        }
        uid = items.uid;
        this.uids[seq - 1] = uid;
        const before = this.uids.slice(0, seq - 1).findLast((u) => u !== undefined);
        const after = this.uids.slice(seq).find((u) => u !== undefined);
        if ((before !== undefined && before >= uid) || (after !== undefined && after <= uid)) {
          this.#error("UIDs out of order", line, context);
        }
      }
      for (const f of items.flags ?? []) {
        if (!f.startsWith("\\") && !this.keywords.has(f.toLowerCase())) {
          this.#error(`keyword ${f} before any FLAGS listed it`, line, context);
        }
      }
      if (items.modseq !== undefined) {
        if (uid !== undefined) {
          const prev = this.modseqs.get(uid) ?? 0;
          if (items.modseq < prev) this.#error(`MODSEQ went down from ${prev}`, line, context);
          this.modseqs.set(uid, items.modseq);
        }
        this.maxModseq = Math.max(this.maxModseq, items.modseq);
      }
    }
  }
}

const KEYWORDS = ["$k0", "$k1", "$k2", "$k3", "$k4", "$k5", "$k6", "$k7"];
const SYSTEM = ["\\Seen", "\\Flagged", "\\Answered", "\\Deleted", "\\Draft"];
const enc = new TextEncoder();

/** One checker client: its connection, its model and its random command generator. */
class CheckerClient {
  readonly model: MailboxModel;
  commands = 0;
  responses = 0;
  no = 0;
  readonly noSamples: string[] = [];
  readonly #conn: CheckerConnection;
  readonly #random: () => number;
  readonly #condstore: boolean;
  readonly #qresync: boolean;
  #filling = false;
  readonly #id: number;
  #maxUid = 0;
  readonly #reselect: boolean;
  #uidValidity = 0;

  constructor(
    id: number,
    conn: CheckerConnection,
    seed: number,
    condstore: boolean,
    qresync: boolean,
    reselect = false,
  ) {
    this.#reselect = reselect;
    this.#id = id;
    this.#conn = conn;
    this.#random = prng(seed);
    this.#condstore = condstore || qresync;
    this.#qresync = qresync;
    this.model = new MailboxModel(`client ${id}`);
  }

  async run(line: string, literal?: Uint8Array): Promise<CheckerReply> {
    const reply = line === "IDLE"
      ? await this.#conn.idle(this.#int(5, 50))
      : await this.#conn.command(line, literal);
    this.commands++;
    for (const u of reply.untagged) {
      this.responses++;
      this.model.observe(u, line);
      const uid = /UID (\d+)/.exec(u);
      if (uid) this.#maxUid = Math.max(this.#maxUid, Number(uid[1]));
    }
    const status = reply.tagged.split(" ")[1];
    if (status === "BAD") {
      this.model.errors.push(`client ${this.#id}: BAD to ${line}: ${reply.tagged}`);
    }
    if (status === "NO" && ++this.no <= 3) this.noSamples.push(`${line} -> ${reply.tagged}`);
    const code = /\[(?:APPENDUID|COPYUID) \d+ (?:\S+ )?([\d:,]+)\]/.exec(reply.tagged);
    if (code) {
      for (const n of code[1]!.split(/[:,]/)) this.#maxUid = Math.max(this.#maxUid, Number(n));
    }
    if (this.#qresync && !this.#filling) await this.#learnUids();
    return reply;
  }

  /** A QRESYNC client asks for the UIDs of messages it knows only by sequence number. */
  async #learnUids(): Promise<void> {
    this.#filling = true;
    try {
      for (let i = 0; i < 10; i++) {
        const first = this.model.uids.findIndex((u) => u === undefined);
        if (first < 0) return;
        await this.run(`FETCH ${first + 1}:* (UID)`);
      }
    } finally {
      this.#filling = false;
    }
  }

  async select(): Promise<void> {
    this.model.reset();
    if (this.#qresync) await this.run("ENABLE QRESYNC");
    const reply = await this.run(`SELECT INBOX${this.#condstore ? " (CONDSTORE)" : ""}`);
    this.#noteUidValidity(reply);
  }

  #noteUidValidity(reply: CheckerReply): void {
    for (const u of reply.untagged) {
      const m = /^\* OK \[UIDVALIDITY (\d+)\]/.exec(u);
      if (m) this.#uidValidity = Number(m[1]);
    }
  }

  /**
   * SELECTs INBOX again. A QRESYNC client that knows every UID names them (RFC 7162, Section
   * 3.2.5.2) with MODSEQ 1: the VANISHED (EARLIER) answer must name every one of them that is
   * gone, so that the rest keep their order and the new ones follow.
   */
  async #reselectInbox(): Promise<void> {
    const known = this.model.uids;
    if (!this.#qresync || this.#uidValidity === 0 || known.some((u) => u === undefined)) {
      this.model.reset();
      const reply = await this.run("SELECT INBOX (CONDSTORE)");
      this.#noteUidValidity(reply);
      return;
    }
    const uids = known as number[];
    const line = uids.length === 0
      ? `SELECT INBOX (QRESYNC (${this.#uidValidity} 1))`
      : `SELECT INBOX (QRESYNC (${this.#uidValidity} 1 ${uids.join(",")}))`;
    const reply = await this.#conn.command(line);
    this.commands++;
    const gone = new Set<number>();
    for (const u of reply.untagged) {
      const m = /^\* VANISHED \(EARLIER\) ([\d:,]+)$/.exec(u);
      if (m) { for (const uid of expandSet(m[1]!)) gone.add(uid); }
    }
    this.model.reset();
    this.model.uids = uids.filter((u) => !gone.has(u));
    this.model.modseqs.clear();
    for (const u of reply.untagged) {
      this.responses++;
      if (!u.startsWith("* VANISHED (EARLIER) ")) this.model.observe(u, line.slice(0, 60));
    }
    if (reply.tagged.split(" ")[1] !== "OK") {
      this.model.errors.push(`client ${this.#id}: ${line.slice(0, 60)}: ${reply.tagged}`);
    }
    this.#noteUidValidity(reply);
    await this.#learnUids();
  }

  #pick<T>(list: readonly T[]): T {
    return list[Math.floor(this.#random() * list.length)]!;
  }

  #int(lo: number, hi: number): number {
    return lo + Math.floor(this.#random() * (hi - lo + 1));
  }

  #flags(): string {
    const n = this.#int(1, 3);
    const out = new Set<string>();
    for (let i = 0; i < n; i++) {
      out.add(this.#random() < 0.5 ? this.#pick(KEYWORDS) : this.#pick(SYSTEM));
    }
    return [...out].join(" ");
  }

  #seqSet(): string {
    const count = this.model.count;
    const a = this.#int(1, count);
    if (this.#random() < 0.3) return String(a);
    if (this.#random() < 0.1) return `${a}:*`;
    return `${a}:${this.#int(a, Math.min(count, a + 10))}`;
  }

  #uidSet(): string {
    const a = this.#int(1, Math.max(1, this.#maxUid));
    return `${a}:${a + this.#int(0, 5)}`;
  }

  /** Runs one random command. */
  async step(): Promise<void> {
    const count = this.model.count;
    const r = this.#random() * 100;
    const modseq = this.#condstore ? " MODSEQ" : "";
    if (count === 0 || r < (count > 150 ? 4 : 14)) {
      const body = `From: c${this.#id}@example.org\r\nSubject: m${this.commands}\r\n\r\nHi.\r\n`;
      await this.run(`APPEND INBOX (${this.#flags()})`, enc.encode(body));
    } else if (r < 40) {
      const op = this.#pick(["+", "+", "-"]);
      const silent = this.#random() < 0.2 ? ".SILENT" : "";
      await this.run(`STORE ${this.#seqSet()} ${op}FLAGS${silent} (${this.#flags()})`);
    } else if (r < 46) {
      await this.run(`UID STORE ${this.#uidSet()} +FLAGS (${this.#flags()})`);
    } else if (r < 60) {
      await this.run(`FETCH ${this.#seqSet()} (UID FLAGS${modseq})`);
    } else if (r < 64) {
      await this.run(`UID FETCH ${this.#uidSet()} (FLAGS${modseq})`);
    } else if (r < 70) {
      await this.run(`SEARCH KEYWORD ${this.#pick(KEYWORDS)}`);
    } else if (r < 75) {
      if (this.#reselect && r < 71) await this.#reselectInbox();
      else await this.run("NOOP");
    } else if (r < 80) {
      await this.run(this.#qresync ? "NOOP" : "IDLE");
    } else if (r < 86) {
      await this.run(count > 100 ? "EXPUNGE" : "NOOP");
    } else if (r < 89) {
      await this.run(`UID EXPUNGE ${this.#uidSet()}`);
    } else if (r < 95) {
      if (count < 150) await this.run(`COPY ${this.#seqSet()} INBOX`);
      else await this.run(`STORE 1:${this.#int(1, 20)} +FLAGS.SILENT (\\Deleted)`);
    } else {
      await this.run(`MOVE ${this.#seqSet()} Archive`);
    }
  }

  /** Syncs and returns `uid flags` lines of the whole mailbox, checking them against the model. */
  async final(): Promise<string[]> {
    await this.run("NOOP");
    const reply = await this.run("FETCH 1:* (UID FLAGS)");
    const fetched = reply.untagged.filter((u) => / FETCH /.test(u));
    if (this.model.count > 0 && fetched.length !== this.model.count) {
      const got = new Set(fetched.map((u) => Number(/UID (\d+)/.exec(u)?.[1])));
      const absent = this.model.uids.map((u, i) => [i + 1, u] as const)
        .filter(([, u]) => u === undefined || !got.has(u)).slice(0, 5)
        .map(([seq, u]) => `${seq}:${u ?? "?"}`);
      this.model.errors.push(
        `client ${this.#id}: FETCH 1:* gave ${fetched.length} messages, model has ` +
          `${this.model.count} (absent seq:uid ${absent.join(" ")}; ${reply.tagged})`,
      );
    }
    return fetched.map((u) => {
      const items = fetchItems(/FETCH \((.*)\)$/.exec(u)?.[1] ?? "");
      const flags = (items.flags ?? []).filter((f) => f.toLowerCase() !== "\\recent")
        .map((f) => f.toLowerCase()).sort();
      return `${items.uid} ${flags.join(" ")}`;
    });
  }
}

/**
 * Runs the checker: `connect` gives a logged-in connection (called `clients` times); the
 * mailbox INBOX is shared. Resolves with every contradiction found.
 */
export async function runStateChecker(
  connect: () => Promise<CheckerConnection>,
  options: StateCheckOptions,
): Promise<StateCheckResult> {
  const conns: CheckerConnection[] = [];
  try {
    for (let i = 0; i < options.clients; i++) conns.push(await connect());
    const condstore = options.condstore ?? ((i: number) => i % 2 === 0);
    const qresync = options.qresync ?? ((i: number) => i % 4 === 1);
    const clients = conns.map((c, i) =>
      new CheckerClient(
        i,
        c,
        (options.seed ?? 1) * 1000 + i,
        condstore(i),
        qresync(i),
        options.reselect ?? false,
      )
    );
    // MOVE targets Archive, which a server may not have yet; a NO here is fine.
    await conns[0]?.command("CREATE Archive");
    for (const c of clients) await c.select();
    const deadline = Date.now() + options.durationMs;
    const max = options.maxCommands ?? Number.MAX_SAFE_INTEGER;
    await Promise.all(clients.map(async (c) => {
      while (Date.now() < deadline && c.commands < max) await c.step();
    }));
    const finals = [];
    for (const c of clients) finals.push(await c.final());
    const errors = clients.flatMap((c) => c.model.errors);
    const reference = finals[0] ?? [];
    for (const [i, f] of finals.entries()) {
      if (f.join("\n") !== reference.join("\n")) {
        const diff = f.filter((x) => !reference.includes(x)).slice(0, 3);
        errors.push(`client ${i}: final mailbox differs from client 0's (${diff.join("; ")})`);
      }
    }
    return {
      errors,
      commands: clients.reduce((n, c) => n + c.commands, 0),
      responses: clients.reduce((n, c) => n + c.responses, 0),
      no: clients.reduce((n, c) => n + c.no, 0),
      noSamples: clients.flatMap((c) => c.noSamples).slice(0, 5),
      finalMessages: reference.length,
    };
  } finally {
    for (const c of conns) await c.close().catch(() => {});
  }
}

/** A checker connection over a logged-in `RawImap`. */
export function rawConnection(imap: RawImap): CheckerConnection {
  return {
    async command(line, literal) {
      const r = await imap.command(line, literal, 30_000);
      return { untagged: r.untagged.map((u) => u.text), tagged: r.tagged };
    },
    async idle(ms) {
      const tag = imap.nextTag();
      await imap.write(`${tag} IDLE\r\n`);
      const start = await imap.readUntil((r) => r.text.startsWith("+"), 30_000);
      if (start === null) throw new Error("No continuation for IDLE");
      await new Promise((resolve) => setTimeout(resolve, ms));
      await imap.write("DONE\r\n");
      const rest = await imap.readUntil((r) => r.text.startsWith(`${tag} `), 30_000);
      if (rest === null) throw new Error("No tagged answer to IDLE");
      const all = [...start.slice(0, -1), ...rest];
      const tagged = all.pop()!.text;
      return { untagged: all.map((r) => r.text), tagged };
    },
    close: () => imap.close(),
  };
}

/**
 * A checker connection to an in-process `ImapSession` over `store` (no sockets), logged in as
 * `user` (created if missing, any password accepted).
 */
export async function sessionConnection(
  store: MailStore,
  user: string,
): Promise<CheckerConnection> {
  if ((await store.getAccount(user)) === null) {
    await store.createAccount(user, null).catch(() => {});
  }
  const session = new ImapSession({
    store,
    authenticator: {
      login: (name) => Promise.resolve({ accountName: name }),
      external: () => Promise.resolve(null),
    },
    tls: true,
    starttlsAvailable: false,
    peer: { address: "127.0.0.1:1", identity: null },
  });
  const latin1 = new TextDecoder("latin1");
  let buffer = "";
  session.onOutput = (bytes) => {
    buffer += latin1.decode(bytes);
  };
  session.greeting();
  let tag = 0;
  const take = (t: string): CheckerReply => {
    const lines = buffer.split("\r\n").filter((l) => l !== "" && !l.startsWith("+ "));
    buffer = "";
    const i = lines.findIndex((l) => l.startsWith(`${t} `));
    if (i < 0) throw new Error(`No tagged answer to ${t}`);
    return { untagged: lines.slice(0, i), tagged: lines[i]! };
  };
  const conn: CheckerConnection = {
    async command(line, literal) {
      const t = `c${++tag}`;
      const head = enc.encode(
        literal ? `${t} ${line} {${literal.length}+}\r\n` : `${t} ${line}\r\n`,
      );
      const bytes = literal ? new Uint8Array([...head, ...literal, 13, 10]) : head;
      await session.receive(bytes);
      return take(t);
    },
    async idle(ms) {
      const t = `c${++tag}`;
      await session.receive(enc.encode(`${t} IDLE\r\n`));
      await new Promise((resolve) => setTimeout(resolve, ms));
      await session.receive(enc.encode("DONE\r\n"));
      return take(t);
    },
    close() {
      session.dispose();
      return Promise.resolve();
    },
  };
  await conn.command(`LOGIN ${user} pw`);
  return conn;
}
