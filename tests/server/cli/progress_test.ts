import assert from "node:assert/strict";
import { ProgressBar } from "../../../server/cli/progress.ts";

Deno.test("ProgressBar draws after a delay, at most ten times a second, and clears itself", () => {
  let time = 0;
  const writes: string[] = [];
  const bar = new ProgressBar("Importing", {
    enabled: true,
    write: (text) => writes.push(text),
    now: () => time,
  });
  bar.update(1, 4);
  assert.deepEqual(writes, [], "a short job shows no bar");
  time = 600;
  bar.update(1, 4, "1/4 messages");
  time = 650;
  bar.update(2, 4);
  time = 700;
  bar.update(4, 4);
  bar.finish();
  assert.deepEqual(writes, [
    `\r\x1b[2KImporting [${"#".repeat(8)}${"-".repeat(22)}]  25% 1/4 messages`,
    `\r\x1b[2KImporting [${"#".repeat(30)}] 100%`,
    "\r\x1b[2K",
  ]);
});

Deno.test("ProgressBar stays silent when disabled", () => {
  const writes: string[] = [];
  const bar = new ProgressBar("x", {
    enabled: false,
    write: (t) => writes.push(t),
    now: () => 1e9,
  });
  bar.update(1, 2);
  bar.finish();
  assert.deepEqual(writes, []);
});
