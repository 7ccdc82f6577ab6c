/** CertificateRequest in TLS 1.2 (RFC 5246, Section 7.4.4; RFC 8422, Section 5.5). */
import { Reader, type Writer } from "../../codec.ts";
import { readU16List, writeU16List } from "../../messages/extensions.ts";

export interface CertificateRequest12 {
  readonly certificateTypes: readonly number[];
  readonly signatureSchemes: readonly number[];
  /** DER-encoded DistinguishedNames of the acceptable CAs. */
  readonly authorities: readonly Uint8Array[];
}

export function readCertificateRequest12(r: Reader): CertificateRequest12 {
  const certificateTypes = Array.from(r.vec(1, 1));
  const signatureSchemes = readU16List(r, 2);
  const list = r.sub(2);
  const authorities: Uint8Array[] = [];
  while (list.remaining > 0) authorities.push(list.vec(2, 1));
  r.end();
  return { certificateTypes, signatureSchemes, authorities };
}

export function writeCertificateRequest12(w: Writer, cr: CertificateRequest12): void {
  w.vec(1, new Uint8Array(cr.certificateTypes));
  writeU16List(w, 2, cr.signatureSchemes);
  w.lengthPrefixed(2, (w) => {
    for (const a of cr.authorities) w.vec(2, a);
  });
}

export function parseCertificateRequest12(body: Uint8Array): CertificateRequest12 {
  return readCertificateRequest12(new Reader(body, "CertificateRequest"));
}
