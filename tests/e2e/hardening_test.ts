/**
 * Issue 10 against a real server over sockets: an unauthenticated client cannot stall the
 * server with a hostile certificate chain, bloat it with literals before login, flood it with
 * KeyUpdates, use an id-RSASSA-PSS key, map its certificate to the wrong account, or dodge the
 * per-user limit with PREAUTH. Nothing here measures time: each test asserts on the work
 * refused (the alert, the BAD) and on an unrelated client still being served.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DATABASE_FILE } from "../../server/serve/data_dir.ts";
import { configure, type LogRecord, reset } from "@logtape/logtape";
import { decodePem } from "../../protocol/x509/pem.ts";
import { MAX_KEY_UPDATES_WITHOUT_DATA } from "../../protocol/tls/_connection.ts";
import { EngineClient } from "../_support/engine_client.ts";
import { hostileRsaChain } from "../_support/hostile.ts";
import { RawImap } from "../_support/imap_clients.ts";
import { openssl } from "../_support/openssl_pki.ts";
import { issueRawClientCertificate } from "../_support/directory_e2e.ts";
import { startPostern } from "../_support/postern.ts";

const postern = await startPostern({
  users: [{ name: "alice", password: "wonderland" }, { name: "carol" }],
  clientAuth: "optional",
});
const caDer = decodePem(postern.caPem)[0]!.der;

/** An unrelated client: greeting, LOGIN and LOGOUT over TLS. */
async function honestLogin(): Promise<void> {
  const c = await RawImap.tls(postern.implicitPort, postern.caPem);
  try {
    const greeting = await c.readResponse();
    assert.match(greeting?.text ?? "", /^\* OK /);
    const r = await c.command("LOGIN alice wonderland");
    assert.equal(r.status, "OK", r.tagged);
    await c.command("LOGOUT");
  } finally {
    c.conn.close();
  }
}

for (
  const [what, options, alert] of [
    ["16383-bit moduli and exponents (the reported attack)", {}, "bad_certificate"],
    ["16383-bit moduli, e = 65537", { exponent: 65537n }, "unsupported_certificate"],
    [
      "8192-bit moduli, e = 2^32 - 1 (allowed keys, unknown signer)",
      { modulusBits: 8192, exponent: 2n ** 32n - 1n },
      "bad_certificate",
    ],
  ] as const
) {
  Deno.test(`a client chain of ${what} gets ${alert} and the server stays responsive`, async () => {
    const hostile = hostileRsaChain(caDer, options);
    const attackers = await Promise.all(
      Array.from(
        { length: 4 },
        () => EngineClient.connect(postern.implicitPort, { certificate: hostile }),
      ),
    );
    try {
      // An unrelated client is served while (and after) the chains are processed.
      await honestLogin();
      for (const a of attackers) {
        assert.ok(await a.waitFor(() => a.fatal !== null), "the server answered with an alert");
        assert.deepEqual(a.fatal, { alert, sentByUs: false });
        assert.equal(a.text, "", "no IMAP greeting");
      }
      await honestLogin();
    } finally {
      await Promise.all(attackers.map((a) => a.dispose()));
    }
  });
}

Deno.test("a client certificate with an id-RSASSA-PSS key is refused with unsupported_certificate", async () => {
  const dir = postern.certsDir;
  await openssl([
    "genpkey",
    "-algorithm",
    "RSA-PSS",
    "-pkeyopt",
    "rsa_keygen_bits:2048",
    "-pkeyopt",
    "rsa_pss_keygen_md:sha256",
    "-out",
    join(dir, "pss.key"),
  ]);
  await Deno.writeTextFile(join(dir, "pss.ext"), "extendedKeyUsage = clientAuth\n");
  await openssl([
    "req",
    "-new",
    "-key",
    join(dir, "pss.key"),
    "-subj",
    "/CN=alice",
    "-out",
    join(dir, "pss.csr"),
  ]);
  await openssl([
    "x509",
    "-req",
    "-in",
    join(dir, "pss.csr"),
    "-CA",
    postern.caPath,
    "-CAkey",
    join(dir, "ca.key"),
    "-set_serial",
    "77",
    "-days",
    "1",
    "-extfile",
    join(dir, "pss.ext"),
    "-out",
    join(dir, "pss.pem"),
  ]);
  // OpenSSL itself never presents such a key here (the server offers no rsa_pss_pss scheme),
  // so our own client engine sends it.
  const pssDer = decodePem(await Deno.readTextFile(join(dir, "pss.pem")))[0]!.der;
  const client = await EngineClient.connect(postern.implicitPort, {
    certificate: { chain: [pssDer], privateKey: hostileRsaChain(caDer).privateKey },
  });
  try {
    assert.ok(await client.waitFor(() => client.fatal !== null));
    assert.deepEqual(client.fatal, { alert: "unsupported_certificate", sentByUs: false });
    assert.equal(client.text, "", "no IMAP greeting");
  } finally {
    await client.dispose();
  }
  await honestLogin();
});

Deno.test("a KeyUpdate flood without application data ends with unexpected_message", async () => {
  const flood = await EngineClient.connect(postern.implicitPort);
  const batch = await EngineClient.connect(postern.implicitPort);
  try {
    await flood.waitForText(/^\* OK /);
    await batch.waitForText(/^\* OK /);
    // A batch of update requests with a command after them is answered and served.
    await batch.keyUpdates(10, "a1 NOOP\r\n");
    assert.match(await batch.waitForText(/a1 OK/), /a1 OK/);
    assert.equal(batch.fatal, null);
    // A run longer than the bound, with no application data, is closed.
    await flood.keyUpdates(MAX_KEY_UPDATES_WITHOUT_DATA + 1);
    assert.ok(await flood.waitFor(() => flood.fatal !== null));
    assert.deepEqual(flood.fatal, { alert: "unexpected_message", sentByUs: false });
    await batch.send("a2 NOOP\r\n");
    assert.match(await batch.waitForText(/a2 OK/), /a2 OK/);
  } finally {
    await flood.dispose();
    await batch.dispose();
  }
});

Deno.test("literal floods before login are refused without holding the bytes", async () => {
  const connect = () =>
    Promise.all([
      RawImap.plain(postern.starttlsPort),
      RawImap.tls(postern.implicitPort, postern.caPem),
    ]);
  const floods = await connect();
  try {
    for (const c of floods) {
      assert.match((await c.readResponse())?.text ?? "", /^\* OK /);
      // The reported attack, an unfinished LOGIN with 999 small literals, ends the connection
      // at the 17th literal.
      await c.write("x1 LOGIN " + "{1+}\r\nx ".repeat(999));
      assert.equal((await c.readResponse())?.text, "* BYE [ALERT] Too many literals");
      assert.equal(await c.readResponse(), null, "closed");
    }
  } finally {
    for (const c of floods) await c.close();
  }
  const clients = await connect();
  try {
    for (const c of clients) {
      assert.match((await c.readResponse())?.text ?? "", /^\* OK /);
      // A few literals too many: refused, and the connection goes on.
      await c.write("x2 LOGIN " + "{1+}\r\nx ".repeat(6) + "\r\n");
      assert.equal((await c.readResponse())?.text, "x2 BAD Too many literals");
      // Literals within their own limit but over the per-command total.
      const big = "y".repeat(8000);
      await c.write(`x3 LOGIN {8000+}\r\n${big} {8000+}\r\n${big} {8000+}\r\n${big}\r\n`);
      assert.equal((await c.readResponse())?.text, "x3 NO [TOOBIG] Command too large");
      assert.equal((await c.command("NOOP")).status, "OK");
    }
  } finally {
    for (const c of clients) await c.close();
  }
  await honestLogin();
});

Deno.test("a client that pipelines thousands of commands before login is cut off", async () => {
  const c = await RawImap.tls(postern.implicitPort, postern.caPem);
  try {
    assert.match((await c.readResponse())?.text ?? "", /^\* OK /);
    await c.write("a CAPABILITY\r\n".repeat(5000));
    const seen = await c.readUntil((r) => r.text.startsWith("* BYE"), 10_000);
    assert.equal(seen?.at(-1)?.text, "* BYE Too many commands before login");
    assert.equal(seen.filter((r) => r.text.startsWith("a OK")).length, 100);
  } finally {
    await c.close();
  }
  await honestLogin();
});

Deno.test("without a directory, a subject with several CNs logs in as nobody", async () => {
  const cert = await issueRawClientCertificate(
    postern.certsDir,
    "multi-cn",
    "alice",
    "alice@localhost",
    [[{ type: "DC", value: "example" }], [{ type: "CN", value: "Users" }], [{
      type: "CN",
      value: "alice",
    }]],
  );
  const c = await RawImap.tls(postern.implicitPort, postern.caPem, {
    cert: await Deno.readTextFile(cert.certPath),
    key: await Deno.readTextFile(cert.keyPath),
  });
  try {
    await c.readResponse();
    const r = await c.command("AUTHENTICATE EXTERNAL =");
    assert.equal(r.status, "NO", r.tagged);
  } finally {
    c.conn.close();
  }
});

Deno.test("tls.certificate_username: email-localpart maps a certificate by its email address", async () => {
  const server = await startPostern({
    users: [{ name: "carol" }],
    tlsYaml: "  certificate_username: email-localpart",
  });
  try {
    const cert = await server.clientCertificate("zed", { email: "carol@example.org" });
    const c = await RawImap.tls(server.implicitPort, server.caPem, {
      cert: await Deno.readTextFile(cert.certPath),
      key: await Deno.readTextFile(cert.keyPath),
    });
    try {
      await c.readResponse();
      const r = await c.command("AUTHENTICATE EXTERNAL =");
      assert.equal(r.status, "OK", r.tagged);
      assert.match((await c.command("NAMESPACE")).tagged, /OK/);
    } finally {
      c.conn.close();
    }
  } finally {
    await server.stop();
  }
});

Deno.test("a PREAUTH greeting counts against the per-user limit and names the user", async () => {
  const records: LogRecord[] = [];
  await configure({
    reset: true,
    sinks: { memory: (r: LogRecord) => records.push(r) },
    loggers: [
      { category: ["postern", "access"], sinks: ["memory"], lowestLevel: "info" },
      { category: ["logtape", "meta"], sinks: [], lowestLevel: "warning" },
    ],
  });
  const server = await startPostern({
    users: [{ name: "dave" }],
    imapYaml: "  preauth_with_certificate: true",
    limitsYaml: "  max_connections_per_user: 1",
  });
  try {
    const cert = await server.clientCertificate("dave");
    const credentials = {
      cert: await Deno.readTextFile(cert.certPath),
      key: await Deno.readTextFile(cert.keyPath),
    };
    const first = await RawImap.tls(server.implicitPort, server.caPem, credentials);
    assert.match((await first.readResponse())?.text ?? "", /^\* PREAUTH /);
    const second = await RawImap.tls(server.implicitPort, server.caPem, credentials);
    // The limit is taken by the PREAUTH session: the second gets the ordinary greeting, and
    // its login is refused for the same reason.
    assert.match((await second.readResponse())?.text ?? "", /^\* OK /);
    assert.equal((await second.command("AUTHENTICATE EXTERNAL =")).status, "NO");
    await second.command("LOGOUT");
    second.conn.close();
    await first.command("LOGOUT");
    first.conn.close();
    const third = await RawImap.tls(server.implicitPort, server.caPem, credentials);
    assert.match((await third.readResponse())?.text ?? "", /^\* PREAUTH /, "the slot was freed");
    await third.command("LOGOUT");
    third.conn.close();
  } finally {
    await server.stop();
    await reset();
  }
  const users = records.map((r) => r.properties["user"]);
  assert.ok(users.filter((u) => u === "dave").length >= 2, JSON.stringify(users));
});

Deno.test("the running server's data folder is 0700 and its database 0600", () => {
  const data = join(postern.dir, "data");
  assert.equal((Deno.statSync(data).mode ?? 0) & 0o777, 0o700);
  for (const f of ["", "-wal", "-shm"].map((s) => DATABASE_FILE + s)) {
    try {
      assert.equal((Deno.statSync(join(data, f)).mode ?? 0) & 0o777, 0o600, f);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
});

Deno.test("stop the shared server", async () => {
  await postern.stop();
});
