/**
 * The TLS 1.3 server handshake (RFC 8446, Section 2 and 4), as a sans-IO state machine.
 *
 *        ClientHello  -------->
 *                     <--------  [HelloRetryRequest]      (no usable key share)
 *       [ClientHello] -------->
 *                                ServerHello
 *                                {EncryptedExtensions}
 *                                {CertificateRequest*}
 *                                {Certificate}
 *                                {CertificateVerify}      (signed by the driver with deferSigning)
 *                     <--------  {Finished}
 *      {Certificate*}
 *      {CertificateVerify*}
 *          {Finished} -------->
 *                                (peer verification by the driver, when a certificate came)
 *    [Application Data] <------> [Application Data]
 */
import type { CryptoProvider, KeyExchangeGroup, KeyShare, PrivateKey } from "../crypto/provider.ts";
import { constantTimeEqual } from "../crypto/provider.ts";
import type { ClientCertVerifier, VerifiedPeer } from "../x509/identity.ts";
import { TlsAlert } from "./alert.ts";
import { ascii, bytesEqual, encode, type Writer } from "./codec.ts";
import { Connection } from "./_connection.ts";
import {
  type ApplicationSecrets,
  applicationSecrets,
  finishedVerifyData,
  type HandshakeSecrets,
  handshakeSecrets,
  pskBinder,
  resumptionMasterSecret,
  ticketPsk,
} from "./key_schedule.ts";
import { writeNewSessionTicket } from "./messages/new_session_ticket.ts";
import { PskKeyExchangeMode, readOfferedPsks, readPskModes } from "./messages/pre_shared_key.ts";
import {
  decodeSession13,
  encodeSession13,
  type Session13,
  TICKET_ID_LENGTH,
  type TicketUseCounter,
  TicketUses,
} from "./session13.ts";
import type { TicketKeys } from "./ticket_keys.ts";
import { parseCertificate, writeCertificate } from "./messages/certificate.ts";
import { writeCertificateRequest } from "./messages/certificate_request.ts";
import {
  parseCertificateVerify,
  signedContent,
  writeCertificateVerify,
} from "./messages/certificate_verify.ts";
import { type ClientHello, parseClientHello } from "./messages/client_hello.ts";
import { writeEncryptedExtensions } from "./messages/encrypted_extensions.ts";
import {
  type Extension,
  findExtension,
  type KeyShareEntry,
  parseBody,
  readAlpn,
  readKeyShareClient,
  readServerName,
  readSupportedVersionsClient,
  readU16List,
  writeAlpn,
  writeCertificateAuthorities,
  writeKeyShareServer,
  writeU16List,
} from "./messages/extensions.ts";
import { parseFinished, writeFinished } from "./messages/finished.ts";
import { type HandshakeMessage, writeHandshake } from "./messages/handshake.ts";
import { serverHello, writeServerHello } from "./messages/server_hello.ts";
import {
  chooseSigningScheme,
  signingAlgorithm,
  VERIFY_SCHEMES,
  verifyingAlgorithm,
} from "./signature_scheme.ts";
import type { SignatureRequest, SignatureResult } from "./signing.ts";
import { Transcript } from "./transcript.ts";
import {
  type AlertName,
  type CipherSuiteName,
  DEFAULT_GROUPS,
  DEFAULT_SUITES,
  ExtensionType,
  HandshakeType,
  HELLO_RETRY_REQUEST_RANDOM,
  isNistGroup,
  MAX_CLIENT_HELLO,
  MAX_HANDSHAKE_MESSAGE,
  NamedGroup,
  type Suite,
  suiteByCode,
  suiteByName,
  TLS13,
} from "./wire.ts";

/** Whether the server asks for a client certificate (RFC 8446, Section 4.3.2). */
export type ClientAuthMode = "none" | "optional" | "required";

/** Client certificate policy (RFC 8446, Section 4.3.2). */
export interface ClientAuthConfig {
  mode: ClientAuthMode;
  verifier: ClientCertVerifier;
}

export interface ServerConfig {
  provider: CryptoProvider;
  /** DER certificates, leaf first. */
  certificateChain: readonly Uint8Array[];
  privateKey: PrivateKey;
  /** Cipher suites in preference order (default `DEFAULT_SUITES`: ChaCha20, AES-128, AES-256). */
  cipherSuites?: readonly CipherSuiteName[];
  /** Groups in preference order (default: x25519, secp256r1, secp384r1). */
  groups?: readonly KeyExchangeGroup[];
  /** ALPN protocols in preference order, e.g. ["imap"]; omitted means ALPN is ignored. */
  alpnProtocols?: readonly string[];
  clientAuth?: ClientAuthConfig;
  /** Records sent under one key before we send KeyUpdate ourselves (default 2^24). */
  keyUpdateAfterRecords?: number;
  /**
   * The keys that seal resumption tickets (shared with TLS 1.2); without them no
   * NewSessionTicket is sent and every pre_shared_key offer is ignored.
   */
  ticketKeys?: TicketKeys;
  /** Per-ticket use counts, shared by every connection (default: one per process). */
  ticketUses?: TicketUseCounter;
  /** NewSessionTickets sent after each handshake (default 2; 0 sends none). */
  ticketsPerConnection?: number;
  /**
   * PSK key exchange modes accepted (RFC 8446, Section 4.2.9). The default, psk_dhe_ke only,
   * keeps forward secrecy; psk_ke is opt-in.
   */
  pskModes?: readonly ("psk_dhe_ke" | "psk_ke")[];
  /** Milliseconds since the epoch, for ticket ages (default `Date.now`). */
  now?: () => number;
  /**
   * Ask the driver for the handshake signature (a `signatureRequired` event answered by
   * `completeSignature()`) instead of signing inline with `provider` (default false).
   */
  deferSigning?: boolean;
  /**
   * When no client certificate takes part (none requested, none carried by the resumed ticket),
   * let the application send data right after our Finished, before the client's Finished
   * arrives (`canSend`; RFC 8446, Section 2): a server that speaks first (an IMAP greeting)
   * then answers a ClientHello in one write, a round trip earlier. The client's Finished is
   * still required, and verified, before any of its data is accepted (default false).
   */
  halfRtt?: boolean;
}

/** The outcome of the driver's asynchronous check of a verified client certificate. */
export type PeerVerificationResult =
  | { ok: true }
  | { ok: false; alert: AlertName; reason: string };

/** What the handshake negotiated, for logs and the layers above. */
export interface ConnectionInfo {
  version: "TLSv1.2" | "TLSv1.3";
  cipherSuite: string;
  group: string;
  sni: string | null;
  alpn: string | null;
  helloRetry: boolean;
  peer: VerifiedPeer | null;
  /** The session was resumed (a TLS 1.3 PSK ticket; a TLS 1.2 ticket or session ID). */
  resumed?: boolean;
  /** TLS 1.3: resumed with a ticket issued after the application vouched for the peer. */
  vouched?: boolean;
  /** TLS 1.2: the extended master secret (RFC 7627) was negotiated. */
  extendedMasterSecret?: boolean;
}

/** What the ClientHello and our configuration agree on (before key exchange). */
interface Negotiated {
  readonly suite: Suite;
  readonly group: KeyExchangeGroup;
  /** The client's share for `group`, or null when a HelloRetryRequest must ask for it. */
  readonly share: KeyShareEntry | null;
  readonly scheme: number;
  readonly alpn: Uint8Array | null;
  readonly sni: Uint8Array | null;
}

/** A ticket the server accepted from the ClientHello's pre_shared_key (Section 4.2.11). */
interface AcceptedPsk {
  readonly index: number;
  readonly session: Session13;
  /** psk_dhe_ke (true) or psk_ke (false). */
  readonly dhe: boolean;
  /** The ticket's client certificate, verified again; null when it had none. */
  readonly peer: VerifiedPeer | null;
  /** A vouched ticket (sealed after the application vouched for the peer). */
  readonly vouched: boolean;
}

/** What the server's flight carries from the ServerHello to its Finished. */
interface Flight {
  readonly suite: Suite;
  readonly transcript: Transcript;
  readonly secrets: HandshakeSecrets;
}

/** The state the flight ends in: the client's certificate, or straight to its Finished. */
type AfterFlight =
  | { readonly kind: "expectCertificate" }
  | { readonly kind: "expectFinished"; readonly peer: VerifiedPeer | null };

/** Keys and transcript shared by the states after the ServerHello. */
interface Handshake {
  readonly suite: Suite;
  readonly transcript: Transcript;
  readonly secrets: HandshakeSecrets;
  readonly app: ApplicationSecrets;
}

type ServerState =
  | { kind: "expectClientHello" }
  | { kind: "expectSecondClientHello"; first: ClientHello; negotiated: Negotiated; t: Transcript }
  | { kind: "awaitSignature"; flight: Flight; scheme: number; next: AfterFlight }
  | { kind: "expectCertificate"; hs: Handshake }
  | { kind: "expectCertificateVerify"; hs: Handshake; peer: VerifiedPeer }
  | {
    kind: "expectFinished";
    hs: Handshake;
    peer: VerifiedPeer | null;
    /** The client's verify_data, computed ahead when no client certificate takes part. */
    expected?: Uint8Array | null;
  }
  | { kind: "awaitPeerVerification"; peer: VerifiedPeer }
  | { kind: "connected" };

/** RFC 8446, Section 4.6.1: a ticket lives at most seven days. */
const MAX_TICKET_LIFETIME_SECONDS = 7 * 24 * 3600;
/**
 * How far the client's ticket age (Section 4.2.11.1) may differ from ours: it may not be newer
 * than ours by more than this (clock skew), nor older by more than `TICKET_AGE_LAG_MS`
 * (round trips and delays between issue and receipt). Outside: full handshake.
 */
const TICKET_AGE_SKEW_MS = 10_000;
const TICKET_AGE_LAG_MS = 60_000;
/** PSK identities examined per ClientHello: each one costs an AEAD open. */
const MAX_PSK_IDENTITIES_TRIED = 4;

let defaultTicketUses: TicketUses | null = null;

/** What counts a configuration's ticket uses: its own counter, or the process's default. */
export function ticketUsesOf(config: Pick<ServerConfig, "ticketUses">): TicketUseCounter {
  return config.ticketUses ?? (defaultTicketUses ??= new TicketUses());
}

/**
 * The suites and ALPN protocols of a configuration, mapped once for all its connections (a
 * connection's own copies would live as long as it does, through every young-generation
 * collection meanwhile).
 */
const suiteLists = new WeakMap<readonly CipherSuiteName[], readonly Suite[]>();
const alpnLists = new WeakMap<readonly string[], readonly Uint8Array[]>();
const NO_ALPN: readonly string[] = [];

function cached<K, V>(
  cache: WeakMap<readonly K[], readonly V[]>,
  list: readonly K[],
  f: (k: K) => V,
) {
  let mapped = cache.get(list);
  if (mapped === undefined) cache.set(list, mapped = list.map(f));
  return mapped;
}

/** Random bytes per NewSessionTicket: its ticket_age_add (4) and its id for use counting. */
const TICKET_RANDOM_LENGTH = 4 + TICKET_ID_LENGTH;
const EMPTY = new Uint8Array(0);
/** The ticket_nonce of each ticket of a connection (0, 1, ...), shared: it is only read. */
const TICKET_NONCES = [Uint8Array.of(0), Uint8Array.of(1), Uint8Array.of(2), Uint8Array.of(3)];

/** The encoded Certificate message of each server chain (never modified once queued). */
const encodedCertificates = new WeakMap<readonly Uint8Array[], Uint8Array>();

/** How much rejected 0-RTT data we skip before giving up (RFC 8446, Section 4.2.10). */
const MAX_REJECTED_EARLY_DATA = 64 * 1024;

/** SSL 3.0's version number; a ClientHello at or below it is refused (RFC 8446, D.5). */
const SSL30 = 0x0300;

/** A CertificateVerify body: scheme, length and a signature of up to RSA-8192 (1024 bytes). */
const MAX_CERTIFICATE_VERIFY = 4 + 1024;
/** A Finished body: verify_data of the longest hash we negotiate (SHA-384), with headroom. */
const MAX_FINISHED = 64;

/** Extensions a second ClientHello may change (RFC 8446, Section 4.1.2). */
const RETRY_MUTABLE_EXTENSIONS: ReadonlySet<number> = new Set([
  ExtensionType.key_share,
  ExtensionType.cookie,
  ExtensionType.early_data,
  ExtensionType.pre_shared_key,
  ExtensionType.padding,
]);

export class TlsServerConnection extends Connection {
  readonly #config: ServerConfig;
  readonly #suites: readonly Suite[];
  readonly #groups: readonly KeyExchangeGroup[];
  readonly #alpn: readonly Uint8Array[];
  #state: ServerState = { kind: "expectClientHello" };
  #ccsSeen = false;
  #ccsSent = false;
  #helloRetry = false;
  #negotiated: Negotiated | null = null;
  #peer: VerifiedPeer | null = null;
  /** The client's certificate chain as sent (or as carried by the ticket), for new tickets. */
  #peerChain: readonly Uint8Array[] = [];
  #resumed = false;
  /** Resumed with a vouched ticket. */
  #vouchedResumption = false;
  /** The client listed a PSK mode we accept, so it can use our tickets (RFC 8446, 4.2.9). */
  #wantsTickets = false;
  /**
   * resumption_master_secret, set after the client Finished when tickets will be sent, and kept
   * after the handshake's tickets for one vouched ticket (`vouch()`).
   */
  #resumptionMaster: Uint8Array | null = null;
  /** The ticket_nonce of the next NewSessionTicket (unique within the connection). */
  #ticketNonce = 0;
  /** The handshake's tickets went out before the client's Finished (`afterInput`). */
  #earlyTickets = false;

  constructor(config: ServerConfig) {
    super(config.provider, config.keyUpdateAfterRecords);
    if (config.certificateChain.length === 0) throw new Error("Server certificate chain is empty");
    this.#config = config;
    this.#suites = cached(suiteLists, config.cipherSuites ?? DEFAULT_SUITES, suiteByName);
    this.#groups = config.groups ?? DEFAULT_GROUPS;
    this.#alpn = cached(alpnLists, config.alpnProtocols ?? NO_ALPN, ascii);
  }

  /** What was negotiated; fields are empty strings until the ServerHello is sent. */
  info(): ConnectionInfo {
    const n = this.#negotiated;
    return {
      version: "TLSv1.3",
      cipherSuite: n?.suite.name ?? "",
      group: n?.group ?? "",
      sni: n?.sni ? latin1(n.sni) : null,
      alpn: n?.alpn ? latin1(n.alpn) : null,
      helloRetry: this.#helloRetry,
      peer: this.#peer,
      resumed: this.#resumed,
      vouched: this.#vouchedResumption,
    };
  }

  /**
   * The application vouches for the peer (an IMAP login): sends one more NewSessionTicket,
   * marked vouched, after the handshake's (RFC 8446, Section 4.6.1 lets a server send one at
   * any time). A ClientHello that later offers it may skip the queue of new handshakes
   * (protocol/tls/vouched_ticket.ts). At most one per connection; none when the client wants
   * no tickets or tickets are off.
   */
  vouch(): void {
    const rms = this.#resumptionMaster;
    if (rms === null || this.#state.kind !== "connected" || this.closed) return;
    this.#resumptionMaster = null;
    this.#sendTickets(rms, 1, true);
    rms.fill(0);
  }

  /**
   * Resumes a handshake that waits on the driver's check of the client certificate (e.g. the
   * directory lookup). On rejection the given alert is sent and the connection closes.
   */
  completePeerVerification(result: PeerVerificationResult): void {
    if (this.#state.kind !== "awaitPeerVerification") return;
    if (!result.ok) {
      this.fail(new TlsAlert(result.alert, result.reason));
      return;
    }
    this.#state = { kind: "connected" };
    try {
      this.#establish();
      this.pump();
    } catch (e) {
      this.fail(e);
    }
  }

  /**
   * Resumes a flight that waits for its CertificateVerify signature (`deferSigning`). A failed
   * signature ends the handshake with internal_error; an answer after the connection was
   * closed or failed is ignored.
   */
  completeSignature(result: SignatureResult): void {
    const s = this.#state;
    if (s.kind !== "awaitSignature" || this.closed || this.outputClosed) return;
    if (!result.ok) {
      this.fail(new TlsAlert("internal_error", `Cannot sign CertificateVerify: ${result.reason}`));
      return;
    }
    try {
      this.#finishFlight(s.flight, s.scheme, result.signature, s.next);
      this.pump();
    } catch (e) {
      this.fail(e);
    }
  }

  protected override get acceptingInput(): boolean {
    const k = this.#state.kind;
    return k !== "awaitPeerVerification" && k !== "awaitSignature";
  }

  protected override acceptChangeCipherSpec(): boolean {
    const k = this.#state.kind;
    const inWindow = k === "expectSecondClientHello" || k === "expectCertificate" ||
      k === "expectCertificateVerify" || k === "expectFinished";
    if (!inWindow || this.#ccsSeen) return false;
    this.#ccsSeen = true;
    return true;
  }

  /**
   * Per-state limits on incoming handshake messages: only the message the state expects is
   * accepted, and only the ClientHello may be large (up to `MAX_CLIENT_HELLO`, over several
   * records). Anything else, such as handshake bytes after the client Finished, is
   * `unexpected_message` as soon as its header is read, whatever length it declares; an
   * expected message that declares more than its limit is `decode_error`.
   */
  protected override maxHandshakeLength(type: number): number {
    const k = this.#state.kind;
    const only = (t: number, limit: number) => type === t ? limit : -1;
    switch (k) {
      case "expectClientHello":
      case "expectSecondClientHello":
        return only(HandshakeType.client_hello, MAX_CLIENT_HELLO);
      case "expectCertificate":
        return only(HandshakeType.certificate, MAX_HANDSHAKE_MESSAGE);
      case "expectCertificateVerify":
        return only(HandshakeType.certificate_verify, MAX_CERTIFICATE_VERIFY);
      case "expectFinished":
        return only(HandshakeType.finished, MAX_FINISHED);
      case "awaitSignature":
        return -1;
      case "awaitPeerVerification":
      case "connected":
        return only(HandshakeType.key_update, 1);
      default: {
        const never: never = k;
        throw new Error(`Unknown state ${never}`);
      }
    }
  }

  protected override onPostHandshakeMessage(_msg: HandshakeMessage): void {
    throw new TlsAlert("unexpected_message", "Unexpected post-handshake message");
  }

  protected override onHandshakeMessage(msg: HandshakeMessage): void {
    const s = this.#state;
    switch (s.kind) {
      case "expectClientHello":
        return this.#onClientHello(expect(msg, HandshakeType.client_hello));
      case "expectSecondClientHello":
        return this.#onSecondClientHello(s, expect(msg, HandshakeType.client_hello));
      case "expectCertificate":
        return this.#onCertificate(s, expect(msg, HandshakeType.certificate));
      case "expectCertificateVerify":
        return this.#onCertificateVerify(s, expect(msg, HandshakeType.certificate_verify));
      case "expectFinished":
        return this.#onFinished(s, expect(msg, HandshakeType.finished));
      case "awaitSignature":
        throw new TlsAlert("unexpected_message", "Handshake message before our Finished");
      case "awaitPeerVerification":
      case "connected":
        throw new TlsAlert("unexpected_message", "Handshake message after Finished");
      default: {
        const never: never = s;
        throw new Error(`Unknown state ${JSON.stringify(never)}`);
      }
    }
  }

  // ---- ClientHello -> [HelloRetryRequest] ----

  #onClientHello(msg: HandshakeMessage): void {
    const ch = parseClientHello(msg.body);
    const n = this.#negotiate(ch);
    this.#wantsTickets = this.#clientWantsTickets(ch);
    const t = new Transcript(this.provider);
    t.start(n.suite.hash);
    this.setSuite(n.suite);
    this.#negotiated = n;
    // A psk_dhe_ke resumption needs a key share too; without one the retry comes first and
    // the PSK is examined in the second ClientHello, whose binders cover the retry.
    const psk = n.share === null && !this.#pskModeAllowed(false)
      ? null
      : this.#acceptPsk(ch, msg.encoded, n, t);
    t.add(msg.encoded);
    if (n.share === null && (psk === null || psk.dhe)) {
      return this.#sendHelloRetryRequest(ch, n, t);
    }
    this.#sendServerFlight(ch, n, t, psk);
  }

  /** HelloRetryRequest (RFC 8446, Section 4.1.4) with the message_hash transcript. */
  #sendHelloRetryRequest(ch: ClientHello, n: Negotiated, t: Transcript): void {
    this.#helloRetry = true;
    t.replaceWithMessageHash();
    const hrr = writeHandshake(HandshakeType.server_hello, (w) =>
      writeServerHello(
        w,
        serverHello(HELLO_RETRY_REQUEST_RANDOM, ch.legacySessionId, n.suite.code, [
          { type: ExtensionType.key_share, data: encode(u16, NamedGroup[n.group].code) },
          { type: ExtensionType.supported_versions, data: encode(u16, TLS13) },
        ]),
      ));
    t.add(hrr);
    this.queueHandshake(hrr);
    this.#maybeSendChangeCipherSpec(ch);
    this.flush();
    if (findExtension(ch.extensions, ExtensionType.early_data) !== undefined) {
      // RFC 8446, Section 4.2.10: 0-RTT records may follow the first ClientHello; skip them
      // until the second ClientHello, which must not offer early data again.
      this.skipRejectedEarlyData(MAX_REJECTED_EARLY_DATA);
    }
    this.#state = { kind: "expectSecondClientHello", first: ch, negotiated: n, t };
  }

  /** The second ClientHello must repeat the first apart from the retry's changes. */
  #onSecondClientHello(
    s: Extract<ServerState, { kind: "expectSecondClientHello" }>,
    msg: HandshakeMessage,
  ): void {
    const ch = parseClientHello(msg.body);
    checkRetryConsistency(s.first, ch);
    const shares = readKeyShares(ch);
    const code = NamedGroup[s.negotiated.group].code;
    if (shares.length !== 1 || shares[0]!.group !== code) {
      throw new TlsAlert("illegal_parameter", "Second ClientHello lacks the requested key share");
    }
    const n = this.#negotiate(ch);
    if (n.suite.code !== s.negotiated.suite.code || n.group !== s.negotiated.group) {
      throw new TlsAlert("illegal_parameter", "Second ClientHello changed the negotiation");
    }
    this.#negotiated = n;
    const psk = this.#acceptPsk(ch, msg.encoded, n, s.t);
    s.t.add(msg.encoded);
    this.#sendServerFlight(ch, n, s.t, psk);
  }

  /** Whether the client's psk_key_exchange_modes lists a mode we accept. */
  #clientWantsTickets(ch: ClientHello): boolean {
    const body = findExtension(ch.extensions, ExtensionType.psk_key_exchange_modes);
    if (body === undefined) return false;
    const modes = parseBody(body, "psk_key_exchange_modes", readPskModes);
    return (modes.includes(PskKeyExchangeMode.psk_dhe_ke) && this.#pskModeAllowed(true)) ||
      (modes.includes(PskKeyExchangeMode.psk_ke) && this.#pskModeAllowed(false));
  }

  #pskModeAllowed(dhe: boolean): boolean {
    const modes = this.#config.pskModes ?? ["psk_dhe_ke"];
    return modes.includes(dhe ? "psk_dhe_ke" : "psk_ke");
  }

  /**
   * Picks the first offered ticket we can resume (RFC 8446, Section 4.2.11): it opens under
   * our ticket keys, its suite has the negotiated hash, its age is plausible, it was issued
   * for the same server name, it has uses left, and its client certificate (if any) still
   * verifies. Any other ticket is skipped and the handshake is a full one. The binder of the
   * chosen ticket is checked in constant time; a wrong binder is decrypt_error.
   */
  #acceptPsk(
    ch: ClientHello,
    encoded: Uint8Array,
    n: Negotiated,
    t: Transcript,
  ): AcceptedPsk | null {
    const keys = this.#config.ticketKeys;
    const body = findExtension(ch.extensions, ExtensionType.pre_shared_key);
    if (keys === undefined || body === undefined) return null;
    const modesBody = findExtension(ch.extensions, ExtensionType.psk_key_exchange_modes);
    if (modesBody === undefined) {
      throw new TlsAlert("missing_extension", "pre_shared_key without psk_key_exchange_modes");
    }
    const offered = parseBody(body, "pre_shared_key", readOfferedPsks);
    const modes = parseBody(modesBody, "psk_key_exchange_modes", readPskModes);
    let dhe: boolean;
    if (modes.includes(PskKeyExchangeMode.psk_dhe_ke) && this.#pskModeAllowed(true)) dhe = true;
    else if (modes.includes(PskKeyExchangeMode.psk_ke) && this.#pskModeAllowed(false)) {
      dhe = false;
    } else return null;

    const now = (this.#config.now ?? Date.now)();
    const lifetimeMs = this.#ticketLifetimeSeconds(keys) * 1000;
    const auth = this.#config.clientAuth;
    const tried = Math.min(offered.identities.length, MAX_PSK_IDENTITIES_TRIED);
    for (let index = 0; index < tried; index++) {
      const offer = offered.identities[index]!;
      const opened = keys.open(offer.identity);
      if (opened === null) continue;
      const session = decodeSession13(opened.state);
      if (session === null) continue;
      const suite = suiteByCode(session.suite);
      if (suite === null || suite.hash !== n.suite.hash) continue;
      const serverAge = now - session.createdAt;
      const clientAge = (offer.obfuscatedTicketAge - session.ageAdd + 2 ** 32) % 2 ** 32;
      if (
        serverAge < 0 || serverAge > lifetimeMs || clientAge > serverAge + TICKET_AGE_SKEW_MS ||
        clientAge < serverAge - TICKET_AGE_LAG_MS
      ) continue;
      if (!bytesEqual(session.serverName, n.sni ?? new Uint8Array(0))) continue;
      let peer: VerifiedPeer | null = null;
      if (auth !== undefined && auth.mode !== "none") {
        if (session.peerChain.length === 0) {
          if (auth.mode === "required") continue;
        } else {
          try {
            peer = auth.verifier.verify(session.peerChain);
          } catch {
            continue;
          }
        }
      }
      // The truncated ClientHello ends before the binders list (Section 4.2.11.2).
      const partial = encoded.subarray(0, encoded.length - (body.length - offered.bindersOffset));
      const expected = pskBinder(this.provider, n.suite, session.psk, t.currentWith(partial));
      if (!constantTimeEqual(expected, offered.binders[index]!)) {
        throw new TlsAlert("decrypt_error", "PSK binder does not verify");
      }
      if (!ticketUsesOf(this.#config).take(session.id, session.createdAt + lifetimeMs, now)) {
        continue;
      }
      return { index, session, dhe, peer, vouched: opened.vouched };
    }
    return null;
  }

  #ticketLifetimeSeconds(keys: TicketKeys): number {
    return Math.min(keys.ticketLifetimeSeconds, MAX_TICKET_LIFETIME_SECONDS);
  }

  /** Chooses version, suite, group, signature scheme and ALPN from a ClientHello. */
  #negotiate(ch: ClientHello): Negotiated {
    const ext = (type: number) => findExtension(ch.extensions, type);

    // RFC 8446, Appendix D.5: a legacy_version of SSL 3.0 or below (or garbage such as 0x0000)
    // is refused outright, even when supported_versions offers TLS 1.3.
    if (ch.legacyVersion <= SSL30) {
      throw new TlsAlert("protocol_version", "ClientHello legacy_version is SSL 3.0 or older");
    }
    const versions = ext(ExtensionType.supported_versions);
    if (versions === undefined) {
      throw new TlsAlert("protocol_version", "Client does not offer TLS 1.3");
    }
    if (!parseBody(versions, "supported_versions", readSupportedVersionsClient).includes(TLS13)) {
      throw new TlsAlert("protocol_version", "Client does not offer TLS 1.3");
    }
    if (ch.legacyCompressionMethods.length !== 1 || ch.legacyCompressionMethods[0] !== 0) {
      throw new TlsAlert("illegal_parameter", "Compression methods must be exactly [null]");
    }

    const suite = this.#suites.find((s) => ch.cipherSuites.includes(s.code));
    if (suite === undefined) throw new TlsAlert("handshake_failure", "No common cipher suite");

    const sigAlgs = ext(ExtensionType.signature_algorithms);
    if (sigAlgs === undefined) {
      throw new TlsAlert("missing_extension", "ClientHello lacks signature_algorithms");
    }
    const groupsBody = ext(ExtensionType.supported_groups);
    if (groupsBody === undefined) {
      throw new TlsAlert("missing_extension", "ClientHello lacks supported_groups");
    }
    if (ext(ExtensionType.key_share) === undefined) {
      throw new TlsAlert("missing_extension", "ClientHello lacks key_share");
    }
    const clientGroups = parseBody(groupsBody, "supported_groups", (r) => readU16List(r, 2));
    const shares = readKeyShares(ch);
    for (const s of shares) {
      if (!clientGroups.includes(s.group)) {
        throw new TlsAlert("illegal_parameter", "Key share for a group not in supported_groups");
      }
    }

    // Prefer a group the client already sent a share for (no extra round trip), in our order;
    // otherwise ask for our most preferred group the client supports.
    let group: KeyExchangeGroup | undefined;
    let share: KeyShareEntry | null = null;
    for (const g of this.#groups) {
      const s = shares.find((e) => e.group === NamedGroup[g].code);
      if (s !== undefined) {
        group = g;
        share = s;
        break;
      }
    }
    group ??= this.#groups.find((g) => clientGroups.includes(NamedGroup[g].code));
    if (group === undefined) throw new TlsAlert("handshake_failure", "No common group");

    const schemes = parseBody(sigAlgs, "signature_algorithms", (r) => readU16List(r, 2));
    const scheme = chooseSigningScheme(this.#config.privateKey, schemes);
    if (scheme === null) {
      throw new TlsAlert("handshake_failure", "No common signature scheme");
    }

    let alpn: Uint8Array | null = null;
    const alpnBody = ext(ExtensionType.application_layer_protocol_negotiation);
    if (alpnBody !== undefined && this.#alpn.length > 0) {
      const offered = parseBody(alpnBody, "ALPN", readAlpn);
      alpn = this.#alpn.find((p) => offered.some((o) => bytesEqual(o, p))) ?? null;
      if (alpn === null) {
        throw new TlsAlert("no_application_protocol", "No common application protocol");
      }
    }

    const sniBody = ext(ExtensionType.server_name);
    const sni = sniBody === undefined ? null : parseBody(sniBody, "server_name", readServerName);

    return { suite, group, share, scheme, alpn, sni };
  }

  // ---- ServerHello, {EncryptedExtensions}, {CertificateRequest}, {Certificate},
  //      {CertificateVerify}, {Finished} ----

  /**
   * The server's flight (RFC 8446, Section 2), one step per message. A resumption skips the
   * certificate messages (Section 2.2). With `deferSigning` the flight pauses before the
   * CertificateVerify until the driver hands back the signature.
   */
  #sendServerFlight(
    ch: ClientHello,
    n: Negotiated,
    t: Transcript,
    psk: AcceptedPsk | null,
  ): void {
    const secrets = this.#sendServerHello(ch, n, t, psk);
    this.#sendEncryptedExtensions(n, t);
    const flight: Flight = { suite: n.suite, transcript: t, secrets };
    if (psk !== null) {
      this.#resumed = true;
      this.#vouchedResumption = psk.vouched;
      this.#peerChain = psk.peer === null ? [] : psk.session.peerChain;
      return this.#sendServerFinished(flight, { kind: "expectFinished", peer: psk.peer });
    }
    const requestCert = this.#sendCertificateRequest(t);
    this.#sendServerCertificate(t);
    const next: AfterFlight = requestCert
      ? { kind: "expectCertificate" }
      : { kind: "expectFinished", peer: null };
    this.#sendCertificateVerify(flight, n.scheme, next);
  }

  /**
   * ServerHello with our key share (Section 4.1.3), the compatibility change_cipher_spec, and
   * the switch to handshake traffic keys (Section 7.1).
   */
  #sendServerHello(
    ch: ClientHello,
    n: Negotiated,
    t: Transcript,
    psk: AcceptedPsk | null,
  ): HandshakeSecrets {
    const peerShare = psk !== null && !psk.dhe ? null : n.share!;
    const shared = peerShare === null ? null : this.#agree(n.group, peerShare.keyExchange);
    const extensions: Extension[] = [];
    if (peerShare !== null && shared !== null) {
      extensions.push({
        type: ExtensionType.key_share,
        data: encode(writeKeyShareServer, {
          group: peerShare.group,
          keyExchange: shared.publicKey,
        }),
      });
    }
    if (psk !== null) {
      extensions.push({ type: ExtensionType.pre_shared_key, data: encode(u16, psk.index) });
    }
    extensions.push({ type: ExtensionType.supported_versions, data: encode(u16, TLS13) });
    const random = this.provider.randomBytes(32);
    this.#sendMessage(t, HandshakeType.server_hello, (w) =>
      writeServerHello(
        w,
        serverHello(random, ch.legacySessionId, n.suite.code, extensions),
      ));
    this.#maybeSendChangeCipherSpec(ch);

    const secrets = handshakeSecrets(
      this.provider,
      n.suite,
      shared?.secret ?? null,
      t.current(),
      psk?.session.psk ?? null,
    );
    this.setWriteSecret(secrets.server);
    this.setReadSecret(secrets.client);
    // Rejected 0-RTT data may only precede the first ServerHello's keys: after a
    // HelloRetryRequest the client sends none, so an unreadable record is then bad_record_mac.
    const offeredEarlyData = findExtension(ch.extensions, ExtensionType.early_data) !== undefined;
    this.skipRejectedEarlyData(
      !this.#helloRetry && offeredEarlyData ? MAX_REJECTED_EARLY_DATA : 0,
    );
    return secrets;
  }

  /** EncryptedExtensions (Section 4.3.1): the chosen ALPN protocol, if any. */
  #sendEncryptedExtensions(n: Negotiated, t: Transcript): void {
    const extensions: Extension[] = [];
    if (n.alpn !== null) {
      extensions.push({
        type: ExtensionType.application_layer_protocol_negotiation,
        data: encode(writeAlpn, [n.alpn]),
      });
    }
    this.#sendMessage(
      t,
      HandshakeType.encrypted_extensions,
      (w) => writeEncryptedExtensions(w, { extensions }),
    );
  }

  /** CertificateRequest (Section 4.3.2) when client certificates are asked for. */
  #sendCertificateRequest(t: Transcript): boolean {
    const auth = this.#config.clientAuth;
    if (auth === undefined || auth.mode === "none") return false;
    const extensions: Extension[] = [{
      type: ExtensionType.signature_algorithms,
      data: encode((w, v: readonly number[]) => writeU16List(w, 2, v), VERIFY_SCHEMES),
    }];
    if (auth.verifier.authorityNames.length > 0) {
      extensions.push({
        type: ExtensionType.certificate_authorities,
        data: encode(writeCertificateAuthorities, auth.verifier.authorityNames),
      });
    }
    this.#sendMessage(
      t,
      HandshakeType.certificate_request,
      (w) => writeCertificateRequest(w, { context: new Uint8Array(0), extensions }),
    );
    return true;
  }

  /**
   * Certificate (Section 4.4.2): our chain, leaf first. The message is the same in every full
   * handshake with this chain, so it is encoded once.
   */
  #sendServerCertificate(t: Transcript): void {
    const chain = this.#config.certificateChain;
    let msg = encodedCertificates.get(chain);
    if (msg === undefined) {
      msg = writeHandshake(HandshakeType.certificate, (w) =>
        writeCertificate(w, {
          context: new Uint8Array(0),
          entries: chain.map((data) => ({ data, extensions: [] })),
        }));
      encodedCertificates.set(chain, msg);
    }
    t.add(msg);
    this.queueHandshake(msg);
  }

  /**
   * CertificateVerify (Section 4.4.3): signs the transcript so far at once, or, with
   * `deferSigning`, asks the driver for the signature and waits in `awaitSignature`.
   */
  #sendCertificateVerify(flight: Flight, scheme: number, next: AfterFlight): void {
    const request: SignatureRequest = {
      key: this.#config.privateKey,
      algorithm: signingAlgorithm(scheme),
      message: signedContent("server", flight.transcript.current()),
    };
    if (this.#config.deferSigning === true) {
      this.#state = { kind: "awaitSignature", flight, scheme, next };
      this.emit({ kind: "signatureRequired", request });
      return;
    }
    const signature = this.provider.sign(request.key, request.algorithm, request.message);
    this.#finishFlight(flight, scheme, signature, next);
  }

  /** The signed CertificateVerify, then the server Finished. */
  #finishFlight(flight: Flight, scheme: number, signature: Uint8Array, next: AfterFlight): void {
    this.#sendMessage(
      flight.transcript,
      HandshakeType.certificate_verify,
      (w) => writeCertificateVerify(w, { scheme, signature }),
    );
    this.#sendServerFinished(flight, next);
  }

  /**
   * Finished (Section 4.4.4), sent under the handshake keys; then our side switches to the
   * application traffic keys, while the read side keeps the handshake keys until the client's
   * Finished.
   */
  #sendServerFinished(flight: Flight, next: AfterFlight): void {
    const { suite, transcript: t, secrets } = flight;
    const verifyData = finishedVerifyData(this.provider, suite, secrets.server, t.current());
    this.#sendMessage(t, HandshakeType.finished, (w) => writeFinished(w, { verifyData }));
    const app = applicationSecrets(this.provider, suite, secrets, t.current());
    this.setWriteSecret(app.server);
    const hs: Handshake = { suite, transcript: t, secrets, app };
    if (next.kind === "expectCertificate") {
      this.#state = { kind: "expectCertificate", hs };
      return;
    }
    // Without a client certificate, the client's Finished is determined by the transcript
    // through ours (Section 4.6.1): computed now, for early tickets (`afterInput`) and half-RTT.
    const expected = next.peer === null
      ? finishedVerifyData(this.provider, suite, secrets.client, t.current())
      : null;
    if (expected !== null && this.#config.halfRtt === true) this.openHalfRtt();
    this.#state = { kind: "expectFinished", hs, peer: next.peer, expected };
  }

  /** How many NewSessionTickets a handshake sends: none when the client cannot use them. */
  #ticketCount(): number {
    if (!this.#wantsTickets || this.#config.ticketKeys === undefined) return 0;
    return this.#config.ticketsPerConnection ?? 2;
  }

  /**
   * The client's change_cipher_spec came without its Finished (rustls writes them apart), and no
   * client certificate takes part. With Nagle's algorithm on, the client holds its Finished until
   * that record is acknowledged, and a server that sends nothing leaves it to its delayed ACK
   * (40 ms on Linux). So the tickets go now, derived from the Finished the transcript determines
   * (Section 4.6.1), and our ACK goes with them. (Otherwise they follow the client's Finished,
   * which that write acknowledges in turn.)
   */
  protected override afterInput(): void {
    const s = this.#state;
    if (s.kind !== "expectFinished" || !s.expected || !this.#ccsSeen || this.#earlyTickets) return;
    this.#earlyTickets = true;
    const count = this.#ticketCount();
    if (count === 0) return;
    const { suite, app, transcript: t } = s.hs;
    const finished = writeHandshake(
      HandshakeType.finished,
      (w) => writeFinished(w, { verifyData: s.expected! }),
    );
    const rms = resumptionMasterSecret(this.provider, suite, app, t.currentWith(finished));
    this.#resumptionMaster = rms;
    this.#sendTickets(rms, count, false);
  }

  /** Marks the connection established and sends its NewSessionTickets (Section 4.6.1). */
  #establish(): void {
    this.establish();
    const done = this.#negotiated;
    if (done !== null) {
      // The client's key share and the names are views into the ClientHello: keep copies of
      // the names only, so that an established connection does not hold the whole message.
      this.#negotiated = {
        ...done,
        share: null,
        alpn: done.alpn === null ? null : done.alpn.slice(),
        sni: done.sni === null ? null : done.sni.slice(),
      };
    }
    const rms = this.#resumptionMaster;
    if (rms === null || this.#earlyTickets) return;
    this.#sendTickets(rms, this.#config.ticketsPerConnection ?? 2, false);
  }

  /** Queues and flushes `count` NewSessionTickets from `rms` (Section 4.6.1). */
  #sendTickets(rms: Uint8Array, count: number, vouched: boolean): void {
    const keys = this.#config.ticketKeys;
    const suite = this.negotiatedSuite;
    if (keys === undefined || suite === null) return;
    const n = this.#negotiated;
    const createdAt = (this.#config.now ?? Date.now)();
    const lifetime = this.#ticketLifetimeSeconds(keys);
    // One draw for every ticket's ticket_age_add and use-counting id (each ticket's own bytes).
    const random = this.provider.randomBytes(count * TICKET_RANDOM_LENGTH);
    for (let i = 0; i < count; i++) {
      const drawn = random.subarray(i * TICKET_RANDOM_LENGTH, (i + 1) * TICKET_RANDOM_LENGTH);
      const at = this.#ticketNonce++;
      const nonce = TICKET_NONCES[at] ?? Uint8Array.of(at);
      const ageAdd = ((drawn[0]! << 24) | (drawn[1]! << 16) | (drawn[2]! << 8) | drawn[3]!) >>> 0;
      const state = encodeSession13({
        suite: suite.code,
        psk: ticketPsk(this.provider, suite, rms, nonce),
        createdAt,
        ageAdd,
        id: drawn.subarray(4),
        peerChain: this.#peerChain,
        serverName: n?.sni ?? EMPTY,
        alpn: n?.alpn ?? EMPTY,
      });
      const ticket = keys.seal(state, vouched);
      this.queueHandshakeMessage(
        HandshakeType.new_session_ticket,
        (w) => writeNewSessionTicket(w, { lifetime, ageAdd, nonce, ticket, extensions: [] }),
      );
    }
    this.flush();
  }

  /** Our key share and the (EC)DHE secret; a bad peer share is illegal_parameter. */
  #agree(group: KeyExchangeGroup, peer: Uint8Array): { publicKey: Uint8Array; secret: Uint8Array } {
    if (peer.length !== NamedGroup[group].shareLength || (isNistGroup(group) && peer[0] !== 4)) {
      throw new TlsAlert("illegal_parameter", "Malformed key share");
    }
    const ours: KeyShare = this.provider.generateKeyShare(group);
    try {
      return { publicKey: ours.publicKey, secret: ours.computeSecret(peer) };
    } catch {
      throw new TlsAlert("illegal_parameter", "Invalid key share");
    }
  }

  #sendMessage(t: Transcript, type: HandshakeType, body: (w: Writer) => void): void {
    t.add(this.queueHandshakeMessage(type, body));
  }

  /** The dummy change_cipher_spec after our first hello (RFC 8446, Appendix D.4). */
  #maybeSendChangeCipherSpec(ch: ClientHello): void {
    if (this.#ccsSent || ch.legacySessionId.length === 0) return;
    this.#ccsSent = true;
    this.sendChangeCipherSpec();
  }

  // ---- {Certificate*}, {CertificateVerify*}, {Finished} ----

  #onCertificate(s: Extract<ServerState, { kind: "expectCertificate" }>, msg: HandshakeMessage) {
    const cert = parseCertificate(msg.body);
    if (cert.context.length !== 0) {
      throw new TlsAlert("illegal_parameter", "Certificate request context mismatch");
    }
    s.hs.transcript.add(msg.encoded);
    if (cert.entries.length === 0) {
      if (this.#config.clientAuth?.mode === "required") {
        throw new TlsAlert("certificate_required", "Client sent no certificate");
      }
      this.#state = { kind: "expectFinished", hs: s.hs, peer: null };
      return;
    }
    this.#peerChain = cert.entries.map((e) => e.data);
    const peer = this.#config.clientAuth!.verifier.verify(this.#peerChain);
    this.#state = { kind: "expectCertificateVerify", hs: s.hs, peer };
  }

  #onCertificateVerify(
    s: Extract<ServerState, { kind: "expectCertificateVerify" }>,
    msg: HandshakeMessage,
  ): void {
    const cv = parseCertificateVerify(msg.body);
    const algorithm = verifyingAlgorithm(cv.scheme, s.peer.publicKey, VERIFY_SCHEMES);
    const content = signedContent("client", s.hs.transcript.current());
    if (!this.provider.verify(s.peer.publicKey, algorithm, content, cv.signature)) {
      throw new TlsAlert("decrypt_error", "Client CertificateVerify signature is invalid");
    }
    s.hs.transcript.add(msg.encoded);
    this.#state = { kind: "expectFinished", hs: s.hs, peer: s.peer };
  }

  #onFinished(s: Extract<ServerState, { kind: "expectFinished" }>, msg: HandshakeMessage): void {
    const { hs } = s;
    const expected = s.expected ??
      finishedVerifyData(this.provider, hs.suite, hs.secrets.client, hs.transcript.current());
    const fin = parseFinished(msg.body, hs.suite.hashLength);
    if (!constantTimeEqual(fin.verifyData, expected)) {
      throw new TlsAlert("decrypt_error", "Client Finished does not verify");
    }
    hs.transcript.add(msg.encoded);
    this.setReadSecret(hs.app.client);
    if (this.#resumptionMaster === null && this.#ticketCount() > 0) {
      this.#resumptionMaster = resumptionMasterSecret(
        this.provider,
        hs.suite,
        hs.app,
        hs.transcript.current(),
      );
    }
    if (s.peer !== null) {
      this.#peer = s.peer;
      this.#state = { kind: "awaitPeerVerification", peer: s.peer };
      this.emit({ kind: "peerVerificationRequired", peer: s.peer });
      return;
    }
    this.#state = { kind: "connected" };
    this.#establish();
  }
}

function expect(msg: HandshakeMessage, type: HandshakeType): HandshakeMessage {
  if (msg.type !== type) {
    throw new TlsAlert("unexpected_message", `Unexpected handshake message type ${msg.type}`);
  }
  return msg;
}

function u16(w: Writer, v: number): void {
  w.u16(v);
}

/** The client's key shares; two shares for one group are illegal_parameter (Section 4.2.8). */
function readKeyShares(ch: ClientHello): KeyShareEntry[] {
  const body = findExtension(ch.extensions, ExtensionType.key_share);
  if (body === undefined) return [];
  const shares = parseBody(body, "key_share", readKeyShareClient);
  const seen = new Set<number>();
  for (const s of shares) {
    if (seen.has(s.group)) throw new TlsAlert("illegal_parameter", "Duplicate key share group");
    seen.add(s.group);
  }
  return shares;
}

/**
 * RFC 8446, Section 4.1.2: after a HelloRetryRequest the client sends the same ClientHello,
 * changing only key_share, cookie, pre_shared_key and padding, and dropping early_data.
 */
function checkRetryConsistency(first: ClientHello, second: ClientHello): void {
  const same = first.legacyVersion === second.legacyVersion &&
    bytesEqual(first.random, second.random) &&
    bytesEqual(first.legacySessionId, second.legacySessionId) &&
    first.cipherSuites.length === second.cipherSuites.length &&
    first.cipherSuites.every((s, i) => second.cipherSuites[i] === s) &&
    bytesEqual(first.legacyCompressionMethods, second.legacyCompressionMethods);
  if (!same) throw new TlsAlert("illegal_parameter", "Second ClientHello differs from the first");
  if (findExtension(second.extensions, ExtensionType.early_data) !== undefined) {
    throw new TlsAlert("illegal_parameter", "early_data after HelloRetryRequest");
  }
  if (findExtension(second.extensions, ExtensionType.cookie) !== undefined) {
    throw new TlsAlert("illegal_parameter", "Cookie that was never sent");
  }
  const fixed = (ch: ClientHello) =>
    ch.extensions.filter((e) => !RETRY_MUTABLE_EXTENSIONS.has(e.type));
  const a = fixed(first);
  const b = fixed(second);
  if (
    a.length !== b.length ||
    !a.every((e) => {
      const other = findExtension(b, e.type);
      return other !== undefined && bytesEqual(other, e.data);
    })
  ) {
    throw new TlsAlert("illegal_parameter", "Second ClientHello changed its extensions");
  }
}

/** Decodes an ASCII protocol name or host name for reporting (not on the record path). */
function latin1(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return s;
}
