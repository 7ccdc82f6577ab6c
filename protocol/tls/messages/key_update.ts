/** KeyUpdate (RFC 8446, Section 4.6.3). */
import { TlsAlert } from "../alert.ts";
import { Reader, type Writer } from "../codec.ts";
import { KeyUpdateRequest } from "../wire.ts";

export interface KeyUpdate {
  readonly updateRequested: boolean;
}

export function readKeyUpdate(r: Reader): KeyUpdate {
  const v = r.u8();
  r.end();
  if (v !== KeyUpdateRequest.update_not_requested && v !== KeyUpdateRequest.update_requested) {
    throw new TlsAlert("illegal_parameter", "Unknown KeyUpdateRequest value");
  }
  return { updateRequested: v === KeyUpdateRequest.update_requested };
}

export function writeKeyUpdate(w: Writer, ku: KeyUpdate): void {
  w.u8(
    ku.updateRequested ? KeyUpdateRequest.update_requested : KeyUpdateRequest.update_not_requested,
  );
}

export function parseKeyUpdate(body: Uint8Array): KeyUpdate {
  return readKeyUpdate(new Reader(body, "KeyUpdate"));
}
