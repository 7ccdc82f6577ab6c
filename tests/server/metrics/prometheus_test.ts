import assert from "node:assert/strict";
import { commandLabel, PrometheusMetrics } from "../../../server/metrics/prometheus.ts";
import { KeyCounters, teeMetrics } from "../../../server/metrics/counters.ts";
import { NO_METRICS } from "../../../server/metrics/metrics.ts";
import { instrumentStore } from "../../../server/metrics/store.ts";
import { FastHistogram } from "../../../server/metrics/fast_histogram.ts";
import { MemoryMailStore } from "../../../mailstore/memory/mod.ts";

/** The sample lines of an exposition, `name{labels} value`, comments left out. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const at = line.lastIndexOf(" ");
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

function feed(m: PrometheusMetrics): void {
  m.connectionOpened("127.0.0.1:9993/implicit");
  m.connectionOpened("127.0.0.1:9993/implicit");
  m.connectionClosed("127.0.0.1:9993/implicit");
  m.bytesReceived(100);
  m.bytesSent(250);
  m.handshake({
    version: "TLSv1.3",
    suite: "TLS_CHACHA20_POLY1305_SHA256",
    group: "x25519",
    result: "ok",
    seconds: 0.003,
  });
  m.handshake({ version: "none", suite: "none", group: "none", result: "alert", seconds: 0.001 });
  m.tlsAlert("sent", "protocol_version");
  m.authentication("password", "ok");
  m.authentication("password", "throttled");
  m.imapCommand("UID FETCH", "ok", 0.0004);
  m.imapCommand("XYZZY", "bad", 0.0001);
  m.imapCommand("", "bad", 0.0001);
  m.directoryLookup("certificate", "not_in_entry", 0.02);
  m.directoryCacheHit();
  m.revocation("handshake");
  m.storeOperation("getMessages", true, 0.0002);
  m.storeOperation("getMessages", false, 0.0002);
}

Deno.test("PrometheusMetrics exposes every hook under its Prometheus name", async () => {
  const m = new PrometheusMetrics({ databaseBytes: () => 4096 });
  try {
    feed(m);
    const s = samples(await m.expose());
    const expect = (key: string, value: number) => assert.equal(s.get(key), value, key);
    expect('postern_connections_accepted_total{listener="127.0.0.1:9993/implicit"}', 2);
    expect('postern_connections_open{listener="127.0.0.1:9993/implicit"}', 1);
    expect("postern_received_bytes_total", 100);
    expect("postern_sent_bytes_total", 250);
    expect(
      'postern_tls_handshakes_total{version="TLSv1.3",suite="TLS_CHACHA20_POLY1305_SHA256",group="x25519",result="ok"}',
      1,
    );
    expect('postern_tls_handshake_duration_seconds_bucket{le="0.005",result="ok"}', 1);
    expect('postern_tls_handshake_duration_seconds_count{result="alert"}', 1);
    expect('postern_tls_alerts_sent_total{description="protocol_version"}', 1);
    expect('postern_authentications_total{mechanism="password",result="throttled"}', 1);
    expect('postern_imap_commands_total{command="UID FETCH",result="ok"}', 1);
    expect('postern_imap_commands_total{command="other",result="bad"}', 2);
    expect('postern_directory_lookups_total{kind="certificate",result="not_in_entry"}', 1);
    expect("postern_directory_cache_hits_total", 1);
    expect('postern_directory_revocations_total{point="handshake"}', 1);
    expect('postern_store_operation_duration_seconds_count{operation="getMessages"}', 2);
    expect('postern_store_errors_total{operation="getMessages"}', 1);
    expect("postern_store_database_size_bytes", 4096);
    assert.ok((s.get("process_resident_memory_bytes") ?? 0) > 0);
    assert.ok((s.get("postern_heap_used_bytes") ?? 0) > 0);
    assert.ok(s.has("postern_event_loop_lag_seconds"));
  } finally {
    m.close();
  }
});

Deno.test("every exported name follows the Prometheus conventions", async () => {
  const m = new PrometheusMetrics();
  try {
    feed(m);
    const text = await m.expose();
    for (const match of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
      const [, name, type] = match;
      assert.match(name!, /^(postern|process)_[a-z0-9_]+$/);
      if (type === "counter") assert.match(name!, /_total$/, name);
      if (type === "histogram") assert.match(name!, /_seconds$/, name);
      if (type === "gauge") assert.doesNotMatch(name!, /_total$/, name);
    }
  } finally {
    m.close();
  }
});

Deno.test("commandLabel() keeps the command table's names and folds the rest into other", () => {
  assert.equal(commandLabel("FETCH"), "FETCH");
  assert.equal(commandLabel("UID MOVE"), "UID MOVE");
  assert.equal(commandLabel("fetch"), "other");
  assert.equal(commandLabel("X-ALICE@EXAMPLE.ORG"), "other");
  assert.equal(commandLabel(""), "other");
});

Deno.test("teeMetrics() feeds both sides and KeyCounters counts the key figures", () => {
  const a = new KeyCounters();
  const b = new KeyCounters();
  const both = teeMetrics(a, b);
  both.connectionOpened("l");
  both.handshake({ version: "none", suite: "none", group: "none", result: "timeout", seconds: 1 });
  both.tlsAlert("sent", "close_notify");
  both.tlsAlert("received", "bad_record_mac");
  both.imapCommand("NOOP", "no", 0);
  both.authentication("external", "ok");
  for (const k of [a, b]) {
    assert.equal(k.counts.connectionsAccepted, 1);
    assert.equal(k.counts.handshakesFailed, 1);
    assert.equal(k.counts.alertsSent, 0);
    assert.equal(k.counts.alertsReceived, 1);
    assert.equal(k.counts.commandsNo, 1);
    assert.equal(k.counts.authenticationsOk, 1);
  }
  // The no-op default answers every hook.
  NO_METRICS.imapCommand("NOOP", "ok", 0);
});

Deno.test("instrumentStore() times each call and passes results and errors through", async () => {
  const calls: [string, boolean][] = [];
  const metrics = {
    ...NO_METRICS,
    storeOperation: (op: string, ok: boolean) => calls.push([op, ok]),
  };
  const store = instrumentStore(new MemoryMailStore(), metrics);
  try {
    await store.createAccount("alice", null);
    assert.equal((await store.getAccount("alice"))?.name, "alice");
    await assert.rejects(() => store.createAccount("alice", null));
    assert.deepEqual(calls, [["createAccount", true], ["getAccount", true], [
      "createAccount",
      false,
    ]]);
  } finally {
    await store.close();
  }
});

Deno.test("FastHistogram counts a value in the first bucket it does not exceed, +Inf above all", async () => {
  const h = new FastHistogram("t_seconds", "t", "op", [0.1, 1]);
  for (const v of [0.1, 0.5, 1, 7]) h.observe("read", v);
  const { values } = await h.get();
  const byName = values.map((v) => `${v.metricName}${JSON.stringify(v.labels)} ${v.value}`);
  assert.deepEqual(byName, [
    't_seconds_bucket{"le":0.1,"op":"read"} 1',
    't_seconds_bucket{"le":1,"op":"read"} 3',
    't_seconds_bucket{"le":"+Inf","op":"read"} 4',
    't_seconds_sum{"op":"read"} 8.6',
    't_seconds_count{"op":"read"} 4',
  ]);
  h.reset();
  assert.deepEqual((await h.get()).values, []);
});
