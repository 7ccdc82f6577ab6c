/** GETQUOTA (RFC 9208, Section 4.3.1): the usage and limits of one quota root. */
import type { CommandContext, CommandSpec } from "../context.ts";
import { ImapError } from "../errors.ts";
import { hasQuotaRoot, QUOTA_ROOT, quotaList, type QuotaSource } from "../quota.ts";
import { account } from "./_util.ts";

/** The session's quota source; the QUOTA commands are unknown without one. */
export function quotaSource(ctx: CommandContext): QuotaSource {
  if (ctx.quota === null) throw new ImapError("BAD", "Unknown command");
  return ctx.quota;
}

export const getQuotaCommand: CommandSpec = {
  name: "GETQUOTA",
  states: ["authenticated", "selected"],
  allowsExpunge: true,
  async run(ctx, r) {
    r.sp();
    const root = r.astring("quota root");
    r.end();
    const source = quotaSource(ctx);
    const owner = account(ctx);
    const limits = source.limits(owner.name);
    if (root !== QUOTA_ROOT || !hasQuotaRoot(limits)) {
      throw new ImapError("NO", "No such quota root", "NONEXISTENT");
    }
    const usage = await source.usage(owner.id);
    ctx.out.line(`* QUOTA "${QUOTA_ROOT}" ${quotaList(limits, usage)}`);
    return { text: "GETQUOTA completed" };
  },
};
