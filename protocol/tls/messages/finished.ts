/** Finished (RFC 8446, Section 4.4.4). */
import { Reader, type Writer } from "../codec.ts";

export interface Finished {
  readonly verifyData: Uint8Array;
}

/** Reads a Finished body whose verify_data has the suite's hash length. */
export function readFinished(r: Reader, hashLength: number): Finished {
  const verifyData = r.take(hashLength);
  r.end();
  return { verifyData };
}

export function writeFinished(w: Writer, f: Finished): void {
  w.bytes(f.verifyData);
}

export function parseFinished(body: Uint8Array, hashLength: number): Finished {
  return readFinished(new Reader(body, "Finished"), hashLength);
}
