/** NewSessionTicket (RFC 8446, Section 4.6.1). */
import { Reader, type Writer } from "../codec.ts";
import { type Extension, readExtensions, writeExtensions } from "./extensions.ts";

export interface NewSessionTicket {
  /** Seconds; at most 7 days. */
  readonly lifetime: number;
  readonly ageAdd: number;
  readonly nonce: Uint8Array;
  readonly ticket: Uint8Array;
  readonly extensions: readonly Extension[];
}

export function writeNewSessionTicket(w: Writer, t: NewSessionTicket): void {
  w.u32(t.lifetime).u32(t.ageAdd).vec(1, t.nonce).vec(2, t.ticket);
  writeExtensions(w, t.extensions);
}

export function parseNewSessionTicket(body: Uint8Array): NewSessionTicket {
  const r = new Reader(body, "NewSessionTicket");
  const t = {
    lifetime: r.u32(),
    ageAdd: r.u32(),
    nonce: r.vec(1),
    ticket: r.vec(2, 1),
    extensions: readExtensions(r, "NewSessionTicket"),
  };
  r.end();
  return t;
}
