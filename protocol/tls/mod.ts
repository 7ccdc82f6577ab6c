/**
 * Postern's sans-IO TLS 1.3 engine (RFC 8446). The socket driver feeds received bytes to
 * `receive()`, writes whatever `takeOutgoing()` returns, reads `takePlaintext()` and reacts to
 * `takeEvents()`:
 *
 * - `handshakeComplete`: application data may flow (`send()`, `info()`).
 * - `peerVerificationRequired`: a client certificate passed `ClientCertVerifier.verify()`; the
 *   driver runs its asynchronous check (the directory lookup) and answers with
 *   `completePeerVerification({ ok: true })` or `{ ok: false, alert: "certificate_revoked", … }`.
 *   Input is held, and no application data is delivered, until then.
 * - `signatureRequired` (only with `deferSigning`): the flight waits for its CertificateVerify
 *   (TLS 1.2: ServerKeyExchange) signature; the driver signs `request.message` (for instance
 *   with WebCrypto, off the JavaScript thread) and answers with `completeSignature({ ok: true,
 *   signature })`, or `{ ok: false, reason }` for an internal_error alert. Input is held until
 *   then; other connections are unaffected.
 * - `peerClosed`: close_notify arrived; answer with `close()` and end the transport.
 * - `fatal`: the connection is dead; write out `takeOutgoing()` (our alert) and close.
 *
 * `receive()` never throws. `send()` and `requestKeyUpdate()` throw only on driver misuse
 * (before the handshake or after `close()`). The engine sends KeyUpdate by itself after
 * `keyUpdateAfterRecords` records under one key.
 *
 * `TlsClientConnection` has the same surface; it is the in-memory peer of the tests (it can
 * force a HelloRetryRequest and tamper with its own messages) but speaks correct TLS 1.3.
 *
 * `acceptTls()` is what a server driver uses: it reads the ClientHello and runs the TLS 1.3
 * engine, or the TLS 1.2 engine (`tls12/server12.ts`) for a client that cannot do 1.3 when
 * `minVersion` is "1.2". Both engines have the surface described above.
 *
 * Resumption: with `ticketKeys`, the TLS 1.3 server sends NewSessionTickets and resumes
 * with psk_dhe_ke (psk_ke only if configured); a resumed connection with a client certificate
 * raises `peerVerificationRequired` again, so the driver's checks run on every resumption.
 * TLS 1.2 resumes sessions (tickets and session IDs) and never renegotiates.
 *
 * Limits: a ClientHello may be up to 131,396 bytes over several records; every other
 * handshake message must be the one the state expects (else `unexpected_message`, judged on
 * its header before any body is buffered, as OpenSSL does) and within a tight size limit (else
 * `decode_error`). So bytes after the client Finished are `unexpected_message` whatever their
 * size, and a Finished that declares padding is `decode_error`.
 *
 * Not implemented on purpose: 0-RTT (offered early data is skipped within a budget, also
 * after a HelloRetryRequest), external PSKs, HelloRetryRequest cookies, post-handshake client
 * authentication, and record padding on send. Sequence numbers stop at 2^53 - 1 (the connection fails
 * rather than wrapping), far beyond any per-key record limit.
 */
export {
  type ClientAuthConfig,
  type ClientAuthMode,
  type ConnectionInfo,
  type PeerVerificationResult,
  type ServerConfig,
  TlsServerConnection,
} from "./server.ts";
export { type ClientConfig, TlsClientConnection } from "./client.ts";
export {
  acceptTls,
  type MinVersion,
  type ServerConnection,
  type ServerOptions,
} from "./acceptor.ts";
export type { SignatureRequest, SignatureResult } from "./signing.ts";
export { TicketKeys, type TicketKeysOptions } from "./ticket_keys.ts";
export { type TicketUseCounter, TicketUses, type TicketUsesOptions } from "./session13.ts";
export {
  SessionCache,
  type SessionCacheOptions,
  type SessionStore12,
} from "./tls12/session_cache.ts";
export { type CipherSuite12Name, DEFAULT_SUITES12, suite12ByName } from "./tls12/wire12.ts";
export { DEFAULT_KEY_UPDATE_AFTER_RECORDS, type TlsEvent } from "./_connection.ts";
export { alertFromError, TlsAlert } from "./alert.ts";
export type { AlertName, CipherSuiteName, SignatureSchemeName } from "./wire.ts";
export { DEFAULT_GROUPS, DEFAULT_SUITES, SignatureScheme } from "./wire.ts";
