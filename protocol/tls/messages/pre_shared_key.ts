/**
 * The pre_shared_key and psk_key_exchange_modes extensions (RFC 8446, Sections 4.2.9 and
 * 4.2.11).
 */
import { TlsAlert } from "../alert.ts";
import type { Reader, Writer } from "../codec.ts";

/** PskKeyExchangeMode (RFC 8446, Section 4.2.9). */
export const PskKeyExchangeMode = { psk_ke: 0, psk_dhe_ke: 1 } as const;

/** One PskIdentity: a ticket and its obfuscated age. */
export interface PskIdentity {
  readonly identity: Uint8Array;
  readonly obfuscatedTicketAge: number;
}

/** OfferedPsks in a ClientHello. */
export interface OfferedPsks {
  readonly identities: readonly PskIdentity[];
  readonly binders: readonly Uint8Array[];
  /** Length of the extension body before the binders list (for the truncated ClientHello). */
  readonly bindersOffset: number;
}

/** Reads OfferedPsks; identity and binder counts must agree (illegal_parameter otherwise). */
export function readOfferedPsks(r: Reader): OfferedPsks {
  const start = r.remaining;
  const list = r.sub(2, 7);
  const identities: PskIdentity[] = [];
  while (list.remaining > 0) {
    identities.push({ identity: list.vec(2, 1), obfuscatedTicketAge: list.u32() });
  }
  const bindersOffset = start - r.remaining;
  const bl = r.sub(2, 33);
  const binders: Uint8Array[] = [];
  while (bl.remaining > 0) binders.push(bl.vec(1, 32));
  if (binders.length !== identities.length) {
    throw new TlsAlert("illegal_parameter", "PSK identities and binders differ in number");
  }
  return { identities, binders, bindersOffset };
}

export function writeOfferedPsks(
  w: Writer,
  psks: { identities: readonly PskIdentity[]; binders: readonly Uint8Array[] },
): void {
  w.lengthPrefixed(2, (w) => {
    for (const p of psks.identities) w.vec(2, p.identity).u32(p.obfuscatedTicketAge);
  });
  w.lengthPrefixed(2, (w) => {
    for (const b of psks.binders) w.vec(1, b);
  });
}

/** PskKeyExchangeModes (Section 4.2.9). */
export function readPskModes(r: Reader): number[] {
  const list = r.sub(1, 1);
  const out: number[] = [];
  while (list.remaining > 0) out.push(list.u8());
  return out;
}

export function writePskModes(w: Writer, modes: readonly number[]): void {
  w.lengthPrefixed(1, (w) => {
    for (const m of modes) w.u8(m);
  });
}
