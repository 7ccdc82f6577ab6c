/**
 * A small sans-IO LDAPv3 codec (RFC 4511) for the directory watcher: the requests it sends
 * (bind, StartTLS, search with controls, unbind) and the responses it reads, including the two
 * that ldapts 9 cannot deliver — entries of a search that never ends, each with its own
 * controls, and IntermediateResponse messages (RFC 4511, Section 4.13). On top of it, the
 * controls of LDAP Content Synchronization (RFC 4533) and of the persistent search
 * (draft-ietf-ldapext-psearch-03).
 *
 * LDAP is BER with definite lengths only (RFC 4511, Section 5.1); OpenLDAP's liblber writes
 * non-minimal lengths (`84 00 00 00 1c`), so this reader accepts those and nothing else of BER.
 * Every length is checked against the bytes present and against `MAX_LDAP_MESSAGE`.
 */

/** A malformed or oversized LDAP message. */
export class LdapCodecError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "LdapCodecError";
  }
}

/** Largest LDAP message accepted from the directory. The watcher asks for no attribute values. */
export const MAX_LDAP_MESSAGE = 4 << 20;

/** Protocol operation tags (RFC 4511, Section 4.2 to 4.14). */
export const LdapOp = {
  bindRequest: 0x60,
  bindResponse: 0x61,
  unbindRequest: 0x42,
  searchRequest: 0x63,
  searchResultEntry: 0x64,
  searchResultDone: 0x65,
  searchResultReference: 0x73,
  extendedRequest: 0x77,
  extendedResponse: 0x78,
  intermediateResponse: 0x79,
} as const;

/** Control and message OIDs this codec knows. */
export const LdapOid = {
  startTls: "1.3.6.1.4.1.1466.20037",
  noticeOfDisconnection: "1.3.6.1.4.1.1466.20036",
  syncRequest: "1.3.6.1.4.1.4203.1.9.1.1",
  syncState: "1.3.6.1.4.1.4203.1.9.1.2",
  syncDone: "1.3.6.1.4.1.4203.1.9.1.3",
  syncInfo: "1.3.6.1.4.1.4203.1.9.1.4",
  persistentSearch: "2.16.840.1.113730.3.4.3",
  entryChangeNotification: "2.16.840.1.113730.3.4.7",
} as const;

/** Result codes the watcher tells apart (RFC 4511, Appendix A; RFC 4533, Section 2.6). */
export const LdapResultCode = {
  success: 0,
  sizeLimitExceeded: 4,
  unavailableCriticalExtension: 12,
  insufficientAccessRights: 50,
  unwillingToPerform: 53,
  syncRefreshRequired: 4096,
} as const;

export interface LdapControl {
  readonly oid: string;
  readonly critical: boolean;
  readonly value: Uint8Array | null;
}

export interface LdapResult {
  readonly code: number;
  readonly matchedDn: string;
  readonly message: string;
}

/** One decoded LDAPMessage; unknown operations are kept as `other` and ignored by callers. */
export type LdapMessage =
  | {
    readonly kind: "bindResponse";
    readonly id: number;
    readonly result: LdapResult;
    readonly controls: readonly LdapControl[];
  }
  | {
    readonly kind: "searchResultEntry";
    readonly id: number;
    readonly dn: string;
    readonly attributes: ReadonlyMap<string, readonly Uint8Array[]>;
    readonly controls: readonly LdapControl[];
  }
  | {
    readonly kind: "searchResultDone";
    readonly id: number;
    readonly result: LdapResult;
    readonly controls: readonly LdapControl[];
  }
  | {
    readonly kind: "extendedResponse";
    readonly id: number;
    readonly result: LdapResult;
    readonly name: string | null;
    readonly controls: readonly LdapControl[];
  }
  | {
    readonly kind: "intermediateResponse";
    readonly id: number;
    readonly name: string | null;
    readonly value: Uint8Array | null;
    readonly controls: readonly LdapControl[];
  }
  | { readonly kind: "other"; readonly id: number; readonly op: number };

const utf8 = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();

/** A bounds-checked cursor over BER bytes with definite lengths (RFC 4511, Section 5.1). */
export class BerReader {
  readonly #buf: Uint8Array;
  #pos = 0;

  constructor(bytes: Uint8Array) {
    this.#buf = bytes;
  }

  get done(): boolean {
    return this.#pos >= this.#buf.length;
  }

  peekTag(): number | undefined {
    return this.#buf[this.#pos];
  }

  /** Reads one element: its tag and a view of its contents. */
  read(): { readonly tag: number; readonly value: Uint8Array } {
    const header = readHeader(this.#buf, this.#pos);
    if (header === undefined) throw new LdapCodecError("Truncated BER element");
    const { tag, headerLength, length } = header;
    const start = this.#pos + headerLength;
    if (length > this.#buf.length - start) throw new LdapCodecError("BER length runs past the end");
    this.#pos = start + length;
    return { tag, value: this.#buf.subarray(start, start + length) };
  }

  expect(tag: number, what: string): Uint8Array {
    const got = this.peekTag();
    if (got !== tag) {
      throw new LdapCodecError(
        `Expected ${what} (tag 0x${hex(tag)}), got ${
          got === undefined ? "the end" : `0x${hex(got)}`
        }`,
      );
    }
    return this.read().value;
  }

  optional(tag: number): Uint8Array | undefined {
    return this.peekTag() === tag ? this.read().value : undefined;
  }

  sub(tag: number, what: string): BerReader {
    return new BerReader(this.expect(tag, what));
  }

  integer(tag: number = 0x02, what = "INTEGER"): number {
    const v = this.expect(tag, what);
    if (v.length === 0 || v.length > 6) throw new LdapCodecError(`Bad ${what} length`);
    let n = 0;
    for (const b of v) n = n * 256 + b;
    // Two's complement: a set top bit makes the value negative.
    if ((v[0]! & 0x80) !== 0) n -= 256 ** v.length;
    return n;
  }

  boolean(what = "BOOLEAN"): boolean {
    const v = this.expect(0x01, what);
    if (v.length !== 1) throw new LdapCodecError(`Bad ${what} length`);
    return v[0] !== 0;
  }

  string(tag: number = 0x04, what = "OCTET STRING"): string {
    try {
      return utf8.decode(this.expect(tag, what));
    } catch (e) {
      if (e instanceof LdapCodecError) throw e;
      throw new LdapCodecError(`${what} is not UTF-8`);
    }
  }

  end(what: string): void {
    if (!this.done) throw new LdapCodecError(`Trailing bytes after ${what}`);
  }
}

/** Tag, header size and contents length of the element at `pos`, or undefined if incomplete. */
function readHeader(
  buf: Uint8Array,
  pos: number,
): { tag: number; headerLength: number; length: number } | undefined {
  if (pos + 2 > buf.length) return undefined;
  const tag = buf[pos]!;
  if ((tag & 0x1f) === 0x1f) throw new LdapCodecError("High tag numbers are not used by LDAP");
  const first = buf[pos + 1]!;
  if (first < 0x80) return { tag, headerLength: 2, length: first };
  if (first === 0x80) throw new LdapCodecError("Indefinite lengths are not allowed in LDAP");
  const count = first & 0x7f;
  if (count > 4) throw new LdapCodecError("BER length too large");
  if (pos + 2 + count > buf.length) return undefined;
  let length = 0;
  for (let i = 0; i < count; i++) length = length * 256 + buf[pos + 2 + i]!;
  if (length > MAX_LDAP_MESSAGE) throw new LdapCodecError("LDAP message too large");
  return { tag, headerLength: 2 + count, length };
}

/**
 * Splits a byte stream into whole LDAPMessages. Feed it what the socket gives; it returns the
 * complete messages and keeps the rest. Throws `LdapCodecError` on malformed input, after which
 * the connection must be dropped.
 */
export class LdapFramer {
  #buf: Uint8Array = new Uint8Array(0);

  push(data: Uint8Array): LdapMessage[] {
    if (this.#buf.length === 0) this.#buf = data.slice();
    else {
      if (this.#buf.length + data.length > MAX_LDAP_MESSAGE + 16) {
        throw new LdapCodecError("LDAP message too large");
      }
      const joined = new Uint8Array(this.#buf.length + data.length);
      joined.set(this.#buf);
      joined.set(data, this.#buf.length);
      this.#buf = joined;
    }
    const out: LdapMessage[] = [];
    let pos = 0;
    for (;;) {
      const header = readHeader(this.#buf, pos);
      if (header === undefined) break;
      if (header.tag !== 0x30) throw new LdapCodecError("An LDAPMessage must be a SEQUENCE");
      const end = pos + header.headerLength + header.length;
      if (end > this.#buf.length) break;
      out.push(readMessage(this.#buf.subarray(pos + header.headerLength, end)));
      pos = end;
    }
    this.#buf = this.#buf.subarray(pos);
    if (this.#buf.length > MAX_LDAP_MESSAGE + 16) {
      throw new LdapCodecError("LDAP message too large");
    }
    return out;
  }
}

/** Decodes the contents of one LDAPMessage SEQUENCE (RFC 4511, Section 4.1.1). */
export function readMessage(body: Uint8Array): LdapMessage {
  const r = new BerReader(body);
  const id = r.integer(0x02, "messageID");
  if (id < 0 || id > 0x7fffffff) throw new LdapCodecError("messageID out of range");
  const op = r.read();
  const controls = r.peekTag() === 0xa0 ? readControls(r.sub(0xa0, "controls")) : [];
  r.end("LDAPMessage");
  const o = new BerReader(op.value);
  switch (op.tag) {
    case LdapOp.bindResponse: {
      const result = readResult(o);
      return { kind: "bindResponse", id, result, controls };
    }
    case LdapOp.searchResultDone: {
      const result = readResult(o);
      o.end("SearchResultDone");
      return { kind: "searchResultDone", id, result, controls };
    }
    case LdapOp.searchResultEntry: {
      const dn = o.string(0x04, "objectName");
      const attrs = o.sub(0x30, "attributes");
      o.end("SearchResultEntry");
      const attributes = new Map<string, Uint8Array[]>();
      while (!attrs.done) {
        const a = attrs.sub(0x30, "PartialAttribute");
        const type = a.string(0x04, "attribute type");
        const vals = a.sub(0x31, "attribute values");
        a.end("PartialAttribute");
        const list: Uint8Array[] = [];
        while (!vals.done) list.push(vals.expect(0x04, "attribute value"));
        attributes.set(type, list);
      }
      return { kind: "searchResultEntry", id, dn, attributes, controls };
    }
    case LdapOp.extendedResponse: {
      const result = readResult(o);
      let name: string | null = null;
      if (o.peekTag() === 0x8a) name = o.string(0x8a, "responseName");
      o.optional(0x8b);
      o.end("ExtendedResponse");
      return { kind: "extendedResponse", id, result, name, controls };
    }
    case LdapOp.intermediateResponse: {
      let name: string | null = null;
      let value: Uint8Array | null = null;
      if (o.peekTag() === 0x80) name = o.string(0x80, "responseName");
      if (o.peekTag() === 0x81) value = o.read().value;
      o.end("IntermediateResponse");
      return { kind: "intermediateResponse", id, name, value, controls };
    }
    default:
      return { kind: "other", id, op: op.tag };
  }
}

function readResult(r: BerReader): LdapResult {
  const code = r.integer(0x0a, "resultCode");
  const matchedDn = r.string(0x04, "matchedDN");
  const message = r.string(0x04, "diagnosticMessage");
  r.optional(0xa3); // referral
  r.optional(0x87); // serverSaslCreds (BindResponse)
  return { code, matchedDn, message };
}

function readControls(r: BerReader): LdapControl[] {
  const out: LdapControl[] = [];
  while (!r.done) {
    const c = r.sub(0x30, "Control");
    const oid = c.string(0x04, "controlType");
    const critical = c.peekTag() === 0x01 ? c.boolean("criticality") : false;
    const value = c.optional(0x04) ?? null;
    c.end("Control");
    out.push({ oid, critical, value });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Writing

/** A BER writer producing minimal definite lengths. */
class BerWriter {
  readonly #parts: Uint8Array[] = [];

  tlv(tag: number, value: Uint8Array): this {
    this.#parts.push(new Uint8Array([tag]), encodeLength(value.length), value);
    return this;
  }

  constructed(tag: number, build: (w: BerWriter) => void): this {
    const inner = new BerWriter();
    build(inner);
    return this.tlv(tag, inner.bytes());
  }

  integer(n: number, tag = 0x02): this {
    const bytes: number[] = [];
    let v = n;
    do {
      bytes.unshift(v & 0xff);
      v = Math.floor(v / 256);
    } while (v > 0);
    if ((bytes[0]! & 0x80) !== 0) bytes.unshift(0);
    return this.tlv(tag, new Uint8Array(bytes));
  }

  boolean(b: boolean): this {
    return this.tlv(0x01, new Uint8Array([b ? 0xff : 0x00]));
  }

  string(s: string | Uint8Array, tag = 0x04): this {
    return this.tlv(tag, typeof s === "string" ? encoder.encode(s) : s);
  }

  bytes(): Uint8Array {
    const total = this.#parts.reduce((n, p) => n + p.length, 0);
    const out = new Uint8Array(total);
    let at = 0;
    for (const p of this.#parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

function encodeLength(n: number): Uint8Array {
  if (n < 0x80) return new Uint8Array([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return new Uint8Array([0x80 | bytes.length, ...bytes]);
}

function message(
  id: number,
  op: (w: BerWriter) => void,
  controls: readonly LdapControl[] = [],
): Uint8Array {
  return new BerWriter().constructed(0x30, (m) => {
    m.integer(id);
    op(m);
    if (controls.length > 0) {
      m.constructed(0xa0, (cs) => {
        for (const c of controls) {
          cs.constructed(0x30, (w) => {
            w.string(c.oid);
            if (c.critical) w.boolean(true);
            if (c.value !== null) w.string(c.value);
          });
        }
      });
    }
  }).bytes();
}

/** A simple BindRequest (RFC 4511, Section 4.2). */
export function writeBindRequest(id: number, dn: string, password: string): Uint8Array {
  return message(id, (w) =>
    w.constructed(LdapOp.bindRequest, (b) => {
      b.integer(3);
      b.string(dn);
      b.string(password, 0x80);
    }));
}

/** The StartTLS extended request (RFC 4511, Section 4.14.1). */
export function writeStartTlsRequest(id: number): Uint8Array {
  return message(
    id,
    (w) => w.constructed(LdapOp.extendedRequest, (e) => e.string(LdapOid.startTls, 0x80)),
  );
}

export function writeUnbindRequest(id: number): Uint8Array {
  return message(id, (w) => w.tlv(LdapOp.unbindRequest, new Uint8Array(0)));
}

export interface SearchRequest {
  readonly base: string;
  readonly scope: "base" | "one" | "sub";
  /** A presence filter `(attribute=*)`: all the watcher needs. */
  readonly present: string;
  readonly attributes: readonly string[];
  readonly sizeLimit?: number;
  readonly timeLimit?: number;
}

/** A SearchRequest with a presence filter (RFC 4511, Section 4.5.1). */
export function writeSearchRequest(
  id: number,
  req: SearchRequest,
  controls: readonly LdapControl[] = [],
): Uint8Array {
  const scope = { base: 0, one: 1, sub: 2 }[req.scope];
  return message(id, (w) =>
    w.constructed(LdapOp.searchRequest, (s) => {
      s.string(req.base);
      s.integer(scope, 0x0a);
      s.integer(0, 0x0a); // neverDerefAliases
      s.integer(req.sizeLimit ?? 0);
      s.integer(req.timeLimit ?? 0);
      s.boolean(false);
      s.string(req.present, 0x87);
      s.constructed(0x30, (a) => {
        for (const name of req.attributes) a.string(name);
      });
    }), controls);
}

// ---------------------------------------------------------------------------------------------
// RFC 4533 and psearch controls

/** The Sync Request control, refreshAndPersist mode (RFC 4533, Section 2.2). */
export function syncRequestControl(cookie: Uint8Array | null): LdapControl {
  const value = new BerWriter().constructed(0x30, (w) => {
    w.integer(3, 0x0a);
    if (cookie !== null) w.string(cookie);
  }).bytes();
  return { oid: LdapOid.syncRequest, critical: true, value };
}

/** The persistent search control: every change type, changes only, with EC controls. */
export function persistentSearchControl(): LdapControl {
  const value = new BerWriter().constructed(0x30, (w) => {
    w.integer(1 | 2 | 4 | 8);
    w.boolean(true);
    w.boolean(true);
  }).bytes();
  return { oid: LdapOid.persistentSearch, critical: true, value };
}

/** Sync states of an entry (RFC 4533, Section 2.3). */
export type SyncStateKind = "present" | "add" | "modify" | "delete";
const SYNC_STATES: readonly SyncStateKind[] = ["present", "add", "modify", "delete"];

export interface SyncState {
  readonly state: SyncStateKind;
  readonly entryUuid: Uint8Array;
  readonly cookie: Uint8Array | null;
}

/** Reads a Sync State control value. */
export function readSyncState(value: Uint8Array): SyncState {
  const r = new BerReader(value);
  const s = r.sub(0x30, "syncStateValue");
  r.end("syncStateValue");
  const code = s.integer(0x0a, "state");
  const state = SYNC_STATES[code];
  if (state === undefined) throw new LdapCodecError(`Unknown sync state ${code}`);
  const entryUuid = s.expect(0x04, "entryUUID");
  if (entryUuid.length !== 16) throw new LdapCodecError("entryUUID must be 16 bytes");
  const cookie = s.optional(0x04) ?? null;
  s.end("syncStateValue");
  return { state, entryUuid, cookie };
}

/** A Sync Info message (RFC 4533, Section 2.5). */
export type SyncInfo =
  | { readonly kind: "newcookie"; readonly cookie: Uint8Array }
  | {
    readonly kind: "refreshDelete" | "refreshPresent";
    readonly cookie: Uint8Array | null;
    readonly refreshDone: boolean;
  }
  | {
    readonly kind: "syncIdSet";
    readonly cookie: Uint8Array | null;
    readonly refreshDeletes: boolean;
    readonly uuids: readonly Uint8Array[];
  };

export function readSyncInfo(value: Uint8Array): SyncInfo {
  const r = new BerReader(value);
  const tag = r.peekTag();
  switch (tag) {
    case 0x80: {
      const cookie = r.expect(0x80, "newcookie");
      r.end("syncInfoValue");
      return { kind: "newcookie", cookie };
    }
    case 0xa1:
    case 0xa2: {
      const s = r.sub(tag, "refresh info");
      r.end("syncInfoValue");
      const cookie = s.optional(0x04) ?? null;
      const refreshDone = s.peekTag() === 0x01 ? s.boolean("refreshDone") : true;
      s.end("refresh info");
      return { kind: tag === 0xa1 ? "refreshDelete" : "refreshPresent", cookie, refreshDone };
    }
    case 0xa3: {
      const s = r.sub(0xa3, "syncIdSet");
      r.end("syncInfoValue");
      const cookie = s.optional(0x04) ?? null;
      const refreshDeletes = s.peekTag() === 0x01 ? s.boolean("refreshDeletes") : false;
      const set = s.sub(0x31, "syncUUIDs");
      s.end("syncIdSet");
      const uuids: Uint8Array[] = [];
      while (!set.done) uuids.push(set.expect(0x04, "syncUUID"));
      return { kind: "syncIdSet", cookie, refreshDeletes, uuids };
    }
    default:
      throw new LdapCodecError("Unknown Sync Info message");
  }
}

/** Change types of an Entry Change Notification (draft-ietf-ldapext-psearch-03, Section 5). */
export type EntryChangeKind = "add" | "delete" | "modify" | "moddn";
const CHANGE_TYPES: Readonly<Record<number, EntryChangeKind>> = {
  1: "add",
  2: "delete",
  4: "modify",
  8: "moddn",
};

export interface EntryChange {
  readonly change: EntryChangeKind;
  readonly previousDn: string | null;
}

export function readEntryChange(value: Uint8Array): EntryChange {
  const r = new BerReader(value);
  const s = r.sub(0x30, "EntryChangeNotification");
  r.end("EntryChangeNotification");
  const code = s.integer(0x0a, "changeType");
  const change = CHANGE_TYPES[code];
  if (change === undefined) throw new LdapCodecError(`Unknown change type ${code}`);
  const previousDn = s.peekTag() === 0x04 ? s.string(0x04, "previousDN") : null;
  if (s.peekTag() === 0x02) s.integer(0x02, "changeNumber");
  s.end("EntryChangeNotification");
  return { change, previousDn };
}

function hex(n: number): string {
  return n.toString(16).padStart(2, "0");
}
