/** ClientKeyExchange for ECDHE: ClientECDiffieHellmanPublic (RFC 8422, Section 5.7). */
import { Reader, type Writer } from "../../codec.ts";

export interface ClientKeyExchange {
  /** ecdh_Yc: the client's ephemeral public point, opaque <1..2^8-1>. */
  readonly point: Uint8Array;
}

export function readClientKeyExchange(r: Reader): ClientKeyExchange {
  const point = r.vec(1, 1);
  r.end();
  return { point };
}

export function writeClientKeyExchange(w: Writer, cke: ClientKeyExchange): void {
  w.vec(1, cke.point);
}

export function parseClientKeyExchange(body: Uint8Array): ClientKeyExchange {
  return readClientKeyExchange(new Reader(body, "ClientKeyExchange"));
}
