/**
 * Code points of TLS 1.3 (RFC 8446, Appendix B) as `as const` tables. Values not listed here
 * (GREASE, future extensions) survive parsing and are ignored where the RFC says so.
 */
import type { AeadAlgorithm, HashAlgorithm, KeyExchangeGroup } from "../crypto/provider.ts";

/** TLS 1.3 in supported_versions (RFC 8446, Section 4.2.1); TLS 1.2 lives in tls12/. */
export const TLS13 = 0x0304;
/** legacy_version / legacy_record_version of TLS 1.3 messages (RFC 8446, Section 5.1). */
export const TLS12 = 0x0303;

/** Record content types (RFC 8446, Section 5.1). */
export const ContentType = {
  change_cipher_spec: 20,
  alert: 21,
  handshake: 22,
  application_data: 23,
} as const;
export type ContentType = typeof ContentType[keyof typeof ContentType];

/** Handshake message types (RFC 8446, Section 4). */
export const HandshakeType = {
  client_hello: 1,
  server_hello: 2,
  new_session_ticket: 4,
  end_of_early_data: 5,
  encrypted_extensions: 8,
  certificate: 11,
  certificate_request: 13,
  certificate_verify: 15,
  finished: 20,
  key_update: 24,
  message_hash: 254,
} as const;
export type HandshakeType = typeof HandshakeType[keyof typeof HandshakeType];

/** Extension types (RFC 8446, Section 4.2; RFC 6066; RFC 7301). */
export const ExtensionType = {
  server_name: 0,
  supported_groups: 10,
  signature_algorithms: 13,
  application_layer_protocol_negotiation: 16,
  padding: 21,
  pre_shared_key: 41,
  early_data: 42,
  supported_versions: 43,
  cookie: 44,
  psk_key_exchange_modes: 45,
  certificate_authorities: 47,
  signature_algorithms_cert: 50,
  key_share: 51,
} as const;

/** Named groups with their key share lengths (RFC 8446, Sections 4.2.7 and 4.2.8.2). */
export const NamedGroup: Readonly<
  Record<KeyExchangeGroup, { readonly code: number; readonly shareLength: number }>
> = {
  x25519: { code: 0x001d, shareLength: 32 },
  secp256r1: { code: 0x0017, shareLength: 65 },
  secp384r1: { code: 0x0018, shareLength: 97 },
  secp521r1: { code: 0x0019, shareLength: 133 },
  x448: { code: 0x001e, shareLength: 56 },
  ffdhe2048: { code: 0x0100, shareLength: 256 },
  ffdhe3072: { code: 0x0101, shareLength: 384 },
};

/** Groups whose key share is an uncompressed EC point (RFC 8446, Section 4.2.8.2). */
export function isNistGroup(group: KeyExchangeGroup): boolean {
  return group === "secp256r1" || group === "secp384r1" || group === "secp521r1";
}

/** Groups usable for ECDHE in TLS 1.2 (RFC 8422); the FFDHE groups are TLS 1.3 only here. */
export function isEcdheGroup(group: KeyExchangeGroup): boolean {
  return group !== "ffdhe2048" && group !== "ffdhe3072";
}

/** The group with this code point, or null when we do not implement it. */
export function groupByCode(code: number): KeyExchangeGroup | null {
  for (const [name, g] of Object.entries(NamedGroup)) {
    if (g.code === code) return name as KeyExchangeGroup;
  }
  return null;
}

/** Signature schemes (RFC 8446, Section 4.2.3). */
export const SignatureScheme = {
  rsa_pkcs1_sha256: 0x0401,
  rsa_pkcs1_sha384: 0x0501,
  rsa_pkcs1_sha512: 0x0601,
  ecdsa_secp256r1_sha256: 0x0403,
  ecdsa_secp384r1_sha384: 0x0503,
  ecdsa_secp521r1_sha512: 0x0603,
  rsa_pss_rsae_sha256: 0x0804,
  rsa_pss_rsae_sha384: 0x0805,
  rsa_pss_rsae_sha512: 0x0806,
  ed25519: 0x0807,
  ed448: 0x0808,
  rsa_pss_pss_sha256: 0x0809,
  rsa_pss_pss_sha384: 0x080a,
  rsa_pss_pss_sha512: 0x080b,
  rsa_pkcs1_sha1: 0x0201,
  ecdsa_sha1: 0x0203,
} as const;
export type SignatureSchemeName = keyof typeof SignatureScheme;

/** Cipher suites with their AEAD and hash (RFC 8446, Appendix B.4). */
export const CipherSuite = {
  TLS_AES_128_GCM_SHA256: {
    code: 0x1301,
    aead: "AES-128-GCM",
    hash: "SHA-256",
    keyLength: 16,
    hashLength: 32,
  },
  TLS_AES_256_GCM_SHA384: {
    code: 0x1302,
    aead: "AES-256-GCM",
    hash: "SHA-384",
    keyLength: 32,
    hashLength: 48,
  },
  TLS_CHACHA20_POLY1305_SHA256: {
    code: 0x1303,
    aead: "CHACHA20-POLY1305",
    hash: "SHA-256",
    keyLength: 32,
    hashLength: 32,
  },
} as const satisfies Record<
  string,
  {
    code: number;
    aead: AeadAlgorithm;
    hash: HashAlgorithm;
    keyLength: number;
    hashLength: number;
  }
>;
export type CipherSuiteName = keyof typeof CipherSuite;

/** The negotiated suite: its name and parameters. */
export interface Suite {
  readonly name: CipherSuiteName;
  readonly code: number;
  readonly aead: AeadAlgorithm;
  readonly hash: HashAlgorithm;
  readonly keyLength: number;
  readonly hashLength: number;
}

/**
 * One record per suite, shared by every connection: a connection used to build its own for each
 * suite it offers, objects that live as long as it does.
 */
const SUITES = Object.fromEntries(
  (Object.keys(CipherSuite) as CipherSuiteName[]).map((name) => [
    name,
    Object.freeze({ name, ...CipherSuite[name] }),
  ]),
) as Readonly<Record<CipherSuiteName, Suite>>;

/** The suite record for a name. */
export function suiteByName(name: CipherSuiteName): Suite {
  return SUITES[name];
}

/** The suite with this code point, or null when unknown. */
export function suiteByCode(code: number): Suite | null {
  for (const name of Object.keys(CipherSuite) as CipherSuiteName[]) {
    if (CipherSuite[name].code === code) return suiteByName(name);
  }
  return null;
}

/**
 * Our default cipher suite preference. All three are offered (RFC 8446, Section 9.1 mandates
 * AES-128-GCM); ChaCha20-Poly1305 comes first because it is what this runtime does fastest: a
 * 16 KiB record in 13 µs through node:crypto (about 1.2 GB/s) against 51 µs for AES-128-GCM as
 * the native provider composes it and 94 µs with Deno's own AES-GCM cipher
 * (`deno bench -A bench/crypto_bench.ts`); bulk FETCH runs about twice as fast.
 */
export const DEFAULT_SUITES: readonly CipherSuiteName[] = [
  "TLS_CHACHA20_POLY1305_SHA256",
  "TLS_AES_128_GCM_SHA256",
  "TLS_AES_256_GCM_SHA384",
];

/**
 * Our default group preference: x25519 first (RFC 8446, Section 9.1), then the NIST curves,
 * X448, and the RFC 7919 finite-field groups last, so that a client that offers only FFDHE
 * still connects.
 */
export const DEFAULT_GROUPS: readonly KeyExchangeGroup[] = [
  "x25519",
  "secp256r1",
  "secp384r1",
  "secp521r1",
  "x448",
  "ffdhe2048",
  "ffdhe3072",
];

/** Alert levels (RFC 8446, Section 6). */
export const AlertLevel = { warning: 1, fatal: 2 } as const;

/** Alert descriptions (RFC 8446, Section 6). */
export const AlertDescription = {
  close_notify: 0,
  unexpected_message: 10,
  bad_record_mac: 20,
  record_overflow: 22,
  handshake_failure: 40,
  bad_certificate: 42,
  unsupported_certificate: 43,
  certificate_revoked: 44,
  certificate_expired: 45,
  certificate_unknown: 46,
  illegal_parameter: 47,
  unknown_ca: 48,
  access_denied: 49,
  decode_error: 50,
  decrypt_error: 51,
  protocol_version: 70,
  insufficient_security: 71,
  internal_error: 80,
  inappropriate_fallback: 86,
  user_canceled: 90,
  /** TLS 1.2 only, always a warning (RFC 5246, Section 7.2.2). */
  no_renegotiation: 100,
  missing_extension: 109,
  unsupported_extension: 110,
  unrecognized_name: 112,
  bad_certificate_status_response: 113,
  unknown_psk_identity: 115,
  certificate_required: 116,
  no_application_protocol: 120,
} as const;
export type AlertName = keyof typeof AlertDescription;

/** KeyUpdateRequest values (RFC 8446, Section 4.6.3). */
export const KeyUpdateRequest = { update_not_requested: 0, update_requested: 1 } as const;

/** Record size limits (RFC 8446, Section 5.1 and 5.2). */
export const MAX_PLAINTEXT = 2 ** 14;
export const MAX_CIPHERTEXT = 2 ** 14 + 256;
/** Upper bound on a handshake message we are willing to buffer (other than a ClientHello). */
export const MAX_HANDSHAKE_MESSAGE = 64 * 1024;
/**
 * Upper bound on a ClientHello body: 2^17 plus slack, OpenSSL's CLIENT_HELLO_MAX_LENGTH. A
 * ClientHello may legitimately carry a 64 KiB signature_algorithms list or large padding and
 * span several records; every other message keeps a tighter limit.
 */
export const MAX_CLIENT_HELLO = 131_396;

/** The special ServerHello.random of a HelloRetryRequest (RFC 8446, Section 4.1.3). */
export const HELLO_RETRY_REQUEST_RANDOM = new Uint8Array([
  0xcf,
  0x21,
  0xad,
  0x74,
  0xe5,
  0x9a,
  0x61,
  0x11,
  0xbe,
  0x1d,
  0x8c,
  0x02,
  0x1e,
  0x65,
  0xb8,
  0x91,
  0xc2,
  0xa2,
  0x11,
  0x16,
  0x7a,
  0xbb,
  0x8c,
  0x5e,
  0x07,
  0x9e,
  0x09,
  0xe2,
  0xc8,
  0xa8,
  0x33,
  0x9c,
]);
