import assert from "node:assert/strict";
import { defaultProvider as provider } from "../../../protocol/crypto/mod.ts";
import {
  applicationSecrets,
  earlySecret,
  finishedVerifyData,
  handshakeSecrets,
  nextTrafficSecret,
  trafficKeys,
} from "../../../protocol/tls/key_schedule.ts";
import { Transcript } from "../../../protocol/tls/transcript.ts";
import { suiteByName } from "../../../protocol/tls/wire.ts";
import { hex, toHex } from "./_helpers.ts";
import { RFC8448 } from "./_rfc8448.ts";

const suite = suiteByName("TLS_AES_128_GCM_SHA256");

Deno.test("earlySecret() matches the RFC 8448 Simple 1-RTT trace", () => {
  assert.equal(toHex(earlySecret(provider, suite)), RFC8448.earlySecret);
});

Deno.test("the key schedule reproduces every RFC 8448 Simple 1-RTT secret, key and IV", () => {
  const serverShare = provider.keyShareFromPrivate("x25519", hex(RFC8448.serverPrivateKey));
  const shared = serverShare.computeSecret(hex(RFC8448.clientPublicKey));
  assert.equal(toHex(shared), RFC8448.sharedSecret);

  const t = new Transcript(provider);
  t.add(hex(RFC8448.clientHello));
  t.add(hex(RFC8448.serverHello));
  t.start(suite.hash);
  const hs = handshakeSecrets(provider, suite, shared, t.current());
  assert.equal(toHex(hs.client.secret), RFC8448.clientHandshakeTraffic);
  assert.equal(toHex(hs.server.secret), RFC8448.serverHandshakeTraffic);
  assert.equal(toHex(hs.derived), RFC8448.derivedForMaster);

  const sk = trafficKeys(provider, suite, hs.server);
  assert.equal(toHex(sk.key), RFC8448.serverHandshakeKey);
  assert.equal(toHex(sk.iv), RFC8448.serverHandshakeIv);
  const ck = trafficKeys(provider, suite, hs.client);
  assert.equal(toHex(ck.key), RFC8448.clientHandshakeKey);
  assert.equal(toHex(ck.iv), RFC8448.clientHandshakeIv);

  t.add(hex(RFC8448.encryptedExtensions));
  t.add(hex(RFC8448.certificate));
  t.add(hex(RFC8448.certificateVerify));
  assert.equal(
    toHex(finishedVerifyData(provider, suite, hs.server, t.current())),
    RFC8448.serverFinished.slice(8),
  );
  t.add(hex(RFC8448.serverFinished));

  const app = applicationSecrets(provider, suite, hs, t.current());
  assert.equal(toHex(app.masterSecret), RFC8448.masterSecret);
  assert.equal(toHex(app.client.secret), RFC8448.clientApplicationTraffic);
  assert.equal(toHex(app.server.secret), RFC8448.serverApplicationTraffic);
  assert.equal(toHex(app.exporter), RFC8448.exporterMaster);
  const sa = trafficKeys(provider, suite, app.server);
  assert.equal(toHex(sa.key), RFC8448.serverApplicationKey);
  assert.equal(toHex(sa.iv), RFC8448.serverApplicationIv);

  assert.equal(
    toHex(finishedVerifyData(provider, suite, hs.client, t.current())),
    RFC8448.clientFinished.slice(8),
  );
});

Deno.test("nextTrafficSecret() keeps the stage and changes the secret", () => {
  const s = { stage: "application" as const, secret: new Uint8Array(32).fill(7) };
  const n = nextTrafficSecret(provider, suite, s);
  assert.equal(n.stage, "application");
  assert.equal(n.secret.length, 32);
  assert.notDeepEqual(n.secret, s.secret);
});
