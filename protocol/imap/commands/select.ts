/**
 * SELECT and EXAMINE (RFC 9051, Sections 6.3.2 and 6.3.3; RFC 3501, Section 6.3.1 for the
 * IMAP4rev1 RECENT and UNSEEN responses).
 */
import type { CommandContext, CommandSpec, Completion } from "../context.ts";
import { badSyntax } from "../errors.ts";
import { MailboxView } from "../mailbox_view.ts";
import type { CommandReader } from "../parser.ts";
import { astringValue, flagList } from "../response.ts";
import {
  formatSequenceSet,
  MAX_NUMBER,
  selectFromSorted,
  type SequenceSet,
  starAs,
} from "../sequence_set.ts";
import { account, mustGetMailbox, readMailbox } from "./_util.ts";
import { listAttributes } from "./list.ts";

/** `QRESYNC (uidvalidity modseq [known-uids [seq-match]])` (RFC 7162, Section 3.2.5). */
interface QresyncParams {
  readonly uidValidity: number;
  readonly modseq: number;
  readonly knownUids: SequenceSet | null;
}

/** Reads the optional select parameters: CONDSTORE and QRESYNC (RFC 7162, 3.1.8 and 3.2.5). */
function readSelectParams(ctx: CommandContext, r: CommandReader): QresyncParams | null {
  let qresync: QresyncParams | null = null;
  if (!r.trySp()) return null;
  r.list(() => {
    const name = r.keyword("select parameter");
    if (name === "CONDSTORE") ctx.enable("CONDSTORE");
    else if (name === "QRESYNC") {
      if (!ctx.qresync) throw badSyntax("QRESYNC must be enabled first");
      r.sp();
      r.expectByte(0x28, "(");
      const uidValidity = r.nzNumber("UIDVALIDITY");
      r.sp();
      const modseq = r.number64("mod-sequence");
      let knownUids: SequenceSet | null = null;
      if (r.trySp()) {
        if (r.peek() !== 0x28) {
          knownUids = r.sequenceSet();
          if (knownUids.kind === "saved") throw badSyntax("Invalid known UIDs");
          r.trySp();
        }
        // The sequence-match data only helps servers without a VANISHED history; ignore it.
        if (r.peek() === 0x28) r.list(() => r.sequenceSet());
      }
      r.expectByte(0x29, ")");
      qresync = { uidValidity, modseq, knownUids };
    } else throw badSyntax(`Unknown SELECT parameter ${name}`);
    return name;
  });
  return qresync;
}

/** Reports what changed since the client's last sync (RFC 7162, Section 3.2.5.1). */
async function resync(ctx: CommandContext, view: MailboxView, q: QresyncParams): Promise<void> {
  if (q.uidValidity !== view.uidValidity) return;
  const changes = await ctx.store.changesSince(view.mailboxId, q.modseq);
  // A message expunged after the view listed the mailbox is in the EXISTS count just sent:
  // VANISHED (EARLIER) does not renumber (RFC 7162, Section 3.2.10), so it waits for the
  // view's next sync, which reports it as VANISHED.
  let vanished = changes.vanished.filter((u) => view.seqOf(u) === 0).sort((a, b) => a - b);
  if (q.knownUids !== null && q.knownUids.kind === "ranges") {
    vanished = selectFromSorted(starAs(q.knownUids.ranges, MAX_NUMBER), vanished);
  }
  if (vanished.length > 0) ctx.out.line(`* VANISHED (EARLIER) ${formatSequenceSet(vanished)}`);
  view.announceAll(changes.changed.map((m) => m.flags), ctx.out);
  for (const m of changes.changed) {
    const seq = view.seqOf(m.uid);
    if (seq === 0) continue;
    view.noteFlags(m.uid, m.flags);
    view.noteModseq(m.modseq);
    const flags = flagList(view.shownFlags(m.uid, m.flags));
    ctx.out.line(`* ${seq} FETCH (UID ${m.uid} FLAGS ${flags} MODSEQ (${m.modseq}))`);
  }
}

async function open(
  ctx: CommandContext,
  name: string,
  readOnly: boolean,
  qresync: QresyncParams | null,
): Promise<Completion> {
  const acct = account(ctx);
  const previous = ctx.state;
  if (previous.kind === "selected") {
    // Deselect first: a failed SELECT leaves no mailbox selected (RFC 9051, 6.3.2).
    ctx.setState({ kind: "authenticated", account: acct });
    ctx.out.line("* OK [CLOSED] Previous mailbox closed");
  }
  const mailbox = await mustGetMailbox(ctx, name);
  const recentMode = ctx.rev2 ? "off" : readOnly ? "peek" : "claim";
  const view = await MailboxView.open(ctx.store, mailbox, readOnly, recentMode);
  const out = ctx.out;
  out.line(`* ${view.count} EXISTS`);
  if (!ctx.rev2) {
    out.line(`* ${view.recentCount} RECENT`);
    const firstUnseen = view.firstUnseen();
    if (firstUnseen > 0) out.line(`* OK [UNSEEN ${firstUnseen}] First unseen message`);
  }
  out.line(`* OK [UIDVALIDITY ${mailbox.uidValidity}] UIDs valid`);
  out.line(`* OK [UIDNEXT ${mailbox.uidNext}] Predicted next UID`);
  out.line(`* OK [HIGHESTMODSEQ ${mailbox.highestModseq}] Highest`);
  // RFC 8474, Section 4.2.
  out.line(`* OK [MAILBOXID (${mailbox.objectId})] Ok`);
  view.writeFlags(out);
  if (ctx.rev2) {
    const attrs = await listAttributes(ctx, mailbox, null);
    const wire = astringValue(ctx.mailboxToClient(mailbox.name), ctx.utf8);
    out.text(`* LIST (${attrs.join(" ")}) "/" `);
    out.value(wire);
    out.text("\r\n");
  }
  ctx.setState({ kind: "selected", account: acct, view });
  if (qresync !== null) await resync(ctx, view, qresync);
  return {
    code: readOnly ? "READ-ONLY" : "READ-WRITE",
    text: readOnly ? "EXAMINE completed" : "SELECT completed",
  };
}

/** SELECT and EXAMINE differ only in whether the mailbox opens read-only. */
function openCommand(name: "SELECT" | "EXAMINE", readOnly: boolean): CommandSpec {
  return {
    name,
    states: ["authenticated", "selected"],
    allowsExpunge: false,
    async run(ctx, r) {
      r.sp();
      const mailbox = readMailbox(ctx, r);
      const qresync = readSelectParams(ctx, r);
      r.end();
      return await open(ctx, mailbox, readOnly, qresync);
    },
  };
}

export const selectCommand: CommandSpec = openCommand("SELECT", false);
export const examineCommand: CommandSpec = openCommand("EXAMINE", true);
