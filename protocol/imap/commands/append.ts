/**
 * APPEND (RFC 9051, Section 6.3.12) with flags, INTERNALDATE and APPENDUID (RFC 4315); the
 * message may come as a literal8 (RFC 3516), and after ENABLE UTF8=ACCEPT as `UTF8 (~{n})`
 * (RFC 6855, Section 4). Several messages in one command are MULTIAPPEND (RFC 3502): the
 * store commits all of them in one transaction, or none. With a quota, the store checks it in
 * the same transaction (RFC 9208, Section 4.3). The store commits before the OK is sent.
 */
import type { AppendInput, AppendResult } from "../../../mailstore/mail_store.ts";
import { type DerivedData, derivedData, OFF_THREAD_DERIVE_BYTES } from "../mime_support.ts";
import type { CommandContext, CommandSpec } from "../context.ts";
import { badSyntax, ImapError } from "../errors.ts";
import { hasQuotaRoot } from "../quota.ts";
import { recentRegistryFor } from "../recent.ts";
import type { CommandReader } from "../parser.ts";
import { formatSequenceSet } from "../sequence_set.ts";
import { account, mustGetMailbox, readMailbox } from "./_util.ts";

/** One message of the command: `[SP flag-list] [SP date-time] SP literal`. */
function readMessage(
  ctx: CommandContext,
  r: CommandReader,
): { flags: string[]; internalDate?: number; raw: Uint8Array } {
  let flags: string[] = [];
  let internalDate: number | undefined;
  if (r.peek() === 0x28) {
    flags = r.flagList().filter((f) => f.toLowerCase() !== "\\recent");
    r.sp();
  }
  if (r.peek() === 0x22) {
    internalDate = r.dateTime();
    r.sp();
  }
  let raw: Uint8Array;
  if (r.peekKeyword() === "UTF8") {
    // append-data-ext of RFC 6855, Section 4: `UTF8 (literal8)`, a message with UTF-8 headers.
    if (!ctx.utf8) throw badSyntax("UTF8 data needs ENABLE UTF8=ACCEPT");
    r.keyword();
    r.sp();
    r.expectByte(0x28, "(");
    const value = r.literal();
    if (!value.binary) throw badSyntax("UTF8 data must be a literal8");
    raw = value.bytes;
    r.expectByte(0x29, ")");
  } else raw = r.literal().bytes;
  return { flags, raw, ...(internalDate !== undefined ? { internalDate } : {}) };
}

/**
 * The stored data of `raw`, derived off the event loop when it is large and the driver offers
 * a thread (a 50 MB message takes ~50 ms to parse), with the bytes to store: `raw` itself, or
 * the view given back when it went to that thread.
 */
async function derive(
  ctx: CommandContext,
  raw: Uint8Array,
): Promise<{ raw: Uint8Array; derived: DerivedData }> {
  if (ctx.deriveOffThread !== null && raw.byteLength >= OFF_THREAD_DERIVE_BYTES) {
    const done = await ctx.deriveOffThread(raw);
    if (done !== null) {
      return { raw: done.raw, derived: done.derived ?? derivedData(ctx.mime, done.raw) };
    }
  }
  return { raw, derived: derivedData(ctx.mime, raw) };
}

const overQuota = () => new ImapError("NO", "Quota exceeded", "OVERQUOTA");

export const appendCommand: CommandSpec = {
  name: "APPEND",
  states: ["authenticated", "selected"],
  allowsExpunge: true,
  async run(ctx, r) {
    r.sp();
    const name = readMailbox(ctx, r);
    r.sp();
    const messages = [readMessage(ctx, r)];
    while (r.trySp()) messages.push(readMessage(ctx, r));
    r.end();
    if (messages.some((m) => m.raw.length === 0)) {
      throw new ImapError("NO", "Empty message", "CANNOT");
    }
    const mailbox = await mustGetMailbox(ctx, name, true);
    const inputs: AppendInput[] = [];
    for (const m of messages) {
      const { raw, derived } = await derive(ctx, m.raw);
      inputs.push({
        raw,
        flags: m.flags,
        ...(m.internalDate !== undefined ? { internalDate: m.internalDate } : {}),
        ...derived,
        // The literal is this command's alone: the store may move it to a thread of its own.
        handOver: true,
      });
    }
    const limits = ctx.quota?.limits(account(ctx).name) ?? null;
    const quota = limits !== null && hasQuotaRoot(limits) ? limits : undefined;
    let results: readonly AppendResult[];
    if (inputs.length > 1) {
      const batch = await ctx.store.appendBatch(mailbox.id, inputs, quota);
      if (batch.kind !== "stored") throw overQuota();
      results = batch.results;
    } else if (quota !== undefined) {
      const delivered = await ctx.store.deliver(mailbox.id, inputs[0]!, {
        deliveryKey: "",
        windowMs: 0,
        quota,
      });
      if (delivered.kind !== "stored") throw overQuota();
      results = [delivered];
    } else results = [await ctx.store.append(mailbox.id, inputs[0]!)];
    const first = results[0]!;
    const uids = results.map((x) => x.uid);
    recentRegistryFor(ctx.store).noteArrival(mailbox.id, first.uidValidity, first.uid);
    const state = ctx.state;
    if (state.kind === "selected" && state.view.mailboxId === mailbox.id) {
      state.view.noteAppended(uids);
    }
    return {
      code: `APPENDUID ${first.uidValidity} ${formatSequenceSet(uids)}`,
      text: "APPEND completed",
    };
  },
};
