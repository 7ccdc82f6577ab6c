/**
 * Code points that only TLS 1.2 uses (RFC 5246, RFC 8422, RFC 5289, RFC 7905, RFC 7627,
 * RFC 5746, RFC 5077, RFC 7507), and the cipher suite table of the 1.2 server.
 */
import type { AeadAlgorithm, HashAlgorithm } from "../../crypto/provider.ts";

/** Handshake message types of TLS 1.2 that TLS 1.3 dropped (RFC 5246, Section 7.4). */
export const HandshakeType12 = {
  hello_request: 0,
  client_hello: 1,
  server_hello: 2,
  new_session_ticket: 4,
  certificate: 11,
  server_key_exchange: 12,
  certificate_request: 13,
  server_hello_done: 14,
  certificate_verify: 15,
  client_key_exchange: 16,
  finished: 20,
} as const;

/** Extension types of TLS 1.2 (RFC 8422, RFC 7627, RFC 5077, RFC 5746). */
export const ExtensionType12 = {
  ec_point_formats: 11,
  extended_master_secret: 23,
  session_ticket: 35,
  renegotiation_info: 0xff01,
} as const;

/** Signalling cipher suite values. */
export const Scsv = {
  /** RFC 5746, Section 3.3. */
  empty_renegotiation_info: 0x00ff,
  /** RFC 7507, Section 2. */
  fallback: 0x5600,
} as const;

/** ECCurveType named_curve (RFC 8422, Section 5.4). */
export const CURVE_TYPE_NAMED = 3;
/** ECPointFormat uncompressed (RFC 8422, Section 5.1.2). */
export const POINT_FORMAT_UNCOMPRESSED = 0;
/** ClientCertificateType values we request (RFC 5246, Section 7.4.4; RFC 8422, Section 5.5). */
export const ClientCertificateType = { rsa_sign: 1, ecdsa_sign: 64 } as const;

/** The downgrade sentinel of a 1.3-capable server negotiating 1.2 (RFC 8446, Section 4.1.3). */
export const DOWNGRADE_TLS12 = new Uint8Array([0x44, 0x4f, 0x57, 0x4e, 0x47, 0x52, 0x44, 0x01]);

/** How the server's certificate authenticates the ECDHE parameters. */
export type SuiteAuth = "ecdsa" | "rsa";

/** One TLS 1.2 AEAD cipher suite. */
export interface Suite12 {
  readonly name: CipherSuite12Name;
  readonly code: number;
  readonly auth: SuiteAuth;
  readonly aead: AeadAlgorithm;
  /** The PRF hash (RFC 5246, Section 5; RFC 5289, Section 3). */
  readonly hash: HashAlgorithm;
  readonly hashLength: number;
  readonly keyLength: number;
  /** client/server_write_IV length: the 4-byte GCM salt, or the 12-byte ChaCha20 IV. */
  readonly fixedIvLength: number;
  /** The per-record explicit nonce sent with each GCM record (0 for ChaCha20, RFC 7905). */
  readonly explicitNonceLength: number;
}

const GCM128 = { aead: "AES-128-GCM", hash: "SHA-256", hashLength: 32, keyLength: 16 } as const;
const GCM256 = { aead: "AES-256-GCM", hash: "SHA-384", hashLength: 48, keyLength: 32 } as const;
const CHACHA = {
  aead: "CHACHA20-POLY1305",
  hash: "SHA-256",
  hashLength: 32,
  keyLength: 32,
} as const;
/** RFC 5288, Section 3: salt(4) from the key block, nonce_explicit(8) on the wire. */
const GCM_NONCE = { fixedIvLength: 4, explicitNonceLength: 8 } as const;
/** RFC 7905, Section 2: a 12-byte IV XORed with the padded sequence number. */
const CHACHA_NONCE = { fixedIvLength: 12, explicitNonceLength: 0 } as const;

/** The TLS 1.2 suites we implement: ECDHE with an AEAD only (RFC 5289, RFC 7905). */
export const CipherSuite12 = {
  TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: { code: 0xc02b, auth: "ecdsa", ...GCM128, ...GCM_NONCE },
  TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384: { code: 0xc02c, auth: "ecdsa", ...GCM256, ...GCM_NONCE },
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: {
    code: 0xcca9,
    auth: "ecdsa",
    ...CHACHA,
    ...CHACHA_NONCE,
  },
  TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: { code: 0xc02f, auth: "rsa", ...GCM128, ...GCM_NONCE },
  TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384: { code: 0xc030, auth: "rsa", ...GCM256, ...GCM_NONCE },
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256: {
    code: 0xcca8,
    auth: "rsa",
    ...CHACHA,
    ...CHACHA_NONCE,
  },
} as const;
export type CipherSuite12Name = keyof typeof CipherSuite12;

/** The suite record for a name. */
export function suite12ByName(name: CipherSuite12Name): Suite12 {
  return { name, ...CipherSuite12[name] };
}

/** The suite with this code point, or null when we do not implement it. */
export function suite12ByCode(code: number): Suite12 | null {
  for (const name of Object.keys(CipherSuite12) as CipherSuite12Name[]) {
    if (CipherSuite12[name].code === code) return suite12ByName(name);
  }
  return null;
}

/**
 * Our default TLS 1.2 preference, the same order of AEADs as TLS 1.3 (ChaCha20-Poly1305 is the
 * fastest AEAD in this runtime; see `DEFAULT_SUITES`). Only the suites that match the server
 * key's type are ever chosen.
 */
export const DEFAULT_SUITES12: readonly CipherSuite12Name[] = [
  "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
  "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
  "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
  "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
  "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
  "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
];
