/**
 * One LMTP connection's protocol state (RFC 2033): a sans-IO engine that takes the client's
 * bytes and gives reply bytes. It never touches sockets, timers or the store: recipients are
 * resolved and messages delivered through the injected `LmtpBackend`, which the server
 * implements, and the clock is injected for the transaction time limit.
 *
 * Commands are processed strictly in order, so PIPELINING (RFC 2920) needs nothing more than
 * buffering. After the end of DATA, or after `BDAT … LAST` (RFC 3030), one reply is sent per
 * accepted recipient, in RCPT order (RFC 2033, Section 4.2).
 */
import { type Command, formatMailbox, type Mailbox, parseCommand } from "./command.ts";
import { type DataProblem, DataReader, joinParts } from "./data_reader.ts";
import { formatReply, type LmtpReply, reply } from "./reply.ts";

/** The envelope of the transaction in progress, as the backend sees it. */
export interface Envelope {
  /** The client's LHLO argument. */
  readonly lhlo: string;
  /** The reverse-path; null for `<>` (bounces). */
  readonly sender: Mailbox | null;
  /** `BODY=` of MAIL (RFC 6152); 7BIT when absent. */
  readonly body: "7BIT" | "8BITMIME";
  /** MAIL carried SMTPUTF8 (RFC 6531). */
  readonly smtputf8: boolean;
  /** `SIZE=` of MAIL (RFC 1870), or null. */
  readonly declaredSize: number | null;
}

/** What the backend decided about one RCPT. */
export type RecipientVerdict<R> =
  | { readonly accept: true; readonly recipient: R }
  | { readonly accept: false; readonly reply: LmtpReply };

/**
 * Everything the engine waits on. Both methods may take their time; the engine processes no
 * further input until they settle. A method that throws is answered `451 4.3.0` for the
 * recipients concerned.
 */
export interface LmtpBackend<R> {
  /** Resolves a RCPT address: 550 5.1.1 for unknown, 451 4.4.3 when the directory is down. */
  recipient(address: Mailbox, envelope: Envelope): Promise<RecipientVerdict<R>>;
  /**
   * Delivers `message` to every accepted recipient and returns one reply per recipient, in
   * the same order. A 2xx reply promises that the message is committed to that recipient's
   * mailbox.
   */
  deliver(envelope: Envelope, recipients: readonly R[], message: Uint8Array): Promise<
    readonly LmtpReply[]
  >;
}

export interface LmtpLimits {
  /** Largest message in octets, advertised as SIZE (RFC 1870). */
  readonly maxMessageSize: number;
  /** Most RCPT commands accepted per transaction (RFC 5321, 4.5.3.1.8: at least 100). */
  readonly maxRecipients: number;
  /** Longest line of message text in octets, CRLF excluded. */
  readonly maxLineLength: number;
  /** Longest command line in octets, CRLF included. */
  readonly maxCommandLength: number;
  /** Refused commands after which the connection is closed. */
  readonly maxErrors: number;
  /** Longest time from MAIL to the end of the message, in milliseconds. */
  readonly transactionTimeoutMs: number;
}

export const defaultLmtpLimits: LmtpLimits = {
  maxMessageSize: 50 * 1024 * 1024,
  maxRecipients: 100,
  maxLineLength: 64 * 1024,
  maxCommandLength: 4096,
  maxErrors: 20,
  transactionTimeoutMs: 10 * 60_000,
};

export interface LmtpSessionOptions<R> {
  readonly backend: LmtpBackend<R>;
  /** The server's name in the greeting and LHLO reply. */
  readonly hostname: string;
  readonly limits?: Partial<LmtpLimits>;
  /** Clock in milliseconds (default `Date.now`). */
  readonly now?: () => number;
}

interface Transaction<R> {
  readonly envelope: Envelope;
  readonly startedAt: number;
  readonly recipients: R[];
  rcptCount: number;
  /** Set once BDAT was used: DATA may not follow (RFC 3030, Section 2). */
  chunked: boolean;
  chunks: Uint8Array[];
  chunkBytes: number;
  /** A failed BDAT chunk fails the rest of the transaction (RFC 3030, Section 4.2). */
  failed: LmtpReply | null;
}

/** How the bytes that arrive are read. */
type InputMode =
  | { readonly kind: "expectCommand" }
  | { readonly kind: "skipLongLine" }
  | { readonly kind: "expectData"; readonly reader: DataReader }
  | { readonly kind: "expectChunk"; remaining: number; readonly last: boolean; discard: boolean };

const decoder = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();
const LF = 0x0a;

const OK = reply(250, "2.0.0", "OK");
const BAD_SEQUENCE_MAIL = reply(503, "5.5.1", "Send MAIL first");
const BAD_SEQUENCE_LHLO = reply(503, "5.5.1", "Send LHLO first");
const NO_RECIPIENTS = reply(503, "5.5.1", "No valid recipients");
const TEMP_FAILURE = reply(451, "4.3.0", "Temporary failure, try again later");

export class LmtpSession<R> {
  /** Receives every batch of reply bytes. */
  onOutput: (data: Uint8Array) => void = () => {};
  /** Called once when the session wants the connection closed, with its last reply. */
  onClose: (last: LmtpReply) => void = () => {};

  readonly #backend: LmtpBackend<R>;
  readonly #hostname: string;
  readonly #limits: LmtpLimits;
  readonly #now: () => number;
  #lhlo: string | null = null;
  #tx: Transaction<R> | null = null;
  #mode: InputMode = { kind: "expectCommand" };
  #buffer: Uint8Array = new Uint8Array(0);
  #out = "";
  #errors = 0;
  #busy = false;
  #closed = false;
  #closeWhenIdle: LmtpReply | null = null;

  constructor(options: LmtpSessionOptions<R>) {
    this.#backend = options.backend;
    this.#hostname = options.hostname.replace(/[^\x21-\x7e]/g, "");
    this.#limits = { ...defaultLmtpLimits, ...options.limits };
    this.#now = options.now ?? Date.now;
  }

  /** True once the session has closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** True while a transaction is open (MAIL accepted, message not yet answered). */
  get inTransaction(): boolean {
    return this.#tx !== null;
  }

  /** The greeting (RFC 5321, Section 4.3.1). */
  greeting(): Uint8Array {
    return encoder.encode(formatReply(reply(220, null, `${this.#hostname} LMTP Postern ready`)));
  }

  /**
   * Processes client bytes. Calls must not overlap: the driver awaits each before reading on,
   * which also bounds the buffered input to one command line or chunk.
   */
  async receive(data: Uint8Array): Promise<void> {
    if (this.#closed) return;
    if (this.#busy) throw new Error("LmtpSession.receive() called while busy");
    this.#busy = true;
    try {
      this.#buffer = this.#buffer.length === 0 ? data : concat(this.#buffer, data);
      await this.#process();
    } finally {
      this.#busy = false;
      // What is left may be a view of the driver's read buffer, which it reuses.
      if (this.#buffer.length > 0) this.#buffer = this.#buffer.slice();
    }
    this.#flush();
    if (this.#closeWhenIdle !== null && !this.#closed) this.#close(this.#closeWhenIdle);
  }

  /**
   * Ends a transaction that has run longer than `transactionTimeoutMs` with 421 4.4.2; the
   * driver calls this now and then. Returns true if it closed the session. A delivery in
   * progress is never interrupted.
   */
  checkTimeout(): boolean {
    if (this.#closed || this.#busy || this.#tx === null) return false;
    if (this.#now() - this.#tx.startedAt <= this.#limits.transactionTimeoutMs) return false;
    this.#close(reply(421, "4.4.2", `${this.#hostname} Transaction took too long, closing`));
    return true;
  }

  /** Closes a connection that sent nothing for too long (the driver's timer decides). */
  idleTimeout(): void {
    if (this.#closed || this.#busy) return;
    this.#close(reply(421, "4.4.2", `${this.#hostname} Idle for too long, closing`));
  }

  /** Server-initiated end (shutdown): 421, after a delivery in progress has been answered. */
  shutdown(): void {
    const bye = reply(421, "4.3.2", `${this.#hostname} Service shutting down`);
    if (this.#busy) this.#closeWhenIdle = bye;
    else if (!this.#closed) this.#close(bye);
  }

  async #process(): Promise<void> {
    while (!this.#closed && this.#buffer.length > 0) {
      const mode = this.#mode;
      switch (mode.kind) {
        case "expectCommand": {
          const lf = this.#buffer.indexOf(LF);
          if (lf === -1) {
            if (this.#buffer.length >= this.#limits.maxCommandLength) {
              this.#buffer = new Uint8Array(0);
              this.#mode = { kind: "skipLongLine" };
              this.#refuse(reply(500, "5.5.2", "Line too long"));
            }
            return;
          }
          const raw = this.#buffer.subarray(0, lf);
          this.#buffer = this.#buffer.subarray(lf + 1);
          if (raw.length + 1 > this.#limits.maxCommandLength) {
            this.#refuse(reply(500, "5.5.2", "Line too long"));
            continue;
          }
          await this.#command(raw[raw.length - 1] === 0x0d ? raw.subarray(0, -1) : raw);
          break;
        }
        case "skipLongLine": {
          const lf = this.#buffer.indexOf(LF);
          if (lf === -1) {
            this.#buffer = new Uint8Array(0);
            return;
          }
          this.#buffer = this.#buffer.subarray(lf + 1);
          this.#mode = { kind: "expectCommand" };
          break;
        }
        case "expectData": {
          const { consumed, done } = mode.reader.feed(this.#buffer);
          this.#buffer = this.#buffer.subarray(consumed);
          if (!done) return;
          this.#mode = { kind: "expectCommand" };
          await this.#endOfData(mode.reader);
          break;
        }
        case "expectChunk": {
          const take = Math.min(mode.remaining, this.#buffer.length);
          this.#addChunk(mode, this.#buffer.subarray(0, take));
          this.#buffer = this.#buffer.subarray(take);
          mode.remaining -= take;
          if (mode.remaining > 0) return;
          this.#mode = { kind: "expectCommand" };
          await this.#endOfChunk(mode);
          break;
        }
        default: {
          const unreachable: never = mode;
          throw new Error(`Unknown input mode ${JSON.stringify(unreachable)}`);
        }
      }
    }
  }

  async #command(raw: Uint8Array): Promise<void> {
    let line: string;
    try {
      line = decoder.decode(raw);
    } catch {
      this.#refuse(reply(500, "5.5.2", "Command is not valid UTF-8"));
      return;
    }
    const command = parseCommand(line);
    switch (command.verb) {
      case "LHLO":
        this.#lhlo = command.domain;
        this.#tx = null;
        this.#send({
          code: 250,
          status: null,
          lines: [
            this.#hostname,
            "PIPELINING",
            "ENHANCEDSTATUSCODES",
            "8BITMIME",
            `SIZE ${this.#limits.maxMessageSize}`,
            "CHUNKING",
            "SMTPUTF8",
          ],
        });
        return;
      case "HELO":
      case "EHLO":
        this.#refuse(reply(500, "5.5.1", "This is LMTP: say LHLO (RFC 2033)"));
        return;
      case "MAIL":
        this.#mail(command.from, command.params);
        return;
      case "RCPT":
        await this.#rcpt(command.to, command.params);
        return;
      case "DATA":
        this.#data();
        return;
      case "BDAT":
        await this.#bdat(command.size, command.last);
        return;
      case "RSET":
        this.#tx = null;
        this.#send(OK);
        return;
      case "NOOP":
        this.#send(OK);
        return;
      case "QUIT":
        this.#close(reply(221, "2.0.0", `${this.#hostname} closing connection`));
        return;
      case "VRFY":
        // RFC 5321, Section 3.5.3: 252 neither confirms nor denies an address.
        this.#send(reply(252, "2.5.2", "Cannot VRFY user, but will accept message for delivery"));
        return;
      case "EXPN":
        this.#refuse(reply(502, "5.5.1", "EXPN is not supported"));
        return;
      case "HELP":
        this.#send(reply(214, "2.0.0", "Commands: LHLO MAIL RCPT DATA BDAT RSET NOOP QUIT"));
        return;
      case "STARTTLS":
        this.#refuse(reply(502, "5.5.1", "STARTTLS is not offered"));
        return;
      case "unknown":
        this.#refuse(reply(500, "5.5.2", "Unrecognized command"));
        return;
      case "error":
        this.#refuse(reply(501, command.status, command.text));
        return;
      default: {
        const unreachable: never = command;
        throw new Error(`Unknown command ${JSON.stringify(unreachable as Command)}`);
      }
    }
  }

  #mail(from: Mailbox | null, params: ReadonlyMap<string, string | null>): void {
    if (this.#lhlo === null) return this.#refuse(BAD_SEQUENCE_LHLO);
    if (this.#tx !== null) return this.#refuse(reply(503, "5.5.1", "Nested MAIL command"));
    let body: Envelope["body"] = "7BIT";
    let smtputf8 = false;
    let declaredSize: number | null = null;
    for (const [key, value] of params) {
      switch (key) {
        case "SIZE":
          if (value === null || !/^[0-9]{1,20}$/.test(value)) {
            return this.#refuse(reply(501, "5.5.4", "Malformed SIZE parameter"));
          }
          declaredSize = Number(value);
          if (declaredSize > this.#limits.maxMessageSize) {
            return this.#send(reply(552, "5.3.4", "Message size exceeds fixed maximum"));
          }
          break;
        case "BODY": {
          const kind = value?.toUpperCase();
          if (kind !== "7BIT" && kind !== "8BITMIME") {
            return this.#refuse(reply(501, "5.5.4", "BODY must be 7BIT or 8BITMIME"));
          }
          body = kind;
          break;
        }
        case "SMTPUTF8":
          if (value !== null) return this.#refuse(reply(501, "5.5.4", "SMTPUTF8 takes no value"));
          smtputf8 = true;
          break;
        default:
          return this.#refuse(reply(555, "5.5.4", `Unsupported parameter ${key.slice(0, 32)}`));
      }
    }
    if (!smtputf8 && from !== null && !isAscii(formatMailbox(from))) {
      return this.#send(reply(553, "5.6.7", "Non-ASCII sender needs SMTPUTF8"));
    }
    this.#tx = {
      envelope: { lhlo: this.#lhlo, sender: from, body, smtputf8, declaredSize },
      startedAt: this.#now(),
      recipients: [],
      rcptCount: 0,
      chunked: false,
      chunks: [],
      chunkBytes: 0,
      failed: null,
    };
    this.#send(reply(250, "2.1.0", "Sender OK"));
  }

  async #rcpt(to: Mailbox, params: ReadonlyMap<string, string | null>): Promise<void> {
    const tx = this.#tx;
    if (tx === null) return this.#refuse(BAD_SEQUENCE_MAIL);
    const [key] = params.keys();
    if (key !== undefined) {
      return this.#refuse(reply(555, "5.5.4", `Unsupported parameter ${key.slice(0, 32)}`));
    }
    if (!tx.envelope.smtputf8 && !isAscii(formatMailbox(to))) {
      return this.#send(reply(553, "5.6.7", "Non-ASCII recipient needs SMTPUTF8"));
    }
    if (tx.rcptCount >= this.#limits.maxRecipients) {
      return this.#send(reply(452, "4.5.3", "Too many recipients"));
    }
    tx.rcptCount++;
    this.#flush();
    let verdict: RecipientVerdict<R>;
    try {
      verdict = await this.#backend.recipient(to, tx.envelope);
    } catch {
      verdict = { accept: false, reply: TEMP_FAILURE };
    }
    if (this.#tx !== tx) return;
    if (!verdict.accept) return this.#send(verdict.reply);
    tx.recipients.push(verdict.recipient);
    this.#send(reply(250, "2.1.5", "Recipient OK"));
  }

  #data(): void {
    const tx = this.#tx;
    if (tx === null) return this.#refuse(BAD_SEQUENCE_MAIL);
    if (tx.chunked) return this.#refuse(reply(503, "5.5.1", "DATA cannot follow BDAT"));
    if (tx.recipients.length === 0) return this.#refuse(NO_RECIPIENTS);
    this.#mode = {
      kind: "expectData",
      reader: new DataReader(this.#limits.maxMessageSize, this.#limits.maxLineLength),
    };
    this.#send(reply(354, null, "Start mail input; end with <CRLF>.<CRLF>"));
  }

  async #endOfData(reader: DataReader): Promise<void> {
    const tx = this.#tx!;
    const problem = reader.problem;
    if (problem !== null) {
      this.#finish(tx, this.#limitReply(problem));
      return;
    }
    await this.#deliver(tx, await reader.take());
  }

  async #bdat(size: number, last: boolean): Promise<void> {
    // The chunk follows the command whatever the verdict, so it is always read (and maybe
    // dropped) before the reply (RFC 3030, Section 4.2).
    const tx = this.#tx;
    const discard = tx === null || tx.recipients.length === 0 || tx.failed !== null;
    if (tx !== null) tx.chunked = true;
    this.#mode = { kind: "expectChunk", remaining: size, last, discard };
    if (size === 0) {
      const mode = this.#mode;
      this.#mode = { kind: "expectCommand" };
      await this.#endOfChunk(mode);
    }
  }

  #addChunk(mode: Extract<InputMode, { kind: "expectChunk" }>, bytes: Uint8Array): void {
    if (mode.discard || bytes.length === 0) return;
    const tx = this.#tx!;
    tx.chunkBytes += bytes.length;
    if (tx.chunkBytes > this.#limits.maxMessageSize) {
      tx.failed = this.#limitReply("size");
      tx.chunks = [];
      mode.discard = true;
      return;
    }
    tx.chunks.push(bytes.slice());
  }

  async #endOfChunk(mode: Extract<InputMode, { kind: "expectChunk" }>): Promise<void> {
    const tx = this.#tx;
    if (tx === null) {
      this.#refuse(BAD_SEQUENCE_MAIL);
      return;
    }
    if (tx.recipients.length === 0) {
      if (mode.last) this.#tx = null;
      this.#refuse(NO_RECIPIENTS);
      return;
    }
    if (!mode.last) {
      this.#send(tx.failed ?? reply(250, "2.0.0", `${tx.chunkBytes} octets received`));
      return;
    }
    if (tx.failed !== null) {
      this.#finish(tx, tx.failed);
      return;
    }
    const message = await joinParts(tx.chunks, tx.chunkBytes);
    tx.chunks = [];
    const problem = longLine(message, this.#limits.maxLineLength) ? "line" : null;
    if (problem !== null) {
      this.#finish(tx, this.#limitReply(problem));
      return;
    }
    await this.#deliver(tx, message);
  }

  async #deliver(tx: Transaction<R>, message: Uint8Array): Promise<void> {
    this.#flush();
    let replies: readonly LmtpReply[];
    try {
      replies = await this.#backend.deliver(tx.envelope, tx.recipients, message);
      if (replies.length !== tx.recipients.length) throw new Error("Wrong number of replies");
    } catch {
      replies = tx.recipients.map(() => TEMP_FAILURE);
    }
    this.#tx = null;
    for (const r of replies) this.#send(r);
  }

  /** Ends the transaction with the same reply for every accepted recipient. */
  #finish(tx: Transaction<R>, r: LmtpReply): void {
    this.#tx = null;
    for (let i = 0; i < tx.recipients.length; i++) this.#send(r);
  }

  #limitReply(problem: DataProblem): LmtpReply {
    return problem === "size"
      ? reply(552, "5.3.4", "Message size exceeds fixed maximum")
      : reply(554, "5.6.0", `Message has a line longer than ${this.#limits.maxLineLength} octets`);
  }

  #send(r: LmtpReply): void {
    this.#out += formatReply(r);
  }

  /** Sends a refusal that counts towards `maxErrors`. */
  #refuse(r: LmtpReply): void {
    this.#send(r);
    if (++this.#errors >= this.#limits.maxErrors) {
      this.#close(reply(421, "4.7.0", `${this.#hostname} Too many errors, closing`));
    }
  }

  #flush(): void {
    if (this.#out === "") return;
    const data = encoder.encode(this.#out);
    this.#out = "";
    this.onOutput(data);
  }

  #close(last: LmtpReply): void {
    if (this.#closed) return;
    this.#send(last);
    this.#flush();
    this.#closed = true;
    this.#tx = null;
    this.#buffer = new Uint8Array(0);
    this.onClose(last);
  }
}

function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return false;
  return true;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/** True when a line of `message` (CRLF excluded) is longer than `max` octets. */
function longLine(message: Uint8Array, max: number): boolean {
  let start = 0;
  while (start < message.length) {
    const lf = message.indexOf(LF, start);
    const end = lf === -1 ? message.length : lf;
    const length = end - start - (end > start && message[end - 1] === 0x0d ? 1 : 0);
    if (length > max) return true;
    start = end + 1;
  }
  return false;
}
