/**
 * APPEND (RFC 9051, Section 6.3.12) with flags, INTERNALDATE and APPENDUID (RFC 4315); the
 * message may come as a literal8 (RFC 3516). The store commits before the OK is sent.
 */
import { derivedData } from "../mime_support.ts";
import type { CommandSpec } from "../context.ts";
import { ImapError } from "../errors.ts";
import { recentRegistryFor } from "../recent.ts";
import type { AppendResult } from "../../../mailstore/mail_store.ts";
import { hasQuotaRoot } from "../quota.ts";
import { account, mustGetMailbox, readMailbox } from "./_util.ts";

export const appendCommand: CommandSpec = {
  name: "APPEND",
  states: ["authenticated", "selected"],
  allowsExpunge: true,
  async run(ctx, r) {
    r.sp();
    const name = readMailbox(ctx, r);
    r.sp();
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
    const message = r.literal();
    r.end();
    if (message.bytes.length === 0) throw new ImapError("NO", "Empty message", "CANNOT");
    const mailbox = await mustGetMailbox(ctx, name, true);
    const input = {
      raw: message.bytes,
      flags,
      ...(internalDate !== undefined ? { internalDate } : {}),
      ...derivedData(ctx.mime, message.bytes),
    };
    const limits = ctx.quota?.limits(account(ctx).name) ?? null;
    let result: AppendResult;
    if (limits !== null && hasQuotaRoot(limits)) {
      // The store checks the quota in the transaction that appends (RFC 9208, Section 4.3).
      const delivered = await ctx.store.deliver(mailbox.id, input, {
        deliveryKey: "",
        windowMs: 0,
        quota: limits,
      });
      if (delivered.kind !== "stored") {
        throw new ImapError("NO", "Quota exceeded", "OVERQUOTA");
      }
      result = delivered;
    } else result = await ctx.store.append(mailbox.id, input);
    recentRegistryFor(ctx.store).noteArrival(mailbox.id, result.uidValidity, result.uid);
    const state = ctx.state;
    if (state.kind === "selected" && state.view.mailboxId === mailbox.id) {
      state.view.noteAppended([result.uid]);
    }
    return { code: `APPENDUID ${result.uidValidity} ${result.uid}`, text: "APPEND completed" };
  },
};
