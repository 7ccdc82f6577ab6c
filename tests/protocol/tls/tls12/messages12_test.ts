/** The TLS 1.2 message codecs: round trips, truncation and random input. */
import assert from "node:assert/strict";
import { TlsAlert } from "../../../../protocol/tls/alert.ts";
import { encode } from "../../../../protocol/tls/codec.ts";
import {
  parseCertificate12,
  writeCertificate12,
} from "../../../../protocol/tls/tls12/messages/certificate12.ts";
import {
  parseCertificateRequest12,
  writeCertificateRequest12,
} from "../../../../protocol/tls/tls12/messages/certificate_request12.ts";
import {
  parseClientKeyExchange,
  writeClientKeyExchange,
} from "../../../../protocol/tls/tls12/messages/client_key_exchange.ts";
import {
  parseNewSessionTicket12,
  writeNewSessionTicket12,
} from "../../../../protocol/tls/tls12/messages/new_session_ticket12.ts";
import {
  parseServerKeyExchange,
  writeServerKeyExchange,
} from "../../../../protocol/tls/tls12/messages/server_key_exchange.ts";
import { prng } from "../_helpers.ts";

const rand = prng(1205);
const byte = () => rand(1)[0]!;
const bytes = (max: number, min = 0) => rand(min + (byte() % (max - min + 1)));

interface Codec<T> {
  name: string;
  make: () => T;
  write: (w: Parameters<typeof writeClientKeyExchange>[0], x: T) => void;
  parse: (body: Uint8Array) => T;
}

const CODECS: Codec<unknown>[] = [
  {
    name: "ServerKeyExchange",
    make: () => ({
      params: { namedCurve: 0x0017, point: bytes(97, 1) },
      scheme: 0x0403,
      signature: bytes(80, 1),
    }),
    write: writeServerKeyExchange as Codec<unknown>["write"],
    parse: parseServerKeyExchange,
  },
  {
    name: "ClientKeyExchange",
    make: () => ({ point: bytes(97, 1) }),
    write: writeClientKeyExchange as Codec<unknown>["write"],
    parse: parseClientKeyExchange,
  },
  {
    name: "Certificate",
    make: () => ({ chain: Array.from({ length: byte() % 4 }, () => bytes(300, 1)) }),
    write: writeCertificate12 as Codec<unknown>["write"],
    parse: parseCertificate12,
  },
  {
    name: "CertificateRequest",
    make: () => ({
      certificateTypes: [1, 64].slice(0, 1 + (byte() % 2)),
      signatureSchemes: [0x0403, 0x0804, 0x0401].slice(0, 1 + (byte() % 3)),
      authorities: Array.from({ length: byte() % 3 }, () => bytes(60, 1)),
    }),
    write: writeCertificateRequest12 as Codec<unknown>["write"],
    parse: parseCertificateRequest12,
  },
  {
    name: "NewSessionTicket",
    make: () => ({ lifetimeHint: 86400 + byte(), ticket: bytes(200) }),
    write: writeNewSessionTicket12 as Codec<unknown>["write"],
    parse: parseNewSessionTicket12,
  },
];

function isDecodeError(e: unknown): boolean {
  return e instanceof TlsAlert && e.alert === "decode_error";
}

for (const codec of CODECS) {
  Deno.test(`${codec.name}: random messages round-trip and no truncated prefix parses`, () => {
    for (let i = 0; i < 50; i++) {
      const value = codec.make();
      const body = encode(codec.write, value);
      assert.deepEqual(codec.parse(body), value);
      for (let n = 0; n < body.length; n++) {
        assert.throws(() => codec.parse(body.subarray(0, n)), isDecodeError, `prefix ${n}`);
      }
      assert.throws(() => codec.parse(new Uint8Array([...body, 0])), isDecodeError);
    }
  });

  Deno.test(`${codec.name}: random bytes fail only with a TLS alert`, () => {
    for (let i = 0; i < 300; i++) {
      const body = bytes(120);
      try {
        codec.parse(body);
      } catch (e) {
        assert.ok(e instanceof TlsAlert, `${e}`);
      }
    }
  });
}
