/**
 * Hostile and broken clients against a whole running Postern: malformed commands (RFC 9051,
 * Section 7.1.5: BAD, and the session goes on), unknown-command floods before login, oversized
 * literals (RFC 7889 TOOBIG), stalled and non-reading clients that must not stall anyone else,
 * garbage TLS handshakes (RFC 8446, Section 6: a fatal alert), random bytes after login, and the
 * per-address connection limit.
 */
import assert from "node:assert/strict";
import { type PosternOptions, type RunningPostern, startPostern } from "../_support/postern.ts";
import { makeMessage, RawImap, readRaw } from "../_support/imap_clients.ts";

const USER = { name: "alice", password: "robust secret" } as const;
const encoder = new TextEncoder();

async function withPostern(
  fn: (p: RunningPostern) => Promise<void>,
  options: PosternOptions = {},
): Promise<void> {
  const postern = await startPostern({ users: [USER], ...options });
  try {
    await fn(postern);
  } finally {
    await postern.stop();
  }
}

async function login(postern: RunningPostern): Promise<RawImap> {
  const imap = await RawImap.tls(postern.implicitPort, postern.caPem);
  await imap.greeting();
  const r = await imap.command(`LOGIN alice "${USER.password}"`);
  assert.equal(r.status, "OK", r.tagged);
  return imap;
}

/** Proves the server still serves a fresh client: login, select, fetch, logout. */
async function stillServes(postern: RunningPostern, timeoutMs = 5000): Promise<void> {
  const started = Date.now();
  const imap = await login(postern);
  try {
    const sel = await imap.command("SELECT INBOX", undefined, timeoutMs);
    assert.equal(sel.status, "OK", sel.tagged);
    const noop = await imap.command("NOOP", undefined, timeoutMs);
    assert.equal(noop.status, "OK", noop.tagged);
    await imap.command("LOGOUT");
  } finally {
    await imap.close();
  }
  const took = Date.now() - started;
  assert.ok(took < timeoutMs, `a fresh session took ${took} ms`);
}

/** A small deterministic PRNG (xorshift32) so that failures replay. */
function randomBytes(seed: number, length: number): Uint8Array {
  let x = seed | 1;
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

const MALFORMED: readonly string[] = [
  "m1 FETCH",
  "m2 SELECT",
  "m3 FETCH 1 (BODY[",
  "m4 STORE 1 +FLAGS (\\Seen",
  "m5 UID FROB 1",
  "m6 FETCH 0:* FLAGS",
  "m7 SEARCH (((((",
  'm8 CREATE "unterminated',
  "m9 APPEND",
  "m10 LIST",
  "m11 STATUS INBOX (NOSUCHITEM)",
  "m12 FETCH 1 BODY[HEADER.FIELDS ()]",
  "m13 COPY",
  "m14 \x01\x02\x03",
];

Deno.test("malformed commands get BAD and the session goes on", async () => {
  await withPostern(async (postern) => {
    const imap = await login(postern);
    try {
      const sel = await imap.command("SELECT INBOX");
      assert.equal(sel.status, "OK");
      for (const line of MALFORMED) {
        const tag = line.split(" ")[0]!;
        await imap.write(`${line}\r\n`);
        const answer = await imap.readUntil((r) => r.text.startsWith(`${tag} `), 5000);
        assert.ok(answer, `no answer to ${JSON.stringify(line)}`);
        assert.match(answer.at(-1)!.text, new RegExp(`^${tag} BAD `), JSON.stringify(line));
      }
      const noop = await imap.command("NOOP");
      assert.equal(noop.status, "OK", noop.tagged);
      assert.equal(imap.closed, false);
    } finally {
      await imap.close();
    }
  });
});

Deno.test("a flood of unknown commands before login ends with BYE", async () => {
  await withPostern(async (postern) => {
    const imap = await RawImap.tls(postern.implicitPort, postern.caPem);
    try {
      await imap.greeting();
      const flood = Array.from({ length: 50 }, (_, i) => `u${i} XYZZY${i}\r\n`).join("");
      await imap.write(flood).catch(() => {});
      const seen = await imap.readUntil((r) => r.text.startsWith("* BYE"), 5000);
      assert.ok(seen, "no BYE after 50 unknown commands");
      const bads = seen.filter((r) => / BAD /.test(r.text)).length;
      assert.ok(bads >= 1 && bads < 50, `${bads} BAD answers before BYE`);
      const rest = await imap.readResponse(2000);
      assert.equal(rest, null);
      assert.equal(imap.closed, true, "the connection stayed open after BYE");
    } finally {
      await imap.close();
    }
    await stillServes(postern);
  });
});

Deno.test("an oversized literal gets NO [TOOBIG] or BAD and the session goes on", async () => {
  await withPostern(async (postern) => {
    const imap = await login(postern);
    try {
      // Synchronizing: the server must refuse before the client sends the bytes.
      const tag = imap.nextTag();
      await imap.write(`${tag} APPEND INBOX {200000}\r\n`);
      const answer = await imap.readResponse(5000);
      assert.ok(answer, "no answer to an oversized synchronizing literal");
      assert.match(answer.text, new RegExp(`^${tag} (NO \\[TOOBIG\\]|BAD )`));

      // Non-synchronizing: the bytes follow at once and must be skipped, not parsed.
      const huge = new Uint8Array(100_000).fill(0x41);
      huge.set(encoder.encode("\r\nx1 LOGOUT\r\n"), 5000);
      const r = await imap.command("APPEND INBOX", huge);
      assert.match(r.tagged, / (NO \[TOOBIG\]|BAD) /);
      const noop = await imap.command("NOOP");
      assert.equal(noop.status, "OK", noop.tagged);
      const ok = await imap.command("APPEND INBOX", makeMessage("small", "fits"));
      assert.equal(ok.status, "OK", ok.tagged);
    } finally {
      await imap.close();
    }
    // Before login the cap is far smaller (a LOGIN literal).
    const anon = await RawImap.tls(postern.implicitPort, postern.caPem);
    try {
      await anon.greeting();
      await anon.write("p1 LOGIN {50000}\r\n");
      const answer = await anon.readResponse(5000);
      assert.ok(answer, "no answer to a large literal before login");
      assert.match(answer.text, /^(p1 (NO \[TOOBIG\]|BAD )|\* BYE)/);
    } finally {
      await anon.close();
    }
  }, { limitsYaml: "  max_message_size: 64KiB" });
});

Deno.test("a client that sends half a command and stalls does not stall another", async () => {
  await withPostern(async (postern) => {
    const halfLine = await login(postern);
    const halfLiteral = await login(postern);
    const halfTls = await Deno.connect({ hostname: "127.0.0.1", port: postern.implicitPort });
    try {
      await halfLine.write("h1 SELECT IN");
      await halfLiteral.write("h2 APPEND INBOX {5000+}\r\nFrom: half");
      // Half a TLS record header, then nothing.
      await halfTls.write(new Uint8Array([0x16, 0x03]));
      await stillServes(postern, 3000);
      // The stalled sessions are still alive and finish their commands.
      await halfLine.write("BOX\r\n");
      const done = await halfLine.readUntil((r) => r.text.startsWith("h1 "), 5000);
      assert.ok(done);
      assert.match(done.at(-1)!.text, /^h1 OK/);
    } finally {
      await halfLine.close();
      await halfLiteral.close();
      try {
        halfTls.close();
      } catch {
        // Closed by the server's handshake timeout.
      }
    }
  });
});

/**
 * Stores `count` copies of `message`, then has a client send `FETCH 1:count BODY[]` and read
 * nothing: fresh sessions and a second FETCH are still served meanwhile, and when the client
 * finally reads, every literal is whole.
 */
async function nonReaderStallsNoOne(message: Uint8Array, count: number): Promise<void> {
  await withPostern(async (postern) => {
    const seeder = await login(postern);
    try {
      for (let i = 0; i < count; i++) {
        const r = await seeder.command("APPEND INBOX", message, 20_000);
        assert.equal(r.status, "OK", r.tagged);
      }
    } finally {
      await seeder.close();
    }
    const slow = await RawImap.tls(postern.implicitPort, postern.caPem, { paused: true });
    try {
      // Everything in one go, then no reading at all while others are served.
      await slow.write(
        `a LOGIN alice "${USER.password}"\r\nb SELECT INBOX\r\nc FETCH 1:${count} BODY[]\r\n`,
      );
      await new Promise((r) => setTimeout(r, 500));
      for (let round = 0; round < 3; round++) await stillServes(postern, 4000);
      const other = await login(postern);
      try {
        await other.command("SELECT INBOX");
        const r = await other.command(`FETCH ${count} BODY.PEEK[]`, undefined, 10_000);
        assert.equal(r.status, "OK", r.tagged);
        assert.deepEqual(r.untagged[0]?.literals[0], message);
      } finally {
        await other.close();
      }
      // When the slow client finally reads, its answer is complete and intact.
      slow.resume();
      const all = await slow.readUntil((r) => r.text.startsWith("c "), 30_000);
      assert.ok(all, "the stalled FETCH never completed");
      assert.match(all.at(-1)!.text, /^c OK/);
      const bodies = all.filter((r) => /^\* \d+ FETCH /.test(r.text));
      assert.equal(bodies.length, count);
      for (const r of bodies) assert.deepEqual(r.literals[0], message);
    } finally {
      await slow.close();
    }
  });
}

/** A message of `makeMessage` headers and `body`, cut into lines of 78 octets. */
function linedMessage(subject: string, body: Uint8Array): Uint8Array {
  for (let i = 76; i < body.length; i += 78) body.set([0x0d, 0x0a], i);
  return new Uint8Array([...makeMessage(subject, subject, ""), ...body]);
}

Deno.test("a client that never reads a large FETCH does not stall others", async () => {
  // 24 messages of 512 KiB: 12 MiB, far beyond socket buffers and the output high-water mark.
  await nonReaderStallsNoOne(linedMessage("big", new Uint8Array(512 * 1024).fill(0x78)), 24);
});

Deno.test("a client that never reads a streamed 6 MiB FETCH does not stall others", async () => {
  // Stored in pieces (4 MB and over), so sent a piece at a time as the store reads it.
  const body = randomBytes(11, 6 * 1024 * 1024).map((b) => 0x41 + (b % 26));
  await nonReaderStallsNoOne(linedMessage("stuck", body), 1);
});

/** The TLS alert records in `bytes`: [level, description] pairs (RFC 8446, Section 6). */
function alerts(bytes: Uint8Array): [number, number][] {
  const found: [number, number][] = [];
  let i = 0;
  while (i + 5 <= bytes.length) {
    const type = bytes[i]!;
    const length = (bytes[i + 3]! << 8) | bytes[i + 4]!;
    if (type === 21 && length === 2 && i + 7 <= bytes.length) {
      found.push([bytes[i + 5]!, bytes[i + 6]!]);
    }
    i += 5 + length;
  }
  return found;
}

const GARBAGE: readonly { name: string; bytes: Uint8Array }[] = [
  { name: "plaintext IMAP", bytes: encoder.encode("a LOGIN alice secret\r\n") },
  { name: "an HTTP request", bytes: encoder.encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n") },
  {
    name: "a truncated ClientHello in a complete record",
    // A whole handshake message (length 2) holding only a legacy_version: decode_error.
    bytes: new Uint8Array([0x16, 0x03, 0x01, 0x00, 0x06, 0x01, 0x00, 0x00, 0x02, 0x03, 0x03]),
  },
  {
    name: "an oversized record",
    bytes: new Uint8Array([0x16, 0x03, 0x01, 0xff, 0xff, ...randomBytes(7, 64)]),
  },
  { name: "random bytes", bytes: randomBytes(12345, 600) },
];

Deno.test("a garbage TLS handshake gets a fatal alert and the server goes on", async () => {
  await withPostern(async (postern) => {
    for (const { name, bytes } of GARBAGE) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: postern.implicitPort });
      try {
        await conn.write(bytes).catch(() => 0);
        const answer = Uint8Array.from(await readRaw(conn, 6000), (c) => c.charCodeAt(0));
        const found = alerts(answer);
        assert.ok(
          found.length === 1 && found[0]![0] === 2,
          `${name}: expected one fatal alert, got ${
            [...answer.subarray(0, 20)].map((b) => b.toString(16)).join(" ")
          }`,
        );
      } finally {
        try {
          conn.close();
        } catch {
          // Closed.
        }
      }
    }
    await stillServes(postern);
  });
});

Deno.test("random bytes after login never crash the server", async () => {
  await withPostern(async (postern) => {
    const watcher = await login(postern);
    try {
      for (let seed = 1; seed <= 8; seed++) {
        const imap = await login(postern);
        try {
          const noise = randomBytes(seed * 7919, 32 * 1024);
          for (let off = 0; off < noise.length && !imap.closed; off += 4096) {
            await imap.write(noise.subarray(off, off + 4096)).catch(() => {});
          }
          // Drain whatever comes back (BAD, BYE, TOOBIG) without caring.
          await imap.readUntil(() => false, 300);
        } finally {
          await imap.close();
        }
        const noop = await watcher.command("NOOP", undefined, 5000);
        assert.equal(noop.status, "OK", `after seed ${seed}: ${noop.tagged}`);
      }
    } finally {
      await watcher.close();
    }
    await stillServes(postern);
  });
});

Deno.test("the per-address connection limit refuses the fourth connection", async () => {
  await withPostern(async (postern) => {
    const open: RawImap[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const imap = await RawImap.plain(postern.starttlsPort);
        assert.match(await imap.greeting(), /^\* OK/);
        open.push(imap);
      }
      const fourth = await RawImap.plain(postern.starttlsPort);
      try {
        const greeting = await fourth.readResponse(3000);
        assert.equal(greeting, null, `4th connection was greeted: ${greeting?.text}`);
        assert.equal(fourth.closed, true, "4th connection was neither greeted nor closed");
      } finally {
        await fourth.close();
      }
      // Closing one frees a slot.
      const gone = open.pop()!;
      await gone.command("LOGOUT");
      await gone.close();
      let greeted = false;
      for (let attempt = 0; attempt < 20 && !greeted; attempt++) {
        const next = await RawImap.plain(postern.starttlsPort);
        try {
          const g = await next.readResponse(1000);
          greeted = g?.text.startsWith("* OK") ?? false;
        } finally {
          await next.close();
        }
        if (!greeted) await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(greeted, "no slot came free after a LOGOUT");
    } finally {
      for (const imap of open) await imap.close();
    }
  }, { limitsYaml: "  max_connections_per_address: 3" });
});

Deno.test("the per-user connection limit refuses a third login, not the connection", async () => {
  await withPostern(async (postern) => {
    const sessions = [await login(postern), await login(postern)];
    try {
      const third = await RawImap.tls(postern.implicitPort, postern.caPem);
      sessions.push(third);
      await third.greeting();
      const refused = await third.command(`LOGIN alice "${USER.password}"`);
      assert.equal(refused.status, "NO", refused.tagged);
      const capability = await third.command("CAPABILITY");
      assert.equal(capability.status, "OK", "the refused connection was closed");
      await sessions.shift()!.close();
      let accepted = false;
      for (let attempt = 0; attempt < 20 && !accepted; attempt++) {
        accepted = (await third.command(`LOGIN alice "${USER.password}"`)).status === "OK";
        if (!accepted) await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(accepted, "no login slot came free after a session ended");
    } finally {
      for (const s of sessions) await s.close();
    }
  }, { limitsYaml: "  max_connections_per_user: 2" });
});

Deno.test({
  name: "limits.max_literal_size caps literals",
  fn: async () => {
    await withPostern(async (postern) => {
      const imap = await login(postern);
      try {
        const tag = imap.nextTag();
        await imap.write(`${tag} APPEND INBOX {10000}\r\n`);
        const answer = await imap.readResponse(5000);
        assert.ok(answer, "no answer");
        assert.match(answer.text, new RegExp(`^${tag} (NO \\[TOOBIG\\]|BAD )`));
      } finally {
        await imap.close();
      }
    }, { limitsYaml: "  max_literal_size: 4KiB" });
  },
});

Deno.test("20 clients fetch a 6 MiB message streamed from the store while another expunges it", async () => {
  await withPostern(async (postern) => {
    // Lines of pseudo-random letters: stored in pieces (the store keeps 4 MB and over so).
    const body = randomBytes(7, 6 * 1024 * 1024).map((b) => 0x61 + (b % 26));
    const message = linedMessage("streamed", body);
    const seeder = await login(postern);
    try {
      const r = await seeder.command("APPEND INBOX", message, 20_000);
      assert.equal(r.status, "OK", r.tagged);
      await seeder.command("SELECT INBOX");
      const clients = await Promise.all(Array.from({ length: 20 }, () => login(postern)));
      try {
        for (const c of clients) assert.equal((await c.command("SELECT INBOX")).status, "OK");
        const fetches = clients.map((c) =>
          c.command("FETCH 1 (UID BODY.PEEK[])", undefined, 30_000)
        );
        // Expunged while the fetches run: each one still gets the message whole, or (begun
        // after the expunge) none of it, never a piece.
        await new Promise((r) => setTimeout(r, 50));
        await seeder.command("STORE 1 +FLAGS.SILENT (\\Deleted)");
        assert.equal((await seeder.command("EXPUNGE")).status, "OK");
        let whole = 0;
        for (const r of await Promise.all(fetches)) {
          assert.equal(r.status, "OK", r.tagged);
          // The body's FETCH; the seeder's STORE may also reach this session as an untagged
          // `* 1 FETCH (FLAGS (\Deleted))` before it (RFC 9051, 7.5.2), with no literal.
          const data = r.untagged.filter((u) => /^\* 1 FETCH .*BODY\[\]/.test(u.text));
          if (data.length === 0) {
            assert.match(r.tagged, /EXPUNGEISSUED/);
            continue;
          }
          assert.equal(data[0]!.literals.length, 1);
          assert.deepEqual(data[0]!.literals[0], message);
          whole++;
        }
        assert.ok(whole > 0, "no client got the message");
        for (const c of clients) assert.equal((await c.command("NOOP")).status, "OK");
      } finally {
        for (const c of clients) await c.close();
      }
    } finally {
      await seeder.close();
    }
    await stillServes(postern);
  }, { limitsYaml: "  max_connections_per_user: 30" });
});
