/** ServerHello and HelloRetryRequest (RFC 8446, Sections 4.1.3 and 4.1.4). */
import { Reader, type Writer } from "../codec.ts";
import { bytesEqual } from "../codec.ts";
import { HELLO_RETRY_REQUEST_RANDOM, TLS12 } from "../wire.ts";
import { type Extension, readExtensions, writeExtensions } from "./extensions.ts";

export interface ServerHello {
  readonly legacyVersion: number;
  readonly random: Uint8Array;
  readonly legacySessionIdEcho: Uint8Array;
  readonly cipherSuite: number;
  readonly legacyCompressionMethod: number;
  readonly extensions: readonly Extension[];
}

export function readServerHello(r: Reader): ServerHello {
  const sh: ServerHello = {
    legacyVersion: r.u16(),
    random: r.take(32),
    legacySessionIdEcho: r.vec(1, 0, 32),
    cipherSuite: r.u16(),
    legacyCompressionMethod: r.u8(),
    extensions: readExtensions(r, "ServerHello"),
  };
  r.end();
  return sh;
}

export function writeServerHello(w: Writer, sh: ServerHello): void {
  w.u16(sh.legacyVersion).bytes(sh.random).vec(1, sh.legacySessionIdEcho).u16(sh.cipherSuite);
  w.u8(sh.legacyCompressionMethod);
  writeExtensions(w, sh.extensions);
}

/** Parses a complete ServerHello body. */
export function parseServerHello(body: Uint8Array): ServerHello {
  return readServerHello(new Reader(body, "ServerHello"));
}

/** A ServerHello with the given fields and the fixed legacy values. */
export function serverHello(
  random: Uint8Array,
  sessionId: Uint8Array,
  cipherSuite: number,
  extensions: readonly Extension[],
): ServerHello {
  return {
    legacyVersion: TLS12,
    random,
    legacySessionIdEcho: sessionId,
    cipherSuite,
    legacyCompressionMethod: 0,
    extensions,
  };
}

/** True when this ServerHello is a HelloRetryRequest (RFC 8446, Section 4.1.3). */
export function isHelloRetryRequest(sh: ServerHello): boolean {
  return bytesEqual(sh.random, HELLO_RETRY_REQUEST_RANDOM);
}
