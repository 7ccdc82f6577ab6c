/** Certificate (RFC 8446, Section 4.4.2), X.509 entries only. */
import { Reader, type Writer } from "../codec.ts";
import { type Extension, readExtensions, writeExtensions } from "./extensions.ts";

export interface CertificateEntry {
  readonly data: Uint8Array;
  readonly extensions: readonly Extension[];
}

export interface Certificate {
  readonly context: Uint8Array;
  readonly entries: readonly CertificateEntry[];
}

export function readCertificate(r: Reader): Certificate {
  const context = r.vec(1);
  const list = r.sub(3);
  const entries: CertificateEntry[] = [];
  while (list.remaining > 0) {
    const data = list.vec(3, 1);
    entries.push({ data, extensions: readExtensions(list, "CertificateEntry") });
  }
  r.end();
  return { context, entries };
}

export function writeCertificate(w: Writer, c: Certificate): void {
  w.vec(1, c.context);
  w.lengthPrefixed(3, (w) => {
    for (const e of c.entries) {
      w.vec(3, e.data);
      writeExtensions(w, e.extensions);
    }
  });
}

export function parseCertificate(body: Uint8Array): Certificate {
  return readCertificate(new Reader(body, "Certificate"));
}
