/**
 * Readers for mail to import: mbox files (mboxrd/mboxo, RFC 4155: `From ` separator lines,
 * `>From ` unquoting, Status/X-Status flags) and Maildir folders (`cur/` and `new/`, flags from
 * the `:2,FRS` info suffix). Messages come out with CRLF line endings, as IMAP serves them.
 */
import { concatBytes } from "../../protocol/bytes.ts";
import { join } from "node:path";

/** One message ready to append. */
export interface ImportMessage {
  readonly raw: Uint8Array;
  readonly flags: readonly string[];
  /** Milliseconds since the epoch, when the source records it. */
  readonly internalDate?: number;
}

/** What a reader yields: a message, or a message skipped because it is too large. */
export type ImportItem =
  | { readonly kind: "message"; readonly message: ImportMessage }
  | { readonly kind: "oversized"; readonly size: number };

/** Progress of a reader: units done of total (bytes for mbox, files for Maildir). */
export type ProgressCallback = (done: number, total: number) => void;

const LF = 0x0a;
const CR = 0x0d;
const FROM_ = new TextEncoder().encode("From ");
/** Longest header line read for Status flags; longer lines are not Status headers anyway. */
const MAX_STATUS_LINE = 256;
const decoder = new TextDecoder("latin1");

/** Converts lone LF line endings to CRLF (existing CRLF pairs stay). */
export function toCrlf(bytes: Uint8Array): Uint8Array {
  let lone = 0;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] === LF && (i === 0 || bytes[i - 1] !== CR)) lone++;
  }
  if (lone === 0) return bytes;
  const out = new Uint8Array(bytes.length + lone);
  let o = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b === LF && (i === 0 || bytes[i - 1] !== CR)) out[o++] = CR;
    out[o++] = b;
  }
  return out;
}

function startsWith(bytes: Uint8Array, prefix: Uint8Array, at = 0): boolean {
  if (bytes.length - at < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[at + i] !== prefix[i]) return false;
  return true;
}

/** Whether a line is `>From `, `>>From `, … (mboxrd quoting), so one `>` must go. */
function isQuotedFrom(line: Uint8Array): boolean {
  let i = 0;
  while (i < line.length && line[i] === 0x3e) i++;
  return i > 0 && startsWith(line, FROM_, i);
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** The asctime date of a `From sender Www Mmm dd hh:mm:ss yyyy` line, taken as UTC. */
export function parseFromLineDate(line: string): number | undefined {
  const m = /\b([A-Z][a-z]{2}) +(\d{1,2}) (\d\d):(\d\d)(?::(\d\d))? (?:[A-Z]{2,5} )?(\d{4})\b/
    .exec(line);
  if (m === null) return undefined;
  const month = MONTHS.indexOf(m[1]!);
  if (month < 0) return undefined;
  const time = Date.UTC(
    Number(m[6]),
    month,
    Number(m[2]),
    Number(m[3]),
    Number(m[4]),
    Number(m[5] ?? 0),
  );
  return Number.isNaN(time) ? undefined : time;
}

/** IMAP flags from mbox `Status:` (R = seen) and `X-Status:` (A, F, D, T) header values. */
export function mboxFlags(status: string, xStatus: string): string[] {
  const flags: string[] = [];
  if (status.includes("R")) flags.push("\\Seen");
  if (xStatus.includes("A")) flags.push("\\Answered");
  if (xStatus.includes("F")) flags.push("\\Flagged");
  if (xStatus.includes("D")) flags.push("\\Deleted");
  if (xStatus.includes("T")) flags.push("\\Draft");
  return flags;
}

/** IMAP flags from a Maildir info suffix (`:2,FRS`); unknown letters are ignored. */
export function maildirFlags(fileName: string): string[] {
  const m = /[:;!]2,([A-Za-z]*)$/.exec(fileName);
  if (m === null) return [];
  const table: Record<string, string> = {
    D: "\\Draft",
    F: "\\Flagged",
    P: "$Forwarded",
    R: "\\Answered",
    S: "\\Seen",
    T: "\\Deleted",
  };
  const flags: string[] = [];
  for (const letter of m[1]!) {
    const flag = table[letter];
    if (flag !== undefined && !flags.includes(flag)) flags.push(flag);
  }
  return flags;
}

/** Accumulates one mbox message line by line, capped at `maxSize` bytes. */
class MboxMessage {
  readonly #lines: Uint8Array[] = [];
  readonly #internalDate: number | undefined;
  readonly #maxSize: number;
  #size = 0;
  #inHeader = true;
  #status = "";
  #xStatus = "";

  constructor(fromLine: string, maxSize: number) {
    this.#internalDate = parseFromLineDate(fromLine);
    this.#maxSize = maxSize;
  }

  /** Adds a line without its line ending. */
  add(line: Uint8Array): void {
    if (this.#inHeader) {
      if (line.length === 0 || (line.length === 1 && line[0] === CR)) this.#inHeader = false;
      else if (line.length < MAX_STATUS_LINE) {
        const text = decoder.decode(line);
        const m = /^(X-Status|Status):\s*(.*?)\s*$/i.exec(text);
        if (m !== null) {
          if (m[1]!.toLowerCase() === "status") this.#status = m[2]!;
          else this.#xStatus = m[2]!;
        }
      }
    }
    const body = isQuotedFrom(line) ? line.subarray(1) : line;
    this.#size += body.length + 2;
    if (this.#size <= this.#maxSize) this.#lines.push(body);
  }

  finish(): ImportItem {
    // The blank line before the next From_ line belongs to the mbox, not to the message.
    const last = this.#lines[this.#lines.length - 1];
    if (last !== undefined && (last.length === 0 || (last.length === 1 && last[0] === CR))) {
      this.#lines.pop();
      this.#size -= last.length + 2;
    }
    if (this.#size > this.#maxSize) return { kind: "oversized", size: this.#size };
    const raw = new Uint8Array(this.#size);
    let at = 0;
    for (const line of this.#lines) {
      const end = line.length > 0 && line[line.length - 1] === CR ? line.length - 1 : line.length;
      raw.set(line.subarray(0, end), at);
      at += end;
      raw[at++] = CR;
      raw[at++] = LF;
    }
    const message: ImportMessage = {
      raw: raw.subarray(0, at),
      flags: mboxFlags(this.#status, this.#xStatus),
      ...(this.#internalDate === undefined ? {} : { internalDate: this.#internalDate }),
    };
    return { kind: "message", message };
  }
}

/** Raised when a file is not an mbox or a folder is not a Maildir. */
export class ImportFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ImportFormatError";
  }
}

/**
 * Reads the messages of an mbox stream. Every line that starts with `From ` begins a message
 * (writers quote such body lines as `>From `); the first line must be one.
 */
export async function* readMbox(
  chunks: AsyncIterable<Uint8Array>,
  maxMessageSize: number,
  onProgress?: (bytes: number) => void,
): AsyncGenerator<ImportItem> {
  let pending = new Uint8Array(0);
  let current: MboxMessage | undefined;
  let read = 0;
  let sawLine = false;
  const handle = (line: Uint8Array): ImportItem | undefined => {
    if (!sawLine) {
      sawLine = true;
      if (!startsWith(line, FROM_)) {
        throw new ImportFormatError('not an mbox file (the first line must start with "From ")');
      }
    }
    if (startsWith(line, FROM_)) {
      const done = current?.finish();
      current = new MboxMessage(decoder.decode(line.subarray(0, MAX_STATUS_LINE)), maxMessageSize);
      return done;
    }
    current!.add(line);
    return undefined;
  };
  for await (const chunk of chunks) {
    read += chunk.length;
    const data = pending.length === 0 ? chunk : concatBytes([pending, chunk]);
    let start = 0;
    for (let i = data.indexOf(LF); i !== -1; i = data.indexOf(LF, start)) {
      const item = handle(data.subarray(start, i));
      start = i + 1;
      if (item !== undefined) yield item;
    }
    pending = data.slice(start);
    // A single line longer than the message cap cannot be kept whole; pass it on in pieces.
    if (pending.length > maxMessageSize + 2 && current !== undefined) {
      current.add(pending);
      pending = new Uint8Array(0);
    }
    onProgress?.(read);
  }
  if (pending.length > 0) {
    const item = handle(pending);
    if (item !== undefined) yield item;
  }
  if (current !== undefined) yield current.finish();
}

/** A Maildir message file, with the time its name records. */
interface MaildirEntry {
  readonly path: string;
  readonly name: string;
  readonly seconds: number | undefined;
}

/** Whether `dir` looks like a Maildir (has `cur/` or `new/`). */
export async function isMaildir(dir: string): Promise<boolean> {
  for (const sub of ["cur", "new"]) {
    try {
      if ((await Deno.stat(join(dir, sub))).isDirectory) return true;
    } catch {
      // Missing: try the other one.
    }
  }
  return false;
}

/** Lists the message files of a Maildir (new/ and cur/), oldest first. */
export async function listMaildir(dir: string): Promise<MaildirEntry[]> {
  if (!(await isMaildir(dir))) {
    throw new ImportFormatError(`${dir} is not a Maildir (no cur/ or new/ folder)`);
  }
  const entries: MaildirEntry[] = [];
  for (const sub of ["new", "cur"]) {
    const folder = join(dir, sub);
    try {
      for await (const entry of Deno.readDir(folder)) {
        if (!entry.isFile || entry.name.startsWith(".")) continue;
        const m = /^(\d+)\./.exec(entry.name);
        entries.push({
          path: join(folder, entry.name),
          name: entry.name,
          seconds: m === null ? undefined : Number(m[1]),
        });
      }
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
  entries.sort((a, b) =>
    (a.seconds ?? 0) - (b.seconds ?? 0) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
  );
  return entries;
}

/** Reads the messages of a Maildir, oldest first, reporting progress in files. */
export async function* readMaildir(
  dir: string,
  maxMessageSize: number,
  onProgress?: ProgressCallback,
): AsyncGenerator<ImportItem> {
  const entries = await listMaildir(dir);
  let done = 0;
  for (const entry of entries) {
    const info = await Deno.stat(entry.path);
    if (info.size > maxMessageSize) {
      yield { kind: "oversized", size: info.size };
    } else {
      const raw = toCrlf(await Deno.readFile(entry.path));
      const internalDate = entry.seconds !== undefined
        ? entry.seconds * 1000
        : info.mtime?.getTime();
      yield {
        kind: "message",
        message: {
          raw,
          flags: maildirFlags(entry.name),
          ...(internalDate === undefined ? {} : { internalDate }),
        },
      };
    }
    onProgress?.(++done, entries.length);
  }
}
