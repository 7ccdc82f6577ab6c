/**
 * The default `MimeSupport`: ENVELOPE, BODYSTRUCTURE, numeric sections, BINARY and decoded
 * search text from `protocol/imap/mime/`. Structure comes from the summary stored at APPEND
 * when there is one, so a FETCH of ENVELOPE or BODYSTRUCTURE never re-parses the message; a
 * message without a (current) summary is parsed from its octets.
 */
import {
  bodyStructure,
  envelope,
  extractBinary,
  extractSection,
  fromSummary,
  type MessageSummary,
  type MimePart,
  parseMessage,
  preview,
  type SearchText,
  searchText,
  summarize,
} from "./mime/mod.ts";
import { headerValue } from "./mime/mod.ts";
import { parseDate } from "./mime/mod.ts";
import type { MessageData, MimeSupport, SearchData, SectionSpec } from "./fetch_items.ts";
import { writeSearchIndex } from "./search_index.ts";
import { sortTextOf } from "./sort_text.ts";
import { threadIdOf } from "../../mailstore/object_id.ts";

/** Messages at least this large are derived off the event loop when the driver offers it. */
export const OFF_THREAD_DERIVE_BYTES = 1024 * 1024;

/** How many decoded summaries a MIME support instance keeps. */
const SUMMARY_CACHE = 16;

/** The first `<msg-id>` of a folded header value, without its brackets and spaces. */
function firstMessageId(value: string | undefined): string | null {
  const m = value === undefined ? null : /<([^<>]+)>/.exec(value);
  return m === null ? null : m[1]!.replace(/ /g, "");
}

/**
 * The Message-ID of the first message of the thread this one belongs to: the first entry of
 * References (RFC 5322, Section 3.6.4, lists the thread from its root), else the message it
 * answers (In-Reply-To), else its own Message-ID; null when it has none of them.
 */
export function threadRoot(data: SearchData): string | null {
  return firstMessageId(data.header("references")[0]) ??
    firstMessageId(data.header("in-reply-to")[0]) ??
    firstMessageId(data.header("message-id")[0]);
}

/** What `derivedData` gives: the derived fields of an `AppendInput`. */
export interface DerivedData {
  readonly summary?: string;
  readonly searchText?: string;
  readonly sortText?: string;
  readonly threadId?: string;
}

/**
 * Runs `derivedData` with a default `createMimeSupport()` somewhere other than the caller's
 * thread (server/serve/derive_worker.ts): `raw`, a view of a whole ArrayBuffer, goes there by
 * transfer and comes back with the result, so the caller's view is detached and it must use
 * the one given back. Null when the bytes never left; `derived` null when they came back
 * without it: the caller then derives on its own thread. Rejects if the bytes were lost.
 */
export type DeriveOffThread = (
  raw: Uint8Array,
) => Promise<{ readonly raw: Uint8Array; readonly derived: DerivedData | null } | null>;

/**
 * What a store keeps next to a new message so that FETCH and SEARCH never re-parse it: the
 * summary, the search text and the THREADID (RFC 8474, Section 5.2), computed once here for
 * APPEND, delivery and the importer alike.
 */
export function derivedData(mime: MimeSupport, raw: Uint8Array): DerivedData {
  const summary = mime.summarize?.(raw);
  // The search text and thread root come from the octets (parsed once, above): handing them
  // the new summary would only decode its JSON again.
  const m = { raw, summary: null };
  const searchText = mime.searchIndex?.(m) ?? undefined;
  const sortText = searchText === undefined ? undefined : sortTextOf(searchText);
  const data = mime.searchData?.(m) ?? null;
  const root = data === null ? null : threadRoot(data);
  return {
    ...(summary !== undefined ? { summary } : {}),
    ...(searchText !== undefined ? { searchText } : {}),
    ...(sortText !== undefined ? { sortText } : {}),
    ...(root !== null ? { threadId: threadIdOf(root) } : {}),
  };
}

/**
 * MIME support backed by `protocol/imap/mime/`, with caches of its own: a session creates one,
 * so that what one session parsed is never handed to another. The caches are small: FETCH asks
 * for several items of the same message in a row.
 */
export function createMimeSupport(): MimeSupport {
  /** Parsed trees of recently seen octets. */
  const trees = new WeakMap<Uint8Array, MimePart>();
  /** The last few decoded summaries, by their JSON text. */
  const summaries = new Map<string, MessageSummary | null>();

  function summaryOf(m: MessageData): MessageSummary | null {
    if (m.summary === null) return null;
    let s = summaries.get(m.summary);
    if (s === undefined) {
      s = fromSummary(m.summary);
      summaries.set(m.summary, s);
      if (summaries.size > SUMMARY_CACHE) {
        const oldest = summaries.keys().next().value;
        if (oldest !== undefined) summaries.delete(oldest);
      }
    }
    return s;
  }

  function treeOf(m: MessageData): MimePart | null {
    if (m.raw !== null) {
      let tree = trees.get(m.raw);
      if (tree === undefined) {
        tree = summaryOf(m)?.tree ?? parseMessage(m.raw);
        trees.set(m.raw, tree);
      }
      return tree;
    }
    return summaryOf(m)?.tree ?? null;
  }

  /**
   * Full parses of recently seen octets: a summary's tree has no header values, and search
   * text needs them. APPEND asks for the summary, the index and the thread root in a row.
   */
  const parsed = new WeakMap<Uint8Array, MimePart>();
  const texts = new WeakMap<Uint8Array, SearchText>();

  function parsedTree(raw: Uint8Array): MimePart {
    let tree = parsed.get(raw);
    if (tree === undefined) {
      tree = parseMessage(raw);
      parsed.set(raw, tree);
    }
    return tree;
  }

  /**
   * The message's search text, with its sent day: from a version 2 summary when it holds one,
   * else from the octets (a version 3 summary keeps none; the store holds it apart).
   */
  function textOf(m: MessageData): { text: SearchText; sentDay: string | null } | null {
    const s = summaryOf(m);
    if (s?.headers !== undefined && s.text !== undefined) {
      return {
        text: { headers: new Map(Object.entries(s.headers)), body: s.text },
        sentDay: s.sentDate?.day ?? null,
      };
    }
    if (m.raw === null) return null;
    const tree = parsedTree(m.raw);
    let text = texts.get(m.raw);
    if (text === undefined) {
      text = searchText(m.raw, tree);
      texts.set(m.raw, text);
    }
    const sentDay = (s?.sentDate ?? parseDate(headerValue(tree, "date")))?.day ?? null;
    return { text, sentDay };
  }

  function searchDataOf(m: MessageData): SearchData | null {
    const found = textOf(m);
    if (found === null) return null;
    const { text, sentDay } = found;
    return { header: (name) => text.headers.get(name) ?? [], body: text.body, sentDay };
  }

  function searchIndexOf(m: MessageData): string | null {
    const found = textOf(m);
    if (found === null) return null;
    return writeSearchIndex({
      sentDay: found.sentDay,
      headers: found.text.headers,
      body: found.text.body,
    });
  }

  return {
    summarize: (raw) => summarize(raw, parsedTree(raw)),
    envelope(m) {
      const s = summaryOf(m);
      if (s !== null) return s.envelope;
      const tree = treeOf(m);
      return tree === null ? null : envelope(tree);
    },
    bodyStructure(m, extensible) {
      const s = summaryOf(m);
      if (s !== null) return extensible ? s.bodyStructure : s.body;
      const tree = treeOf(m);
      return tree === null ? null : bodyStructure(tree, extensible);
    },
    section(m, spec: SectionSpec) {
      const tree = treeOf(m);
      if (m.raw === null || tree === null) return null;
      return extractSection(m.raw, tree, spec);
    },
    binary(m, path) {
      const tree = treeOf(m);
      if (m.raw === null || tree === null) return null;
      return extractBinary(m.raw, tree, path);
    },
    searchData: searchDataOf,
    preview(m) {
      const s = summaryOf(m);
      if (s?.preview !== undefined) return s.preview;
      const tree = treeOf(m);
      return m.raw === null || tree === null ? null : preview(m.raw, tree);
    },
    searchIndex: searchIndexOf,
  };
}

/** A shared instance for one-shot work (LMTP delivery, import): summaries of new messages. */
export const mimeSupport: MimeSupport = createMimeSupport();
