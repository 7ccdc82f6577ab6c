/** CertificateRequest (RFC 8446, Section 4.3.2). */
import { Reader, type Writer } from "../codec.ts";
import { type Extension, readExtensions, writeExtensions } from "./extensions.ts";

export interface CertificateRequest {
  readonly context: Uint8Array;
  readonly extensions: readonly Extension[];
}

export function readCertificateRequest(r: Reader): CertificateRequest {
  const context = r.vec(1);
  const extensions = readExtensions(r, "CertificateRequest");
  r.end();
  return { context, extensions };
}

export function writeCertificateRequest(w: Writer, cr: CertificateRequest): void {
  w.vec(1, cr.context);
  writeExtensions(w, cr.extensions);
}

export function parseCertificateRequest(body: Uint8Array): CertificateRequest {
  return readCertificateRequest(new Reader(body, "CertificateRequest"));
}
