/**
 * The sort text: the part of a message's search text (see `search_index.ts`) that SORT and
 * THREAD (RFC 5256) read, in the same layout with no body. Stored apart at APPEND
 * (`AppendInput.sortText`), it lets a first SORT of a large mailbox read a few hundred bytes
 * per message instead of its whole search text.
 */
import { addressKey } from "./fetch_items.ts";
import { SearchIndex, writeSearchIndex } from "./search_index.ts";

/** The header fields the sort keys are derived from (`commands/_sort_data.ts`). */
export const SORT_FIELDS: readonly string[] = [
  "subject",
  "date",
  addressKey("from"),
  addressKey("to"),
  addressKey("cc"),
  "message-id",
  "references",
  "in-reply-to",
];

/** The sort text of a search text; undefined when `searchText` is not one. */
export function sortTextOf(searchText: string): string | undefined {
  const index = SearchIndex.read(searchText);
  if (index === null) return undefined;
  const headers: [string, readonly string[]][] = [];
  for (const name of SORT_FIELDS) {
    const values = index.header(name);
    if (values.length > 0) headers.push([name, values]);
  }
  return writeSearchIndex({ sentDay: index.sentDay, headers, body: "" });
}
