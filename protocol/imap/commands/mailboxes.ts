/**
 * CREATE, DELETE, RENAME, SUBSCRIBE and UNSUBSCRIBE (RFC 9051, Sections 6.3.4 to 6.3.8).
 * A trailing "/" on CREATE only says the client means a parent (RFC 9051, 6.3.4). CREATE takes
 * the USE parameter of CREATE-SPECIAL-USE (RFC 6154, Section 3).
 */
import type { SpecialUse } from "../../../mailstore/mail_store.ts";
import type { CommandSpec } from "../context.ts";
import { badSyntax, ImapError } from "../errors.ts";
import type { CommandReader } from "../parser.ts";
import { recentRegistryFor } from "../recent.ts";
import { account, readMailbox } from "./_util.ts";

/** The special uses CREATE accepts, by upper-cased attribute (RFC 6154, Section 2). */
const SPECIAL_USES: ReadonlyMap<string, SpecialUse> = new Map(
  (["\\Sent", "\\Drafts", "\\Trash", "\\Junk", "\\Archive", "\\All", "\\Flagged"] as const)
    .map((u) => [u.toUpperCase(), u]),
);

/**
 * Reads the optional `(USE (attr ...))` of CREATE (RFC 4466, Section 2.2; RFC 6154, Section 3).
 * An attribute the store cannot keep, or more than one, is `NO [USEATTR]`.
 */
function readCreateParams(r: CommandReader): SpecialUse | null {
  if (!r.trySp()) return null;
  let use: SpecialUse | null = null;
  let unsupported = false;
  let seen = false;
  r.list(() => {
    const name = r.keyword("create parameter");
    if (name !== "USE" || seen) throw badSyntax(`Unknown CREATE parameter ${name}`);
    seen = true;
    r.sp();
    const attrs = r.list(() => r.flag(), false);
    const known = attrs.map((a) => SPECIAL_USES.get(a.toUpperCase()));
    const first = known[0];
    if (known.length !== 1 || first === undefined) unsupported = true;
    else use = first;
    return name;
  }, false);
  if (unsupported) {
    throw new ImapError(
      "NO",
      "Only one of the known special-use attributes is supported",
      "USEATTR",
    );
  }
  return use;
}

export const createCommand: CommandSpec = {
  name: "CREATE",
  states: ["authenticated", "selected"],
  allowsExpunge: true,
  async run(ctx, r) {
    r.sp();
    let name = readMailbox(ctx, r, true);
    const use = readCreateParams(r);
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
    const created = await ctx.store.createMailbox(acct.id, name, use);
    // RFC 8474, Section 4.1.
    return { code: `MAILBOXID (${created.objectId})`, text: "CREATE completed" };
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
