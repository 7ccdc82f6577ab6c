/** ServerKeyExchange for ECDHE (RFC 8422, Section 5.4; RFC 5246, Section 7.4.3). */
import { TlsAlert } from "../../alert.ts";
import { Reader, type Writer } from "../../codec.ts";
import { CURVE_TYPE_NAMED } from "../wire12.ts";

/** ServerECDHParams: a named curve and the server's ephemeral public point. */
export interface EcdheParams {
  readonly namedCurve: number;
  readonly point: Uint8Array;
}

export interface ServerKeyExchange {
  readonly params: EcdheParams;
  /** SignatureAndHashAlgorithm, read as a TLS 1.3 SignatureScheme code point. */
  readonly scheme: number;
  readonly signature: Uint8Array;
}

export function writeEcdheParams(w: Writer, p: EcdheParams): void {
  w.u8(CURVE_TYPE_NAMED).u16(p.namedCurve).vec(1, p.point);
}

export function readEcdheParams(r: Reader): EcdheParams {
  if (r.u8() !== CURVE_TYPE_NAMED) {
    throw new TlsAlert("illegal_parameter", "ServerKeyExchange curve type is not named_curve");
  }
  return { namedCurve: r.u16(), point: r.vec(1, 1) };
}

export function writeServerKeyExchange(w: Writer, ske: ServerKeyExchange): void {
  writeEcdheParams(w, ske.params);
  w.u16(ske.scheme).vec(2, ske.signature);
}

export function readServerKeyExchange(r: Reader): ServerKeyExchange {
  const params = readEcdheParams(r);
  const ske = { params, scheme: r.u16(), signature: r.vec(2, 1) };
  r.end();
  return ske;
}

export function parseServerKeyExchange(body: Uint8Array): ServerKeyExchange {
  return readServerKeyExchange(new Reader(body, "ServerKeyExchange"));
}
