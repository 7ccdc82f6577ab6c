/**
 * The hooks the server calls to count what it does. Every hook takes only values from fixed
 * sets (listener labels from the configuration, command names from the command table, TLS
 * names from the protocol tables), never a user name, an address or other free text, so
 * the exported series stay bounded.
 *
 * `NO_METRICS` is the default everywhere: with metrics off, each hook is an empty call.
 */

/** How a TLS handshake ended. */
export type HandshakeResult =
  /** Completed. */
  | "ok"
  /** Ended by a fatal alert, sent or received (see the alert counters for which). */
  | "alert"
  /** Not finished within `tls.handshake_timeout`. */
  | "timeout"
  /** The peer went away without an alert. */
  | "closed"
  /** A local failure outside the TLS engine. */
  | "error";

export interface HandshakeObservation {
  /** "TLSv1.3", or "none" when the handshake failed before a version was chosen. */
  readonly version: string;
  readonly suite: string;
  readonly group: string;
  readonly result: HandshakeResult;
  readonly seconds: number;
}

/** LOGIN and AUTHENTICATE PLAIN share one path; the command counter tells them apart. */
export type AuthMechanism = "password" | "external" | "preauth";

export type AuthResultLabel =
  | "ok"
  /** Wrong user name or password, or a certificate that maps to no account. */
  | "invalid"
  /** Refused by the per-address back-off or the concurrency limits, unchecked. */
  | "throttled"
  /** The directory could not be asked. */
  | "unavailable"
  /** Right credentials, but the user is at `limits.max_connections_per_user`. */
  | "refused";

export type DirectoryLookupKind = "certificate" | "password";

/** Where the directory said a certificate is gone. */
export type RevocationPoint = "handshake" | "live" | "resumption";

export type CommandResult = "ok" | "no" | "bad";

export interface Metrics {
  /** An accepted connection on `listener` (`host:port/implicit`); it is now open. */
  connectionOpened(listener: string): void;
  connectionClosed(listener: string): void;
  /** A connection closed at once (too many from one address, or a refused PROXY header). */
  connectionRefused(listener: string): void;
  /** Octets read from and written to client sockets. */
  bytesReceived(octets: number): void;
  bytesSent(octets: number): void;
  handshake(observation: HandshakeObservation): void;
  /** A TLS alert (RFC 8446, Section 6) by its description name, including close_notify. */
  tlsAlert(direction: "sent" | "received", description: string): void;
  authentication(mechanism: AuthMechanism, result: AuthResultLabel): void;
  /** One directory round trip; `result` is "ok" or a denial reason of server/directory. */
  directoryLookup(kind: DirectoryLookupKind, result: string, seconds: number): void;
  directoryCacheHit(): void;
  revocation(point: RevocationPoint): void;
  /** One IMAP command; names outside the command table count as "other". */
  imapCommand(name: string, result: CommandResult, seconds: number): void;
  /** One call of a `MailStore` method. */
  storeOperation(operation: string, ok: boolean, seconds: number): void;
  /** One LMTP recipient's answer after DATA or BDAT, by reply class. */
  lmtpDelivery(result: LmtpDeliveryResult): void;
}

/** A per-recipient LMTP answer: 2yz, 4yz (the MTA retries) or 5yz (it bounces). */
export type LmtpDeliveryResult = "ok" | "temporary" | "permanent";

function ignore(): void {}

/** Metrics off: every hook does nothing. */
export const NO_METRICS: Metrics = {
  connectionOpened: ignore,
  connectionClosed: ignore,
  connectionRefused: ignore,
  bytesReceived: ignore,
  bytesSent: ignore,
  handshake: ignore,
  tlsAlert: ignore,
  authentication: ignore,
  directoryLookup: ignore,
  directoryCacheHit: ignore,
  revocation: ignore,
  imapCommand: ignore,
  storeOperation: ignore,
  lmtpDelivery: ignore,
};

/** Seconds since `startMs` (a `performance.now()` reading). */
export function secondsSince(startMs: number): number {
  return (performance.now() - startMs) / 1000;
}
