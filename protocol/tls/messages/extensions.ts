/**
 * Extensions (RFC 8446, Section 4.2) and the codecs of the extension bodies this engine reads
 * or writes. Extension lists keep unknown types; duplicates are refused at parse time.
 */
import { TlsAlert } from "../alert.ts";
import { Reader, type Writer } from "../codec.ts";
import { ExtensionType } from "../wire.ts";

export interface Extension {
  readonly type: number;
  readonly data: Uint8Array;
}

/**
 * The extension types of the list being read, one bit each: a Set per message cost more than
 * the lookups it served, and a linear scan would be quadratic in a hostile list of thousands.
 */
const seenTypes = new Uint8Array(65536 / 8);

/**
 * Reads an extension list. A type that appears twice is an `illegal_parameter`
 * (RFC 8446, Section 4.2: "There MUST NOT be more than one extension of the same type").
 */
export function readExtensions(r: Reader, what: string): Extension[] {
  const list = r.sub(2);
  const out: Extension[] = [];
  try {
    while (list.remaining > 0) {
      const type = list.u16();
      const data = list.vec(2);
      const bit = 1 << (type & 7);
      if ((seenTypes[type >> 3]! & bit) !== 0) {
        throw new TlsAlert("illegal_parameter", `Duplicate extension in ${what}`);
      }
      seenTypes[type >> 3]! |= bit;
      out.push({ type, data });
    }
  } finally {
    // Only the bytes of the types read: clearing costs what reading did.
    for (let i = 0; i < out.length; i++) seenTypes[out[i]!.type >> 3] = 0;
  }
  return out;
}

export function writeExtensions(w: Writer, extensions: readonly Extension[]): void {
  w.lengthPrefixed(2, (w) => {
    for (const e of extensions) w.u16(e.type).vec(2, e.data);
  });
}

/** The body of the extension of this type, or undefined. */
export function findExtension(
  extensions: readonly Extension[],
  type: number,
): Uint8Array | undefined {
  for (const e of extensions) if (e.type === type) return e.data;
  return undefined;
}

/** Parses an extension body completely with `read`; trailing bytes are a decode_error. */
export function parseBody<T>(data: Uint8Array, what: string, read: (r: Reader) => T): T {
  const r = new Reader(data, what);
  const v = read(r);
  r.end();
  return v;
}

/** A list of 16-bit code points in a vector with a 1- or 2-byte prefix. */
export function readU16List(r: Reader, prefix: 1 | 2, min = 2): number[] {
  const list = r.sub(prefix, min, 2 ** (8 * prefix) - 2);
  if (list.remaining % 2 !== 0) {
    throw new TlsAlert("decode_error", "Cannot decode list: odd length");
  }
  const out: number[] = [];
  while (list.remaining > 0) out.push(list.u16());
  return out;
}

export function writeU16List(w: Writer, prefix: 1 | 2, values: readonly number[]): void {
  w.lengthPrefixed(prefix, (w) => {
    for (const v of values) w.u16(v);
  });
}

/** supported_versions in a ClientHello (RFC 8446, Section 4.2.1). */
export function readSupportedVersionsClient(r: Reader): number[] {
  return readU16List(r, 1);
}

/** One KeyShareEntry (RFC 8446, Section 4.2.8). */
export interface KeyShareEntry {
  readonly group: number;
  readonly keyExchange: Uint8Array;
}

/**
 * An empty key_exchange parses here (the RFC's floor is 1 byte) so that the server can answer
 * a malformed share of any length with illegal_parameter, as other stacks do.
 */
function readKeyShareEntry(r: Reader): KeyShareEntry {
  return { group: r.u16(), keyExchange: r.vec(2, 0) };
}

function writeKeyShareEntry(w: Writer, e: KeyShareEntry): void {
  w.u16(e.group).vec(2, e.keyExchange);
}

/** KeyShareClientHello (RFC 8446, Section 4.2.8). */
export function readKeyShareClient(r: Reader): KeyShareEntry[] {
  const list = r.sub(2);
  const out: KeyShareEntry[] = [];
  while (list.remaining > 0) out.push(readKeyShareEntry(list));
  return out;
}

export function writeKeyShareClient(w: Writer, entries: readonly KeyShareEntry[]): void {
  w.lengthPrefixed(2, (w) => {
    for (const e of entries) writeKeyShareEntry(w, e);
  });
}

/** KeyShareServerHello (RFC 8446, Section 4.2.8). */
export function readKeyShareServer(r: Reader): KeyShareEntry {
  return readKeyShareEntry(r);
}

export function writeKeyShareServer(w: Writer, e: KeyShareEntry): void {
  writeKeyShareEntry(w, e);
}

/** ServerNameList (RFC 6066, Section 3): the host_name, or null when none is given. */
export function readServerName(r: Reader): Uint8Array | null {
  const list = r.sub(2, 1);
  let host: Uint8Array | null = null;
  while (list.remaining > 0) {
    const nameType = list.u8();
    const name = list.vec(2, 1);
    if (nameType === 0) {
      if (host !== null) throw new TlsAlert("illegal_parameter", "Two host names in server_name");
      host = name;
    }
  }
  return host;
}

export function writeServerName(w: Writer, host: Uint8Array): void {
  w.lengthPrefixed(2, (w) => w.u8(0).vec(2, host));
}

/** ProtocolNameList (RFC 7301, Section 3.1). */
export function readAlpn(r: Reader): Uint8Array[] {
  const list = r.sub(2, 2);
  const out: Uint8Array[] = [];
  while (list.remaining > 0) out.push(list.vec(1, 1));
  return out;
}

export function writeAlpn(w: Writer, protocols: readonly Uint8Array[]): void {
  w.lengthPrefixed(2, (w) => {
    for (const p of protocols) w.vec(1, p);
  });
}

/** Cookie (RFC 8446, Section 4.2.2). */
export function readCookie(r: Reader): Uint8Array {
  return r.vec(2, 1);
}

export function writeCookie(w: Writer, cookie: Uint8Array): void {
  w.vec(2, cookie);
}

/** CertificateAuthoritiesExtension (RFC 8446, Section 4.2.4). */
export function readCertificateAuthorities(r: Reader): Uint8Array[] {
  const list = r.sub(2, 3);
  const out: Uint8Array[] = [];
  while (list.remaining > 0) out.push(list.vec(2, 1));
  return out;
}

export function writeCertificateAuthorities(w: Writer, names: readonly Uint8Array[]): void {
  w.lengthPrefixed(2, (w) => {
    for (const n of names) w.vec(2, n);
  });
}

export { ExtensionType };
