import assert from "node:assert/strict";
import { RecordFraming } from "../../../server/connection/record_framing.ts";

const record = (length: number) =>
  Uint8Array.of(22, 3, 1, length >> 8, length & 0xff, ...new Uint8Array(length));

Deno.test("RecordFraming sees a record complete only with its last byte, however it is cut", () => {
  const bytes = record(300);
  for (const cut of [1, 3, 5, 6, 299, 304]) {
    const framing = new RecordFraming();
    assert.equal(framing.completes(bytes.subarray(0, cut)), false, `cut at ${cut}`);
    assert.equal(framing.completes(bytes.subarray(cut)), true, `rest after ${cut}`);
  }
  const dribble = new RecordFraming();
  const seen = [...bytes].map((b) => dribble.completes(Uint8Array.of(b)));
  assert.deepEqual(seen.map((done, i) => done ? i : -1).filter((i) => i >= 0), [304]);
});

Deno.test("RecordFraming follows several records in one read and a partial one after them", () => {
  const framing = new RecordFraming();
  const two = Uint8Array.of(...record(10), ...record(0), ...record(20).subarray(0, 7));
  assert.equal(framing.completes(two), true);
  assert.equal(framing.completes(new Uint8Array(17)), false);
  assert.equal(framing.completes(new Uint8Array(1)), true);
});

Deno.test("RecordFraming counts no work for a malformed header, which the engine rejects on sight", () => {
  const tooLong = new RecordFraming();
  assert.equal(tooLong.completes(Uint8Array.of(22, 3, 3, 0xff, 0xff, 1, 2, 3)), false);
  assert.equal(tooLong.completes(new Uint8Array(70_000)), false);
  const unknownType = new RecordFraming();
  assert.equal(unknownType.completes(Uint8Array.of(0x47, 0x45, 0x54, 0, 0)), false);
  const afterGood = new RecordFraming();
  assert.equal(afterGood.completes(Uint8Array.of(...record(2), 99, 3, 3, 0, 0)), true);
  assert.equal(afterGood.completes(record(2)), false);
});
