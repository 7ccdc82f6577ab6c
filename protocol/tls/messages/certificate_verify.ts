/** CertificateVerify (RFC 8446, Section 4.4.3). */
import { ascii, concat, Reader, type Writer } from "../codec.ts";

export interface CertificateVerify {
  readonly scheme: number;
  readonly signature: Uint8Array;
}

export function readCertificateVerify(r: Reader): CertificateVerify {
  const cv = { scheme: r.u16(), signature: r.vec(2, 1) };
  r.end();
  return cv;
}

export function writeCertificateVerify(w: Writer, cv: CertificateVerify): void {
  w.u16(cv.scheme).vec(2, cv.signature);
}

export function parseCertificateVerify(body: Uint8Array): CertificateVerify {
  return readCertificateVerify(new Reader(body, "CertificateVerify"));
}

const PAD = new Uint8Array(64).fill(0x20);
const SERVER_CONTEXT = ascii("TLS 1.3, server CertificateVerify");
const CLIENT_CONTEXT = ascii("TLS 1.3, client CertificateVerify");

/**
 * The content covered by the signature: 64 spaces, the context string, a zero byte and the
 * transcript hash (RFC 8446, Section 4.4.3).
 */
export function signedContent(side: "server" | "client", transcriptHash: Uint8Array): Uint8Array {
  const context = side === "server" ? SERVER_CONTEXT : CLIENT_CONTEXT;
  return concat(PAD, context, new Uint8Array([0]), transcriptHash);
}
