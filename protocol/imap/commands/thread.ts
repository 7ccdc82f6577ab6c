/**
 * THREAD and UID THREAD (RFC 5256, Sections 3 and 4) with the ORDEREDSUBJECT and REFERENCES
 * algorithms, over the messages a search matches.
 */
import type { CommandContext, CommandSpec, Completion } from "../context.ts";
import { badSyntax } from "../errors.ts";
import type { CommandReader } from "../parser.ts";
import {
  formatThreads,
  type ThreadMessage,
  type ThreadNode,
  threadOrderedSubject,
  threadReferences,
} from "../thread.ts";
import { deriveKeys, hasKeys, loadSortRecords } from "./_sort_data.ts";
import { keepResult, keptResult } from "../sort_cache.ts";
import { selected } from "./_util.ts";
import { readCharset, readSearchProgram } from "./search.ts";
import { subjectRanks } from "./sort.ts";

/** The algorithms advertised as THREAD=<name>; ORDEREDSUBJECT may borrow SORT's subject ranks. */
export const THREAD_ALGORITHMS: ReadonlyMap<
  string,
  (messages: readonly ThreadMessage[], ranks?: ReadonlyMap<string, number>) => ThreadNode[]
> = new Map([
  ["ORDEREDSUBJECT", threadOrderedSubject],
  ["REFERENCES", (messages) => threadReferences(messages)],
]);

const NO_REFERENCES: readonly string[] = Object.freeze([]);

async function thread(
  ctx: CommandContext,
  r: CommandReader,
  uidMode: boolean,
): Promise<Completion> {
  r.sp();
  const name = r.keyword("threading algorithm");
  const algorithm = THREAD_ALGORITHMS.get(name);
  if (algorithm === undefined) throw badSyntax(`Unknown threading algorithm ${name.slice(0, 40)}`);
  r.sp();
  readCharset(r);
  r.sp();
  const key = readSearchProgram(r);
  const { view } = selected(ctx);
  const cache = ctx.sortKeys.mailbox(view.mailboxId, view.uidValidity, view.uids.length);
  // A whole mailbox's threads are kept until its set of messages changes (see `keptResult`).
  const keptName = `THREAD ${name} ${uidMode ? "UID" : "SEQ"}`;
  let list = key.kind === "all" ? keptResult<string>(cache, view.uids, keptName) : undefined;
  if (list === undefined) {
    const records = await loadSortRecords(ctx, key);
    // ORDEREDSUBJECT reads no message ids: they need not be derived.
    const ids = name === "REFERENCES";
    await deriveKeys(
      records.map((x) => x.keys),
      ids ? ["date", "subjectKey", "messageId"] : ["date", "subjectKey"],
      ctx.pacer(),
    );
    const messages: ThreadMessage[] = records.map(({ seq, uid, keys }) => ({
      seq,
      n: uidMode ? uid : seq,
      date: keys.date,
      subject: keys.subject,
      subjectKey: keys.subjectKey,
      messageId: ids ? keys.messageId : null,
      references: ids ? keys.references : NO_REFERENCES,
    }));
    const keys = ctx.sortKeys.mailbox(view.mailboxId, view.uidValidity, view.uids.length);
    const ranks = name === "ORDEREDSUBJECT"
      ? await subjectRanks(keys, messages.length, ctx.pacer())
      : undefined;
    list = formatThreads(algorithm(messages, ranks));
    if (key.kind === "all" && records.every(hasKeys)) {
      keepResult(keys, records.map((x) => x.uid), keptName, list);
    }
  }
  ctx.out.line(list === "" ? "* THREAD" : `* THREAD ${list}`);
  return { text: `${uidMode ? "UID THREAD" : "THREAD"} completed` };
}

export const threadCommand: CommandSpec = {
  name: "THREAD",
  states: ["selected"],
  allowsExpunge: false,
  run: (ctx, r) => thread(ctx, r, false),
};

export const uidThreadCommand: CommandSpec = {
  name: "UID THREAD",
  states: ["selected"],
  allowsExpunge: true,
  run: (ctx, r) => thread(ctx, r, true),
};
