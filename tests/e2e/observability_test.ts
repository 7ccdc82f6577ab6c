/**
 * Metrics and health with real consumers: Debian's Prometheus scrapes a running Postern while
 * Python's imaplib logs in and fetches, and its HTTP API shows the handshake, authentication
 * and command counters rising; `promtool check metrics` accepts the exposition; /healthz and
 * /readyz answer, with the reason when the directory is down.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { startPostern } from "../_support/postern.ts";
import { describeRun, freePort, runPython } from "../_support/imap_clients.ts";
import { run } from "../_support/command.ts";
import { ensureDevPki, issueClientCertificate } from "../../server/cli/dev_pki.ts";

const PROMETHEUS = "/usr/bin/prometheus";
const hasPrometheus = (() => {
  try {
    return Deno.statSync(PROMETHEUS).isFile;
  } catch {
    return false;
  }
})();

/** Logs in `rounds` times as each user, SELECTs INBOX and FETCHes every message. */
const IMAP_ROUNDS = `
import imaplib, ssl, sys
port, ca, rounds = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
ctx = ssl.create_default_context(cafile=ca)
for _ in range(rounds):
    for user in ("alice", "bob"):
        m = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=ctx, timeout=10)
        m.login(user, "pw-" + user)
        if m.select("INBOX")[1][0] == b"0":
            m.append("INBOX", None, None, b"Subject: hi\\r\\n\\r\\nHello\\r\\n")
            m.select("INBOX")
        m.fetch("1:*", "(FLAGS BODY.PEEK[])")
        m.logout()
print("done")
`;

interface Prometheus {
  readonly port: number;
  /** The value of an instant query that returns one series, or null when it has none yet. */
  query(expr: string): Promise<number | null>;
  stop(): Promise<void>;
}

async function startPrometheus(
  dir: string,
  target: string,
  scrapeOptions: readonly string[] = [],
): Promise<Prometheus> {
  const config = join(dir, "prometheus.yml");
  await Deno.writeTextFile(
    config,
    [
      "global:",
      "  scrape_interval: 1s",
      "  scrape_timeout: 1s",
      "scrape_configs:",
      "  - job_name: postern",
      ...scrapeOptions.map((line) => `    ${line}`),
      "    static_configs:",
      `      - targets: ["${target}"]`,
      "",
    ].join("\n"),
  );
  const port = freePort();
  const child = new Deno.Command(PROMETHEUS, {
    args: [
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(dir, "tsdb")}`,
      `--web.listen-address=127.0.0.1:${port}`,
      "--log.level=warn",
    ],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const base = `http://127.0.0.1:${port}`;
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch {
      // Already gone.
    }
    await child.status;
    await stderr;
  };
  const ready = await poll(async () => {
    const response = await fetch(`${base}/-/ready`).catch(() => null);
    await response?.body?.cancel();
    return response?.ok === true ? true : null;
  }, 20_000);
  if (ready === null) {
    await stop();
    throw new Error(`Prometheus did not start: ${await stderr}`);
  }
  return {
    port,
    async query(expr) {
      const response = await fetch(`${base}/api/v1/query?query=${encodeURIComponent(expr)}`);
      const body = await response.json() as {
        status: string;
        data?: { result: { value: [number, string] }[] };
      };
      assert.equal(body.status, "success", JSON.stringify(body));
      const first = body.data?.result[0];
      return first === undefined ? null : Number(first.value[1]);
    },
    stop,
  };
}

/** Calls `probe` every 200 ms until it gives a value other than null, for at most `ms`. */
async function poll<T>(probe: () => Promise<T | null>, ms: number): Promise<T | null> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== null) return value;
    await new Promise((r) => setTimeout(r, 200));
  }
  return null;
}

const COUNTERS = {
  handshakes: 'sum(postern_tls_handshakes_total{result="ok"})',
  logins: 'sum(postern_authentications_total{mechanism="password",result="ok"})',
  fetches: 'sum(postern_imap_commands_total{command="FETCH",result="ok"})',
} as const;

Deno.test({
  name: "Prometheus scrapes Postern and sees handshake, login and FETCH counters rise",
  ignore: !hasPrometheus,
  async fn() {
    const p = await startPostern({
      users: [{ name: "alice", password: "pw-alice" }, { name: "bob", password: "pw-bob" }],
      extraYaml: "metrics:\n  listen: 127.0.0.1:0\n",
    });
    const dir = await Deno.makeTempDir({ prefix: "postern-prometheus-" });
    let prometheus: Prometheus | null = null;
    try {
      const metricsPort = p.handle.metricsAddress!.port;
      const rounds = async (n: number) => {
        const r = await runPython(IMAP_ROUNDS, [String(p.implicitPort), p.caPath, String(n)]);
        assert.equal(r.code, 0, describeRun(r));
      };
      await rounds(2);
      prometheus = await startPrometheus(dir, `127.0.0.1:${metricsPort}`);
      const first: Record<string, number> = {};
      for (const [name, expr] of Object.entries(COUNTERS)) {
        const value = await poll(() => prometheus!.query(expr), 20_000);
        assert.ok(value !== null && value > 0, `${name}: ${value}`);
        first[name] = value;
      }
      assert.ok(first.logins! >= 4, `logins: ${first.logins}`);
      await rounds(2);
      for (const [name, expr] of Object.entries(COUNTERS)) {
        const later = await poll(async () => {
          const value = await prometheus!.query(expr);
          return value !== null && value > first[name]! ? value : null;
        }, 20_000);
        assert.ok(later !== null, `${name} did not rise above ${first[name]}`);
      }
      // Prometheus saw the target as up the whole time.
      assert.equal(await prometheus.query('up{job="postern"}'), 1);
    } finally {
      await prometheus?.stop();
      await p.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name: "promtool check metrics accepts the exposition; /healthz and /readyz answer",
  ignore: !hasPrometheus,
  async fn() {
    const p = await startPostern({
      users: [{ name: "alice", password: "pw-alice" }, { name: "bob", password: "pw-bob" }],
      extraYaml: "metrics:\n  listen: 127.0.0.1:0\n",
    });
    try {
      const base = `http://127.0.0.1:${p.handle.metricsAddress!.port}`;
      const r = await runPython(IMAP_ROUNDS, [String(p.implicitPort), p.caPath, "1"]);
      assert.equal(r.code, 0, describeRun(r));
      // A client that offers only TLS 1.1 gets protocol_version, counted as an alert sent.
      const old = await run("openssl", [
        "s_client",
        "-connect",
        `127.0.0.1:${p.implicitPort}`,
        "-tls1_1",
        "-cipher",
        "DEFAULT@SECLEVEL=0",
      ], { stdin: "" });
      assert.notEqual(old.code, 0);
      const response = await fetch(`${base}/metrics`);
      assert.equal(response.status, 200);
      assert.match(response.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
      const text = await response.text();
      const check = await run("promtool", ["check", "metrics"], { stdin: text });
      assert.equal(check.code, 0, describeRun(check));
      assert.match(text, /^postern_tls_alerts_sent_total\{description="protocol_version"\} 1$/m);
      assert.match(text, /^postern_imap_commands_total\{command="LOGIN",result="ok"\} 2$/m);
      assert.match(text, /^postern_store_database_size_bytes \d+$/m);
      // No label carries a user name or an address.
      assert.doesNotMatch(text, /alice|bob|127\.0\.0\.1:\d+"[^}]*result/);

      for (const [path, status, body] of [["/healthz", 200, "ok\n"], ["/readyz", 200, "ready\n"]]) {
        const answer = await fetch(`${base}${path}`);
        assert.equal(answer.status, status);
        assert.equal(await answer.text(), body);
      }
      const missing = await fetch(`${base}/nothing`);
      assert.equal(missing.status, 404);
      await missing.body?.cancel();
      const post = await fetch(`${base}/metrics`, { method: "POST" });
      assert.equal(post.status, 405);
      await post.body?.cancel();
    } finally {
      await p.stop();
    }
  },
});

Deno.test("/readyz says why when the directory does not answer", async () => {
  const secrets = await Deno.makeTempDir({ prefix: "postern-secrets-" });
  const password = join(secrets, "ldap.pw");
  await Deno.writeTextFile(password, "secret\n");
  const p = await startPostern({
    extraYaml: [
      "metrics: { listen: 127.0.0.1:0 }",
      "directory:",
      `  url: ldap://127.0.0.1:${freePort()}`,
      "  bind_dn: cn=postern,dc=example,dc=org",
      `  bind_password_file: ${password}`,
      "  base_dn: ou=people,dc=example,dc=org",
      "  timeout: 2s",
      "",
    ].join("\n"),
  });
  try {
    const base = `http://127.0.0.1:${p.handle.metricsAddress!.port}`;
    const ready = await fetch(`${base}/readyz`);
    assert.equal(ready.status, 503);
    assert.match(await ready.text(), /^not ready: directory: Directory unreachable: .+\n$/);
    const health = await fetch(`${base}/healthz`);
    assert.equal(health.status, 200);
    await health.body?.cancel();
  } finally {
    await p.stop();
    await Deno.remove(secrets, { recursive: true });
  }
});

Deno.test({
  name: "Prometheus scrapes over TLS with a client certificate; a scraper without one is refused",
  ignore: !hasPrometheus,
  async fn() {
    // The scrapers' own CA, separate from the one that issues mail clients' certificates.
    const scrapers = await Deno.makeTempDir({ prefix: "postern-scrapers-" });
    const scraperPki = await ensureDevPki(scrapers);
    const scraper = await issueClientCertificate(scrapers, "prometheus");
    const p = await startPostern({
      users: [{ name: "alice", password: "pw-alice" }, { name: "bob", password: "pw-bob" }],
      extraYaml: `metrics: { listen: 127.0.0.1:0, client_ca: [${scraperPki.caCertificate}] }\n`,
    });
    let prometheus: Prometheus | null = null;
    try {
      const port = p.handle.metricsAddress!.port;
      const withCert = Deno.createHttpClient({
        caCerts: [p.caPem],
        cert: await Deno.readTextFile(scraper.certificate),
        key: await Deno.readTextFile(scraper.key),
      });
      const withoutCert = Deno.createHttpClient({ caCerts: [p.caPem] });
      try {
        const ok = await fetch(`https://127.0.0.1:${port}/healthz`, { client: withCert });
        assert.equal(ok.status, 200);
        assert.equal(await ok.text(), "ok\n");
        await assert.rejects(() =>
          fetch(`https://127.0.0.1:${port}/metrics`, { client: withoutCert })
        );
        // A mail client's certificate is not a scraper's.
        const mail = await p.clientCertificate("alice");
        const wrongCa = Deno.createHttpClient({
          caCerts: [p.caPem],
          cert: await Deno.readTextFile(mail.certPath),
          key: await Deno.readTextFile(mail.keyPath),
        });
        await assert.rejects(() => fetch(`https://127.0.0.1:${port}/metrics`, { client: wrongCa }));
        wrongCa.close();
        const bad = await run("curl", [
          "-s",
          "-o",
          "/dev/null",
          "-w",
          "%{http_code}",
          "--cacert",
          p.caPath,
          "--cert",
          scraper.certificate,
          "--key",
          scraper.key,
          "-X",
          "DELETE",
          `https://127.0.0.1:${port}/metrics`,
        ]);
        assert.equal(bad.stdout, "405", describeRun(bad));
      } finally {
        withCert.close();
        withoutCert.close();
      }
      const r = await runPython(IMAP_ROUNDS, [String(p.implicitPort), p.caPath, "1"]);
      assert.equal(r.code, 0, describeRun(r));
      prometheus = await startPrometheus(scrapers, `127.0.0.1:${port}`, [
        "scheme: https",
        "tls_config:",
        `  ca_file: ${p.caPath}`,
        `  cert_file: ${scraper.certificate}`,
        `  key_file: ${scraper.key}`,
      ]);
      const logins = await poll(() => prometheus!.query(COUNTERS.logins), 20_000);
      assert.equal(logins, 2);
      assert.equal(await prometheus.query('up{job="postern"}'), 1);
    } finally {
      await prometheus?.stop();
      await p.stop();
      await Deno.remove(scrapers, { recursive: true }).catch(() => {});
    }
  },
});
