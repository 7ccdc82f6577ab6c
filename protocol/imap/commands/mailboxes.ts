/**
 * CREATE, DELETE, RENAME, SUBSCRIBE and UNSUBSCRIBE (RFC 9051, Sections 6.3.4 to 6.3.8).
 * A trailing "/" on CREATE only says the client means a parent (RFC 9051, 6.3.4).
 */
import type { CommandSpec } from "../context.ts";
import { ImapError } from "../errors.ts";
import { account, readMailbox } from "./_util.ts";

export const createCommand: CommandSpec = {
  name: "CREATE",
  states: ["authenticated", "selected"],
  allowsExpunge: true,
  async run(ctx, r) {
    r.sp();
    let name = readMailbox(ctx, r);
    r.end();
    if (name.endsWith("/")) name = name.replace(/\/+$/, "");
    if (name === "INBOX") throw new ImapError("NO", "INBOX already exists", "ALREADYEXISTS");
    const acct = account(ctx);
    if (await ctx.store.getMailbox(acct.id, name) !== null) {
      throw new ImapError("NO", "Mailbox already exists", "ALREADYEXISTS");
    }
    // Superior names are created too (RFC 9051, Section 6.3.4).
    const parts = name.split("/");
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join("/");
      if (await ctx.store.getMailbox(acct.id, parent) === null) {
        await ctx.store.createMailbox(acct.id, parent);
      }
    }
    await ctx.store.createMailbox(acct.id, name);
    return { text: "CREATE completed" };
  },
};

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
    if (await ctx.store.getMailbox(acct.id, name) === null) {
      throw new ImapError("NO", "No such mailbox", "NONEXISTENT");
    }
    const state = ctx.state;
    if (state.kind === "selected" && state.view.name === name) {
      ctx.setState({ kind: "authenticated", account: acct });
      ctx.out.line("* OK [CLOSED] Mailbox deleted");
    }
    await ctx.store.deleteMailbox(acct.id, name);
    return { text: "DELETE completed" };
  },
};

export const renameCommand: CommandSpec = {
  name: "RENAME",
  states: ["authenticated", "selected"],
  allowsExpunge: true,
  async run(ctx, r) {
    r.sp();
    const from = readMailbox(ctx, r);
    r.sp();
    const to = readMailbox(ctx, r).replace(/\/+$/, "");
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

function subscription(subscribe: boolean): CommandSpec {
  const name = subscribe ? "SUBSCRIBE" : "UNSUBSCRIBE";
  return {
    name,
    states: ["authenticated", "selected"],
    allowsExpunge: true,
    async run(ctx, r) {
      r.sp();
      const mailbox = readMailbox(ctx, r);
      r.end();
      await ctx.store.setSubscribed(account(ctx).id, mailbox, subscribe);
      return { text: `${name} completed` };
    },
  };
}

export const subscribeCommand: CommandSpec = subscription(true);
export const unsubscribeCommand: CommandSpec = subscription(false);
