/**
 * The per-message summary computed once at APPEND time, so that FETCH never re-parses a stored
 * message for ENVELOPE, BODYSTRUCTURE, sections or PREVIEW. Search text is not part of it: the
 * store keeps that once, apart (protocol/imap/search_index.ts).
 */
import { bodyStructure } from "./bodystructure.ts";
import { envelope } from "./envelope.ts";
import { headerValue, type MimePart, parseMessage } from "./parse.ts";
import { decodeTree, encodeTree } from "./_tree_codec.ts";
import { preview } from "./preview.ts";
import { parseDate, type SentDate } from "./search_text.ts";

/**
 * What the store keeps next to each message: everything FETCH needs without re-parsing the
 * raw bytes. Version 2 summaries (written before version 3) also carry the search text.
 */
export interface MessageSummary {
  readonly version: 2 | 3;
  readonly envelope: string;
  /** BODY (non-extensible) structure. */
  readonly body: string;
  /** BODYSTRUCTURE (with extension data). */
  readonly bodyStructure: string;
  /**
   * The part tree with offsets, for BODY[section] and BINARY[section]. Header fields keep their
   * names and offsets but not their values (use `envelope` instead).
   */
  readonly tree: MimePart;
  readonly sentDate: SentDate | null;
  /** Version 2 only: decoded, folded top-level header values by lower-cased name. */
  readonly headers?: Record<string, string[]>;
  /** Version 2 only: decoded, folded body text (capped at MAX_SEARCH_TEXT). */
  readonly text?: string;
  /** PREVIEW text (RFC 8970); absent from summaries written before it was kept. */
  readonly preview?: string;
}

/** Parses a message once and returns its summary as JSON (for `AppendInput.summary`). */
export function summarize(raw: Uint8Array, tree: MimePart = parseMessage(raw)): string {
  return JSON.stringify({
    version: 3,
    envelope: envelope(tree),
    body: bodyStructure(tree, false),
    bodyStructure: bodyStructure(tree, true),
    tree: encodeTree(tree),
    sentDate: parseDate(headerValue(tree, "date")),
    preview: preview(raw, tree),
  });
}

/** Reads a summary written by `summarize()`; null when it is missing, corrupt or outdated. */
export function fromSummary(json: string): MessageSummary | null {
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch {
    return null;
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) return null;
  const s = v as Record<string, unknown>;
  if (
    (s.version !== 2 && s.version !== 3) || typeof s.envelope !== "string" ||
    typeof s.body !== "string" || typeof s.bodyStructure !== "string"
  ) return null;
  const tree = decodeTree(s.tree);
  if (tree === null) return null;
  const d = s.sentDate;
  let sentDate: SentDate | null = null;
  if (d !== null && d !== undefined) {
    const o = d as Record<string, unknown>;
    if (typeof o.time !== "number" || typeof o.day !== "string") return null;
    sentDate = { time: o.time, day: o.day };
  }
  const base = {
    envelope: s.envelope,
    body: s.body,
    bodyStructure: s.bodyStructure,
    tree,
    sentDate,
    ...(typeof s.preview === "string" ? { preview: s.preview } : {}),
  };
  if (s.version === 3) return { version: 3, ...base };
  if (
    typeof s.text !== "string" || typeof s.headers !== "object" || s.headers === null ||
    Array.isArray(s.headers)
  ) return null;
  const headers: Record<string, string[]> = {};
  for (const [k, list] of Object.entries(s.headers)) {
    if (!Array.isArray(list) || !list.every((x) => typeof x === "string")) return null;
    headers[k] = list;
  }
  return { version: 2, ...base, headers, text: s.text };
}
