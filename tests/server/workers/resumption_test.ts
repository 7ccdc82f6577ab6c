/**
 * TLS resumption with two Workers against Python's ssl (OpenSSL): a TLS 1.2 session cached by
 * its ID in one Worker resumes in the other, a TLS 1.2 ticket too, and a TLS 1.3 ticket's use
 * limit (`tls.tickets.max_uses`) holds for both Workers together.
 */
import assert from "node:assert/strict";
import { describeRun, runPython } from "../../_support/imap_clients.ts";
import { startPostern } from "../../_support/postern.ts";
import { PY_VISIT } from "./_visit.ts";

/**
 * One full handshake, then reconnections offering its session (the first one's, each time)
 * until every Worker took at least `per` of them (bounded); prints each connection's Worker
 * and whether it resumed. argv: port, CA, "1.2-id" | "1.2-ticket" | "1.3", per.
 */
const VISITS = `
import json, re, socket, ssl, sys
port, ca, mode, per = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
ctx = ssl.create_default_context(cafile=ca)
if mode.startswith("1.2"):
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
else:
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
if mode == "1.2-id":
    ctx.options |= ssl.OP_NO_TICKET
${PY_VISIT}
worker, reused, session = visit(None)
seen = [{"worker": worker, "reused": reused}]
for _ in range(60):
    w, r, _ = visit(session)
    seen.append({"worker": w, "reused": r})
    counts = {}
    for v in seen[1:]:
        counts[v["worker"]] = counts.get(v["worker"], 0) + 1
    if len(counts) >= 2 and min(counts.values()) >= per: break
print(json.dumps(seen))
`;

interface Visit {
  readonly worker: string;
  readonly reused: boolean;
}

Deno.test({
  name: "TLS resumption state is common to both Workers",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const postern = await startPostern({
      users: [{ name: "alice", password: "pw" }],
      workers: 2,
      tlsYaml: "  tickets:\n    max_uses: 2",
    });
    const visits = async (mode: string, per: number): Promise<Visit[]> => {
      const result = await runPython(VISITS, [
        String(postern.implicitPort),
        postern.caPath,
        mode,
        String(per),
      ]);
      assert.equal(result.code, 0, describeRun(result));
      return JSON.parse(result.stdout) as Visit[];
    };
    try {
      for (const mode of ["1.2-id", "1.2-ticket"]) {
        await t.step(
          `a TLS 1.2 session (${mode}) made in one Worker resumes in the other`,
          async () => {
            const seen = await visits(mode, 1);
            const first = seen[0]!;
            assert.equal(first.reused, false);
            const across = seen.slice(1).find((s) => s.worker !== first.worker);
            assert.ok(across, `every connection reached Worker ${first.worker}`);
            assert.equal(across.reused, true, JSON.stringify(seen));
          },
        );
      }
      await t.step("a TLS 1.3 ticket resumes max_uses connections in total", async () => {
        // Three offers to each Worker: with a count per Worker, four would resume.
        const seen = await visits("1.3", 3);
        const again = seen.slice(1);
        assert.ok(new Set(again.map((s) => s.worker)).size === 2, JSON.stringify(seen));
        assert.equal(again.filter((s) => s.reused).length, 2, JSON.stringify(seen));
        // The ones refused were full handshakes, and served.
        assert.ok(again.every((s) => s.worker !== null), JSON.stringify(seen));
      });
    } finally {
      await postern.stop();
    }
  },
});
