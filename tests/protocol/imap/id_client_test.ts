import assert from "node:assert/strict";
import { newStore, TestClient } from "./_harness.ts";

Deno.test("ID hands the client's name and version to the driver for the access log", async () => {
  const c = new TestClient(await newStore());
  const seen: [string, string | null][] = [];
  c.session.onClientId = (name, version) => seen.push([name, version]);
  await c.cmd('I1 ID ("name" "Thunderbird" "version" "128.5.0" "os" "Linux")');
  await c.cmd('I2 ID ("NAME" "K-9 Mail" "vendor" "K-9 Dog Walkers")');
  await c.cmd("I3 ID NIL");
  await c.cmd('I4 ID ("version" "1.0")');
  assert.deepEqual(seen, [["Thunderbird", "128.5.0"], ["K-9 Mail", null]]);
});
