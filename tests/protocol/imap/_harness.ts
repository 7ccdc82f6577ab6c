/** An in-memory IMAP client for session tests: bytes in, transcript out, no sockets. */
import { MemoryMailStore } from "../../../mailstore/memory/mod.ts";
import type { MailStore } from "../../../mailstore/mail_store.ts";
import { ImapSession, type SessionOptions } from "../../../protocol/imap/mod.ts";
import type { ImapAuthenticator } from "../../../protocol/imap/auth.ts";
import type { CertificateIdentity } from "../../../protocol/x509/identity.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Accepts password "secret" for existing accounts; EXTERNAL maps the certificate email. */
export const authenticator: ImapAuthenticator = {
  login(user, password) {
    return Promise.resolve(
      password === "secret" && user !== "nobody" ? { accountName: user } : null,
    );
  },
  external(identity, authzid) {
    const user = identity.emails[0]?.split("@")[0] ?? "";
    if (authzid !== "" && authzid !== user) return Promise.resolve(null);
    return Promise.resolve({ accountName: user });
  },
};

export function fakeIdentity(email: string): CertificateIdentity {
  return {
    subject: `CN=${email}`,
    subjectAttributes: [],
    issuer: "CN=Test CA",
    emails: [email],
    dnsNames: [],
    serial: "01",
    fingerprintSha256: "00",
    notBefore: new Date(0),
    notAfter: new Date(4102444800000),
    der: new Uint8Array(0),
  };
}

export class TestClient {
  readonly session: ImapSession;
  #buffer = "";
  closed = false;
  startTlsCalls = 0;
  readonly errors: string[] = [];

  constructor(store: MailStore, options: Partial<SessionOptions> = {}) {
    this.session = new ImapSession({
      store,
      authenticator,
      tls: true,
      starttlsAvailable: false,
      peer: { address: "127.0.0.1:1", identity: null },
      logger: {
        warn: () => {},
        error: (m, p) => this.errors.push(`${m} ${JSON.stringify(p)}`),
      },
      ...options,
    });
    this.session.onOutput = (b) => {
      this.#buffer += dec.decode(b);
    };
    this.session.onClose = () => this.closed = true;
    this.session.onStartTls = () => {
      this.startTlsCalls++;
    };
    this.#buffer += dec.decode(this.session.greeting());
  }

  /** Sends the greeting-less login and drops the transcript so far. */
  clear(): void {
    this.take();
  }

  /** Everything received since the last call. */
  take(): string {
    const out = this.#buffer;
    this.#buffer = "";
    return out;
  }

  /** Sends raw text and returns the output it produced. */
  async raw(text: string | Uint8Array): Promise<string> {
    await this.session.receive(typeof text === "string" ? enc.encode(text) : text);
    return this.take();
  }

  /** Sends `tag command\r\n`; returns the response lines (untagged and tagged). */
  async cmd(line: string): Promise<string[]> {
    const out = await this.raw(line + "\r\n");
    return out.split("\r\n").filter((l) => l !== "");
  }

  /** Logs in as `user` (password "secret"). */
  async login(user = "alice"): Promise<void> {
    this.take();
    const out = await this.cmd(`L1 LOGIN ${user} secret`);
    if (!out.at(-1)?.startsWith("L1 OK")) throw new Error(`login failed: ${out.join("|")}`);
  }
}

/** A store with accounts alice and bob. */
export async function newStore(): Promise<MemoryMailStore> {
  const store = new MemoryMailStore();
  await store.createAccount("alice", null);
  await store.createAccount("bob", null);
  return store;
}

export function message(subject: string, body = "Hello.", extra = ""): string {
  return `From: Alice <alice@example.org>\r\nTo: bob@example.org\r\nSubject: ${subject}\r\n` +
    `Date: Tue, 7 Mar 2023 10:00:00 +0000\r\nMessage-ID: <${subject.replace(/\W/g, "")}@x>\r\n` +
    `${extra}\r\n${body}\r\n`;
}

/** APPENDs with a non-synchronizing literal; returns the tagged line. */
export async function append(
  c: TestClient,
  mailbox: string,
  msg: string,
  flags = "",
): Promise<string> {
  const size = enc.encode(msg).length;
  const out = await c.cmd(`AP APPEND ${mailbox} ${flags ? `(${flags}) ` : ""}{${size}+}\r\n${msg}`);
  return out.at(-1) ?? "";
}

/** A store whose methods delegate to `store`, except the overridden ones. */
export function wrapStore(store: MailStore, overrides: Partial<MailStore>): MailStore {
  const proto = Object.getPrototypeOf(store) as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const key of Object.getOwnPropertyNames(proto)) {
    const v = (store as unknown as Record<string, unknown>)[key];
    if (key !== "constructor" && typeof v === "function") out[key] = v.bind(store);
  }
  return Object.assign(out, overrides) as unknown as MailStore;
}

/** Response lines without the MAILBOXID code CREATE adds (RFC 8474), which is random. */
export function withoutMailboxId(lines: readonly string[]): string[] {
  return lines.map((l) => l.replace(/ \[MAILBOXID \([\w-]+\)\]/, ""));
}
