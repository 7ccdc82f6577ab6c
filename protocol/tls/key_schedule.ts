/**
 * The TLS 1.3 key schedule (RFC 8446, Section 7.1), typed by stage so that application data
 * can never be protected with handshake traffic keys.
 */
import type { CryptoProvider } from "../crypto/provider.ts";
import { ascii } from "./codec.ts";
import type { Suite } from "./wire.ts";

/** Which keys a traffic secret belongs to. */
export type KeyStage = "handshake" | "application";

/**
 * A traffic secret tagged with its stage. The stage is a type parameter: a function that needs
 * application keys takes `TrafficSecret<"application">`, and a handshake secret does not
 * type-check there (rustls's key schedule typestates).
 */
export interface TrafficSecret<S extends KeyStage = KeyStage> {
  readonly stage: S;
  readonly secret: Uint8Array;
}

/** The AEAD key and IV derived from a traffic secret (RFC 8446, Section 7.3). */
export interface TrafficKeys<S extends KeyStage = KeyStage> {
  readonly stage: S;
  readonly key: Uint8Array;
  readonly iv: Uint8Array;
}

/** Secrets after the ServerHello: the handshake traffic secrets and the next extract's input. */
export interface HandshakeSecrets {
  readonly kind: "handshake";
  readonly client: TrafficSecret<"handshake">;
  readonly server: TrafficSecret<"handshake">;
  /** Derive-Secret(Handshake Secret, "derived", "") — the salt of the master secret. */
  readonly derived: Uint8Array;
}

/** Secrets after the server Finished (RFC 8446, Section 7.1). */
export interface ApplicationSecrets {
  readonly kind: "application";
  readonly client: TrafficSecret<"application">;
  readonly server: TrafficSecret<"application">;
  readonly exporter: Uint8Array;
  readonly masterSecret: Uint8Array;
}

const LABEL_PREFIX = ascii("tls13 ");
const Labels = {
  derived: ascii("derived"),
  clientHandshake: ascii("c hs traffic"),
  serverHandshake: ascii("s hs traffic"),
  clientApplication: ascii("c ap traffic"),
  serverApplication: ascii("s ap traffic"),
  exporter: ascii("exp master"),
  key: ascii("key"),
  iv: ascii("iv"),
  finished: ascii("finished"),
  trafficUpdate: ascii("traffic upd"),
  resumptionBinder: ascii("res binder"),
  resumptionMaster: ascii("res master"),
  resumption: ascii("resumption"),
} as const;

/**
 * The HkdfLabel of each `hkdfExpandLabel` call is built here and lent to the provider as a view:
 * about 20 calls per handshake each allocated one (an off-heap ArrayBuffer in V8, about as
 * costly as a SHA-256 block). Labels and contexts (transcript hashes, ticket nonces) are public;
 * providers only read the info during the call.
 */
const infoScratch = new Uint8Array(2 + 1 + 255 + 1 + 255);

/** Zeros for HKDF inputs of HashLen zero bytes, lent as views (never written). */
const ZEROS = new Uint8Array(64);
const EMPTY = new Uint8Array(0);

/** HKDF-Expand-Label (RFC 8446, Section 7.1). */
export function hkdfExpandLabel(
  provider: CryptoProvider,
  suite: Suite,
  secret: Uint8Array,
  label: Uint8Array,
  context: Uint8Array,
  length: number,
): Uint8Array {
  // struct { uint16 length; opaque label<7..255> = "tls13 " + Label; opaque context<0..255> }
  const labelLength = LABEL_PREFIX.length + label.length;
  if (labelLength > 255 || context.length > 255 || length > 0xffff) {
    throw new RangeError("HKDF label, context or length too long");
  }
  const info = infoScratch.subarray(0, 4 + labelLength + context.length);
  info[0] = length >> 8;
  info[1] = length & 0xff;
  info[2] = labelLength;
  info.set(LABEL_PREFIX, 3);
  info.set(label, 3 + LABEL_PREFIX.length);
  info[3 + labelLength] = context.length;
  info.set(context, 4 + labelLength);
  return provider.hkdfExpand(suite.hash, secret, info, length);
}

/**
 * Per provider and hash, the values that do not depend on the connection: Hash("") and, for a
 * handshake without PSK, Derive-Secret(Early Secret, "derived", "") — the salt of the
 * Handshake Secret (RFC 8446, Section 7.1). Both are the same for every full handshake.
 */
interface Constants {
  readonly emptyHash: Uint8Array;
  readonly noPskSalt: Uint8Array;
}
const constants = new WeakMap<CryptoProvider, Map<string, Constants>>();

function constantsOf(provider: CryptoProvider, suite: Suite): Constants {
  let perHash = constants.get(provider);
  if (perHash === undefined) constants.set(provider, perHash = new Map());
  let c = perHash.get(suite.hash);
  if (c === undefined) {
    const emptyHash = provider.hash(suite.hash, new Uint8Array(0));
    const early = earlySecret(provider, suite);
    const noPskSalt = deriveSecret(provider, suite, early, Labels.derived, emptyHash);
    c = { emptyHash, noPskSalt };
    perHash.set(suite.hash, c);
  }
  return c;
}

/** Derive-Secret(Secret, Label, Messages) with the transcript hash precomputed (Section 7.1). */
export function deriveSecret(
  provider: CryptoProvider,
  suite: Suite,
  secret: Uint8Array,
  label: Uint8Array,
  transcriptHash: Uint8Array,
): Uint8Array {
  return hkdfExpandLabel(provider, suite, secret, label, transcriptHash, suite.hashLength);
}

/**
 * The Early Secret: HKDF-Extract(0, PSK), with a zero PSK when none is used
 * (RFC 8446, Section 7.1).
 */
export function earlySecret(
  provider: CryptoProvider,
  suite: Suite,
  psk: Uint8Array | null = null,
): Uint8Array {
  const zeros = new Uint8Array(suite.hashLength);
  return provider.hkdfExtract(suite.hash, zeros, psk ?? zeros);
}

/**
 * The PSK binder over a transcript hash that ends with the truncated ClientHello
 * (RFC 8446, Sections 4.2.11.2 and 7.1): HMAC under the finished_key of the "res binder" key.
 */
export function pskBinder(
  provider: CryptoProvider,
  suite: Suite,
  psk: Uint8Array,
  partialHash: Uint8Array,
): Uint8Array {
  const early = earlySecret(provider, suite, psk);
  const { emptyHash } = constantsOf(provider, suite);
  const binderKey = deriveSecret(provider, suite, early, Labels.resumptionBinder, emptyHash);
  return finishedVerifyData(
    provider,
    suite,
    { stage: "handshake", secret: binderKey },
    partialHash,
  );
}

/** resumption_master_secret over ClientHello...client Finished (RFC 8446, Section 7.1). */
export function resumptionMasterSecret(
  provider: CryptoProvider,
  suite: Suite,
  app: ApplicationSecrets,
  clientFinishedHash: Uint8Array,
): Uint8Array {
  return deriveSecret(
    provider,
    suite,
    app.masterSecret,
    Labels.resumptionMaster,
    clientFinishedHash,
  );
}

/** The PSK of one ticket: HKDF-Expand-Label(rms, "resumption", nonce) (Section 4.6.1). */
export function ticketPsk(
  provider: CryptoProvider,
  suite: Suite,
  resumptionMaster: Uint8Array,
  nonce: Uint8Array,
): Uint8Array {
  return hkdfExpandLabel(
    provider,
    suite,
    resumptionMaster,
    Labels.resumption,
    nonce,
    suite.hashLength,
  );
}

/**
 * The handshake traffic secrets from the (EC)DHE shared secret (zeros for psk_ke), the PSK of
 * a resumption (or none), and the hash of ClientHello...ServerHello (RFC 8446, Section 7.1).
 */
export function handshakeSecrets(
  provider: CryptoProvider,
  suite: Suite,
  sharedSecret: Uint8Array | null,
  helloHash: Uint8Array,
  psk: Uint8Array | null = null,
): HandshakeSecrets {
  const { emptyHash, noPskSalt } = constantsOf(provider, suite);
  const salt = psk === null
    ? noPskSalt
    : deriveSecret(provider, suite, earlySecret(provider, suite, psk), Labels.derived, emptyHash);
  const hs = provider.hkdfExtract(
    suite.hash,
    salt,
    sharedSecret ?? new Uint8Array(suite.hashLength),
  );
  return {
    kind: "handshake",
    client: {
      stage: "handshake",
      secret: deriveSecret(provider, suite, hs, Labels.clientHandshake, helloHash),
    },
    server: {
      stage: "handshake",
      secret: deriveSecret(provider, suite, hs, Labels.serverHandshake, helloHash),
    },
    derived: deriveSecret(provider, suite, hs, Labels.derived, emptyHash),
  };
}

/**
 * The application traffic secrets from the hash of ClientHello...server Finished
 * (RFC 8446, Section 7.1).
 */
export function applicationSecrets(
  provider: CryptoProvider,
  suite: Suite,
  handshake: HandshakeSecrets,
  serverFinishedHash: Uint8Array,
): ApplicationSecrets {
  const master = provider.hkdfExtract(
    suite.hash,
    handshake.derived,
    ZEROS.subarray(0, suite.hashLength),
  );
  const d = (label: Uint8Array) => deriveSecret(provider, suite, master, label, serverFinishedHash);
  let exporter: Uint8Array | undefined;
  return {
    kind: "application",
    client: { stage: "application", secret: d(Labels.clientApplication) },
    server: { stage: "application", secret: d(Labels.serverApplication) },
    // Derived on first use: no exporter is offered yet, so a handshake does not pay for it.
    get exporter(): Uint8Array {
      return exporter ??= d(Labels.exporter);
    },
    masterSecret: master,
  };
}

/** The traffic key and IV of a traffic secret (RFC 8446, Section 7.3). */
export function trafficKeys<S extends KeyStage>(
  provider: CryptoProvider,
  suite: Suite,
  secret: TrafficSecret<S>,
): TrafficKeys<S> {
  return {
    stage: secret.stage,
    key: hkdfExpandLabel(provider, suite, secret.secret, Labels.key, EMPTY, suite.keyLength),
    iv: hkdfExpandLabel(provider, suite, secret.secret, Labels.iv, EMPTY, 12),
  };
}

/** The next application traffic secret after a KeyUpdate (RFC 8446, Section 7.2). */
export function nextTrafficSecret(
  provider: CryptoProvider,
  suite: Suite,
  current: TrafficSecret<"application">,
): TrafficSecret<"application"> {
  return {
    stage: current.stage,
    secret: hkdfExpandLabel(
      provider,
      suite,
      current.secret,
      Labels.trafficUpdate,
      EMPTY,
      suite.hashLength,
    ),
  };
}

/** finished_key of a base key (RFC 8446, Section 4.4.4). */
export function finishedKey(
  provider: CryptoProvider,
  suite: Suite,
  baseKey: TrafficSecret,
): Uint8Array {
  return hkdfExpandLabel(
    provider,
    suite,
    baseKey.secret,
    Labels.finished,
    EMPTY,
    suite.hashLength,
  );
}

/** Finished.verify_data over a transcript hash (RFC 8446, Section 4.4.4). */
export function finishedVerifyData(
  provider: CryptoProvider,
  suite: Suite,
  baseKey: TrafficSecret,
  transcriptHash: Uint8Array,
): Uint8Array {
  return provider.hmac(suite.hash, finishedKey(provider, suite, baseKey), transcriptHash);
}
