/**
 * The watcher's LDAP codec in memory: messages as OpenLDAP writes them (non-minimal lengths),
 * fed whole and byte by byte; the RFC 4533 and psearch controls; truncated and random input.
 */
import assert from "node:assert/strict";
import {
  BerReader,
  LdapCodecError,
  LdapFramer,
  LdapOid,
  persistentSearchControl,
  readEntryChange,
  readMessage,
  readSyncInfo,
  readSyncState,
  syncRequestControl,
  writeBindRequest,
  writeSearchRequest,
} from "../../../server/directory/ldap_codec.ts";

const enc = new TextEncoder();

/** A TLV with a 4-byte length, as liblber writes it. */
function long(tag: number, ...parts: Uint8Array[]): Uint8Array {
  const body = concat(...parts);
  const n = body.length;
  return concat(
    Uint8Array.of(tag, 0x84, n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff),
    body,
  );
}

function tlv(tag: number, ...parts: Uint8Array[]): Uint8Array {
  const body = concat(...parts);
  assert.ok(body.length < 128);
  return concat(Uint8Array.of(tag, body.length), body);
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const str = (s: string, tag = 0x04) => tlv(tag, enc.encode(s));
const int = (n: number, tag = 0x02) => tlv(tag, Uint8Array.of(n));
const uuid = new Uint8Array(16).fill(0xab);

function control(oid: string, value: Uint8Array): Uint8Array {
  return tlv(0x30, str(oid), tlv(0x04, value));
}

/** A SearchResultEntry with a Sync State control, as syncprov sends in the persist phase. */
function syncEntry(id: number, dn: string, state: number): Uint8Array {
  const stateValue = tlv(0x30, int(state, 0x0a), tlv(0x04, uuid));
  return long(
    0x30,
    int(id),
    long(0x64, str(dn), long(0x30)),
    long(0xa0, control(LdapOid.syncState, stateValue)),
  );
}

Deno.test("LdapFramer reads OpenLDAP's long-form lengths, whole and byte by byte", () => {
  const bytes = concat(
    syncEntry(2, "uid=alice,ou=people,dc=example,dc=org", 3),
    syncEntry(2, "uid=bob,ou=people,dc=example,dc=org", 2),
  );
  const whole = new LdapFramer().push(bytes);
  const framer = new LdapFramer();
  const split = [...bytes].flatMap((b) => framer.push(Uint8Array.of(b)));
  for (const messages of [whole, split]) {
    assert.equal(messages.length, 2);
    const [first, second] = messages;
    assert.equal(first?.kind, "searchResultEntry");
    if (first?.kind !== "searchResultEntry" || second?.kind !== "searchResultEntry") return;
    assert.equal(first.dn, "uid=alice,ou=people,dc=example,dc=org");
    const state = readSyncState(first.controls[0]!.value!);
    assert.equal(state.state, "delete");
    assert.deepEqual(state.entryUuid, uuid);
    assert.equal(readSyncState(second.controls[0]!.value!).state, "modify");
  }
});

Deno.test("readMessage() reads IntermediateResponse Sync Info and SearchResultDone", () => {
  const refreshDone = tlv(0xa2, tlv(0x04, enc.encode("rid=000,csn=1")));
  const info = readMessage(
    concat(int(3), tlv(0x79, str(LdapOid.syncInfo, 0x80), tlv(0x81, refreshDone))),
  );
  assert.equal(info.kind, "intermediateResponse");
  if (info.kind !== "intermediateResponse") return;
  assert.equal(info.name, LdapOid.syncInfo);
  const parsed = readSyncInfo(info.value!);
  assert.deepEqual(parsed.kind, "refreshPresent");
  assert.equal(parsed.kind === "refreshPresent" && parsed.refreshDone, true);
  const idSet = readSyncInfo(tlv(0xa3, tlv(0x01, Uint8Array.of(0xff)), tlv(0x31, tlv(0x04, uuid))));
  assert.equal(idSet.kind === "syncIdSet" && idSet.refreshDeletes, true);
  assert.equal(readSyncInfo(tlv(0xa1, tlv(0x01, Uint8Array.of(0)))).kind, "refreshDelete");

  const done = readMessage(concat(int(3), tlv(0x65, int(4, 0x0a), str(""), str("size limit"))));
  assert.equal(done.kind, "searchResultDone");
  assert.equal(done.kind === "searchResultDone" && done.result.code, 4);
  // A result code above 255 (e-syncRefreshRequired, 4096) is a two-byte ENUMERATED.
  const refresh = readMessage(
    concat(int(3), tlv(0x65, tlv(0x0a, Uint8Array.of(0x10, 0x00)), str(""), str(""))),
  );
  assert.equal(refresh.kind === "searchResultDone" && refresh.result.code, 4096);
});

Deno.test("readEntryChange() reads persistent-search change notifications", () => {
  assert.deepEqual(readEntryChange(tlv(0x30, int(4, 0x0a))), {
    change: "modify",
    previousDn: null,
  });
  assert.deepEqual(readEntryChange(tlv(0x30, int(8, 0x0a), str("uid=old,dc=x"), int(7))), {
    change: "moddn",
    previousDn: "uid=old,dc=x",
  });
  assert.throws(() => readEntryChange(tlv(0x30, int(3, 0x0a))), LdapCodecError);
});

Deno.test("the requests encode as RFC 4511 and RFC 4533 say", () => {
  const bind = new BerReader(writeBindRequest(1, "cn=p,dc=x", "pw")).sub(0x30, "message");
  assert.equal(bind.integer(), 1);
  const b = bind.sub(0x60, "BindRequest");
  assert.equal(b.integer(), 3);
  assert.equal(b.string(), "cn=p,dc=x");
  assert.equal(b.string(0x80), "pw");

  const search = writeSearchRequest(2, {
    base: "ou=people,dc=x",
    scope: "sub",
    present: "userCertificate",
    attributes: ["1.1"],
  }, [syncRequestControl(null)]);
  const m = new BerReader(search).sub(0x30, "message");
  assert.equal(m.integer(), 2);
  const s = m.sub(0x63, "SearchRequest");
  assert.equal(s.string(), "ou=people,dc=x");
  assert.equal(s.integer(0x0a), 2);
  s.integer(0x0a);
  s.integer();
  s.integer();
  assert.equal(s.boolean(), false);
  assert.equal(s.string(0x87), "userCertificate");
  assert.equal(s.sub(0x30, "attributes").string(), "1.1");
  const c = m.sub(0xa0, "controls").sub(0x30, "control");
  assert.equal(c.string(), LdapOid.syncRequest);
  assert.equal(c.boolean(), true);
  const value = new BerReader(c.expect(0x04, "value")).sub(0x30, "syncRequestValue");
  assert.equal(value.integer(0x0a), 3, "refreshAndPersist");
  assert.ok(value.done);

  const ps = new BerReader(persistentSearchControl().value!).sub(0x30, "psearch");
  assert.equal(ps.integer(), 15);
  assert.equal(ps.boolean(), true);
  assert.equal(ps.boolean(), true);
});

Deno.test("truncated and random input gives LdapCodecError or waits, never anything else", () => {
  const message = syncEntry(5, "uid=carol,ou=people,dc=example,dc=org", 1);
  for (let n = 0; n < message.length; n++) {
    assert.deepEqual(new LdapFramer().push(message.subarray(0, n)), [], `prefix ${n}`);
    // A body cut short is malformed, except when cut right before its optional controls.
    if (n > 6) {
      try {
        const m = readMessage(message.subarray(6, n));
        assert.ok(m.kind === "searchResultEntry" && m.controls.length === 0, `prefix ${n}`);
      } catch (e) {
        assert.ok(e instanceof LdapCodecError, `prefix ${n} threw ${e}`);
      }
    }
  }
  let seed = 4533;
  const rand = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) & 0xff;
  for (let i = 0; i < 3000; i++) {
    const bytes = i % 2 === 0
      ? Uint8Array.from({ length: rand() }, rand)
      : message.map((b) => (rand() < 8 ? rand() : b));
    try {
      new LdapFramer().push(bytes);
    } catch (e) {
      assert.ok(e instanceof LdapCodecError, `input ${i} threw ${e}`);
    }
  }
  // Indefinite lengths and oversized messages are refused outright.
  assert.throws(() => new LdapFramer().push(Uint8Array.of(0x30, 0x80)), LdapCodecError);
  assert.throws(
    () => new LdapFramer().push(Uint8Array.of(0x30, 0x84, 0x7f, 0, 0, 0)),
    /too large/,
  );
});
