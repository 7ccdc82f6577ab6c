/**
 * Spotting a vouched ticket in a ClientHello before the handshake runs. A vouched ticket is
 * one the server issued after the application vouched for the peer (an IMAP login,
 * `TlsServerConnection.vouch()`), so a connection that offers one is a returning client that
 * logged in before: the server's handshake admission lets it skip the queue of new handshakes
 * (server/connection/handshake_gate.ts).
 *
 * Only the first PSK identity is looked at, and only in a ClientHello that arrived whole in the
 * first record of `bytes`. The check opens the ticket with the server's vouched ticket keys
 * (`TicketKeys.openVouched`) and, when given the ticket use counter, peeks at it (a used-up
 * ticket would fall back to a full handshake, which must wait its turn like any other); it
 * checks no binder and records no use: the handshake itself does both, as for any ticket. A vouched ticket is sealed under keys of its own and
 * sent to the client encrypted (RFC 8446, Section 4.6.1), so only a client that logged in holds
 * one. Anything else (no ticket, a handshake's ticket replayed, a forged one) costs one parse of
 * the ClientHello and a compare of key names, a few microseconds, and no AEAD work: a flood of
 * such ClientHellos costs no more than the handshakes it asks for.
 */
import { Reader } from "./codec.ts";
import { findExtension, parseBody } from "./messages/extensions.ts";
import { readClientHello } from "./messages/client_hello.ts";
import { readOfferedPsks } from "./messages/pre_shared_key.ts";
import { decodeSession13 } from "./session13.ts";
import type { TicketKeys } from "./ticket_keys.ts";
import type { TicketUseCounter } from "./session13.ts";
import { ContentType, ExtensionType, HandshakeType } from "./wire.ts";

/** RFC 8446, Section 4.6.1: a ticket lives at most seven days. */
const MAX_TICKET_LIFETIME_MS = 7 * 24 * 3600 * 1000;

export interface VouchedCheck {
  /** The server's ticket use counter: a ticket with no uses left is not spotted. */
  readonly uses?: TicketUseCounter;
  readonly now?: number;
}

/**
 * Whether the ClientHello at the start of `bytes` offers, as its first PSK identity, a ticket
 * sealed under `keys` that was vouched, has not expired and (given `uses`) has uses left.
 * False for anything else, malformed input included (that handshake then waits its turn like
 * any other).
 */
export function offersVouchedTicket(
  bytes: Uint8Array,
  keys: TicketKeys,
  options: VouchedCheck = {},
): boolean {
  const now = options.now ?? Date.now();
  try {
    if (bytes.length < 9 || bytes[0] !== ContentType.handshake) return false;
    const record = new Reader(bytes, "record");
    record.take(3);
    const fragment = new Reader(record.vec(2), "handshake");
    if (fragment.u8() !== HandshakeType.client_hello) return false;
    const ch = readClientHello(new Reader(fragment.vec(3), "ClientHello"));
    const body = findExtension(ch.extensions, ExtensionType.pre_shared_key);
    if (body === undefined) return false;
    const first = parseBody(body, "pre_shared_key", readOfferedPsks).identities[0];
    const opened = first === undefined ? null : keys.openVouched(first.identity);
    const session = opened === null ? null : decodeSession13(opened.state);
    if (session === null) return false;
    const age = now - session.createdAt;
    const lifetimeMs = Math.min(keys.ticketLifetimeSeconds * 1000, MAX_TICKET_LIFETIME_MS);
    if (age < 0 || age > lifetimeMs) return false;
    return options.uses === undefined || options.uses.usable(session.id, now);
  } catch {
    return false;
  }
}
