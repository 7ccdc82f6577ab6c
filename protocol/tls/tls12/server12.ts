/**
 * The TLS 1.2 server handshake (RFC 5246, Section 7.3, with RFC 8422 ECDHE, RFC 7627 extended
 * master secret, RFC 5746 renegotiation signalling, RFC 5077 tickets and RFC 7507/8446
 * downgrade protection), as a sans-IO state machine. Only ECDHE with an AEAD.
 *
 * Full handshake:
 *
 *        ClientHello  -------->
 *                                ServerHello
 *                                Certificate
 *                                ServerKeyExchange
 *                                CertificateRequest*
 *                     <--------  ServerHelloDone
 *        Certificate*
 *        ClientKeyExchange
 *        CertificateVerify*
 *        [ChangeCipherSpec]
 *            Finished -------->
 *                                (peer verification by the driver, when a certificate came)
 *                                NewSessionTicket*
 *                                [ChangeCipherSpec]
 *                     <--------  Finished
 *    Application Data <------->  Application Data
 *
 * Abbreviated handshake (a ticket, or a cached session ID):
 *
 *        ClientHello  -------->
 *                                ServerHello
 *                                [ChangeCipherSpec]
 *                     <--------  Finished
 *  [ChangeCipherSpec]
 *            Finished -------->
 *                                (peer verification again, when the session has a certificate)
 *    Application Data <------->  Application Data
 *
 * Alerts we send (RFC 5246, Section 7.2.2; RFC 8446, Section 6.2 for the shared names):
 *
 * | condition                                                     | alert                   |
 * |---------------------------------------------------------------|-------------------------|
 * | malformed message, bad length, trailing bytes                 | decode_error            |
 * | message out of order, CCS out of place, Finished before CCS   | unexpected_message      |
 * | handshake record after the handshake other than ClientHello   | unexpected_message      |
 * | renegotiation attempt (ClientHello after the handshake)       | no_renegotiation (warning); a second one: unexpected_message |
 * | record that does not authenticate                             | bad_record_mac          |
 * | record plaintext over 2^14 bytes                              | record_overflow         |
 * | client max version below 1.2, or below `minVersion`           | protocol_version        |
 * | TLS_FALLBACK_SCSV while we could do 1.3                       | inappropriate_fallback  |
 * | no common suite, group or signature scheme; SHA-1 only        | handshake_failure       |
 * | non-empty renegotiation_info in an initial handshake          | handshake_failure       |
 * | no extended_master_secret while it is required                | handshake_failure       |
 * | resumption of an EMS session without EMS (RFC 7627 5.3)      | handshake_failure       |
 * | no client certificate while client_auth is required           | handshake_failure       |
 * | null compression not offered; ec_point_formats without uncompressed | illegal_parameter |
 * | invalid or wrongly encoded ecdh_Yc point                      | illegal_parameter       |
 * | CertificateVerify scheme not offered or not the key's         | illegal_parameter       |
 * | CertificateVerify or Finished that does not verify            | decrypt_error           |
 * | no common ALPN protocol                                       | no_application_protocol |
 * | certificate path failure                                      | the verifier's (bad_certificate, unknown_ca, certificate_expired, ...) |
 * | directory check refusal                                       | the driver's (certificate_revoked, access_denied, ...) |
 * | anything unexpected                                           | internal_error          |
 */
import type {
  CryptoProvider,
  KeyExchangeGroup,
  KeyShare,
  PrivateKey,
} from "../../crypto/provider.ts";
import { constantTimeEqual } from "../../crypto/provider.ts";
import type { ClientAuthConfig } from "../server.ts";
import type { VerifiedPeer } from "../../x509/identity.ts";
import { TlsAlert } from "../alert.ts";
import { ascii, bytesEqual, concat, encode, Reader, type Writer } from "../codec.ts";
import { parseCertificateVerify } from "../messages/certificate_verify.ts";
import { type ClientHello, parseClientHello } from "../messages/client_hello.ts";
import {
  type Extension,
  findExtension,
  parseBody,
  readAlpn,
  readServerName,
  readSupportedVersionsClient,
  readU16List,
  writeAlpn,
} from "../messages/extensions.ts";
import { type HandshakeMessage, writeHandshake } from "../messages/handshake.ts";
import { serverHello, writeServerHello } from "../messages/server_hello.ts";
import type { ConnectionInfo, PeerVerificationResult } from "../server.ts";
import type { SignatureRequest, SignatureResult } from "../signing.ts";
import type { TicketKeys } from "../ticket_keys.ts";
import {
  AlertLevel,
  DEFAULT_GROUPS,
  ExtensionType,
  type HandshakeType,
  isEcdheGroup,
  isNistGroup,
  NamedGroup,
  TLS12,
} from "../wire.ts";
import { Connection12 } from "./_connection12.ts";
import { parseCertificate12, writeCertificate12 } from "./messages/certificate12.ts";
import { writeCertificateRequest12 } from "./messages/certificate_request12.ts";
import { parseClientKeyExchange } from "./messages/client_key_exchange.ts";
import { writeNewSessionTicket12 } from "./messages/new_session_ticket12.ts";
import { writeEcdheParams } from "./messages/server_key_exchange.ts";
import {
  extendedMasterSecret,
  finishedVerifyData12,
  keyBlock,
  masterSecret,
  VERIFY_DATA_LENGTH,
} from "./prf.ts";
import { RecordProtection12, sealLimit } from "./record_protection.ts";
import { decodeSession12, encodeSession12, type Session12 } from "./session.ts";
import type { SessionStore12 } from "./session_cache.ts";
import {
  chooseSigningScheme12,
  signingAlgorithm12,
  suiteAuthOf,
  VERIFY_SCHEMES12,
  verifyingAlgorithm12,
} from "./signature12.ts";
import {
  type CipherSuite12Name,
  ClientCertificateType,
  DEFAULT_SUITES12,
  DOWNGRADE_TLS12,
  ExtensionType12,
  HandshakeType12,
  POINT_FORMAT_UNCOMPRESSED,
  Scsv,
  type Suite12,
  suite12ByName,
} from "./wire12.ts";

export interface Tls12ServerConfig {
  provider: CryptoProvider;
  /** DER certificates, leaf first. */
  certificateChain: readonly Uint8Array[];
  privateKey: PrivateKey;
  /** TLS 1.2 suites in preference order (default `DEFAULT_SUITES12`). */
  cipherSuites12?: readonly CipherSuite12Name[];
  /** Groups in preference order (default: x25519, secp256r1, secp384r1). */
  groups?: readonly KeyExchangeGroup[];
  /** ALPN protocols in preference order; omitted means ALPN is ignored. */
  alpnProtocols?: readonly string[];
  clientAuth?: ClientAuthConfig;
  /** Refuse clients that do not offer extended_master_secret (RFC 7627) with handshake_failure. */
  requireExtendedMasterSecret?: boolean;
  /** Seals RFC 5077 tickets; without it no tickets are issued or accepted. */
  ticketKeys?: TicketKeys;
  /** The session-ID cache; without it sessions are resumed by ticket only. */
  sessionCache?: SessionStore12;
  /**
   * Whether this server also speaks TLS 1.3 (default true): the downgrade sentinel goes into
   * ServerHello.random and TLS_FALLBACK_SCSV is refused (RFC 8446 4.1.3, RFC 7507).
   */
  tls13Enabled?: boolean;
  /** Milliseconds since the epoch, for session timestamps (default `Date.now`). */
  now?: () => number;
  /** Ask the driver for the ServerKeyExchange signature (see `ServerConfig.deferSigning`). */
  deferSigning?: boolean;
}

/** What the handshake has settled after the ClientHello. */
interface Hello {
  readonly suite: Suite12;
  readonly clientRandom: Uint8Array;
  readonly serverRandom: Uint8Array;
  readonly ems: boolean;
  readonly transcript: Uint8Array[];
}

/** What a ClientHello and our configuration agree on, before resumption is decided. */
interface Negotiated12 {
  readonly suite: Suite12;
  readonly ems: boolean;
  /** The client signalled RFC 5746 (the SCSV or an empty renegotiation_info). */
  readonly secureRenegotiation: boolean;
  /** The client sent ec_point_formats (we answer it in a full handshake). */
  readonly pointFormats: boolean;
  /** signature_algorithms, or null when the client sent none. */
  readonly clientSchemes: readonly number[] | null;
  /** The supported_groups body, parsed only for a full handshake. */
  readonly groups: Uint8Array | undefined;
  readonly alpn: Uint8Array | null;
  readonly sni: Uint8Array | null;
  /** The session_ticket extension body: undefined without it, empty to ask for a ticket. */
  readonly ticket: Uint8Array | undefined;
}

/** Keys of both directions, installed at each side's change_cipher_spec. */
interface Keys {
  readonly master: Uint8Array;
  readonly read: RecordProtection12;
  readonly write: RecordProtection12;
}

interface Full extends Hello {
  readonly group: KeyExchangeGroup;
  readonly share: KeyShare;
  readonly sessionId: Uint8Array;
  readonly issueTicket: boolean;
}

/** A session the client may resume, with its re-validated client identity. */
interface Resumable {
  readonly session: Session12;
  readonly peer: VerifiedPeer | null;
  /** The ticket's key is retiring: send a fresh ticket in the abbreviated handshake. */
  readonly renewTicket: boolean;
}

/** A full handshake's flight, settled but for the ServerKeyExchange signature. */
interface Flight12 {
  readonly hs: Full;
  readonly n: Negotiated12;
  readonly scheme: number;
  /** The ServerECDHParams that the signature covers. */
  readonly params: Uint8Array;
}

type ServerState =
  | { kind: "expectClientHello" }
  | { kind: "awaitSignature"; flight: Flight12 }
  | { kind: "expectCertificate"; hs: Full }
  | { kind: "expectClientKeyExchange"; hs: Full; peer: VerifiedPeer | null }
  | { kind: "expectCertificateVerify"; hs: Full; keys: Keys; peer: VerifiedPeer }
  | {
    kind: "expectChangeCipherSpec";
    hs: Hello;
    keys: Keys;
    peer: VerifiedPeer | null;
    full: Full | null;
  }
  | { kind: "expectFinished"; hs: Hello; keys: Keys; peer: VerifiedPeer | null; full: Full | null }
  | { kind: "awaitPeerVerification"; hs: Hello; keys: Keys; peer: VerifiedPeer; full: Full | null }
  | { kind: "connected" };

export class Tls12ServerConnection extends Connection12 {
  readonly #config: Tls12ServerConfig;
  readonly #suites: readonly Suite12[];
  readonly #groups: readonly KeyExchangeGroup[];
  readonly #alpn: readonly Uint8Array[];
  readonly #now: () => number;
  #state: ServerState = { kind: "expectClientHello" };
  #suite: Suite12 | null = null;
  #group: KeyExchangeGroup | null = null;
  #sni: Uint8Array | null = null;
  #alpnChosen: Uint8Array | null = null;
  #ems = false;
  #resumed = false;
  #peer: VerifiedPeer | null = null;
  /** The client's chain as it sent it (or as the resumed session holds it), for new sessions. */
  #peerChain: readonly Uint8Array[] = [];
  #renegotiationAttempts = 0;

  constructor(config: Tls12ServerConfig) {
    super(config.provider);
    if (config.certificateChain.length === 0) throw new Error("Server certificate chain is empty");
    this.#config = config;
    const auth = suiteAuthOf(config.privateKey);
    this.#suites = (config.cipherSuites12 ?? DEFAULT_SUITES12).map(suite12ByName)
      .filter((s) => s.auth === auth);
    this.#groups = (config.groups ?? DEFAULT_GROUPS).filter(isEcdheGroup);
    this.#alpn = (config.alpnProtocols ?? []).map(ascii);
    this.#now = config.now ?? Date.now;
  }

  /** What was negotiated; fields are empty strings until the ServerHello is sent. */
  info(): ConnectionInfo {
    return {
      version: "TLSv1.2",
      cipherSuite: this.#suite?.name ?? "",
      group: this.#group ?? "",
      sni: this.#sni ? latin1(this.#sni) : null,
      alpn: this.#alpnChosen ? latin1(this.#alpnChosen) : null,
      helloRetry: false,
      peer: this.#peer,
      resumed: this.#resumed,
      extendedMasterSecret: this.#ems,
    };
  }

  /** Resumes a handshake that waits on the driver's check of the client certificate. */
  completePeerVerification(result: PeerVerificationResult): void {
    const s = this.#state;
    if (s.kind !== "awaitPeerVerification") return;
    if (!result.ok) {
      this.fail(new TlsAlert(result.alert, result.reason));
      return;
    }
    try {
      this.#peer = s.peer;
      if (s.full !== null) this.#sendServerFinished(s.full, s.keys, s.peer);
      this.#connect();
      this.pump();
    } catch (e) {
      this.fail(e);
    }
  }

  /**
   * Resumes a flight that waits for its ServerKeyExchange signature (`deferSigning`). A
   * failed signature ends the handshake with internal_error; a late answer is ignored.
   */
  completeSignature(result: SignatureResult): void {
    const s = this.#state;
    if (s.kind !== "awaitSignature" || this.closed || this.outputClosed) return;
    if (!result.ok) {
      this.fail(new TlsAlert("internal_error", `Cannot sign ServerKeyExchange: ${result.reason}`));
      return;
    }
    try {
      this.#sendSignedFlight(s.flight, result.signature);
      this.pump();
    } catch (e) {
      this.fail(e);
    }
  }

  protected override get acceptingInput(): boolean {
    const k = this.#state.kind;
    return k !== "awaitPeerVerification" && k !== "awaitSignature";
  }

  protected override onChangeCipherSpec(): void {
    const s = this.#state;
    if (s.kind !== "expectChangeCipherSpec") {
      throw new TlsAlert("unexpected_message", "Unexpected change_cipher_spec");
    }
    this.changeReadCipher(s.keys.read);
    this.#state = { ...s, kind: "expectFinished" };
  }

  /**
   * RFC 5746, Section 4.4 and RFC 5246, Section 7.4.1.1: we never renegotiate. The first
   * attempt gets a no_renegotiation warning (the client may carry on with the current
   * session); a client that insists is cut off.
   */
  protected override onPostHandshakeMessage(msg: HandshakeMessage): void {
    if (msg.type !== HandshakeType12.client_hello) {
      throw new TlsAlert("unexpected_message", "Unexpected handshake message after Finished");
    }
    if (++this.#renegotiationAttempts > 1) {
      throw new TlsAlert("unexpected_message", "Client insists on renegotiation");
    }
    this.sendAlert("no_renegotiation", AlertLevel.warning);
  }

  protected override onHandshakeMessage(msg: HandshakeMessage): void {
    const s = this.#state;
    switch (s.kind) {
      case "expectClientHello":
        return this.#onClientHello(expect(msg, HandshakeType12.client_hello));
      case "expectCertificate":
        return this.#onCertificate(s, expect(msg, HandshakeType12.certificate));
      case "expectClientKeyExchange":
        return this.#onClientKeyExchange(s, expect(msg, HandshakeType12.client_key_exchange));
      case "expectCertificateVerify":
        return this.#onCertificateVerify(s, expect(msg, HandshakeType12.certificate_verify));
      case "awaitSignature":
        throw new TlsAlert("unexpected_message", "Handshake message before ServerHelloDone");
      case "expectChangeCipherSpec":
        throw new TlsAlert("unexpected_message", "Handshake message before change_cipher_spec");
      case "expectFinished":
        return this.#onFinished(s, expect(msg, HandshakeType12.finished));
      case "awaitPeerVerification":
      case "connected":
        throw new TlsAlert("unexpected_message", "Handshake message after Finished");
      default: {
        const never: never = s;
        throw new Error(`Unknown state ${JSON.stringify(never)}`);
      }
    }
  }

  // ---- ClientHello ----

  #onClientHello(msg: HandshakeMessage): void {
    const ch = parseClientHello(msg.body);
    const n = this.#negotiate(ch);
    this.#sni = n.sni;
    this.#alpnChosen = n.alpn;
    this.#ems = n.ems;
    const serverRandom = this.provider.randomBytes(32);
    if (this.#config.tls13Enabled ?? true) serverRandom.set(DOWNGRADE_TLS12, 24);
    const hello: Hello = {
      suite: n.suite,
      clientRandom: ch.random,
      serverRandom,
      ems: n.ems,
      transcript: [msg.encoded],
    };
    const resumable = this.#findSession(ch, n.ticket, n.ems);
    if (resumable !== null) {
      const suite = suite12ByCodeIn(this.#suites, resumable.session.suite)!;
      return this.#resume({ ...hello, suite }, ch, resumable, this.#helloExtensions(n));
    }
    this.#sendServerFlight(ch, n, hello);
  }

  /**
   * Checks a TLS 1.2 ClientHello and settles what does not depend on resumption: version,
   * fallback, compression, renegotiation signalling, EMS, point formats, suite, ALPN and SNI.
   */
  #negotiate(ch: ClientHello): Negotiated12 {
    const ext = (type: number) => findExtension(ch.extensions, type);

    const versionsBody = ext(ExtensionType.supported_versions);
    if (versionsBody !== undefined) {
      const versions = parseBody(versionsBody, "supported_versions", readSupportedVersionsClient);
      if (!versions.includes(TLS12)) {
        throw new TlsAlert("protocol_version", "Client offers neither TLS 1.2 nor TLS 1.3");
      }
    } else if (ch.legacyVersion < TLS12) {
      throw new TlsAlert("protocol_version", "Client offers TLS 1.1 or older");
    }
    if ((this.#config.tls13Enabled ?? true) && ch.cipherSuites.includes(Scsv.fallback)) {
      throw new TlsAlert("inappropriate_fallback", "TLS_FALLBACK_SCSV while TLS 1.3 is on");
    }
    if (!ch.legacyCompressionMethods.includes(0)) {
      throw new TlsAlert("illegal_parameter", "Client does not offer null compression");
    }

    // RFC 5746, Section 3.6: signalled by the SCSV or an empty renegotiation_info.
    const renegotiationInfo = ext(ExtensionType12.renegotiation_info);
    if (renegotiationInfo !== undefined) {
      const info = parseBody(renegotiationInfo, "renegotiation_info", (r) => r.vec(1));
      if (info.length !== 0) {
        throw new TlsAlert("handshake_failure", "renegotiation_info is not empty");
      }
    }

    const emsBody = ext(ExtensionType12.extended_master_secret);
    if (emsBody !== undefined && emsBody.length !== 0) {
      throw new TlsAlert("decode_error", "extended_master_secret is not empty");
    }
    const ems = emsBody !== undefined;
    if (!ems && this.#config.requireExtendedMasterSecret) {
      throw new TlsAlert("handshake_failure", "Client does not offer extended_master_secret");
    }

    const formatsBody = ext(ExtensionType12.ec_point_formats);
    if (formatsBody !== undefined) {
      const formats = parseBody(formatsBody, "ec_point_formats", (r) => r.vec(1, 1));
      if (!formats.includes(POINT_FORMAT_UNCOMPRESSED)) {
        throw new TlsAlert("illegal_parameter", "Client does not accept uncompressed points");
      }
    }

    const suite = this.#suites.find((s) => ch.cipherSuites.includes(s.code));
    if (suite === undefined) throw new TlsAlert("handshake_failure", "No common cipher suite");

    const sigAlgsBody = ext(ExtensionType.signature_algorithms);
    const clientSchemes = sigAlgsBody === undefined
      ? null
      : parseBody(sigAlgsBody, "signature_algorithms", (r) => readU16List(r, 2));

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

    return {
      suite,
      ems,
      secureRenegotiation: renegotiationInfo !== undefined ||
        ch.cipherSuites.includes(Scsv.empty_renegotiation_info),
      pointFormats: formatsBody !== undefined,
      clientSchemes,
      groups: ext(ExtensionType.supported_groups),
      alpn,
      sni: sniBody === undefined ? null : parseBody(sniBody, "server_name", readServerName),
      ticket: ext(ExtensionType12.session_ticket),
    };
  }

  /** ServerHello extensions common to both handshakes (each answers one the client sent). */
  #helloExtensions(n: Negotiated12): Extension[] {
    const extensions: Extension[] = [];
    if (n.secureRenegotiation) {
      extensions.push({ type: ExtensionType12.renegotiation_info, data: new Uint8Array([0]) });
    }
    if (n.ems) extensions.push({ type: ExtensionType12.extended_master_secret, data: EMPTY });
    if (n.alpn !== null) {
      extensions.push({
        type: ExtensionType.application_layer_protocol_negotiation,
        data: encode(writeAlpn, [n.alpn]),
      });
    }
    return extensions;
  }

  // ---- ServerHello, Certificate, ServerKeyExchange, CertificateRequest*, ServerHelloDone ----

  /**
   * The full handshake's flight (RFC 5246, Section 7.3): the signature over our ECDHE
   * parameters comes first (RFC 8422, Section 5.4), then every message goes out together. With
   * `deferSigning` the flight waits in `awaitSignature` for the driver's signature.
   */
  #sendServerFlight(ch: ClientHello, n: Negotiated12, hello: Hello): void {
    const group = this.#chooseGroup(n.groups);
    const scheme = chooseSigningScheme12(this.#config.privateKey, n.clientSchemes);
    if (scheme === null) {
      throw new TlsAlert("handshake_failure", "No common signature scheme (SHA-1 is refused)");
    }
    // RFC 7627, Section 5.3: only sessions with EMS are ever resumable.
    const canResume = n.ems &&
      (this.#config.ticketKeys !== undefined || this.#config.sessionCache !== undefined);
    const issueTicket = n.ems && n.ticket !== undefined && this.#config.ticketKeys !== undefined;
    const sessionId = canResume ? this.provider.randomBytes(32) : EMPTY;
    this.#suite = n.suite;
    this.#group = group;
    const share = this.provider.generateKeyShare(group);
    const hs: Full = { ...hello, group, share, sessionId, issueTicket };
    const params = encode(writeEcdheParams, {
      namedCurve: NamedGroup[group].code,
      point: share.publicKey,
    });
    const flight: Flight12 = { hs, n, scheme, params };
    const request: SignatureRequest = {
      key: this.#config.privateKey,
      algorithm: signingAlgorithm12(scheme),
      message: concat(ch.random, hs.serverRandom, params),
    };
    if (this.#config.deferSigning === true) {
      this.#state = { kind: "awaitSignature", flight };
      this.emit({ kind: "signatureRequired", request });
      return;
    }
    const signature = this.provider.sign(request.key, request.algorithm, request.message);
    this.#sendSignedFlight(flight, signature);
  }

  /** ServerHello, Certificate, ServerKeyExchange, CertificateRequest*, ServerHelloDone. */
  #sendSignedFlight(flight: Flight12, signature: Uint8Array): void {
    const { hs, n, scheme, params } = flight;
    const extensions = this.#helloExtensions(n);
    if (n.pointFormats) {
      extensions.push({
        type: ExtensionType12.ec_point_formats,
        data: new Uint8Array([1, POINT_FORMAT_UNCOMPRESSED]),
      });
    }
    if (hs.issueTicket) extensions.push({ type: ExtensionType12.session_ticket, data: EMPTY });
    this.#send(
      hs,
      HandshakeType12.server_hello,
      (w) =>
        writeServerHello(w, serverHello(hs.serverRandom, hs.sessionId, hs.suite.code, extensions)),
    );
    this.#send(
      hs,
      HandshakeType12.certificate,
      (w) => writeCertificate12(w, { chain: this.#config.certificateChain }),
    );
    this.#send(hs, HandshakeType12.server_key_exchange, (w) => {
      w.bytes(params).u16(scheme).vec(2, signature);
    });
    const auth = this.#config.clientAuth;
    const requestCert = auth !== undefined && auth.mode !== "none";
    if (requestCert) {
      this.#send(hs, HandshakeType12.certificate_request, (w) =>
        writeCertificateRequest12(w, {
          certificateTypes: [ClientCertificateType.ecdsa_sign, ClientCertificateType.rsa_sign],
          signatureSchemes: VERIFY_SCHEMES12,
          authorities: auth.verifier.authorityNames,
        }));
    }
    this.#send(hs, HandshakeType12.server_hello_done, () => {});
    this.flush();
    this.#state = requestCert
      ? { kind: "expectCertificate", hs }
      : { kind: "expectClientKeyExchange", hs, peer: null };
  }

  /** Our most preferred group that the client supports (RFC 8422, Section 5.1.1). */
  #chooseGroup(body: Uint8Array | undefined): KeyExchangeGroup {
    if (body === undefined) {
      // RFC 8422, Section 4: without the extension the server may pick; P-256 is the one
      // every ECDHE client implements.
      if (this.#groups.includes("secp256r1")) return "secp256r1";
      throw new TlsAlert("handshake_failure", "No common group");
    }
    const offered = parseBody(body, "supported_groups", (r) => readU16List(r, 2));
    const group = this.#groups.find((g) => offered.includes(NamedGroup[g].code));
    if (group === undefined) throw new TlsAlert("handshake_failure", "No common group");
    return group;
  }

  // ---- Resumption ----

  /**
   * A session the client may resume: from its ticket, else from its session ID. Anything that
   * does not fit (unknown, expired, a suite no longer offered, a client-auth policy it does not
   * meet, a certificate that no longer validates) falls back to a full handshake, except the
   * one case RFC 7627, Section 5.3 makes fatal.
   */
  #findSession(
    ch: ClientHello,
    ticket: Uint8Array | undefined,
    ems: boolean,
  ): Resumable | null {
    let session: Session12 | null = null;
    let renewTicket = false;
    if (ticket !== undefined && ticket.length > 0 && this.#config.ticketKeys !== undefined) {
      const opened = this.#config.ticketKeys.open(ticket);
      if (opened !== null) session = decodeSession12(opened.state);
      // RFC 5077, Section 3.1: a ticket under a retiring key is replaced in the short handshake.
      renewTicket = opened?.stale ?? false;
      // RFC 5077, Section 3.4: a client offering a ticket sends a session ID we echo.
      if (session !== null && ch.legacySessionId.length === 0) session = null;
    } else if (ch.legacySessionId.length > 0 && this.#config.sessionCache !== undefined) {
      session = this.#config.sessionCache.get(ch.legacySessionId);
    }
    if (session === null) return null;
    if (session.extendedMasterSecret && !ems) {
      throw new TlsAlert("handshake_failure", "Resuming an EMS session without EMS");
    }
    if (!session.extendedMasterSecret) return null;
    // RFC 6066, Section 3: a session is not resumed under another server name.
    if (!bytesEqual(session.serverName, this.#sni ?? EMPTY)) return null;
    if (!ch.cipherSuites.includes(session.suite)) return null;
    if (suite12ByCodeIn(this.#suites, session.suite) === null) return null;
    const mode = this.#config.clientAuth?.mode ?? "none";
    if (session.peerChain.length === 0) {
      return mode === "required" ? null : { session, peer: null, renewTicket };
    }
    if (mode === "none") return null;
    try {
      const peer = this.#config.clientAuth!.verifier.verify(session.peerChain);
      this.#peerChain = session.peerChain;
      return { session, peer, renewTicket };
    } catch {
      return null;
    }
  }

  #resume(hs: Hello, ch: ClientHello, r: Resumable, extensions: Extension[]): void {
    const { session, peer } = r;
    this.#suite = hs.suite;
    this.#resumed = true;
    const tickets = this.#config.ticketKeys;
    if (r.renewTicket) extensions.push({ type: ExtensionType12.session_ticket, data: EMPTY });
    this.#send(
      hs,
      HandshakeType12.server_hello,
      (w) =>
        writeServerHello(
          w,
          serverHello(hs.serverRandom, ch.legacySessionId, hs.suite.code, extensions),
        ),
    );
    if (r.renewTicket && tickets !== undefined) {
      const ticket = tickets.seal(encodeSession12(session));
      this.#send(
        hs,
        HandshakeType12.new_session_ticket,
        (w) => writeNewSessionTicket12(w, { lifetimeHint: tickets.ticketLifetimeSeconds, ticket }),
      );
    }
    const keys = this.#keys(hs, session.masterSecret);
    this.changeWriteCipher(keys.write);
    const verifyData = finishedVerifyData12(
      this.provider,
      hs.suite.hash,
      keys.master,
      "server",
      this.#hash(hs),
    );
    this.#send(hs, HandshakeType12.finished, (w) => w.bytes(verifyData));
    this.flush();
    this.#state = { kind: "expectChangeCipherSpec", hs, keys, peer, full: null };
  }

  // ---- Certificate*, ClientKeyExchange, CertificateVerify* ----

  #onCertificate(s: Extract<ServerState, { kind: "expectCertificate" }>, msg: HandshakeMessage) {
    const cert = parseCertificate12(msg.body);
    s.hs.transcript.push(msg.encoded);
    if (cert.chain.length === 0) {
      // RFC 5246, Section 7.4.6: a server that requires a certificate answers handshake_failure.
      if (this.#config.clientAuth?.mode === "required") {
        throw new TlsAlert("handshake_failure", "Client sent no certificate");
      }
      this.#state = { kind: "expectClientKeyExchange", hs: s.hs, peer: null };
      return;
    }
    const peer = this.#config.clientAuth!.verifier.verify(cert.chain);
    this.#peerChain = cert.chain.map((c) => c.slice());
    this.#state = { kind: "expectClientKeyExchange", hs: s.hs, peer };
  }

  #onClientKeyExchange(
    s: Extract<ServerState, { kind: "expectClientKeyExchange" }>,
    msg: HandshakeMessage,
  ): void {
    const { hs } = s;
    const cke = parseClientKeyExchange(msg.body);
    const preMaster = agree(hs.group, hs.share, cke.point);
    hs.transcript.push(msg.encoded);
    const master = hs.ems
      ? extendedMasterSecret(this.provider, hs.suite.hash, preMaster, this.#hash(hs))
      : masterSecret(this.provider, hs.suite.hash, preMaster, hs.clientRandom, hs.serverRandom);
    preMaster.fill(0);
    const keys = this.#keys(hs, master);
    this.#state = s.peer === null
      ? { kind: "expectChangeCipherSpec", hs, keys, peer: null, full: hs }
      : { kind: "expectCertificateVerify", hs, keys, peer: s.peer };
  }

  /** TLS 1.2 CertificateVerify: a signature over every handshake message so far (7.4.8). */
  #onCertificateVerify(
    s: Extract<ServerState, { kind: "expectCertificateVerify" }>,
    msg: HandshakeMessage,
  ): void {
    const cv = parseCertificateVerify(msg.body);
    const algorithm = verifyingAlgorithm12(cv.scheme, s.peer.publicKey);
    const content = concat(...s.hs.transcript);
    if (!this.provider.verify(s.peer.publicKey, algorithm, content, cv.signature)) {
      throw new TlsAlert("decrypt_error", "Client CertificateVerify signature is invalid");
    }
    s.hs.transcript.push(msg.encoded);
    this.#state = {
      kind: "expectChangeCipherSpec",
      hs: s.hs,
      keys: s.keys,
      peer: s.peer,
      full: s.hs,
    };
  }

  // ---- Finished ----

  #onFinished(s: Extract<ServerState, { kind: "expectFinished" }>, msg: HandshakeMessage): void {
    const { hs, keys } = s;
    const expected = finishedVerifyData12(
      this.provider,
      hs.suite.hash,
      keys.master,
      "client",
      this.#hash(hs),
    );
    const r = new Reader(msg.body, "Finished");
    const verifyData = r.take(VERIFY_DATA_LENGTH);
    r.end();
    if (!constantTimeEqual(verifyData, expected)) {
      throw new TlsAlert("decrypt_error", "Client Finished does not verify");
    }
    hs.transcript.push(msg.encoded);
    if (s.peer !== null) {
      this.#peer = s.peer;
      this.#state = { kind: "awaitPeerVerification", hs, keys, peer: s.peer, full: s.full };
      this.emit({ kind: "peerVerificationRequired", peer: s.peer });
      return;
    }
    if (s.full !== null) this.#sendServerFinished(s.full, keys, null);
    this.#connect();
  }

  /** NewSessionTicket*, [ChangeCipherSpec], Finished of a full handshake. */
  #sendServerFinished(hs: Full, keys: Keys, peer: VerifiedPeer | null): void {
    const session: Session12 = {
      suite: hs.suite.code,
      masterSecret: keys.master,
      extendedMasterSecret: hs.ems,
      peerChain: peer === null ? [] : this.#peerChain,
      serverName: this.#sni?.slice() ?? EMPTY,
      createdAt: this.#now(),
    };
    const state = encodeSession12(session);
    // A session with a very long client chain is not kept: tickets stay small, and the cache
    // cannot be filled with large entries. RFC 5077, Section 3.3 allows an empty ticket after
    // the extension was answered.
    const keep = state.length <= MAX_SESSION_STATE;
    const tickets = this.#config.ticketKeys;
    if (hs.issueTicket && tickets !== undefined) {
      const ticket = keep ? tickets.seal(state) : EMPTY;
      this.#send(
        hs,
        HandshakeType12.new_session_ticket,
        (w) => writeNewSessionTicket12(w, { lifetimeHint: tickets.ticketLifetimeSeconds, ticket }),
      );
    } else if (keep && hs.ems && hs.sessionId.length > 0) {
      this.#config.sessionCache?.put(hs.sessionId, session);
    }
    this.changeWriteCipher(keys.write);
    const verifyData = finishedVerifyData12(
      this.provider,
      hs.suite.hash,
      keys.master,
      "server",
      this.#hash(hs),
    );
    this.#send(hs, HandshakeType12.finished, (w) => w.bytes(verifyData));
    this.flush();
  }

  #connect(): void {
    this.#state = { kind: "connected" };
    this.establish();
  }

  // ---- Helpers ----

  #keys(hs: Hello, master: Uint8Array): Keys {
    const s = hs.suite;
    const kb = keyBlock(
      this.provider,
      s.hash,
      master,
      hs.clientRandom,
      hs.serverRandom,
      s.keyLength,
      s.fixedIvLength,
    );
    return {
      master,
      read: new RecordProtection12(this.provider, s, kb.clientKey, kb.clientIv),
      write: new RecordProtection12(this.provider, s, kb.serverKey, kb.serverIv, sealLimit(s)),
    };
  }

  #hash(hs: Hello): Uint8Array {
    return this.provider.hash(hs.suite.hash, concat(...hs.transcript));
  }

  #send(hs: Hello, type: number, body: (w: Writer) => void): void {
    const msg = writeHandshake(type as HandshakeType, body);
    hs.transcript.push(msg);
    this.queueHandshake(msg);
  }
}

const EMPTY = new Uint8Array(0);

/** The largest session state we keep in a ticket or the cache (a few client certificates). */
export const MAX_SESSION_STATE = 16 * 1024;

function expect(msg: HandshakeMessage, type: number): HandshakeMessage {
  if (msg.type !== type) {
    throw new TlsAlert("unexpected_message", `Unexpected handshake message type ${msg.type}`);
  }
  return msg;
}

function suite12ByCodeIn(suites: readonly Suite12[], code: number): Suite12 | null {
  return suites.find((s) => s.code === code) ?? null;
}

/**
 * The ECDHE pre-master secret from the client's ecdh_Yc (RFC 8422, Section 5.10). A point of the
 * wrong length or form, off the curve, or giving an all-zero X25519 result is illegal_parameter.
 */
export function agree(group: KeyExchangeGroup, ours: KeyShare, point: Uint8Array): Uint8Array {
  const g = NamedGroup[group];
  if (point.length !== g.shareLength || (isNistGroup(group) && point[0] !== 4)) {
    throw new TlsAlert("illegal_parameter", "Malformed ClientKeyExchange point");
  }
  try {
    return ours.computeSecret(point);
  } catch {
    throw new TlsAlert("illegal_parameter", "Invalid ClientKeyExchange point");
  }
}

/** Decodes an ASCII name for reporting (not on the record path). */
function latin1(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return s;
}
