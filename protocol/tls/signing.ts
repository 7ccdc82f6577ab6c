/**
 * A signature the handshake waits for: the server's CertificateVerify (RFC 8446, Section
 * 4.4.3) or the TLS 1.2 ServerKeyExchange (RFC 8422, Section 5.4). With `deferSigning` the
 * engine does not sign on its own: it emits a `signatureRequired` event and holds its input
 * until the driver answers with `completeSignature()`, so the driver may sign off the
 * JavaScript thread while other connections carry on.
 */
import type { PrivateKey, SignatureAlgorithm } from "../crypto/provider.ts";

/** What to sign, and with which key and algorithm. `message` is the full signed content. */
export interface SignatureRequest {
  readonly key: PrivateKey;
  readonly algorithm: SignatureAlgorithm;
  readonly message: Uint8Array;
}

/** The driver's answer; a failure ends the handshake with `internal_error`. */
export type SignatureResult =
  | { readonly ok: true; readonly signature: Uint8Array }
  | { readonly ok: false; readonly reason: string };
