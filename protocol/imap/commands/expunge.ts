/** EXPUNGE (RFC 9051, Section 6.4.3) and UID EXPUNGE (RFC 4315; RFC 9051, Section 6.4.9). */
import type { CommandSpec } from "../context.ts";
import { requireWritable, selected } from "./_util.ts";

export const expungeCommand: CommandSpec = {
  name: "EXPUNGE",
  states: ["selected"],
  allowsExpunge: true,
  async run(ctx, r) {
    r.end();
    const { view } = selected(ctx);
    requireWritable(view);
    view.noteExpunged(await ctx.store.expunge(view.mailboxId));
    return { text: "EXPUNGE completed" };
  },
};

export const uidExpungeCommand: CommandSpec = {
  name: "UID EXPUNGE",
  states: ["selected"],
  allowsExpunge: true,
  async run(ctx, r) {
    r.sp();
    const set = r.sequenceSet();
    r.end();
    const { view } = selected(ctx);
    requireWritable(view);
    const uids = view.resolve(set, true, ctx.savedSearch);
    if (uids.length > 0) view.noteExpunged(await ctx.store.expunge(view.mailboxId, uids));
    return { text: "UID EXPUNGE completed" };
  },
};
