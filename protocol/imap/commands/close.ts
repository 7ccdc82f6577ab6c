/**
 * CLOSE (RFC 9051, Section 6.4.1) expunges silently unless read-only, then deselects;
 * UNSELECT (RFC 3691; RFC 9051, Section 6.4.2) deselects without expunging.
 */
import type { CommandSpec } from "../context.ts";
import { selected } from "./_util.ts";

export const closeCommand: CommandSpec = {
  name: "CLOSE",
  states: ["selected"],
  allowsExpunge: false,
  async run(ctx, r) {
    r.end();
    const { account, view } = selected(ctx);
    ctx.setState({ kind: "authenticated", account });
    if (!view.readOnly) await ctx.store.expunge(view.mailboxId);
    return { text: "CLOSE completed" };
  },
};

export const unselectCommand: CommandSpec = {
  name: "UNSELECT",
  states: ["selected"],
  allowsExpunge: false,
  run(ctx, r) {
    r.end();
    const { account } = selected(ctx);
    ctx.setState({ kind: "authenticated", account });
    return Promise.resolve({ text: "UNSELECT completed" });
  },
};
