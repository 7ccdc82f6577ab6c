/** Helpers shared by the command handlers of this folder. */
import type { Account, Mailbox } from "../../../mailstore/mail_store.ts";
import type { CommandContext, SessionState } from "../context.ts";
import { ImapError } from "../errors.ts";
import type { MailboxView } from "../mailbox_view.ts";
import type { CommandReader } from "../parser.ts";

/** The selected state; handlers registered only for "selected" may rely on it. */
export function selected(
  ctx: CommandContext,
): { account: Account; view: MailboxView } {
  const s = ctx.state;
  if (s.kind !== "selected") throw new ImapError("BAD", "No mailbox selected");
  return s;
}

/** The account of an authenticated or selected session. */
export function account(ctx: CommandContext): Account {
  const s: SessionState = ctx.state;
  if (s.kind !== "authenticated" && s.kind !== "selected") {
    throw new ImapError("BAD", "Not authenticated");
  }
  return s.account;
}

/**
 * Reads a mailbox name argument and converts it to the store's form; `strict` for a name that
 * will be created (CREATE, RENAME's target), where malformed modified UTF-7 is BAD.
 */
export function readMailbox(ctx: CommandContext, r: CommandReader, strict = false): string {
  return ctx.mailboxFromClient(r.astring("mailbox name"), strict);
}

/** Looks a mailbox up; a missing one is NO [NONEXISTENT], or [TRYCREATE] for a target. */
export async function mustGetMailbox(
  ctx: CommandContext,
  name: string,
  tryCreate = false,
): Promise<Mailbox> {
  const mailbox = await ctx.store.getMailbox(account(ctx).id, name);
  if (mailbox === null) {
    throw new ImapError(
      "NO",
      "No such mailbox",
      tryCreate ? "TRYCREATE" : "NONEXISTENT",
    );
  }
  return mailbox;
}

/** Fails when the selected mailbox was opened with EXAMINE. */
export function requireWritable(view: MailboxView): void {
  if (view.readOnly) throw new ImapError("NO", "Mailbox is read-only", "READ-ONLY");
}
