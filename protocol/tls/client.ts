/**
 * A TLS 1.3 client (RFC 8446, Section 2), built from the same codecs and key schedule as the
 * server. It exists to test the server: it can force a HelloRetryRequest, omit or alter
 * extensions and tamper with its own messages, but untampered it is a correct client.
 */
import type {
  CryptoProvider,
  KeyExchangeGroup,
  KeyShare,
  PrivateKey,
  PublicKey,
} from "../crypto/provider.ts";
import { constantTimeEqual } from "../crypto/provider.ts";
import { TlsAlert } from "./alert.ts";
import { ascii, encode, type Writer } from "./codec.ts";
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
import { parseCertificate, writeCertificate } from "./messages/certificate.ts";
import {
  type CertificateRequest,
  parseCertificateRequest,
} from "./messages/certificate_request.ts";
import {
  parseCertificateVerify,
  signedContent,
  writeCertificateVerify,
} from "./messages/certificate_verify.ts";
import { type ClientHello, writeClientHello } from "./messages/client_hello.ts";
import { parseEncryptedExtensions } from "./messages/encrypted_extensions.ts";
import {
  type Extension,
  findExtension,
  parseBody,
  readAlpn,
  readCookie,
  readKeyShareServer,
  readU16List,
  writeAlpn,
  writeCookie,
  writeKeyShareClient,
  writeServerName,
  writeU16List,
} from "./messages/extensions.ts";
import { parseFinished, writeFinished } from "./messages/finished.ts";
import { parseNewSessionTicket } from "./messages/new_session_ticket.ts";
import { PskKeyExchangeMode, writeOfferedPsks, writePskModes } from "./messages/pre_shared_key.ts";
import { type HandshakeMessage, writeHandshake } from "./messages/handshake.ts";
import {
  isHelloRetryRequest,
  parseServerHello,
  type ServerHello,
} from "./messages/server_hello.ts";
import {
  chooseSigningScheme,
  signingAlgorithm,
  VERIFY_SCHEMES,
  verifyingAlgorithm,
} from "./signature_scheme.ts";
import { Transcript } from "./transcript.ts";
import {
  type CipherSuiteName,
  ContentType,
  DEFAULT_GROUPS,
  DEFAULT_SUITES,
  ExtensionType,
  groupByCode,
  HandshakeType,
  NamedGroup,
  type Suite,
  suiteByCode,
  suiteByName,
  TLS12,
  TLS13,
} from "./wire.ts";

export interface ClientConfig {
  provider: CryptoProvider;
  /** Checks the server's chain and returns the leaf key for CertificateVerify. */
  verifyServer: (chain: readonly Uint8Array[]) => PublicKey;
  cipherSuites?: readonly CipherSuiteName[];
  /** supported_groups, in preference order. */
  groups?: readonly KeyExchangeGroup[];
  /** Groups to send key shares for (default: the first group); [] forces a retry. */
  keyShares?: readonly KeyExchangeGroup[];
  /** signature_algorithms (default: every scheme we can verify). */
  signatureSchemes?: readonly number[];
  serverName?: string;
  alpnProtocols?: readonly string[];
  /** A client certificate chain (leaf first) and its key, sent when the server asks. */
  certificate?: { chain: readonly Uint8Array[]; privateKey: PrivateKey };
  /** legacy_session_id (default: 32 random bytes, middlebox compatibility mode). */
  legacySessionId?: Uint8Array;
  keyUpdateAfterRecords?: number;
  /** A ticket from an earlier connection to offer as a PSK (RFC 8446, Section 4.2.11). */
  resumeWith?: ClientTicket;
  /**
   * PSK key exchange modes to offer (default [psk_dhe_ke]). Sent unless `offerTickets` is
   * false: servers send NewSessionTickets only to clients that list a mode (RFC 8446, 4.2.9).
   */
  pskModes?: readonly number[];
  /** Milliseconds since the epoch, for ticket ages (default `Date.now`). */
  now?: () => number;
  /** Send psk_key_exchange_modes even without a ticket, to be given tickets (default true). */
  offerTickets?: boolean;
  /** Test hooks: rewrite the ClientHello before encoding (attempt 1 or 2). */
  editClientHello?: (ch: ClientHello, attempt: 1 | 2) => ClientHello;
  /** Test hook: rewrite any outgoing encoded handshake message (before the transcript). */
  tamper?: (type: number, encoded: Uint8Array) => Uint8Array;
}

/** A resumption ticket as the client keeps it (RFC 8446, Section 4.6.1). */
export interface ClientTicket {
  readonly ticket: Uint8Array;
  readonly psk: Uint8Array;
  readonly suite: CipherSuiteName;
  readonly ageAdd: number;
  /** Milliseconds since the epoch when the ticket arrived. */
  readonly receivedAt: number;
  readonly lifetime: number;
}

/** Keys and transcript shared by the states after the ServerHello. */
interface Handshake {
  readonly suite: Suite;
  readonly transcript: Transcript;
  readonly secrets: HandshakeSecrets;
  /** The server accepted our PSK: no certificate follows. */
  readonly resumed: boolean;
}

type ClientState =
  | {
    kind: "expectServerHello";
    ch: ClientHello;
    shares: KeyShare[];
    retried: boolean;
    t: Transcript;
  }
  | { kind: "expectEncryptedExtensions"; hs: Handshake }
  | { kind: "expectCertificateOrRequest"; hs: Handshake }
  | { kind: "expectCertificate"; hs: Handshake; request: CertificateRequest }
  | {
    kind: "expectCertificateVerify";
    hs: Handshake;
    request: CertificateRequest | null;
    key: PublicKey;
  }
  | { kind: "expectFinished"; hs: Handshake; request: CertificateRequest | null }
  | { kind: "connected" };

export class TlsClientConnection extends Connection {
  readonly #config: ClientConfig;
  readonly #suites: readonly Suite[];
  readonly #groups: readonly KeyExchangeGroup[];
  readonly #schemes: readonly number[];
  #state: ClientState;
  #ccsSeen = false;
  #ccsSent = false;
  #helloRetry = false;
  #suiteName = "";
  #group = "";
  #alpn: string | null = null;
  #resumed = false;
  #resumptionMaster: Uint8Array | null = null;
  /** Tickets received after the handshake, newest last. */
  readonly tickets: ClientTicket[] = [];

  constructor(config: ClientConfig) {
    super(config.provider, config.keyUpdateAfterRecords);
    this.#config = config;
    this.#suites = (config.cipherSuites ?? DEFAULT_SUITES).map(suiteByName);
    this.#groups = config.groups ?? DEFAULT_GROUPS;
    this.#schemes = config.signatureSchemes ?? VERIFY_SCHEMES;
    const shareGroups = config.keyShares ?? this.#groups.slice(0, 1);
    const shares = shareGroups.map((g) => this.provider.generateKeyShare(g));
    const ch = this.#clientHello(
      this.provider.randomBytes(32),
      config.legacySessionId ?? this.provider.randomBytes(32),
      shares,
      null,
      1,
    );
    const t = new Transcript(this.provider);
    this.#sendHello(ch, t);
    this.#state = { kind: "expectServerHello", ch, shares, retried: false, t };
  }

  info(): {
    version: "TLSv1.3";
    cipherSuite: string;
    group: string;
    sni: string | null;
    alpn: string | null;
    helloRetry: boolean;
    peer: null;
    resumed: boolean;
  } {
    return {
      version: "TLSv1.3",
      cipherSuite: this.#suiteName,
      group: this.#group,
      sni: this.#config.serverName ?? null,
      alpn: this.#alpn,
      helloRetry: this.#helloRetry,
      peer: null,
      resumed: this.#resumed,
    };
  }

  #clientHello(
    random: Uint8Array,
    sessionId: Uint8Array,
    shares: readonly KeyShare[],
    cookie: Uint8Array | null,
    attempt: 1 | 2,
  ): ClientHello {
    const c = this.#config;
    const u16s = (v: readonly number[], prefix: 1 | 2) =>
      encode((w: Writer, x: readonly number[]) => writeU16List(w, prefix, x), v);
    const extensions: Extension[] = [];
    if (c.serverName !== undefined) {
      extensions.push({
        type: ExtensionType.server_name,
        data: encode(writeServerName, ascii(c.serverName)),
      });
    }
    extensions.push(
      { type: ExtensionType.supported_versions, data: u16s([TLS13], 1) },
      {
        type: ExtensionType.supported_groups,
        data: u16s(this.#groups.map((g) => NamedGroup[g].code), 2),
      },
      { type: ExtensionType.signature_algorithms, data: u16s(this.#schemes, 2) },
      {
        type: ExtensionType.key_share,
        data: encode(
          writeKeyShareClient,
          shares.map((s) => ({ group: NamedGroup[s.group].code, keyExchange: s.publicKey })),
        ),
      },
    );
    if (c.alpnProtocols !== undefined) {
      extensions.push({
        type: ExtensionType.application_layer_protocol_negotiation,
        data: encode(writeAlpn, c.alpnProtocols.map(ascii)),
      });
    }
    if (cookie !== null) {
      extensions.push({ type: ExtensionType.cookie, data: encode(writeCookie, cookie) });
    }
    const resume = c.resumeWith;
    if (resume !== undefined || c.offerTickets !== false) {
      extensions.push({
        type: ExtensionType.psk_key_exchange_modes,
        data: encode(writePskModes, c.pskModes ?? [PskKeyExchangeMode.psk_dhe_ke]),
      });
    }
    if (resume !== undefined) {
      const age = (c.now ?? Date.now)() - resume.receivedAt;
      extensions.push(
        {
          type: ExtensionType.pre_shared_key,
          data: encode(writeOfferedPsks, {
            identities: [{
              identity: resume.ticket,
              obfuscatedTicketAge: (age + resume.ageAdd) % 2 ** 32,
            }],
            binders: [new Uint8Array(suiteByName(resume.suite).hashLength)],
          }),
        },
      );
    }
    const ch: ClientHello = {
      legacyVersion: TLS12,
      random,
      legacySessionId: sessionId,
      cipherSuites: this.#suites.map((s) => s.code),
      legacyCompressionMethods: new Uint8Array([0]),
      extensions,
    };
    return c.editClientHello ? c.editClientHello(ch, attempt) : ch;
  }

  #sendHello(ch: ClientHello, t: Transcript): void {
    let msg = writeHandshake(HandshakeType.client_hello, (w) => writeClientHello(w, ch));
    const resume = this.#config.resumeWith;
    const last = ch.extensions[ch.extensions.length - 1];
    if (resume !== undefined && last?.type === ExtensionType.pre_shared_key) {
      // The binder covers the ClientHello up to the binders list (Section 4.2.11.2).
      const suite = suiteByName(resume.suite);
      const partial = msg.subarray(0, msg.length - (3 + suite.hashLength));
      const hash = this.#helloRetry
        ? t.currentWith(partial)
        : this.provider.hash(suite.hash, partial);
      msg = msg.slice();
      msg.set(pskBinder(this.provider, suite, resume.psk, hash), msg.length - suite.hashLength);
    }
    if (this.#config.tamper) msg = this.#config.tamper(HandshakeType.client_hello, msg);
    t.add(msg);
    this.queueHandshake(msg);
    this.flush();
  }

  #send(t: Transcript, type: HandshakeType, body: (w: Writer) => void): void {
    let msg = writeHandshake(type, body);
    if (this.#config.tamper) msg = this.#config.tamper(type, msg);
    t.add(msg);
    this.queueHandshake(msg);
  }

  /** Test hook: sends one record of any type under the current keys (see `writeRawRecord`). */
  sendRaw(type: ContentType, content: Uint8Array, padding = 0): void {
    this.writeRawRecord(type, content, padding);
  }

  protected override acceptChangeCipherSpec(): boolean {
    const s = this.#state;
    const inWindow = s.kind !== "connected" &&
      (s.kind !== "expectServerHello" || s.retried);
    if (!inWindow || this.#ccsSeen) return false;
    this.#ccsSeen = true;
    return true;
  }

  protected override onPostHandshakeMessage(msg: HandshakeMessage): void {
    if (msg.type === HandshakeType.new_session_ticket) {
      const nst = parseNewSessionTicket(msg.body);
      const suite = this.negotiatedSuite;
      if (this.#resumptionMaster === null || suite === null) return;
      this.tickets.push({
        ticket: nst.ticket,
        psk: ticketPsk(this.provider, suite, this.#resumptionMaster, nst.nonce),
        suite: suite.name,
        ageAdd: nst.ageAdd,
        receivedAt: (this.#config.now ?? Date.now)(),
        lifetime: nst.lifetime,
      });
      return;
    }
    throw new TlsAlert("unexpected_message", "Unexpected post-handshake message");
  }

  protected override onHandshakeMessage(msg: HandshakeMessage): void {
    const s = this.#state;
    switch (s.kind) {
      case "expectServerHello":
        return this.#onServerHello(s, expect(msg, HandshakeType.server_hello));
      case "expectEncryptedExtensions":
        return this.#onEncryptedExtensions(s.hs, expect(msg, HandshakeType.encrypted_extensions));
      case "expectCertificateOrRequest":
        if (msg.type === HandshakeType.certificate_request) {
          return this.#onCertificateRequest(s.hs, msg);
        }
        return this.#onCertificate(s.hs, null, expect(msg, HandshakeType.certificate));
      case "expectCertificate":
        return this.#onCertificate(s.hs, s.request, expect(msg, HandshakeType.certificate));
      case "expectCertificateVerify":
        return this.#onCertificateVerify(s, expect(msg, HandshakeType.certificate_verify));
      case "expectFinished":
        return this.#onFinished(s, expect(msg, HandshakeType.finished));
      case "connected":
        throw new TlsAlert("unexpected_message", "Handshake message after Finished");
      default: {
        const never: never = s;
        throw new Error(`Unknown state ${JSON.stringify(never)}`);
      }
    }
  }

  #onServerHello(
    s: Extract<ClientState, { kind: "expectServerHello" }>,
    msg: HandshakeMessage,
  ): void {
    const sh = parseServerHello(msg.body);
    const suite = this.#checkServerHello(s.ch, sh);
    s.t.start(suite.hash);
    this.setSuite(suite);
    this.#suiteName = suite.name;
    if (isHelloRetryRequest(sh)) return this.#onHelloRetryRequest(s, sh, msg);

    const body = findExtension(sh.extensions, ExtensionType.key_share);
    if (body === undefined) throw new TlsAlert("missing_extension", "ServerHello lacks key_share");
    const entry = parseBody(body, "key_share", readKeyShareServer);
    const share = s.shares.find((k) => NamedGroup[k.group].code === entry.group);
    if (share === undefined) {
      throw new TlsAlert("illegal_parameter", "Server chose an unsent share");
    }
    let secret: Uint8Array;
    try {
      secret = share.computeSecret(entry.keyExchange);
    } catch {
      throw new TlsAlert("illegal_parameter", "Invalid server key share");
    }
    this.#group = share.group;
    s.t.add(msg.encoded);
    const pskBody = findExtension(sh.extensions, ExtensionType.pre_shared_key);
    const resume = this.#config.resumeWith;
    let psk: Uint8Array | null = null;
    if (pskBody !== undefined) {
      if (
        resume === undefined || parseBody(pskBody, "pre_shared_key", (r) => r.u16()) !== 0 ||
        suiteByName(resume.suite).hash !== suite.hash
      ) {
        throw new TlsAlert("illegal_parameter", "Server selected an unoffered PSK");
      }
      psk = resume.psk;
      this.#resumed = true;
    }
    const secrets = handshakeSecrets(this.provider, suite, secret, s.t.current(), psk);
    this.setReadSecret(secrets.server);
    this.#state = {
      kind: "expectEncryptedExtensions",
      hs: { suite, transcript: s.t, secrets, resumed: psk !== null },
    };
  }

  #checkServerHello(ch: ClientHello, sh: ServerHello): Suite {
    const versions = findExtension(sh.extensions, ExtensionType.supported_versions);
    if (versions === undefined) throw new TlsAlert("protocol_version", "Server refused TLS 1.3");
    if (parseBody(versions, "supported_versions", (r) => r.u16()) !== TLS13) {
      throw new TlsAlert("illegal_parameter", "Server selected an unoffered version");
    }
    const suite = suiteByCode(sh.cipherSuite);
    if (
      sh.legacyVersion !== TLS12 || sh.legacyCompressionMethod !== 0 || suite === null ||
      !ch.cipherSuites.includes(sh.cipherSuite) ||
      !constantTimeEqual(sh.legacySessionIdEcho, ch.legacySessionId)
    ) {
      throw new TlsAlert("illegal_parameter", "ServerHello does not match the ClientHello");
    }
    return suite;
  }

  /** Answers a HelloRetryRequest with the second ClientHello (RFC 8446, Section 4.1.4). */
  #onHelloRetryRequest(
    s: Extract<ClientState, { kind: "expectServerHello" }>,
    hrr: ServerHello,
    msg: HandshakeMessage,
  ): void {
    if (s.retried) throw new TlsAlert("unexpected_message", "Second HelloRetryRequest");
    this.#helloRetry = true;
    const body = findExtension(hrr.extensions, ExtensionType.key_share);
    const selected = body === undefined
      ? null
      : groupByCode(parseBody(body, "key_share", (r) => r.u16()));
    if (
      selected === null || !this.#groups.includes(selected) ||
      s.shares.some((k) => k.group === selected)
    ) {
      throw new TlsAlert("illegal_parameter", "HelloRetryRequest selected an unusable group");
    }
    const cookieBody = findExtension(hrr.extensions, ExtensionType.cookie);
    const cookie = cookieBody === undefined ? null : parseBody(cookieBody, "cookie", readCookie);
    s.t.replaceWithMessageHash();
    s.t.add(msg.encoded);
    const shares = [this.provider.generateKeyShare(selected)];
    const ch = this.#clientHello(s.ch.random, s.ch.legacySessionId, shares, cookie, 2);
    this.#maybeSendChangeCipherSpec();
    this.#sendHello(ch, s.t);
    this.#state = { kind: "expectServerHello", ch, shares, retried: true, t: s.t };
  }

  #onEncryptedExtensions(hs: Handshake, msg: HandshakeMessage): void {
    const ee = parseEncryptedExtensions(msg.body);
    const alpn = findExtension(ee.extensions, ExtensionType.application_layer_protocol_negotiation);
    if (alpn !== undefined) {
      const list = parseBody(alpn, "ALPN", readAlpn);
      const offered = this.#config.alpnProtocols ?? [];
      const chosen = list.length === 1 ? String.fromCharCode(...list[0]!) : null;
      if (chosen === null || !offered.includes(chosen)) {
        throw new TlsAlert("illegal_parameter", "Server selected an unoffered protocol");
      }
      this.#alpn = chosen;
    }
    hs.transcript.add(msg.encoded);
    this.#state = hs.resumed
      ? { kind: "expectFinished", hs, request: null }
      : { kind: "expectCertificateOrRequest", hs };
  }

  #onCertificateRequest(hs: Handshake, msg: HandshakeMessage): void {
    const request = parseCertificateRequest(msg.body);
    const sigAlgs = findExtension(request.extensions, ExtensionType.signature_algorithms);
    if (sigAlgs === undefined) {
      throw new TlsAlert("missing_extension", "CertificateRequest lacks signature_algorithms");
    }
    hs.transcript.add(msg.encoded);
    this.#state = { kind: "expectCertificate", hs, request };
  }

  #onCertificate(hs: Handshake, request: CertificateRequest | null, msg: HandshakeMessage): void {
    const cert = parseCertificate(msg.body);
    if (cert.entries.length === 0) throw new TlsAlert("decode_error", "Server sent no certificate");
    if (cert.context.length !== 0) throw new TlsAlert("illegal_parameter", "Unexpected context");
    const key = this.#config.verifyServer(cert.entries.map((e) => e.data));
    hs.transcript.add(msg.encoded);
    this.#state = { kind: "expectCertificateVerify", hs, request, key };
  }

  #onCertificateVerify(
    s: Extract<ClientState, { kind: "expectCertificateVerify" }>,
    msg: HandshakeMessage,
  ): void {
    const cv = parseCertificateVerify(msg.body);
    const algorithm = verifyingAlgorithm(cv.scheme, s.key, this.#schemes);
    const content = signedContent("server", s.hs.transcript.current());
    if (!this.provider.verify(s.key, algorithm, content, cv.signature)) {
      throw new TlsAlert("decrypt_error", "Server CertificateVerify signature is invalid");
    }
    s.hs.transcript.add(msg.encoded);
    this.#state = { kind: "expectFinished", hs: s.hs, request: s.request };
  }

  #onFinished(s: Extract<ClientState, { kind: "expectFinished" }>, msg: HandshakeMessage): void {
    const { hs } = s;
    const t = hs.transcript;
    const expected = finishedVerifyData(this.provider, hs.suite, hs.secrets.server, t.current());
    const fin = parseFinished(msg.body, hs.suite.hashLength);
    if (!constantTimeEqual(fin.verifyData, expected)) {
      throw new TlsAlert("decrypt_error", "Server Finished does not verify");
    }
    t.add(msg.encoded);
    const app: ApplicationSecrets = applicationSecrets(
      this.provider,
      hs.suite,
      hs.secrets,
      t.current(),
    );

    this.#maybeSendChangeCipherSpec();
    this.setWriteSecret(hs.secrets.client);
    if (s.request !== null) this.#sendClientCertificate(t, s.request);
    const verifyData = finishedVerifyData(this.provider, hs.suite, hs.secrets.client, t.current());
    this.#send(t, HandshakeType.finished, (w) => writeFinished(w, { verifyData }));
    this.#resumptionMaster = resumptionMasterSecret(this.provider, hs.suite, app, t.current());
    this.setWriteSecret(app.client);
    this.setReadSecret(app.server);
    this.#state = { kind: "connected" };
    this.establish();
  }

  /** Middlebox compatibility (RFC 8446, Appendix D.4): one CCS before our second flight. */
  #maybeSendChangeCipherSpec(): void {
    if (this.#ccsSent || (this.#config.legacySessionId?.length ?? 32) === 0) return;
    this.#ccsSent = true;
    this.sendChangeCipherSpec();
  }

  #sendClientCertificate(t: Transcript, request: CertificateRequest): void {
    const cert = this.#config.certificate;
    this.#send(t, HandshakeType.certificate, (w) =>
      writeCertificate(w, {
        context: request.context,
        entries: (cert?.chain ?? []).map((data) => ({ data, extensions: [] })),
      }));
    if (cert === undefined || cert.chain.length === 0) return;
    const sigAlgs = findExtension(request.extensions, ExtensionType.signature_algorithms)!;
    const schemes = parseBody(sigAlgs, "signature_algorithms", (r) => readU16List(r, 2));
    const scheme = chooseSigningScheme(cert.privateKey, schemes);
    if (scheme === null) {
      throw new TlsAlert("handshake_failure", "No usable client signature scheme");
    }
    const signature = this.provider.sign(
      cert.privateKey,
      signingAlgorithm(scheme),
      signedContent("client", t.current()),
    );
    this.#send(
      t,
      HandshakeType.certificate_verify,
      (w) => writeCertificateVerify(w, { scheme, signature }),
    );
  }
}

function expect(msg: HandshakeMessage, type: HandshakeType): HandshakeMessage {
  if (msg.type !== type) {
    throw new TlsAlert("unexpected_message", `Unexpected handshake message type ${msg.type}`);
  }
  return msg;
}
