/**
 * FETCH and UID FETCH (RFC 9051, Sections 6.4.5 and 6.4.9). Reading a body without PEEK sets
 * \Seen first and reports the new FLAGS. Messages expunged by another session but not yet
 * reported are skipped, and the command ends with OK [EXPUNGEISSUED].
 */
import { knownNulFree, type MessageMeta, type RawStream } from "../../../mailstore/mail_store.ts";
import type { CommandContext, CommandSpec, Completion } from "../context.ts";
import {
  checkSupported,
  type FetchItem,
  needsObjectInfo,
  needsRaw,
  needsStructure,
  readFetchItems,
  renderFetch,
  setsSeen,
  streamsWholeBody,
} from "../fetch_items.ts";
import { StreamedLiteral, type Value, withoutNul } from "../response.ts";
import type { Pacer } from "../../event_loop.ts";
import { badSyntax, ImapError } from "../errors.ts";
import { formatSequenceSet, MAX_NUMBER, selectFromSorted, starAs } from "../sequence_set.ts";
import type { CommandReader } from "../parser.ts";
import { flagList, formatDateTime, LineBuilder, MAX_DIGITS, Output } from "../response.ts";
import type { MailboxView } from "../mailbox_view.ts";
import { selected } from "./_util.ts";

/** UIDs fetched from the store per round trip: fewer when bodies or summaries are loaded. */
const BATCH = 256;
const META_BATCH = 4096;
/**
 * The first metadata batch is smaller: the first responses reach the client after one short
 * query, and it reads them while the rest are built.
 */
const FIRST_META_BATCH = 256;
/** Bodies at least this large are streamed from a store that keeps them in pieces. */
const STREAM_FROM = 4 * 1024 * 1024;
/** Metadata-only responses rendered between two looks at the clock (a mask: every 256th). */
const PACE_EVERY = 255;

/** Items rendered from the metadata alone, in `meta-only` FETCH (the common `1:* (UID FLAGS)`). */
type MetaItem = "UID" | "FLAGS" | "INTERNALDATE" | "RFC822.SIZE" | "MODSEQ";
const META_ITEMS: ReadonlySet<string> = new Set<MetaItem>([
  "UID",
  "FLAGS",
  "INTERNALDATE",
  "RFC822.SIZE",
  "MODSEQ",
]);

/**
 * The item names a metadata-only FETCH sends, in order and without repeats, as `renderFetch`
 * would (UID first when the command is UID FETCH and does not name it); null when an item
 * needs more than the metadata.
 */
function metaPlan(items: readonly FetchItem[], addUid: boolean): MetaItem[] | null {
  const plan: MetaItem[] = [];
  if (addUid && !items.some((i) => i.kind === "UID")) plan.push("UID");
  for (const item of items) {
    if (!META_ITEMS.has(item.kind)) return null;
    const kind = item.kind as MetaItem;
    if (!plan.includes(kind)) plan.push(kind);
  }
  return plan;
}

const encoder = new TextEncoder();
/** Room for a `date-time` (28 characters; more for dates beyond year 9999). */
const DATE_TIME_LENGTH = 40;

/** Flag lists whose bytes are found by an identity check before the map is asked. */
const FEW_FLAG_SETS = 8;

/** The bytes of `flagList` remembered per flags array (stores share one frozen array per set). */
function flagBytesCache(): (flags: readonly string[]) => Uint8Array {
  const cache = new Map<readonly string[], Uint8Array>();
  // The first few lists, checked by identity: most mailboxes hold only a few combinations.
  const lists: (readonly string[])[] = [];
  const texts: Uint8Array[] = [];
  return (flags) => {
    for (let i = 0; i < lists.length; i++) if (lists[i] === flags) return texts[i]!;
    let bytes = cache.get(flags);
    if (bytes === undefined) {
      bytes = encoder.encode(flagList(flags));
      if (lists.length < FEW_FLAG_SETS) {
        lists.push(flags);
        texts.push(bytes);
      } else if (cache.size < 1024) cache.set(flags, bytes);
    }
    return bytes;
  };
}

/** Writes one metadata-only FETCH response, `* seq FETCH (UID 7 FLAGS (\\Seen))` and CRLF. */
function renderMeta(
  w: LineBuilder,
  plan: readonly MetaItem[],
  seq: number,
  meta: MessageMeta,
  flags: Uint8Array,
): void {
  // "* " seq " FETCH (" and ")\r\n", and per item its name, a space, its value and a space.
  w.reserve(16 + MAX_DIGITS + plan.length * (16 + MAX_DIGITS) + flags.length + DATE_TIME_LENGTH);
  w.ascii("* ");
  w.number(seq);
  w.ascii(" FETCH (");
  for (let i = 0; i < plan.length; i++) {
    if (i > 0) w.ascii(" ");
    switch (plan[i]!) {
      case "UID":
        w.ascii("UID ");
        w.number(meta.uid);
        break;
      case "FLAGS":
        w.ascii("FLAGS ");
        w.bytes(flags);
        break;
      case "INTERNALDATE":
        w.ascii("INTERNALDATE ");
        w.ascii(formatDateTime(meta.internalDate));
        break;
      case "RFC822.SIZE":
        w.ascii("RFC822.SIZE ");
        w.number(meta.size);
        break;
      case "MODSEQ":
        w.ascii("MODSEQ (");
        w.number(meta.modseq);
        w.ascii(")");
        break;
    }
  }
  w.ascii(")\r\n");
}

/**
 * FETCH of metadata items only (the common `1:* (UID FLAGS)`): the requested UIDs, the store's
 * answer and the view are all in ascending UID order, so one walk of the three finds each
 * message and its sequence number without a map. The responses are written as bytes, a chunk
 * at a time. Returns true when some were expunged.
 */
async function fetchMetaOnly(
  ctx: CommandContext,
  view: MailboxView,
  uids: readonly number[],
  plan: readonly MetaItem[],
  since: number | null,
  reportsFlags: boolean,
): Promise<boolean> {
  const flagBytes = flagBytesCache();
  const viewUids = view.uids;
  const pacer = ctx.pacer();
  const w = new LineBuilder(ctx.out);
  const empty = new Uint8Array(0);
  let missing = false;
  let vi = 0;
  for (let i = 0, size = FIRST_META_BATCH; i < uids.length; i += size, size = META_BATCH) {
    const batch = uids.slice(i, i + size);
    const metas = await ctx.store.getMessages(view.mailboxId, batch);
    // New keywords of the whole batch go out in one FLAGS response before its FETCHes.
    if (reportsFlags) {
      const announced = new Output();
      view.announceAll(metas.map((m) => m.flags), announced);
      if (announced.size > 0) {
        w.flush();
        ctx.out.bytes(announced.take());
      }
    }
    let mi = 0;
    for (let k = 0; k < batch.length; k++) {
      const uid = batch[k]!;
      while (mi < metas.length && metas[mi]!.uid < uid) mi++;
      const stored = metas[mi];
      while (vi < viewUids.length && viewUids[vi]! < uid) vi++;
      const seq = viewUids[vi] === uid ? vi + 1 : view.seqOf(uid);
      if (stored === undefined || stored.uid !== uid || seq === 0) {
        missing = true;
        continue;
      }
      if (since !== null && stored.modseq <= since) continue;
      // \\Recent is per session: shown in FETCH FLAGS, never stored (RFC 3501, 2.3.2).
      const flags = reportsFlags ? flagBytes(view.shownFlags(uid, stored.flags)) : empty;
      renderMeta(w, plan, seq, stored, flags);
      if (reportsFlags) view.noteFlagsAt(seq, stored.flags);
      view.noteModseq(stored.modseq);
      if (ctx.flushDue(w.pending)) {
        w.flush();
        await ctx.maybeFlush();
      }
      if ((k & PACE_EVERY) === PACE_EVERY && pacer.due()) await pacer.yield();
    }
  }
  w.flush();
  return missing;
}

function hasSeen(m: MessageMeta): boolean {
  return m.flags.some((f) => f.toLowerCase() === "\\seen");
}

async function fetch(ctx: CommandContext, r: CommandReader, uidMode: boolean): Promise<Completion> {
  r.sp();
  const set = r.sequenceSet();
  r.sp();
  const items: FetchItem[] = readFetchItems(r);
  let changedSince: number | null = null;
  let vanished = false;
  if (r.trySp()) {
    // fetch-modifiers (RFC 7162, Sections 3.1.4.1 and 3.2.6).
    r.list(() => {
      const name = r.keyword("FETCH modifier");
      if (name === "CHANGEDSINCE") {
        r.sp();
        changedSince = r.number64("mod-sequence");
      } else if (name === "VANISHED" && uidMode && ctx.qresync) {
        vanished = true;
      } else throw badSyntax(`Unknown FETCH modifier ${name}`);
      return name;
    }, false);
  }
  r.end();
  if (vanished && changedSince === null) throw badSyntax("VANISHED needs CHANGEDSINCE");
  if (changedSince !== null && !items.some((i) => i.kind === "MODSEQ")) {
    items.push({ kind: "MODSEQ" });
  }
  if (items.some((i) => i.kind === "MODSEQ")) await ctx.enableCondstore();
  const since: number | null = changedSince;
  checkSupported(items, ctx.mime);
  const { view } = selected(ctx);
  const uids = view.resolve(set, uidMode, ctx.savedSearch);
  if (vanished && since !== null && set.kind === "ranges") {
    const gone = (await ctx.store.changesSince(view.mailboxId, since)).vanished;
    // As at SELECT: a message the view still holds is in the client's EXISTS count, and
    // VANISHED (EARLIER) does not renumber (RFC 7162, Section 3.2.10); its expunge waits in
    // the view's queue and goes out as VANISHED at the next sync.
    const named = selectFromSorted(
      starAs(set.ranges, MAX_NUMBER),
      gone.filter((u) => view.seqOf(u) === 0).sort((a, b) => a - b),
    );
    if (named.length > 0) ctx.out.line(`* VANISHED (EARLIER) ${formatSequenceSet(named)}`);
  }
  const markSeen = setsSeen(items) && !view.readOnly;
  const loadRaw = needsRaw(items);
  const loadSummary = needsStructure(items);
  const loadObjects = needsObjectInfo(items);
  // PREVIEW without LAZY is computed from the octets when the summary predates it.
  const eagerPreview = items.some((i) => i.kind === "PREVIEW" && !i.lazy);
  const reportsFlags = items.some((i) => i.kind === "FLAGS");
  const streamable = ctx.store.openRaw !== undefined && streamsWholeBody(items) && !eagerPreview;
  let missing = false;
  const plan = markSeen || loadRaw || loadSummary || loadObjects ? null : metaPlan(items, uidMode);
  const name = uidMode ? "UID FETCH" : "FETCH";
  if (plan !== null) {
    missing = await fetchMetaOnly(ctx, view, uids, plan, since, reportsFlags);
    return missing
      ? { code: "EXPUNGEISSUED", text: `${name} completed; some messages were expunged` }
      : { text: `${name} completed` };
  }
  const viewUids = view.uids;
  // `uids` and the view are in ascending UID order: find sequence numbers by walking both.
  let vi = 0;
  const pacer = ctx.pacer();
  for (let i = 0; i < uids.length; i += BATCH) {
    const batch = uids.slice(i, i + BATCH);
    const metas = new Map(
      (await ctx.store.getMessages(view.mailboxId, batch)).map((m) => [m.uid, m]),
    );
    const objects = loadObjects ? await ctx.store.getObjectInfo(view.mailboxId, batch) : null;
    const nowSeen = new Set<number>();
    if (markSeen) {
      const unseen = [...metas.values()].filter((m) => !hasSeen(m)).map((m) => m.uid);
      if (unseen.length > 0) {
        const result = await ctx.store.storeFlags(view.mailboxId, unseen, "add", ["\\Seen"]);
        for (const m of result.updated) {
          metas.set(m.uid, m);
          nowSeen.add(m.uid);
        }
      }
    }
    // New keywords of the whole batch go out in one FLAGS response before its FETCHes.
    if (reportsFlags || nowSeen.size > 0) {
      view.announceAll([...metas.values()].map((m) => m.flags), ctx.out);
    }
    for (const uid of batch) {
      const stored = metas.get(uid);
      while (vi < viewUids.length && viewUids[vi]! < uid) vi++;
      const seq = viewUids[vi] === uid ? vi + 1 : view.seqOf(uid);
      if (stored === undefined || seq === 0) {
        missing = true;
        continue;
      }
      // \\Recent is per session: shown in FETCH FLAGS, never stored (RFC 3501, 2.3.2).
      const meta = view.isRecent(uid)
        ? { ...stored, flags: view.shownFlags(uid, stored.flags) }
        : stored;
      if (since !== null && meta.modseq <= since) continue;
      const summary = loadSummary ? await ctx.store.getSummary(view.mailboxId, uid) : null;
      // A large body sent whole is streamed when the store keeps it in pieces: its first
      // pieces leave while the rest are read.
      const stream = streamable && stored.size >= STREAM_FROM
        ? await ctx.store.openRaw!(view.mailboxId, uid)
        : undefined;
      const first = stream ? await stream.next() : null;
      if (stream === null || (stream && first === null)) {
        missing = true;
        continue;
      }
      // Without a stored summary the structure is parsed from the octets.
      const raw = stream === undefined && (loadRaw || (loadSummary && summary === null) ||
          (eagerPreview && ctx.mime.preview!({ raw: null, summary }) === null))
        ? await ctx.store.getRaw(view.mailboxId, uid)
        : null;
      const value = renderFetch(items, {
        seq,
        meta,
        raw,
        summary,
        objects: objects?.get(uid) ?? null,
        mime: ctx.mime,
        // The FLAGS a body fetch implies are unsolicited, and carry UID in IMAP4rev2
        // (RFC 9051, Section 7.5.2).
        addUid: uidMode || (ctx.rev2 && nowSeen.has(uid)),
        addFlags: nowSeen.has(uid),
        addModseq: ctx.condstore,
        rawNulFree: raw !== null && knownNulFree(raw),
        rawStream: stream ? new StreamedLiteral(stream.size) : undefined,
      });
      if (value === null) {
        missing = true;
        continue;
      }
      if (stream) await sendStreamed(ctx, value, stream, first!, pacer);
      else ctx.out.value(value);
      if (reportsFlags || nowSeen.has(uid)) view.noteFlags(uid, stored.flags);
      view.noteModseq(stored.modseq);
      if (ctx.flushDue()) await ctx.maybeFlush();
      if (pacer.due()) await pacer.yield();
    }
  }
  return missing
    ? { code: "EXPUNGEISSUED", text: `${name} completed; some messages were expunged` }
    : { text: `${name} completed` };
}

/**
 * Writes `value`, whose `StreamedLiteral` is the message `stream` reads: each piece goes to the
 * output and on to the client before the next is taken (`maybeFlush` waits for the driver), so
 * a 50 MB body is never held whole. A read that fails once the literal has begun cannot be
 * answered in the protocol: the connection is closed after the command.
 */
async function sendStreamed(
  ctx: CommandContext,
  value: Value,
  stream: RawStream,
  first: Uint8Array,
  pacer: Pacer,
): Promise<void> {
  if (value instanceof StreamedLiteral) {
    ctx.out.text(`{${stream.size}}\r\n`);
    let sent = 0;
    for (
      let piece: Uint8Array | null = first;
      piece !== null;
      piece = await nextPiece(ctx, stream)
    ) {
      if (sent + piece.length > stream.size) break;
      sent += piece.length;
      ctx.out.bytes(stream.nulFree ? piece : withoutNul(piece));
      await ctx.maybeFlush();
      // Pieces already read and a socket that keeps up settle at once: without this, the
      // whole body would be sealed and written in one turn of the event loop.
      if (pacer.due()) await pacer.yield();
    }
    if (sent !== stream.size) {
      ctx.requestClose();
      throw new ImapError("NO", "Message read failed", "SERVERBUG");
    }
    return;
  }
  if (Array.isArray(value)) {
    for (const piece of value) await sendStreamed(ctx, piece, stream, first, pacer);
    return;
  }
  ctx.out.value(value);
}

/** The stream's next piece; null, logged, when the store cannot read on. */
async function nextPiece(ctx: CommandContext, stream: RawStream): Promise<Uint8Array | null> {
  try {
    return await stream.next();
  } catch (error) {
    ctx.warn("FETCH could not read the rest of a message", { error: String(error) });
    return null;
  }
}

export const fetchCommand: CommandSpec = {
  name: "FETCH",
  states: ["selected"],
  allowsExpunge: false,
  run: (ctx, r) => fetch(ctx, r, false),
};

/** UID FETCH may report expunges (RFC 9051, Section 7.5.1 excludes only the non-UID forms). */
export const uidFetchCommand: CommandSpec = {
  name: "UID FETCH",
  states: ["selected"],
  allowsExpunge: true,
  run: (ctx, r) => fetch(ctx, r, true),
};
