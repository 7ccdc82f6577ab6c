/**
 * CREATE (RFC 9051, Section 6.3.4). A trailing "/" only says the client means a parent; the
 * superior names are created too. Takes the USE parameter of CREATE-SPECIAL-USE (RFC 6154,
 * Section 3) and answers with the new MAILBOXID (RFC 8474, Section 4.1).
 */
import type { SpecialUse } from "../../../mailstore/mail_store.ts";
import type { CommandSpec } from "../context.ts";
import { badSyntax, ImapError } from "../errors.ts";
import type { CommandReader } from "../parser.ts";
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
