/** STORE and UID STORE (RFC 9051, Sections 6.4.6 and 6.4.9): +FLAGS, -FLAGS, FLAGS, .SILENT. */
import type { FlagOperation } from "../../../mailstore/mail_store.ts";
import type { CommandContext, CommandSpec, Completion } from "../context.ts";
import { badSyntax } from "../errors.ts";
import type { CommandReader } from "../parser.ts";
import { flagList } from "../response.ts";
import { formatSequenceSet } from "../sequence_set.ts";
import { requireWritable, selected } from "./_util.ts";

const OPERATIONS: Record<string, FlagOperation> = { "+": "add", "-": "remove", "": "replace" };

async function store(ctx: CommandContext, r: CommandReader, uidMode: boolean): Promise<Completion> {
  r.sp();
  const set = r.sequenceSet();
  r.sp();
  let unchangedSince: number | undefined;
  if (r.peek() === 0x28) {
    // store-modifiers (RFC 7162, Section 3.1.3).
    r.list(() => {
      const name = r.keyword("STORE modifier");
      if (name !== "UNCHANGEDSINCE") throw badSyntax(`Unknown STORE modifier ${name}`);
      r.sp();
      unchangedSince = r.number64("mod-sequence");
      return name;
    }, false);
    r.sp();
  }
  const action = r.chars((c) =>
    c === 0x2b || c === 0x2d || c === 0x2e || (c >= 0x41 && c <= 0x5a) ||
    (c >= 0x61 && c <= 0x7a)
  ).toUpperCase();
  const m = /^([+-]?)FLAGS(\.SILENT)?$/.exec(action);
  if (m === null) throw badSyntax("Expected FLAGS, +FLAGS or -FLAGS");
  const op = OPERATIONS[m[1]!]!;
  const silent = m[2] !== undefined;
  r.sp();
  let flags: string[];
  if (r.peek() === 0x28) flags = r.flagList();
  else {
    flags = [r.flag()];
    while (r.trySp()) flags.push(r.flag());
  }
  r.end();
  if (unchangedSince !== undefined) await ctx.enableCondstore();
  flags = flags.filter((f) => f.toLowerCase() !== "\\recent");
  const { view } = selected(ctx);
  requireWritable(view);
  const uids = view.resolve(set, uidMode, ctx.savedSearch);
  const result = uids.length > 0
    ? await ctx.store.storeFlags(view.mailboxId, uids, op, flags, unchangedSince)
    : { updated: [], modified: [] };
  if (!silent) view.announceAll(result.updated.map((m) => m.flags), ctx.out);
  for (const meta of result.updated) {
    const seq = view.seqOf(meta.uid);
    if (seq === 0) continue;
    view.noteFlags(meta.uid, meta.flags);
    view.noteModseq(meta.modseq);
    const uid = uidMode || ctx.rev2 ? `UID ${meta.uid} ` : "";
    const modseq = ctx.condstore ? `MODSEQ (${meta.modseq})` : "";
    // Under CONDSTORE even .SILENT reports the new MODSEQ (RFC 7162, Section 3.1.3).
    if (silent && modseq !== "") ctx.out.line(`* ${seq} FETCH (${uid}${modseq})`);
    if (silent) continue;
    ctx.out.line(
      `* ${seq} FETCH (${uid}FLAGS ${flagList(view.shownFlags(meta.uid, meta.flags))}${
        modseq ? " " + modseq : ""
      })`,
    );
  }
  const label = `${uidMode ? "UID STORE" : "STORE"} completed`;
  if (result.modified.length === 0) return { text: label };
  // MODIFIED lists UIDs for UID STORE and sequence numbers for STORE.
  const failed = result.modified.map((u) => uidMode ? u : view.seqOf(u)).filter((n) => n > 0);
  failed.sort((a, b) => a - b);
  return { code: `MODIFIED ${formatSequenceSet(failed)}`, text: `Conditional ${label}` };
}

export const storeCommand: CommandSpec = {
  name: "STORE",
  states: ["selected"],
  allowsExpunge: false,
  run: (ctx, r) => store(ctx, r, false),
};

export const uidStoreCommand: CommandSpec = {
  name: "UID STORE",
  states: ["selected"],
  allowsExpunge: true,
  run: (ctx, r) => store(ctx, r, true),
};
