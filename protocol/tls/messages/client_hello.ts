/** ClientHello (RFC 8446, Section 4.1.2). */
import { TlsAlert } from "../alert.ts";
import { Reader, type Writer } from "../codec.ts";
import { ExtensionType } from "../wire.ts";
import { type Extension, readExtensions, readU16List, writeExtensions } from "./extensions.ts";

export interface ClientHello {
  readonly legacyVersion: number;
  readonly random: Uint8Array;
  readonly legacySessionId: Uint8Array;
  /** Every offered code point, GREASE and unknown values included. */
  readonly cipherSuites: readonly number[];
  readonly legacyCompressionMethods: Uint8Array;
  readonly extensions: readonly Extension[];
}

/**
 * Reads a ClientHello body. Structure only: duplicate extensions and a pre_shared_key that is
 * not last are `illegal_parameter` (Section 4.2.11); the meaning is checked by the server.
 */
export function readClientHello(r: Reader): ClientHello {
  const legacyVersion = r.u16();
  const random = r.take(32);
  const legacySessionId = r.vec(1, 0, 32);
  const cipherSuites = readU16List(r, 2);
  const legacyCompressionMethods = r.vec(1, 1);
  // A hello without extensions is a pre-TLS 1.3 client (Section 4.1.2): leave the list empty.
  const extensions = r.remaining === 0 ? [] : readExtensions(r, "ClientHello");
  r.end();
  const psk = extensions.findIndex((e) => e.type === ExtensionType.pre_shared_key);
  if (psk !== -1 && psk !== extensions.length - 1) {
    throw new TlsAlert("illegal_parameter", "pre_shared_key is not the last extension");
  }
  return {
    legacyVersion,
    random,
    legacySessionId,
    cipherSuites,
    legacyCompressionMethods,
    extensions,
  };
}

export function writeClientHello(w: Writer, ch: ClientHello): void {
  w.u16(ch.legacyVersion).bytes(ch.random).vec(1, ch.legacySessionId);
  w.lengthPrefixed(2, (w) => {
    for (const s of ch.cipherSuites) w.u16(s);
  });
  w.vec(1, ch.legacyCompressionMethods);
  writeExtensions(w, ch.extensions);
}

/** Parses a complete ClientHello body. */
export function parseClientHello(body: Uint8Array): ClientHello {
  return readClientHello(new Reader(body, "ClientHello"));
}
