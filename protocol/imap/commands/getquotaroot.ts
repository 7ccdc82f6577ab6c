/**
 * GETQUOTAROOT (RFC 9208, Section 4.3.2): the quota roots of a mailbox, then a QUOTA response
 * for each. Every mailbox of an account with limits is in its one root.
 */
import type { CommandSpec } from "../context.ts";
import { astringValue } from "../response.ts";
import { hasQuotaRoot, QUOTA_ROOT, quotaList } from "../quota.ts";
import { account, mustGetMailbox, readMailbox } from "./_util.ts";
import { quotaSource } from "./getquota.ts";

export const getQuotaRootCommand: CommandSpec = {
  name: "GETQUOTAROOT",
  states: ["authenticated", "selected"],
  allowsExpunge: true,
  async run(ctx, r) {
    r.sp();
    const name = readMailbox(ctx, r);
    r.end();
    const source = quotaSource(ctx);
    const owner = account(ctx);
    await mustGetMailbox(ctx, name);
    const limits = source.limits(owner.name);
    ctx.out.text("* QUOTAROOT ");
    ctx.out.value(astringValue(ctx.mailboxToClient(name), ctx.utf8));
    if (!hasQuotaRoot(limits)) {
      ctx.out.text("\r\n");
      return { text: "GETQUOTAROOT completed" };
    }
    ctx.out.text(` "${QUOTA_ROOT}"\r\n`);
    ctx.out.line(`* QUOTA "${QUOTA_ROOT}" ${quotaList(limits, await source.usage(owner.id))}`);
    return { text: "GETQUOTAROOT completed" };
  },
};
