/**
 * The state of a resumable TLS 1.2 session (RFC 5246, Section 7.4.1.2; RFC 5077, Section 4),
 * as sealed into a ticket or held in the session-ID cache. It carries the client's certificate
 * chain, not a verdict: a resumption validates the chain again and the driver's directory check
 * runs again before the session is accepted.
 */
import { TlsAlert } from "../alert.ts";
import { Reader, Writer } from "../codec.ts";
import { TLS12 } from "../wire.ts";
import { MASTER_SECRET_LENGTH } from "./prf.ts";

export interface Session12 {
  readonly suite: number;
  readonly masterSecret: Uint8Array;
  /** The session was made with the extended master secret (RFC 7627). */
  readonly extendedMasterSecret: boolean;
  /** The client's certificate chain, leaf first; empty without client authentication. */
  readonly peerChain: readonly Uint8Array[];
  /** The server_name of the full handshake; empty without SNI (RFC 6066, Section 3). */
  readonly serverName: Uint8Array;
  /** Milliseconds since the epoch at the full handshake. */
  readonly createdAt: number;
}

/** A format tag, so that a future layout (or a TLS 1.3 PSK state) is never misread. */
const FORMAT = 0x12;

export function encodeSession12(s: Session12): Uint8Array {
  const w = new Writer(256);
  w.u8(FORMAT).u16(TLS12).u16(s.suite).bytes(s.masterSecret).u8(s.extendedMasterSecret ? 1 : 0);
  const t = Math.floor(s.createdAt);
  w.u16(Math.floor(t / 2 ** 32) & 0xffff).u16((t >>> 16) & 0xffff).u16(t & 0xffff);
  w.lengthPrefixed(3, (w) => {
    for (const der of s.peerChain) w.vec(3, der);
  });
  w.vec(2, s.serverName);
  return w.finish();
}

/** Decodes a session state; null when it is not a TLS 1.2 session in our format. */
export function decodeSession12(bytes: Uint8Array): Session12 | null {
  try {
    const r = new Reader(bytes, "session state");
    if (r.u8() !== FORMAT || r.u16() !== TLS12) return null;
    const suite = r.u16();
    const masterSecret = r.take(MASTER_SECRET_LENGTH).slice();
    const ems = r.u8();
    if (ems > 1) return null;
    const createdAt = r.u16() * 2 ** 32 + r.u16() * 2 ** 16 + r.u16();
    const list = r.sub(3);
    const peerChain: Uint8Array[] = [];
    while (list.remaining > 0) peerChain.push(list.vec(3, 1).slice());
    const serverName = r.vec(2).slice();
    r.end();
    return {
      suite,
      masterSecret,
      extendedMasterSecret: ems === 1,
      peerChain,
      serverName,
      createdAt,
    };
  } catch (e) {
    if (e instanceof TlsAlert) return null;
    throw e;
  }
}
