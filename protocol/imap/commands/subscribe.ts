/** SUBSCRIBE and UNSUBSCRIBE (RFC 9051, Sections 6.3.7 and 6.3.8). */
import type { CommandSpec } from "../context.ts";
import { account, readMailbox } from "./_util.ts";

function subscription(subscribe: boolean): CommandSpec {
  const name = subscribe ? "SUBSCRIBE" : "UNSUBSCRIBE";
  return {
    name,
    states: ["authenticated", "selected"],
    allowsExpunge: true,
    async run(ctx, r) {
      r.sp();
      // A subscription is stored, so its name must be well formed; unsubscribing only looks.
      const mailbox = readMailbox(ctx, r, subscribe);
      r.end();
      await ctx.store.setSubscribed(account(ctx).id, mailbox, subscribe);
      return { text: `${name} completed` };
    },
  };
}

export const subscribeCommand: CommandSpec = subscription(true);
export const unsubscribeCommand: CommandSpec = subscription(false);
