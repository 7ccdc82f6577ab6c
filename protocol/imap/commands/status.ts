/**
 * STATUS (RFC 9051, Section 6.3.11; RECENT from RFC 3501 for IMAP4rev1 clients; SIZE from
 * RFC 8438; HIGHESTMODSEQ from RFC 7162; APPENDLIMIT from RFC 7889, Section 4; MAILBOXID from
 * RFC 8474, Section 4.3).
 */
import type { Mailbox } from "../../../mailstore/mail_store.ts";
import type { CommandContext, CommandSpec } from "../context.ts";
import { badSyntax } from "../errors.ts";
import type { CommandReader } from "../parser.ts";
import { recentRegistryFor } from "../recent.ts";
import { astringValue } from "../response.ts";
import { mustGetMailbox, readMailbox } from "./_util.ts";

const ITEMS = new Set([
  "MESSAGES",
  "UIDNEXT",
  "UIDVALIDITY",
  "UNSEEN",
  "DELETED",
  "SIZE",
  "RECENT",
  "HIGHESTMODSEQ",
  "APPENDLIMIT",
  "MAILBOXID",
]);

/** Reads `(status-att ...)`. */
export function readStatusItems(r: CommandReader): string[] {
  const items = r.list(() => r.keyword("status item"), false);
  for (const item of items) if (!ITEMS.has(item)) throw badSyntax(`Unknown STATUS item ${item}`);
  return items;
}

/**
 * \\Recent messages of a mailbox as an IMAP4rev1 client would count them: those no session has
 * claimed yet, plus those this session holds if it has the mailbox selected (see recent.ts).
 */
async function recentCount(ctx: CommandContext, mailbox: Mailbox): Promise<number> {
  if (ctx.rev2) return 0;
  const state = ctx.state;
  const own = state.kind === "selected" && state.view.mailboxId === mailbox.id
    ? state.view.recentCount
    : 0;
  const registry = recentRegistryFor(ctx.store);
  const boundary = registry.boundary(mailbox.id, mailbox.uidValidity);
  // Usually every message is claimed: no need to list the mailbox.
  if (boundary === null || boundary >= mailbox.uidNext) return own;
  const uids = (await ctx.store.listMessages(mailbox.id)).map((m) => m.uid);
  return own + uids.length - registry.unclaimedFrom(mailbox.id, mailbox.uidValidity, uids);
}

/** Writes `* STATUS name (...)` for a mailbox. */
export async function writeStatus(
  ctx: CommandContext,
  mailbox: Mailbox,
  items: readonly string[],
): Promise<void> {
  const values: string[] = [];
  let deleted: number | null = null;
  for (const item of items) {
    let value: number | string;
    switch (item) {
      case "MESSAGES":
        value = mailbox.messages;
        break;
      case "UIDNEXT":
        value = mailbox.uidNext;
        break;
      case "UIDVALIDITY":
        value = mailbox.uidValidity;
        break;
      case "UNSEEN":
        value = mailbox.unseen;
        break;
      case "SIZE":
        value = mailbox.size;
        break;
      case "RECENT":
        value = await recentCount(ctx, mailbox);
        break;
      case "APPENDLIMIT":
        // One limit for every mailbox, the one CAPABILITY advertises (RFC 7889, Section 4).
        value = ctx.limits.maxLiteral;
        break;
      case "HIGHESTMODSEQ":
        await ctx.enableCondstore();
        value = mailbox.highestModseq;
        break;
      case "MAILBOXID":
        value = `(${mailbox.objectId})`;
        break;
      case "DELETED":
        if (deleted === null) {
          const messages = await ctx.store.listMessages(mailbox.id);
          deleted = messages.filter((m) => m.flags.some((f) => f.toLowerCase() === "\\deleted"))
            .length;
        }
        value = deleted;
        break;
      default:
        continue;
    }
    values.push(`${item} ${value}`);
  }
  ctx.out.text("* STATUS ");
  ctx.out.value(astringValue(ctx.mailboxToClient(mailbox.name), ctx.utf8));
  ctx.out.line(` (${values.join(" ")})`);
}

export const statusCommand: CommandSpec = {
  name: "STATUS",
  states: ["authenticated", "selected"],
  allowsExpunge: true,
  async run(ctx, r) {
    r.sp();
    const name = readMailbox(ctx, r);
    r.sp();
    const items = readStatusItems(r);
    r.end();
    await writeStatus(ctx, await mustGetMailbox(ctx, name), items);
    return { text: "STATUS completed" };
  },
};
