/**
 * The multi-client state checker (tests/_support/state_checker.ts) over real TLS sockets: 20
 * RawImap clients against a whole Postern (startPostern, SQLite store) share one INBOX and run
 * the random command mix for a bounded number of commands each; no announcement may contradict
 * a client's model, and all clients must end with the same mailbox.
 */
import assert from "node:assert/strict";
import { RawImap } from "../_support/imap_clients.ts";
import { startPostern } from "../_support/postern.ts";
import { rawConnection, runStateChecker } from "../_support/state_checker.ts";

Deno.test({
  name: "20 TLS clients on one mailbox of a real Postern see no contradictory state",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const postern = await startPostern({ users: [{ name: "alice", password: "pw" }] });
    try {
      const result = await runStateChecker(async () => {
        const imap = await RawImap.tls(postern.implicitPort, postern.caPem);
        await imap.greeting();
        const login = await imap.command("LOGIN alice pw");
        assert.equal(login.status, "OK", login.tagged);
        return rawConnection(imap);
      }, { clients: 20, durationMs: 3000, maxCommands: 60, seed: 7 });
      assert.deepEqual(result.errors, [], result.errors.slice(0, 20).join("\n"));
      assert.ok(result.commands > 20 * 10, `only ${result.commands} commands ran`);
    } finally {
      await postern.stop();
    }
  },
});
