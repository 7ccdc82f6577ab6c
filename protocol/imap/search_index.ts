/**
 * The compact search text stored with each message (`AppendInput.searchText`), built once at
 * APPEND from the summary, so that SEARCH (RFC 9051, Section 6.4.4) reads it in batches and
 * decodes it without JSON or a MIME tree.
 *
 * Layout, one string: `"1" US sent-day US *(name US value US) RS body` (US is U+001F, RS U+001E), where sent-day is
 * `YYYY-MM-DD` or empty, names are lower-cased header field names and values and body are
 * already folded (see `fold`). US, RS and NUL inside names and values become spaces (SQLite
 * text stops at NUL); the body follows the first RS and keeps anything but NUL.
 */
import type { SearchData } from "./fetch_items.ts";

const US = "\x1f";
const RS = "\x1e";
const VERSION = "1";
// deno-lint-ignore no-control-regex -- US and RS separate fields; NUL cuts SQLite text
const CONTROL = /[\x00\x1e\x1f]/g;

/** What the search text is built from. */
export interface SearchIndexInput {
  readonly sentDay: string | null;
  readonly headers: Iterable<readonly [string, readonly string[]]>;
  readonly body: string;
}

/** Encodes the search text of one message. */
export function writeSearchIndex(input: SearchIndexInput): string {
  const parts: string[] = [VERSION, US, input.sentDay?.replace(CONTROL, " ") ?? "", US];
  for (const [name, values] of input.headers) {
    const n = name.replace(CONTROL, " ");
    for (const v of values) parts.push(n, US, v.replace(CONTROL, " "), US);
  }
  parts.push(RS, input.body.replaceAll("\x00", " "));
  return parts.join("");
}

/**
 * The decoded search text of one message. Header fields are split only when a header key
 * reaches a message whose text contains the needle at all.
 */
export class SearchIndex implements SearchData {
  readonly #text: string;
  readonly #bodyStart: number;
  readonly sentDay: string | null;
  #headers: Map<string, string[]> | null = null;

  private constructor(text: string, sentDay: string | null, bodyStart: number) {
    this.#text = text;
    this.sentDay = sentDay;
    this.#bodyStart = bodyStart;
  }

  /** Reads a search text written by `writeSearchIndex`; null when it is not one. */
  static read(text: string): SearchIndex | null {
    if (text.length < 3 || text[0] !== VERSION || text[1] !== US) return null;
    const dayEnd = text.indexOf(US, 2);
    const rs = text.indexOf(RS, 2);
    if (dayEnd < 0 || rs < 0 || dayEnd > rs) return null;
    const day = text.slice(2, dayEnd);
    return new SearchIndex(text, day === "" ? null : day, rs + 1);
  }

  /** The folded body text. */
  get body(): string {
    return this.#text.slice(this.#bodyStart);
  }

  /** False only when no header value and no body text can contain `folded`. */
  mayContain(folded: string): boolean {
    return this.#text.includes(folded);
  }

  header(name: string): readonly string[] {
    if (this.#headers === null) {
      const headers = new Map<string, string[]>();
      const dayEnd = this.#text.indexOf(US, 2);
      let i = dayEnd + 1;
      const end = this.#bodyStart - 1;
      while (i < end) {
        const a = this.#text.indexOf(US, i);
        if (a < 0 || a >= end) break;
        const b = this.#text.indexOf(US, a + 1);
        if (b < 0 || b > end) break;
        const key = this.#text.slice(i, a);
        const value = this.#text.slice(a + 1, b);
        const list = headers.get(key);
        if (list === undefined) headers.set(key, [value]);
        else list.push(value);
        i = b + 1;
      }
      this.#headers = headers;
    }
    return this.#headers.get(name) ?? [];
  }
}
