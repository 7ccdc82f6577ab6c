/** NewSessionTicket in TLS 1.2 (RFC 5077, Section 3.3). */
import { Reader, type Writer } from "../../codec.ts";

export interface NewSessionTicket12 {
  /** Seconds the client may keep the ticket (0: unspecified). */
  readonly lifetimeHint: number;
  readonly ticket: Uint8Array;
}

export function readNewSessionTicket12(r: Reader): NewSessionTicket12 {
  const hi = r.u16();
  const lo = r.u16();
  const t = { lifetimeHint: hi * 0x10000 + lo, ticket: r.vec(2) };
  r.end();
  return t;
}

export function writeNewSessionTicket12(w: Writer, t: NewSessionTicket12): void {
  w.u16(Math.floor(t.lifetimeHint / 0x10000) & 0xffff).u16(t.lifetimeHint & 0xffff);
  w.vec(2, t.ticket);
}

export function parseNewSessionTicket12(body: Uint8Array): NewSessionTicket12 {
  return readNewSessionTicket12(new Reader(body, "NewSessionTicket"));
}
