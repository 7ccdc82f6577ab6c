/**
 * COPY and MOVE with their UID forms (RFC 9051, Sections 6.4.7 and 6.4.8; RFC 6851), answered
 * with COPYUID (RFC 4315). MOVE sends COPYUID in an untagged OK before its EXPUNGE responses.
 */
import type { CommandContext, CommandSpec, Completion } from "../context.ts";
import type { CommandReader } from "../parser.ts";
import { checkQuota } from "../quota.ts";
import { recentRegistryFor } from "../recent.ts";
import { formatSequenceSet } from "../sequence_set.ts";
import { mustGetMailbox, readMailbox, requireWritable, selected } from "./_util.ts";

async function transfer(
  ctx: CommandContext,
  r: CommandReader,
  uidMode: boolean,
  move: boolean,
): Promise<Completion> {
  r.sp();
  const set = r.sequenceSet();
  r.sp();
  const name = readMailbox(ctx, r);
  r.end();
  const { view } = selected(ctx);
  if (move) requireWritable(view);
  const target = await mustGetMailbox(ctx, name, true);
  const uids = view.resolve(set, uidMode, ctx.savedSearch);
  const label = `${uidMode ? "UID " : ""}${move ? "MOVE" : "COPY"}`;
  if (uids.length === 0) return { text: `${label} completed` };
  if (ctx.quota !== null) {
    // MOVE stays within the account's one quota root: it adds nothing, so it is refused only
    // when the account is over a limit already (RFC 9208, Section 4.3).
    const added = move ? [] : await ctx.store.getMessages(view.mailboxId, uids);
    const octets = added.reduce((n, m) => n + m.size, 0);
    await checkQuota(ctx.quota, selected(ctx).account, octets, added.length);
  }
  const result = move
    ? await ctx.store.move(view.mailboxId, uids, target.id)
    : await ctx.store.copy(view.mailboxId, uids, target.id);
  const first = result.mapping[0];
  if (first !== undefined) {
    recentRegistryFor(ctx.store).noteArrival(target.id, result.uidValidity, first[1]);
  }
  if (target.id === view.mailboxId) view.noteAppended(result.mapping.map(([, d]) => d));
  const code = result.mapping.length === 0 ? undefined : `COPYUID ${result.uidValidity} ` +
    `${formatSequenceSet(result.mapping.map(([s]) => s))} ` +
    `${formatSequenceSet(result.mapping.map(([, d]) => d))}`;
  if (move) {
    if (code !== undefined) ctx.out.line(`* OK [${code}] Moved`);
    view.noteExpunged(result.mapping.map(([s]) => s));
    return { text: `${label} completed` };
  }
  return code === undefined ? { text: `${label} completed` } : { code, text: `${label} completed` };
}

export const copyCommand: CommandSpec = {
  name: "COPY",
  states: ["selected"],
  allowsExpunge: true,
  run: (ctx, r) => transfer(ctx, r, false, false),
};

export const uidCopyCommand: CommandSpec = {
  name: "UID COPY",
  states: ["selected"],
  allowsExpunge: true,
  run: (ctx, r) => transfer(ctx, r, true, false),
};

export const moveCommand: CommandSpec = {
  name: "MOVE",
  states: ["selected"],
  allowsExpunge: true,
  run: (ctx, r) => transfer(ctx, r, false, true),
};

export const uidMoveCommand: CommandSpec = {
  name: "UID MOVE",
  states: ["selected"],
  allowsExpunge: true,
  run: (ctx, r) => transfer(ctx, r, true, true),
};
