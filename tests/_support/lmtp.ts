/**
 * A minimal raw LMTP client over `Deno.connect` (TCP or Unix socket) for tests and the
 * benchmark: it writes exact bytes and reads whole replies (RFC 5321, Section 4.2), with a
 * deadline on every read so that a silent server fails the test instead of hanging it.
 */
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** One reply: its code and its lines without the code and separator. */
export interface LmtpClientReply {
  readonly code: number;
  readonly lines: readonly string[];
}

export type LmtpTarget =
  | { readonly path: string }
  | { readonly hostname: string; readonly port: number };

export class LmtpClient {
  readonly #conn: Deno.Conn;
  #buffer = "";
  #closed = false;
  readonly #chunk = new Uint8Array(64 * 1024);

  private constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  static async connect(target: LmtpTarget): Promise<LmtpClient> {
    const conn = "path" in target
      ? await Deno.connect({ transport: "unix", path: target.path })
      : await Deno.connect({ hostname: target.hostname, port: target.port });
    return new LmtpClient(conn);
  }

  /** Connects, reads the greeting and says LHLO. */
  static async open(target: LmtpTarget): Promise<LmtpClient> {
    const client = await LmtpClient.connect(target);
    const greeting = await client.reply();
    if (greeting.code !== 220) throw new Error(`Bad greeting ${greeting.code}`);
    const lhlo = await client.command("LHLO client.test");
    if (lhlo.code !== 250) throw new Error(`LHLO refused: ${lhlo.code}`);
    return client;
  }

  get closed(): boolean {
    return this.#closed;
  }

  async write(data: string | Uint8Array): Promise<void> {
    const bytes = typeof data === "string" ? encoder.encode(data) : data;
    let offset = 0;
    while (offset < bytes.length) offset += await this.#conn.write(bytes.subarray(offset));
  }

  /** Sends one command line and reads its reply. */
  async command(line: string, timeoutMs = 10_000): Promise<LmtpClientReply> {
    await this.write(`${line}\r\n`);
    return await this.reply(timeoutMs);
  }

  /** Reads `n` replies. */
  async replies(n: number, timeoutMs = 10_000): Promise<LmtpClientReply[]> {
    const out: LmtpClientReply[] = [];
    for (let i = 0; i < n; i++) out.push(await this.reply(timeoutMs));
    return out;
  }

  /** Reads one (possibly multi-line) reply; throws at end of stream or at the deadline. */
  async reply(timeoutMs = 10_000): Promise<LmtpClientReply> {
    const deadline = Date.now() + timeoutMs;
    const lines: string[] = [];
    for (;;) {
      const end = this.#buffer.indexOf("\r\n");
      if (end === -1) {
        await this.#fill(deadline);
        continue;
      }
      const line = this.#buffer.slice(0, end);
      this.#buffer = this.#buffer.slice(end + 2);
      lines.push(line.slice(4));
      if (line[3] !== "-") return { code: Number(line.slice(0, 3)), lines };
    }
  }

  /** Sends a whole transaction with DATA and returns the per-recipient replies after it. */
  async send(
    from: string,
    recipients: readonly string[],
    message: Uint8Array,
  ): Promise<{ rcpt: LmtpClientReply[]; data: LmtpClientReply[] }> {
    const mail = await this.command(`MAIL FROM:<${from}>`);
    if (mail.code !== 250) throw new Error(`MAIL refused: ${mail.code} ${mail.lines[0]}`);
    const rcpt: LmtpClientReply[] = [];
    for (const r of recipients) rcpt.push(await this.command(`RCPT TO:<${r}>`));
    const accepted = rcpt.filter((r) => r.code === 250).length;
    if (accepted === 0) {
      await this.command("RSET");
      return { rcpt, data: [] };
    }
    const go = await this.command("DATA");
    if (go.code !== 354) throw new Error(`DATA refused: ${go.code}`);
    await this.write(dotStuff(message));
    return { rcpt, data: await this.replies(accepted, 60_000) };
  }

  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      try {
        this.#conn.close();
      } catch {
        // Already closed.
      }
    }
    return Promise.resolve();
  }

  async #fill(deadline: number): Promise<void> {
    const left = deadline - Date.now();
    if (left <= 0 || this.#closed) throw new Error("LMTP reply timed out or connection closed");
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<null>((resolve) => timer = setTimeout(() => resolve(null), left));
    const n = await Promise.race([this.#conn.read(this.#chunk), timeout]).finally(() =>
      clearTimeout(timer)
    );
    if (n === null) {
      this.#closed = true;
      throw new Error("LMTP connection closed or timed out");
    }
    this.#buffer += decoder.decode(this.#chunk.subarray(0, n), { stream: true });
  }
}

/** Dot-stuffs a message and appends the end-of-data line (RFC 5321, Section 4.5.2). */
export function dotStuff(message: Uint8Array): Uint8Array {
  let text = decoder.decode(message);
  if (!text.endsWith("\r\n") && text !== "") text += "\r\n";
  const stuffed = text.replace(/^\./, "..").replaceAll("\r\n.", "\r\n..");
  return encoder.encode(`${stuffed}.\r\n`);
}

/** A test message of about `size` octets with a unique Message-ID. */
export function lmtpMessage(id: string, size = 1024, to = "alice@example.org"): Uint8Array {
  const head = `From: sender@example.org\r\nTo: ${to}\r\nSubject: message ${id}\r\n` +
    `Message-ID: <${id}@postern.test>\r\nDate: Thu, 03 Dec 2026 09:00:00 +0000\r\n\r\n`;
  const line = `${id} `.repeat(Math.max(1, Math.floor(70 / (id.length + 1)))).trimEnd() + "\r\n";
  let body = "";
  while (head.length + body.length + line.length <= size) body += line;
  return encoder.encode(head + (body || line));
}
