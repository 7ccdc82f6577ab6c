/// <reference lib="deno.worker" />
/** Owns a HandshakeAhead with a short orphan time, and hands its rings to the test (ahead_test.ts). */
import { HandshakeAhead } from "../../../protocol/crypto/ahead.ts";

const work = new HandshakeAhead(
  { p256: [crypto.getRandomValues(new Uint8Array(32))], x25519: true, beatMs: 20, orphanMs: 1000 },
  8,
);
const ready = () => work.ready(0) === 8 && work.ready("x25519") === 8;
for (let i = 0; i < 200 && !ready(); i++) await new Promise((r) => setTimeout(r, 10));
self.postMessage(work.sharedRings);
