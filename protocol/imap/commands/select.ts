/**
 * SELECT and EXAMINE (RFC 9051, Sections 6.3.2 and 6.3.3; RFC 3501, Section 6.3.1 for the
 * IMAP4rev1 RECENT and UNSEEN responses).
 */
import type { CommandContext, CommandSpec, Completion } from "../context.ts";
import { badSyntax } from "../errors.ts";
import { MailboxView } from "../mailbox_view.ts";
import type { CommandReader } from "../parser.ts";
import { astringValue } from "../response.ts";
import { account, mustGetMailbox, readMailbox } from "./_util.ts";
import { listAttributes } from "./list.ts";

const SYSTEM_FLAGS = "\\Answered \\Flagged \\Deleted \\Seen \\Draft";

/** Reads the optional `(CONDSTORE)` select parameter (RFC 7162, Section 3.1.8). */
function readSelectParams(ctx: CommandContext, r: CommandReader): void {
  if (!r.trySp()) return;
  r.list(() => {
    const name = r.keyword("select parameter");
    if (name !== "CONDSTORE") throw badSyntax(`Unknown SELECT parameter ${name}`);
    ctx.enable("CONDSTORE");
    return name;
  });
}

async function open(ctx: CommandContext, name: string, readOnly: boolean): Promise<Completion> {
  const acct = account(ctx);
  const previous = ctx.state;
  if (previous.kind === "selected") {
    // Deselect first: a failed SELECT leaves no mailbox selected (RFC 9051, 6.3.2).
    ctx.setState({ kind: "authenticated", account: acct });
    ctx.out.line("* OK [CLOSED] Previous mailbox closed");
  }
  const mailbox = await mustGetMailbox(ctx, name);
  const { view, messages } = await MailboxView.open(ctx.store, mailbox, readOnly);
  const out = ctx.out;
  out.line(`* ${messages.length} EXISTS`);
  if (!ctx.rev2) {
    out.line("* 0 RECENT");
    const firstUnseen = messages.findIndex((m) =>
      !m.flags.some((f) => f.toLowerCase() === "\\seen")
    );
    if (firstUnseen >= 0) out.line(`* OK [UNSEEN ${firstUnseen + 1}] First unseen message`);
  }
  out.line(`* OK [UIDVALIDITY ${mailbox.uidValidity}] UIDs valid`);
  out.line(`* OK [UIDNEXT ${mailbox.uidNext}] Predicted next UID`);
  out.line(`* OK [HIGHESTMODSEQ ${mailbox.highestModseq}] Highest`);
  out.line(`* FLAGS (${SYSTEM_FLAGS})`);
  out.line(
    readOnly
      ? "* OK [PERMANENTFLAGS ()] No permanent flags permitted"
      : `* OK [PERMANENTFLAGS (${SYSTEM_FLAGS} \\*)] Flags permitted`,
  );
  if (ctx.rev2) {
    const attrs = await listAttributes(ctx, mailbox, null);
    const wire = astringValue(ctx.mailboxToClient(mailbox.name), ctx.utf8);
    out.text(`* LIST (${attrs.join(" ")}) "/" `);
    out.value(wire);
    out.text("\r\n");
  }
  ctx.setState({ kind: "selected", account: acct, view });
  return {
    code: readOnly ? "READ-ONLY" : "READ-WRITE",
    text: readOnly ? "EXAMINE completed" : "SELECT completed",
  };
}

export const selectCommand: CommandSpec = {
  name: "SELECT",
  states: ["authenticated", "selected"],
  allowsExpunge: false,
  async run(ctx, r) {
    r.sp();
    const name = readMailbox(ctx, r);
    readSelectParams(ctx, r);
    r.end();
    return await open(ctx, name, false);
  },
};

export const examineCommand: CommandSpec = {
  name: "EXAMINE",
  states: ["authenticated", "selected"],
  allowsExpunge: false,
  async run(ctx, r) {
    r.sp();
    const name = readMailbox(ctx, r);
    readSelectParams(ctx, r);
    r.end();
    return await open(ctx, name, true);
  },
};
