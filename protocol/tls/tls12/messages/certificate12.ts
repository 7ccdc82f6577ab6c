/** Certificate in TLS 1.2: a bare certificate_list, leaf first (RFC 5246, Section 7.4.2). */
import { Reader, type Writer } from "../../codec.ts";

export interface Certificate12 {
  readonly chain: readonly Uint8Array[];
}

export function readCertificate12(r: Reader): Certificate12 {
  const list = r.sub(3);
  const chain: Uint8Array[] = [];
  while (list.remaining > 0) chain.push(list.vec(3, 1));
  r.end();
  return { chain };
}

export function writeCertificate12(w: Writer, c: Certificate12): void {
  w.lengthPrefixed(3, (w) => {
    for (const der of c.chain) w.vec(3, der);
  });
}

export function parseCertificate12(body: Uint8Array): Certificate12 {
  return readCertificate12(new Reader(body, "Certificate"));
}
