/** RENAME (RFC 9051, Section 6.3.6): the target must not exist; the mailbox keeps its id. */
import type { CommandSpec } from "../context.ts";
import { ImapError } from "../errors.ts";
import { account, readMailbox } from "./_util.ts";

export const renameCommand: CommandSpec = {
  name: "RENAME",
  states: ["authenticated", "selected"],
  allowsExpunge: true,
  async run(ctx, r) {
    r.sp();
    const from = readMailbox(ctx, r);
    r.sp();
    const to = readMailbox(ctx, r, true).replace(/\/+$/, "");
    r.end();
    const acct = account(ctx);
    if (await ctx.store.getMailbox(acct.id, from) === null) {
      throw new ImapError("NO", "No such mailbox", "NONEXISTENT");
    }
    if (await ctx.store.getMailbox(acct.id, to) !== null) {
      throw new ImapError("NO", "Target mailbox already exists", "ALREADYEXISTS");
    }
    await ctx.store.renameMailbox(acct.id, from, to);
    return { text: "RENAME completed" };
  },
};
