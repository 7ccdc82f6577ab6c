import assert from "node:assert/strict";
import { newStore, TestClient } from "./_harness.ts";

Deno.test("COMPRESS=DEFLATE is offered once authenticated, only when the driver can compress", async () => {
  const store = await newStore();
  const c = new TestClient(store, { compress: true });
  assert.doesNotMatch((await c.cmd("C CAPABILITY"))[0]!, /COMPRESS/);
  assert.match((await c.cmd("P COMPRESS DEFLATE")).at(-1)!, /^P BAD/);
  await c.login();
  assert.match((await c.cmd("C CAPABILITY"))[0]!, / COMPRESS=DEFLATE/);
  const plain = new TestClient(store);
  await plain.login();
  assert.doesNotMatch((await plain.cmd("C CAPABILITY"))[0]!, /COMPRESS/);
  assert.match((await plain.cmd("Z COMPRESS DEFLATE")).at(-1)!, /^Z BAD/);
});

Deno.test("COMPRESS DEFLATE answers OK, then asks the driver, and refuses a second time", async () => {
  const c = new TestClient(await newStore(), { compress: true });
  let started = 0;
  c.session.onCompress = () => {
    started++;
  };
  await c.login();
  assert.match((await c.cmd("Z1 COMPRESS LZW")).at(-1)!, /^Z1 BAD/);
  assert.equal(started, 0);
  // Anything pipelined behind COMPRESS in the clear is dropped: it cannot be deflate data.
  assert.equal(await c.raw("Z2 COMPRESS DEFLATE\r\nZ3 NOOP\r\n"), "Z2 OK DEFLATE active\r\n");
  assert.equal(started, 1);
  assert.doesNotMatch((await c.cmd("C CAPABILITY"))[0]!, /COMPRESS/);
  assert.deepEqual(await c.cmd("Z4 COMPRESS DEFLATE"), [
    "Z4 NO [COMPRESSIONACTIVE] Compression is already active",
  ]);
});
