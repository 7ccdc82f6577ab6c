import assert from "node:assert/strict";
import { append, message, newStore, TestClient, withoutMailboxId } from "./_harness.ts";

async function client(): Promise<TestClient> {
  const c = new TestClient(await newStore(), {
    limits: {
      maxLineLength: 64 * 1024,
      maxLiteral: 1_000_000,
      maxOtherLiteral: 64 * 1024,
      maxLiteralBeforeLogin: 8 * 1024,
      maxUnknownBeforeLogin: 10,
      maxAuthFailures: 5,
      maxListDepth: 16,
    },
  });
  await c.login();
  return c;
}

/** Foo (unsubscribed) with Foo/Bar subscribed, Moo subscribed, Gone subscribed but deleted. */
async function tree(c: TestClient): Promise<void> {
  for (const name of ["Foo/Bar", "Foo/Baz", "Moo", "Gone"]) {
    assert.deepEqual(withoutMailboxId(await c.cmd(`c CREATE ${name}`)), ["c OK CREATE completed"]);
  }
  for (const name of ["Foo/Bar", "Moo", "Gone"]) {
    assert.deepEqual(await c.cmd(`s SUBSCRIBE ${name}`), ["s OK SUBSCRIBE completed"]);
  }
  assert.deepEqual(await c.cmd("d DELETE Gone"), ["d OK DELETE completed"]);
}

Deno.test("CAPABILITY advertises LIST-EXTENDED, CREATE-SPECIAL-USE and APPENDLIMIT", async () => {
  const c = await client();
  const caps = (await c.cmd("c CAPABILITY"))[0]!.split(" ");
  for (const cap of ["LIST-EXTENDED", "LIST-STATUS", "CREATE-SPECIAL-USE", "APPENDLIMIT=1000000"]) {
    assert.ok(caps.includes(cap), `${cap} in ${caps.join(" ")}`);
  }
});

Deno.test("LIST (SUBSCRIBED) shows \\Subscribed and \\NonExistent for a deleted subscription", async () => {
  const c = await client();
  await tree(c);
  assert.deepEqual(await c.cmd('l LIST (SUBSCRIBED) "" ("F*" "G*" "M*")'), [
    '* LIST (\\HasNoChildren \\Subscribed) "/" Foo/Bar',
    '* LIST (\\NonExistent \\Subscribed) "/" Gone',
    '* LIST (\\HasNoChildren \\Subscribed) "/" Moo',
    "l OK LIST completed",
  ]);
  assert.deepEqual(await c.cmd('l2 LIST (SUBSCRIBED REMOTE) "" ("F%" "G%" "M%")'), [
    '* LIST (\\NonExistent \\Subscribed) "/" Gone',
    '* LIST (\\HasNoChildren \\Subscribed) "/" Moo',
    "l2 OK LIST completed",
  ]);
});

Deno.test("LIST (SUBSCRIBED RECURSIVEMATCH) reports CHILDINFO for parents of hidden subscriptions", async () => {
  const c = await client();
  await tree(c);
  assert.deepEqual(await c.cmd('l LIST (SUBSCRIBED RECURSIVEMATCH) "" ("F%" "G%" "M%")'), [
    '* LIST (\\HasChildren) "/" Foo ("CHILDINFO" ("SUBSCRIBED"))',
    '* LIST (\\NonExistent \\Subscribed) "/" Gone',
    '* LIST (\\HasNoChildren \\Subscribed) "/" Moo',
    "l OK LIST completed",
  ]);
  // With `*` the subscribed child is listed itself, so its parent is not.
  assert.deepEqual(await c.cmd('l2 LIST (RECURSIVEMATCH SUBSCRIBED) "" "F*"'), [
    '* LIST (\\HasNoChildren \\Subscribed) "/" Foo/Bar',
    "l2 OK LIST completed",
  ]);
  assert.deepEqual(await c.cmd('l3 LIST (RECURSIVEMATCH) "" "%"'), [
    "l3 BAD RECURSIVEMATCH needs another selection option",
  ]);
});

Deno.test("LIST takes several patterns and RETURN (SUBSCRIBED CHILDREN SPECIAL-USE STATUS)", async () => {
  const c = await client();
  await tree(c);
  const several = await c.cmd('l LIST "" ("Moo" "Foo")');
  assert.deepEqual(several.slice(0, -1).sort(), [
    '* LIST (\\HasChildren) "/" Foo',
    '* LIST (\\HasNoChildren) "/" Moo',
  ]);
  await append(c, "Moo", message("one"));
  assert.deepEqual(
    await c.cmd(
      'l2 LIST "" (Moo Sent) RETURN (SUBSCRIBED CHILDREN SPECIAL-USE STATUS (MESSAGES APPENDLIMIT))',
    ),
    [
      '* LIST (\\HasNoChildren \\Subscribed) "/" Moo',
      "* STATUS Moo (MESSAGES 1 APPENDLIMIT 1000000)",
      '* LIST (\\HasNoChildren \\Sent \\Subscribed) "/" Sent',
      "* STATUS Sent (MESSAGES 0 APPENDLIMIT 1000000)",
      "l2 OK LIST completed",
    ],
  );
  assert.deepEqual(await c.cmd('l3 LIST (SPECIAL-USE) "" ("S*" "D*") RETURN ()'), [
    '* LIST (\\HasNoChildren \\Drafts) "/" Drafts',
    '* LIST (\\HasNoChildren \\Sent) "/" Sent',
    "l3 OK LIST completed",
  ]);
  assert.deepEqual(await c.cmd('l4 LIST "" % RETURN (BOGUS)'), [
    "l4 BAD Unknown LIST return option BOGUS",
  ]);
});

Deno.test("STATUS (APPENDLIMIT) reports the session's APPEND literal limit", async () => {
  const c = await client();
  assert.deepEqual(await c.cmd("s STATUS INBOX (MESSAGES APPENDLIMIT)"), [
    "* STATUS INBOX (MESSAGES 0 APPENDLIMIT 1000000)",
    "s OK STATUS completed",
  ]);
});

Deno.test("CREATE (USE (\\Sent)) creates a special-use mailbox; unknown uses are NO [USEATTR]", async () => {
  const c = await client();
  assert.deepEqual(withoutMailboxId(await c.cmd("c CREATE MySent (USE (\\Sent))")), [
    "c OK CREATE completed",
  ]);
  assert.deepEqual(withoutMailboxId(await c.cmd("c2 CREATE Everything (use (\\all))")), [
    "c2 OK CREATE completed",
  ]);
  assert.deepEqual(await c.cmd('l LIST (SPECIAL-USE) "" "*y*"'), [
    '* LIST (\\HasNoChildren \\All) "/" Everything',
    '* LIST (\\HasNoChildren \\Sent) "/" MySent',
    "l OK LIST completed",
  ]);
  assert.deepEqual(await c.cmd("c3 CREATE Odd (USE (\\Important))"), [
    "c3 NO [USEATTR] Only one of the known special-use attributes is supported",
  ]);
  assert.deepEqual(await c.cmd("c4 CREATE Two (USE (\\Sent \\Drafts))"), [
    "c4 NO [USEATTR] Only one of the known special-use attributes is supported",
  ]);
  assert.deepEqual(await c.cmd("c5 CREATE Odd (COLOR (red))"), [
    "c5 BAD Unknown CREATE parameter COLOR",
  ]);
  const list = await c.cmd('l2 LIST "" "*"');
  assert.ok(!list.some((l) => /Odd|Two/.test(l)), list.join("\n"));
});

Deno.test("IMAP4rev2 FETCH that sets \\Seen reports UID with the implied FLAGS; rev1 does not", async () => {
  for (const rev2 of [true, false]) {
    const c = await client();
    if (rev2) await c.cmd("e ENABLE IMAP4rev2");
    await append(c, "INBOX", message("a", "body"));
    const sel = await c.cmd("s SELECT INBOX");
    assert.equal(sel.some((l) => / RECENT$/.test(l)), !rev2, sel.join("\n"));
    assert.equal(sel.some((l) => l.startsWith("* LIST ")), rev2, sel.join("\n"));
    const out = await c.raw("f FETCH 1 BODY[TEXT]\r\n");
    assert.equal(
      out,
      `* 1 FETCH (${rev2 ? "UID 1 " : ""}BODY[TEXT] {6}\r\nbody\r\n FLAGS (\\Seen${
        rev2 ? "" : " \\Recent"
      }))\r\n` +
        "f OK FETCH completed\r\n",
    );
    const search = await c.cmd("q SEARCH SEEN");
    assert.equal(search[0], rev2 ? '* ESEARCH (TAG "q") ALL 1' : "* SEARCH 1");
    const status = await c.cmd("st STATUS INBOX (MESSAGES)");
    assert.equal(status[0], "* STATUS INBOX (MESSAGES 1)");
  }
});

Deno.test("IMAP4rev2 LIST and STATUS send UTF-8 names; IMAP4rev1 keeps modified UTF-7", async () => {
  const c = await client();
  assert.deepEqual(withoutMailboxId(await c.cmd("c CREATE Entw&APw-rfe (USE (\\Drafts))")), [
    "c OK CREATE completed",
  ]);
  assert.deepEqual(await c.cmd('l LIST "" Entw*'), [
    '* LIST (\\HasNoChildren \\Drafts) "/" Entw&APw-rfe',
    "l OK LIST completed",
  ]);
  await c.cmd("e ENABLE IMAP4rev2");
  assert.deepEqual(await c.cmd('l2 LIST "" Entw* RETURN (STATUS (MESSAGES))'), [
    '* LIST (\\HasNoChildren \\Drafts) "/" "Entwürfe"',
    '* STATUS "Entwürfe" (MESSAGES 0)',
    "l2 OK LIST completed",
  ]);
});

Deno.test("Extended LIST names a missing parent \\NonExistent; a basic rev1 LIST keeps \\Noselect", async () => {
  const c = await client();
  await c.cmd("c CREATE Work/Projects");
  await c.cmd("d DELETE Work");
  assert.deepEqual(await c.cmd('l LIST "" W%'), [
    '* LIST (\\Noselect \\HasChildren) "/" Work',
    "l OK LIST completed",
  ]);
  assert.deepEqual(await c.cmd('l2 LIST "" W% RETURN (CHILDREN)'), [
    '* LIST (\\NonExistent \\HasChildren) "/" Work',
    "l2 OK LIST completed",
  ]);
  assert.deepEqual(await c.cmd('l3 LIST () "" (W%)'), [
    '* LIST (\\NonExistent \\HasChildren) "/" Work',
    "l3 OK LIST completed",
  ]);
});

Deno.test("APPEND up to APPENDLIMIT is accepted and one octet more is NO [TOOBIG]", async () => {
  const c = await client();
  const fits = message("big", "x".repeat(1_000_000 - message("big", "").length));
  assert.equal(fits.length, 1_000_000);
  assert.match(await append(c, "INBOX", fits), /^AP OK \[APPENDUID \d+ 1\]/);
  const out = await c.raw(`T APPEND INBOX {1000001}\r\n`);
  assert.match(out, /^T NO \[TOOBIG\]/);
});

Deno.test("LIST rejects malformed extended syntax with BAD", async () => {
  const c = await client();
  for (
    const [cmd, answer] of [
      ['LIST (BOGUS) "" *', "BAD Unknown LIST selection option BOGUS"],
      ['LIST "" ()', "BAD"],
      ['LIST "" * RETURN (STATUS (MESSAGES) STATUS (UIDNEXT))', "BAD Duplicate STATUS"],
      ['LIST "" * RETURN (STATUS (NOPE))', "BAD Unknown STATUS item NOPE"],
      ['LIST "" * RETURN', "BAD"],
      ['LIST "" * EXTRA (CHILDREN)', "BAD Expected RETURN"],
    ]
  ) {
    const out = await c.cmd(`x ${cmd}`);
    assert.equal(out.length, 1, out.join("\n"));
    assert.ok(out[0]!.startsWith(`x ${answer}`), `${cmd}: ${out[0]}`);
  }
  assert.deepEqual(await c.cmd('ok LIST () "" INBOX RETURN ()'), [
    '* LIST (\\HasNoChildren) "/" INBOX',
    "ok OK LIST completed",
  ]);
});
