import assert from "node:assert/strict";
import { configure, type LogRecord, reset } from "@logtape/logtape";
import { Directory } from "../../../server/directory/mod.ts";
import { startSlapd } from "../../_support/slapd.ts";
import { TestCa } from "./_certs.ts";
import { configFor } from "./_config.ts";

Deno.test("Directory log lines name the case and never carry a password", async () => {
  const ca = await TestCa.create();
  const records: LogRecord[] = [];
  await configure({
    sinks: { memory: (r: LogRecord) => records.push(r) },
    loggers: [
      { category: ["postern", "directory"], lowestLevel: "debug", sinks: ["memory"] },
      { category: ["logtape", "meta"], lowestLevel: "error", sinks: [] },
    ],
  });
  const alice = await ca.issue({ cn: "alice", email: "alice@example.org" });
  const stale = await ca.issue({ cn: "alice", email: "alice@example.org" });
  const carol = await ca.issue({ cn: "carol", email: "carol@example.org" });
  const password = "p4ss-w0rd-never-logged";
  const ldap = await startSlapd({
    users: [{ uid: "alice", mail: "alice@example.org", password, certificates: [alice.der] }],
  });
  try {
    await using dir = new Directory(configFor(ldap));
    await dir.checkCertificate(alice.identity);
    await dir.checkCertificate(stale.identity);
    await dir.checkCertificate(carol.identity);
    await dir.verifyPassword("alice", password);
    await dir.verifyPassword("alice", `${password}-wrong`);
    await dir.verifyPassword("alice", "");
  } finally {
    await ldap.stop();
    await ca.remove();
    await reset();
  }
  const text = records.map((r) => JSON.stringify([r.message, r.properties])).join("\n");
  for (const reason of ["not_in_entry", "no_entry", "invalid_credentials", "empty_password"]) {
    assert.match(text, new RegExp(reason));
  }
  assert.ok(!text.includes(password), "a user password was logged");
  assert.ok(!text.includes(ldap.servicePassword), "the bind password was logged");
});
