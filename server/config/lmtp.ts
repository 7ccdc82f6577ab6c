/** `lmtp:` — the delivery listener an MTA hands mail to (RFC 2033). */
import * as v from "valibot";
import { isScalar } from "yaml";
import type { Positions, SettingPath } from "./_positions.ts";
import {
  bool,
  checkedByReader,
  describeValue,
  duration,
  int,
  optional,
  section,
  size,
  text,
} from "./_schema.ts";
import { resolvePath } from "./_files.ts";
import { isLoopback, parseAddress } from "./values.ts";

export const lmtpSchema = section({
  listen: checkedByReader({
    anyOf: [{ type: "string" }, { type: "array", items: { type: "string" }, minItems: 1 }],
    description: "unix:PATH or a loopback HOST:PORT, or a list of them",
  }),
  socket_mode: v.optional(
    checkedByReader({
      anyOf: [{ type: "string", pattern: "^(0o|0)?[0-7]{3}$" }, { type: "integer" }],
    }),
  ),
  socket_owner: v.optional(text()),
  hostname: v.optional(text()),
  max_message_size: v.optional(size(1024)),
  max_recipients: optional(int(1, 10_000), 100),
  max_line_length: optional(size(998), "64KiB"),
  transaction_timeout: optional(duration(1000), "10m"),
  idle_timeout: optional(duration(1000), "5m"),
  dedup_window: optional(duration(0), "24h"),
  recipient_delimiter: v.optional(checkedByReader({ type: "string", maxLength: 1 })),
  save_to_detail_mailbox: optional(bool(), true),
  directory_filter: optional(text(), "(mail={address})"),
  max_connections: optional(int(1, 100_000), 100),
  allow_remote: optional(bool(), false),
}, "The LMTP delivery listener (RFC 2033); absent means no delivery listener");

/** Where the LMTP listener binds: a Unix socket, or a loopback TCP address. */
export type LmtpListenAddress =
  | { readonly transport: "unix"; readonly path: string }
  | { readonly transport: "tcp"; readonly hostname: string; readonly port: number };

export interface LmtpConfig {
  readonly listen: readonly LmtpListenAddress[];
  /** Permissions of the Unix sockets, set after creation. Default 0o660. */
  readonly socketMode: number;
  /** `user[:group]` (names or numeric ids) that will own the Unix sockets, or null. */
  readonly socketOwner: string | null;
  /** The name in the greeting and the Received line. Default: the machine's host name. */
  readonly hostname: string | null;
  /** Largest message; null (the default) means `limits.max_message_size`. */
  readonly maxMessageSize: number | null;
  /** RCPT commands per transaction (at least 100 per RFC 5321, 4.5.3.1.8). Default 100. */
  readonly maxRecipients: number;
  /** Longest line of message text, CRLF excluded (at least 998). Default 64KiB. */
  readonly maxLineLength: number;
  /** Longest time from MAIL to the end of the message. Default 10m. */
  readonly transactionTimeoutMs: number;
  /** A connection without any command for this long is closed. Default 5m. */
  readonly idleTimeoutMs: number;
  /** How long a delivery is remembered to drop an MTA's resend. Default 24h. */
  readonly dedupWindowMs: number;
  /** Separator of `user+detail@domain`. Default `+`; empty turns details off. */
  readonly recipientDelimiter: string;
  /** Deliver `user+detail@…` to the folder `detail` when it exists. Default true. */
  readonly saveToDetailMailbox: boolean;
  /** Directory filter that finds a recipient's entry, with `{address}`. Default `(mail={address})`. */
  readonly directoryFilter: string;
  /** Simultaneous LMTP connections. Default 100. */
  readonly maxConnections: number;
}

const LMTP: SettingPath = ["lmtp"];
const key = (name: string): SettingPath => [...LMTP, name];

export function readLmtp(file: v.InferOutput<typeof lmtpSchema>, at: Positions): LmtpConfig {
  const listen: LmtpListenAddress[] = [];
  const list = Array.isArray(file.listen);
  const items: unknown[] = list ? file.listen as unknown[] : [file.listen];
  if (list && items.length === 0) at.fail(key("listen"), "at least one address is needed");
  // LMTP has no authentication (RFC 2033, Section 6): anyone who reaches the socket can
  // deliver to any mailbox, so it binds only where the operating system restricts access.
  if (file.allow_remote) {
    at.fail(
      key("allow_remote"),
      "LMTP over TLS is not implemented, so remote LMTP cannot be allowed",
    );
  }
  items.forEach((item, index) => {
    const where = list ? [...key("listen"), index] : key("listen");
    const name = `lmtp.listen[${index}]`;
    if (typeof item !== "string" || item === "") {
      at.report(where, `${name}: expected unix:PATH or HOST:PORT`);
      return;
    }
    if (item.startsWith("unix:")) {
      const path = item.slice(5);
      if (path === "") {
        at.report(where, `${name}: the Unix socket path is empty`);
        return;
      }
      listen.push({ transport: "unix", path: resolvePath(at.baseDir, path) });
      return;
    }
    const parsed = parseAddress(item);
    if (!parsed.ok) {
      at.report(where, `${name}: invalid address "${item}": ${parsed.reason}`);
      return;
    }
    if (!isLoopback(parsed.value.hostname)) {
      at.report(
        where,
        `${name}: "${item}" is not a loopback address; LMTP is unauthenticated and Postern ` +
          "does not offer it over TLS, so use a Unix socket or 127.0.0.1",
      );
      return;
    }
    listen.push({ transport: "tcp", ...parsed.value });
  });
  let socketMode = 0o660;
  if (file.socket_mode !== undefined) {
    // YAML 1.2 reads 0660 as the decimal 660: take the digits as written, always octal.
    const node = at.node(key("socket_mode"));
    const scalar = isScalar(node) ? node : undefined;
    const written = typeof scalar?.value === "number"
      ? (scalar.source ?? String(scalar.value))
      : scalar?.value;
    const digits = typeof written === "string" ? written.replace(/^0o/, "") : undefined;
    if (digits === undefined || !/^0?[0-7]{3}$/.test(digits)) {
      at.fail(
        key("socket_mode"),
        `expected an octal mode such as "0660", got ${describeValue(file.socket_mode)}`,
      );
    } else {
      socketMode = parseInt(digits, 8);
    }
  }
  const socketOwner = file.socket_owner ?? null;
  if (
    socketOwner !== null &&
    !/^[A-Za-z0-9_.][A-Za-z0-9_.-]*(:[A-Za-z0-9_.][A-Za-z0-9_.-]*)?$/.test(socketOwner)
  ) {
    at.fail(key("socket_owner"), `expected user or user:group, got "${socketOwner}"`);
  }
  const hostname = file.hostname ?? null;
  if (hostname !== null && !/^[A-Za-z0-9.-]+$/.test(hostname)) {
    at.fail(key("hostname"), `"${hostname}" is not a host name`);
  }
  const delimiter = file.recipient_delimiter ?? "+";
  let recipientDelimiter = "+";
  if (typeof delimiter !== "string" || delimiter.length > 1 || /[@\s"<>]/.test(delimiter)) {
    at.fail(
      key("recipient_delimiter"),
      "expected one character such as + or -, or an empty string",
    );
  } else {
    recipientDelimiter = delimiter;
  }
  const directoryFilter = file.directory_filter;
  if (!directoryFilter.includes("{address}") || !/^\(.*\)$/.test(directoryFilter)) {
    at.fail(
      key("directory_filter"),
      'expected an LDAP filter with {address}, e.g. "(mail={address})"',
    );
  }
  return {
    listen,
    socketMode,
    socketOwner,
    hostname,
    maxMessageSize: file.max_message_size ?? null,
    maxRecipients: file.max_recipients,
    maxLineLength: file.max_line_length,
    transactionTimeoutMs: file.transaction_timeout,
    idleTimeoutMs: file.idle_timeout,
    dedupWindowMs: file.dedup_window,
    recipientDelimiter,
    saveToDetailMailbox: file.save_to_detail_mailbox,
    directoryFilter,
    maxConnections: file.max_connections,
  };
}
