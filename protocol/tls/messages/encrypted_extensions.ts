/** EncryptedExtensions (RFC 8446, Section 4.3.1). */
import { Reader, type Writer } from "../codec.ts";
import { type Extension, readExtensions, writeExtensions } from "./extensions.ts";

export interface EncryptedExtensions {
  readonly extensions: readonly Extension[];
}

export function readEncryptedExtensions(r: Reader): EncryptedExtensions {
  const extensions = readExtensions(r, "EncryptedExtensions");
  r.end();
  return { extensions };
}

export function writeEncryptedExtensions(w: Writer, ee: EncryptedExtensions): void {
  writeExtensions(w, ee.extensions);
}

export function parseEncryptedExtensions(body: Uint8Array): EncryptedExtensions {
  return readEncryptedExtensions(new Reader(body, "EncryptedExtensions"));
}
