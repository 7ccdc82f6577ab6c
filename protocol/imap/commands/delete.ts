/**
 * DELETE (RFC 9051, Section 6.3.5). Deleting the selected mailbox leaves the session
 * authenticated, with `* OK [CLOSED]` (the response code of RFC 7162); INBOX cannot be deleted.
 */
import type { CommandSpec } from "../context.ts";
import { ImapError } from "../errors.ts";
import { recentRegistryFor } from "../recent.ts";
import { account, readMailbox } from "./_util.ts";

export const deleteCommand: CommandSpec = {
  name: "DELETE",
  states: ["authenticated", "selected"],
  allowsExpunge: true,
  async run(ctx, r) {
    r.sp();
    const name = readMailbox(ctx, r);
    r.end();
    if (name === "INBOX") throw new ImapError("NO", "INBOX cannot be deleted", "CANNOT");
    const acct = account(ctx);
    const mailbox = await ctx.store.getMailbox(acct.id, name);
    if (mailbox === null) throw new ImapError("NO", "No such mailbox", "NONEXISTENT");
    const state = ctx.state;
    if (state.kind === "selected" && state.view.name === name) {
      ctx.setState({ kind: "authenticated", account: acct });
      ctx.out.line("* OK [CLOSED] Mailbox deleted");
    }
    await ctx.store.deleteMailbox(acct.id, name);
    recentRegistryFor(ctx.store).forget(mailbox.id);
    return { text: "DELETE completed" };
  },
};
