/**
 * Starts a HandshakeAhead in a process run without the `setPriority` system permission and
 * prints what its thread reported when it started, as JSON (ahead_test.ts).
 */
import { HandshakeAhead } from "../../../protocol/crypto/ahead.ts";

const work = new HandshakeAhead({ p256: [], x25519: true }, 8);
try {
  console.log(JSON.stringify(await work.started));
} finally {
  await work.stop();
}
