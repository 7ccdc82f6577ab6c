/** Generator for large test messages (generated on the fly, never committed). */

import { Buffer } from "node:buffer";

/**
 * Builds a message with a short text part and a base64 attachment of `size` octets, written
 * straight into one buffer (the 20 MB message is generated, never committed).
 */
export function bigAttachmentMessage(size: number): { raw: Uint8Array; payload: Uint8Array } {
  const payload = new Uint8Array(size);
  let x = 0x12345678;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    payload[i] = x >>> 24;
  }
  const b64 = new TextEncoder().encode(Buffer.from(payload).toString("base64"));
  const head = new TextEncoder().encode(
    "From: big@example.org\r\nSubject: Big attachment\r\nMIME-Version: 1.0\r\n" +
      'Content-Type: multipart/mixed; boundary="big"\r\n\r\n--big\r\n' +
      "Content-Type: text/plain\r\n\r\nSee attachment.\r\n--big\r\n" +
      "Content-Type: application/octet-stream; name=big.bin\r\n" +
      "Content-Transfer-Encoding: base64\r\n\r\n",
  );
  const tail = new TextEncoder().encode("\r\n--big--\r\n");
  const lines = Math.ceil(b64.length / 76);
  const raw = new Uint8Array(head.length + b64.length + (lines - 1) * 2 + tail.length);
  raw.set(head, 0);
  let o = head.length;
  for (let i = 0; i < b64.length; i += 76) {
    if (i > 0) {
      raw[o++] = 0x0d;
      raw[o++] = 0x0a;
    }
    const line = b64.subarray(i, Math.min(b64.length, i + 76));
    raw.set(line, o);
    o += line.length;
  }
  raw.set(tail, o);
  return { raw, payload };
}
