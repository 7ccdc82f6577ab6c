import assert from "node:assert/strict";
import { formatAccess } from "../../../server/serve/mod.ts";

Deno.test("formatAccess() puts the application's notes (COMPRESS savings, client ID) on the line", () => {
  const base = {
    id: 7,
    peer: "127.0.0.1",
    listener: "127.0.0.1:993/implicit",
    tls: null,
    bytesIn: 10,
    bytesOut: 20,
    durationMs: 5,
    closeReason: "closed",
  };
  assert.equal(formatAccess(base).notes, "");
  const notes = { client: "Thunderbird/128.5.0", deflateSaved: 12345 };
  assert.equal(
    formatAccess({ ...base, notes }).notes,
    'client="Thunderbird/128.5.0" deflateSaved=12345',
  );
});
