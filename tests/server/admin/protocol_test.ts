import assert from "node:assert/strict";
import { join } from "node:path";
import {
  AdminProtocolError,
  LineSplitter,
  parseRequest,
  parseResponse,
} from "../../../server/admin/protocol.ts";
import { type AdminHandler, startAdminServer } from "../../../server/admin/server.ts";
import { callAdmin } from "../../../server/admin/client.ts";
import { peerMatches } from "../../../server/admin/handler.ts";
import { run } from "../../_support/command.ts";

Deno.test("parseRequest() reads every command of version 1", () => {
  assert.deepEqual(parseRequest('{"v":1,"id":7,"cmd":"who"}'), { v: 1, id: 7, cmd: "who" });
  assert.deepEqual(parseRequest('{"v":1,"id":1,"cmd":"stats"}'), { v: 1, id: 1, cmd: "stats" });
  assert.deepEqual(parseRequest('{"v":1,"id":1,"cmd":"reload"}'), { v: 1, id: 1, cmd: "reload" });
  assert.deepEqual(parseRequest('{"cmd":"kick","user":"alice","id":2,"v":1}'), {
    v: 1,
    id: 2,
    cmd: "kick",
    user: "alice",
  });
  assert.deepEqual(parseRequest('{"v":1,"id":3,"cmd":"kick","peer":"127.0.0.1"}'), {
    v: 1,
    id: 3,
    cmd: "kick",
    peer: "127.0.0.1",
  });
});

Deno.test("parseRequest() refuses malformed requests with a reason and the id it could read", () => {
  const cases: [string, string, number | null][] = [
    ["", "Request is not JSON", null],
    ["who", "Request is not JSON", null],
    ["[1]", "Request is not a JSON object", null],
    ['{"v":1,"cmd":"who"}', "Request needs an integer id", null],
    ['{"v":1,"id":1.5,"cmd":"who"}', "Request needs an integer id", null],
    ['{"v":2,"id":4,"cmd":"who"}', "Unsupported protocol version 2 (this server speaks 1)", 4],
    ['{"id":4,"cmd":"who"}', "Unsupported protocol version null (this server speaks 1)", 4],
    ['{"v":1,"id":5,"cmd":"shutdown"}', 'Unknown command "shutdown"', 5],
    ['{"v":1,"id":5,"cmd":"who","user":"x"}', 'Unknown field "user" in who', 5],
    ['{"v":1,"id":6,"cmd":"kick"}', "kick needs exactly one of user and peer", 6],
    ['{"v":1,"id":6,"cmd":"kick","user":"a","peer":"b"}', "kick needs exactly one", 6],
    ['{"v":1,"id":6,"cmd":"kick","user":""}', "user must be a non-empty string", 6],
    ['{"v":1,"id":6,"cmd":"kick","user":7}', "user must be a non-empty string", 6],
    [`{"v":1,"id":6,"cmd":"kick","peer":"${"x".repeat(2000)}"}`, "peer must be", 6],
  ];
  for (const [line, message, id] of cases) {
    assert.throws(() => parseRequest(line), (e: unknown) => {
      assert.ok(e instanceof AdminProtocolError, line);
      assert.ok(e.message.startsWith(message), `${line}: ${e.message}`);
      assert.equal(e.id, id, line);
      return true;
    });
  }
});

Deno.test("parseResponse() reads results and errors and refuses other versions", () => {
  assert.deepEqual(parseResponse('{"v":1,"id":1,"ok":true,"result":{"kicked":0}}'), {
    v: 1,
    id: 1,
    ok: true,
    result: { kicked: 0 },
  });
  assert.deepEqual(parseResponse('{"v":1,"id":null,"ok":false,"error":"x"}'), {
    v: 1,
    id: null,
    ok: false,
    error: "x",
  });
  assert.throws(() => parseResponse('{"v":9,"ok":true}'), AdminProtocolError);
  assert.throws(() => parseResponse('{"v":1,"ok":false}'), AdminProtocolError);
});

Deno.test("LineSplitter joins fragments, strips CR and caps the line length", () => {
  const enc = new TextEncoder();
  const s = new LineSplitter(16);
  for (const part of ['{"a":', "1}\r\n{", '"b":2}\n']) s.push(enc.encode(part));
  assert.equal(s.next(), '{"a":1}');
  assert.equal(s.next(), '{"b":2}');
  assert.equal(s.next(), null);
  s.push(enc.encode("x".repeat(16)));
  assert.throws(() => s.push(enc.encode("y")), /Line longer than 16 bytes/);
});

Deno.test("peerMatches() takes host:port or a whole host, IPv6 with or without brackets", () => {
  assert.ok(peerMatches("127.0.0.1:5000", "127.0.0.1:5000"));
  assert.ok(peerMatches("127.0.0.1:5000", "127.0.0.1"));
  assert.ok(!peerMatches("127.0.0.1:5000", "127.0.0.1:5001"));
  assert.ok(!peerMatches("127.0.0.10:5000", "127.0.0.1"));
  assert.ok(peerMatches("[::1]:5000", "::1"));
  assert.ok(peerMatches("[::1]:5000", "[::1]"));
  assert.ok(peerMatches("[::1]:5000", "[::1]:5000"));
});

function handler(log: string[]): AdminHandler {
  return {
    who: () => ({ sessions: [] }),
    kick: (target) => (log.push(JSON.stringify(target)), { kicked: 1 }),
    reload: () => Promise.resolve({ taken: false, error: "config.yaml:1:1: nope" }),
    stats: () => ({ counters: { commands: 3 } }),
  };
}

async function rawExchange(path: string, text: string): Promise<string> {
  const conn = await Deno.connect({ transport: "unix", path });
  try {
    await conn.write(new TextEncoder().encode(text));
    let out = "";
    const buf = new Uint8Array(65536);
    while (out.split("\n").length - 1 < text.split("\n").length - 1) {
      const n = await conn.read(buf);
      if (n === null) break;
      out += new TextDecoder().decode(buf.subarray(0, n));
    }
    return out;
  } finally {
    conn.close();
  }
}

Deno.test("the admin socket is 0600, answers in order and survives bad requests", async () => {
  const dir = await Deno.makeTempDir({ prefix: "postern-admin-" });
  const path = join(dir, "admin.sock");
  const log: string[] = [];
  const errors: unknown[] = [];
  const server = await startAdminServer({
    path,
    handler: handler(log),
    onError: (_m, e) => errors.push(e),
  });
  try {
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    const out = await rawExchange(
      path,
      '{"v":1,"id":1,"cmd":"stats"}\nnot json\n{"v":1,"id":2,"cmd":"kick","peer":"::1"}\n',
    );
    assert.deepEqual(out.trimEnd().split("\n").map((l) => JSON.parse(l)), [
      { v: 1, id: 1, ok: true, result: { counters: { commands: 3 } } },
      { v: 1, id: null, ok: false, error: "Request is not JSON" },
      { v: 1, id: 2, ok: true, result: { kicked: 1 } },
    ]);
    assert.deepEqual(log, ['{"peer":"::1"}']);
    const reload = await callAdmin(path, { cmd: "reload" });
    assert.deepEqual(reload, {
      v: 1,
      id: 1,
      ok: true,
      result: { taken: false, error: "config.yaml:1:1: nope" },
    });
    // An overlong line gets an error and the connection ends; the server goes on.
    const long = await rawExchange(path, "x".repeat(70_000) + "\n");
    assert.match(long, /"ok":false,"error":"Line longer than 65536 bytes"/);
    assert.equal((await callAdmin(path, { cmd: "who" })).ok, true);
    // A second server on the same path is refused while the first one answers.
    await assert.rejects(
      () => startAdminServer({ path, handler: handler([]), onError: () => {} }),
      /Another server is listening/,
    );
    assert.deepEqual(errors, []);
  } finally {
    await server.close();
  }
  // The socket is gone after close; a stale socket file is replaced on start.
  await assert.rejects(() => Deno.stat(path), Deno.errors.NotFound);
  // A crashed server leaves its socket file behind (Deno removes its own on close).
  const bound = await run("python3", [
    "-c",
    "import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])",
    path,
  ]);
  assert.equal(bound.code, 0, bound.stderr);
  assert.ok((await Deno.lstat(path)).isSocket);
  const again = await startAdminServer({ path, handler: handler([]), onError: () => {} });
  try {
    assert.equal((await callAdmin(path, { cmd: "who" })).ok, true);
  } finally {
    await again.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("callAdmin() names the socket when nothing listens there", async () => {
  await assert.rejects(
    () => callAdmin("/nonexistent/postern/admin.sock", { cmd: "who" }),
    /cannot reach the admin socket \/nonexistent\/postern\/admin.sock \(no such socket\)/,
  );
});

Deno.test("the admin socket serves a bounded number of connections and closes idle ones", async () => {
  const dir = await Deno.makeTempDir({ prefix: "postern-admin-" });
  const path = join(dir, "admin.sock");
  const server = await startAdminServer({
    path,
    handler: handler([]),
    onError: () => {},
    maxConnections: 2,
    idleTimeoutMs: 200,
  });
  const held: Deno.Conn[] = [];
  try {
    for (let i = 0; i < 2; i++) held.push(await Deno.connect({ transport: "unix", path }));
    // Give the accept loop a turn to count both before the third arrives.
    await new Promise((r) => setTimeout(r, 50));
    const extra = await Deno.connect({ transport: "unix", path });
    assert.equal(await extra.read(new Uint8Array(16)), null);
    extra.close();
    // The two silent ones are closed after the idle timeout; then others are served again.
    for (const conn of held) assert.equal(await conn.read(new Uint8Array(16)), null);
    let answered = false;
    for (let i = 0; i < 20 && !answered; i++) {
      answered = await callAdmin(path, { cmd: "stats" }).then((r) => r.ok, () => false);
      if (!answered) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(answered);
  } finally {
    for (const conn of held) conn.close();
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});
