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
 *                                {CertificateVerify}
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
} from "./key_schedule.ts";
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
import { Transcript } from "./transcript.ts";
import {
  type AlertName,
  type CipherSuiteName,
  DEFAULT_GROUPS,
  DEFAULT_SUITES,
  ExtensionType,
  HandshakeType,
  HELLO_RETRY_REQUEST_RANDOM,
  MAX_CLIENT_HELLO,
  MAX_HANDSHAKE_MESSAGE,
  NamedGroup,
  type Suite,
  suiteByName,
  TLS13,
} from "./wire.ts";

/** Client certificate policy (RFC 8446, Section 4.3.2). */
export interface ClientAuthConfig {
  mode: "none" | "optional" | "required";
  verifier: ClientCertVerifier;
}

export interface ServerConfig {
  provider: CryptoProvider;
  /** DER certificates, leaf first. */
  certificateChain: readonly Uint8Array[];
  privateKey: PrivateKey;
  /** Cipher suites in preference order (default: AES-128-GCM, AES-256-GCM, ChaCha20). */
  cipherSuites?: readonly CipherSuiteName[];
  /** Groups in preference order (default: x25519, secp256r1, secp384r1). */
  groups?: readonly KeyExchangeGroup[];
  /** ALPN protocols in preference order, e.g. ["imap"]; omitted means ALPN is ignored. */
  alpnProtocols?: readonly string[];
  clientAuth?: ClientAuthConfig;
  /** Records sent under one key before we send KeyUpdate ourselves (default 2^24). */
  keyUpdateAfterRecords?: number;
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
  /** TLS 1.2: the session was resumed (ticket or session ID). */
  resumed?: boolean;
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
  | { kind: "expectCertificate"; hs: Handshake }
  | { kind: "expectCertificateVerify"; hs: Handshake; peer: VerifiedPeer }
  | { kind: "expectFinished"; hs: Handshake; peer: VerifiedPeer | null }
  | { kind: "awaitPeerVerification"; peer: VerifiedPeer }
  | { kind: "connected" };

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

  constructor(config: ServerConfig) {
    super(config.provider, config.keyUpdateAfterRecords);
    if (config.certificateChain.length === 0) throw new Error("Server certificate chain is empty");
    this.#config = config;
    this.#suites = (config.cipherSuites ?? DEFAULT_SUITES).map(suiteByName);
    this.#groups = config.groups ?? DEFAULT_GROUPS;
    this.#alpn = (config.alpnProtocols ?? []).map(ascii);
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
    };
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
    this.establish();
    try {
      this.pump();
    } catch (e) {
      this.fail(e);
    }
  }

  protected override get acceptingInput(): boolean {
    return this.#state.kind !== "awaitPeerVerification";
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
    const t = new Transcript(this.provider);
    t.add(msg.encoded);
    t.start(n.suite.hash);
    this.setSuite(n.suite);
    this.#negotiated = n;
    if (n.share === null) return this.#sendHelloRetryRequest(ch, n, t);
    this.#sendServerFlight(ch, n, t);
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
    s.t.add(msg.encoded);
    this.#sendServerFlight(ch, n, s.t);
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

  #sendServerFlight(ch: ClientHello, n: Negotiated, t: Transcript): void {
    const peerShare = n.share!;
    const shared = this.#agree(n.group, peerShare.keyExchange);
    const suite = n.suite;

    const sh = writeHandshake(HandshakeType.server_hello, (w) =>
      writeServerHello(
        w,
        serverHello(this.provider.randomBytes(32), ch.legacySessionId, suite.code, [
          {
            type: ExtensionType.key_share,
            data: encode(writeKeyShareServer, {
              group: peerShare.group,
              keyExchange: shared.publicKey,
            }),
          },
          { type: ExtensionType.supported_versions, data: encode(u16, TLS13) },
        ]),
      ));
    t.add(sh);
    this.queueHandshake(sh);
    this.#maybeSendChangeCipherSpec(ch);

    const secrets = handshakeSecrets(this.provider, suite, shared.secret, t.current());
    this.setWriteSecret(secrets.server);
    this.setReadSecret(secrets.client);
    // Rejected 0-RTT data may only precede the first ServerHello's keys: after a
    // HelloRetryRequest the client sends none, so an unreadable record is then bad_record_mac.
    const offeredEarlyData = findExtension(ch.extensions, ExtensionType.early_data) !== undefined;
    this.skipRejectedEarlyData(
      !this.#helloRetry && offeredEarlyData ? MAX_REJECTED_EARLY_DATA : 0,
    );

    const ee: Extension[] = [];
    if (n.alpn !== null) {
      ee.push({
        type: ExtensionType.application_layer_protocol_negotiation,
        data: encode(writeAlpn, [n.alpn]),
      });
    }
    this.#sendMessage(
      t,
      HandshakeType.encrypted_extensions,
      (w) => writeEncryptedExtensions(w, { extensions: ee }),
    );

    const auth = this.#config.clientAuth;
    const requestCert = auth !== undefined && auth.mode !== "none";
    if (requestCert) {
      const exts: Extension[] = [{
        type: ExtensionType.signature_algorithms,
        data: encode((w, v: readonly number[]) => writeU16List(w, 2, v), VERIFY_SCHEMES),
      }];
      if (auth.verifier.authorityNames.length > 0) {
        exts.push({
          type: ExtensionType.certificate_authorities,
          data: encode(writeCertificateAuthorities, auth.verifier.authorityNames),
        });
      }
      this.#sendMessage(
        t,
        HandshakeType.certificate_request,
        (w) => writeCertificateRequest(w, { context: new Uint8Array(0), extensions: exts }),
      );
    }

    this.#sendMessage(t, HandshakeType.certificate, (w) =>
      writeCertificate(w, {
        context: new Uint8Array(0),
        entries: this.#config.certificateChain.map((data) => ({ data, extensions: [] })),
      }));

    const signature = this.provider.sign(
      this.#config.privateKey,
      signingAlgorithm(n.scheme),
      signedContent("server", t.current()),
    );
    this.#sendMessage(
      t,
      HandshakeType.certificate_verify,
      (w) => writeCertificateVerify(w, { scheme: n.scheme, signature }),
    );

    const verifyData = finishedVerifyData(this.provider, suite, secrets.server, t.current());
    this.#sendMessage(t, HandshakeType.finished, (w) => writeFinished(w, { verifyData }));

    const app = applicationSecrets(this.provider, suite, secrets, t.current());
    this.setWriteSecret(app.server);

    const hs: Handshake = { suite, transcript: t, secrets, app };
    this.#state = requestCert ? { kind: "expectCertificate", hs } : {
      kind: "expectFinished",
      hs,
      peer: null,
    };
  }

  /** Our key share and the (EC)DHE secret; a bad peer share is illegal_parameter. */
  #agree(group: KeyExchangeGroup, peer: Uint8Array): { publicKey: Uint8Array; secret: Uint8Array } {
    if (peer.length !== NamedGroup[group].shareLength || (group !== "x25519" && peer[0] !== 4)) {
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
    const msg = writeHandshake(type, body);
    t.add(msg);
    this.queueHandshake(msg);
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
    const peer = this.#config.clientAuth!.verifier.verify(cert.entries.map((e) => e.data));
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
    const expected = finishedVerifyData(
      this.provider,
      hs.suite,
      hs.secrets.client,
      hs.transcript.current(),
    );
    const fin = parseFinished(msg.body, hs.suite.hashLength);
    if (!constantTimeEqual(fin.verifyData, expected)) {
      throw new TlsAlert("decrypt_error", "Client Finished does not verify");
    }
    hs.transcript.add(msg.encoded);
    this.setReadSecret(hs.app.client);
    if (s.peer !== null) {
      this.#peer = s.peer;
      this.#state = { kind: "awaitPeerVerification", peer: s.peer };
      this.emit({ kind: "peerVerificationRequired", peer: s.peer });
      return;
    }
    this.#state = { kind: "connected" };
    this.establish();
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
