/**
 * The thread of a `DeriveWorker` (derive_worker.ts): derives the stored data of a message
 * (`derivedData` with a default `createMimeSupport()`, as an APPEND on the event loop would)
 * and gives the bytes back by transfer. Requests `{ id, raw }`; reports
 * `{ kind: "derived", id, raw, derived }` or `{ kind: "error", id, raw }`.
 */
/// <reference lib="deno.worker" />
import { createMimeSupport, derivedData } from "../../protocol/imap/mime_support.ts";
import type { DeriveReport, DeriveRequest } from "./derive_worker.ts";

self.onmessage = (e: MessageEvent<DeriveRequest>) => {
  const { id, raw } = e.data;
  let report: DeriveReport;
  try {
    report = { kind: "derived", id, raw, derived: derivedData(createMimeSupport(), raw) };
  } catch {
    // The caller derives on its own thread and meets the same error there.
    report = { kind: "error", id, raw };
  }
  self.postMessage(report, [raw.buffer as ArrayBuffer]);
};
