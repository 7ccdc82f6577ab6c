/**
 * The TLS 1.2 pseudorandom function and the secrets derived with it (RFC 5246, Sections 5,
 * 6.3, 7.4.9 and 8.1; RFC 7627, Section 4).
 */
import type { CryptoProvider, HashAlgorithm } from "../../crypto/provider.ts";
import { ascii, concat } from "../codec.ts";

/** Length of the master secret (RFC 5246, Section 8.1). */
export const MASTER_SECRET_LENGTH = 48;
/** Length of Finished.verify_data for every suite we implement (RFC 5246, Section 7.4.9). */
export const VERIFY_DATA_LENGTH = 12;

const LABEL_MASTER = ascii("master secret");
const LABEL_EXTENDED_MASTER = ascii("extended master secret");
const LABEL_KEY_EXPANSION = ascii("key expansion");
const LABEL_CLIENT_FINISHED = ascii("client finished");
const LABEL_SERVER_FINISHED = ascii("server finished");

/**
 * PRF(secret, label, seed) = P_<hash>(secret, label + seed) (RFC 5246, Section 5), where
 * A(0) = label + seed, A(i) = HMAC(secret, A(i-1)) and the output is
 * HMAC(secret, A(1) + label + seed) || HMAC(secret, A(2) + label + seed) || ...
 */
export function prf(
  provider: CryptoProvider,
  hash: HashAlgorithm,
  secret: Uint8Array,
  label: Uint8Array,
  seed: Uint8Array,
  length: number,
): Uint8Array {
  if (!(length >= 0 && length <= 1024)) throw new RangeError("PRF output length out of range");
  const labelSeed = concat(label, seed);
  const out = new Uint8Array(length);
  let a = labelSeed;
  for (let at = 0; at < length;) {
    a = provider.hmac(hash, secret, a);
    const block = provider.hmac(hash, secret, concat(a, labelSeed));
    const n = Math.min(block.length, length - at);
    out.set(block.subarray(0, n), at);
    at += n;
  }
  return out;
}

/** master_secret = PRF(pre_master_secret, "master secret", client_random + server_random). */
export function masterSecret(
  provider: CryptoProvider,
  hash: HashAlgorithm,
  preMasterSecret: Uint8Array,
  clientRandom: Uint8Array,
  serverRandom: Uint8Array,
): Uint8Array {
  return prf(
    provider,
    hash,
    preMasterSecret,
    LABEL_MASTER,
    concat(clientRandom, serverRandom),
    MASTER_SECRET_LENGTH,
  );
}

/**
 * The extended master secret (RFC 7627, Section 4): PRF(pre_master_secret,
 * "extended master secret", session_hash), where session_hash is the hash of every handshake
 * message up to and including ClientKeyExchange.
 */
export function extendedMasterSecret(
  provider: CryptoProvider,
  hash: HashAlgorithm,
  preMasterSecret: Uint8Array,
  sessionHash: Uint8Array,
): Uint8Array {
  return prf(
    provider,
    hash,
    preMasterSecret,
    LABEL_EXTENDED_MASTER,
    sessionHash,
    MASTER_SECRET_LENGTH,
  );
}

/** The AEAD keys and fixed IVs of both directions (RFC 5246, Section 6.3; no MAC keys). */
export interface KeyBlock {
  readonly clientKey: Uint8Array;
  readonly serverKey: Uint8Array;
  readonly clientIv: Uint8Array;
  readonly serverIv: Uint8Array;
}

/** key_block = PRF(master_secret, "key expansion", server_random + client_random). */
export function keyBlock(
  provider: CryptoProvider,
  hash: HashAlgorithm,
  master: Uint8Array,
  clientRandom: Uint8Array,
  serverRandom: Uint8Array,
  keyLength: number,
  ivLength: number,
): KeyBlock {
  const block = prf(
    provider,
    hash,
    master,
    LABEL_KEY_EXPANSION,
    concat(serverRandom, clientRandom),
    2 * (keyLength + ivLength),
  );
  let at = 0;
  const take = (n: number) => block.slice(at, at += n);
  return {
    clientKey: take(keyLength),
    serverKey: take(keyLength),
    clientIv: take(ivLength),
    serverIv: take(ivLength),
  };
}

/** Finished.verify_data = PRF(master_secret, finished_label, Hash(handshake_messages))[0..11]. */
export function finishedVerifyData12(
  provider: CryptoProvider,
  hash: HashAlgorithm,
  master: Uint8Array,
  side: "client" | "server",
  transcriptHash: Uint8Array,
): Uint8Array {
  return prf(
    provider,
    hash,
    master,
    side === "client" ? LABEL_CLIENT_FINISHED : LABEL_SERVER_FINISHED,
    transcriptHash,
    VERIFY_DATA_LENGTH,
  );
}
