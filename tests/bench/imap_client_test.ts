/**
 * The benchmarks' IMAP client (bench/_imap_client.ts) against a scripted plaintext server on
 * 127.0.0.1: responses split at every awkward place, literals holding CRLF, and bytes above
 * 0x7f, which must come out one character per byte.
 */
import assert from "node:assert/strict";
import { ImapClient } from "../../bench/_imap_client.ts";

const encoder = new TextEncoder();

/** Serves one connection: the greeting, then `script(tag)` for each command line read. */
function scripted(script: (tag: string) => Uint8Array[]): { port: number; done: Promise<void> } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const done = (async () => {
    const conn = await listener.accept();
    listener.close();
    await conn.write(encoder.encode("* OK [CAPABILITY IMAP4rev1] ready\r\n"));
    const buf = new Uint8Array(4096);
    let pending = "";
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      pending += new TextDecoder().decode(buf.subarray(0, n));
      let nl: number;
      while ((nl = pending.indexOf("\r\n")) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 2);
        const tag = line.slice(0, line.indexOf(" "));
        for (const part of script(tag)) {
          await conn.write(part);
          // Let each part arrive in its own read.
          await new Promise((r) => setTimeout(r, 2));
        }
        if (line.endsWith("LOGOUT")) {
          conn.close();
          return;
        }
      }
    }
    conn.close();
  })();
  return { port: (listener.addr as Deno.NetAddr).port, done };
}

function bytes(...parts: (string | number[])[]): Uint8Array {
  const out: number[] = [];
  for (const p of parts) out.push(...(typeof p === "string" ? encoder.encode(p) : p));
  return Uint8Array.from(out);
}

Deno.test("the bench client joins responses split across reads, with literals and high bytes", async () => {
  let commands = 0;
  const server = scripted((tag) => {
    commands++;
    if (commands === 2) return [bytes(`* BYE\r\n${tag} OK LOGOUT done\r\n`)];
    const whole = bytes(
      "* 1 FETCH (UID 7 FLAGS (\\Seen))\r\n* 2 FETCH (BODY[] {5}\r\nab\r\nc)\r\n",
      '* 3 FETCH (X "',
      [0xe9, 0x80, 0xff],
      '")\r\n',
      `${tag} OK FETCH completed\r\n`,
    );
    // Split inside a line, inside the CRLF, inside the literal and its announcement.
    const cuts = [5, 33, 34, 52, 58, 61, whole.length];
    const parts: Uint8Array[] = [];
    let at = 0;
    for (const cut of cuts) {
      parts.push(whole.subarray(at, cut));
      at = cut;
    }
    return parts;
  });
  const client = await ImapClient.connect({ port: server.port });
  const reply = await client.ok("FETCH 1:3 (UID FLAGS)");
  assert.equal(reply.text, "FETCH completed");
  assert.deepEqual(reply.untagged, [
    "* 1 FETCH (UID 7 FLAGS (\\Seen))",
    "* 2 FETCH (BODY[] {5}\r\nab\r\nc)",
    '* 3 FETCH (X "\u00e9\u20ac\u00ff")',
  ]);
  await client.logout();
  await server.done;
});

Deno.test("the bench client reports NO and BAD, and rejects a completion it cannot read", async () => {
  const server = scripted((tag) => {
    if (tag === "b1") return [bytes(`${tag} NO [NONEXISTENT] No such mailbox\r\n`)];
    if (tag === "b2") return [bytes(`${tag} BAD\r\n`)];
    if (tag === "b3") return [bytes(`${tag} MAYBE later\r\n`)];
    return [bytes(`${tag} OK LOGOUT done\r\n`)];
  });
  const client = await ImapClient.connect({ port: server.port });
  const no = await client.command("SELECT Nowhere");
  assert.deepEqual([no.status, no.text], ["NO", "[NONEXISTENT] No such mailbox"]);
  const bad = await client.command("NOOP");
  assert.deepEqual([bad.status, bad.text], ["BAD", ""]);
  await assert.rejects(client.command("NOOP"), /Bad completion: MAYBE later/);
  await client.logout();
  await server.done;
});
