/**
 * The sans-IO IMAP4rev1 + IMAP4rev2 engine (RFC 3501, RFC 9051).
 *
 * ## Driver contract
 *
 * ```ts
 * const session = new ImapSession({
 *   store, authenticator, tls: true, starttlsAvailable: false,
 *   peer: { address: "127.0.0.1:50122", identity }, logger, limits, mime,
 * });
 * session.onOutput = (bytes) => conn.write(bytes);  // one call per response group; may
 *                                                   // return a promise for back-pressure
 * session.onStartTls = async () => { ...upgrade...; session.tlsStarted(identityOrNull); };
 * session.onClose = () => conn.close();             // after LOGOUT, BYE or fatal input
 * conn.write(session.greeting());
 * for await (const chunk of conn.readable) await session.receive(chunk);
 * session.dispose();                               // when the connection is gone
 * ```
 *
 * - `receive()` queues bytes and resolves once they have been processed; awaiting it gives
 *   back-pressure. Commands run strictly in order; a synchronizing literal's `+` is only sent
 *   when the receiver reaches it.
 * - `idle` is true while the client is in IDLE (for an idle-timeout policy); store changes are
 *   pushed through `onOutput` at once during IDLE, and at the next command otherwise.
 * - `bye(text)` sends `* BYE text` and closes (shutdown, revoked certificate).
 * - After STARTTLS's tagged OK the session drops any pipelined plaintext, calls `onStartTls`,
 *   and ignores input until `tlsStarted()`. The `receive()` call that carried STARTTLS settles
 *   only once `onStartTls` has settled, so the driver's read loop does not race the handshake.
 * - `keepalive()` sends `* OK Still here` only while in IDLE, between response groups.
 * - Authentication is injected through `ImapAuthenticator` (auth.ts); MIME-aware FETCH and
 *   SEARCH through `MimeSupport` (fetch_items.ts), by default `mimeSupport` (mime_support.ts),
 *   which also computes the `summary` stored at APPEND.
 * - A handler exception is logged through `logger.error` and answered `NO [SERVERBUG]`.
 *
 * Extensions: IMAP4rev1, IMAP4rev2, LITERAL+, SASL-IR, ENABLE, ID, IDLE, NAMESPACE, UIDPLUS,
 * MOVE, UNSELECT, CHILDREN, SPECIAL-USE, CONDSTORE, QRESYNC, ESEARCH, SEARCHRES, LIST-EXTENDED,
 * LIST-STATUS, STATUS=SIZE, CREATE-SPECIAL-USE, APPENDLIMIT=<limits.maxLiteral>, BINARY; AUTH=PLAIN once encrypted, AUTH=EXTERNAL with a verified certificate,
 * STARTTLS and LOGINDISABLED before TLS.
 */
export { ImapSession, type SessionOptions } from "./session.ts";
export type { AuthContext, AuthResult, ImapAuthenticator } from "./auth.ts";
export { defaultLimits, type ImapLogger, type SessionLimits } from "./context.ts";
export type {
  BinaryResult,
  MessageData,
  MimeSupport,
  SearchData,
  SectionSpec,
} from "./fetch_items.ts";
export { createMimeSupport, mimeSupport } from "./mime_support.ts";
export { capabilities } from "./capabilities.ts";
export { ImapError } from "./errors.ts";
export { CommandReceiver, type ReceiverEvent } from "./receiver.ts";
export { decodeMutf7, encodeMutf7 } from "./mutf7.ts";
