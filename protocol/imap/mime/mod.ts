/**
 * MIME message structure for IMAP: parsing (RFC 5322, RFC 2045–2049), ENVELOPE and BODYSTRUCTURE
 * (RFC 9051, Section 7.5.2), section extraction (RFC 9051, Section 6.4.5), transfer decoding
 * (RFC 3516) and search text. Pure functions over raw message bytes; nothing here throws.
 */

export {
  countLines,
  type Disposition,
  type HeaderField,
  headerValue,
  headerValues,
  MAX_DEPTH,
  MAX_HEADER_FIELDS,
  MAX_PARTS,
  type MimePart,
  parseMessage,
} from "./parse.ts";
export {
  type Address,
  bytesToText,
  decodeCharset,
  decodeEncodedWords,
  type Group,
  type Mailbox,
  type MimeParam,
  type ParamValue,
  parseAddressList,
  parseParamValue,
  unfold,
} from "./header.ts";
export { envelope } from "./envelope.ts";
export { bodyStructure } from "./bodystructure.ts";
export {
  extractBinary,
  extractSection,
  parseSectionSpec,
  resolvePart,
  type SectionSpec,
  SectionText,
} from "./section.ts";
export {
  decodeBase64,
  decodeQuotedPrintable,
  decodeTransfer,
  type TransferDecodeResult,
} from "./decode.ts";
export {
  foldText,
  MAX_SEARCH_TEXT,
  parseDate,
  type SearchText,
  searchText,
  type SentDate,
} from "./search_text.ts";
export { fromSummary, type MessageSummary, summarize } from "./summary.ts";
export { imapString, nstring } from "./imap_string.ts";
export { MAX_PREVIEW, preview } from "./preview.ts";
