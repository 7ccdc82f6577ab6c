/**
 * The CAPABILITY list (RFC 9051, Section 7.2.2), which depends on the connection: STARTTLS and
 * LOGINDISABLED only before TLS, AUTH=PLAIN only once encrypted, AUTH=EXTERNAL only with a
 * verified client certificate.
 */

/** What the capability list depends on. */
export interface CapabilityInputs {
  readonly tls: boolean;
  readonly starttlsAvailable: boolean;
  readonly hasIdentity: boolean;
  readonly authenticated: boolean;
  /** BINARY fetch items are available (MIME support present). */
  readonly binary: boolean;
  /** PREVIEW fetch items are available (RFC 8970). */
  readonly preview?: boolean;
  /** A quota source is configured: QUOTA with both resources (RFC 9208, Section 3.1). */
  readonly quota?: boolean;
  /** COMPRESS=DEFLATE can start now (RFC 4978): offered by the driver, not yet active. */
  readonly compress?: boolean;
  /** Largest message APPEND accepts, advertised as APPENDLIMIT (RFC 7889, Section 3). */
  readonly appendLimit: number;
}

/** Extensions advertised in every state. */
const BASE = [
  "IMAP4rev1",
  "IMAP4rev2",
  "LITERAL+",
  "SASL-IR",
  "ENABLE",
  "ID",
  "IDLE",
  "NAMESPACE",
  "UIDPLUS",
  "MOVE",
  "UNSELECT",
  "CHILDREN",
  "SPECIAL-USE",
  "CONDSTORE",
  "QRESYNC",
  "ESEARCH",
  "SEARCHRES",
  "LIST-EXTENDED",
  "LIST-STATUS",
  "STATUS=SIZE",
  "CREATE-SPECIAL-USE",
  "SORT",
  "SORT=DISPLAY",
  "ESORT",
  "CONTEXT=SEARCH",
  "CONTEXT=SORT",
  "THREAD=ORDEREDSUBJECT",
  "THREAD=REFERENCES",
  "MULTIAPPEND",
  "UTF8=ACCEPT",
  "OBJECTID",
  "SAVEDATE",
] as const;

/** Extensions ENABLE accepts (RFC 5161; RFC 7162, Section 3.1). */
export const ENABLEABLE: ReadonlySet<string> = new Set([
  "IMAP4REV2",
  "UTF8=ACCEPT",
  "CONDSTORE",
  "QRESYNC",
]);

/** Returns the capability atoms for the current connection state. */
export function capabilities(c: CapabilityInputs): string[] {
  const caps: string[] = [...BASE];
  if (c.binary) caps.push("BINARY");
  if (c.preview === true) caps.push("PREVIEW");
  if (c.quota === true) caps.push("QUOTA", "QUOTA=RES-STORAGE", "QUOTA=RES-MESSAGE");
  if (c.compress === true && c.authenticated) caps.push("COMPRESS=DEFLATE");
  caps.push(`APPENDLIMIT=${c.appendLimit}`);
  if (!c.authenticated) {
    if (!c.tls && c.starttlsAvailable) caps.push("STARTTLS");
    if (!c.tls) caps.push("LOGINDISABLED");
    if (c.tls) caps.push("AUTH=PLAIN");
    if (c.hasIdentity) caps.push("AUTH=EXTERNAL");
  }
  return caps;
}
