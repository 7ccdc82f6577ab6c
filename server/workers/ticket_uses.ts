/**
 * TLS 1.3 ticket uses for every Worker of a server, in a SharedArrayBuffer, so that a ticket
 * resumes at most `tls.tickets.max_uses` connections in total whichever Workers take them (the
 * Workers share the ticket keys, so each opens the others' tickets). An open-addressing table
 * of 128-bit ticket ids behind a spin lock held for a few reads and writes; a slot whose
 * ticket expired is taken again. When a ticket's probe path has no room, its resumption is
 * refused (a full handshake), as `TicketUses` does when full: counts are never forgotten
 * early.
 */
import { TICKET_ID_LENGTH } from "../../protocol/tls/session13.ts";
import type { TicketUseCounter } from "../../protocol/tls/mod.ts";
import { withSpinLock } from "./spin_lock.ts";

/** Int32 cells before the slots: the lock. */
const HEADER = 1;
/** Int32 fields per slot: four words of ticket id, the uses, the expiry (Unix seconds). */
const SLOT = 6;
/** Slots probed before the table counts as full for a ticket. */
const MAX_PROBES = 64;

/** A table for about `tickets` live tickets (rounded up to a power of two). */
export function allocateTicketUses(tickets = 1 << 17): SharedArrayBuffer {
  let size = 1;
  while (size < tickets) size *= 2;
  return new SharedArrayBuffer((HEADER + size * SLOT) * 4);
}

export class SharedTicketUses implements TicketUseCounter {
  readonly maxUses: number;
  readonly #cells: Int32Array;
  readonly #slots: number;

  constructor(buffer: SharedArrayBuffer, maxUses: number) {
    if (!Number.isInteger(maxUses) || maxUses < 1) {
      throw new RangeError("Ticket uses must be a positive integer");
    }
    this.maxUses = maxUses;
    this.#cells = new Int32Array(buffer);
    this.#slots = (this.#cells.length - HEADER) / SLOT;
  }

  take(id: Uint8Array, expiresAt: number, now: number): boolean {
    return this.#visit(id, now, expiresAt);
  }

  usable(id: Uint8Array, now: number): boolean {
    return this.#visit(id, now, null);
  }

  /** Finds the ticket's slot; records a use unless `expiresAt` is null (a peek). */
  #visit(id: Uint8Array, now: number, expiresAt: number | null): boolean {
    if (id.length !== TICKET_ID_LENGTH) return false;
    const view = new DataView(id.buffer, id.byteOffset, id.byteLength);
    const words = [0, 4, 8, 12].map((o) => view.getInt32(o));
    // All zeros marks a free slot; a random id is never that (and if it were, no resumption).
    if (words.every((w) => w === 0)) return false;
    const nowSeconds = Math.floor(now / 1000);
    const cells = this.#cells;
    return withSpinLock(cells, () => {
      let i = (Math.imul(words[0]! ^ words[1]! ^ words[2]! ^ words[3]!, 0x9e3779b1) >>> 0) &
        (this.#slots - 1);
      let free: number | null = null;
      for (let probe = 0; probe < MAX_PROBES; probe++, i = (i + 1) & (this.#slots - 1)) {
        const at = HEADER + i * SLOT;
        const used = (cells[at]! | cells[at + 1]! | cells[at + 2]! | cells[at + 3]!) !== 0;
        if (!used) {
          free ??= at;
          break;
        }
        const live = (cells[at + 5]! >>> 0) > nowSeconds;
        if (
          cells[at] === words[0] && cells[at + 1] === words[1] && cells[at + 2] === words[2] &&
          cells[at + 3] === words[3] && live
        ) {
          if (cells[at + 4]! >= this.maxUses) return false;
          if (expiresAt !== null) cells[at + 4] = cells[at + 4]! + 1;
          return true;
        }
        // An expired ticket's slot is free for another; the path stays unbroken.
        if (!live) free ??= at;
      }
      if (free === null) return false;
      if (expiresAt === null) return true;
      const expiry = Math.min(Math.ceil(expiresAt / 1000), 0xffffffff);
      for (let w = 0; w < 4; w++) cells[free + w] = words[w]!;
      cells[free + 4] = 1;
      cells[free + 5] = expiry | 0;
      return true;
    });
  }
}
